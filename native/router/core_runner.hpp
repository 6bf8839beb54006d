// The only way into the routing core: every method here is thread-safe. It
// takes the core's mutex and runs the core on the calling thread (the
// transport thread that received the input), then, with the mutex released,
// has the lanes the core sent to drained: the calling thread's own lane
// inline, every other I/O thread's by one post (lane.hpp), whose thread
// pushes into its connections' outboxes and wakes them. So a request crosses no thread of
// the router's own between the WebSocket that carried it and the ZeroMQ
// thread that sends it on, and back.
//
// Lock order: the core's mutex first; the lanes' mutexes (taken by the
// core), the outboxes' mutexes (taken by the lanes' threads, and by the
// core for its own lane) and the transports' own small locks are leaves. A transport never
// calls in here while holding one of them, and a wake-up never runs under
// the core's mutex, so a session that dies on a wake-up's last reference
// may report its end from its destructor.
//
// A thread of its own only runs the one timer that drives tick(), armed at
// the core's next deadline.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "hyperstreams/body.hpp"
#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"
#include "router_types.hpp"

namespace hyperstreams::router {

struct cluster_view;
struct router_config;
class authorizer;
class channel_log;
class presence_cluster;
class router_bus;
class metrics;

class core_runner {
public:
    // Channels in memory, each made with `epoch` (router_core).
    core_runner(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch,
                std::string router_id);
    // Channels in `log`, the other routers' clients over `bus`, presence
    // in `presence`; all must outlive the runner.
    core_runner(const router_config& cfg, authorizer& auth, metrics& m, channel_log& log, router_bus& bus,
                presence_cluster& presence, std::string router_id);
    ~core_runner();
    core_runner(const core_runner&) = delete;
    core_runner& operator=(const core_runner&) = delete;

    // Starts the timer's thread.
    void start();
    // Stops the timer's thread; calls still work, but deadlines and
    // heartbeats are no longer checked.
    void stop();

    void open(connection_init init);
    // One transport message of connection `id`; `batch` need only live for the call.
    void receive(connection_id id, bytes_view batch);
    void closed(connection_id id);
    void reject(connection_id id, errc code, std::string_view text);
    // A channel log's answer that arrived on the thread its I/O runs on:
    // `answer` calls the log's sink under the core's mutex
    // (router_core::log_answer).
    void log_answer(const std::function<void()>& answer);

    // Where the drain sends clients when the configuration names nowhere
    // (router_core::redirect_drain_to).
    void redirect_drain_to(std::string websocket_url, std::string backend_endpoint);
    // The cluster's other live routers (router_core::set_cluster_routers).
    void set_cluster_routers(const routers_body& others);
    // Starts the drain; `on_drained` runs once every connection was told
    // and closed, on the thread of the call that finished it, outside the
    // core's mutex. A second call cuts the wait for calls in flight short.
    void drain(std::function<void()> on_drained);

    // The admin view (JSON): a snapshot taken under the core's mutex,
    // rendered after it is released.
    // With `cluster` (a router that is one of several), its view too.
    std::string status(const cluster_view* cluster = nullptr);

    const std::string& router_id() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace hyperstreams::router
