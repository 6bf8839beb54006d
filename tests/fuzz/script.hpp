// What the fuzz targets share: checking an invariant, and the input format
// of the targets that drive a state machine through many calls (fuzz_router,
// fuzz_client): a script of steps. The targets read scripts with
// script_reader, and make_seeds writes the seed corpus with script_writer,
// so both sides agree on every byte.
//
// A script is a sequence of steps. A step is an opcode byte (the target maps
// it onto its steps modulo their number, so every byte means something),
// then the step's operands: bytes, little-endian integers, byte strings
// with a u8 or u16 length. Reading past the end of the input gives zeros
// and empty strings, so every input is a valid script.
//
// Frames can come raw (the bytes of a transport message, as a peer would
// send them) or built: a frame spec that the target encodes, so that the
// fuzzer reaches valid frames without having to get lengths right:
//
//   u8 kind, u8 flags, u32 id, u32 ext, u8 seq, str8 name, str16 payload
//
// where `ext` fills every fixed field the kind carries (deadline_ms,
// credit, epoch, count; its low 16 bits the code).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "hyperstreams/frame.hpp"

namespace hyperstreams::fuzzing {

// An invariant broke: a finding.
[[noreturn]] inline void fail(const char* target, const char* what) {
    std::fprintf(stderr, "%s: invariant broken: %s\n", target, what);
    std::abort();
}

inline std::string_view as_text(bytes_view b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline bytes_view as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The steps of fuzz_router, with their operands. A slot is one of eight
// peers (even slots WebSocket, odd ones ZeroMQ); a step on a slot with no
// connection opens one first.
enum class router_step : std::uint8_t {
    send_raw,     // u8 slot, str16 message: one transport message as it came
    send_frames,  // u8 slot, u8 n, 1 + n % 4 frame specs: one transport message
    hello,        // u8 slot, u8 how: a valid hello; role backend if bit 0, token by how >> 1
    close,        // u8 slot: the transport lost the connection
    reject,       // u8 slot, u16 code: the transport refused its input
    advance,      // u16 ms: the clock moves on; tick() once a deadline passed
    direct,       // u8 slot, u8 to, u8 flags, str16 payload: a direct to slot `to`'s address
    drain,        // begin_drain()
    hurry,        // hurry_drain()
    client_subscription,  // u8 slot, u8 to, u8 flags, str8 pattern: subscribe_client (unsubscribe_client if
                          // bit 0) of slot `to`'s address, flags' policy bits as the frame's
    redis_message,  // u8 what, u8 flags, u8 name, u8 epoch, u8 seq, str16 payload: a message on Redis pub/sub, as
                    // another router (or any client of the Redis server) publishes it, or Redis gone or
                    // back; routers as one only (fuzz_router's setup bit 7; see there)
    count
};

// The steps of fuzz_client.
enum class client_step : std::uint8_t {
    receive_raw,     // str16 message: one transport message from the router
    receive_frames,  // u8 n, 1 + n % 4 frame specs: one transport message
    advance,         // u16 ms: the clock moves on; handle_timeout() once a deadline passed
    lose_transport,  // u8 reason: transport_closed() (reason: a transport errc if odd)
    call,            // u8 which, u8 arg, str16 data: one call of the owner's API
    count
};

class script_reader {
public:
    explicit script_reader(bytes_view in) noexcept : in_(in) {}

    bool done() const noexcept { return at_ >= in_.size(); }

    std::uint8_t u8() noexcept { return done() ? 0 : in_[at_++]; }
    std::uint16_t u16() noexcept {
        const std::uint16_t low = u8();
        return static_cast<std::uint16_t>(low | (u8() << 8));
    }
    std::uint32_t u32() noexcept {
        const std::uint32_t low = u16();
        return low | (std::uint32_t{u16()} << 16);
    }
    // The next `n` bytes, or what is left.
    bytes_view take(std::size_t n) noexcept {
        const std::size_t have = done() ? 0 : std::min(n, in_.size() - at_);
        const bytes_view out = in_.subspan(at_, have);
        at_ += have;
        return out;
    }
    bytes_view str8() noexcept { return take(u8()); }
    bytes_view str16() noexcept { return take(u16()); }

    // Appends the frame a frame spec describes to `out`; false (nothing
    // appended) when it cannot be encoded (an unknown kind).
    bool frame_spec(std::vector<std::uint8_t>& out) {
        frame f;
        f.kind = static_cast<frame_kind>(u8());
        f.flags = u8();
        f.id = u32();
        const std::uint32_t ext = u32();
        f.deadline_ms = f.credit = f.epoch = f.count = ext;
        f.code = static_cast<std::uint16_t>(ext);
        f.seq = u8();
        f.name = as_text(str8());
        f.payload = str16();
        return !append(out, f);
    }

private:
    bytes_view in_;
    std::size_t at_ = 0;
};

class script_writer {
public:
    script_writer& u8(std::uint8_t v) {
        bytes_.push_back(v);
        return *this;
    }
    script_writer& u16(std::uint16_t v) { return u8(static_cast<std::uint8_t>(v)).u8(static_cast<std::uint8_t>(v >> 8)); }
    script_writer& u32(std::uint32_t v) {
        return u16(static_cast<std::uint16_t>(v)).u16(static_cast<std::uint16_t>(v >> 16));
    }
    script_writer& raw(bytes_view b) {
        bytes_.insert(bytes_.end(), b.begin(), b.end());
        return *this;
    }
    script_writer& str8(bytes_view b) {
        const auto n = static_cast<std::uint8_t>(std::min<std::size_t>(b.size(), 0xFF));
        return u8(n).raw(b.first(n));
    }
    script_writer& str16(bytes_view b) {
        const auto n = static_cast<std::uint16_t>(std::min<std::size_t>(b.size(), 0xFFFF));
        return u16(n).raw(b.first(n));
    }
    script_writer& str8(std::string_view s) { return str8(as_bytes(s)); }
    script_writer& str16(std::string_view s) { return str16(as_bytes(s)); }

    // The spec of `f`; `ext` as frame_spec reads it.
    script_writer& frame_spec(const frame& f, std::uint32_t ext = 0) {
        return u8(static_cast<std::uint8_t>(f.kind)).u8(f.flags).u32(f.id).u32(ext)
            .u8(static_cast<std::uint8_t>(f.seq)).str8(f.name).str16(f.payload);
    }

    const std::vector<std::uint8_t>& bytes() const noexcept { return bytes_; }

private:
    std::vector<std::uint8_t> bytes_;
};

}  // namespace hyperstreams::fuzzing
