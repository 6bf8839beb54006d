// The C ABI the JS layer (wasm/src/engine.js) drives: a thin, handle-based
// wrapper over hyperstreams::client_engine, and the names and numbers of the
// engine the JS layer needs (it copies none). No embind: plain exported
// functions keep the module small and the JS side in charge of its own
// objects. The test build adds the frame codec (codec_bindings.cpp).
//
// Memory contract. Arguments travel through one transfer buffer
// (hs_buffer(size) returns it, grown as needed): the JS layer writes strings
// and payloads there back to back and passes their lengths. Events are read
// from a fixed layout (event_view) whose pointers view the transfer buffer
// (received bytes) or engine-owned strings; the JS layer copies them out
// before it calls into the module again. Everything runs on one thread.
#include <emscripten/emscripten.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/client.hpp"
#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"
#include "hyperstreams/names.hpp"

using namespace hyperstreams;

namespace {

// Read by the JS layer as 23 consecutive u32 (engine.js: EVENT_FIELDS).
struct event_view {
    std::uint32_t kind, op, state, previous, flags, code, id, subscription, epoch;
    std::uint32_t seq_lo, seq_hi, count_lo, count_hi;
    std::uint32_t name_ptr, name_len, method_ptr, method_len, text_ptr, text_len;
    std::uint32_t payload_ptr, payload_len;
    std::uint32_t ends_operation, ends_subscription;
};

// A (pointer, length) pair handed to JS for strings it decodes itself.
struct string_view_abi {
    std::uint32_t ptr, len;
};

struct client_handle {
    explicit client_handle(client_config config) : engine(std::move(config)) {}
    client_engine engine;
    event_view view{};
    const service_list_body* services = nullptr;  // of the last service_list event
    presence_list_body presence;  // of the last presence, join or leave event: views into its payload
    std::uint16_t last_error = 0;                 // of the last refused call
};

// A named number of the engine (hs_constant).
struct constant_abi {
    std::uint32_t name_ptr, name_len, value;
};

std::vector<std::uint8_t> transfer;
string_view_abi string_result;
constant_abi constant_result;

std::uint32_t address(const void* p) { return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(p)); }

std::uint32_t low(std::uint64_t v) { return static_cast<std::uint32_t>(v); }
std::uint32_t high(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); }

time_ms to_time(double now) { return static_cast<time_ms>(now); }

// Consecutive pieces of the transfer buffer, in the order JS wrote them.
struct transfer_reader {
    std::size_t offset = 0;
    std::uint32_t u32() {  // little-endian, as wasm memory is
        std::uint32_t v;
        std::memcpy(&v, transfer.data() + offset, sizeof v);
        offset += sizeof v;
        return v;
    }
    std::string_view text(std::uint32_t len) {
        std::string_view s(reinterpret_cast<const char*>(transfer.data()) + offset, len);
        offset += len;
        return s;
    }
    bytes_view bytes(std::uint32_t len) {
        bytes_view b(transfer.data() + offset, len);
        offset += len;
        return b;
    }
};

const string_view_abi* give(std::string_view s) {
    string_result = {address(s.data()), static_cast<std::uint32_t>(s.size())};
    return &string_result;
}

std::uint32_t result_id(client_handle* c, const call_result& r) {
    c->last_error = static_cast<std::uint16_t>(r.error.value());
    return r.error ? 0 : r.id;
}

std::uint16_t code_of(std::error_code ec) { return static_cast<std::uint16_t>(ec.value()); }

}  // namespace

std::uint32_t hyperstreams::wasm::live_clients = 0;

