// Accepts TCP connections on --listen (or admin.listen) and starts an HTTP
// session for each, spreading the sessions over the worker io_contexts
// round-robin.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http_context.hpp"

namespace boost::asio {
class io_context;
}

namespace hyperstreams::router {

class listener {
public:
    // The acceptor lives on workers[0]; sessions go to every worker in turn
    // and serve `routes`.
    listener(std::vector<boost::asio::io_context*> workers, std::shared_ptr<http_context> ctx, http_routes routes);
    ~listener();
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;

    // Binds and listens. Returns the bound address as HOST:PORT (the real
    // port when 0 was asked). Throws std::runtime_error naming the setting
    // (listen or admin.listen) and the problem.
    std::string bind(const std::string& host, std::uint16_t port);
    // Accepts until the io_contexts stop: through a drain too (/healthz).
    void start();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace hyperstreams::router
