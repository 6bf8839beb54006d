#include "raw_clients.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <zmq.hpp>

#include "hyperstreams/body.hpp"

namespace hyperstreams::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

tcp::endpoint endpoint_of(const std::string& host_port) {
    const std::size_t colon = host_port.rfind(':');
    return {asio::ip::make_address(host_port.substr(0, colon)),
            static_cast<unsigned short>(std::stoi(host_port.substr(colon + 1)))};
}

// Runs `ioc` until `done` or the timeout; cancels what is still pending then.
template <typename Done>
bool run_until(asio::io_context& ioc, std::chrono::milliseconds timeout, Done done, beast::tcp_stream& s) {
    ioc.restart();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline)
        ioc.run_one_for(deadline - std::chrono::steady_clock::now());
    if (!done()) {
        s.cancel();
        ioc.restart();
        ioc.run_for(std::chrono::milliseconds(500));
        return false;
    }
    return true;
}

}  // namespace

std::vector<owned_frame> decode_batch(const std::vector<std::uint8_t>& bytes);

namespace {

// Frames of `kind` from `pending` first, then from messages `read` returns.
template <typename Read>
std::optional<owned_frame> next_of_kind(std::vector<owned_frame>& pending, frame_kind kind,
                                        std::chrono::milliseconds timeout, Read read) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (std::size_t i = 0; i < pending.size(); ++i) {
            if (pending[i].kind != kind) continue;
            owned_frame found = std::move(pending[i]);
            pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(i) + 1);
            return found;
        }
        pending.clear();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto msg = read(left);
        if (!msg) return std::nullopt;
        pending = decode_batch(*msg);
    }
}

}  // namespace

std::vector<owned_frame> decode_batch(const std::vector<std::uint8_t>& bytes) {
    std::vector<owned_frame> out;
    decode_limits limits;
    limits.max_payload = 1u << 30;
    batch_reader r(bytes, limits);
    frame f;
    while (r.next(f)) out.push_back(wire_frame::from(f));
    return out;
}

std::vector<std::uint8_t> encode_batch(const std::vector<frame>& frames) {
    std::vector<std::uint8_t> out;
    for (const frame& f : frames) (void)append(out, f);
    return out;
}

std::vector<std::uint8_t> hello_bytes(client_role role, std::string_view name, std::string_view token) {
    hello_body h;
    h.role = role;
    h.name = name;
    h.token = token;
    std::vector<std::uint8_t> body;
    (void)encode_body(h, body);
    frame f;
    f.kind = frame_kind::hello;
    f.payload = body;
    return encode_batch({f});
}

http_result http_get(const std::string& host_port, const std::string& target,
                     std::chrono::milliseconds timeout, bool head) {
    return http_get_with(host_port, target, {}, timeout, head);
}

http_result ws_upgrade(const std::string& host_port, const std::string& path, const std::string& origin,
                       std::chrono::milliseconds timeout) {
    std::vector<std::pair<std::string, std::string>> headers{{"Upgrade", "websocket"},
                                                             {"Connection", "Upgrade"},
                                                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                                             {"Sec-WebSocket-Version", "13"}};
    if (!origin.empty()) headers.emplace_back("Origin", origin);
    return http_get_with(host_port, path, headers, timeout, false);
}

http_result http_get_with(const std::string& host_port, const std::string& target,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::chrono::milliseconds timeout, bool head) {
    http_result result;
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    beast::flat_buffer buffer;
    http::request<http::empty_body> req{head ? http::verb::head : http::verb::get, target, 11};
    req.set(http::field::host, host_port);
    req.keep_alive(false);
    for (const auto& [name, value] : headers) req.set(name, value);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    parser.skip(head);
    bool done = false;
    stream.async_connect(endpoint_of(host_port), [&](error_code ec) {
        if (ec) {
            done = true;
            return;
        }
        http::async_write(stream, req, [&](error_code ec2, std::size_t) {
            if (ec2) {
                done = true;
                return;
            }
            http::async_read(stream, buffer, parser, [&](error_code ec3, std::size_t) {
                done = true;
                if (ec3) return;
                result.status = static_cast<int>(parser.get().result_int());
                result.body = parser.get().body();
                result.content_type = std::string(parser.get()[http::field::content_type]);
            });
        });
    });
    run_until(ioc, timeout, [&] { return done; }, stream);
    return result;
}

