#include "jwt.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace hyperstreams::router::jwt {
namespace {

using json = nlohmann::json;

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int value_of(char c) noexcept {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

struct pkey_free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct md_ctx_free {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct ecdsa_sig_free {
    void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};

const unsigned char* ubytes(std::string_view s) noexcept {
    return reinterpret_cast<const unsigned char*>(s.data());
}

bool digest_verify(EVP_PKEY* key, std::string_view data, const unsigned char* sig, std::size_t sig_len) {
    std::unique_ptr<EVP_MD_CTX, md_ctx_free> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
    return EVP_DigestVerify(ctx.get(), sig, sig_len, ubytes(data), data.size()) == 1;
}

// A JWS ES256 signature is r || s, 32 bytes each; OpenSSL verifies DER.
bool es256_verify(EVP_PKEY* key, std::string_view data, std::string_view raw) {
    if (raw.size() != 64) return false;
    std::unique_ptr<ECDSA_SIG, ecdsa_sig_free> sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(ubytes(raw), 32, nullptr);
    BIGNUM* s = BN_bin2bn(ubytes(raw) + 32, 32, nullptr);
    if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
        BN_free(r);
        BN_free(s);
        return false;
    }
    unsigned char* der = nullptr;
    const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
    if (der_len <= 0) return false;
    const bool ok = digest_verify(key, data, der, static_cast<std::size_t>(der_len));
    OPENSSL_free(der);
    return ok;
}

enum class date_claim : std::uint8_t { absent, number, not_a_number };

// Reads NumericDate `name` into `out` (jwt.hpp says how any number maps).
date_claim numeric_date(const json& claims, const char* name, std::int64_t& out) {
    constexpr std::int64_t latest = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t earliest = std::numeric_limits<std::int64_t>::min();
    const auto it = claims.find(name);
    if (it == claims.end()) return date_claim::absent;
    if (it->is_number_unsigned()) {
        const std::uint64_t v = it->get<std::uint64_t>();
        out = v > static_cast<std::uint64_t>(latest) ? latest : static_cast<std::int64_t>(v);
        return date_claim::number;
    }
    if (it->is_number_integer()) {
        out = it->get<std::int64_t>();
        return date_claim::number;
    }
    if (it->is_number_float()) {
        // The parser refuses what a double cannot hold, so the value is finite.
        const double v = std::floor(it->get<double>());
        constexpr double two_to_63 = 9223372036854775808.0;
        out = v >= two_to_63 ? latest : v < -two_to_63 ? earliest : static_cast<std::int64_t>(v);
        return date_claim::number;
    }
    return date_claim::not_a_number;
}

}  // namespace

std::string_view failure_name(failure f) noexcept {
    switch (f) {
        case failure::none: return "none";
        case failure::malformed: return "malformed token";
        case failure::unsupported_alg: return "algorithm not accepted";
        case failure::bad_signature: return "bad signature";
        case failure::expired: return "token expired";
        case failure::not_yet_valid: return "token not yet valid";
        case failure::missing_exp: return "token has no exp";
        case failure::bad_time_claim: return "a time claim (exp, nbf, iat) is not a number";
    }
    return "unknown";
}

std::string describe(const verifier::result& r) {
    if (r.why == failure::bad_time_claim)
        return "the token's " + std::string(r.claim) + " is not a number of seconds (NumericDate)";
    return std::string(failure_name(r.why));
}

std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                                (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                                static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t v = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
        if (rest == 2) v |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        if (rest == 2) out += alphabet[(v >> 6) & 63];
    }
    return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
    out.clear();
    if (text.size() % 4 == 1) return false;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        const int v = value_of(c);
        if (v < 0) return false;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    // Leftover bits must be zero (a canonical encoding).
    return (acc & ((1u << bits) - 1)) == 0;
}

struct verifier::keys {
    std::string hs256_secret;
    std::unique_ptr<EVP_PKEY, pkey_free> rsa;
    std::unique_ptr<EVP_PKEY, pkey_free> ec;
};

verifier::verifier() : keys_(std::make_unique<keys>()) {}
verifier::~verifier() = default;
verifier::verifier(verifier&&) noexcept = default;
verifier& verifier::operator=(verifier&&) noexcept = default;

void verifier::set_hs256_secret(std::string secret) { keys_->hs256_secret = std::move(secret); }

