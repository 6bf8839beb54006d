#include "hyperstreams/names.hpp"

#include "hyperstreams/frame.hpp"

namespace hyperstreams {
namespace {

constexpr std::size_t max_token_size = 255;

constexpr std::string_view empty_token = "has an empty token (two dots in a row, or a dot at an end)";
constexpr std::string_view wildcard_in_channel =
    "has a wildcard ('*' or '>'): a channel is an exact name, wildcards are for subscribing";

bool is_token_char(char c) noexcept {
    return c > ' ' && c < 0x7F && c != '.' && c != '*' && c != '>' && c != '/';
}

// Why `t` is not a plain token (no wildcard); empty when it is one.
std::string_view token_problem(std::string_view t) noexcept {
    if (t.empty()) return empty_token;
    if (t.size() > max_token_size) return "has a token over 255 bytes";
    for (char c : t) {
        if (is_token_char(c)) continue;
        if (c == '*' || c == '>') return wildcard_in_channel;
        return "has a character no token may hold (a space, '/', a control or non-ASCII byte)";
    }
    return {};
}

bool is_plain_token(std::string_view t) noexcept { return token_problem(t).empty(); }

// Splits off the token before the next '.'; `rest` is left after the dot, and
// `more` tells whether a dot was found.
std::string_view next_token(std::string_view& rest, bool& more) noexcept {
    const std::size_t dot = rest.find('.');
    std::string_view token = rest.substr(0, dot);
    more = dot != std::string_view::npos;
    rest = more ? rest.substr(dot + 1) : std::string_view{};
    return token;
}

std::string_view tokens_problem(std::string_view channel) noexcept {
    bool more = true;
    while (more)
        if (std::string_view problem = token_problem(next_token(channel, more)); !problem.empty())
            return problem;
    return {};
}

std::string_view wildcard_tokens_problem(std::string_view pattern) noexcept {
    bool more = true;
    while (more) {
        std::string_view token = next_token(pattern, more);
        if (token == "*") continue;
        if (token == ">") {
            if (more) return "has '>' before its last token ('>' matches all the rest, so it comes last)";
            return {};
        }
        std::string_view problem = token_problem(token);
        if (problem == wildcard_in_channel) return "has '*' or '>' inside a token (a wildcard is a whole token)";
        if (!problem.empty()) return problem;
    }
    return {};
}

}  // namespace

bool is_valid_channel(std::string_view channel) noexcept { return tokens_problem(channel).empty(); }

bool is_valid_pattern(std::string_view pattern) noexcept {
    return wildcard_tokens_problem(pattern).empty();
}

std::string_view channel_problem(std::string_view channel) noexcept {
    if (channel.empty()) return "is empty";
    if (channel.size() > max_name_size) return "is over 255 bytes";
    return tokens_problem(channel);
}

std::string_view pattern_problem(std::string_view pattern) noexcept {
    if (pattern.empty()) return "is empty";
    if (pattern.size() > max_name_size) return "is over 255 bytes";
    return wildcard_tokens_problem(pattern);
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
