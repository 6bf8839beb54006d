// A Redis address as cluster.redis and the cluster's redirects write it.
// Socket-free, in the router core's library: the configuration checks it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace hyperstreams::router {

struct redis_address {
    std::string host;
    std::uint16_t port = 6379;
    std::string text() const;  // host:port, [host]:port for IPv6
    bool operator==(const redis_address&) const = default;
};

// "redis://host:port", "rediss://host:port" (TLS: redis_address_tls),
// "host:port", "[v6]:port"; the port defaults to 6379.
// errc::invalid_argument for anything else.
std::error_code parse_redis_address(std::string_view text, redis_address& out);
// Whether `text` names TLS ("rediss://").
bool redis_address_tls(std::string_view text) noexcept;
// Whether `addresses` want TLS: all rediss://, or none (false);
// errc::invalid_argument when they mix.
std::error_code redis_addresses_tls(const std::vector<std::string>& addresses, bool& tls);
// The same, for a check alone.
std::error_code redis_check_address(std::string_view text);
// 1..65535, digits only.
bool parse_redis_port(std::string_view text, std::uint16_t& out);

}  // namespace hyperstreams::router
