#include "hyperstreams/errc.hpp"

#include <string>

namespace hyperstreams {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hyperstreams"; }
    std::string message(int value) const override {
        std::string_view n = errc_name(static_cast<std::uint16_t>(value));
        return std::string(n);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const category instance;
    return instance;
}

std::string_view errc_name(std::uint16_t code) noexcept {
    switch (static_cast<errc>(code)) {
        case errc::truncated: return "truncated";
        case errc::length_out_of_bounds: return "length_out_of_bounds";
        case errc::frame_too_large: return "frame_too_large";
        case errc::unknown_kind: return "unknown_kind";
        case errc::unsupported_version: return "unsupported_version";
        case errc::trailing_bytes: return "trailing_bytes";
        case errc::malformed_body: return "malformed_body";
        case errc::invalid_name: return "invalid_name";
        case errc::empty_batch: return "empty_batch";
        case errc::name_too_long: return "name_too_long";
        case errc::unexpected_frame: return "unexpected_frame";
        case errc::handshake_timeout: return "handshake_timeout";
        case errc::heartbeat_timeout: return "heartbeat_timeout";
        case errc::version_mismatch: return "version_mismatch";
        case errc::duplicate_id: return "duplicate_id";
        case errc::protocol_violation: return "protocol_violation";
        case errc::no_such_service: return "no_such_service";
        case errc::no_instance_available: return "no_instance_available";
        case errc::deadline_exceeded: return "deadline_exceeded";
        case errc::no_such_address: return "no_such_address";
        case errc::backend_gone: return "backend_gone";
        case errc::cancelled: return "cancelled";
        case errc::no_such_stream: return "no_such_stream";
        case errc::history_gone: return "history_gone";
        case errc::slow_consumer: return "slow_consumer";
        case errc::going_away: return "going_away";
        case errc::not_subscribed: return "not_subscribed";
        case errc::handler_failed: return "handler_failed";
        case errc::cluster_unavailable: return "cluster_unavailable";
        case errc::cluster_outcome_unknown: return "cluster_outcome_unknown";
        case errc::key_reused: return "key_reused";
        case errc::not_enabled: return "not_enabled";
        case errc::unauthorized: return "unauthorized";
        case errc::token_expired: return "token_expired";
        case errc::forbidden: return "forbidden";
        case errc::origin_not_allowed: return "origin_not_allowed";
        case errc::too_many_subscriptions: return "too_many_subscriptions";
        case errc::too_many_pending_requests: return "too_many_pending_requests";
        case errc::rate_limited: return "rate_limited";
        case errc::too_many_connections: return "too_many_connections";
        case errc::outbox_full: return "outbox_full";
        case errc::too_many_services: return "too_many_services";
        case errc::payload_too_large: return "payload_too_large";
        case errc::invalid_argument: return "invalid_argument";
        case errc::not_connected: return "not_connected";
        case errc::closed: return "closed";
        case errc::wrong_role: return "wrong_role";
        case errc::already_subscribed: return "already_subscribed";
        case errc::too_many_redirects: return "too_many_redirects";
        case errc::connection_lost: return "connection_lost";
        case errc::connection_refused: return "connection_refused";
        case errc::upgrade_refused: return "upgrade_refused";
        case errc::transport_handshake_failed: return "transport_handshake_failed";
        case errc::connection_failed: return "connection_failed";
    }
    return "unknown";
}

}  // namespace hyperstreams
