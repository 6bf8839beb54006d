// The routing core's addressing room: every open connection's address (its
// session id, where direct messages go), direct messages and broadcasts.
// When the router is one of several, a direct message to an address another
// router gave, and every broadcast, also cross the router bus.
//
// A backend's subscribe_client / unsubscribe_client names a connection by
// its address: the backend's right (subscribe_clients) is checked here, the
// connection's own (it must be allowed to subscribe) by pubsub, on the
// router that gave the address, which may be another (over the bus: its
// verdict comes back to the backend).
#pragma once

#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "connection_table.hpp"
#include "pubsub.hpp"
#include "router_bus.hpp"

namespace hyperstreams::router {

// The id of the router that gave `address` (its name up to the last two
// '-'-separated parts); empty when it is not an address a router makes.
std::string_view router_of(std::string_view address) noexcept;

class addressing final : private router_bus::sink {
public:
    // `bus`: null for a router on its own.
    addressing(authorizer& auth, connection_table& table, pubsub& subscriptions, std::string router_id,
               router_bus* bus);
    addressing(const addressing&) = delete;
    addressing& operator=(const addressing&) = delete;

    // Gives `c` its address: the router's id, the connection's and 32
    // random bits (an address is not a secret, but not a counter either).
    void name(connection& c);
    // `c` was admitted: its address takes direct messages.
    void enter(connection& c);
    // The connection is going.
    void drop(connection& c);

    void direct(connection& c, const frame& f);
    void broadcast(connection& c, const frame& f);
    // subscribe_client and unsubscribe_client from backend `c`.
    void client_subscription(connection& c, const frame& f);

private:
    bool direct_arrived(std::string_view to, std::string_view from, std::uint8_t flags, bytes_view payload) override;
    void broadcast_arrived(std::string_view from, std::uint8_t flags, bytes_view payload) override;
    void direct_done(const publisher& from, errc code, std::string_view text) override;
    verdict client_subscription_arrived(std::string_view to, std::string_view pattern, slow_policy policy,
                                        bool subscribe) override;
    // The open connection with address `address` on this router, if any.
    connection* local(std::string_view address);
    // To every open connection but `except`.
    void to_everyone(const shared_bytes& encoded, connection_id except);

    authorizer& auth_;
    connection_table& table_;
    pubsub& pubsub_;
    std::string router_id_;
    router_bus* bus_;
    std::mt19937_64 rng_;
    // Keys view connection::address, which is set before the entry is made
    // and not changed until drop() erases it.
    std::unordered_map<std::string_view, connection_id> addresses_;
};

}  // namespace hyperstreams::router
