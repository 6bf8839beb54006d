// Error codes of the HyperStreams protocol.
//
// One enum for every code that can travel in an error, goodbye or redirect
// frame (the numeric values are part of the wire format, see
// docs/PROTOCOL.md) plus the codes a local API call can fail with. The
// ranges say who is at fault:
//
//   1..99     framing: the peer sent bytes that are not valid frames
//   100..199  session: the peer broke the protocol's state rules
//   200..299  routing: the router could not deliver or complete something
//   300..399  access: authentication and authorisation
//   400..499  limits: a configured limit was reached
//   500..599  usage: the local caller misused the API (never sent on the wire)
//   600..699  transport: the host could not open the transport (never on the wire)
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

namespace hyperstreams {

enum class errc : std::uint16_t {
    // framing
    truncated = 1,               // fewer bytes than a frame header
    length_out_of_bounds = 2,    // a length field points past the end of the input
    frame_too_large = 3,         // a length is over the configured cap
    unknown_kind = 4,            // frame kind not defined in this protocol version
    unsupported_version = 5,     // frame version byte is not one we speak
    trailing_bytes = 6,          // bytes after the last frame of a batch that are not a frame
    malformed_body = 7,          // kind-specific fields or control body do not parse
    invalid_name = 8,            // channel, pattern, address or service name is not valid
    empty_batch = 9,             // a transport message with no frame in it
    name_too_long = 10,          // name over 255 bytes (encoder side)

    // session
    unexpected_frame = 100,      // frame kind not allowed in this state or for this role
    handshake_timeout = 101,     // no hello/welcome in time
    heartbeat_timeout = 102,     // peer went silent
    version_mismatch = 103,      // no common protocol version
    duplicate_id = 104,          // correlation or stream id already in use
    protocol_violation = 105,    // anything else the peer got wrong

    // routing
    no_such_service = 200,
    no_instance_available = 201,
    deadline_exceeded = 202,
    no_such_address = 203,
    backend_gone = 204,          // the backend serving a request or stream went away
    cancelled = 205,
    no_such_stream = 206,
    history_gone = 207,          // resume position no longer in the channel's history
    slow_consumer = 208,         // outgoing queue over its bound (disconnect policy)
    going_away = 209,            // router draining or shutting down
    not_subscribed = 210,
    handler_failed = 211,        // a backend handler reported a failure
    cluster_unavailable = 212,   // the routers' shared engine (Redis) cannot be reached: nothing happened
    cluster_outcome_unknown = 213,  // the router lost the shared engine's answer, or its replicas did not all confirm: it may or may not have happened, or last
    key_reused = 214,            // an idempotency key already used, within its window, for another payload
    not_enabled = 215,           // the channel's namespace does not enable this (latest, presence, join_leave)

    // access
    unauthorized = 300,          // missing, malformed or wrongly signed token
    token_expired = 301,
    forbidden = 302,             // the token's claims do not allow this
    origin_not_allowed = 303,

    // limits
    too_many_subscriptions = 400,
    too_many_pending_requests = 401,
    rate_limited = 402,
    too_many_connections = 403,
    outbox_full = 404,           // client-side: too much queued while disconnected
    too_many_services = 405,     // a registration past the router's bounds on services or methods
    payload_too_large = 406,     // a publish over its channel namespace's max_message_bytes

    // usage (local only)
    invalid_argument = 500,
    not_connected = 501,
    closed = 502,                // the client was closed by its owner
    wrong_role = 503,            // e.g. a frontend registering a service
    already_subscribed = 504,
    too_many_redirects = 505,
    connection_lost = 506,       // the transport carrying an operation was lost: outcome unknown

    // transport (local only: what a host saw when a connection attempt failed)
    connection_refused = 600,          // nothing accepted the connection at that address
    upgrade_refused = 601,             // the WebSocket upgrade got an HTTP status instead (e.g. 404: wrong path)
    transport_handshake_failed = 602,  // connected, but no WebSocket or ZMTP handshake: another kind of endpoint
    connection_failed = 603,           // any other failure to open (name resolution, unreachable, unknown cause)
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

// Stable identifier of a code ("deadline_exceeded"), as used in logs, metrics
// labels and the JS API. Unknown values give "unknown".
std::string_view errc_name(std::uint16_t code) noexcept;

// True when the code names a fault of the remote peer (framing, session),
// false for routing outcomes, access decisions, limits and local misuse.
constexpr bool is_peer_fault(errc e) noexcept {
    auto v = static_cast<std::uint16_t>(e);
    return v >= 1 && v < 200;
}

// True for the codes a host reports about a transport it could not open.
constexpr bool is_transport_failure(errc e) noexcept {
    auto v = static_cast<std::uint16_t>(e);
    return v >= 600 && v < 700;
}

}  // namespace hyperstreams

template <>
struct std::is_error_code_enum<hyperstreams::errc> : std::true_type {};
