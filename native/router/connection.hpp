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
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
    // The outbox has frames to send or is closing. Called on the core's
    // thread; the transport posts to its own executor and returns at once.
    virtual void wake() = 0;
};

// Inbound backpressure between a transport and the core: the transport counts
// the bytes it has posted to the core and stops reading when too many are
// waiting; the core releases them once processed and, when the transport is
// waiting, `resume` is called (on the core's thread; it must only post).
// Reading stops at `limit`, resumes below half of it.
class inbound_gate {
public:
    inbound_gate(std::size_t limit, std::function<void()> resume)
        : limit_(limit), resume_(std::move(resume)) {}

    void add(std::size_t n) {
        std::lock_guard lock(mu_);
        pending_ += n;
    }
    // False when the transport must wait for `resume` before reading again.
    bool may_read() {
        std::lock_guard lock(mu_);
        waiting_ = pending_ >= limit_;
        return !waiting_;
    }
    void release(std::size_t n) {
        bool resume = false;
        {
            std::lock_guard lock(mu_);
            pending_ -= std::min(n, pending_);
            if (waiting_ && pending_ < limit_ / 2) {
                waiting_ = false;
                resume = true;
            }
        }
        if (resume && resume_) resume_();
    }

private:
    std::mutex mu_;
    std::size_t pending_ = 0;
    const std::size_t limit_;
    bool waiting_ = false;
    std::function<void()> resume_;
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
