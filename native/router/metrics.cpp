#include "metrics.hpp"

#include <cstdio>

#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view labels, double value) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    char buf[40];
    std::snprintf(buf, sizeof buf, " %.17g\n", value);
    out += buf;
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    out += ' ';
    out += std::to_string(value);
    out += '\n';
}

}  // namespace

void append_series(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                   double value) {
    header(out, name, type, help);
    sample(out, name, {}, value);
}

std::string_view transport_name(transport_kind t) noexcept {
    return t == transport_kind::zeromq ? "zeromq" : "websocket";
}

std::string_view listener_name(listener_kind l) noexcept { return l == listener_kind::admin ? "admin" : "main"; }

metrics::metrics() : id_([] {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, relaxed);
}()) {}

metrics::traffic& metrics::local(transport_kind t) {
    // One cached pointer per thread: the router has one metrics object, so
    // the lookup under the lock is once per thread (tests that run several
    // cores on one thread take it more often).
    thread_local std::uint64_t cached_for = 0;
    thread_local thread_traffic* cached = nullptr;
    if (cached_for != id_) {
        cached = &this_threads_traffic();
        cached_for = id_;
    }
    return cached->of[static_cast<std::size_t>(t)];
}

metrics::thread_traffic& metrics::this_threads_traffic() {
    const std::thread::id me = std::this_thread::get_id();
    std::lock_guard lock(threads_mu_);
    for (thread_traffic& block : threads_)
        if (block.owner == me) return block;  // a thread of that id counted before (it, or one that ended)
    thread_traffic& block = threads_.emplace_back();
    block.owner = me;
    return block;
}

std::uint64_t metrics::total(transport_kind t, local_counter traffic::*field) const {
    std::lock_guard lock(threads_mu_);
    std::uint64_t sum = 0;
    for (const thread_traffic& block : threads_) sum += (block.of[static_cast<std::size_t>(t)].*field).get();
    return sum;
}

void metrics::error_sent(std::uint16_t code) noexcept {
    if (code < max_code) errors_[code].fetch_add(1, relaxed);
}

void metrics::connection_closed(std::uint16_t code) noexcept {
    if (code < max_code) closes_[code].fetch_add(1, relaxed);
}

void metrics::observe_call(double seconds) noexcept {
    std::size_t i = 0;
    while (i < buckets.size() && seconds > buckets[i]) ++i;
    call_buckets_[i].fetch_add(1, relaxed);
    call_count_.fetch_add(1, relaxed);
    call_nanos_.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), relaxed);
}

