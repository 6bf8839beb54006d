#include "tls_socket.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace hyperstreams {

namespace asio = boost::asio;
namespace beast = boost::beast;

// Each handler goes down bound to the stream's executor, the one a handler
// of the session's would have had anyway: the TLS operations post their
// ends with blocking.never, which Asio 1.81's any_completion_executor (a
// type-erased handler's own) does not take.

void tls_socket::read_some(io_handler handler) {
    stream_.async_read_some(read_buffers_, asio::bind_executor(stream_.get_executor(), std::move(handler)));
}

void tls_socket::write_some(io_handler handler) {
    stream_.async_write_some(write_buffers_, asio::bind_executor(stream_.get_executor(), std::move(handler)));
}

void tls_socket::handshake(asio::ssl::stream_base::handshake_type type, done_handler handler) {
    stream_.async_handshake(type, asio::bind_executor(stream_.get_executor(), std::move(handler)));
}

void tls_socket::shutdown(done_handler handler) {
    stream_.async_shutdown(asio::bind_executor(stream_.get_executor(), std::move(handler)));
}

void tls_socket::teardown(beast::role_type role, done_handler handler) {
    using beast::websocket::async_teardown;
    async_teardown(role, stream_, asio::bind_executor(stream_.get_executor(), std::move(handler)));
}

}  // namespace hyperstreams
