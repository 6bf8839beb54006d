// permessage-deflate on the real router's WebSocket listener: negotiated
// only when ws.permessage_deflate.enabled is set and the client offers it;
// then the router compresses the messages it sends from the threshold up
// (RSV1 set on their first frame, fewer bytes on the wire) and sends the
// smaller ones as they are, and inflates what the client sends compressed.
// The client is Beast's, over a socket that keeps every byte it read, so
// that the test sees the frames as they crossed the wire.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// A TCP socket that appends every byte it reads to `received`.
class recording_socket {
public:
    using executor_type = tcp::socket::executor_type;

    explicit recording_socket(asio::io_context& ioc) : socket_(ioc) {}

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    tcp::socket& next_layer() noexcept { return socket_; }
    const std::vector<std::uint8_t>& received() const noexcept { return received_; }

    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        return asio::async_compose<Handler, void(error_code, std::size_t)>(
            [this, buffers, started = false](auto& self, error_code ec = {}, std::size_t n = 0) mutable {
                if (!started) {
                    started = true;
                    socket_.async_read_some(buffers, std::move(self));
                    return;
                }
                // Named: a range-for keeps only its outermost temporary
                // alive, and buffers_range_ref would view a dead prefix.
                const auto read = beast::buffers_prefix(n, buffers);
                for (const auto b : beast::buffers_range_ref(read)) {
                    const auto* p = static_cast<const std::uint8_t*>(b.data());
                    received_.insert(received_.end(), p, p + b.size());
                }
                self.complete(ec, n);
            },
            handler, socket_);
    }

    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        return socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }

private:
    tcp::socket socket_;
    std::vector<std::uint8_t> received_;
};

template <class Handler>
void async_teardown(beast::role_type role, recording_socket& socket, Handler&& handler) {
    websocket::async_teardown(role, socket.next_layer(), std::forward<Handler>(handler));
}

// One data message as it crossed the wire: its first frame's RSV1 bit (set:
// compressed) and the bytes of its frames, headers included.
struct wire_message {
    bool rsv1 = false;
    std::size_t wire_bytes = 0;
};

// The data messages in `bytes` (the upgrade's HTTP response, then server
// frames: unmasked), control frames skipped.
std::vector<wire_message> wire_messages(const std::vector<std::uint8_t>& bytes) {
    std::vector<wire_message> out;
    std::optional<wire_message> open;
    constexpr std::string_view end_of_head = "\r\n\r\n";
    const auto head = std::search(bytes.begin(), bytes.end(), end_of_head.begin(), end_of_head.end());
    if (head == bytes.end()) return out;
    std::size_t at = static_cast<std::size_t>(head - bytes.begin()) + end_of_head.size();
    while (at + 2 <= bytes.size()) {
        const std::uint8_t b0 = bytes[at];
        std::uint64_t length = bytes[at + 1] & 0x7f;
        std::size_t header = 2;
        if (length == 126) {
            if (at + 4 > bytes.size()) break;
            length = (std::uint64_t{bytes[at + 2]} << 8) | bytes[at + 3];
            header = 4;
        } else if (length == 127) {
            if (at + 10 > bytes.size()) break;
            length = 0;
            for (std::size_t i = 0; i < 8; ++i) length = (length << 8) | bytes[at + 2 + i];
            header = 10;
        }
        if (at + header + length > bytes.size()) break;
        const std::uint8_t opcode = b0 & 0x0f;
        if (opcode < 0x8) {
            if (!open) open = wire_message{(b0 & 0x40) != 0, 0};
            open->wire_bytes += header + length;
            if ((b0 & 0x80) != 0) {
                out.push_back(*open);
                open.reset();
            }
        }
        at += header + static_cast<std::size_t>(length);
    }
    return out;
}

// A frontend on Beast's client with permessage-deflate offered (Beast
// compresses everything it sends once negotiated).
class deflate_client {
public:
    explicit deflate_client(const std::string& host_port) {
        websocket::permessage_deflate pmd;
        pmd.client_enable = true;
        ws_.set_option(pmd);
        ws_.read_message_max(64u << 20);
        ws_.binary(true);
        const auto colon = host_port.rfind(':');
        const tcp::endpoint ep(asio::ip::make_address(host_port.substr(0, colon)),
                               static_cast<unsigned short>(std::stoi(host_port.substr(colon + 1))));
        bool done = false;
        ws_.next_layer().next_layer().async_connect(ep, [&](error_code ec) {
            if (ec) {
                done = true;
                return;
            }
            ws_.async_handshake(response_, host_port, "/ws", [&](error_code e) {
                done = true;
                connected_ = !e;
            });
        });
        run_until([&] { return done; });
    }

