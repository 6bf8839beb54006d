// Structured logging: one line per event on stderr, either `key=value` text
// or JSON lines, filtered by level. Lines are assembled in a local buffer and
// written with one call, so lines from different threads never interleave.
//
//   HS_LOG(info, "conn.open").kv("id", id).kv("transport", "ws");
//
// The arguments are not evaluated when the level is disabled.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hyperstreams::router::log {

enum class level : std::uint8_t { trace, debug, info, warn, error, off };
enum class format : std::uint8_t { text, json };

// Parses "trace".."off"; false for anything else.
bool parse_level(std::string_view text, level& out) noexcept;
std::string_view level_name(level l) noexcept;

void configure(level min_level, format fmt) noexcept;
bool enabled(level l) noexcept;

class line {
public:
    line(level l, std::string_view event);
    ~line();
    line(const line&) = delete;
    line& operator=(const line&) = delete;

    line& kv(std::string_view key, std::string_view value);
    line& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
    line& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
    line& kv(std::string_view key, std::int64_t value);
    line& kv(std::string_view key, std::uint64_t value);
    line& kv(std::string_view key, int value) { return kv(key, std::int64_t{value}); }
    line& kv(std::string_view key, unsigned value) { return kv(key, std::uint64_t{value}); }
    line& kv(std::string_view key, long long value) { return kv(key, static_cast<std::int64_t>(value)); }
    line& kv(std::string_view key, unsigned long long value) {
        return kv(key, static_cast<std::uint64_t>(value));
    }
    line& kv(std::string_view key, double value);
    line& kv(std::string_view key, bool value);

private:
    void key(std::string_view k);
    void raw_value(std::string_view v);
    std::string buf_;
};

}  // namespace hyperstreams::router::log

#define HS_LOG(lvl, event)                                                              \
    if (!::hyperstreams::router::log::enabled(::hyperstreams::router::log::level::lvl)) \
        ;                                                                               \
    else                                                                                \
        ::hyperstreams::router::log::line(::hyperstreams::router::log::level::lvl, event)
