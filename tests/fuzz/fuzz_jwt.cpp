// libFuzzer target: JSON Web Tokens as clients present them in hello and
// token_refresh (jwt.hpp), and the claims behind a good signature: the
// token authorizer's checks and the grants of the "hs" claim (grants.hpp).
//
// The first byte picks the mode:
//   even: the rest is a token, verified as it comes against an HS256
//         secret, an RSA and an EC public key: form, base64url, header,
//         algorithm, signature;
//   odd:  the rest is a header (str16, script.hpp) and the claims text,
//         which the target signs with the secret (tokens.hpp), so that the
//         fuzzer's claims reach the claim checks, the grants parser and
//         the decisions over the grants.
//
// Besides "no crash", it checks:
//   - base64url is canonical: text that decodes is what its bytes encode
//     to, and bytes survive encoding and decoding;
//   - a token the secret signed is never refused for its signature or its
//     algorithm when its header asks for HS256;
//   - a verified token's exp is after now;
//   - a subject admitted once is refused a second connection (the limit
//     is one).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "jwt.hpp"
#include "script.hpp"
#include "token_authorizer.hpp"
#include "tokens.hpp"

namespace {

using namespace hyperstreams;
using namespace hyperstreams::router;
using fuzzing::as_text;
using fuzzing::script_reader;

void require(bool condition, const char* what) {
    if (!condition) fuzzing::fail("fuzz_jwt", what);
}

// Public keys only: no token the fuzzer makes verifies with them, but their
// algorithms' paths run up to the signature check.
constexpr std::string_view rsa_public_pem = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlA7+SS5xb5OmR31+oEjn
978Ds31/a62Ah1sglsb59k8NRjOFWKK+9o883DqiSsA3/hCSTUwNQjm7I2ROmrR9
CvHFVFUzYHAFcGWFVxdwkgo/4mvx3ai78oMRgsGaAOiJDg+5Fi8tlrxUYxzrxbpW
kC6ZJ4It0edCFDzz7H2ZFNZ49yfVldaHhzDLPbLuzaVr0NfAn5vQ6twBZ6VrqgA7
ZNC9Ujdod8eDDGq5y7YrVytwUNpqHvQBr543xeEsG8/VlkSq9ZL00hDSBUnDEwIc
COeJCEVYGRis0Ap7nr/FDpUzhxM4OvMHdcmgPoNCsCUNZxLcI6zFXdyxAHt9dgK5
8wIDAQAB
-----END PUBLIC KEY-----
)";
constexpr std::string_view ec_public_pem = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQRYr1yny0JMGVtZKQzX2N4EFNvG+
BjGifj+Z8I/JWpi8uVtt+qPOuBPzuX/bzE42D/bq2tY9GvOZKvqS4x7ZhA==
-----END PUBLIC KEY-----
)";

jwt::verifier make_keys() {
    jwt::verifier v;
    v.set_hs256_secret(std::string(fuzzing::hs256_secret));
    require(v.set_public_key_pem(rsa_public_pem).empty(), "the RSA key loads");
    require(v.set_public_key_pem(ec_public_pem).empty(), "the EC key loads");
    return v;
}

const jwt::verifier& keys() {
    static const jwt::verifier v = make_keys();
    return v;
}

void check_base64url(std::string_view text) {
    std::string bytes;
    if (jwt::base64url_decode(text, bytes))
        require(jwt::base64url_encode(bytes) == text, "text that decodes is the encoding of its bytes");
    std::string again;
    require(jwt::base64url_decode(jwt::base64url_encode(text), again) && again == text,
            "bytes survive base64url encoding and decoding");
}

jwt::verifier::result verify(std::string_view token) {
    const jwt::verifier::result r = keys().verify(token, fuzzing::unix_start, 5);
    (void)jwt::describe(r);
    if (r.why == jwt::failure::none) require(r.exp > fuzzing::unix_start, "a verified token has not expired");
    return r;
}

bool asks_for_hs256(std::string_view header) {
    const auto h = nlohmann::json::parse(header, nullptr, false);
    if (h.is_discarded() || !h.is_object() || h.contains("crit")) return false;
    const auto alg = h.find("alg");
    return alg != h.end() && alg->is_string() && alg->get<std::string>() == "HS256";
}

// The token authorizer over a signed token: admission, each decision, a
// refresh, a second connection of the same subject, and forgetting.
void authorize(const std::string& token) {
    token_policy p;
    p.keys.set_hs256_secret(std::string(fuzzing::hs256_secret));
    p.connections_per_subject = 1;
    p.max_rules = 64;
    p.unix_now = [] { return fuzzing::unix_start; };
    token_authorizer auth(std::move(p));
    const principal first{1, transport_kind::websocket, client_role::frontend, "fuzz", "r-1-0a", {}};
    const principal second{2, transport_kind::zeromq, client_role::backend, "fuzz", "r-2-0b", {}};
    if (const verdict v = auth.admit(first, token)) {
        require(!v.reason.empty(), "every refusal says why");
        return;
    }
    (void)auth.token_lifetime(first);
    (void)auth.can_subscribe(first, "a.b");
    (void)auth.can_subscribe(first, "a.*");
    (void)auth.can_subscribe(first, ">");
    (void)auth.can_publish(first, "a.b.c");
    (void)auth.can_call(first, "svc", "get");
    (void)auth.can_send(first, "r-2-0b");
    (void)auth.can_broadcast(first);
    (void)auth.can_register(first, "svc.a");
    (void)auth.refresh(first, token);
    require(auth.admit(second, token) == errc::too_many_connections,
            "a subject at its connection limit is refused another");
    auth.forget(first);
    auth.forget(second);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    script_reader in(bytes_view(data, size));
    if (in.u8() % 2 == 0) {
        const std::string_view token = as_text(in.take(size));
        check_base64url(token);
        (void)verify(token);
        return 0;
    }
    const std::string_view header = as_text(in.str16());
    const std::string_view claims = as_text(in.take(size));
    const std::string token = fuzzing::sign_hs256(header, claims);
    const jwt::verifier::result r = verify(token);
    if (asks_for_hs256(header))
        require(r.why != jwt::failure::bad_signature && r.why != jwt::failure::unsupported_alg,
                "a token the secret signed passes its HS256 signature check");
    authorize(token);
    return 0;
}
