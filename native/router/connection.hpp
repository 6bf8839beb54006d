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
#include <string_view>

#include "hyperstreams/body.hpp"
#include "metrics.hpp"
#include "lane.hpp"
#include "outbox.hpp"
#include "router_types.hpp"

namespace hyperstreams::router {

enum class connection_state : std::uint8_t { awaiting_hello, open, closing };

// A subscription of one connection: its slow-consumer policy and the id of
// the subscribe that made it, which is the id the client knows it by (and
// of the error that ends it when a token refresh withdraws the right).
struct subscription {
    slow_policy policy = slow_policy::router_default;
    std::uint32_t id = 0;
};

// What few connections have: most are frontends over WebSocket.
struct connection_extras {
    std::string curve_key;                          // set by the ZeroMQ transport after a CURVE handshake
    std::set<std::string, std::less<>> services;    // registered (backends)
};

// Members ordered so that the small ones share padding: the router keeps one
// per connection, idle or not.
struct connection {
    connection_id id = 0;
    std::string remote;
    std::weak_ptr<link> session;
    std::shared_ptr<outbox> out;
    std::shared_ptr<lane> served_by;  // null: the core's own lane

    std::string name;
    std::string address;  // the session id: where direct messages go (router_core's address map views it)

    transport_kind transport = transport_kind::websocket;
    connection_state state = connection_state::awaiting_hello;
    client_role role = client_role::frontend;
    bool follows_cluster = false;  // a backend whose hello asked for routers frames
    std::uint32_t ping_nonce = 0;
    time_point opened{};
    // Heartbeats (docs/PROTOCOL.md section 11), whoever does the talking:
    // the connection is dead once nothing came from it for the timeout, and
    // is pinged once nothing was queued to it for an interval, however much
    // it sends.
    time_point last_received{};
    // When the heartbeat scan last saw frames_queued move, or queued a ping.
    // The core queues without reading the clock: the scan dates what it
    // finds, at most a scan period late.
    time_point last_queued{};
    // When the token (plus the grace) runs out; max(): it does not.
    time_point token_deadline = time_point::max();
    // Publish rate limit: a token bucket.
    double publish_allowance = 0;
    time_point publish_refilled{};

    std::map<std::string, subscription, std::less<>> subscriptions;  // by pattern
    std::unique_ptr<connection_extras> extras;                      // null until one is set
    std::uint32_t next_backend_id = 0;                              // ids of calls it serves
    std::uint32_t queued_at_scan = 0;  // frames_queued at that scan (its low bits: only a change matters)

    std::uint64_t frames_in = 0;
    std::uint64_t frames_queued = 0;

    std::string_view curve_key() const noexcept { return extras ? std::string_view(extras->curve_key) : std::string_view(); }
    bool has_services() const noexcept { return extras && !extras->services.empty(); }
    connection_extras& extras_for_writing() {
        if (!extras) extras = std::make_unique<connection_extras>();
        return *extras;
    }
};

}  // namespace hyperstreams::router
