#include "redis_bus.hpp"

#include <hiredis/hiredis.h>

#include "log.hpp"

namespace hyperstreams::router {
namespace {

constexpr char kind_direct = 'd';
constexpr char kind_answer = 'a';
constexpr char kind_subscription = 's';
constexpr char kind_ping = 'p';
constexpr std::uint8_t subscribing = 0x01;
// The sender's reply: a ticket when it waits for the ack, else the
// connection and frame id its failure goes to.
constexpr char reply_ticket = 1;
constexpr char reply_connection = 0;
// A router alive in the membership and not on its sharded channel is
// asked again this many times, after a pause from gone_check_pause
// doubled each time (50 + 100 + 200 + 400 ms), before it is taken as gone:
// its subscription follows its channel's slot when the slot moves to
// another node, and is made again when that node fails over.
constexpr int gone_checks = 4;
constexpr std::chrono::milliseconds gone_check_pause{50};

void put_name(std::string& out, std::string_view name) {
    out.push_back(static_cast<char>(name.size()));
    out.append(name);
}

void put_le(std::string& out, std::uint64_t v, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Takes a [len u8][bytes] name off the front of `in`; false when it does not fit.
bool take_name(std::string_view& in, std::string_view& name) {
    if (in.empty()) return false;
    const std::size_t n = static_cast<unsigned char>(in[0]);
    if (in.size() < 1 + n) return false;
    name = in.substr(1, n);
    in.remove_prefix(1 + n);
    return true;
}

bool take_le(std::string_view& in, std::size_t bytes, std::uint64_t& out) {
    if (in.size() < bytes) return false;
    out = 0;
    for (std::size_t i = 0; i < bytes; ++i) out |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(bytes);
    return true;
}

}  // namespace

redis_bus::redis_bus(boost::asio::io_context& io, redis_engine& engine, std::string prefix, std::string router_id,
                     std::chrono::milliseconds answer_timeout)
    : engine_(engine),
      prefix_(std::move(prefix)),
      router_id_(std::move(router_id)),
      own_channel_(prefix_ + ":r:" + router_id_),
      broadcast_channel_(prefix_ + ":b"),
      answer_timeout_(answer_timeout),
      timer_(io) {}

void redis_bus::start(entry e, membership is_member) {
    enter_ = std::move(e);
    is_member_ = std::move(is_member);
    // Both: routers that know this one listens on the sharded channel
    // SPUBLISH (its count is exact on a Redis Cluster); the others
    // (routers from before it) PUBLISH. On a single server both are
    // the one SUBSCRIBE.
    engine_.subscribe(own_channel_);
    engine_.subscribe_sharded(own_channel_);
    engine_.subscribe(broadcast_channel_);
}

void redis_bus::stop() {
    stopped_ = true;
    timer_.cancel();
}

std::uint64_t redis_bus::await_answer(const publisher& ack, std::string_view router_id, std::string& reply,
                                     std::function<void(ping_answer)> probe) {
    std::lock_guard lock(waiting_mu_);
    const std::uint64_t ticket = ++next_ticket_;
    waiting_.emplace(ticket, waiting{ack, std::string(router_id), std::chrono::steady_clock::now() + answer_timeout_,
                                     std::move(probe)});
    by_deadline_.push_back(ticket);
    reply.push_back(reply_ticket);
    put_le(reply, ticket, 8);
    return ticket;
}

void redis_bus::direct(std::string_view router_id, std::string_view to, std::string_view from, std::uint8_t flags,
                       bytes_view payload, const publisher& ack) {
    std::string reply;
    std::uint64_t ticket = 0;
    if (ack.wants_ack) {
        ticket = await_answer(ack, router_id, reply);
    } else {
        reply.push_back(reply_connection);
        put_le(reply, ack.connection, 8);
        put_le(reply, ack.id, 4);
    }
    std::string message;
    message.reserve(6 + router_id_.size() + reply.size() + to.size() + from.size() + payload.size());
    message.push_back(kind_direct);
    put_name(message, router_id_);
    put_name(message, reply);
    message.push_back(static_cast<char>((flags & frame_flags::json) | (ack.wants_ack ? frame_flags::ack_requested : 0)));
    put_name(message, to);
    put_name(message, from);
    message.append(reinterpret_cast<const char*>(payload.data()), payload.size());
    send_to(router_id, std::move(message), ack, ticket);
}

void redis_bus::client_subscription(std::string_view router_id, std::string_view to, std::string_view pattern,
                                    slow_policy policy, bool subscribe, const publisher& ack) {
    std::string reply;
    const std::uint64_t ticket = await_answer(ack, router_id, reply);
    std::string message;
    message.reserve(6 + router_id_.size() + reply.size() + to.size() + pattern.size());
    message.push_back(kind_subscription);
    put_name(message, router_id_);
    put_name(message, reply);
    message.push_back(static_cast<char>(policy_flags(policy) | (subscribe ? subscribing : 0)));
    put_name(message, to);
    put_name(message, pattern);
    send_to(router_id, std::move(message), ack, ticket);
}

void redis_bus::ping(std::string_view router_id, std::function<void(ping_answer)> done) {
    std::string reply;
    const publisher none{};
    const std::uint64_t ticket = await_answer(none, router_id, reply, std::move(done));
    std::string message;
    message.reserve(3 + router_id_.size() + reply.size());
    message.push_back(kind_ping);
    put_name(message, router_id_);
    put_name(message, reply);
    send_to(router_id, std::move(message), none, ticket);
}

void redis_bus::publish_to(std::string_view router_id, bool sharded, std::string message,
                           redis_engine::completion done) {
    std::string channel = prefix_ + ":r:" + std::string(router_id);
    if (sharded)
        engine_.publish_sharded(std::move(channel), std::move(message), std::move(done));
    else
        engine_.command({}, {"PUBLISH", std::move(channel), std::move(message)}, std::move(done));
}

void redis_bus::send_to(std::string_view router_id, std::string message, const publisher& ack,
                        std::uint64_t ticket, int attempt) {
    const bool sharded = is_member_(router_id).sharded_inbox;
    // Kept to send again: see gone_checks.
    std::string again = sharded ? message : std::string();
    publish_to(router_id, sharded, std::move(message),
               [this, ack, ticket, sharded, attempt, again = std::move(again),
                router = std::string(router_id)](redis_result r) mutable {
        const redisReply* a = r.reply.get();
        errc code{};
        std::string why;
        if (r.status != redis_status::ok || a->type != REDIS_REPLY_INTEGER) {
            // Sent, and the answer lost: the router may have it.
            code = r.status == redis_status::lost || r.status == redis_status::timed_out
                       ? errc::cluster_outcome_unknown
                       : errc::cluster_unavailable;
            why = redis_failure(r);
        } else if (a->integer == 0) {
            // The count is of every listener on a single server and with
            // SPUBLISH; else only of the node that took the PUBLISH.
            const bool counted_sharded = sharded && engine_.sharded_pubsub();
            const bool alive = is_member_(router).alive;
            if (counted_sharded && alive && attempt < gone_checks && !stopped_) {
                // Nobody on its sharded channel, while its heartbeat says it
                // is alive: gone, unless its channel follows a slot that just
                // moved.
                engine_.after(gone_check_pause * (1 << attempt),
                              [this, router = std::move(router), again = std::move(again), ack, ticket, attempt] {
                                  if (!stopped_) send_to(router, again, ack, ticket, attempt + 1);
                              });
                return;
            }
            if (counted_sharded || !engine_.is_cluster() || !alive) {
                code = errc::no_such_address;
                why = "no client has this address (router " + router + " is not in the cluster)";
            }
        }
        if (ticket == 0) {
            if (code != errc{}) answer(waiting{ack, router, {}, {}}, code, std::move(why));
            return;
        }
        waiting w;
        if (code == errc{}) {
            arm_timer();  // the router took it: its answer, or the deadline, ends the wait
        } else if (take(ticket, w)) {
            answer(w, code, std::move(why));
        }
    });
}

void redis_bus::broadcast(std::string_view from, std::uint8_t flags, bytes_view payload) {
    std::string message;
    message.reserve(3 + router_id_.size() + from.size() + payload.size());
    put_name(message, router_id_);
    put_name(message, from);
    message.push_back(static_cast<char>(flags & frame_flags::json));
    message.append(reinterpret_cast<const char*>(payload.data()), payload.size());
    engine_.command({}, {"PUBLISH", broadcast_channel_, std::move(message)}, [](redis_result r) {
        if (r.status != redis_status::ok) {
            HS_LOG(warn, "cluster.broadcast_failed").kv("why", r.detail);
        }
    });
}

bool redis_bus::on_message(std::string_view channel, std::string_view payload) {
    if (channel == own_channel_) {
        if (!payload.empty() && payload[0] == kind_direct)
            on_direct(payload.substr(1));
        else if (!payload.empty() && payload[0] == kind_subscription)
            on_subscription(payload.substr(1));
        else if (!payload.empty() && payload[0] == kind_answer)
            on_answer(payload.substr(1));
        else if (!payload.empty() && payload[0] == kind_ping)
            on_ping(payload.substr(1));
        else
            HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", channel).kv("bytes", payload.size());
        return true;
    }
    if (channel != broadcast_channel_) return false;
    std::string_view rest = payload;
    std::string_view origin;
    std::string_view from;
    if (!take_name(rest, origin) || !take_name(rest, from) || rest.empty()) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", channel).kv("bytes", payload.size());
        return true;
    }
    if (origin == router_id_) return true;  // this router's own broadcast: its clients have it
    const auto flags = static_cast<std::uint8_t>(static_cast<unsigned char>(rest[0]) & frame_flags::json);
    rest.remove_prefix(1);
    enter_([this, from = std::string(from), flags, body = std::string(rest)] {
        sink_->broadcast_arrived(from, flags,
                                 bytes_view(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
    });
    return true;
}

// A direct for one of this router's clients: delivered, or not, and the
// sender's router told (of a delivery only when its client wants the ack).
void redis_bus::on_direct(std::string_view message) {
    std::string_view rest = message;
    std::string_view origin;
    std::string_view reply;
    std::string_view to;
    std::string_view from;
    if (!take_name(rest, origin) || !take_name(rest, reply) || rest.empty()) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", own_channel_).kv("bytes", message.size());
        return;
    }
    const auto flags = static_cast<std::uint8_t>(rest[0]);
    rest.remove_prefix(1);
    if (!take_name(rest, to) || !take_name(rest, from)) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", own_channel_).kv("bytes", message.size());
        return;
    }
    enter_([this, origin = std::string(origin), reply = std::string(reply), to = std::string(to),
            from = std::string(from), flags, body = std::string(rest)] {
        const bool delivered = sink_->direct_arrived(
            to, from, static_cast<std::uint8_t>(flags & frame_flags::json),
            bytes_view(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
        if (delivered && (flags & frame_flags::ack_requested) == 0) return;
        reply_to(origin, reply, delivered ? errc{} : errc::no_such_address, {});
    });
}

// A subscribe_client or unsubscribe_client for one of this router's
// clients: the sender's router gets the verdict.
void redis_bus::on_subscription(std::string_view message) {
    std::string_view rest = message;
    std::string_view origin;
    std::string_view reply;
    std::string_view to;
    std::string_view pattern;
    if (!take_name(rest, origin) || !take_name(rest, reply) || rest.empty()) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", own_channel_).kv("bytes", message.size());
        return;
    }
    const auto flags = static_cast<std::uint8_t>(rest[0]);
    rest.remove_prefix(1);
    if (!take_name(rest, to) || !take_name(rest, pattern) || !rest.empty()) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", own_channel_).kv("bytes", message.size());
        return;
    }
    enter_([this, origin = std::string(origin), reply = std::string(reply), to = std::string(to),
            pattern = std::string(pattern), flags] {
        const verdict v = sink_->client_subscription_arrived(to, pattern, policy_of(flags), (flags & subscribing) != 0);
        reply_to(origin, reply, v ? static_cast<errc>(v.code.value()) : errc{}, v.reason);
    });
}

// Answered here, on the engine's thread: the core has nothing to say.
void redis_bus::on_ping(std::string_view message) {
    std::string_view rest = message;
    std::string_view origin;
    std::string_view reply;
    if (!take_name(rest, origin) || !take_name(rest, reply) || !rest.empty()) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", own_channel_).kv("bytes", message.size());
        return;
    }
    reply_to(origin, reply, leaving_ ? errc::going_away : errc{}, leaving_ ? "the router is draining" : "");
}