    bool connected() const noexcept { return connected_; }
    std::string extensions() const { return std::string(response_[http::field::sec_websocket_extensions]); }

    bool send(const std::vector<std::uint8_t>& message) {
        bool done = false;
        bool ok = false;
        ws_.async_write(asio::buffer(message), [&](error_code ec, std::size_t) {
            done = true;
            ok = !ec;
        });
        return run_until([&] { return done; }) && ok;
    }

    // The next message; nullopt on timeout or when the connection ended.
    std::optional<std::vector<std::uint8_t>> read() {
        bool done = false;
        std::optional<std::vector<std::uint8_t>> out;
        ws_.async_read(buffer_, [&](error_code ec, std::size_t) {
            done = true;
            if (ec) return;
            const auto data = buffer_.cdata();
            const auto* p = static_cast<const std::uint8_t*>(data.data());
            out.emplace(p, p + data.size());
            buffer_.consume(buffer_.size());
        });
        if (!run_until([&] { return done; })) return std::nullopt;
        if (out) ++read_;
        return out;
    }

    // The next frame of `kind` and how the message holding it crossed the wire.
    std::optional<std::pair<owned_frame, wire_message>> read_until(frame_kind kind) {
        for (int i = 0; i < 50; ++i) {
            const auto message = read();
            if (!message) return std::nullopt;
            const auto wire = wire_messages(ws_.next_layer().received());
            if (wire.size() < read_) return std::nullopt;
            for (owned_frame& f : decode_batch(*message))
                if (f.kind == kind) return std::pair{std::move(f), wire[read_ - 1]};
        }
        return std::nullopt;
    }

private:
    template <class Done>
    bool run_until(Done done) {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        ioc_.restart();
        while (!done() && std::chrono::steady_clock::now() < deadline) ioc_.run_one_for(100ms);
        if (done()) return true;
        error_code ignored;
        ws_.next_layer().next_layer().close(ignored);
        ioc_.restart();
        ioc_.run_for(1s);  // the cancelled operation's handler
        return false;
    }

    asio::io_context ioc_;
    websocket::stream<recording_socket> ws_{ioc_};
    websocket::response_type response_;
    beast::flat_buffer buffer_;
    std::size_t read_ = 0;
    bool connected_ = false;
};

// Telemetry as the factory simulator publishes it, `n` readings of it.
std::string telemetry(int n) {
    std::string s;
    for (int i = 0; i < n; ++i)
        s += R"({"line":"L1","machine":"M)" + std::to_string(i % 8) +
             R"(","state":"running","temperature":61.)" + std::to_string(i % 10) +
             R"(,"speed":1200,"target_speed":1200,"output":)" + std::to_string(1000 + i) + "}\n";
    return s;
}

frame subscribe_frame(std::uint32_t id, std::string_view pattern) {
    frame f;
    f.kind = frame_kind::subscribe;
    f.id = id;
    f.name = pattern;
    return f;
}

TEST(RouterDeflate, NegotiatedWhenEnabledAndCompressesFromTheThreshold) {
    router_process router({"--ws-permessage-deflate-enabled", "true", "--ws-permessage-deflate-threshold-bytes",
                           "512"});
    ASSERT_TRUE(router.ready());
    deflate_client sub(router.http_address());
    ASSERT_TRUE(sub.connected());
    EXPECT_NE(sub.extensions().find("permessage-deflate"), std::string::npos) << sub.extensions();

    // The hello and the subscribe go compressed (Beast compresses all it
    // sends): the router inflates them.
    ASSERT_TRUE(sub.send(hello_bytes(client_role::frontend, "deflate-sub")));
    const auto welcome = sub.read_until(frame_kind::welcome);
    ASSERT_TRUE(welcome) << router.log();
    EXPECT_FALSE(welcome->second.rsv1) << "a welcome is under the threshold";
    ASSERT_TRUE(sub.send(encode_batch({subscribe_frame(1, "plant.telemetry")})));
    ASSERT_TRUE(sub.read_until(frame_kind::ack));

    test_client pub(frontend_config(router.ws_url(), "deflate-pub"));
    ASSERT_TRUE(pub.wait_ready());
    const std::string small = telemetry(1);
    ASSERT_LT(small.size(), 400u);
    pub.publish("plant.telemetry", small);
    const auto under = sub.read_until(frame_kind::message);
    ASSERT_TRUE(under) << router.log();
    EXPECT_EQ(std::string(under->first.payload.begin(), under->first.payload.end()), small);
    EXPECT_FALSE(under->second.rsv1) << "under the threshold: sent as it is";
    EXPECT_GT(under->second.wire_bytes, small.size());

    const std::string large = telemetry(100);
    pub.publish("plant.telemetry", large);
    const auto over = sub.read_until(frame_kind::message);
    ASSERT_TRUE(over) << router.log();
    EXPECT_EQ(std::string(over->first.payload.begin(), over->first.payload.end()), large);
    EXPECT_TRUE(over->second.rsv1) << "over the threshold: compressed";
    EXPECT_LT(over->second.wire_bytes, large.size() / 4) << "telemetry compresses well";
}

