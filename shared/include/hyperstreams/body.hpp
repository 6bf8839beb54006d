// Structured payloads of the control frames (hello, welcome, register_service,
// service_list, routers, presence_list, join, leave). Hand laid out like the
// frames themselves: little-endian integers, strings as u16 length + UTF-8
// bytes, lists as u16 count + items.
// Decoding is bounds-checked and returns views into the payload.
//
// Why not cereal: its archives report errors by throwing, and the core builds
// with -fno-exceptions for wasm; decoding untrusted bytes must end in an error
// code, never an abort. Its iostream dependency would also triple the size of
// the wasm module.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "hyperstreams/frame.hpp"

namespace hyperstreams {

enum class client_role : std::uint8_t { frontend = 1, backend = 2 };

// hello: u16 min_version, u16 max_version, u8 role,
//        str name, str token, str resume_session
struct hello_body {
    std::uint16_t min_version = protocol_version;
    std::uint16_t max_version = protocol_version;
    client_role role = client_role::frontend;
    std::string_view name;            // client name, for logs and the admin view
    std::string_view token;           // JWT or empty
    std::string_view resume_session;  // session id of a previous connection, or empty
};

// welcome: u16 version, str session_id, str router_id, u32 heartbeat_ms,
//          u32 max_payload, u32 max_subscriptions, u8 resumed
struct welcome_body {
    std::uint16_t version = protocol_version;
    std::string_view session_id;  // also this client's address for direct messages
    std::string_view router_id;
    std::uint32_t heartbeat_ms = 0;
    std::uint32_t max_payload = 0;
    std::uint32_t max_subscriptions = 0;
    bool resumed = false;
};

enum class method_kind : std::uint8_t { unary = 1, stream = 2 };

struct method_info {
    std::string_view name;
    method_kind kind = method_kind::unary;
};

// register_service: u16 count, then count x (str method, u8 method_kind)
struct register_body {
    std::vector<method_info> methods;
};

struct service_info {
    std::string_view name;
    std::uint16_t instances = 0;
    std::vector<method_info> methods;
};

// service_list: u16 count, then count x (str service, u16 instances,
//               u16 method count, method count x (str method, u8 method_kind))
struct service_list_body {
    std::vector<service_info> services;
};

// A router of the cluster that a backend following the cluster (hello flag
// follow_cluster) joins as well, so that every router can call it.
struct router_endpoint {
    std::string_view id;       // the router's id (its welcome's router_id)
    std::string_view backend;  // its backend endpoint (tcp:// or ipc://)
};

// routers: u16 count, then count x (str router_id, str backend_endpoint):
// the cluster's other live routers, in the order of their ids.
struct routers_body {
    std::vector<router_endpoint> routers;
};

// What a publish may carry before its message (flags idempotency_key and
// ttl): with idempotency_key, u8 key length K (1..255) and K bytes of
// printable ASCII (0x21..0x7E); then with ttl, u32 ttl_s (1..2^32-1). The
// rest of the payload is the message. A publish with neither flag carries
// the message alone, so the common path reads and writes nothing more.
struct publish_options {
    std::string_view key;                // empty: no idempotency key
    std::optional<std::uint32_t> ttl_s;  // none: the namespace's (or no) expiry
};

// The publish flags `o` needs (idempotency_key, ttl).
std::uint8_t publish_option_flags(const publish_options& o) noexcept;
// Writes the payload of a publish with the options `o`: their block, then
// `message`, replacing what `out` held. Fails with errc::invalid_argument
// for a key that is over 255 bytes or not printable ASCII, or a ttl of 0;
// `out` is left as it was then.
std::error_code encode_publish_payload(const publish_options& o, bytes_view message,
                                       std::vector<std::uint8_t>& out);
// Splits a publish payload carrying the option flags of `flags` into its
// options and `message` (a view of `payload`). Fails with
// errc::malformed_body when the block is short, the key is empty or not
// printable ASCII, or the ttl is 0.
std::error_code decode_publish_options(std::uint8_t flags, bytes_view payload, publish_options& out,
                                       bytes_view& message) noexcept;

// A member of a channel's presence: a connection subscribed to the channel
// by its exact name (docs/PROTOCOL.md, Presence).
// join, leave: str address, str subject, str name
struct presence_member {
    std::string_view address;  // its session id: where direct messages to it go
    std::string_view subject;  // its token's subject; empty without a token
    std::string_view name;     // the client name of its hello
};

// presence_list: u32 count, u16 listed, then listed x (str address,
//                str subject, str name). `count` is every member; the list
//                holds fewer when they do not all fit in one frame.
struct presence_list_body {
    std::uint32_t count = 0;
    std::vector<presence_member> members;
};

// Bytes `m` takes in a presence_list or join/leave body.
std::size_t encoded_size(const presence_member& m) noexcept;
// Bytes of a presence_list body listing no member: count and listed.
inline constexpr std::size_t presence_list_header_size = 6;

// Bytes `s` takes in a service_list body (the list's own u16 count aside):
// a router filling a page up to its payload limit adds services while they fit.
std::size_t encoded_size(const service_info& s) noexcept;
// Bytes of a service_list body holding no service: its count.
inline constexpr std::size_t service_list_header_size = 2;

std::error_code encode_body(const hello_body& b, std::vector<std::uint8_t>& out);
std::error_code encode_body(const welcome_body& b, std::vector<std::uint8_t>& out);
std::error_code encode_body(const register_body& b, std::vector<std::uint8_t>& out);
std::error_code encode_body(const service_list_body& b, std::vector<std::uint8_t>& out);
std::error_code encode_body(const routers_body& b, std::vector<std::uint8_t>& out);
std::error_code encode_body(const presence_member& b, std::vector<std::uint8_t>& out);
std::error_code encode_body(const presence_list_body& b, std::vector<std::uint8_t>& out);

// Each fails with errc::malformed_body when the payload is short, has bytes
// left over, or holds an out-of-range enum value.
std::error_code decode_body(bytes_view in, hello_body& out) noexcept;
std::error_code decode_body(bytes_view in, welcome_body& out) noexcept;
std::error_code decode_body(bytes_view in, register_body& out);
std::error_code decode_body(bytes_view in, service_list_body& out);
std::error_code decode_body(bytes_view in, routers_body& out);
std::error_code decode_body(bytes_view in, presence_member& out) noexcept;
std::error_code decode_body(bytes_view in, presence_list_body& out);

}  // namespace hyperstreams
