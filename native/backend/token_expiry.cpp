#include "token_expiry.hpp"

#include <string>

namespace hyperstreams::backend::detail {
namespace {

std::optional<std::string> base64url_decode(std::string_view in) {
    std::string out;
    std::uint32_t bits = 0;
    int count = 0;
    for (const char c : in) {
        int v = 0;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-') v = 62;
        else if (c == '_') v = 63;
        else if (c == '=') break;
        else return std::nullopt;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out.push_back(static_cast<char>((bits >> count) & 0xFF));
        }
    }
    return out;
}

void skip_space(std::string_view s, std::size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
}

// Past the JSON string starting at s[i] (a quote); npos when unterminated.
std::size_t string_end(std::string_view s, std::size_t i) {
    for (++i; i < s.size(); ++i) {
        if (s[i] == '\\') ++i;
        else if (s[i] == '"') return i + 1;
    }
    return std::string_view::npos;
}

// Past the JSON value starting at s[i]; npos when malformed. Strings are
// skipped whole, so that a quote or brace inside one misleads nothing.
std::size_t value_end(std::string_view s, std::size_t i) {
    int depth = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (c == '"') {
            i = string_end(s, i);
            if (i == std::string_view::npos) return i;
            if (depth == 0) return i;
            continue;
        }
        if (c == '{' || c == '[') ++depth;
        if (c == '}' || c == ']') {
            if (depth == 0) return i;
            if (--depth == 0) return i + 1;
        }
        if (depth == 0 && (c == ',')) return i;
        ++i;
    }
    return depth == 0 ? i : std::string_view::npos;
}

}  // namespace

std::optional<std::int64_t> token_expiry(std::string_view token) {
    const std::size_t first = token.find('.');
    if (first == std::string_view::npos) return std::nullopt;
    const std::size_t second = token.find('.', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    const auto claims = base64url_decode(token.substr(first + 1, second - first - 1));
    if (!claims) return std::nullopt;
    const std::string_view s = *claims;
    std::size_t i = 0;
    skip_space(s, i);
    if (i >= s.size() || s[i] != '{') return std::nullopt;
    ++i;
    for (;;) {
        skip_space(s, i);
        if (i >= s.size() || s[i] != '"') return std::nullopt;
        const std::size_t key_end = string_end(s, i);
        if (key_end == std::string_view::npos) return std::nullopt;
        const std::string_view key = s.substr(i + 1, key_end - i - 2);
        i = key_end;
        skip_space(s, i);
        if (i >= s.size() || s[i] != ':') return std::nullopt;
        ++i;
        skip_space(s, i);
        if (key == "exp") {
            std::int64_t exp = 0;
            std::size_t digits = 0;
            for (; i < s.size() && s[i] >= '0' && s[i] <= '9' && digits < 18; ++i, ++digits)
                exp = exp * 10 + (s[i] - '0');
            if (digits == 0) return std::nullopt;
            return exp;
        }
        i = value_end(s, i);
        if (i == std::string_view::npos) return std::nullopt;
        skip_space(s, i);
        if (i >= s.size() || s[i] != ',') return std::nullopt;
        ++i;
    }
}

}  // namespace hyperstreams::backend::detail
