#include "redis_address.hpp"

#include <charconv>

#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {

bool parse_redis_port(std::string_view text, std::uint16_t& out) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

std::error_code redis_check_address(std::string_view text) {
    redis_address unused;
    return parse_redis_address(text, unused);
}

bool redis_address_tls(std::string_view text) noexcept { return text.starts_with("rediss://"); }

std::error_code redis_addresses_tls(const std::vector<std::string>& addresses, bool& tls) {
    std::size_t n = 0;
    for (const std::string& a : addresses)
        if (redis_address_tls(a)) ++n;
    tls = n != 0;
    return n == 0 || n == addresses.size() ? std::error_code() : make_error_code(errc::invalid_argument);
}

std::string redis_address::text() const {
    const std::string shown = host.find(':') == std::string::npos ? host : "[" + host + "]";
    return shown + ":" + std::to_string(port);
}

namespace {

// A host name's or IPv4 address's characters; in brackets, an IPv6
// address's too (':', and '%' before a zone). Anything else cannot be
// resolved, and could not be written back as an address that reads the
// same ("[[]" would be the host "[").
bool host_char(char c, bool bracketed) noexcept {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
    return c == '-' || c == '.' || c == '_' || (bracketed && (c == ':' || c == '%'));
}

bool valid_host(std::string_view host, bool bracketed) noexcept {
    // Brackets are for IPv6 addresses, which have a ':' (and are written
    // back in brackets for it: redis_address::text).
    if (host.empty() || (bracketed && host.find(':') == std::string_view::npos)) return false;
    for (char c : host)
        if (!host_char(c, bracketed)) return false;
    return true;
}

}  // namespace

std::error_code parse_redis_address(std::string_view text, redis_address& out) {
    const auto bad = make_error_code(errc::invalid_argument);
    if (text.starts_with("redis://"))
        text.remove_prefix(8);
    else if (redis_address_tls(text))
        text.remove_prefix(9);
    if (text.empty() || text.find_first_of("/@ ") != std::string_view::npos) return bad;
    redis_address a;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || !valid_host(text.substr(1, close - 1), true)) return bad;
        a.host = std::string(text.substr(1, close - 1));
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty() && (rest.front() != ':' || !parse_redis_port(rest.substr(1), a.port))) return bad;
    } else {
        const std::size_t colon = text.find(':');
        a.host = std::string(text.substr(0, colon));
        if (!valid_host(a.host, false)) return bad;
        if (colon != std::string_view::npos) {
            const std::string_view port = text.substr(colon + 1);
            if (port.find(':') != std::string_view::npos || !parse_redis_port(port, a.port)) return bad;
        }
    }
    out = std::move(a);
    return {};
}

}  // namespace hyperstreams::router
