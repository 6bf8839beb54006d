// The HyperStreams frame codec: sans-I/O, no exceptions, no allocation when
// decoding. docs/PROTOCOL.md is the normative description of these bytes.
//
// A frame is
//
//   offset  size  field
//   0       1     version     protocol version of this frame (1)
//   1       1     kind        frame_kind
//   2       1     flags       frame_flags bits; unknown bits are ignored
//   3       1     name_len    length of the name (0..255)
//   4       4     id          correlation / stream / nonce, u32 little-endian
//   8       4     body_len    length of ext + payload, u32 little-endian
//   12      E     ext         fixed fields of this kind (E = ext_size(kind))
//   12+E    N     name        channel, pattern, address or "service/method"
//   12+E+N  P     payload     opaque bytes, P = body_len - E
//
// All integers are little-endian. A transport message (one WebSocket message,
// one ZeroMQ message) carries a batch: one or more frames back to back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include "hyperstreams/errc.hpp"

namespace hyperstreams {

using bytes_view = std::span<const std::uint8_t>;

inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::size_t header_size = 12;
inline constexpr std::size_t max_name_size = 255;

enum class frame_kind : std::uint8_t {
    // connection
    hello = 0x01,          // client -> router: body hello_body
    welcome = 0x02,        // router -> client: body welcome_body
    goodbye = 0x03,        // either way, ext {code u16}, payload reason text
    ping = 0x04,           // either way, id = nonce
    pong = 0x05,           // answer to ping, same id
    redirect = 0x06,       // router -> client, ext {code u16}, payload target URL/endpoint
    token_refresh = 0x07,  // client -> router, id = correlation, payload token
    ack = 0x08,            // id = correlation, ext {epoch u32, seq u64} (publish acks)
    error = 0x09,          // id = correlation (0: connection), ext {code u16}, payload text
    routers = 0x0A,        // router -> backend that follows the cluster, body routers_body

    // pub/sub
    subscribe = 0x10,      // id = correlation, name = pattern, ext {epoch u32, seq u64} = since
    unsubscribe = 0x11,    // id = correlation, name = pattern
    publish = 0x12,        // id = correlation (if ack flag), name = channel
    message = 0x13,        // router -> client, name = channel, ext {epoch u32, seq u64}
    gap = 0x14,            // router -> client, name = channel, ext {epoch u32, seq u64, count u32}
    presence = 0x15,       // client -> router, id = correlation, name = channel
    presence_list = 0x16,  // router -> client, id = correlation, body presence_list_body
    join = 0x17,           // router -> client, name = channel, body presence_member
    leave = 0x18,          // router -> client, name = channel, body presence_member
    subscribed = 0x19,     // router -> client, name = pattern, flags = policy: the server subscribed it
    unsubscribed = 0x1A,   // router -> client, name = pattern, ext {code u16}: a server-side subscription ended
    subscribe_client = 0x1B,    // backend -> router, id = correlation, name = pattern, payload = address
    unsubscribe_client = 0x1C,  // backend -> router, id = correlation, name = pattern, payload = address

    // request/response and streams
    request = 0x20,        // id = correlation, name = "service/method", ext {deadline_ms u32}
    response = 0x21,       // id = correlation
    stream_open = 0x22,    // id = stream id, name = "service/method", ext {deadline_ms u32, credit u32}
    stream_item = 0x23,    // id = stream id
    stream_end = 0x24,     // id = stream id (normal end; failures are error frames)
    stream_credit = 0x25,  // id = stream id, ext {credit u32}: receiver grants more items
    cancel = 0x26,         // id = request or stream id

    // addressing
    direct = 0x30,         // name = destination address (sent) / source address (delivered)
    broadcast = 0x31,      // name = empty (sent) / source address (delivered)

    // services
    register_service = 0x40,    // backend -> router, id = correlation, name = service, body register_body
    unregister_service = 0x41,  // backend -> router, id = correlation, name = service
    discover = 0x42,            // client -> router, id = correlation
    service_list = 0x43,        // router -> client, id = correlation, body service_list_body
};

// Flag bits. `json` applies to every kind carrying a payload; the others are
// meaningful for the kinds named beside them and must be 0 elsewhere.
namespace frame_flags {
inline constexpr std::uint8_t json = 0x01;           // payload is UTF-8 JSON
inline constexpr std::uint8_t ack_requested = 0x02;  // publish: answer with ack or error
inline constexpr std::uint8_t since = 0x04;          // subscribe: ext holds a resume position
inline constexpr std::uint8_t idempotency_key = 0x04;  // publish: the payload starts with a key (body.hpp)
inline constexpr std::uint8_t replayed = 0x08;       // message: delivered from history
inline constexpr std::uint8_t ttl = 0x08;            // publish: the payload holds a time to live (body.hpp)
inline constexpr std::uint8_t policy_mask = 0x30;    // subscribe, subscribed, subscribe_client: slow-consumer policy (<< 4)
inline constexpr std::uint8_t more = 0x40;           // service_list: another page follows
inline constexpr std::uint8_t resubscribes = 0x40;   // hello: I restore my server-side subscriptions myself
inline constexpr std::uint8_t latest = 0x40;         // subscribe: first the last message of each matching channel
inline constexpr std::uint8_t follow_cluster = 0x80; // hello: send me the cluster's routers
inline constexpr std::uint8_t join_leave = 0x80;     // subscribe: send me the channel's joins and leaves
}  // namespace frame_flags

// What the router does for this subscription when the connection's outgoing
// queue is full. Carried in subscribe flags bits 4-5.
enum class slow_policy : std::uint8_t {
    router_default = 0,
    drop_oldest = 1,   // drop the oldest queued messages, signal a gap
    keep_latest = 2,   // keep only the newest message per channel
    disconnect = 3,    // close the connection with errc::slow_consumer
};

constexpr slow_policy policy_of(std::uint8_t flags) noexcept {
    return static_cast<slow_policy>((flags & frame_flags::policy_mask) >> 4);
}
constexpr std::uint8_t policy_flags(slow_policy p) noexcept {
    return static_cast<std::uint8_t>(static_cast<std::uint8_t>(p) << 4);
}

// A decoded frame. `name` and `payload` view the decoded input; the frame is
// valid only as long as that input is. Kind-specific fields are zero for the
// kinds that do not carry them.
struct frame {
    frame_kind kind{};
    std::uint8_t flags = 0;
    std::uint32_t id = 0;
    std::string_view name;
    bytes_view payload;

