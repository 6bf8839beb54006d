#include "token_maker.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace hyperstreams::testing {
namespace {

struct pkey_free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

void require(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("openssl: ") + what);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return s;
}

pem_pair pems_of(EVP_PKEY* key) {
    pem_pair p;
    BIO* priv = BIO_new(BIO_s_mem());
    require(PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "write private key");
    p.private_key = bio_text(priv);
    BIO* pub = BIO_new(BIO_s_mem());
    require(PEM_write_bio_PUBKEY(pub, key) == 1, "write public key");
    p.public_key = bio_text(pub);
    return p;
}

pkey_ptr read_private(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    pkey_ptr key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    require(key != nullptr, "read private key");
    return key;
}

std::string digest_sign(const std::string& private_pem, std::string_view data) {
    pkey_ptr key = read_private(private_pem);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    require(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()) == 1, "sign init");
    require(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1, "sign size");
    std::string sig(len, '\0');
    require(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1, "sign");
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    return sig;
}

std::string signing_input(const nlohmann::json& header, const nlohmann::json& claims) {
    return base64url(header.dump()) + "." + base64url(claims.dump());
}

}  // namespace

std::string base64url(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (char& c : out) {
        if (c == '+') c = '-';
        if (c == '/') c = '_';
    }
    return out;
}

pem_pair make_rsa_key(int bits) {
    pkey_ptr key(EVP_RSA_gen(static_cast<unsigned>(bits)));
    require(key != nullptr, "RSA key");
    return pems_of(key.get());
}

pem_pair make_ec_key() {
    pkey_ptr key(EVP_EC_gen("P-256"));
    require(key != nullptr, "EC key");
    return pems_of(key.get());
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string sign_hs256(const std::string& secret, const nlohmann::json& claims, nlohmann::json header) {
    if (header.is_null()) header = {{"alg", "HS256"}, {"typ", "JWT"}};
    const std::string input = signing_input(header, claims);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    require(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len) != nullptr,
            "HMAC");
    return input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::string sign_rs256(const std::string& private_pem, const nlohmann::json& claims) {
    const std::string input = signing_input({{"alg", "RS256"}, {"typ", "JWT"}}, claims);
    return input + "." + base64url(digest_sign(private_pem, input));
}

std::string sign_es256(const std::string& private_pem, const nlohmann::json& claims) {
    const std::string input = signing_input({{"alg", "ES256"}, {"typ", "JWT"}}, claims);
    const std::string der = digest_sign(private_pem, input);
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    require(sig != nullptr, "ECDSA signature");
    unsigned char raw[64];
    require(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32,
            "r||s");
    ECDSA_SIG_free(sig);
    return input + "." + base64url(std::string_view(reinterpret_cast<const char*>(raw), 64));
}

std::string unsigned_token(const nlohmann::json& claims) {
    return signing_input({{"alg", "none"}, {"typ", "JWT"}}, claims) + ".";
}

certificate make_self_signed_certificate(const std::string& names) {
    pkey_ptr key(EVP_EC_gen("P-256"));
    require(key != nullptr, "certificate key");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key.get());
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, names.c_str());
    require(san != nullptr, "subjectAltName");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    require(X509_sign(x, key.get(), EVP_sha256()) > 0, "self-sign");
    certificate c;
    BIO* cert = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cert, x);
    c.cert_pem = bio_text(cert);
    X509_free(x);
    c.key_pem = pems_of(key.get()).private_key;
    return c;
}

std::string write_temp_file(const std::string& name, const std::string& text) {
    const auto dir = std::filesystem::temp_directory_path() / ("hs-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = dir / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
}

}  // namespace hyperstreams::testing
