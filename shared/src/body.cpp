#include "hyperstreams/body.hpp"

#include <cstring>

#include "wire.hpp"

namespace hyperstreams {
namespace {

bool valid_role(std::uint8_t r) noexcept {
    return r == static_cast<std::uint8_t>(client_role::frontend) ||
           r == static_cast<std::uint8_t>(client_role::backend);
}

bool valid_method_kind(std::uint8_t k) noexcept {
    return k == static_cast<std::uint8_t>(method_kind::unary) ||
           k == static_cast<std::uint8_t>(method_kind::stream);
}

// Writes with `fn`; on failure (a string or list over 65535) restores `out`.
template <typename Fn>
std::error_code guarded_write(std::vector<std::uint8_t>& out, Fn fn) {
    const std::size_t at = out.size();
    wire::writer w(out);
    if (fn(w)) return {};
    out.resize(at);
    return errc::invalid_argument;
}

bool write_methods(wire::writer& w, const std::vector<method_info>& methods) {
    if (methods.size() > 0xFFFF) return false;
    w.u16(static_cast<std::uint16_t>(methods.size()));
    for (const method_info& m : methods) {
        if (!w.str(m.name)) return false;
        w.u8(static_cast<std::uint8_t>(m.kind));
    }
    return true;
}

bool read_methods(wire::reader& r, std::vector<method_info>& out) {
    const std::uint16_t count = r.u16();
    // Every method takes at least 3 bytes: bound the reservation by the input.
    if (!r.ok() || count > r.remaining() / 3) return false;
    out.clear();
    out.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) {
        method_info m;
        m.name = r.str();
        const std::uint8_t kind = r.u8();
        if (!r.ok() || !valid_method_kind(kind)) return false;
        m.kind = static_cast<method_kind>(kind);
        out.push_back(m);
    }
    return true;
}

bool write_member(wire::writer& w, const presence_member& m) {
    return w.str(m.address) && w.str(m.subject) && w.str(m.name);
}

bool read_member(wire::reader& r, presence_member& m) noexcept {
    m.address = r.str();
    m.subject = r.str();
    m.name = r.str();
    return r.ok();
}

std::error_code finish(const wire::reader& r) noexcept {
    return r.ok() && r.at_end() ? std::error_code{} : make_error_code(errc::malformed_body);
}

}  // namespace

std::error_code encode_body(const hello_body& b, std::vector<std::uint8_t>& out) {
    return guarded_write(out, [&](wire::writer& w) {
        w.u16(b.min_version);
        w.u16(b.max_version);
        w.u8(static_cast<std::uint8_t>(b.role));
        return w.str(b.name) && w.str(b.token) && w.str(b.resume_session);
    });
}

std::error_code decode_body(bytes_view in, hello_body& out) noexcept {
    wire::reader r(in.data(), in.size());
    out.min_version = r.u16();
    out.max_version = r.u16();
    const std::uint8_t role = r.u8();
    out.name = r.str();
    out.token = r.str();
    out.resume_session = r.str();
    if (r.ok() && !valid_role(role)) return errc::malformed_body;
    out.role = static_cast<client_role>(role);
    return finish(r);
}

std::error_code encode_body(const welcome_body& b, std::vector<std::uint8_t>& out) {
    return guarded_write(out, [&](wire::writer& w) {
        w.u16(b.version);
        if (!w.str(b.session_id) || !w.str(b.router_id)) return false;
        w.u32(b.heartbeat_ms);
        w.u32(b.max_payload);
        w.u32(b.max_subscriptions);
        w.u8(b.resumed ? 1 : 0);
        return true;
    });
}

std::error_code decode_body(bytes_view in, welcome_body& out) noexcept {
    wire::reader r(in.data(), in.size());
    out.version = r.u16();
    out.session_id = r.str();
    out.router_id = r.str();
    out.heartbeat_ms = r.u32();
    out.max_payload = r.u32();
    out.max_subscriptions = r.u32();
    const std::uint8_t resumed = r.u8();
    if (r.ok() && resumed > 1) return errc::malformed_body;
    out.resumed = resumed == 1;
    return finish(r);
}

std::error_code encode_body(const register_body& b, std::vector<std::uint8_t>& out) {
    return guarded_write(out, [&](wire::writer& w) { return write_methods(w, b.methods); });
}

std::error_code decode_body(bytes_view in, register_body& out) {
    wire::reader r(in.data(), in.size());
    if (!read_methods(r, out.methods)) return errc::malformed_body;
    return finish(r);
}

std::size_t encoded_size(const service_info& s) noexcept {
    std::size_t n = 2 + s.name.size() + 2 + 2;  // str name, u16 instances, u16 method count
    for (const method_info& m : s.methods) n += 2 + m.name.size() + 1;
    return n;
}

std::error_code encode_body(const service_list_body& b, std::vector<std::uint8_t>& out) {
    return guarded_write(out, [&](wire::writer& w) {
        if (b.services.size() > 0xFFFF) return false;
        w.u16(static_cast<std::uint16_t>(b.services.size()));
        for (const service_info& s : b.services) {
            if (!w.str(s.name)) return false;
            w.u16(s.instances);
            if (!write_methods(w, s.methods)) return false;
        }
        return true;
    });
}

