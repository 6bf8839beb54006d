#include "redis_presence.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>

#include "log.hpp"

namespace hyperstreams::router {
namespace {

// KEYS: the presence hash. ARGV: the address, the value, the pub/sub
// channel, the event ('' for none), and (join) the hash's expiry in ms.
constexpr const char* join_script = R"lua(
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('pexpire', KEYS[1], ARGV[5])
if ARGV[4] ~= '' then redis.call('publish', ARGV[3], ARGV[4]) end
return 1
)lua";

constexpr const char* leave_script = R"lua(
redis.call('hdel', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then redis.call('publish', ARGV[3], ARGV[4]) end
return 1
)lua";

constexpr unsigned char event_marker = 0x80;

std::string_view text_of(const redisReply* r) noexcept {
    return r && r->str ? std::string_view(r->str, r->len) : std::string_view();
}

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string_view chars(bytes_view b) noexcept { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

redis_presence::redis_presence(redis_engine& engine, redis_log& log, std::string prefix, std::string router_id,
                               std::chrono::milliseconds expiry)
    : engine_(engine),
      log_(log),
      prefix_(std::move(prefix)),
      routers_key_(prefix_ + ":routers"),
      router_id_(std::move(router_id)),
      join_script_(engine.load_script(join_script)),
      leave_script_(engine.load_script(leave_script)),
      expiry_ms_(std::to_string(expiry.count())) {}

void redis_presence::refresh() {
    std::vector<std::string> channels;
    {
        std::lock_guard lock(local_mu_);
        channels.reserve(local_.size());
        for (const auto& entry : local_) channels.push_back(entry.first);
    }
    for (const std::string& channel : channels) {
        const std::string k = key(channel);
        engine_.command(k, {"PEXPIRE", k, expiry_ms_}, [](redis_result) {});
    }
}

std::string redis_presence::key(std::string_view channel) const {
    return prefix_ + ":{" + std::string(channel) + "}:presence";
}

void redis_presence::change(const redis_script_ref& script, frame_kind kind, std::string_view channel,
                            std::string_view address, bytes_view member, bool announce) {
    std::string value;
    value.push_back(static_cast<char>(router_id_.size()));
    value += router_id_;
    value += chars(member);
    std::string event;
    if (announce) {
        event.push_back(static_cast<char>(event_marker));
        event.push_back(static_cast<char>(kind));
        event += chars(member);
    }
    const std::string k = key(channel);
    const std::string pubsub = log_.pubsub_channel(channel);
    const std::string_view args[] = {"1", k, address, value, pubsub, event, expiry_ms_};
    engine_.run_script(k, script, args, [this, name = std::string(channel)](redis_result r) {
        // The member is missing from (or left in) the other routers' reads
        // until it subscribes again: said, not hidden (a join refused by a
        // Redis at its memory limit comes once per subscribe: throttled).
        if (r.status != redis_status::ok || r.reply->type == REDIS_REPLY_ERROR) {
            HS_LOG_THROTTLED(write_log_, warn, "cluster.presence_write_failed")
                .kv("channel", name)
                .kv("why", redis_failure(r));
        }
    });
}

void redis_presence::joined(std::string_view channel, std::string_view address, bytes_view member, bool announce) {
    {
        std::lock_guard lock(local_mu_);
        ++local_[std::string(channel)];
    }
    change(join_script_, frame_kind::join, channel, address, member, announce);
}

void redis_presence::left(std::string_view channel, std::string_view address, bytes_view member, bool announce) {
    {
        std::lock_guard lock(local_mu_);
        const auto it = local_.find(std::string(channel));
        if (it != local_.end() && --it->second == 0) local_.erase(it);
    }
    change(leave_script_, frame_kind::leave, channel, address, member, announce);
}

void redis_presence::read(std::uint64_t ticket, std::string_view channel) {
    const std::string k = key(channel);
    engine_.command(k, {"HGETALL", k}, [this, ticket, k](redis_result r) {
        const redisReply* a = r.reply.get();
        if (r.status != redis_status::ok || a->type != REDIS_REPLY_ARRAY) {
            fail_read(ticket, r);
            return;
        }
        // address, router id, member body
        auto members = std::make_shared<std::vector<std::array<std::string, 3>>>();
        std::vector<std::string> ask{"HMGET", routers_key_};
        for (std::size_t i = 0; i + 1 < a->elements; i += 2) {
            const std::string_view value = text_of(a->element[i + 1]);
            const std::size_t id_size = value.empty() ? 0 : static_cast<unsigned char>(value[0]);
            if (value.size() < 1 + id_size) continue;
            const std::string_view router = value.substr(1, id_size);
            members->push_back({std::string(text_of(a->element[i])), std::string(router),
                                std::string(value.substr(1 + id_size))});
            if (router != router_id_ && std::find(ask.begin() + 2, ask.end(), router) == ask.end())
                ask.emplace_back(router);
        }
        if (ask.size() == 2) {
            answer_read(ticket, k, *members, {});
            return;
        }
        // The routers' membership, read now: a router that started since
        // this one's last heartbeat counts, one that stopped does not.
        std::vector<std::string> asked(ask.begin() + 2, ask.end());
        engine_.command(routers_key_, std::move(ask),
                        [this, ticket, k, members, asked = std::move(asked)](redis_result rr) {
            const redisReply* e = rr.reply.get();
            if (rr.status != redis_status::ok || e->type != REDIS_REPLY_ARRAY || e->elements != asked.size()) {
                fail_read(ticket, rr);
                return;
            }
            const std::int64_t now = unix_ms();
            std::vector<std::string> alive;
            for (std::size_t i = 0; i < asked.size(); ++i) {
                // "<expiry ms> <ws url> <backend endpoint>" (cluster_node.hpp)
                const std::string_view value = text_of(e->element[i]);
                std::int64_t expiry = 0;
                std::from_chars(value.data(), value.data() + value.size(), expiry);
                if (expiry > now) alive.push_back(asked[i]);
            }
            answer_read(ticket, k, *members, alive);
        });
    });
}

void redis_presence::answer_read(std::uint64_t ticket, const std::string& k,
                                 const std::vector<std::array<std::string, 3>>& members,
                                 const std::vector<std::string>& alive) {
    std::vector<std::string> bodies;
    std::vector<std::string> gone{"HDEL", k};
    for (const auto& [address, router, body] : members) {
        if (router == router_id_ || std::find(alive.begin(), alive.end(), router) != alive.end())
            bodies.push_back(body);
        else
            gone.push_back(address);
    }
    if (gone.size() > 2) engine_.command(k, std::move(gone), [](redis_result) {});
    log_.enter_call([this, ticket, b = std::move(bodies)]() mutable { sink_->presence_read(ticket, std::move(b)); });
}

void redis_presence::fail_read(std::uint64_t ticket, const redis_result& r) {
    log_.enter_call([this, ticket, why = redis_failure(r)] {
        sink_->presence_failed(ticket, errc::cluster_unavailable, why);
    });
}

void redis_presence::on_event(std::string_view channel, std::string_view event) {
    if (event.size() < 2) return;
    const auto kind = static_cast<frame_kind>(static_cast<unsigned char>(event[1]));
    if (kind != frame_kind::join && kind != frame_kind::leave) return;
    const std::string_view member = event.substr(2);
    sink_->presence_event(kind, channel, {reinterpret_cast<const std::uint8_t*>(member.data()), member.size()});
}

}  // namespace hyperstreams::router
