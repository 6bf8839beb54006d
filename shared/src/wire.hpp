// Little-endian loads and stores, and a bounds-checked cursor for control
// bodies. Private to shared/src.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "hyperstreams/utf8.hpp"

namespace hyperstreams::wire {

inline std::uint16_t load_u16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t load_u32(const std::uint8_t* p) noexcept {
    return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
           (std::uint32_t{p[3]} << 24);
}
inline std::uint64_t load_u64(const std::uint8_t* p) noexcept {
    return std::uint64_t{load_u32(p)} | (std::uint64_t{load_u32(p + 4)} << 32);
}
// Stores write the value's bytes directly on little-endian hosts (x86, ARM,
// WebAssembly): GCC does not merge the byte-by-byte form into one store, and
// the encoder writes every header through these.
template <typename T>
inline void store_le(std::uint8_t* p, T v) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(p, &v, sizeof v);
    } else {
        for (std::size_t i = 0; i < sizeof v; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}
inline void store_u16(std::uint8_t* p, std::uint16_t v) noexcept { store_le(p, v); }
inline void store_u32(std::uint8_t* p, std::uint32_t v) noexcept { store_le(p, v); }
inline void store_u64(std::uint8_t* p, std::uint64_t v) noexcept { store_le(p, v); }

// Reads a control body; the first failed read latches `ok` to false and every
// later read returns zero values.
class reader {
public:
    reader(const std::uint8_t* data, std::size_t size) noexcept : p_(data), end_(data + size) {}

    std::uint8_t u8() noexcept { return take(1) ? p_[-1] : 0; }
    std::uint16_t u16() noexcept { return take(2) ? load_u16(p_ - 2) : 0; }
    std::uint32_t u32() noexcept { return take(4) ? load_u32(p_ - 4) : 0; }
    // Every str is UTF-8 (PROTOCOL.md section 2): one that is not fails the read.
    std::string_view str() noexcept {
        std::uint16_t n = u16();
        if (!take(n)) return {};
        const std::string_view s(reinterpret_cast<const char*>(p_ - n), n);
        if (!is_valid_utf8(s)) {
            ok_ = false;
            return {};
        }
        return s;
    }
    bool ok() const noexcept { return ok_; }
    bool at_end() const noexcept { return p_ == end_; }
    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }

private:
    bool take(std::size_t n) noexcept {
        if (!ok_ || static_cast<std::size_t>(end_ - p_) < n) {
            ok_ = false;
            return false;
        }
        p_ += n;
        return true;
    }
    const std::uint8_t* p_;
    const std::uint8_t* end_;
    bool ok_ = true;
};

class writer {
public:
    explicit writer(std::vector<std::uint8_t>& out) noexcept : out_(out) {}

    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) {
        std::uint8_t b[2];
        store_u16(b, v);
        out_.insert(out_.end(), b, b + 2);
    }
    void u32(std::uint32_t v) {
        std::uint8_t b[4];
        store_u32(b, v);
        out_.insert(out_.end(), b, b + 4);
    }
    // False when the string is over 65535 bytes; nothing is written then.
    bool str(std::string_view s) {
        if (s.size() > 0xFFFF) return false;
        u16(static_cast<std::uint16_t>(s.size()));
        out_.insert(out_.end(), s.begin(), s.end());
        return true;
    }

private:
    std::vector<std::uint8_t>& out_;
};

}  // namespace hyperstreams::wire
