// The frame codec, exported in the test build only (hyperstreams-test.wasm,
// see CMakeLists.txt) so that the Node tests check the golden vectors
// (tests/vectors) against the engine's own codec, compiled as the shipped
// module is, and build the frames of their fake router with it. Inputs come
// through the transfer buffer of bindings.cpp (hs_buffer).
#include <emscripten/emscripten.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"

using namespace hyperstreams;

namespace {

// Read by the tests as 14 consecutive u32 (tests/node/support/codec.mjs: FRAME_FIELDS).
struct frame_view {
    std::uint32_t kind, flags, id, epoch, seq_lo, seq_hi, count, deadline_ms, credit, code;
    std::uint32_t name_ptr, name_len, payload_ptr, payload_len;
};

struct codec_state {
    std::vector<std::uint8_t> input;   // the batch being decoded (a copy: the transfer buffer moves)
    batch_reader reader{{}};
    frame current;
    frame_view view{};
    std::vector<std::uint8_t> output;  // encoded frame
    std::string body_json;             // decoded control body
    std::uint32_t result[2] = {0, 0};  // (pointer, length) handed to JS
    std::uint32_t error = 0;           // of the last encode or body decode
};
codec_state codec;

std::uint32_t address(const void* p) { return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(p)); }

const std::uint32_t* give(const void* data, std::size_t size) {
    codec.result[0] = address(data);
    codec.result[1] = static_cast<std::uint32_t>(size);
    return codec.result;
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20) {
            out += "\\u00";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += ch;
        }
    }
    out += '"';
}

struct json_object {
    std::string& out;
    bool first = true;
    explicit json_object(std::string& o) : out(o) { out += '{'; }
    ~json_object() { out += '}'; }
    void key(std::string_view k) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
    }
    void field(std::string_view k, std::string_view v) { key(k); append_json_string(out, v); }
    void field(std::string_view k, std::uint64_t v) { key(k); out += std::to_string(v); }
    void flag(std::string_view k, bool v) { key(k); out += v ? "true" : "false"; }
};

std::string_view role_name(client_role r) { return r == client_role::backend ? "backend" : "frontend"; }

void append_methods(std::string& out, const std::vector<method_info>& methods) {
    out += '[';
    for (std::size_t i = 0; i < methods.size(); ++i) {
        if (i) out += ',';
        json_object m(out);
        m.field("name", methods[i].name);
        m.field("kind", wasm::method_kind_name(methods[i].kind));
    }
    out += ']';
}

void append_member(std::string& out, const presence_member& m) {
    json_object o(out);
    o.field("address", m.address);
    o.field("subject", m.subject);
    o.field("name", m.name);
}

// The control body of a frame of `kind`, as the JSON of tests/vectors/README.md.
std::error_code body_to_json(frame_kind kind, bytes_view payload, std::string& out) {
    out.clear();
    switch (kind) {
        case frame_kind::hello: {
            hello_body b;
            if (std::error_code ec = decode_body(payload, b)) return ec;
            json_object o(out);
            o.field("min_version", b.min_version);
            o.field("max_version", b.max_version);
            o.field("role", role_name(b.role));
            o.field("name", b.name);
            o.field("token", b.token);
            o.field("resume_session", b.resume_session);
            return {};
        }
        case frame_kind::welcome: {
            welcome_body b;
            if (std::error_code ec = decode_body(payload, b)) return ec;
            json_object o(out);
            o.field("version", b.version);
            o.field("session_id", b.session_id);
            o.field("router_id", b.router_id);
            o.field("heartbeat_ms", b.heartbeat_ms);
            o.field("max_payload", b.max_payload);
            o.field("max_subscriptions", b.max_subscriptions);
            o.flag("resumed", b.resumed);
            return {};
        }
        case frame_kind::register_service: {
            register_body b;
            if (std::error_code ec = decode_body(payload, b)) return ec;
            json_object o(out);
            o.key("methods");
            append_methods(out, b.methods);
            return {};
        }
        case frame_kind::service_list: {
            service_list_body b;
            if (std::error_code ec = decode_body(payload, b)) return ec;
            json_object o(out);
            o.key("services");
            out += '[';
            for (std::size_t i = 0; i < b.services.size(); ++i) {
                if (i) out += ',';
                json_object s(out);
                s.field("name", b.services[i].name);
                s.field("instances", b.services[i].instances);
                s.key("methods");
                append_methods(out, b.services[i].methods);
            }
            out += ']';
            return {};
        }
        case frame_kind::routers: {
            routers_body b;
            if (std::error_code ec = decode_body(payload, b)) return ec;
            json_object o(out);
            o.key("routers");
            out += '[';
            for (std::size_t i = 0; i < b.routers.size(); ++i) {
                if (i) out += ',';
                json_object r(out);
                r.field("id", b.routers[i].id);
                r.field("backend", b.routers[i].backend);
            }
            out += ']';
            return {};
        }
        case frame_kind::presence_list: {
            presence_list_body b;
            if (std::error_code ec = decode_body(payload, b)) return ec;
            json_object o(out);
            o.field("count", b.count);
            o.key("members");
            out += '[';
            for (std::size_t i = 0; i < b.members.size(); ++i) {
                if (i) out += ',';
                append_member(out, b.members[i]);
            }
            out += ']';
            return {};
        }
        case frame_kind::join:
        case frame_kind::leave: {
            presence_member m;
            if (std::error_code ec = decode_body(payload, m)) return ec;
            append_member(out, m);
            return {};
        }
        default:
            return errc::invalid_argument;
    }
}

}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE std::uint32_t hs_live_clients() { return wasm::live_clients; }