std::error_code decode_body(bytes_view in, service_list_body& out) {
    wire::reader r(in.data(), in.size());
    const std::uint16_t count = r.u16();
    // Every service takes at least 6 bytes.
    if (!r.ok() || count > r.remaining() / 6) return errc::malformed_body;
    out.services.clear();
    out.services.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) {
        service_info s;
        s.name = r.str();
        s.instances = r.u16();
        if (!r.ok() || !read_methods(r, s.methods)) return errc::malformed_body;
        out.services.push_back(std::move(s));
    }
    return finish(r);
}

std::error_code encode_body(const routers_body& b, std::vector<std::uint8_t>& out) {
    return guarded_write(out, [&](wire::writer& w) {
        if (b.routers.size() > 0xFFFF) return false;
        w.u16(static_cast<std::uint16_t>(b.routers.size()));
        for (const router_endpoint& r : b.routers)
            if (!w.str(r.id) || !w.str(r.backend)) return false;
        return true;
    });
}

std::error_code decode_body(bytes_view in, routers_body& out) {
    wire::reader r(in.data(), in.size());
    const std::uint16_t count = r.u16();
    // Every router takes at least 4 bytes.
    if (!r.ok() || count > r.remaining() / 4) return errc::malformed_body;
    out.routers.clear();
    out.routers.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) {
        router_endpoint e;
        e.id = r.str();
        e.backend = r.str();
        if (!r.ok()) return errc::malformed_body;
        out.routers.push_back(e);
    }
    return finish(r);
}

// ---------------------------------------------------------------- publish options

namespace {

bool valid_key(std::string_view key) noexcept {
    if (key.empty() || key.size() > max_name_size) return false;
    for (char c : key)
        if (c < 0x21 || c > 0x7E) return false;
    return true;
}

}  // namespace

std::uint8_t publish_option_flags(const publish_options& o) noexcept {
    return static_cast<std::uint8_t>((o.key.empty() ? 0 : frame_flags::idempotency_key) |
                                     (o.ttl_s ? frame_flags::ttl : 0));
}

// One resize and plain copies: this is in the wasm module the npm package ships.
std::error_code encode_publish_payload(const publish_options& o, bytes_view message,
                                       std::vector<std::uint8_t>& out) {
    if ((!o.key.empty() && !valid_key(o.key)) || o.ttl_s == 0u) return errc::invalid_argument;
    const std::size_t key_block = o.key.empty() ? 0 : 1 + o.key.size();
    const std::size_t ttl_block = o.ttl_s ? 4 : 0;
    out.resize(key_block + ttl_block + message.size());
    std::uint8_t* p = out.data();
    if (key_block != 0) {
        p[0] = static_cast<std::uint8_t>(o.key.size());
        std::memcpy(p + 1, o.key.data(), o.key.size());
    }
    if (ttl_block != 0) wire::store_u32(p + key_block, *o.ttl_s);
    if (!message.empty()) std::memcpy(p + key_block + ttl_block, message.data(), message.size());
    return {};
}

std::error_code decode_publish_options(std::uint8_t flags, bytes_view payload, publish_options& out,
                                       bytes_view& message) noexcept {
    out = publish_options{};
    std::size_t at = 0;
    if ((flags & frame_flags::idempotency_key) != 0) {
        if (payload.empty() || payload.size() - 1 < payload[0]) return errc::malformed_body;
        out.key = std::string_view(reinterpret_cast<const char*>(payload.data()) + 1, payload[0]);
        if (!valid_key(out.key)) return errc::malformed_body;
        at = 1 + out.key.size();
    }
    if ((flags & frame_flags::ttl) != 0) {
        if (payload.size() - at < 4) return errc::malformed_body;
        out.ttl_s = wire::load_u32(payload.data() + at);
        if (out.ttl_s == 0u) return errc::malformed_body;
        at += 4;
    }
    message = payload.subspan(at);
    return {};
}

std::size_t encoded_size(const presence_member& m) noexcept {
    return 2 + m.address.size() + 2 + m.subject.size() + 2 + m.name.size();
}

std::error_code encode_body(const presence_member& b, std::vector<std::uint8_t>& out) {
    return guarded_write(out, [&](wire::writer& w) { return write_member(w, b); });
}

std::error_code decode_body(bytes_view in, presence_member& out) noexcept {
    wire::reader r(in.data(), in.size());
    if (!read_member(r, out)) return errc::malformed_body;
    return finish(r);
}

std::error_code encode_body(const presence_list_body& b, std::vector<std::uint8_t>& out) {
    return guarded_write(out, [&](wire::writer& w) {
        if (b.members.size() > 0xFFFF || b.members.size() > b.count) return false;
        w.u32(b.count);
        w.u16(static_cast<std::uint16_t>(b.members.size()));
        for (const presence_member& m : b.members)
            if (!write_member(w, m)) return false;
        return true;
    });
}

std::error_code decode_body(bytes_view in, presence_list_body& out) {
    wire::reader r(in.data(), in.size());
    out.count = r.u32();
    const std::uint16_t listed = r.u16();
    // Every member takes at least 6 bytes; a list longer than the count is a lie.
    if (!r.ok() || listed > r.remaining() / 6 || listed > out.count) return errc::malformed_body;
    out.members.clear();
    out.members.reserve(listed);
    for (std::uint16_t i = 0; i < listed; ++i) {
        presence_member m;
        if (!read_member(r, m)) return errc::malformed_body;
        out.members.push_back(m);
    }
    return finish(r);
}

}  // namespace hyperstreams
