// The router bus over Redis pub/sub (router_bus.hpp). Each router
// subscribes to P:r:<its id> (what is addressed to it) and P:b
// (broadcasts).
//
// A direct message is PUBLISHed to the router that gave the address, which
// answers on the sender router's channel: delivered (only when the sender
// asked for an ack) or no_such_address (always: a fire-and-forget direct
// still hears of its failure). Redis's count of receivers tells at once
// when that router is not there (0: no_such_address); a router that took
// the message but does not answer within the answer timeout leaves the
// outcome unknown (cluster_outcome_unknown). On a Redis Cluster, P:r:<id>
// is also a sharded channel (SSUBSCRIBE on the node serving its slot), and
// the membership says which routers listen there: to those the message is
// SPUBLISHed, whose count is of every listener, so 0 says the router is
// gone as on a single server. To the others (a router from before sharded
// channels, or a Redis that refuses them) it is PUBLISHed, whose count is
// only of the node that took it: there a count of 0 means the router is
// gone only when it is not in the membership either; otherwise the message
// is taken as sent.
//
// A subscribe_client or unsubscribe_client for such an address goes the
// same way and is always answered: the verdict of the router that gave the
// address (its code and text), or the same failures as a direct's.
//
// A ping asks a router whether it is there, before a drain names it to its
// clients: it answers at once, with going_away once it is leaving itself.
// A router killed (SIGKILL) stays in the membership until its heartbeat
// expires; the ping finds it gone within a Redis round trip (nobody
// listens on its channel), or, to a router that does not listen on a
// sharded channel on a Redis Cluster, within the asker's bound (no answer).
//
// Messages on P:r:<id>, each led by its kind:
//   'd' [origin len u8][origin router][reply len u8][reply][flags u8]
//       [to len u8][to][from len u8][from][payload]
//   's' [origin len u8][origin router][reply len u8][reply][flags u8]
//       [to len u8][to][pattern len u8][pattern]
//   'p' [origin len u8][origin router][reply len u8][reply]
//   'a' [reply len u8][reply][code u16 LE][text]   (code 0: delivered, or done)
// `reply` is the sender router's own: the receiver echoes it untouched.
// A direct's flags carry json and ack_requested; a subscription's carry its
// policy (frame_flags::policy_mask) and 0x01 for subscribe (else unsubscribe).
// An answer's text may be empty (a direct's no_such_address).
// On P:b: [origin len u8][origin router][from len u8][from][flags u8][payload].
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "log.hpp"
#include "redis_engine.hpp"
#include "router_bus.hpp"

namespace hyperstreams::router {

class redis_bus final : public router_bus {
public:
    using entry = std::function<void(std::function<void()>)>;
    // What the cluster's membership says of a router: alive (its heartbeat
    // has not expired), and listening on its sharded channel (Redis
    // Cluster's SSUBSCRIBE). Thread-safe.
    struct member_info {
        bool alive = false;
        bool sharded_inbox = false;
    };
    using membership = std::function<member_info(std::string_view router_id)>;

    // `io`: the engine's; the answer timeout's timer runs on it.
    redis_bus(boost::asio::io_context& io, redis_engine& engine, std::string prefix, std::string router_id,
              std::chrono::milliseconds answer_timeout);

    // Before the engine starts: how answers enter the core, who is in the
    // cluster; the subscriptions.
    void start(entry e, membership is_member);
    // On the engine's thread: no timer is left running.
    void stop();

    void direct(std::string_view router_id, std::string_view to, std::string_view from, std::uint8_t flags,
                bytes_view payload, const publisher& ack) override;
    void client_subscription(std::string_view router_id, std::string_view to, std::string_view pattern,
                             slow_policy policy, bool subscribe, const publisher& ack) override;
    void broadcast(std::string_view from, std::uint8_t flags, bytes_view payload) override;

    // What a ping found: the router answered; it is gone (Redis says
    // nobody listens on its channel) or leaving (it answered going_away);
    // or it is not known, as Redis failed or no answer came within the
    // answer timeout.
    enum class ping_answer : std::uint8_t { alive, gone, unknown };
    // On the engine's thread: asks router `router_id` whether it is there.
    // `done` gets the answer on the engine's thread, once. The caller bounds
    // its own wait as it needs: `done` may come later than that.
    void ping(std::string_view router_id, std::function<void(ping_answer)> done);
    // On the engine's thread: this router drains; pings are answered
    // going_away from now on.
    void leaving() noexcept { leaving_ = true; }

    // From the engine (its thread): true when `channel` is the bus's.
    bool on_message(std::string_view channel, std::string_view payload);
    // Messages on its channels dropped as malformed (cluster.bad_message).
    // Thread-safe.
    std::uint64_t bad_messages() const noexcept { return bad_log_.occurrences(); }

private:
    // A direct whose sender waits for its ack, or a ping (`probe` set,
    // `ack` unused).
    struct waiting {
        publisher ack;
        std::string router;
        std::chrono::steady_clock::time_point deadline;
        std::function<void(ping_answer)> probe;
    };

    // Appends to `reply` the reply part of a message whose sender waits for
    // the answer (a ticket, returned).
    std::uint64_t await_answer(const publisher& ack, std::string_view router_id, std::string& reply,
                               std::function<void(ping_answer)> probe = {});
    // Publishes `message` on router `router_id`'s channel: sharded (SPUBLISH)
    // when it listens there.
    void publish_to(std::string_view router_id, bool sharded, std::string message, redis_engine::completion done);
    // Publishes `message` to router `router_id`; `ticket` 0: the sender
    // hears only of a failure.
    // `attempt`: how often it was found on nobody's sharded channel.
    void send_to(std::string_view router_id, std::string message, const publisher& ack, std::uint64_t ticket,
                 int attempt = 0);
    void reply_to(std::string_view origin, std::string_view reply, errc code, std::string_view text);
    void on_direct(std::string_view message);
    void on_subscription(std::string_view message);
    void on_answer(std::string_view message);
    void on_ping(std::string_view message);
    // Takes the waiting direct `ticket`; false when it was answered already.
    bool take(std::uint64_t ticket, waiting& out);
    void answer(const waiting& w, errc code, std::string text);
    void arm_timer();
    void on_timer();

    redis_engine& engine_;
    const std::string prefix_;
    const std::string router_id_;
    const std::string own_channel_;        // P:r:<id>
    log::throttle bad_log_;                // cluster.bad_message
    const std::string broadcast_channel_;  // P:b
    const std::chrono::milliseconds answer_timeout_;
    entry enter_;
    membership is_member_;

    // Directs waiting for their ack, by ticket; inserted under the core's
    // lock, answered on the engine's thread.
    std::mutex waiting_mu_;
    std::uint64_t next_ticket_ = 0;
    std::unordered_map<std::uint64_t, waiting> waiting_;
    std::deque<std::uint64_t> by_deadline_;  // tickets in the order they were made, hence of their deadlines

    boost::asio::steady_timer timer_;  // the engine's thread only
    bool timer_armed_ = false;
    bool stopped_ = false;
    bool leaving_ = false;  // the engine's thread only
};

}  // namespace hyperstreams::router
