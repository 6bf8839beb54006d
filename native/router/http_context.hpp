// What the HTTP and WebSocket sessions share: the configuration, the
// metrics, the way into the routing core and the executors of the worker
// threads. Free of Asio and Beast types so that any file may include it.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "config.hpp"
#include "core_runner.hpp"
#include "metrics.hpp"

namespace boost::asio::ssl {
class context;
}

namespace hyperstreams::router {

// What a listener serves besides /healthz (admin.listen decides).
enum class http_routes : std::uint8_t {
    app,    // the WebSocket upgrade and the static files (--listen)
    admin,  // /metrics and /status (admin.listen HOST:PORT)
    both,   // admin.listen "same": all of it on --listen
};

// A connection's place among its listener's connections that have not
// upgraded to WebSocket (limits.max_http_connections): taken when the
// listener accepts it, given back when it ends or upgrades.
class http_slot {
public:
    explicit http_slot(metrics::gauge& open) noexcept : open_(&open) {}
    http_slot(http_slot&& other) noexcept : open_(std::exchange(other.open_, nullptr)) {}
    http_slot& operator=(http_slot&&) = delete;
    ~http_slot() { release(); }

    void release() noexcept {
        if (open_ != nullptr) open_->fetch_sub(1, std::memory_order_relaxed);
        open_ = nullptr;
    }

private:
    metrics::gauge* open_ = nullptr;
};

class cluster_node;

struct http_context {
    http_context(const router_config& c, metrics& m, core_runner& r) : cfg(c), stats(m), core(r) {}

    const router_config& cfg;
    metrics& stats;
    core_runner& core;
    std::filesystem::path web_root;    // canonical; empty: no static files
    boost::asio::ssl::context* tls = nullptr;  // set: every connection starts with a TLS handshake
    const cluster_node* cluster = nullptr;  // set: the router is one of several (cluster.redis)
    std::string admin_token;           // set: /metrics and /status want "Authorization: Bearer <it>"
    std::atomic<bool> draining{false};  // /healthz answers 503 and upgrades are refused while draining
    std::atomic<int> ws_sessions{0};    // WebSocket sessions not yet finished
};

}  // namespace hyperstreams::router