EMSCRIPTEN_KEEPALIVE const std::uint32_t* hs_kind_name(std::uint32_t kind) {
    const std::string_view name = kind_name(static_cast<frame_kind>(kind));
    return give(name.data(), name.size());
}

// Starts decoding the first `len` bytes of the transfer buffer as one batch,
// with the default decode_limits but for the ones given.
EMSCRIPTEN_KEEPALIVE void hs_codec_decode_begin(std::uint32_t len, std::uint32_t has_max_payload,
                                                std::uint32_t max_payload, std::uint32_t has_max_frames,
                                                std::uint32_t max_frames) {
    const std::uint8_t* in = hs_buffer(0);
    codec.input.assign(in, in + len);
    decode_limits limits;
    if (has_max_payload) limits.max_payload = max_payload;
    if (has_max_frames) limits.max_frames = max_frames;
    codec.reader = batch_reader(codec.input, limits);
}

// The next frame of the batch, or null at the end or at an error.
EMSCRIPTEN_KEEPALIVE const frame_view* hs_codec_decode_next() {
    frame& f = codec.current;
    if (!codec.reader.next(f)) return nullptr;
    frame_view& v = codec.view;
    v.kind = static_cast<std::uint32_t>(f.kind);
    v.flags = f.flags;
    v.id = f.id;
    v.epoch = f.epoch;
    v.seq_lo = static_cast<std::uint32_t>(f.seq);
    v.seq_hi = static_cast<std::uint32_t>(f.seq >> 32);
    v.count = f.count;
    v.deadline_ms = f.deadline_ms;
    v.credit = f.credit;
    v.code = f.code;
    v.name_ptr = address(f.name.data());
    v.name_len = static_cast<std::uint32_t>(f.name.size());
    v.payload_ptr = address(f.payload.data());
    v.payload_len = static_cast<std::uint32_t>(f.payload.size());
    return &v;
}

EMSCRIPTEN_KEEPALIVE std::uint32_t hs_codec_decode_error() {
    return static_cast<std::uint32_t>(codec.reader.error().value());
}

// The error code of the last hs_codec_encode or hs_codec_body_json that
// returned null.
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_codec_error() { return codec.error; }

// Encodes one frame; name then payload are in the transfer buffer. Returns
// (pointer, length) of the bytes, or null (hs_codec_error says why).
EMSCRIPTEN_KEEPALIVE const std::uint32_t* hs_codec_encode(
    std::uint32_t kind, std::uint32_t flags, std::uint32_t id, std::uint32_t name_len,
    std::uint32_t payload_len, std::uint32_t epoch, std::uint32_t seq_lo, std::uint32_t seq_hi,
    std::uint32_t count, std::uint32_t deadline_ms, std::uint32_t credit, std::uint32_t code) {
    const std::uint8_t* in = hs_buffer(0);
    frame f;
    f.kind = static_cast<frame_kind>(kind);
    f.flags = static_cast<std::uint8_t>(flags);
    f.id = id;
    f.name = std::string_view(reinterpret_cast<const char*>(in), name_len);
    f.payload = bytes_view(in + name_len, payload_len);
    f.epoch = epoch;
    f.seq = (std::uint64_t{seq_hi} << 32) | seq_lo;
    f.count = count;
    f.deadline_ms = deadline_ms;
    f.credit = credit;
    f.code = static_cast<std::uint16_t>(code);
    codec.output.clear();
    const std::error_code ec = append(codec.output, f);
    codec.error = static_cast<std::uint32_t>(ec.value());
    return ec ? nullptr : give(codec.output.data(), codec.output.size());
}

// Decodes the first `len` bytes of the transfer buffer as the control body of
// a `kind` frame. Returns (pointer, length) of its JSON, or null
// (hs_codec_error says why).
EMSCRIPTEN_KEEPALIVE const std::uint32_t* hs_codec_body_json(std::uint32_t kind, std::uint32_t len) {
    const bytes_view payload(hs_buffer(0), len);
    const std::error_code ec = body_to_json(static_cast<frame_kind>(kind), payload, codec.body_json);
    codec.error = static_cast<std::uint32_t>(ec.value());
    return ec ? nullptr : give(codec.body_json.data(), codec.body_json.size());
}

// Splits the first `len` bytes of the transfer buffer as the payload of a
// publish with `flags`. Returns (pointer, length) of its options as JSON
// ({"key", "ttl_s", "message_hex"}, each option only when its flag is set),
// or null (hs_codec_error says why).
EMSCRIPTEN_KEEPALIVE const std::uint32_t* hs_codec_publish_options_json(std::uint32_t flags, std::uint32_t len) {
    publish_options o;
    bytes_view message;
    const std::error_code ec =
        decode_publish_options(static_cast<std::uint8_t>(flags), bytes_view(hs_buffer(0), len), o, message);
    codec.error = static_cast<std::uint32_t>(ec.value());
    if (ec) return nullptr;
    std::string& out = codec.body_json;
    out.clear();
    {
        json_object j(out);
        if (!o.key.empty()) j.field("key", o.key);
        if (o.ttl_s) j.field("ttl_s", std::uint64_t{*o.ttl_s});
        static constexpr char hex[] = "0123456789abcdef";
        std::string message_hex;
        for (std::uint8_t b : message) {
            message_hex += hex[b >> 4];
            message_hex += hex[b & 15];
        }
        j.field("message_hex", message_hex);
    }
    return give(out.data(), out.size());
}

}  // extern "C"