void redis_bus::reply_to(std::string_view origin, std::string_view reply, errc code, std::string_view text) {
    std::string answer_message;
    answer_message.push_back(kind_answer);
    put_name(answer_message, reply);
    put_le(answer_message, static_cast<std::uint16_t>(code), 2);
    answer_message.append(text);
    publish_to(origin, is_member_(origin).sharded_inbox, std::move(answer_message), [](redis_result r) {
        if (r.status != redis_status::ok) {
            HS_LOG(warn, "cluster.answer_failed").kv("why", r.detail);
        }
    });
}

void redis_bus::on_answer(std::string_view message) {
    std::string_view rest = message;
    std::string_view reply;
    std::uint64_t code = 0;
    if (!take_name(rest, reply) || !take_le(rest, 2, code) || reply.empty()) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", own_channel_).kv("bytes", message.size());
        return;
    }
    const char kind = reply[0];
    reply.remove_prefix(1);
    const auto outcome = static_cast<errc>(code);
    std::string text = outcome == errc{} || !rest.empty() ? std::string(rest) : "no client has this address";
    if (kind == reply_ticket) {
        std::uint64_t ticket = 0;
        waiting w;
        if (take_le(reply, 8, ticket) && take(ticket, w)) answer(w, outcome, std::move(text));
        return;
    }
    std::uint64_t connection = 0;
    std::uint64_t id = 0;
    if (take_le(reply, 8, connection) && take_le(reply, 4, id) && outcome != errc{})
        answer(waiting{publisher{connection, static_cast<std::uint32_t>(id), false}, {}, {}, {}}, outcome,
               std::move(text));
}

