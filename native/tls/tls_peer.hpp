// What a TLS client of ours checks of the server it reaches: the native
// client's wss connections to a router, and the router's connections to
// Redis (rediss://). Header-only: OpenSSL's calls, no Asio stream.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <string>

namespace hyperstreams {

// Before the handshake on `handle`: sends `host` as SNI when it is a name
// (never for an IP address: RFC 6066) and, with `verify`, makes the
// certificate have to name it (a DNS name, or an IP address SAN for an
// address). False when OpenSSL does not take the name.
inline bool tls_expect_host(SSL* handle, const std::string& host, bool verify) {
    boost::system::error_code not_ip;
    (void)boost::asio::ip::make_address(host, not_ip);
    // SSL_ctrl, not the SSL_set_tlsext_host_name macro, whose C cast the
    // build refuses.
    if (not_ip)
        (void)SSL_ctrl(handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                       const_cast<char*>(host.c_str()));
    if (!verify) return true;
    return (not_ip ? SSL_set1_host(handle, host.c_str())
                   : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), host.c_str())) == 1;
}

// After a failed handshake on `handle`: why the server's certificate was
// refused, in OpenSSL's words ("self-signed certificate", "hostname
// mismatch", ...); empty when the certificate was not the reason.
inline std::string tls_certificate_refusal(SSL* handle) {
    const long verdict = SSL_get_verify_result(handle);
    return verdict == X509_V_OK ? std::string() : std::string(X509_verify_cert_error_string(verdict));
}

}  // namespace hyperstreams
