#include "addressing.hpp"

#include <cstdio>

namespace hyperstreams::router {

addressing::addressing(authorizer& auth, connection_table& table, std::string router_id)
    : auth_(auth), table_(table), router_id_(std::move(router_id)), rng_(std::random_device{}()) {}

void addressing::name(connection& c) {
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "-%llu-%08x", static_cast<unsigned long long>(c.id),
                  static_cast<unsigned>(rng_() & 0xFFFFFFFFu));
    c.address = router_id_ + suffix;
}

void addressing::enter(connection& c) { addresses_.emplace(c.address, c.id); }

void addressing::drop(connection& c) {
    if (!c.address.empty()) addresses_.erase(c.address);
}

void addressing::direct(connection& c, const frame& f) {
    // Permission first: a client may not learn which addresses exist beyond its rights.
    if (std::error_code ec = auth_.can_send(who(c), f.name)) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to send to this address");
        return;
    }
    auto it = addresses_.find(f.name);
    connection* target = it == addresses_.end() ? nullptr : table_.find(it->second);
    if (target == nullptr || target->state != connection_state::open) {
        table_.send_error(c, f.id, errc::no_such_address, "no client has this address");
        return;
    }
    frame out;
    out.kind = frame_kind::direct;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.name = c.address;
    out.payload = f.payload;
    table_.deliver(*target, encode_shared(out), frame_class::control, slow_policy::drop_oldest);
    if (f.has(frame_flags::ack_requested)) table_.send_ack(c, f.id);
}

void addressing::broadcast(connection& c, const frame& f) {
    if (std::error_code ec = auth_.can_broadcast(who(c))) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to broadcast");
        return;
    }
    frame out;
    out.kind = frame_kind::broadcast;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.name = c.address;
    out.payload = f.payload;
    const shared_bytes encoded = encode_shared(out);
    for (connection_id id : table_.ids()) {
        if (id == c.id) continue;
        connection* t = table_.find(id);
        if (t != nullptr && t->state == connection_state::open)
            table_.deliver(*t, encoded, frame_class::control, slow_policy::drop_oldest);
    }
    if (f.has(frame_flags::ack_requested)) table_.send_ack(c, f.id);
}

}  // namespace hyperstreams::router
