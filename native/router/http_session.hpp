// One HTTP/1.1 connection: /healthz, and as its listener's routes say
// /metrics and /status (behind the admin token when one is configured) or
// static files and the WebSocket upgrade on the configured path, which hands
// the socket to a ws_session.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "http_context.hpp"

namespace hyperstreams::router {

// Takes over `socket`, serving what `routes` names, and holds `slot` until
// the connection ends or upgrades; the session keeps itself alive until it ends.
void run_http_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<http_context> ctx, http_routes routes,
                      http_slot slot);

}  // namespace hyperstreams::router
