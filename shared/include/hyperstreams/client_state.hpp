// The client engine's connection states and the transitions between them,
// as data (h11's transition table). client_engine moves between states only
// through next_state(), so this table is the whole truth: the tests check
// every row, and that no pair outside it moves the engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace hyperstreams {

enum class client_state : std::uint8_t {
    idle,            // constructed, start() not called yet
    connecting,      // asked the host to open a transport, waiting for transport_opened
    handshaking,     // hello sent, waiting for welcome
    ready,           // welcome received: traffic flows
    backoff,         // waiting (jittered) before the next connection attempt
    awaiting_token,  // the router rejected the token: waits for refresh_token()
    closed,          // closed by its owner; start() begins again from scratch
    failed,          // the router broke the protocol or refused us for good; start() retries
};
inline constexpr std::size_t client_state_count = 8;

// What happened. Inputs that a state does not list leave it unchanged (and
// the engine never produces most of them there, e.g. no frame is read while
// no transport is open).
enum class client_input : std::uint8_t {
    start,                // owner: start()
    close,                // owner: close()
    transport_opened,     // host: the transport it was asked to open is open
    transport_closed,     // host: the transport closed or could not be opened
    welcome,              // router: handshake accepted
    redirect,             // router: go to another URL (within the redirect bound)
    redirect_limit,       // router: one redirect more than config.max_redirects in a row
    timer_expired,        // the state's timer: connect/handshake timeout, dead
                          // transport (no traffic for dead_after_heartbeats
                          // intervals), end of backoff
    retryable_rejection,  // router: goodbye or handshake error worth retrying later
    token_rejected,       // router: unauthorized, token_expired or forbidden
    token_refreshed,      // owner: refresh_token()
    fatal_rejection,      // router: version_mismatch or a verdict that retrying cannot change
    protocol_violation,   // router: bytes or frames that break the protocol
};
inline constexpr std::size_t client_input_count = 13;

struct client_transition {
    client_state from;
    client_input input;
    client_state to;
};

inline constexpr client_transition client_transitions[] = {
    {client_state::idle, client_input::start, client_state::connecting},
    {client_state::idle, client_input::close, client_state::closed},

    {client_state::connecting, client_input::transport_opened, client_state::handshaking},
    {client_state::connecting, client_input::transport_closed, client_state::backoff},
    {client_state::connecting, client_input::timer_expired, client_state::backoff},
    {client_state::connecting, client_input::close, client_state::closed},

    {client_state::handshaking, client_input::welcome, client_state::ready},
    {client_state::handshaking, client_input::transport_closed, client_state::backoff},
    {client_state::handshaking, client_input::timer_expired, client_state::backoff},
    {client_state::handshaking, client_input::redirect, client_state::connecting},
    {client_state::handshaking, client_input::redirect_limit, client_state::backoff},
    {client_state::handshaking, client_input::retryable_rejection, client_state::backoff},
    {client_state::handshaking, client_input::token_rejected, client_state::awaiting_token},
    {client_state::handshaking, client_input::fatal_rejection, client_state::failed},
    {client_state::handshaking, client_input::protocol_violation, client_state::failed},
    {client_state::handshaking, client_input::close, client_state::closed},

    {client_state::ready, client_input::transport_closed, client_state::backoff},
    {client_state::ready, client_input::timer_expired, client_state::backoff},
    {client_state::ready, client_input::redirect, client_state::connecting},
    {client_state::ready, client_input::redirect_limit, client_state::backoff},
    {client_state::ready, client_input::retryable_rejection, client_state::backoff},
    {client_state::ready, client_input::token_rejected, client_state::awaiting_token},
    {client_state::ready, client_input::fatal_rejection, client_state::failed},
    {client_state::ready, client_input::protocol_violation, client_state::failed},
    {client_state::ready, client_input::close, client_state::closed},

    {client_state::backoff, client_input::timer_expired, client_state::connecting},
    {client_state::backoff, client_input::close, client_state::closed},

    {client_state::awaiting_token, client_input::token_refreshed, client_state::connecting},
    {client_state::awaiting_token, client_input::close, client_state::closed},

    {client_state::closed, client_input::start, client_state::connecting},

    {client_state::failed, client_input::start, client_state::connecting},
    {client_state::failed, client_input::close, client_state::closed},
};

// The state `input` leads to from `from`; empty when the table has no row.
constexpr std::optional<client_state> next_state(client_state from, client_input input) noexcept {
    for (const client_transition& t : client_transitions)
        if (t.from == from && t.input == input) return t.to;
    return std::nullopt;
}

// True in the states where the engine holds a transport (asked to open or open).
constexpr bool has_transport(client_state s) noexcept {
    return s == client_state::connecting || s == client_state::handshaking ||
           s == client_state::ready;
}

std::string_view state_name(client_state s) noexcept;
std::string_view input_name(client_input i) noexcept;

}  // namespace hyperstreams
