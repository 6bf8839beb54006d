// Makes what the access-control tests need, with OpenSSL at test time:
// RSA and EC P-256 key pairs, JWTs signed HS256/RS256/ES256 (or not at all),
// and self-signed TLS certificates. Nothing here is trusted by the router
// unless a test configures it.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace hyperstreams::testing {

struct pem_pair {
    std::string private_key;  // PKCS#8 PEM
    std::string public_key;   // SubjectPublicKeyInfo PEM
};

pem_pair make_rsa_key(int bits = 2048);
pem_pair make_ec_key();  // P-256

// Seconds since the Unix epoch.
std::int64_t unix_now();

std::string base64url(std::string_view bytes);

// header.claims.signature with the given algorithm; `header` defaults to
// {"alg": ALG, "typ": "JWT"}.
std::string sign_hs256(const std::string& secret, const nlohmann::json& claims,
                       nlohmann::json header = nullptr);
std::string sign_rs256(const std::string& private_pem, const nlohmann::json& claims);
std::string sign_es256(const std::string& private_pem, const nlohmann::json& claims);
// {"alg":"none"} and an empty signature.
std::string unsigned_token(const nlohmann::json& claims);

// A self-signed certificate for CN=localhost with the subjectAltName
// `names` (OpenSSL's syntax), valid for a day.
struct certificate {
    std::string cert_pem;
    std::string key_pem;
};
certificate make_self_signed_certificate(const std::string& names = "IP:127.0.0.1,DNS:localhost");

// Writes `text` to a fresh file under the test's temporary directory; returns its path.
std::string write_temp_file(const std::string& name, const std::string& text);

}  // namespace hyperstreams::testing
