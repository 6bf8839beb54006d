// The transports an engine_host drives: one connection each, opened when the
// engine asks and thrown away when it closes (a reconnect is a new transport).
//
// Callbacks run on the io_context's thread, never from inside send() or
// close(), so the host may call either from a callback without reentering
// the engine. After close() no callback runs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"

namespace boost::asio {
class io_context;
}

namespace hyperstreams::native {

struct transport_callbacks {
    std::function<void()> opened;
    std::function<void(bytes_view message)> received;
    // Lost, or could not be opened. Not called after close(). Why: for an
    // attempt that failed, a transport code of errc (connection_refused, ...)
    // and the transport's words for the engine to pass on (client.hpp:
    // transport_closed()); for a connection lost after it opened, errc{}.
    std::function<void(errc reason, std::string_view detail)> closed;
};

class transport {
public:
    virtual ~transport() = default;
    // Copies `message` and sends it as one transport message, in order.
    // Messages sent before the transport opened leave when it does.
    virtual void send(bytes_view message) = 0;
    // Sends what is queued (bounded by a short linger), then closes.
    virtual void close() = 0;
    // True until the transport has nothing left to send and is closed.
    virtual bool busy() const = 0;
    // Stops taking messages from the connection, and starts again. Paused
    // before it opens: it opens paused.
    virtual void set_reading(bool reading) = 0;
    // Gives the connection up at once, sending nothing more, and reports it
    // lost (closed with errc{}) as a failing network would.
    virtual void abort() = 0;
};

// A process-wide-per-host ZeroMQ context: libzmq's I/O thread and the linger
// of closed sockets live in it, so it must outlive the transports.
class zmq_context;
std::shared_ptr<zmq_context> make_zmq_context();

// The options are hyperstreams/native/engine_host.hpp's.
struct transport_options;
struct tls_options;

// CURVE when options.curve is enabled.
std::shared_ptr<transport> open_zmq_transport(boost::asio::io_context& io,
                                              const std::shared_ptr<zmq_context>& context,
                                              const std::string& url, const transport_options& options,
                                              transport_callbacks callbacks);

// The OpenSSL context of a host's wss:// connections: its trust store is
// loaded once, by the first one.
class tls_context;
std::shared_ptr<tls_context> make_tls_context(const tls_options& options);

// ws:// and wss:// (`tls` is only used, and must then be set, for wss://).
std::shared_ptr<transport> open_ws_transport(boost::asio::io_context& io, const std::string& url,
                                             const transport_options& options,
                                             const std::shared_ptr<tls_context>& tls,
                                             transport_callbacks callbacks);

}  // namespace hyperstreams::native