std::string metrics::render() const {
    std::string out;
    out.reserve(8192);

    // One series per counter, labelled by transport: a field of
    // per_transport or of every thread's traffic.
    struct transport_series {
        std::string_view name, type, help;
        const std::atomic<std::uint64_t> per_transport::*field;
        local_counter traffic::*traffic_field;
    };
    static constexpr transport_series series[] = {
        {"hyperstreams_connections_opened_total", "counter", "Connections accepted.",
         &per_transport::connections_opened, nullptr},
        {"hyperstreams_frames_received_total", "counter", "Protocol frames received.", nullptr,
         &traffic::frames_in},
        {"hyperstreams_frames_sent_total", "counter", "Protocol frames sent.", nullptr, &traffic::frames_out},
        {"hyperstreams_transport_messages_received_total", "counter",
         "WebSocket/ZeroMQ messages (batches of frames) received.", nullptr, &traffic::messages_in},
        {"hyperstreams_transport_messages_sent_total", "counter",
         "WebSocket/ZeroMQ messages (batches of frames) sent.", nullptr, &traffic::messages_out},
        {"hyperstreams_bytes_received_total", "counter", "Payload bytes of transport messages received.", nullptr,
         &traffic::bytes_in},
        {"hyperstreams_bytes_sent_total", "counter", "Payload bytes of transport messages sent.", nullptr,
         &traffic::bytes_out},
        {"hyperstreams_dropped_messages_total", "counter",
         "Messages dropped from slow consumers' queues.", nullptr, &traffic::dropped},
        {"hyperstreams_gaps_sent_total", "counter", "Gap frames sent.", nullptr, &traffic::gaps},
        {"hyperstreams_slow_consumer_closes_total", "counter",
         "Connections closed because their queue overflowed.", &per_transport::slow_consumer_closes, nullptr},
    };
    header(out, "hyperstreams_connections", "gauge", "Open connections.");
    for (std::size_t t = 0; t < transport_count; ++t) {
        const std::string label =
            "transport=\"" + std::string(transport_name(static_cast<transport_kind>(t))) + "\"";
        sample(out, "hyperstreams_connections", label,
               static_cast<double>(transports_[t].connections.load(relaxed)));
    }
    for (const transport_series& s : series) {
        header(out, s.name, s.type, s.help);
        for (std::size_t t = 0; t < transport_count; ++t) {
            const auto kind = static_cast<transport_kind>(t);
            const std::string label = "transport=\"" + std::string(transport_name(kind)) + "\"";
            sample(out, s.name, label,
                   s.field != nullptr ? (transports_[t].*s.field).load(relaxed) : total(kind, s.traffic_field));
        }
    }

    struct listener_series {
        std::string_view name, type, help;
        const std::atomic<std::int64_t> per_listener::*gauge_field;
        const std::atomic<std::uint64_t> per_listener::*counter_field;
    };
    static constexpr listener_series by_listener[] = {
        {"hyperstreams_http_connections", "gauge",
         "HTTP connections open and not (yet) upgraded to WebSocket, by listener.", &per_listener::http_connections,
         nullptr},
        {"hyperstreams_http_connections_refused_total", "counter",
         "Connections closed as soon as accepted because limits.max_http_connections were open.", nullptr,
         &per_listener::http_refused},
        {"hyperstreams_accept_failures_total", "counter",
         "Failed accepts (out of file descriptors and the like); the listener backs off.", nullptr,
         &per_listener::accept_failures},
    };
    for (const listener_series& s : by_listener) {
        header(out, s.name, s.type, s.help);
        for (std::size_t l = 0; l < listener_count; ++l) {
            const std::string label =
                "listener=\"" + std::string(listener_name(static_cast<listener_kind>(l))) + "\"";
            if (s.gauge_field != nullptr)
                sample(out, s.name, label, static_cast<double>((listeners_[l].*s.gauge_field).load(relaxed)));
            else
                sample(out, s.name, label, (listeners_[l].*s.counter_field).load(relaxed));
        }
    }

    header(out, "hyperstreams_errors_total", "counter", "Error frames sent, by code.");
    for (std::size_t c = 0; c < max_code; ++c) {
        const std::uint64_t v = errors_[c].load(relaxed);
        if (v == 0) continue;
        sample(out, "hyperstreams_errors_total",
               "code=\"" + std::string(errc_name(static_cast<std::uint16_t>(c))) + "\"", v);
    }
    header(out, "hyperstreams_connections_closed_total", "counter",
           "Connections ended, by reason (closed: the peer left).");
    for (std::size_t c = 0; c < max_code; ++c) {
        const std::uint64_t v = closes_[c].load(relaxed);
        if (v == 0) continue;
        const std::string reason = c == 0 ? "closed" : std::string(errc_name(static_cast<std::uint16_t>(c)));
        sample(out, "hyperstreams_connections_closed_total", "reason=\"" + reason + "\"", v);
    }

    header(out, "hyperstreams_published_total", "counter", "Messages published.");
    sample(out, "hyperstreams_published_total", "", published.load(relaxed));
    header(out, "hyperstreams_delivered_total", "counter", "Channel messages queued to subscribers.");
    sample(out, "hyperstreams_delivered_total", "", delivered.load(relaxed));
    header(out, "hyperstreams_calls_started_total", "counter", "Requests and streams routed to a backend.");
    sample(out, "hyperstreams_calls_started_total", "", calls_started.load(relaxed));
    header(out, "hyperstreams_channels", "gauge", "Channels with state (sequence, history).");
    sample(out, "hyperstreams_channels", "", static_cast<double>(channels.load(relaxed)));
    header(out, "hyperstreams_history_bytes", "gauge", "Bytes of channel history kept for resume.");
    sample(out, "hyperstreams_history_bytes", "", static_cast<double>(history_bytes.load(relaxed)));
    header(out, "hyperstreams_channels_forgotten_total", "counter",
           "Channels forgotten to stay within limits.max_channels.");
    sample(out, "hyperstreams_channels_forgotten_total", "",
           static_cast<std::uint64_t>(channels_forgotten.load(relaxed)));
    header(out, "hyperstreams_subscriptions", "gauge", "Subscriptions.");
    sample(out, "hyperstreams_subscriptions", "", static_cast<double>(subscriptions.load(relaxed)));
    header(out, "hyperstreams_service_instances", "gauge", "Registered service instances.");
    sample(out, "hyperstreams_service_instances", "", static_cast<double>(services.load(relaxed)));
    header(out, "hyperstreams_pending_calls", "gauge", "Requests and streams in flight.");
    sample(out, "hyperstreams_pending_calls", "", static_cast<double>(pending_calls.load(relaxed)));

    header(out, "hyperstreams_auth_refused_total", "counter", "Hellos and token refreshes refused.");
    sample(out, "hyperstreams_auth_refused_total", "", auth_refused.load(relaxed));
    header(out, "hyperstreams_tokens_expired_total", "counter",
           "Connections closed because their token expired and was not refreshed in time.");
    sample(out, "hyperstreams_tokens_expired_total", "", tokens_expired.load(relaxed));
    header(out, "hyperstreams_origins_refused_total", "counter",
           "WebSocket upgrades refused because of their Origin.");
    sample(out, "hyperstreams_origins_refused_total", "", origins_refused.load(relaxed));
    header(out, "hyperstreams_tls_handshake_failures_total", "counter", "TLS handshakes that failed.");
    sample(out, "hyperstreams_tls_handshake_failures_total", "", tls_handshake_failures.load(relaxed));

    header(out, "hyperstreams_curve_refused_total", "counter",
           "Backend CURVE handshakes refused because the key is not in backend_auth.curve_clients.");
    sample(out, "hyperstreams_curve_refused_total", "", curve_refused.load(relaxed));
    header(out, "hyperstreams_admin_refused_total", "counter",
           "Requests for /metrics or /status refused for want of the admin token.");
    sample(out, "hyperstreams_admin_refused_total", "", admin_refused.load(relaxed));

    header(out, "hyperstreams_call_duration_seconds", "histogram",
           "Time from a request or stream_open to its response, end or failure.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        cumulative += call_buckets_[i].load(relaxed);
        char le[32];
        std::snprintf(le, sizeof le, "le=\"%g\"", buckets[i]);
        sample(out, "hyperstreams_call_duration_seconds_bucket", le, cumulative);
    }
    cumulative += call_buckets_[buckets.size()].load(relaxed);
    sample(out, "hyperstreams_call_duration_seconds_bucket", "le=\"+Inf\"", cumulative);
    sample(out, "hyperstreams_call_duration_seconds_sum", "",
           static_cast<double>(call_nanos_.load(relaxed)) / 1e9);
    sample(out, "hyperstreams_call_duration_seconds_count", "", call_count_.load(relaxed));
    return out;
}

}  // namespace hyperstreams::router
