#include "hyperstreams/names.hpp"

namespace hyperstreams {
namespace {

constexpr std::size_t max_token_size = 255;

bool is_token_char(char c) noexcept {
    return c > ' ' && c < 0x7F && c != '.' && c != '*' && c != '>' && c != '/';
}

bool is_plain_token(std::string_view t) noexcept {
    if (t.empty() || t.size() > max_token_size) return false;
    for (char c : t)
        if (!is_token_char(c)) return false;
    return true;
}

// Splits off the token before the next '.'; `rest` is left after the dot, and
// `more` tells whether a dot was found.
std::string_view next_token(std::string_view& rest, bool& more) noexcept {
    const std::size_t dot = rest.find('.');
    std::string_view token = rest.substr(0, dot);
    more = dot != std::string_view::npos;
    rest = more ? rest.substr(dot + 1) : std::string_view{};
    return token;
}

}  // namespace

bool is_valid_channel(std::string_view channel) noexcept {
    bool more = true;
    while (more)
        if (!is_plain_token(next_token(channel, more))) return false;
    return true;
}

bool is_valid_pattern(std::string_view pattern) noexcept {
    bool more = true;
    while (more) {
        std::string_view token = next_token(pattern, more);
        if (token == "*") continue;
        if (token == ">") return !more;
        if (!is_plain_token(token)) return false;
    }
    return true;
}

bool pattern_matches(std::string_view pattern, std::string_view channel) noexcept {
    bool pattern_more = true;
    bool channel_more = true;
    while (pattern_more) {
        std::string_view p = next_token(pattern, pattern_more);
        if (p == ">") return channel_more;  // ">" needs at least one more token
        if (!channel_more) return false;
        std::string_view c = next_token(channel, channel_more);
        if (p != "*" && p != c) return false;
    }
    return !channel_more;
}

bool split_service_method(std::string_view name, service_method& out) noexcept {
    const std::size_t slash = name.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == name.size()) return false;
    std::string_view service = name.substr(0, slash);
    std::string_view method = name.substr(slash + 1);
    if (method.find('/') != std::string_view::npos) return false;
    if (!is_valid_channel(service) || !is_plain_token(method)) return false;
    out = {service, method};
    return true;
}

}  // namespace hyperstreams