    std::uint32_t epoch = 0;        // subscribe, message, gap, ack
    std::uint64_t seq = 0;          // subscribe, message, gap (first missed), ack
    std::uint32_t count = 0;        // gap: messages missed
    std::uint32_t deadline_ms = 0;  // request, stream_open: 0 = no deadline
    std::uint32_t credit = 0;       // stream_open, stream_credit
    std::uint16_t code = 0;         // error, goodbye, redirect, unsubscribed: an errc value

    bool has(std::uint8_t flag) const noexcept { return (flags & flag) != 0; }
};

// True when `k` is a kind this implementation knows.
bool is_known_kind(std::uint8_t k) noexcept;
// Size of the fixed kind-specific fields; 0 for unknown kinds.
std::size_t ext_size(frame_kind k) noexcept;
// "publish", "stream_open", ...; "unknown" for values outside frame_kind.
std::string_view kind_name(frame_kind k) noexcept;

// A cancel the router sends a backend carries why the call ended in its
// payload: the code as a u16 (deadline_exceeded, going_away, forbidden, ...).
// An empty payload is the caller's own cancel: errc::cancelled.
inline constexpr std::size_t cancel_reason_size = 2;
void write_cancel_reason(std::uint16_t code, std::uint8_t (&out)[cancel_reason_size]) noexcept;
std::uint16_t cancel_reason(const frame& cancel) noexcept;

struct decode_limits {
    std::uint32_t max_payload = 1u << 20;  // payload bytes per frame
    std::uint32_t max_frames = 65536;      // frames per batch
};

// Bytes `f` takes on the wire.
std::size_t encoded_size(const frame& f) noexcept;

// Writes `f` to `out`, which must hold encoded_size(f) bytes. Fails with
// name_too_long; nothing is written then.
std::error_code encode_to(const frame& f, std::span<std::uint8_t> out) noexcept;

// Appends `f` to `out` (a batch grows by appending frames).
std::error_code append(std::vector<std::uint8_t>& out, const frame& f);

// Encoded frames, measured or changed in place: for bytes this codec wrote
// (an outgoing queue, a channel's history), which a decode and re-encode
// would only copy. `encoded` starts at a frame's first byte; each helper
// checks that it holds the bytes read or written, and nothing else.

// The frame's size on the wire as its header gives it (header, ext, name
// and payload); 0 when `encoded` is shorter than a header. In 64 bits: the
// largest a header can state overflows a 32-bit size_t (wasm).
std::uint64_t encoded_frame_size(bytes_view encoded) noexcept;

// The payload of the frame (a view into `encoded`); empty when `encoded`
// does not hold the whole frame its header describes, or its kind is not
// one this implementation knows.
bytes_view encoded_payload(bytes_view encoded) noexcept;

// Sets the frame_flags bits `flags`, keeping those already set. Fails with
// errc::truncated when `encoded` is shorter than a header.
std::error_code add_flags(std::span<std::uint8_t> encoded, std::uint8_t flags) noexcept;

// Replaces deadline_ms of a request or stream_open (a call that waited in a
// queue leaves with the time it has left). Fails with errc::invalid_argument
// for a frame of another kind, errc::truncated when `encoded` ends before the
// kind or the deadline; nothing is written then.
std::error_code set_deadline(std::span<std::uint8_t> encoded, std::uint32_t deadline_ms) noexcept;

// Decodes the single frame at the start of `in`. On success `consumed` is the
// frame's size on the wire; `out` views `in`. Every length is checked against
// `limits` before it is used and against `in` before it is read.
std::error_code decode(bytes_view in, frame& out, std::size_t& consumed,
                       const decode_limits& limits = {}) noexcept;

// Iterates over the frames of one transport message.
//
//   batch_reader r{bytes};
//   frame f;
//   while (r.next(f)) handle(f);
//   if (r.error()) reject(r.error());
//
// An empty message is errc::empty_batch. Fewer than header_size bytes after a
// complete frame are errc::trailing_bytes. Frames before an error are
// yielded; after an error next() keeps returning false.
class batch_reader {
public:
    explicit batch_reader(bytes_view in, decode_limits limits = {}) noexcept
        : in_(in), limits_(limits) {}

    bool next(frame& out) noexcept;
    std::error_code error() const noexcept { return error_; }
    std::size_t frames_read() const noexcept { return frames_; }

private:
    bytes_view in_;
    decode_limits limits_;
    std::size_t offset_ = 0;
    std::uint32_t frames_ = 0;
    std::error_code error_;
};

}  // namespace hyperstreams
