// The routing core: the one door through which every input of every
// connection comes in. It keeps the connection table and what belongs to a
// connection as such (hello and admission, heartbeats, token expiry, the
// drain) and hands every other frame to the room it belongs to:
//   pubsub      subscriptions, publish, resume (over a channel_log);
//   calls       the service registry and the calls in flight;
//   addressing  addresses, direct messages, broadcast.
// Transport-agnostic and socket-free: transports hand it bytes, it hands
// encoded frames to each connection's outbox (connection_table) and names
// the transports to wake. docs/ARCHITECTURE.md draws the rooms.
//
// Concurrency: the core is not thread-safe; one caller at a time. In the
// router, core_runner holds one mutex around every call and makes it on the
// thread that received the input (an I/O thread: the one that serves the
// WebSocket, or the first one, which serves the ZeroMQ socket; or the
// timer's thread for tick()), so a call's routing costs no
// hand-off between threads. The routing tables need no locks of their own.
// Order per publisher and channel holds: a transport passes one
// connection's batches one after the other (a WebSocket session reads its
// next message only once the core has handled the last one; the ZeroMQ
// socket's messages are handled in order on one thread), and the mutex orders the calls, so
// the order in which a publisher's batches arrive is the order in which
// their messages get their sequence numbers and enter each subscriber's
// outbox. The hand-off back to the transports is the lane of each
// connection's I/O thread (lane.hpp): the core appends what it sends, in
// order, and take_lanes() names the lanes the host must have drained on
// their threads once the call returned and the core's mutex is released;
// those threads push into their outboxes and wake their sessions, so no
// transport code ever runs inside the core, and a batch crosses to each
// other I/O thread once. Connections with no lane (the core's unit tests)
// are served by the core's own lane, drained as the core appends, as if
// the core ran on their thread: take_wakes() gives their transports to
// wake.
// Fan-out encodes a message once and every recipient's outbox holds the
// same buffer.
//
// To shard later: the channels and the topic tree partition by channel, the
// registry and calls by service; each shard would be one such core with its
// own mutex, and a connection would call the shard that owns the name.
//
// Time is passed in (`now`), never read, so tests drive it; the runner arms
// one timer at next_deadline() and calls tick().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>
#include <string>
#include <string_view>

#include "addressing.hpp"
#include "authorizer.hpp"
#include "calls.hpp"
#include "channel_log.hpp"
#include "config.hpp"
#include "connection_table.hpp"
#include "metrics.hpp"
#include "pubsub.hpp"
#include "status_view.hpp"

namespace hyperstreams::router {

class router_core {
public:
    using wake_list = connection_table::wake_list;

    // Channels kept in `log`, the other routers' clients reached over
    // `bus` and presence kept in `presence` (none: a router on its own);
    // all must outlive the core.
    router_core(const router_config& cfg, authorizer& auth, metrics& m, channel_log& log, std::string router_id,
                router_bus* bus = nullptr, presence_cluster* presence = nullptr);
    // Channels kept in memory (memory_log), each made with `epoch` (plus
    // the channels forgotten before it).
    router_core(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch, std::string router_id);
    ~router_core();
    router_core(const router_core&) = delete;
    router_core& operator=(const router_core&) = delete;

    // A transport accepted a connection. It must send hello within the
    // handshake timeout.
    void open(connection_init init, time_point now);
    // One transport message (a batch of frames) from connection `id`.
    void receive(connection_id id, bytes_view batch, time_point now);
    // The transport lost the connection (peer closed, I/O error).
    void closed(connection_id id, time_point now);
    // The transport found input it cannot pass on (e.g. a ZeroMQ message of
    // several parts): an error and a goodbye with `code`, then close.
    void reject(connection_id id, errc code, std::string_view text, time_point now);

    // A channel log's answer that arrives on its own (a remote log's):
    // `answer` calls the log's sink; what that routed is handed over after,
    // as at the end of receive().
    template <typename Answer>
    void log_answer(Answer&& answer, time_point now) {
        answer();
        table_.flush_run();
        reap(now);
    }

