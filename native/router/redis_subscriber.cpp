#include "redis_subscriber.hpp"

#include <utility>

#include "log.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// Channels or patterns per SUBSCRIBE or PSUBSCRIBE when subscriptions are
// made again.
constexpr std::size_t subscribe_batch = 1024;

}  // namespace

redis_subscriber::redis_subscriber(asio::io_context& io, const redis_options& options,
                                   std::shared_ptr<asio::ssl::context> tls, std::string role, events e)
    : io_(io),
      options_(options),
      tls_(std::move(tls)),
      role_(std::move(role)),
      events_(std::move(e)),
      retry_(io),
      ping_timer_(io),
      backoff_(options) {}

void redis_subscriber::start() {
    if (started_ || stopped_) return;
    started_ = true;
    connect();
}

void redis_subscriber::stop() {
    stopped_ = true;
    ready_ = false;
    after_subscribed_.clear();
    if (conn_) conn_->close();
    retry_.cancel();
    ping_timer_.cancel();
}

void redis_subscriber::reconnect_now() {
    if (!started_ || stopped_ || !conn_ || !conn_->is_dead()) return;
    retry_.cancel();
    connect();
}

void redis_subscriber::connect() {
    redis_connection::events e;
    e.up = [this] { on_up(); };
    e.failed = [](redis_request_ptr, redis_status, std::string) {};
    e.down = [this](std::string why) { on_down(std::move(why)); };
    e.answered = [](redis_request_ptr, redis_reply) {};
    e.pushed = [this](redis_reply reply) { on_push(*reply); };
    conn_ = std::make_shared<redis_connection>(io_, events_.where(), options_, tls_, true, role_, std::move(e));
    conn_->connect();
}

void redis_subscriber::on_up() {
    backoff_.reset();
    if (failed_) events_.reconnected();
    pings_sent_ = pings_answered_ = liveness_ping_ = confirming_ping_ = 0;
    unconfirmed_ = true;  // made again below, even when there are none
    resubscribe("SUBSCRIBE", channels_);
    resubscribe("PSUBSCRIBE", patterns_);
    // One each: sharded channels of different slots cannot share one.
    for (const auto& entry : shard_channels_) send_subscription("SSUBSCRIBE", entry.first);
    ping();
}

void redis_subscriber::on_down(std::string why) {
    HS_LOG(warn, "redis.subscriber_down").kv("reason", why);
    ready_ = false;
    failed_ = true;
    down_reason_ = std::move(why);
    ping_timer_.cancel();
    // Their reads go ahead, as those asked for until the next connection
    // do: waiting for it could take longer than a client waits for an
    // answer.
    std::deque<std::pair<std::uint64_t, std::function<void()>>> waiting = std::exchange(after_subscribed_, {});
    for (auto& entry : waiting) entry.second();
    retry_.expires_after(backoff_.next());
    retry_.async_wait([self = shared_from_this()](const error_code& ec) {
        // Unless reconnect_now() connected meanwhile.
        if (!ec && !self->stopped_ && self->conn_->is_dead()) self->connect();
    });
    events_.changed();
}

void redis_subscriber::resubscribe(std::string_view verb, const names& all) {
    std::vector<std::string> args;
    for (auto it = all.begin(); it != all.end();) {
        args.assign(1, std::string(verb));
        for (; it != all.end() && args.size() <= subscribe_batch; ++it) args.push_back(it->first);
        conn_->send_raw(redis_format(args));
    }
}

// The PING after the subscriptions tells when they are in force (a
// connection's commands run in order); each one after tells that the
// connection still carries answers, idle or not.
void redis_subscriber::ping() {
    send_ping();
    liveness_ping_ = pings_sent_;
    ping_timer_.expires_after(options_.command_timeout);
    ping_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
        if (ec || self->stopped_ || !self->connected()) return;
        if (self->pings_answered_ < self->liveness_ping_)
            self->conn_->abort("no answer to PING within " + std::to_string(self->options_.command_timeout.count()) +
                               " ms");
        else
            self->ping();
    });
}

void redis_subscriber::send_ping() {
    conn_->send_raw(redis_format({"PING"}));
    ++pings_sent_;
    if (unconfirmed_) {
        confirming_ping_ = pings_sent_;
        unconfirmed_ = false;
    }
}

void redis_subscriber::after_subscribed(std::function<void()> fn) {
    if (stopped_) return;
    if (unconfirmed_ && connected()) send_ping();
    if (!connected() || (pings_answered_ >= confirming_ping_ && after_subscribed_.empty())) {
        fn();
        return;
    }
    after_subscribed_.emplace_back(confirming_ping_, std::move(fn));
}

// Messages of what was unsubscribed, on their way before the UNSUBSCRIBE
// took effect, are not delivered.
void redis_subscriber::on_push(const redisReply& reply) {
    const redis_push p = parse_push(reply);
    switch (p.what) {
        case redis_push::kind::message:
            if (channels_.find(p.channel) != channels_.end()) events_.message({}, p.channel, p.payload);
            break;
        case redis_push::kind::pmessage:
            if (patterns_.find(p.pattern) != patterns_.end()) events_.message(p.pattern, p.channel, p.payload);
            break;
        case redis_push::kind::pong:
            ++pings_answered_;
            if (!ready_ && pings_answered_ >= confirming_ping_) {
                ready_ = true;
                events_.changed();
            }
            // In the order they were asked for, as the reads they start.
            while (!after_subscribed_.empty() && after_subscribed_.front().first <= pings_answered_ &&
                   !stopped_) {
                std::function<void()> fn = std::move(after_subscribed_.front().second);
                after_subscribed_.pop_front();
                fn();
            }
            break;
        case redis_push::kind::smessage:
            if (shard_channels_.find(p.channel) != shard_channels_.end()) events_.message({}, p.channel, p.payload);
            break;
        case redis_push::kind::sunsubscribe:
            // Not asked for while the channel is held: its slot moved.
            if (shard_channels_.find(p.channel) != shard_channels_.end())
                lose_subscription("Redis ended the subscription to " + std::string(p.channel) +
                                      ": its slot moved to another node",
                                  {});
            break;
        case redis_push::kind::error:
            // A sharded channel's (MOVED, an unknown command, NOPERM): this
            // connection is for it. Another refused (an ACL's channel
            // rules) leaves the connection to the others.
            if (shard_channels_.empty())
                HS_LOG(warn, "redis.subscription_refused").kv("reason", p.payload);
            else
                lose_subscription("Redis refused a subscription: " + std::string(p.payload), p.payload);
            break;
        case redis_push::kind::ack:
        case redis_push::kind::other: break;
    }
}

void redis_subscriber::lose_subscription(std::string why, std::string_view error) {
    if (!connected()) return;
    HS_LOG(warn, "redis.subscription_lost").kv("reason", why);
    if (events_.refused) events_.refused(error);
    if (!stopped_ && connected()) conn_->abort(std::move(why));
}

void redis_subscriber::send_subscription(std::string_view verb, const std::string& name) {
    conn_->send_raw(redis_format({std::string(verb), name}));
    unconfirmed_ = true;
}

void redis_subscriber::add(names& all, std::string_view verb, const std::string& name) {
    if (++all[name] == 1 && connected()) send_subscription(verb, name);
}

void redis_subscriber::drop(names& all, std::string_view verb, const std::string& name) {
    const auto it = all.find(name);
    if (it == all.end() || --it->second > 0) return;
    all.erase(it);
    if (connected()) send_subscription(verb, name);
}

}  // namespace hyperstreams::router
