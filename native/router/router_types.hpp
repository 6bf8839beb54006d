// The few names every part of the router shares: connection ids, the
// clock, the transport kinds, the transport's handle (`link`) and what a
// transport tells the core about a new connection. Transports include this
// and core_runner.hpp, never the core's tables.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hyperstreams::router {

using steady_clock = std::chrono::steady_clock;
using time_point = steady_clock::time_point;
using connection_id = std::uint64_t;

// Process-wide unique, never 0.
connection_id next_connection_id() noexcept;

enum class transport_kind : std::uint8_t { websocket = 0, zeromq = 1 };
inline constexpr std::size_t transport_count = 2;
std::string_view transport_name(transport_kind t) noexcept;

// The transport side of a connection.
class link {
public:
    virtual ~link() = default;
    // The outbox has frames to send or is closing. Called on the thread of
    // the connection's lane when it has one (lane.hpp), on any thread
    // otherwise; never inside the core (core_runner calls it once the
    // core's mutex is released). A call on another thread hands it to the
    // thread that serves the connection (a post) and returns at once.
    virtual void wake() = 0;
};

class outbox;
class lane;

// A connection a transport accepted.
struct connection_init {
    connection_id id = 0;
    transport_kind transport = transport_kind::websocket;
    std::string remote;
    std::string curve_key;  // Z85 public key proved by CURVE (ZeroMQ)
    std::weak_ptr<link> session;
    std::shared_ptr<outbox> out;
    // The I/O thread's lane that pushes into `out` (lane.hpp); null: the
    // core's own lane, which pushes as the core sends.
    std::shared_ptr<lane> served_by;
};

}  // namespace hyperstreams::router