namespace {

// A non-blocking TCP connection to 127.0.0.1, made within 5 s; -1 when not.
int connect_tcp(const std::string& host_port) {
    const tcp::endpoint to = endpoint_of(host_port);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(to.port());
    address.sin_addr.s_addr = htonl(to.address().to_v4().to_uint());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 && errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t size = sizeof error;
    if (::poll(&p, 1, 5000) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

raw_tcp::raw_tcp(const std::string& host_port) : fd_(connect_tcp(host_port)) {}

raw_tcp::~raw_tcp() {
    if (fd_ >= 0) ::close(fd_);
}

bool raw_tcp::send(std::string_view bytes, std::chrono::milliseconds timeout) {
    if (fd_ < 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd_, POLLOUT, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
    }
    return true;
}

std::string raw_tcp::read_some(std::chrono::milliseconds timeout) {
    if (fd_ < 0) return {};
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    std::string out(64 * 1024, '\0');
    const ssize_t n = ::recv(fd_, out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

bool raw_tcp::closed_by_peer(std::chrono::milliseconds timeout) {
    if (fd_ < 0) return true;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    char byte = 0;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

struct raw_ws::impl {
    asio::io_context ioc;
    websocket::stream<beast::tcp_stream> ws{ioc};
    beast::flat_buffer buffer;
};

raw_ws::raw_ws(const std::string& host_port, const std::string& path, int receive_buffer_bytes)
    : impl_(std::make_unique<impl>()) {
    auto& lowest = beast::get_lowest_layer(impl_->ws);
    const tcp::endpoint ep = endpoint_of(host_port);
    error_code ec;
    lowest.socket().open(ep.protocol(), ec);
    if (receive_buffer_bytes > 0)
        lowest.socket().set_option(asio::socket_base::receive_buffer_size(receive_buffer_bytes), ec);
    bool done = false;
    lowest.async_connect(ep, [&](error_code e) {
        if (e) {
            done = true;
            return;
        }
        impl_->ws.read_message_max(64u << 20);
        impl_->ws.binary(true);
        impl_->ws.async_handshake(host_port, path, [&](error_code e2) {
            done = true;
            connected_ = !e2;
        });
    });
    run_until(impl_->ioc, 5s, [&] { return done; }, lowest);
}

raw_ws::~raw_ws() {
    error_code ignored;
    beast::get_lowest_layer(impl_->ws).socket().close(ignored);
}

::testing::AssertionResult raw_ws::join(client_role role, std::string_view name, std::string_view token) {
    if (!connected()) return ::testing::AssertionFailure() << "the WebSocket connection failed";
    if (!send(hello_bytes(role, name, token))) return ::testing::AssertionFailure() << "the hello was not sent";
    if (!read_until(frame_kind::welcome)) return ::testing::AssertionFailure() << "no welcome";
    return ::testing::AssertionSuccess();
}

bool raw_ws::send(const std::vector<std::uint8_t>& message, std::chrono::milliseconds timeout) {
    return send_message(message.data(), message.size(), false, timeout);
}

bool raw_ws::send_text(std::string_view text, std::chrono::milliseconds timeout) {
    return send_message(text.data(), text.size(), true, timeout);
}

bool raw_ws::ping(std::string_view payload, std::chrono::milliseconds timeout) {
    bool done = false;
    bool ok = false;
    const std::string_view part = payload.substr(0, websocket::ping_data::static_capacity);
    impl_->ws.async_ping(websocket::ping_data(part.data(), part.size()),
                         [&](error_code ec) {
                             done = true;
                             ok = !ec;
                         });
    run_until(impl_->ioc, timeout, [&] { return done; }, beast::get_lowest_layer(impl_->ws));
    return ok;
}

bool raw_ws::send_message(const void* data, std::size_t size, bool text, std::chrono::milliseconds timeout) {
    bool done = false;
    bool ok = false;
    impl_->ws.text(text);
    impl_->ws.async_write(asio::const_buffer(data, size), [&](error_code ec, std::size_t) {
        done = true;
        ok = !ec;
    });
    run_until(impl_->ioc, timeout, [&] { return done; }, beast::get_lowest_layer(impl_->ws));
    return ok;
}

std::optional<std::vector<std::uint8_t>> raw_ws::read(std::chrono::milliseconds timeout) {
    if (closed_) return std::nullopt;
    bool done = false;
    std::optional<std::vector<std::uint8_t>> out;
    impl_->ws.async_read(impl_->buffer, [&](error_code ec, std::size_t) {
        done = true;
        if (ec) {
            closed_ = true;
            close_code_ = impl_->ws.reason().code;
            close_reason_ = std::string(impl_->ws.reason().reason.c_str());
            return;
        }
        const auto data = impl_->buffer.cdata();
        const auto* p = static_cast<const std::uint8_t*>(data.data());
        out.emplace(p, p + data.size());
        impl_->buffer.consume(impl_->buffer.size());
    });
    if (!run_until(impl_->ioc, timeout, [&] { return done; }, beast::get_lowest_layer(impl_->ws)))
        closed_ = true;  // a cancelled read leaves the stream unusable
    return out;
}

std::optional<owned_frame> raw_ws::read_until(frame_kind kind, std::chrono::milliseconds timeout) {
    return next_of_kind(pending_, kind, timeout, [this](std::chrono::milliseconds left) { return read(left); });
}

struct raw_dealer::impl {
    zmq::context_t ctx{1};
    zmq::socket_t socket{ctx, zmq::socket_type::dealer};
};

raw_dealer::raw_dealer(const std::string& endpoint, int receive_hwm, int receive_buffer_bytes)
    : impl_(std::make_unique<impl>()) {
    impl_->socket.set(zmq::sockopt::linger, 0);
    if (receive_hwm > 0) impl_->socket.set(zmq::sockopt::rcvhwm, receive_hwm);
    if (receive_buffer_bytes > 0) impl_->socket.set(zmq::sockopt::rcvbuf, receive_buffer_bytes);
    impl_->socket.connect(endpoint);
}

raw_dealer::raw_dealer(const std::string& endpoint, const std::string& routing_id)
    : impl_(std::make_unique<impl>()) {
    impl_->socket.set(zmq::sockopt::linger, 0);
    impl_->socket.set(zmq::sockopt::routing_id, routing_id);
    impl_->socket.connect(endpoint);
}

raw_dealer::~raw_dealer() = default;

::testing::AssertionResult raw_dealer::join(std::string_view name, std::string_view token) {
    send(hello_bytes(client_role::backend, name, token));
    if (!read_until(frame_kind::welcome)) return ::testing::AssertionFailure() << "no welcome";
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult raw_dealer::rejoin(std::string_view name) {
    for (int attempt = 0; attempt < 20; ++attempt) {
        send(hello_bytes(client_role::backend, name));
        if (read_until(frame_kind::welcome, 500ms)) return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no welcome after 20 hellos";
}

void raw_dealer::send(const std::vector<std::uint8_t>& message) {
    zmq::message_t msg(message.data(), message.size());
    (void)impl_->socket.send(msg, zmq::send_flags::none);
}

void raw_dealer::send_parts(const std::vector<std::vector<std::uint8_t>>& parts) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
        zmq::message_t msg(parts[i].data(), parts[i].size());
        (void)impl_->socket.send(msg, i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

std::optional<std::vector<std::uint8_t>> raw_dealer::read(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t msg;
    if (!impl_->socket.recv(msg, zmq::recv_flags::dontwait)) return std::nullopt;
    const auto* p = static_cast<const std::uint8_t*>(msg.data());
    return std::vector<std::uint8_t>(p, p + msg.size());
}

std::optional<owned_frame> raw_dealer::read_until(frame_kind kind, std::chrono::milliseconds timeout) {
    return next_of_kind(pending_, kind, timeout, [this](std::chrono::milliseconds left) { return read(left); });
}

}  // namespace hyperstreams::testing