std::string verifier::set_public_key_pem(std::string_view pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (bio == nullptr) return "out of memory";
    std::unique_ptr<EVP_PKEY, pkey_free> key(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!key) return "not a PEM public key (SubjectPublicKeyInfo)";
    const int type = EVP_PKEY_get_base_id(key.get());
    if (type == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(key.get()) < 2048) return "RSA keys must have at least 2048 bits";
        keys_->rsa = std::move(key);
        return {};
    }
    if (type == EVP_PKEY_EC) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &len) != 1 ||
            std::string_view(group, len) != "prime256v1")
            return "EC keys must be on P-256 (ES256)";
        keys_->ec = std::move(key);
        return {};
    }
    return "the key is neither RSA nor EC";
}

bool verifier::has_keys() const noexcept {
    return !keys_->hs256_secret.empty() || keys_->rsa || keys_->ec;
}

verifier::result verifier::verify(std::string_view token, std::int64_t now_unix, std::int64_t leeway_s) const {
    result r;
    const std::size_t dot1 = token.find('.');
    const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
        r.why = failure::malformed;
        return r;
    }
    const std::string_view signed_part = token.substr(0, dot2);
    std::string header_text, claims_text, signature;
    if (!base64url_decode(token.substr(0, dot1), header_text) ||
        !base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1), claims_text) ||
        !base64url_decode(token.substr(dot2 + 1), signature)) {
        r.why = failure::malformed;
        return r;
    }
    const json header = json::parse(header_text, nullptr, false);
    if (header.is_discarded() || !header.is_object() || !header.contains("alg") || !header["alg"].is_string()) {
        r.why = failure::malformed;
        return r;
    }
    // No "crit" extension is understood, so a token that requires one is refused.
    if (header.contains("crit")) {
        r.why = failure::unsupported_alg;
        return r;
    }
    const std::string alg = header["alg"].get<std::string>();
    bool good = false;
    if (alg == "HS256" && !keys_->hs256_secret.empty()) {
        std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
        unsigned int mac_len = 0;
        if (HMAC(EVP_sha256(), keys_->hs256_secret.data(), static_cast<int>(keys_->hs256_secret.size()),
                 ubytes(signed_part), signed_part.size(), mac.data(), &mac_len) == nullptr) {
            r.why = failure::bad_signature;
            return r;
        }
        good = signature.size() == mac_len && CRYPTO_memcmp(signature.data(), mac.data(), mac_len) == 0;
    } else if (alg == "RS256" && keys_->rsa) {
        good = digest_verify(keys_->rsa.get(), signed_part, ubytes(signature), signature.size());
    } else if (alg == "ES256" && keys_->ec) {
        good = es256_verify(keys_->ec.get(), signed_part, signature);
    } else {
        r.why = failure::unsupported_alg;
        return r;
    }
    if (!good) {
        r.why = failure::bad_signature;
        return r;
    }
    const json claims = json::parse(claims_text, nullptr, false);
    if (claims.is_discarded() || !claims.is_object()) {
        r.why = failure::malformed;
        return r;
    }
    // The first claim that is not a number names the failure.
    auto read_date = [&](const char* name, std::int64_t& out) {
        const date_claim d = numeric_date(claims, name, out);
        if (d == date_claim::not_a_number && r.why == failure::none) {
            r.why = failure::bad_time_claim;
            r.claim = name;
        }
        return d == date_claim::number;
    };
    std::int64_t exp = 0, nbf = 0, iat = 0;
    const bool has_exp = read_date("exp", exp);
    const bool has_nbf = read_date("nbf", nbf);
    read_date("iat", iat);
    if (r.why != failure::none) return r;
    if (!has_exp) {
        r.why = failure::missing_exp;
        return r;
    }
    if (exp <= now_unix) {
        r.why = failure::expired;
        return r;
    }
    // nbf > now + leeway, without the sum overflowing at the ends of the range.
    if (has_nbf && nbf > now_unix &&
        static_cast<std::uint64_t>(nbf) - static_cast<std::uint64_t>(now_unix) > static_cast<std::uint64_t>(leeway_s)) {
        r.why = failure::not_yet_valid;
        return r;
    }
    r.exp = exp;
    r.claims_json = std::move(claims_text);
    return r;
}

}  // namespace hyperstreams::router::jwt
