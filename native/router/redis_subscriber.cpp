#include "redis_subscriber.hpp"

#include "log.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// Channels or patterns per SUBSCRIBE or PSUBSCRIBE when subscriptions are
// made again.
constexpr std::size_t subscribe_batch = 1024;

}  // namespace

redis_subscriber::redis_subscriber(asio::io_context& io, const redis_options& options, events e)
    : io_(io), options_(options), events_(std::move(e)), retry_(io), ping_timer_(io), backoff_(options) {}

void redis_subscriber::start() {
    if (started_ || stopped_) return;
    started_ = true;
    connect();
}

void redis_subscriber::stop() {
    stopped_ = true;
    ready_ = false;
    if (conn_) conn_->close();
    retry_.cancel();
    ping_timer_.cancel();
}

void redis_subscriber::connect() {
    redis_connection::events e;
    e.up = [this] { on_up(); };
    e.failed = [](redis_request_ptr, redis_status, std::string) {};
    e.down = [this](std::string why) { on_down(std::move(why)); };
    e.answered = [](redis_request_ptr, redis_reply) {};
    e.pushed = [this](redis_reply reply) { on_push(*reply); };
    conn_ = std::make_shared<redis_connection>(io_, events_.where(), options_, true, std::move(e));
    conn_->connect();
}

void redis_subscriber::on_up() {
    backoff_.reset();
    if (failed_) events_.reconnected();
    resubscribe("SUBSCRIBE", channels_);
    resubscribe("PSUBSCRIBE", patterns_);
    ping();
}

void redis_subscriber::on_down(std::string why) {
    HS_LOG(warn, "redis.subscriber_down").kv("reason", why);
    ready_ = false;
    failed_ = true;
    down_reason_ = std::move(why);
    ping_timer_.cancel();
    retry_.expires_after(backoff_.next());
    retry_.async_wait([self = shared_from_this()](const error_code& ec) {
        if (!ec && !self->stopped_) self->connect();
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
    ping_outstanding_ = true;
    conn_->send_raw(redis_format({"PING"}));
    ping_timer_.expires_after(options_.command_timeout);
    ping_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
        if (ec || self->stopped_ || !self->connected()) return;
        if (self->ping_outstanding_)
            self->conn_->abort("no answer to PING within " + std::to_string(self->options_.command_timeout.count()) +
                               " ms");
        else
            self->ping();
    });
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
            ping_outstanding_ = false;
            if (!ready_) {
                ready_ = true;
                events_.changed();
            }
            break;
        case redis_push::kind::ack:
        case redis_push::kind::other: break;
    }
}

void redis_subscriber::add(names& all, std::string_view verb, const std::string& name) {
    if (++all[name] == 1 && connected()) conn_->send_raw(redis_format({std::string(verb), name}));
}

void redis_subscriber::drop(names& all, std::string_view verb, const std::string& name) {
    const auto it = all.find(name);
    if (it == all.end() || --it->second > 0) return;
    all.erase(it);
    if (connected()) conn_->send_raw(redis_format({std::string(verb), name}));
}

}  // namespace hyperstreams::router
