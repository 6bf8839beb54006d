// Structured logging: one line per event on stderr, either `key=value` text
// or JSON lines, filtered by level. Lines are assembled in a local buffer and
// written with one call, so lines from different threads never interleave.
//
//   HS_LOG(info, "conn.open").kv("id", id).kv("transport", "ws");
//
// The arguments are not evaluated when the level is disabled.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
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
    // HS_LOG_THROTTLED's: how many like it were not logged before this
    // line; nothing when none.
    line& suppressed(std::uint64_t n) { return n == 0 ? *this : kv("suppressed", n); }

private:
    void key(std::string_view k);
    void raw_value(std::string_view v);
    std::string buf_;
};

// For a warning that can come once per message (every publish refused
// while a Redis master fails over, every malformed message a Redis client
// sends): the first is logged, then at most one per `interval`, saying how
// many were not logged since the line before (`suppressed=N`, after the
// event's name):
//
//   log::throttle failures_;  // one per kind of event, kept by its owner
//   HS_LOG_THROTTLED(failures_, warn, "cluster.publish_failed").kv("channel", name);
//
// Counts that must not be lost belong in /metrics; this only keeps the log
// readable. Any thread.
class throttle {
public:
    explicit throttle(std::chrono::steady_clock::duration interval = std::chrono::seconds(1)) noexcept
        : interval_(interval) {}
    // Whether the occurrence at `now` is logged; if so, `suppressed` is set
    // to how many were not, since the last one that was.
    bool admit(std::chrono::steady_clock::time_point now, std::uint64_t& suppressed) noexcept;
    // Every occurrence so far, logged or not.
    std::uint64_t occurrences() const noexcept;

private:
    const std::chrono::steady_clock::duration interval_;
    mutable std::mutex mu_;
    std::uint64_t occurrences_ = 0;
    bool logged_ = false;
    std::chrono::steady_clock::time_point last_{};
    std::uint64_t skipped_ = 0;
};

}  // namespace hyperstreams::router::log

#define HS_LOG(lvl, event)                                                              \
    if (!::hyperstreams::router::log::enabled(::hyperstreams::router::log::level::lvl)) \
        ;                                                                               \
    else                                                                                \
        ::hyperstreams::router::log::line(::hyperstreams::router::log::level::lvl, event)

// HS_LOG, at most once per `throttle_`'s interval (log::throttle). The
// throttle counts the occurrence whatever the level.
#define HS_LOG_THROTTLED(throttle_, lvl, event)                                              \
    if (std::uint64_t hs_suppressed_ = 0;                                                     \
        !(throttle_).admit(std::chrono::steady_clock::now(), hs_suppressed_) ||               \
        !::hyperstreams::router::log::enabled(::hyperstreams::router::log::level::lvl))       \
        ;                                                                                     \
    else                                                                                      \
        ::hyperstreams::router::log::line(::hyperstreams::router::log::level::lvl, event)     \
            .suppressed(hs_suppressed_)
