// The router's counters, gauges and the request latency histogram, rendered
// in the Prometheus text format on /metrics. Every value is an atomic, so any
// thread updates it without a lock; the set of series is fixed (labels are
// the two transports, the two HTTP listeners and the protocol's error
// codes), so a scrape never allocates per client. The counts every
// transport message moves (`traffic`) are kept per writing thread and
// summed when read, so that I/O threads share no cache line per message.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

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

    // A count that one thread writes and any thread reads: an add is a load
    // and a store, no locked instruction, so only its one writer adds.
    class local_counter {
    public:
        void add(std::uint64_t n) noexcept {
            value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        }
        std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

    private:
        std::atomic<std::uint64_t> value_{0};
    };

    // What the transports move, per message: one set per transport in each
    // thread's own block (`local`), summed by `total`.
    struct traffic {
        local_counter frames_in;
        local_counter frames_out;
        local_counter messages_in;   // transport messages (batches) received
        local_counter messages_out;  // transport messages (batches) sent
        local_counter bytes_in;
        local_counter bytes_out;
        local_counter dropped;  // data frames dropped by the slow-consumer policy
        local_counter gaps;     // gap frames sent
    };

    // The calling thread's traffic for transport t. Its first call on a
    // thread (for this metrics object) takes a lock; later ones do not.
    traffic& local(transport_kind t);
    // The sum over every thread that counted.
    std::uint64_t total(transport_kind t, local_counter traffic::*field) const;

    struct per_transport {
        counter connections_opened{0};
        gauge connections{0};
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

    metrics();
    metrics(const metrics&) = delete;
    metrics& operator=(const metrics&) = delete;

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

    // One thread's traffic, on cache lines of its own.
    struct alignas(64) thread_traffic {
        std::thread::id owner;  // the thread that counts here (or one that ended with that id)
        std::array<traffic, transport_count> of;
    };
    thread_traffic& this_threads_traffic();

    // Tells this object from one later made at the same address, for the
    // threads' cached pointers into `threads_`.
    const std::uint64_t id_;
    mutable std::mutex threads_mu_;
    std::deque<thread_traffic> threads_;  // never moved: threads keep pointers
    std::array<per_transport, transport_count> transports_;
    std::array<per_listener, listener_count> listeners_;
    std::array<counter, max_code> errors_{};
    std::array<counter, max_code> closes_{};
    std::array<counter, buckets.size() + 1> call_buckets_{};  // last: +Inf
    counter call_count_{0};
    counter call_nanos_{0};
};

}  // namespace hyperstreams::router
