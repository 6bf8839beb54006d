// The routing core's addressing room: every open connection's address (its
// session id, where direct messages go), direct messages and broadcasts.
#pragma once

#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "connection_table.hpp"

namespace hyperstreams::router {

class addressing {
public:
    addressing(authorizer& auth, connection_table& table, std::string router_id);
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

private:
    authorizer& auth_;
    connection_table& table_;
    std::string router_id_;
    std::mt19937_64 rng_;
    // Keys view connection::address, which is set before the entry is made
    // and not changed until drop() erases it.
    std::unordered_map<std::string_view, connection_id> addresses_;
};

}  // namespace hyperstreams::router
