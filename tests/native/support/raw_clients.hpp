// Codec-level clients for what the engine would never send: malformed and
// oversize input, and plain HTTP requests. Every call is bounded by a timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"
#include "records.hpp"

namespace hyperstreams::testing {

using namespace std::chrono_literals;

// A decoded frame that owns its bytes.
using owned_frame = wire_frame;

// Every frame of a batch; stops at the first decoding error.
std::vector<owned_frame> decode_batch(const std::vector<std::uint8_t>& bytes);
std::vector<std::uint8_t> encode_batch(const std::vector<frame>& frames);
// A hello frame for `role`.
std::vector<std::uint8_t> hello_bytes(client_role role, std::string_view name = "raw",
                                      std::string_view token = {});

struct http_result {
    int status = 0;
    std::string body;
    std::string content_type;
};
// GET (or HEAD) on 127.0.0.1; status 0 when the request failed.
http_result http_get(const std::string& host_port, const std::string& target,
                     std::chrono::milliseconds timeout = 5s, bool head = false);
// The same with extra request headers.
http_result http_get_with(const std::string& host_port, const std::string& target,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::chrono::milliseconds timeout = 5s, bool head = false);
// A WebSocket upgrade request with `origin` (none when empty): the status is
// 101 when the router accepts it. The connection is dropped afterwards.
http_result ws_upgrade(const std::string& host_port, const std::string& path, const std::string& origin,
                       std::chrono::milliseconds timeout = 5s);

// A plain TCP connection for bytes of any kind (a fuzzer's HTTP requests).
class raw_tcp {
public:
    // Connects (bounded by 5 s); connected() says whether it worked.
    explicit raw_tcp(const std::string& host_port);
    ~raw_tcp();
    raw_tcp(const raw_tcp&) = delete;
    raw_tcp& operator=(const raw_tcp&) = delete;

    bool connected() const noexcept { return fd_ >= 0; }
    // Writes all of `bytes` within `timeout`; false when the peer closed
    // the connection or the time ran out.
    bool send(std::string_view bytes, std::chrono::milliseconds timeout);
    // What arrives within `timeout`, up to 64 KiB; empty when nothing did
    // or the peer closed the connection.
    std::string read_some(std::chrono::milliseconds timeout);
    // Whether the other end closed the connection (end of stream or reset)
    // within `timeout`; what it sent is left unread.
    bool closed_by_peer(std::chrono::milliseconds timeout);

private:
    int fd_ = -1;
};

// A TCP connection that never sends a byte: an HTTP client that never
// finishes its request, holding one of the router's descriptors.
using idle_tcp = raw_tcp;

// A WebSocket client that sends and reads raw transport messages.
class raw_ws {
public:
    // Connects and upgrades on `path`. connected() says whether it worked.
    raw_ws(const std::string& host_port, const std::string& path = "/ws", int receive_buffer_bytes = 0);
    ~raw_ws();
    raw_ws(const raw_ws&) = delete;
    raw_ws& operator=(const raw_ws&) = delete;

    bool connected() const noexcept { return connected_; }
    // Connected, sent hello_bytes(role, name, token) and read the welcome:
    // what a test does before its raw frames, under ASSERT_TRUE.
    ::testing::AssertionResult join(client_role role = client_role::frontend, std::string_view name = "raw",
                                    std::string_view token = {});
    bool send(const std::vector<std::uint8_t>& message, std::chrono::milliseconds timeout = 5s);
    // Sends a text message (which the protocol does not allow).
    bool send_text(std::string_view text, std::chrono::milliseconds timeout = 5s);
    // A WebSocket ping (a control frame: Beast answers it with a pong on its
    // own, which read() passes over).
    bool ping(std::string_view payload, std::chrono::milliseconds timeout = 5s);
    // The next message; nothing on timeout or when the connection ended.
    std::optional<std::vector<std::uint8_t>> read(std::chrono::milliseconds timeout = 5s);
    // The next frame of `kind`, from messages already read or read now;
    // frames before it are skipped, frames after it are kept for the next call.
    std::optional<owned_frame> read_until(frame_kind kind, std::chrono::milliseconds timeout = 5s);
    // After read() returned nothing: was the connection closed, and how.
    bool closed() const noexcept { return closed_; }
    int close_code() const noexcept { return close_code_; }
    const std::string& close_reason() const noexcept { return close_reason_; }

private:
    bool send_message(const void* data, std::size_t size, bool text, std::chrono::milliseconds timeout);

    struct impl;
    std::unique_ptr<impl> impl_;
    std::vector<owned_frame> pending_;
    bool connected_ = false;
    bool closed_ = false;
    int close_code_ = 0;
    std::string close_reason_;
};

// A ZeroMQ DEALER that sends and reads raw transport messages.
class raw_dealer {
public:
    // `receive_hwm` > 0 sets ZMQ_RCVHWM and `receive_buffer_bytes` > 0 sets
    // ZMQ_RCVBUF: a dealer that does not read then holds little.
    explicit raw_dealer(const std::string& endpoint, int receive_hwm = 0, int receive_buffer_bytes = 0);
    // A DEALER that presents `routing_id` (ZMQ_ROUTING_ID) to the router, as
    // a backend that names itself, or one that pretends to be another, does.
    raw_dealer(const std::string& endpoint, const std::string& routing_id);
    ~raw_dealer();
    raw_dealer(const raw_dealer&) = delete;
    raw_dealer& operator=(const raw_dealer&) = delete;

    // Sent hello_bytes(backend, name, token) and read the welcome: what a
    // test does before its raw frames, under ASSERT_TRUE.
    ::testing::AssertionResult join(std::string_view name = "raw", std::string_view token = {});
    // After libzmq dropped the connection (a message over ZMQ_MAXMSGSIZE):
    // says hello until welcomed, as a hello the DEALER hands to the broken
    // connection before it notices is lost (a second hello on the new
    // connection only gets an unexpected_frame error). Up to 20 tries,
    // 500 ms each.
    ::testing::AssertionResult rejoin(std::string_view name = "raw");
    void send(const std::vector<std::uint8_t>& message);
    // Sends several parts as one multipart message.
    void send_parts(const std::vector<std::vector<std::uint8_t>>& parts);
    std::optional<std::vector<std::uint8_t>> read(std::chrono::milliseconds timeout = 5s);
    std::optional<owned_frame> read_until(frame_kind kind, std::chrono::milliseconds timeout = 5s);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::vector<owned_frame> pending_;
};

}  // namespace hyperstreams::testing
