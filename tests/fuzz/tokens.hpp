// Tokens for the targets that check them (fuzz_jwt, fuzz_router) and for
// their seeds: HS256 with one secret, signed here over any header and claims
// text, so that a fuzzer's claims get past the signature to the parsers
// behind it.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "jwt.hpp"
#include "script.hpp"

namespace hyperstreams::fuzzing {

inline constexpr std::string_view hs256_secret = "fuzzing-secret";
inline constexpr std::string_view hs256_header = R"({"alg":"HS256","typ":"JWT"})";
// What the targets' token checks take as the time (Unix seconds) when their
// fake clock starts.
inline constexpr std::int64_t unix_start = 1'700'000'000;

inline std::string sign_hs256(std::string_view header, std::string_view claims) {
    std::string token = router::jwt::base64url_encode(header) + "." + router::jwt::base64url_encode(claims);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), hs256_secret.data(), static_cast<int>(hs256_secret.size()),
             reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &mac_len) == nullptr)
        fail("sign_hs256", "HMAC-SHA256 failed");
    return token + "." +
           router::jwt::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

// The tokens fuzz_router's hello step presents, by index: every right
// (with channels subscribed at hello); a few rights with a deny rule and a
// channel, expiring 5 s after the start; expired; no subject. An index past the list presents no token (anonymous).
inline std::vector<std::string> router_tokens() {
    const std::string all = std::to_string(unix_start + 3600);
    const std::string soon = std::to_string(unix_start + 5);
    const std::string past = std::to_string(unix_start - 100);
    return {
        sign_hs256(hs256_header, R"({"sub":"alice","exp":)" + all +
                                     R"(,"hs":{"subscribe":[">"],"publish":[">"],"call":[">"],)"
                                     R"("send":["*"],"broadcast":true,"register":[">"],)"
                                     R"("subscribe_clients":[">"],"channels":["alerts.>","a.b"]}})"),
        sign_hs256(hs256_header, R"({"sub":"bob","exp":)" + soon +
                                     R"(,"hs":{"subscribe":["public.>"],"publish":["public.*"],)"
                                     R"("call":["echo/get"],"channels":["public.news"],)"
                                     R"("deny":{"subscribe":["public.secret"]}}})"),
        sign_hs256(hs256_header, R"({"sub":"carol","exp":)" + past + "}"),
        sign_hs256(hs256_header, R"({"exp":)" + all + "}"),
    };
}

}  // namespace hyperstreams::fuzzing