bool redis_bus::take(std::uint64_t ticket, waiting& out) {
    std::lock_guard lock(waiting_mu_);
    const auto it = waiting_.find(ticket);
    if (it == waiting_.end()) return false;
    out = std::move(it->second);
    waiting_.erase(it);
    return true;
}

void redis_bus::answer(const waiting& w, errc code, std::string text) {
    if (w.probe) {
        w.probe(code == errc{}                                                 ? ping_answer::alive
                : code == errc::no_such_address || code == errc::going_away ? ping_answer::gone
                                                                               : ping_answer::unknown);
        return;
    }
    enter_([this, ack = w.ack, code, text = std::move(text)] { sink_->direct_done(ack, code, text); });
}

void redis_bus::arm_timer() {
    std::chrono::steady_clock::time_point first;
    {
        std::lock_guard lock(waiting_mu_);
        while (!by_deadline_.empty() && waiting_.find(by_deadline_.front()) == waiting_.end())
            by_deadline_.pop_front();
        if (by_deadline_.empty() || timer_armed_ || stopped_) return;
        first = waiting_.at(by_deadline_.front()).deadline;
    }
    timer_armed_ = true;
    timer_.expires_at(first);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        timer_armed_ = false;
        if (!ec && !stopped_) on_timer();
    });
}

// The directs whose router took them and never answered.
void redis_bus::on_timer() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<waiting> late;
    {
        std::lock_guard lock(waiting_mu_);
        while (!by_deadline_.empty()) {
            const auto it = waiting_.find(by_deadline_.front());
            if (it != waiting_.end()) {
                if (it->second.deadline > now) break;
                late.push_back(std::move(it->second));
                waiting_.erase(it);
            }
            by_deadline_.pop_front();
        }
    }
    for (const waiting& w : late)
        answer(w, errc::cluster_outcome_unknown,
               "router " + w.router + " took the message and did not answer within " +
                   std::to_string(answer_timeout_.count()) + " ms");
    arm_timer();
}

}  // namespace hyperstreams::router
