#include "hyperstreams/frame.hpp"

#include <array>
#include <cstring>

#include "wire.hpp"

namespace hyperstreams {
namespace {

constexpr std::uint8_t unknown = 0xFF;

// Where each header field starts (the layout is in frame.hpp).
constexpr std::size_t version_offset = 0;
constexpr std::size_t kind_offset = 1;
constexpr std::size_t flags_offset = 2;
constexpr std::size_t name_len_offset = 3;
constexpr std::size_t id_offset = 4;
constexpr std::size_t body_len_offset = 8;

// Size of the kind-specific fixed fields, indexed by kind byte.
constexpr std::array<std::uint8_t, 256> ext_sizes = [] {
    std::array<std::uint8_t, 256> t{};
    t.fill(unknown);
    auto set = [&t](frame_kind k, std::uint8_t size) { t[static_cast<std::uint8_t>(k)] = size; };
    set(frame_kind::hello, 0);
    set(frame_kind::welcome, 0);
    set(frame_kind::goodbye, 2);
    set(frame_kind::ping, 0);
    set(frame_kind::pong, 0);
    set(frame_kind::redirect, 2);
    set(frame_kind::token_refresh, 0);
    set(frame_kind::ack, 12);
    set(frame_kind::error, 2);
    set(frame_kind::routers, 0);
    set(frame_kind::subscribe, 12);
    set(frame_kind::unsubscribe, 0);
    set(frame_kind::publish, 0);
    set(frame_kind::message, 12);
    set(frame_kind::gap, 16);
    set(frame_kind::presence, 0);
    set(frame_kind::presence_list, 0);
    set(frame_kind::join, 0);
    set(frame_kind::leave, 0);
    set(frame_kind::subscribed, 0);
    set(frame_kind::unsubscribed, 2);
    set(frame_kind::subscribe_client, 0);
    set(frame_kind::unsubscribe_client, 0);
    set(frame_kind::request, 4);
    set(frame_kind::response, 0);
    set(frame_kind::stream_open, 8);
    set(frame_kind::stream_item, 0);
    set(frame_kind::stream_end, 0);
    set(frame_kind::stream_credit, 4);
    set(frame_kind::cancel, 0);
    set(frame_kind::direct, 0);
    set(frame_kind::broadcast, 0);
    set(frame_kind::register_service, 0);
    set(frame_kind::unregister_service, 0);
    set(frame_kind::discover, 0);
    set(frame_kind::service_list, 0);
    return t;
}();

void write_ext(const frame& f, std::uint8_t* p) noexcept {
    using namespace wire;
    switch (f.kind) {
        case frame_kind::goodbye:
        case frame_kind::redirect:
        case frame_kind::error:
        case frame_kind::unsubscribed:
            store_u16(p, f.code);
            break;
        case frame_kind::ack:
        case frame_kind::subscribe:
        case frame_kind::message:
            store_u32(p, f.epoch);
            store_u64(p + 4, f.seq);
            break;
        case frame_kind::gap:
            store_u32(p, f.epoch);
            store_u64(p + 4, f.seq);
            store_u32(p + 12, f.count);
            break;
        case frame_kind::request:
            store_u32(p, f.deadline_ms);
            break;
        case frame_kind::stream_open:
            store_u32(p, f.deadline_ms);
            store_u32(p + 4, f.credit);
            break;
        case frame_kind::stream_credit:
            store_u32(p, f.credit);
            break;
        default:
            break;
    }
}

void read_ext(frame& f, const std::uint8_t* p) noexcept {
    using namespace wire;
    switch (f.kind) {
        case frame_kind::goodbye:
        case frame_kind::redirect:
        case frame_kind::error:
        case frame_kind::unsubscribed:
            f.code = load_u16(p);
            break;
        case frame_kind::ack:
        case frame_kind::subscribe:
        case frame_kind::message:
            f.epoch = load_u32(p);
            f.seq = load_u64(p + 4);
            break;
        case frame_kind::gap:
            f.epoch = load_u32(p);
            f.seq = load_u64(p + 4);
            f.count = load_u32(p + 12);
            break;
        case frame_kind::request:
            f.deadline_ms = load_u32(p);
            break;
        case frame_kind::stream_open:
            f.deadline_ms = load_u32(p);
            f.credit = load_u32(p + 4);
            break;
        case frame_kind::stream_credit:
            f.credit = load_u32(p);
            break;
        default:
            break;
    }
}

}  // namespace

bool is_known_kind(std::uint8_t k) noexcept { return ext_sizes[k] != unknown; }

std::size_t ext_size(frame_kind k) noexcept {
    std::uint8_t size = ext_sizes[static_cast<std::uint8_t>(k)];
    return size == unknown ? 0 : size;
}

std::string_view kind_name(frame_kind k) noexcept {
    switch (k) {
        case frame_kind::hello: return "hello";
        case frame_kind::welcome: return "welcome";
        case frame_kind::goodbye: return "goodbye";
        case frame_kind::ping: return "ping";
        case frame_kind::pong: return "pong";
        case frame_kind::redirect: return "redirect";
        case frame_kind::token_refresh: return "token_refresh";
        case frame_kind::ack: return "ack";
        case frame_kind::error: return "error";
        case frame_kind::routers: return "routers";
        case frame_kind::subscribe: return "subscribe";
        case frame_kind::unsubscribe: return "unsubscribe";
        case frame_kind::publish: return "publish";
        case frame_kind::message: return "message";
        case frame_kind::gap: return "gap";
        case frame_kind::presence: return "presence";
        case frame_kind::presence_list: return "presence_list";
        case frame_kind::join: return "join";
        case frame_kind::leave: return "leave";
        case frame_kind::subscribed: return "subscribed";
        case frame_kind::unsubscribed: return "unsubscribed";
        case frame_kind::subscribe_client: return "subscribe_client";
        case frame_kind::unsubscribe_client: return "unsubscribe_client";
        case frame_kind::request: return "request";
        case frame_kind::response: return "response";
        case frame_kind::stream_open: return "stream_open";
        case frame_kind::stream_item: return "stream_item";
        case frame_kind::stream_end: return "stream_end";
        case frame_kind::stream_credit: return "stream_credit";
        case frame_kind::cancel: return "cancel";
        case frame_kind::direct: return "direct";
        case frame_kind::broadcast: return "broadcast";
        case frame_kind::register_service: return "register_service";
        case frame_kind::unregister_service: return "unregister_service";
        case frame_kind::discover: return "discover";
        case frame_kind::service_list: return "service_list";
    }
    return "unknown";
}

std::size_t encoded_size(const frame& f) noexcept {
    return header_size + ext_size(f.kind) + f.name.size() + f.payload.size();
}

std::error_code encode_to(const frame& f, std::span<std::uint8_t> out) noexcept {
    if (f.name.size() > max_name_size) return errc::name_too_long;
    if (!is_known_kind(static_cast<std::uint8_t>(f.kind))) return errc::unknown_kind;
    const std::size_t ext = ext_size(f.kind);
    const std::size_t body = ext + f.payload.size();
    if (body > UINT32_MAX) return errc::frame_too_large;
    if (out.size() < header_size + f.name.size() + body) return errc::length_out_of_bounds;

    std::uint8_t* p = out.data();
    p[version_offset] = protocol_version;
    p[kind_offset] = static_cast<std::uint8_t>(f.kind);
    p[flags_offset] = f.flags;
    p[name_len_offset] = static_cast<std::uint8_t>(f.name.size());
    wire::store_u32(p + id_offset, f.id);
    wire::store_u32(p + body_len_offset, static_cast<std::uint32_t>(body));
    p += header_size;
    write_ext(f, p);
    p += ext;
    if (!f.name.empty()) std::memcpy(p, f.name.data(), f.name.size());
    p += f.name.size();
    if (!f.payload.empty()) std::memcpy(p, f.payload.data(), f.payload.size());
    return {};
}

std::error_code append(std::vector<std::uint8_t>& out, const frame& f) {
    const std::size_t at = out.size();
    out.resize(at + encoded_size(f));
    std::error_code ec = encode_to(f, std::span<std::uint8_t>(out).subspan(at));
    if (ec) out.resize(at);
    return ec;
}

std::uint64_t encoded_frame_size(bytes_view encoded) noexcept {
    if (encoded.size() < header_size) return 0;
    return header_size + encoded[name_len_offset] + std::uint64_t{wire::load_u32(encoded.data() + body_len_offset)};
}

bytes_view encoded_payload(bytes_view encoded) noexcept {
    const std::uint64_t size = encoded_frame_size(encoded);
    if (size == 0 || size > encoded.size() || !is_known_kind(encoded[kind_offset])) return {};
    const std::size_t ext = ext_size(static_cast<frame_kind>(encoded[kind_offset]));
    const std::uint64_t body = wire::load_u32(encoded.data() + body_len_offset);
    if (body < ext) return {};
    const std::size_t start = header_size + ext + encoded[name_len_offset];
    return encoded.subspan(start, static_cast<std::size_t>(body - ext));
}

std::error_code add_flags(std::span<std::uint8_t> encoded, std::uint8_t flags) noexcept {
    if (encoded.size() < header_size) return errc::truncated;
    encoded[flags_offset] |= flags;
    return {};
}

std::error_code set_deadline(std::span<std::uint8_t> encoded, std::uint32_t deadline_ms) noexcept {
    if (encoded.size() < header_size) return errc::truncated;
    const auto kind = static_cast<frame_kind>(encoded[kind_offset]);
    if (kind != frame_kind::request && kind != frame_kind::stream_open) return errc::invalid_argument;
    // deadline_ms leads the ext of both kinds that carry it.
    if (encoded.size() < header_size + sizeof deadline_ms) return errc::truncated;
    wire::store_u32(encoded.data() + header_size, deadline_ms);
    return {};
}

namespace {

// The decoder proper. It reports a failure as a bare errc (errc{} is success)
// because the batch reader calls it once per frame: constructing a
// std::error_code for every successful frame costs a call into the standard
// library each time. The checks run in the order docs/PROTOCOL.md prescribes,
// so every implementation reports the same code for the same bytes.
inline errc decode_frame(const std::uint8_t* p, std::size_t size, frame& out,
                         std::size_t& consumed, const decode_limits& limits) noexcept {
    if (size < header_size) return errc::truncated;
    if (p[version_offset] != protocol_version) return errc::unsupported_version;
    const std::uint8_t ext = ext_sizes[p[kind_offset]];
    if (ext == unknown) return errc::unknown_kind;

    const std::size_t name_len = p[name_len_offset];
    const std::uint64_t body_len = wire::load_u32(p + body_len_offset);
    if (body_len > std::uint64_t{limits.max_payload} + ext) return errc::frame_too_large;
    if (body_len < ext) return errc::malformed_body;
    const std::uint64_t total = header_size + name_len + body_len;
    if (total > size) return errc::length_out_of_bounds;

    out = frame{};
    out.kind = static_cast<frame_kind>(p[kind_offset]);
    out.flags = p[flags_offset];
    out.id = wire::load_u32(p + id_offset);
    const std::uint8_t* q = p + header_size;
    if (ext != 0) read_ext(out, q);
    q += ext;
    out.name = std::string_view(reinterpret_cast<const char*>(q), name_len);
    q += name_len;
    out.payload = bytes_view(q, static_cast<std::size_t>(body_len - ext));
    consumed = static_cast<std::size_t>(total);
    return errc{};
}

}  // namespace

std::error_code decode(bytes_view in, frame& out, std::size_t& consumed,
                       const decode_limits& limits) noexcept {
    consumed = 0;
    const errc e = decode_frame(in.data(), in.size(), out, consumed, limits);
    if (e != errc{}) return e;
    return {};
}

bool batch_reader::next(frame& out) noexcept {
    if (error_) return false;
    if (in_.empty()) {
        error_ = errc::empty_batch;
        return false;
    }
    const std::size_t remaining = in_.size() - offset_;
    if (remaining == 0) return false;
    if (frames_ > 0 && remaining < header_size) {
        error_ = errc::trailing_bytes;
        return false;
    }
    if (frames_ >= limits_.max_frames) {
        error_ = errc::frame_too_large;
        return false;
    }
    std::size_t consumed = 0;
    const errc e = decode_frame(in_.data() + offset_, remaining, out, consumed, limits_);
    if (e != errc{}) {
        error_ = e;
        return false;
    }
    offset_ += consumed;
    ++frames_;
    return true;
}

void write_cancel_reason(std::uint16_t code, std::uint8_t (&out)[cancel_reason_size]) noexcept {
    wire::store_u16(out, code);
}

std::uint16_t cancel_reason(const frame& cancel) noexcept {
    if (cancel.payload.size() != cancel_reason_size) return static_cast<std::uint16_t>(errc::cancelled);
    return wire::load_u16(cancel.payload.data());
}

}  // namespace hyperstreams
