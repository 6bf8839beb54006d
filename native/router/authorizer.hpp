// Every permission decision of the router goes through this interface, so
// that access control (tokens and their claims) plugs in without touching the
// routing code. Role rules (only backends register services and answer
// calls) are protocol rules and stay in the core; this decides what a given
// principal may do.
//
// Called only by the routing core: one call at a time (under core_runner's
// mutex), on whichever thread runs the core. A decision returns an empty
// error_code to allow, or the code the client gets (forbidden,
// unauthorized, token_expired); admit and refresh return a verdict, which
// also says why.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "hyperstreams/body.hpp"
#include "hyperstreams/errc.hpp"
#include "metrics.hpp"

namespace hyperstreams::router {

// The furthest a token's deadline reaches. A token valid for longer (an exp
// in the year 9999, or 2^63) lives this long: it outlasts any process and
// keeps every deadline within what the clocks represent.
inline constexpr std::chrono::seconds longest_token_lifetime = std::chrono::hours(24 * 365 * 100);

struct principal {
    std::uint64_t connection = 0;
    transport_kind transport = transport_kind::websocket;
    client_role role = client_role::frontend;
    std::string_view name;     // from hello
    std::string_view address;  // the session id
    std::string_view curve_key;  // Z85 public key a ZeroMQ CURVE handshake proved; empty: none
};

// The answer to a hello's or a refresh's token: empty to let it in, or the
// code the client gets and why (the error's text).
struct [[nodiscard]] verdict {
    std::error_code code;
    std::string reason;

    static verdict refuse(errc e, std::string why) { return {make_error_code(e), std::move(why)}; }
    // True when refused, as an error_code is when set.
    explicit operator bool() const noexcept { return static_cast<bool>(code); }
    friend bool operator==(const verdict& v, errc e) noexcept { return v.code == make_error_code(e); }
};

class authorizer {
public:
    virtual ~authorizer() = default;

    // hello: may this client connect with this token?
    virtual verdict admit(const principal& who, std::string_view token) = 0;
    // token_refresh over an open connection.
    virtual verdict refresh(const principal& who, std::string_view token) = 0;
    // The connection ended: forget what was kept about it.
    virtual void forget(const principal& who) = 0;
    // After admit or refresh: how long the connection's token stays valid
    // (the router closes it token_expired after that plus auth.expiry_grace_ms),
    // at most longest_token_lifetime; nullopt: it does not expire.
    virtual std::optional<std::chrono::milliseconds> token_lifetime(const principal&) {
        return std::nullopt;
    }
    // After admit: the subject ("sub") of the connection's token, as
    // presence shows it; empty without a token. Valid until the next call.
    virtual std::string_view subject(const principal&) { return {}; }
    // After admit: the channel patterns the connection is subscribed to at
    // hello (the token's "channels"). Valid until the connection's next
    // admit, refresh or forget.
    virtual std::span<const std::string> channels(const principal&) { return {}; }

    virtual std::error_code can_subscribe(const principal& who, std::string_view pattern) = 0;
    virtual std::error_code can_publish(const principal& who, std::string_view channel) = 0;
    virtual std::error_code can_call(const principal& who, std::string_view service,
                                     std::string_view method) = 0;
    virtual std::error_code can_send(const principal& who, std::string_view address) = 0;
    virtual std::error_code can_broadcast(const principal& who) = 0;
    virtual std::error_code can_register(const principal& who, std::string_view service) = 0;
    // A backend subscribes another connection (subscribe_client) to `pattern`.
    virtual std::error_code can_subscribe_clients(const principal& who, std::string_view pattern) = 0;
};

// Allows everything: the router's behaviour until access control is configured.
class allow_all final : public authorizer {
public:
    verdict admit(const principal&, std::string_view) override { return {}; }
    verdict refresh(const principal&, std::string_view) override { return {}; }
    void forget(const principal&) override {}
    std::error_code can_subscribe(const principal&, std::string_view) override { return {}; }
    std::error_code can_publish(const principal&, std::string_view) override { return {}; }
    std::error_code can_call(const principal&, std::string_view, std::string_view) override {
        return {};
    }
    std::error_code can_send(const principal&, std::string_view) override { return {}; }
    std::error_code can_broadcast(const principal&) override { return {}; }
    std::error_code can_register(const principal&, std::string_view) override { return {}; }
    std::error_code can_subscribe_clients(const principal&, std::string_view) override { return {}; }
};

}  // namespace hyperstreams::router
