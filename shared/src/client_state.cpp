#include "hyperstreams/client_state.hpp"

namespace hyperstreams {

std::string_view state_name(client_state s) noexcept {
    switch (s) {
        case client_state::idle: return "idle";
        case client_state::connecting: return "connecting";
        case client_state::handshaking: return "handshaking";
        case client_state::ready: return "ready";
        case client_state::backoff: return "backoff";
        case client_state::awaiting_token: return "awaiting_token";
        case client_state::closed: return "closed";
        case client_state::failed: return "failed";
    }
    return "unknown";
}

std::string_view input_name(client_input i) noexcept {
    switch (i) {
        case client_input::start: return "start";
        case client_input::close: return "close";
        case client_input::transport_opened: return "transport_opened";
        case client_input::transport_closed: return "transport_closed";
        case client_input::welcome: return "welcome";
        case client_input::redirect: return "redirect";
        case client_input::redirect_limit: return "redirect_limit";
        case client_input::timer_expired: return "timer_expired";
        case client_input::retryable_rejection: return "retryable_rejection";
        case client_input::token_rejected: return "token_rejected";
        case client_input::token_refreshed: return "token_refreshed";
        case client_input::fatal_rejection: return "fatal_rejection";
        case client_input::protocol_violation: return "protocol_violation";
    }
    return "unknown";
}

}  // namespace hyperstreams
