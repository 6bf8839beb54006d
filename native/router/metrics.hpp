// The router's counters, gauges and the request latency histogram, rendered
// in the Prometheus text format on /metrics. Every value is an atomic, so any
// thread updates it without a lock; the set of series is fixed (labels are
// the two transports, the two HTTP listeners and the protocol's error
// codes), so a scrape never allocates per client.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "router_types.hpp"

namespace hyperstreams::router {

// The HTTP listeners: --listen ("main") and admin.listen ("admin").
enum class listener_kind : std::uint8_t { main = 0, admin = 1 };
inline constexpr std::size_t listener_count = 2;
std::string_view listener_name(listener_kind l) noexcept;

// One unlabelled series in the Prometheus text format (HELP, TYPE, sample),
// for series kept elsewhere (the cluster's).
void append_series(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                   double value);

class metrics {
public:
    using counter = std::atomic<std::uint64_t>;
    using gauge = std::atomic<std::int64_t>;

    struct per_transport {
        counter connections_opened{0};
        gauge connections{0};
        counter frames_in{0};
        counter frames_out{0};
        counter messages_in{0};   // transport messages (batches) received
        counter messages_out{0};  // transport messages (batches) sent
        counter bytes_in{0};
        counter bytes_out{0};
        counter dropped{0};  // data frames dropped by the slow-consumer policy
        counter gaps{0};     // gap frames sent
        counter slow_consumer_closes{0};
    };

    per_transport& of(transport_kind t) noexcept { return transports_[static_cast<std::size_t>(t)]; }

    struct per_listener {
        gauge http_connections{0};   // accepted, neither ended nor upgraded to WebSocket yet
        counter http_refused{0};     // closed at once: limits.max_http_connections were open
        counter accept_failures{0};  // accept errors (out of descriptors and the like)
    };

    per_listener& of(listener_kind l) noexcept { return listeners_[static_cast<std::size_t>(l)]; }

    // An error frame with this code left the router.
    void error_sent(std::uint16_t code) noexcept;
    // A connection ended; `code` is the goodbye's code, 0 when the peer left.
    void connection_closed(std::uint16_t code) noexcept;
    // A request or stream finished after `seconds` (any outcome).
    void observe_call(double seconds) noexcept;

    counter published{0};
    counter delivered{0};  // channel messages queued to subscribers
    counter calls_started{0};
    gauge channels{0};
    gauge history_bytes{0};
    gauge channels_forgotten{0};
    gauge subscriptions{0};
    gauge services{0};
    gauge pending_calls{0};
    counter auth_refused{0};     // hellos and token refreshes refused
    counter tokens_expired{0};   // connections closed because the token ran out
    counter origins_refused{0};  // WebSocket upgrades from an Origin not allowed
    counter tls_handshake_failures{0};
    counter curve_refused{0};  // CURVE handshakes of backends whose key is not let in
    counter admin_refused{0};  // /metrics and /status requests without the admin token

    std::string render() const;

private:
    static constexpr std::size_t max_code = 600;
    static constexpr std::array<double, 16> buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                    1.0,    2.5,     5.0,    10.0};

    std::array<per_transport, transport_count> transports_;
    std::array<per_listener, listener_count> listeners_;
    std::array<counter, max_code> errors_{};
    std::array<counter, max_code> closes_{};
    std::array<counter, buckets.size() + 1> call_buckets_{};  // last: +Inf
    counter call_count_{0};
    counter call_nanos_{0};
};

}  // namespace hyperstreams::router
