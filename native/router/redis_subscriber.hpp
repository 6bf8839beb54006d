// The Redis engine's subscriber: one connection in RESP2 subscribe mode, for
// redis_engine.cpp only (it brings in Asio). It keeps the subscriptions
// with reference counts, makes them again on every new connection, and
// PINGs to tell when they are in force and that the connection still
// carries answers. Which node it connects to is the owner's choice, asked
// for each connection (in a cluster any node hears every PUBLISH; a
// sharded channel, SSUBSCRIBE, only the node that serves its slot).
//
// Single-threaded, on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "redis_connection.hpp"

namespace hyperstreams::router {

class redis_subscriber : public std::enable_shared_from_this<redis_subscriber> {
public:
    struct events {
        std::function<redis_address()> where;  // the node the next connection goes to
        std::function<void(std::string_view pattern, std::string_view channel, std::string_view payload)> message;
        // ready() or failed() changed.
        std::function<void()> changed;
        std::function<void()> reconnected;
        // Redis refused a sharded channel's subscription (`error`: its
        // error reply, such as MOVED, an unknown command or NOPERM), or
        // ended one because its slot moved to another node (`error`
        // empty). The connection is made again (at `where`) after this
        // returns. (Another subscription refused is logged, and the
        // connection kept.)
        std::function<void(std::string_view error)> refused;
    };

    // `tls`: the engine's TLS context, null for plain TCP. `role`: in the
    // connection's name (redis_options::client_name).
    redis_subscriber(boost::asio::io_context& io, const redis_options& options,
                     std::shared_ptr<boost::asio::ssl::context> tls, std::string role, events e);
    redis_subscriber(const redis_subscriber&) = delete;
    redis_subscriber& operator=(const redis_subscriber&) = delete;

    void start();
    void stop();  // no event after
    // Waiting for the pause before the next connection: connects now (the
    // owner learned where to, as a Redis Cluster's slots moved).
    void reconnect_now();

    void subscribe(const std::string& channel) { add(channels_, "SUBSCRIBE", channel); }
    void unsubscribe(const std::string& channel) { drop(channels_, "UNSUBSCRIBE", channel); }
    void psubscribe(const std::string& pattern) { add(patterns_, "PSUBSCRIBE", pattern); }
    void punsubscribe(const std::string& pattern) { drop(patterns_, "PUNSUBSCRIBE", pattern); }
    // A sharded channel (Redis 7): the connection must be to the node that
    // serves its slot.
    void ssubscribe(const std::string& channel) { add(shard_channels_, "SSUBSCRIBE", channel); }

    // Runs `fn` once every subscription asked for before it is in force in
    // Redis (a PING sent after them answered; at once when nothing was sent
    // since the last answer): a read of what Redis holds made after that
    // misses no message published after the read. Without a connection, or
    // when it goes down meanwhile, `fn` runs at once (what Redis publishes
    // until the subscriptions are made again is missed by every subscriber
    // alike). Not run once stopped.
    void after_subscribed(std::function<void()> fn);

    // Connected, and every subscription made is in force.
    bool ready() const noexcept { return ready_; }
    // A connection failed (since start): why the last one did.
    bool failed() const noexcept { return failed_; }
    const std::string& down_reason() const noexcept { return down_reason_; }

private:
    using names = std::map<std::string, int, std::less<>>;  // reference counts

    void connect();
    void on_up();
    void on_down(std::string why);
    void on_push(const redisReply& reply);
    // A subscription Redis refused or ended: told, and the connection made again.
    void lose_subscription(std::string why, std::string_view error);
    void resubscribe(std::string_view verb, const names& all);
    void ping();
    void send_ping();
    void send_subscription(std::string_view verb, const std::string& name);
    void add(names& all, std::string_view verb, const std::string& name);
    void drop(names& all, std::string_view verb, const std::string& name);
    bool connected() const noexcept { return conn_ && conn_->is_up(); }

    boost::asio::io_context& io_;
    const redis_options options_;
    const std::shared_ptr<boost::asio::ssl::context> tls_;
    const std::string role_;
    events events_;
    std::shared_ptr<redis_connection> conn_;
    boost::asio::steady_timer retry_;
    boost::asio::steady_timer ping_timer_;
    redis_backoff backoff_;
    names channels_;
    names patterns_;
    names shard_channels_;
    bool started_ = false;
    bool stopped_ = false;
    bool ready_ = false;
    bool failed_ = false;
    // PINGs of this connection sent and answered (answers come in order):
    // the liveness PING is outstanding while answered_ < liveness_ping_, and
    // the subscriptions sent are in force once answered_ >= confirming_ping_.
    std::uint64_t pings_sent_ = 0;
    std::uint64_t pings_answered_ = 0;
    std::uint64_t liveness_ping_ = 0;
    std::uint64_t confirming_ping_ = 0;
    bool unconfirmed_ = false;  // a (P)SUBSCRIBE went out after the last PING
    // after_subscribed's, each with the PING whose answer runs it.
    std::deque<std::pair<std::uint64_t, std::function<void()>>> after_subscribed_;
    std::string down_reason_ = "connecting";
};

}  // namespace hyperstreams::router
