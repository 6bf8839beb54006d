// One WebSocket connection of a frontend (or any client speaking the protocol
// over WebSocket): binary messages in, each one a batch of frames handed to
// the routing core on the session's thread; the connection's outbox out,
// coalesced into one binary message per write.
#pragma once

#include <memory>

#include "http_context.hpp"
#include "net.hpp"
#include "tls_socket.hpp"

namespace hyperstreams::router {

// Takes over the stream after an HTTP upgrade request and accepts it.
void run_ws_session(beast::tcp_stream stream, http::request<http::string_body> upgrade,
                    std::shared_ptr<http_context> ctx);
// The same over TLS (wss).
void run_ws_session(tls_socket stream, http::request<http::string_body> upgrade, std::shared_ptr<http_context> ctx);

}  // namespace hyperstreams::router
