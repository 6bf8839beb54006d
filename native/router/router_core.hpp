// The routing core: every connection's protocol state, subscriptions,
// channels and their history, the service registry and the calls in flight.
// Transport-agnostic and socket-free: transports hand it bytes, it hands
// encoded frames to each connection's outbox and names the transports to wake.
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
// outbox. The hand-off back to the transports is the outbox (one small
// mutex per connection, taken inside the core's) plus one wake-up per idle
// outbox, which the core does not make itself: take_wakes() gives them to
// the host, which wakes the transports once the call returned and the
// core's mutex is released, so no transport code ever runs inside the core.
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
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "authorizer.hpp"
#include "call_table.hpp"
#include "channel_store.hpp"
#include "config.hpp"
#include "connection.hpp"
#include "metrics.hpp"
#include "service_registry.hpp"
#include "topic_tree.hpp"

namespace hyperstreams::router {

struct connection_init {
    connection_id id = 0;
    transport_kind transport = transport_kind::websocket;
    std::string remote;
    std::string curve_key;  // Z85 public key proved by CURVE (ZeroMQ)
    std::weak_ptr<link> session;
    std::shared_ptr<outbox> out;
};

// The outbox bounds the configuration gives every connection.
outbox_limits outbox_limits_of(const router_config& cfg) noexcept;

class router_core {
public:
    // Transports to wake; a few fit without an allocation.
    using wake_list = boost::container::small_vector<std::weak_ptr<link>, 8>;

    router_core(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch,
                std::string router_id);
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

    // Deadlines, heartbeats, handshake timeouts and drain progress.
    void tick(time_point now);
    time_point next_deadline() const;

    // Drain: refuse new connections and calls, let calls in flight finish up
    // to drain.timeout_ms, fail the rest with going_away, then send every
    // client a goodbye (or the configured redirect) and close.
    void begin_drain(time_point now);
    // Stops waiting for calls in flight (a second signal).
    void hurry_drain(time_point now);
    bool draining() const noexcept { return draining_; }
    // Drain finished: every connection was told and closed.
    bool drained() const noexcept { return drain_done_ && connections_.empty(); }

    // Appends to `out` the transports whose outbox got frames or started
    // closing since the last call (once per outbox until its consumer has
    // taken everything). The host calls this after every call above and
    // wakes them: a subscriber then finds all of a batch's messages queued
    // and writes them in one WebSocket message.
    void take_wakes(wake_list& out);

    // The JSON admin view: connections, channels, services, calls.
    std::string status_json(time_point now) const;

    std::size_t connection_count() const noexcept { return connections_.size(); }
    const std::string& router_id() const noexcept { return router_id_; }
    std::uint32_t epoch() const noexcept { return channels_.epoch(); }

private:
    connection* find(connection_id id);
    void dispatch(connection& c, const frame& f, time_point now);
    void on_hello(connection& c, const frame& f, time_point now);
    void on_subscribe(connection& c, const frame& f);
    void on_unsubscribe(connection& c, const frame& f);
    void on_publish(connection& c, const frame& f, time_point now);
    void on_call(connection& c, const frame& f, time_point now);
    void on_backend_reply(connection& c, const frame& f, time_point now);
    void on_stream_credit(connection& c, const frame& f);
    void on_cancel(connection& c, const frame& f, time_point now);
    void on_direct(connection& c, const frame& f);
    void on_broadcast(connection& c, const frame& f);
    void on_discover(connection& c, const frame& f);
    void on_register(connection& c, const frame& f);
    void on_unregister(connection& c, const frame& f, time_point now);
    void on_token_refresh(connection& c, const frame& f, time_point now);
    void end_withdrawn(connection& c, time_point now);
    void arm_token_deadline(connection& c, time_point now);
    bool take_publish_allowance(connection& c, time_point now);

    // Outgoing.
    void deliver(connection& c, const shared_bytes& bytes, frame_class cls, slow_policy policy);
    void send(connection& c, const frame& f);
    void send_error(connection& c, std::uint32_t id, errc code, std::string_view text);
    void send_ack(connection& c, std::uint32_t id, std::uint32_t epoch = 0, std::uint64_t seq = 0);
    void wake(connection& c);
    void deliver_run(connection& c, std::span<const shared_bytes> run, slow_policy policy);
    // Hands run_ to the kept route's subscribers.
    void flush_run();
    // Counts what a push dropped, wakes, and closes the connection on
    // overflow; false then.
    bool settle(connection& c, const push_result& r);

    // Ends a connection: an optional goodbye (code != 0), then the outbox is
    // closed and the connection is removed from every table at the next reap().
    void close(connection& c, errc code, std::string_view reason, bool discard_data);
    void close_with(connection& c, shared_bytes farewell, errc code, std::string_view reason,
                    bool discard_data);
    void reap(time_point now);
    void remove(connection& c, time_point now);
    void finish_call(const call& k, time_point now);
    void fail_call(const call& k, errc code, std::string_view text, bool tell_backend, time_point now);
    void check_drain(time_point now);
    void heartbeat_scan(time_point now);

    principal who(const connection& c) const;
    slow_policy resolve(slow_policy p) const noexcept;

    const router_config cfg_;
    authorizer& auth_;
    metrics& metrics_;
    std::string router_id_;
    std::mt19937_64 rng_;

    // Connections in place (the map's nodes do not move): one heap block each.
    std::unordered_map<connection_id, connection> connections_;
    // Keys view connection::address, which is set before the entry is made
    // and not changed until remove() erases it.
    std::unordered_map<std::string_view, connection_id> addresses_;
    std::vector<connection_id> doomed_;
    topic_tree topics_;
    channel_store channels_;
    service_registry services_;
    call_table calls_;
    // Where the last channel published to goes: its state and its
    // subscribers' records, kept while neither the topic tree nor the
    // channel store changes (publishers mostly send runs to one channel, so
    // a publish usually skips the name check, the channel lookup and the
    // topic walk). A connection that matches is in the topic tree until it
    // is removed, and removing it changes the tree, so the pointers hold.
    struct publish_route {
        std::string channel;
        channel_state* state = nullptr;  // null: nothing kept
        std::uint64_t topics_version = 0;
        std::uint64_t channels_version = 0;
        std::vector<std::pair<connection*, slow_policy>> targets;
    };
    bool route_kept(std::string_view channel) const noexcept;
    const publish_route& route_to(std::string_view channel, bool kept);

    std::vector<topic_tree::match> match_scratch_;
    publish_route route_;
    // Message frames of consecutive publishes along route_, not yet handed
    // to its subscribers: each outbox takes the run in one push (one lock)
    // instead of one per message. Handed over before anything else reaches
    // any outbox, before the route changes and at the end of every
    // receive(), so every connection sees its frames in the order the core
    // made them.
    std::vector<shared_bytes> run_;
    std::vector<std::weak_ptr<link>> wakes_;  // until take_wakes()

    time_point next_scan_{};
    bool draining_ = false;
    bool drain_done_ = false;
    time_point drain_deadline_{};
};

}  // namespace hyperstreams::router
