// The TLS stream under the router's https and wss sessions and the native
// client's wss connections, with its operations compiled once.
//
// beast::ssl_stream<beast::tcp_stream> is a template stack (flat_stream over
// asio::ssl::stream over basic_stream), and every asynchronous operation
// Beast's WebSocket and HTTP code starts on it instantiated that whole stack
// again for its own handler and buffer types: the wss session was 72% of
// ws_session.cpp's compile time (86 of 120 s under ASan), and the https
// session and the client's wss connection were alike. tls_socket takes any
// handler and buffer sequence and hands them, as an
// asio::any_completion_handler and a vector of buffers, to functions in
// tls_socket.cpp, which run the TLS stream's operations: one instantiation
// each, whatever sits above. What it costs at run time: a handler block per
// read and per write (TLS's own record work is larger by far). Nothing
// changes on the wire: beast::ssl_stream still coalesces a write's buffers
// into TLS records, and asio::ssl::stream reads into the first buffer as
// before.
//
// Beast finds the bottom of the stack through next_layer() (the
// ssl_stream, then its tcp_stream: timeouts and the socket), and the
// closing handshake's TLS shutdown through async_teardown below (ADL).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace hyperstreams {

class tls_socket {
    using error_code = boost::system::error_code;

public:
    using stream_type = boost::beast::ssl_stream<boost::beast::tcp_stream>;
    using executor_type = stream_type::executor_type;
    using io_handler = boost::asio::any_completion_handler<void(error_code, std::size_t)>;
    using done_handler = boost::asio::any_completion_handler<void(error_code)>;

    // Movable while no operation is in progress: the router hands it from
    // the HTTP session to the WebSocket session at the upgrade.
    explicit tls_socket(stream_type&& stream) : stream_(std::move(stream)) {}

    executor_type get_executor() noexcept { return stream_.get_executor(); }
    stream_type& next_layer() noexcept { return stream_; }
    // OpenSSL's handle: a client names the host it verifies and sends (SNI).
    SSL* native_handle() noexcept { return stream_.native_handle(); }

    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code, std::size_t)>(
            [this](auto h, const MutableBuffers& b) {
                read_buffers_.assign(boost::asio::buffer_sequence_begin(b), boost::asio::buffer_sequence_end(b));
                read_some(io_handler(std::move(h)));
            },
            handler, buffers);
    }

    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code, std::size_t)>(
            [this](auto h, const ConstBuffers& b) {
                write_buffers_.assign(boost::asio::buffer_sequence_begin(b), boost::asio::buffer_sequence_end(b));
                write_some(io_handler(std::move(h)));
            },
            handler, buffers);
    }

    template <class Handler>
    auto async_handshake(boost::asio::ssl::stream_base::handshake_type type, Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code)>(
            [this](auto h, boost::asio::ssl::stream_base::handshake_type t) { handshake(t, done_handler(std::move(h))); },
            handler, type);
    }

    template <class Handler>
    auto async_shutdown(Handler&& handler) {
        return boost::asio::async_initiate<Handler, void(error_code)>(
            [this](auto h) { shutdown(done_handler(std::move(h))); }, handler);
    }

    // The closing handshake's TLS part (async_teardown below).
    void teardown(boost::beast::role_type role, done_handler handler);

private:
    void handshake(boost::asio::ssl::stream_base::handshake_type type, done_handler handler);
    void shutdown(done_handler handler);
    // Each runs the TLS stream's operation on the buffers assigned above:
    // Beast has at most one read and one write in progress on a stream.
    void read_some(io_handler handler);
    void write_some(io_handler handler);

    stream_type stream_;
    std::vector<boost::asio::mutable_buffer> read_buffers_;
    std::vector<boost::asio::const_buffer> write_buffers_;
};

// Found by Beast through ADL when a WebSocket stream over tls_socket closes.
template <class Handler>
void async_teardown(boost::beast::role_type role, tls_socket& socket, Handler&& handler) {
    socket.teardown(role, tls_socket::done_handler(std::forward<Handler>(handler)));
}

}  // namespace hyperstreams
