// JSON Web Tokens (RFC 7519) in compact form, verified with OpenSSL:
// HS256 (HMAC-SHA256 with a shared secret), RS256 (RSA PKCS#1 v1.5 with
// SHA-256) and ES256 (ECDSA P-256 with SHA-256) against a public key.
//
// The algorithm a token may use is decided by the keys the router holds,
// never by the token: "none" and any algorithm without a configured key are
// refused, so a token cannot talk the router into checking an HMAC with a
// public key or skipping the signature.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace hyperstreams::router::jwt {

// Why a token was refused (the router answers unauthorized for all but
// expired, which is token_expired).
enum class failure : std::uint8_t {
    none,
    malformed,        // not three base64url parts, or header/claims not JSON objects
    unsupported_alg,  // "none", or an algorithm without a configured key
    bad_signature,
    expired,          // exp <= now
    not_yet_valid,    // nbf > now + leeway
    missing_exp,      // every token must expire
    bad_time_claim,   // exp, nbf or iat is not a number
};
std::string_view failure_name(failure f) noexcept;

// exp, nbf and iat are NumericDates (RFC 7519): JSON numbers of seconds since
// the Unix epoch, integer or not. A fraction is dropped (rounding towards the
// past) and a value beyond a signed 64-bit integer counts as the nearest end
// of that range, so every number has a defined meaning: 1e300 is the far
// future, -1e300 the far past. Any other JSON type is bad_time_claim. iat is
// informational (RFC 7519 section 4.1.6): only its type is checked.

// base64url without padding (RFC 4648 section 5), as JWTs use it.
std::string base64url_encode(std::string_view bytes);
// False on characters outside the alphabet or an impossible length.
bool base64url_decode(std::string_view text, std::string& out);

class verifier {
public:
    verifier();
    ~verifier();
    verifier(verifier&&) noexcept;
    verifier& operator=(verifier&&) noexcept;

    // An empty secret disables HS256.
    void set_hs256_secret(std::string secret);
    // A PEM public key (SubjectPublicKeyInfo): RSA enables RS256, an EC P-256
    // key enables ES256. Returns "" or what is wrong with the key.
    std::string set_public_key_pem(std::string_view pem);

    bool has_keys() const noexcept;

    struct result {
        failure why = failure::none;
        std::string_view claim;   // bad_time_claim: "exp", "nbf" or "iat"
        std::string claims_json;  // the payload, when the signature is good
        std::int64_t exp = 0;     // seconds since the Unix epoch
    };
    // Checks form, algorithm, signature, exp, nbf and iat against `now_unix`
    // (seconds), with `leeway_s` (>= 0) of tolerance for clock skew on nbf only.
    result verify(std::string_view token, std::int64_t now_unix, std::int64_t leeway_s = 0) const;

private:
    struct keys;
    std::unique_ptr<keys> keys_;
};

// Why `r` failed, in words for the client: failure_name(), naming the claim
// for bad_time_claim.
std::string describe(const verifier::result& r);

}  // namespace hyperstreams::router::jwt
