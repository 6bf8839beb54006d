#include "status_view.hpp"

#include <nlohmann/json.hpp>

namespace hyperstreams::router {
namespace {

std::string_view state_name(connection_state s) noexcept {
    switch (s) {
        case connection_state::awaiting_hello: return "awaiting_hello";
        case connection_state::open: return "open";
        case connection_state::closing: return "closing";
    }
    return "closing";
}

}  // namespace

std::string render_status(const status_snapshot& s) {
    using nlohmann::json;
    json doc;
    doc["router_id"] = s.router_id;
    doc["epoch"] = s.epoch;
    doc["draining"] = s.draining;

    json conns = json::array();
    for (const auto& c : s.connections) {
        json j;
        j["id"] = c.id;
        j["transport"] = transport_name(c.transport);
        j["state"] = state_name(c.state);
        j["role"] = c.role == client_role::backend ? "backend" : "frontend";
        j["name"] = c.name;
        j["remote"] = c.remote;
        j["age_ms"] = c.age_ms;
        j["subscriptions"] = json::array();
        for (const auto& [pattern, policy] : c.subscriptions)
            j["subscriptions"].push_back({{"pattern", pattern}, {"policy", policy_name(policy)}});
        j["services"] = c.services;
        j["frames_in"] = c.frames_in;
        j["frames_queued"] = c.frames_queued;
        j["dropped"] = c.dropped;
        j["queued_bytes"] = c.queued_bytes;
        conns.push_back(std::move(j));
    }
    doc["connections"] = std::move(conns);

    json chans = json::array();
    for (const channel_view& ch : s.channels) {
        chans.push_back({{"name", ch.name},
                         {"epoch", ch.epoch},
                         {"seq", ch.seq},
                         {"published", ch.published},
                         {"history_messages", ch.history_messages},
                         {"history_bytes", ch.history_bytes}});
    }
    doc["channels"] = std::move(chans);

    json svcs = json::array();
    for (const service_view& sv : s.services) {
        json instances = json::array();
        for (const auto& inst : sv.instances) {
            json methods = json::array();
            for (const auto& [name, kind] : inst.methods)
                methods.push_back({{"name", name}, {"kind", kind == method_kind::stream ? "stream" : "unary"}});
            instances.push_back({{"connection", inst.connection},
                                 {"pending", inst.pending},
                                 {"served", inst.served},
                                 {"methods", std::move(methods)}});
        }
        svcs.push_back({{"name", sv.name}, {"instances", std::move(instances)}});
    }
    doc["services"] = std::move(svcs);
    doc["calls_in_flight"] = s.calls_in_flight;
    if (s.cluster) {
        const cluster_view& c = *s.cluster;
        doc["cluster"] = {{"redis", c.redis_up ? "up" : "down"},
                          {"reason", c.down_reason},
                          {"routers", c.routers},
                          {"redis_nodes", c.redis_nodes},
                          {"redis_rtt_ms", c.redis_rtt_ms},
                          {"redis_commands", c.redis_commands},
                          {"redis_errors", c.redis_errors},
                          {"redis_messages", c.redis_messages},
                          {"redis_reconnects", c.redis_reconnects},
                          {"redis_redirects", c.redis_redirects},
                          {"redis_sharded_pubsub", c.redis_sharded_pubsub},
                          {"recovered", c.recovered},
                          {"publish_failures", c.publish_failures},
                          {"unreplicated", c.unreplicated},
                          {"bad_messages", c.bad_messages},
                          {"heartbeat_failures", c.heartbeat_failures},
                          {"presence_write_failures", c.presence_write_failures}};
    }
    // Whatever reached a view is valid UTF-8 (names are checked when decoded,
    // and cut between characters); `replace` keeps a slip from throwing.
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hyperstreams::router