    // Deadlines, heartbeats, handshake timeouts and drain progress.
    void tick(time_point now);
    [[nodiscard]] time_point next_deadline() const;

    // Drain: refuse new connections and calls, let calls in flight finish up
    // to drain.timeout_ms, fail the rest with going_away, then send every
    // client a goodbye (or the configured redirect) and close.
    void begin_drain(time_point now);
    // Where a drain sends the clients when the configuration names no
    // drain.redirect_url / drain.redirect_backend: another router of the
    // cluster. Empty: a goodbye.
    void redirect_drain_to(std::string websocket_url, std::string backend_endpoint);
    // The cluster's other live routers: sent to every backend that follows
    // the cluster (hello flag follow_cluster) now, and after the welcome of
    // every one that comes later. Never called: a router on its own, which
    // sends no routers frame.
    void set_cluster_routers(const routers_body& others);
    // Stops waiting for calls in flight (a second signal).
    void hurry_drain(time_point now);
    bool draining() const noexcept { return draining_; }
    // Drain finished: every connection was told and closed.
    bool drained() const noexcept { return drain_done_ && table_.empty(); }

    // Appends to `out` the transports whose outbox got frames or started
    // closing since the last call (once per outbox until its consumer has
    // taken everything). The host calls this after every call above and
    // wakes them: a subscriber then finds all of a batch's messages queued
    // and writes them in one WebSocket message.
    void take_wakes(wake_list& out) { table_.take_wakes(out); }
    // The I/O threads' lanes that now hold frames for their connections:
    // the host has each drained on its thread (lane.hpp) once the core's
    // mutex is released.
    void take_lanes(std::vector<std::shared_ptr<lane>>& out) { table_.take_lanes(out); }
    // A lane found these connections' outboxes full (and closed them): they
    // are closed as slow consumers.
    void overflowed(const std::vector<connection_id>& ids, time_point now);

    // The admin view: a snapshot under the caller's lock, rendered
    // (render_status) after it; status_json does both.
    [[nodiscard]] status_snapshot snapshot(time_point now) const;
    std::string status_json(time_point now) const { return render_status(snapshot(now)); }

    std::size_t connection_count() const noexcept { return table_.size(); }
    const std::string& router_id() const noexcept { return router_id_; }
    std::uint32_t epoch() const noexcept { return log_.epoch(); }

private:
    // `log`, or `own` when `log` is null.
    router_core(const router_config& cfg, authorizer& auth, metrics& m, std::unique_ptr<channel_log> own,
                channel_log* log, std::string router_id, router_bus* bus, presence_cluster* presence);

    void dispatch(connection& c, const frame& f, time_point now);
    void hello(connection& c, const frame& f, time_point now);
    void token_refresh(connection& c, const frame& f, time_point now);
    void arm_token_deadline(connection& c, time_point now);
    void send_routers(connection& c);
    // Says no to a hello: an error with id 0, then a goodbye with the same code.
    void refuse(connection& c, errc code, std::string_view reason);
    void reap(time_point now);
    void remove(connection& c, time_point now);
    void check_drain(time_point now);
    void heartbeat_scan(time_point now);

    const router_config cfg_;
    authorizer& auth_;
    metrics& metrics_;
    std::string router_id_;
    std::unique_ptr<channel_log> own_log_;  // when the core keeps its channels in memory
    channel_log& log_;
    connection_table table_;
    pubsub pubsub_;
    calls calls_;
    addressing addressing_;

    time_point next_scan_{};
    bool draining_ = false;
    bool drain_done_ = false;
    time_point drain_deadline_{};
    std::string drain_redirect_url_;      // cfg_'s, or another router's
    std::string drain_redirect_backend_;
    std::optional<std::vector<std::uint8_t>> cluster_routers_;  // the routers body; set once in a cluster
};

}  // namespace hyperstreams::router
