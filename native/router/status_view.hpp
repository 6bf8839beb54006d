// The admin view (/status): a snapshot of the routing core taken under its
// lock (plain values, no JSON), rendered as JSON after the lock is released.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "calls.hpp"
#include "channel_log.hpp"
#include "connection.hpp"

namespace hyperstreams::router {

// A router that is one of several (cluster.redis), as /status shows it.
struct cluster_view {
    bool redis_up = false;
    std::string down_reason;           // when not up
    std::vector<std::string> routers;  // alive: heartbeating into Redis
    std::size_t redis_nodes = 0;
    double redis_rtt_ms = 0;
    std::uint64_t redis_commands = 0;
    std::uint64_t redis_errors = 0;
    std::uint64_t redis_messages = 0;  // pub/sub messages received
    std::uint64_t redis_reconnects = 0;
    std::uint64_t redis_redirects = 0;
    // Its own channel is a sharded one on a Redis Cluster (redis_bus.hpp).
    bool redis_sharded_pubsub = false;
    std::uint64_t recovered = 0;  // publications read from the streams to fill holes in the pub/sub
    std::uint64_t publish_failures = 0;  // redis_log::publish_failures
    std::uint64_t unreplicated = 0;      // redis_log::unreplicated
    std::uint64_t bad_messages = 0;      // dropped as malformed: redis_log's and redis_bus's
    std::uint64_t heartbeat_failures = 0;       // this router's beats Redis refused (cluster.heartbeat_failed)
    std::uint64_t presence_write_failures = 0;  // joins and leaves Redis refused (cluster.presence_write_failed)
};

struct status_snapshot {
    struct connection_row {
        connection_id id = 0;
        transport_kind transport = transport_kind::websocket;
        connection_state state = connection_state::awaiting_hello;
        client_role role = client_role::frontend;
        std::string name;
        std::string remote;  // not the address: whoever knows it can send the connection direct messages
        std::int64_t age_ms = 0;
        std::vector<std::pair<std::string, slow_policy>> subscriptions;
        std::vector<std::string> services;
        std::uint64_t frames_in = 0;
        std::uint64_t frames_queued = 0;
        std::uint64_t dropped = 0;
        std::uint64_t queued_bytes = 0;
    };

    std::string router_id;
    std::uint32_t epoch = 0;
    bool draining = false;
    std::vector<connection_row> connections;  // by id
    std::vector<channel_view> channels;
    std::vector<service_view> services;
    std::size_t calls_in_flight = 0;
    std::optional<cluster_view> cluster;  // none: a router on its own
};

// Valid JSON whatever the names hold.
std::string render_status(const status_snapshot& s);

}  // namespace hyperstreams::router
