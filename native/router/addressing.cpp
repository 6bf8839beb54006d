#include "addressing.hpp"

#include <cstdio>

#include "hyperstreams/names.hpp"

namespace hyperstreams::router {

namespace {

frame addressed(frame_kind kind, std::string_view from, std::uint8_t flags, bytes_view payload) {
    frame out;
    out.kind = kind;
    out.flags = static_cast<std::uint8_t>(flags & frame_flags::json);
    out.name = from;
    out.payload = payload;
    return out;
}

}  // namespace

std::string_view router_of(std::string_view address) noexcept {
    const std::size_t last = address.rfind('-');
    if (last == std::string_view::npos || last == 0) return {};
    const std::size_t before = address.rfind('-', last - 1);
    if (before == std::string_view::npos || before == 0) return {};
    return address.substr(0, before);
}

addressing::addressing(authorizer& auth, connection_table& table, pubsub& subscriptions, std::string router_id,
                       router_bus* bus)
    : auth_(auth),
      table_(table),
      pubsub_(subscriptions),
      router_id_(std::move(router_id)),
      bus_(bus),
      rng_(std::random_device{}()) {
    if (bus_ != nullptr) bus_->bind(*this);
}

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
        const std::string_view router = router_of(f.name);
        if (bus_ != nullptr && !router.empty() && router != router_id_) {
            bus_->direct(router, f.name, c.address, f.flags, f.payload,
                         publisher{c.id, f.id, f.has(frame_flags::ack_requested)});
            return;
        }
        table_.send_error(c, f.id, errc::no_such_address, "no client has this address");
        return;
    }
    table_.deliver(*target, encode_shared(addressed(frame_kind::direct, c.address, f.flags, f.payload)),
                   frame_class::control, slow_policy::drop_oldest);
    if (f.has(frame_flags::ack_requested)) table_.send_ack(c, f.id);
}

bool addressing::direct_arrived(std::string_view to, std::string_view from, std::uint8_t flags, bytes_view payload) {
    auto it = addresses_.find(to);
    connection* target = it == addresses_.end() ? nullptr : table_.find(it->second);
    if (target == nullptr || target->state != connection_state::open) return false;
    table_.deliver(*target, encode_shared(addressed(frame_kind::direct, from, flags, payload)), frame_class::control,
                   slow_policy::drop_oldest);
    return true;
}

void addressing::direct_done(const publisher& from, errc code, std::string_view text) {
    connection* c = table_.find(from.connection);
    if (c == nullptr) return;
    if (code != errc{})
        table_.send_error(*c, from.id, code, text);
    else if (from.wants_ack)
        table_.send_ack(*c, from.id);
}

connection* addressing::local(std::string_view address) {
    auto it = addresses_.find(address);
    connection* target = it == addresses_.end() ? nullptr : table_.find(it->second);
    return target != nullptr && target->state == connection_state::open ? target : nullptr;
}

void addressing::client_subscription(connection& c, const frame& f) {
    const bool subscribe = f.kind == frame_kind::subscribe_client;
    const std::string_view to(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    if (!is_valid_pattern(f.name)) {
        table_.send_error(c, f.id, errc::invalid_name, "not a valid channel pattern");
        return;
    }
    if (to.empty() || to.size() > max_name_size) {
        table_.send_error(c, f.id, errc::invalid_name, "the payload must be a connection's address");
        return;
    }
    if (std::error_code ec = auth_.can_subscribe_clients(who(c), f.name)) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()),
                          "not allowed to subscribe clients to '" + std::string(f.name) + "'");
        return;
    }
    const slow_policy policy = policy_of(f.flags);
    if (local(to) == nullptr) {
        const std::string_view router = router_of(to);
        if (bus_ != nullptr && !router.empty() && router != router_id_) {
            bus_->client_subscription(router, to, f.name, policy, subscribe, publisher{c.id, f.id, true});
            return;
        }
    }
    if (const verdict v = client_subscription_arrived(to, f.name, policy, subscribe))
        table_.send_error(c, f.id, static_cast<errc>(v.code.value()), v.reason);
    else
        table_.send_ack(c, f.id);
}

verdict addressing::client_subscription_arrived(std::string_view to, std::string_view pattern, slow_policy policy,
                                                bool subscribe) {
    connection* target = local(to);
    if (target == nullptr) return verdict::refuse(errc::no_such_address, "no client has this address");
    return subscribe ? pubsub_.subscribe_for(*target, pattern, policy)
                     : pubsub_.unsubscribe_for(*target, pattern, errc{});
}

void addressing::broadcast(connection& c, const frame& f) {
    if (std::error_code ec = auth_.can_broadcast(who(c))) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to broadcast");
        return;
    }
    to_everyone(encode_shared(addressed(frame_kind::broadcast, c.address, f.flags, f.payload)), c.id);
    if (bus_ != nullptr) bus_->broadcast(c.address, f.flags, f.payload);
    if (f.has(frame_flags::ack_requested)) table_.send_ack(c, f.id);
}

void addressing::broadcast_arrived(std::string_view from, std::uint8_t flags, bytes_view payload) {
    to_everyone(encode_shared(addressed(frame_kind::broadcast, from, flags, payload)), 0);
}

void addressing::to_everyone(const shared_bytes& encoded, connection_id except) {
    for (connection_id id : table_.ids()) {
        if (id == except) continue;
        connection* t = table_.find(id);
        if (t != nullptr && t->state == connection_state::open)
            table_.deliver(*t, encoded, frame_class::control, slow_policy::drop_oldest);
    }
}

}  // namespace hyperstreams::router
