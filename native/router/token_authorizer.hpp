// The authorizer when access control is configured (auth.mode "tokens"):
// a connection presents a JWT in hello (jwt.hpp checks form, signature and
// expiry), its "hs" claim says what it may do (grants.hpp), and the
// configuration may grant rights to connections without a token.
//
// It remembers each admitted connection's subject, grants and expiry until
// forget(), and counts connections per subject for the per-subject limit.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "authorizer.hpp"
#include "config.hpp"
#include "grants.hpp"
#include "jwt.hpp"

namespace hyperstreams::router {

struct token_policy {
    jwt::verifier keys;
    // Rights of a connection whose hello has no token; null refuses them.
    std::shared_ptr<const grants> anonymous;
    // Rights of backends that proved a CURVE public key (Z85) to the ZAP handler.
    std::map<std::string, std::shared_ptr<const grants>, std::less<>> curve_clients;
    // Tokens of one subject ("sub") may hold this many connections; 0: no limit.
    std::uint32_t connections_per_subject = 0;
    // Tolerance for clock skew on nbf, in seconds.
    std::int64_t leeway_s = 5;
    // Longer tokens are refused before they are decoded or verified.
    std::size_t max_token_bytes = 16384;
    // Rules of one token's hs claim, allow and deny together.
    std::size_t max_rules = 1024;
    // Seconds since the Unix epoch; replaced by tests.
    std::function<std::int64_t()> unix_now;
};

class token_authorizer final : public authorizer {
public:
    explicit token_authorizer(token_policy policy);

    verdict admit(const principal& who, std::string_view token) override;
    verdict refresh(const principal& who, std::string_view token) override;
    void forget(const principal& who) override;
    std::optional<std::chrono::milliseconds> token_lifetime(const principal& who) override;
    std::string_view subject(const principal& who) override;
    std::span<const std::string> channels(const principal& who) override;

    std::error_code can_subscribe(const principal& who, std::string_view pattern) override;
    std::error_code can_publish(const principal& who, std::string_view channel) override;
    std::error_code can_call(const principal& who, std::string_view service, std::string_view method) override;
    std::error_code can_send(const principal& who, std::string_view address) override;
    std::error_code can_broadcast(const principal& who) override;
    std::error_code can_register(const principal& who, std::string_view service) override;
    std::error_code can_subscribe_clients(const principal& who, std::string_view pattern) override;

private:
    struct session {
        std::string subject;  // empty: anonymous
        std::shared_ptr<const grants> rights;
        std::int64_t exp = 0;  // Unix seconds; 0: never (anonymous)
    };
    // Verifies `token` into `out`.
    verdict check(std::string_view token, session& out);
    const session* find(const principal& who) const;
    std::error_code decide(const principal& who, bool allowed);

    token_policy policy_;
    std::unordered_map<std::uint64_t, session> sessions_;
    std::map<std::string, std::uint32_t, std::less<>> per_subject_;
};

// The authorizer the configuration asks for: allow_all when auth.mode is
// open, a token_authorizer with the configured keys otherwise. Reads the key
// files. On a problem returns null and sets `error` (one line).
std::unique_ptr<authorizer> make_authorizer(const router_config& cfg, std::string& error);

}  // namespace hyperstreams::router
