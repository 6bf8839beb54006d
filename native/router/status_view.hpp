// The admin view (/status): a snapshot of the routing core taken under its
// lock (plain values, no JSON), rendered as JSON after the lock is released.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "calls.hpp"
#include "channel_log.hpp"
#include "connection.hpp"

namespace hyperstreams::router {

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
};

// Valid JSON whatever the names hold.
std::string render_status(const status_snapshot& s);

}  // namespace hyperstreams::router