extern "C" {

// --- transfer buffer and names ---------------------------------------------

EMSCRIPTEN_KEEPALIVE std::uint8_t* hs_buffer(std::uint32_t size) {
    if (transfer.size() < size) transfer.resize(size);
    return transfer.data();
}

EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_errc_name(std::uint32_t code) {
    return give(errc_name(static_cast<std::uint16_t>(code)));
}
// The code named by the first `len` bytes of the transfer buffer; 0 for none.
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_errc_number(std::uint32_t len) {
    const std::string_view name = transfer_reader{}.text(len);
    if (name == errc_name(0)) return 0;  // "unknown", errc_name's word for a number that is no code
    for (std::uint32_t code = 1; code <= 0xffff; ++code) {
        if (errc_name(static_cast<std::uint16_t>(code)) == name) return code;
    }
    return 0;
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_state_name(std::uint32_t s) {
    return give(state_name(static_cast<client_state>(s)));
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_event_name(std::uint32_t k) {
    return give(event_name(static_cast<event_kind>(k)));
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_operation_name(std::uint32_t op) {
    return give(operation_name(static_cast<operation>(op)));
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_policy_name(std::uint32_t p) {
    return give(wasm::policy_name(static_cast<slow_policy>(p)));
}
// The i-th number the JS layer takes from the engine, by name (frame flag
// bits, client_config's defaults, the default stream credit), or null past
// the last.
EMSCRIPTEN_KEEPALIVE const constant_abi* hs_constant(std::uint32_t i) {
    const client_config defaults;
    const struct {
        std::string_view name;
        std::size_t value;
    } constants[] = {
        {"frame_flags::json", frame_flags::json},
        {"frame_flags::replayed", frame_flags::replayed},
        {"frame_flags::latest", frame_flags::latest},
        {"frame_flags::join_leave", frame_flags::join_leave},
        {"client_config::backoff_base_ms", defaults.backoff_base_ms},
        {"client_config::backoff_max_ms", defaults.backoff_max_ms},
        {"client_config::max_redirects", defaults.max_redirects},
        {"client_config::handshake_timeout_ms", defaults.handshake_timeout_ms},
        {"client_config::heartbeat_ms", defaults.heartbeat_ms},
        {"client_config::outbox_limit_bytes", defaults.outbox_limit_bytes},
        {"default_stream_credit", default_stream_credit},
    };
    if (i >= std::size(constants)) return nullptr;
    const auto& c = constants[i];
    constant_result = {address(c.name.data()), static_cast<std::uint32_t>(c.name.size()),
                       static_cast<std::uint32_t>(c.value)};
    return &constant_result;
}
// What is wrong with the name in the first `len` bytes of the transfer
// buffer, as a channel (`pattern` 0) or a pattern (1); empty when valid.
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_name_problem(std::uint32_t pattern, std::uint32_t len) {
    const std::string_view name = transfer_reader{}.text(len);
    return give(pattern != 0 ? pattern_problem(name) : channel_problem(name));
}

// --- lifecycle ----------------------------------------------------------------

// In the transfer buffer: the length of each of the `url_count` router URLs
// (u32), the URLs, then name and token.
EMSCRIPTEN_KEEPALIVE client_handle* hs_create(std::uint32_t url_count, std::uint32_t name_len,
                                              std::uint32_t token_len, double seed,
                                              std::uint32_t backoff_base_ms,
                                              std::uint32_t backoff_max_ms,
                                              std::uint32_t max_redirects,
                                              std::uint32_t handshake_timeout_ms,
                                              std::uint32_t heartbeat_ms,
                                              std::uint32_t outbox_limit_bytes) {
    transfer_reader in;
    std::vector<std::uint32_t> url_lengths(url_count);
    for (std::uint32_t& len : url_lengths) len = in.u32();
    client_config config;
    for (std::uint32_t len : url_lengths) config.urls.emplace_back(in.text(len));
    config.name.assign(in.text(name_len));
    config.token.assign(in.text(token_len));
    config.seed = static_cast<std::uint64_t>(seed);
    config.backoff_base_ms = backoff_base_ms;
    config.backoff_max_ms = backoff_max_ms;
    config.max_redirects = max_redirects;
    config.handshake_timeout_ms = handshake_timeout_ms;
    config.heartbeat_ms = heartbeat_ms;
    config.outbox_limit_bytes = outbox_limit_bytes;
    ++wasm::live_clients;
    return new client_handle(std::move(config));
}

EMSCRIPTEN_KEEPALIVE void hs_destroy(client_handle* c) {
    --wasm::live_clients;
    delete c;
}

EMSCRIPTEN_KEEPALIVE std::uint32_t hs_start(client_handle* c, double now) {
    return code_of(c->engine.start(to_time(now)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_close(client_handle* c, double now) {
    return code_of(c->engine.close(to_time(now)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_state(client_handle* c) {
    return static_cast<std::uint32_t>(c->engine.state());
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_session_id(client_handle* c) {
    return give(c->engine.session_id());
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_last_error(client_handle* c) { return c->last_error; }

// --- transport and time --------------------------------------------------------

EMSCRIPTEN_KEEPALIVE void hs_transport_opened(client_handle* c, std::uint32_t id, double now) {
    c->engine.transport_opened(id, to_time(now));
}
// `reason`: 0 or a transport code of errc; the detail is the first
// `detail_len` bytes of the transfer buffer.
EMSCRIPTEN_KEEPALIVE void hs_transport_closed(client_handle* c, std::uint32_t id, double now,
                                              std::uint32_t reason, std::uint32_t detail_len) {
    transfer_reader in;
    c->engine.transport_closed(id, to_time(now), static_cast<errc>(reason), in.text(detail_len));
}
// The message is the first `len` bytes of the transfer buffer.
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_receive(client_handle* c, std::uint32_t len, double now) {
    return code_of(c->engine.receive(bytes_view(transfer.data(), len), to_time(now)));
}
// -1 when there is no deadline.
EMSCRIPTEN_KEEPALIVE double hs_next_deadline(client_handle* c) {
    const time_ms t = c->engine.next_deadline();
    return t == no_deadline ? -1.0 : static_cast<double>(t);
}
EMSCRIPTEN_KEEPALIVE void hs_handle_timeout(client_handle* c, double now) {
    c->engine.handle_timeout(to_time(now));
}

EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_output(client_handle* c) {
    const bytes_view out = c->engine.output();
    string_result = {address(out.data()), static_cast<std::uint32_t>(out.size())};
    return &string_result;
}
EMSCRIPTEN_KEEPALIVE void hs_consume_output(client_handle* c) { c->engine.consume_output(); }

// The next event, or null when none is left.
EMSCRIPTEN_KEEPALIVE const event_view* hs_poll(client_handle* c) {
    client_event e;
    if (!c->engine.poll_event(e)) return nullptr;
    event_view& v = c->view;
    v.kind = static_cast<std::uint32_t>(e.kind);
    v.op = static_cast<std::uint32_t>(e.op);
    v.state = static_cast<std::uint32_t>(e.state);
    v.previous = static_cast<std::uint32_t>(e.previous);
    v.flags = e.flags;
    v.code = e.code;
    v.id = e.id;
    v.subscription = e.subscription;
    v.epoch = e.epoch;
    v.seq_lo = low(e.seq);
    v.seq_hi = high(e.seq);
    v.count_lo = low(e.count);
    v.count_hi = high(e.count);
    v.name_ptr = address(e.name.data());
    v.name_len = static_cast<std::uint32_t>(e.name.size());
    v.method_ptr = address(e.method.data());
    v.method_len = static_cast<std::uint32_t>(e.method.size());
    v.text_ptr = address(e.text.data());
    v.text_len = static_cast<std::uint32_t>(e.text.size());
    v.payload_ptr = address(e.payload.data());
    v.payload_len = static_cast<std::uint32_t>(e.payload.size());
    v.ends_operation = e.ends_operation;
    v.ends_subscription = e.ends_subscription;
    if (e.services) c->services = e.services;
    // The engine checked these bodies; their views hold until the next poll.
    if (e.kind == event_kind::presence) {
        (void)decode_body(e.payload, c->presence);
    } else if (e.kind == event_kind::join || e.kind == event_kind::leave) {
        c->presence.count = 1;
        c->presence.members.resize(1);
        (void)decode_body(e.payload, c->presence.members[0]);
    }
    return &v;
}

// --- calls: 0 when refused, hs_last_error() says why --------------------------

// has_since: resume from (epoch, seq_hi:seq_lo), the last message the caller has.
// policy: the slow_policy in bits 0-1, with the subscribe flags latest and
// join_leave at their bits of the protocol (above the policy's): one
// argument for them all.
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_subscribe(client_handle* c, std::uint32_t pattern_len,
                                                std::uint32_t policy, std::uint32_t has_since,
                                                std::uint32_t epoch, std::uint32_t seq_lo,
                                                std::uint32_t seq_hi) {
    transfer_reader in;
    subscribe_options options;
    options.policy = static_cast<slow_policy>(policy & 3);
    if (has_since) options.since = channel_position{epoch, (std::uint64_t{seq_hi} << 32) | seq_lo};
    options.latest = (policy & frame_flags::latest) != 0;
    options.join_leave = (policy & frame_flags::join_leave) != 0;
    return result_id(c, c->engine.subscribe(in.text(pattern_len), options));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_unsubscribe(client_handle* c, std::uint32_t subscription) {
    return result_id(c, c->engine.unsubscribe(subscription));
}
// The idempotency key follows the payload in the transfer buffer (empty:
// none). A ttl that is not a whole number of seconds in 1..2^32-1 is
// refused (invalid_argument) as the engine refuses a ttl of 0.
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_publish(client_handle* c, std::uint32_t channel_len,
                                              std::uint32_t payload_len, std::uint32_t ack,
                                              std::uint32_t flags, std::uint32_t key_len,
                                              std::uint32_t has_ttl, double ttl_s) {
    transfer_reader in;
    const std::string_view channel = in.text(channel_len);
    const bytes_view payload = in.bytes(payload_len);
    publish_options o;
    o.key = in.text(key_len);
    if (has_ttl)
        o.ttl_s = ttl_s >= 1 && ttl_s <= 4294967295.0 && ttl_s == std::floor(ttl_s) ? static_cast<std::uint32_t>(ttl_s)
                                                                                     : 0u;
    return result_id(c, c->engine.publish(channel, payload, ack != 0, static_cast<std::uint8_t>(flags), o));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_request(client_handle* c, std::uint32_t service_len,
                                              std::uint32_t method_len, std::uint32_t payload_len,
                                              std::uint32_t timeout_ms, double now,
                                              std::uint32_t flags) {
    transfer_reader in;
    const std::string_view service = in.text(service_len);
    const std::string_view method = in.text(method_len);
    return result_id(c, c->engine.request(service, method, in.bytes(payload_len), timeout_ms,
                                          to_time(now), static_cast<std::uint8_t>(flags)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_open_stream(client_handle* c, std::uint32_t service_len,
                                                  std::uint32_t method_len,
                                                  std::uint32_t payload_len, std::uint32_t credit,
                                                  std::uint32_t timeout_ms, double now,
                                                  std::uint32_t flags) {
    transfer_reader in;
    const std::string_view service = in.text(service_len);
    const std::string_view method = in.text(method_len);
    return result_id(c, c->engine.open_stream(service, method, in.bytes(payload_len), credit,
                                              timeout_ms, to_time(now),
                                              static_cast<std::uint8_t>(flags)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_stream_consumed(client_handle* c, std::uint32_t stream,
                                                      std::uint32_t items) {
    return code_of(c->engine.stream_consumed(stream, items));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_cancel(client_handle* c, std::uint32_t id) {
    return code_of(c->engine.cancel(id));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_send_direct(client_handle* c, std::uint32_t to_len,
                                                  std::uint32_t payload_len, std::uint32_t ack,
                                                  std::uint32_t flags) {
    transfer_reader in;
    const std::string_view to = in.text(to_len);
    return result_id(c, c->engine.send_direct(to, in.bytes(payload_len), ack != 0,
                                              static_cast<std::uint8_t>(flags)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_broadcast(client_handle* c, std::uint32_t payload_len,
                                                std::uint32_t ack, std::uint32_t flags) {
    transfer_reader in;
    return result_id(c, c->engine.broadcast(in.bytes(payload_len), ack != 0,
                                            static_cast<std::uint8_t>(flags)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_presence(client_handle* c, std::uint32_t channel_len) {
    transfer_reader in;
    return result_id(c, c->engine.presence(in.text(channel_len)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_discover(client_handle* c) {
    return result_id(c, c->engine.discover());
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_refresh_token(client_handle* c, std::uint32_t token_len,
                                                    double now) {
    transfer_reader in;
    return result_id(c, c->engine.refresh_token(in.text(token_len), to_time(now)));
}

// --- the service list of the last service_list event ------------------------------

EMSCRIPTEN_KEEPALIVE std::uint32_t hs_service_count(client_handle* c) {
    return c->services ? static_cast<std::uint32_t>(c->services->services.size()) : 0;
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_service_name(client_handle* c, std::uint32_t i) {
    return give(c->services->services[i].name);
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_service_instances(client_handle* c, std::uint32_t i) {
    return c->services->services[i].instances;
}
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_method_count(client_handle* c, std::uint32_t i) {
    return static_cast<std::uint32_t>(c->services->services[i].methods.size());
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_method_name(client_handle* c, std::uint32_t i,
                                                           std::uint32_t m) {
    return give(c->services->services[i].methods[m].name);
}
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_method_kind(client_handle* c, std::uint32_t i,
                                                           std::uint32_t m) {
    return give(wasm::method_kind_name(c->services->services[i].methods[m].kind));
}

// --- the members of the event just polled (presence, join, leave) ---------------

EMSCRIPTEN_KEEPALIVE std::uint32_t hs_presence_count(client_handle* c) { return c->presence.count; }
EMSCRIPTEN_KEEPALIVE std::uint32_t hs_member_count(client_handle* c) {
    return static_cast<std::uint32_t>(c->presence.members.size());
}
// field: 0 address, 1 subject, 2 name.
EMSCRIPTEN_KEEPALIVE const string_view_abi* hs_member_field(client_handle* c, std::uint32_t i, std::uint32_t field) {
    const presence_member& m = c->presence.members[i];
    return give(field == 0 ? m.address : field == 1 ? m.subject : m.name);
}

}  // extern "C"
