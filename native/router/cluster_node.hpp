// What makes a router one of several (cluster.redis): the Redis engine, the
// channel log and the router bus over it, the router's membership (it
// heartbeats its id and endpoints into Redis; the routers alive are those
// whose heartbeat has not expired), and what /healthz, /status and
// /metrics say about the cluster.
//
// Threads: all of it runs on the io_context it is given, an I/O thread's
// (the first one's, which the ZeroMQ socket shares). A publish that arrives
// on that thread is written to Redis, and its message read back and
// delivered to that thread's WebSockets, with no hand-off to another
// thread: the engine's posts land in the thread's own queue and wake
// nobody.
//
// Membership key: P:routers, a hash from router id to
// "<expiry unix ms> <ws url> <backend endpoint>[ sharded]" ("sharded": it
// listens on its sharded channel, redis_bus.hpp), written every heartbeat
// interval with an expiry of the heartbeat timeout. A router that joins
// (its field new in the hash) or leaves (drains) PUBLISHes its id on the
// pub/sub channel P:routers, and the others read the hash at once.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "core_runner.hpp"
#include "log.hpp"
#include "redis_bus.hpp"
#include "redis_log.hpp"
#include "redis_presence.hpp"
#include "status_view.hpp"

namespace hyperstreams::router {

class cluster_node {
public:
    // Runs on `io`, which must outlive the node.
    cluster_node(boost::asio::io_context& io, const router_config& cfg, std::string router_id);
    cluster_node(const cluster_node&) = delete;
    cluster_node& operator=(const cluster_node&) = delete;
    ~cluster_node();

    // What makes cluster.redis unusable (a TLS file that cannot be loaded),
    // in words; empty when nothing does.
    const std::string& setup_error() const noexcept { return engine_.setup_error(); }

    channel_log& log() noexcept { return log_; }
    router_bus& bus() noexcept { return bus_; }
    presence_cluster& presence() noexcept { return presence_; }

    // Answers enter `core`; the membership gives these endpoints.
    void start(core_runner& core, std::string ws_url, std::string backend);
    // Once the thread of `io` stopped (or before it ran), before the core
    // goes: fails what is pending, and no answer enters the core after.
    void stop();
    // The drain began: out of the membership at once, so that the other
    // routers stop sending their backends here and the clients this one
    // redirects find it gone. `left` runs on the engine's thread once Redis
    // answered the removal and its announcement (or failed them: within
    // the command timeout): a router that exits before then may stay in
    // the membership until its heartbeat expires.
    void leave(std::function<void()> left = {});

    // Thread-safe. Empty when ready; else why not (for /healthz).
    std::string not_ready() const;
    cluster_view view() const;
    // Prometheus series of the cluster, appended to /metrics.
    std::string render_metrics() const;
    // Another router of the cluster: its WebSocket URL and backend endpoint.
    struct peer_router {
        std::string id;
        std::string websocket_url;
        std::string backend;
        bool sharded_inbox = false;  // listens on its sharded channel (redis_bus)
    };
    // Once the drain began (after leave()): the router to send this one's
    // clients to. Each other router of the membership is asked over the bus
    // whether it is there, as a router killed stays in the membership until
    // its heartbeat expires; `done` gets, once, on the engine's thread, the
    // first that answered, in the order of drain_order(). Silent for
    // `bound`: gone. When none answered and Redis failed some pings, the
    // first of those (the membership's word); else none.
    void find_live_router(std::chrono::milliseconds bound, std::function<void(std::optional<peer_router>)> done);

private:
    void beat();
    void read_members();
    // `done`: once Redis answered (or failed) it.
    void announce(std::function<void()> done = {});
    void on_members_changed(std::string_view router_id);
    void on_state(bool up, std::string_view reason);
    void tell_backends(const std::vector<peer_router>& alive);
    // Thread-safe. `router_id` is alive in the membership.
    bool is_member(std::string_view router_id) const;
    redis_bus::member_info member(std::string_view router_id) const;
    // Thread-safe. The other routers of the membership with a WebSocket
    // URL, those to send clients to first first: the ones after this
    // router by id, then the ones before, so that routers that drain
    // together spread their clients over the others.
    std::vector<peer_router> drain_order() const;

    const std::chrono::milliseconds interval_;
    const std::chrono::milliseconds timeout_;
    const std::string members_key_;
    boost::asio::io_context& ioc_;
    const std::string router_id_;
    redis_engine engine_;
    redis_log log_;
    redis_bus bus_;
    redis_presence presence_;
    redis_script_ref beat_script_;
    log::throttle beat_log_;
    boost::asio::steady_timer beat_timer_;
    std::string member_value_tail_;  // " <ws url> <backend>"
    mutable std::mutex members_mu_;
    std::vector<peer_router> members_;  // alive, by id
    // The engine's thread only.
    core_runner* core_ = nullptr;
    bool started_ = false;
    bool stopped_ = false;
    bool leaving_ = false;
    bool announced_ = false;  // this router's join was published since Redis was last up
    bool announced_sharded_ = false;  // ... saying that it listens on its sharded channel
    // Until then (a heartbeat timeout after the first membership read that
    // Redis answered after one it did not, or after it was down), a router
    // this one knew whose entry expired is still taken as alive: while
    // Redis did not answer nobody could beat, and each router needs the
    // time to find Redis again and write its entry. Engine's thread.
    std::chrono::steady_clock::time_point settle_until_{};
    bool membership_unread_ = false;
    bool told_ = false;
    std::vector<std::pair<std::string, std::string>> told_backends_;  // (id, backend) last given to the core
};

}  // namespace hyperstreams::router
