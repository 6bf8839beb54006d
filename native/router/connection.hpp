// A client connection as the routing core sees it: its protocol state (hello
// first, role, heartbeats, subscriptions, registered services), its outgoing
// queue and a weak handle on the transport session that owns the socket.
//
// The core never owns a session: `link` is weak, and a session that is gone
// simply stops being woken. The session reports its end with
// router_core::closed().
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "hyperstreams/body.hpp"
#include "metrics.hpp"
#include "outbox.hpp"

namespace hyperstreams::router {

using steady_clock = std::chrono::steady_clock;
using time_point = steady_clock::time_point;
using connection_id = std::uint64_t;

// Process-wide unique, never 0.
connection_id next_connection_id() noexcept;

// The transport side of a connection.
class link {
public:
    virtual ~link() = default;
    // The outbox has frames to send or is closing. Called on any thread,
    // never inside the core (core_runner calls it once the core's mutex is
    // released); the transport hands it to its own thread and returns at once.
    virtual void wake() = 0;
};

enum class connection_state : std::uint8_t { awaiting_hello, open, closing };

struct connection {
    connection_id id = 0;
    transport_kind transport = transport_kind::websocket;
    std::string remote;
    std::string curve_key;  // set by the ZeroMQ transport after a CURVE handshake
    std::weak_ptr<link> session;
    std::shared_ptr<outbox> out;

    connection_state state = connection_state::awaiting_hello;
    client_role role = client_role::frontend;
    std::string name;
    std::string address;  // the session id: where direct messages go

    time_point opened{};
    time_point last_received{};
    time_point last_ping{};
    std::uint32_t ping_nonce = 0;
    // When the token (plus the grace) runs out; max(): it does not.
    time_point token_deadline = time_point::max();
    // Publish rate limit: a token bucket.
    double publish_allowance = 0;
    time_point publish_refilled{};

    std::map<std::string, slow_policy, std::less<>> subscriptions;  // pattern -> policy
    std::set<std::string, std::less<>> services;                    // registered (backends)
    std::uint32_t next_backend_id = 0;                              // ids of calls it serves

    std::uint64_t frames_in = 0;
    std::uint64_t frames_queued = 0;
    std::uint64_t dropped = 0;
};

}  // namespace hyperstreams::router
