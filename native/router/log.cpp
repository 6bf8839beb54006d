#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "hyperstreams/utf8.hpp"

namespace hyperstreams::router::log {
namespace {

std::atomic<level> g_level{level::info};
std::atomic<format> g_format{format::text};

bool needs_quotes(std::string_view v) noexcept {
    if (v.empty()) return true;
    for (char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || u < 0x20 || u >= 0x7F) return true;
    }
    return false;
}

// Length of the well-formed UTF-8 character that `v` starts with; 0 if none.
std::size_t utf8_char_length(std::string_view v) noexcept {
    for (std::size_t n = 2; n <= 4 && n <= v.size(); ++n)
        if (is_valid_utf8(v.substr(0, n))) return n;
    return 0;
}

// Escapes for both forms: the text form quotes like JSON when it has to.
// Values may come from peers: a byte that is not part of a well-formed
// UTF-8 character becomes U+FFFD, so every line is valid UTF-8 (and the
// JSON form valid JSON) whatever a peer sent.
void append_escaped(std::string& out, std::string_view v) {
    out += '"';
    for (std::size_t i = 0; i < v.size();) {
        const char c = v[i];
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x80) {
            const std::size_t n = utf8_char_length(v.substr(i));
            if (n == 0) {
                out += "\xEF\xBF\xBD";
                ++i;
            } else {
                out += v.substr(i, n);
                i += n;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (u < 0x20 || u == 0x7F) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\u%04x", u);
            out += hex;
        } else {
            out += c;
        }
        ++i;
    }
    out += '"';
}

void append_timestamp(std::string& out) {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t secs = system_clock::to_time_t(now);
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    out += buf;
}

}  // namespace

bool parse_level(std::string_view text, level& out) noexcept {
    for (auto l : {level::trace, level::debug, level::info, level::warn, level::error, level::off}) {
        if (text == level_name(l)) {
            out = l;
            return true;
        }
    }
    return false;
}

std::string_view level_name(level l) noexcept {
    switch (l) {
        case level::trace: return "trace";
        case level::debug: return "debug";
        case level::info: return "info";
        case level::warn: return "warn";
        case level::error: return "error";
        case level::off: return "off";
    }
    return "off";
}

void configure(level min_level, format fmt) noexcept {
    g_level.store(min_level, std::memory_order_relaxed);
    g_format.store(fmt, std::memory_order_relaxed);
}

bool enabled(level l) noexcept {
    return l != level::off && l >= g_level.load(std::memory_order_relaxed);
}

line::line(level l, std::string_view event) {
    buf_.reserve(160);
    if (g_format.load(std::memory_order_relaxed) == format::json) {
        buf_ += "{\"ts\":\"";
        append_timestamp(buf_);
        buf_ += "\",\"level\":\"";
        buf_ += level_name(l);
        buf_ += "\",\"event\":";
        append_escaped(buf_, event);
    } else {
        buf_ += "ts=";
        append_timestamp(buf_);
        buf_ += " level=";
        buf_ += level_name(l);
        buf_ += " event=";
        buf_ += event;
    }
}

line::~line() {
    buf_ += g_format.load(std::memory_order_relaxed) == format::json ? "}\n" : "\n";
    std::fwrite(buf_.data(), 1, buf_.size(), stderr);
}

void line::key(std::string_view k) {
    if (g_format.load(std::memory_order_relaxed) == format::json) {
        buf_ += ',';
        append_escaped(buf_, k);
        buf_ += ':';
    } else {
        buf_ += ' ';
        buf_ += k;
        buf_ += '=';
    }
}

void line::raw_value(std::string_view v) { buf_ += v; }

line& line::kv(std::string_view k, std::string_view value) {
    key(k);
    if (g_format.load(std::memory_order_relaxed) == format::json || needs_quotes(value))
        append_escaped(buf_, value);
    else
        buf_ += value;
    return *this;
}

line& line::kv(std::string_view k, std::int64_t value) {
    key(k);
    raw_value(std::to_string(value));
    return *this;
}

line& line::kv(std::string_view k, std::uint64_t value) {
    key(k);
    raw_value(std::to_string(value));
    return *this;
}

line& line::kv(std::string_view k, double value) {
    key(k);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", value);
    raw_value(buf);
    return *this;
}

line& line::kv(std::string_view k, bool value) {
    key(k);
    raw_value(value ? "true" : "false");
    return *this;
}

bool throttle::admit(std::chrono::steady_clock::time_point now, std::uint64_t& suppressed) noexcept {
    std::lock_guard lock(mu_);
    ++occurrences_;
    if (logged_ && now - last_ < interval_) {
        ++skipped_;
        return false;
    }
    logged_ = true;
    last_ = now;
    suppressed = skipped_;
    skipped_ = 0;
    return true;
}

std::uint64_t throttle::occurrences() const noexcept {
    std::lock_guard lock(mu_);
    return occurrences_;
}

}  // namespace hyperstreams::router::log