// The response to a WebSocket upgrade offering `extensions`: its
// Sec-WebSocket-Extensions, "" when absent, nullopt when the upgrade failed.
std::optional<std::string> negotiated(const std::string& host_port, const std::string& extensions) {
    asio::io_context ioc;
    tcp::socket socket(ioc);
    const auto colon = host_port.rfind(':');
    error_code ec;
    socket.connect({asio::ip::make_address(host_port.substr(0, colon)),
                    static_cast<unsigned short>(std::stoi(host_port.substr(colon + 1)))},
                   ec);
    if (ec) return std::nullopt;
    http::request<http::empty_body> req(http::verb::get, "/ws", 11);
    req.set(http::field::host, host_port);
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "upgrade");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::sec_websocket_extensions, extensions);
    http::write(socket, req, ec);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // a 101 has no body
    if (!ec) http::read_header(socket, buffer, parser, ec);
    if (ec || parser.get().result() != http::status::switching_protocols) return std::nullopt;
    return std::string(parser.get()[http::field::sec_websocket_extensions]);
}

TEST(RouterDeflate, TheWindowsAreTheSettingsAndAnOfferThatCannotTakeThemGoesWithout) {
    router_process router({"--ws-permessage-deflate-enabled", "true"});
    ASSERT_TRUE(router.ready());
    EXPECT_EQ(negotiated(router.http_address(), "permessage-deflate; client_max_window_bits"),
              "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10")
        << "browsers' and ws's offer";
    EXPECT_EQ(negotiated(router.http_address(), "permessage-deflate"), "")
        << "a client that did not offer client_max_window_bits would compress with 2^15 bytes";

    router_process wide({"--ws-permessage-deflate-enabled", "true", "--ws-permessage-deflate-server-max-window-bits",
                         "15", "--ws-permessage-deflate-client-max-window-bits", "15"});
    ASSERT_TRUE(wide.ready());
    EXPECT_EQ(negotiated(wide.http_address(), "permessage-deflate"), "permessage-deflate");
}

TEST(RouterDeflate, NotNegotiatedByDefault) {
    router_process router;
    ASSERT_TRUE(router.ready());
    deflate_client sub(router.http_address());
    ASSERT_TRUE(sub.connected());
    EXPECT_EQ(sub.extensions(), "");
    ASSERT_TRUE(sub.send(hello_bytes(client_role::frontend, "plain-sub")));
    ASSERT_TRUE(sub.read_until(frame_kind::welcome)) << router.log();
    ASSERT_TRUE(sub.send(encode_batch({subscribe_frame(1, "plant.telemetry")})));
    ASSERT_TRUE(sub.read_until(frame_kind::ack));
    test_client pub(frontend_config(router.ws_url(), "plain-pub"));
    ASSERT_TRUE(pub.wait_ready());
    const std::string large = telemetry(100);
    pub.publish("plant.telemetry", large);
    const auto message = sub.read_until(frame_kind::message);
    ASSERT_TRUE(message) << router.log();
    EXPECT_EQ(std::string(message->first.payload.begin(), message->first.payload.end()), large);
    EXPECT_FALSE(message->second.rsv1);
    EXPECT_GT(message->second.wire_bytes, large.size());
}

TEST(RouterDeflate, BadSettingsStopTheRouterNamingTheKey) {
    const std::vector<std::array<std::string, 3>> cases = {
        {"--ws-permessage-deflate-server-max-window-bits", "8", "ws.permessage_deflate.server_max_window_bits"},
        {"--ws-permessage-deflate-client-max-window-bits", "16", "ws.permessage_deflate.client_max_window_bits"},
        {"--ws-permessage-deflate-level", "0", "ws.permessage_deflate.level"},
        {"--ws-permessage-deflate-mem-level", "10", "ws.permessage_deflate.mem_level"},
        {"--ws-permessage-deflate-enabled", "yes", "--ws-permessage-deflate-enabled"}};
    for (const auto& [flag, value, key] : cases) {
        const run_result r = run_router_once({"--listen", "127.0.0.1:0", flag, value});
        EXPECT_NE(r.status, 0) << flag;
        EXPECT_NE(r.err.find(key), std::string::npos) << flag << ": " << r.err;
    }
}

}  // namespace
}  // namespace hyperstreams::testing
