#include "cluster_node.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <utility>

#include "log.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string_view text_of(const redisReply* r) noexcept {
    return r && r->str ? std::string_view(r->str, r->len) : std::string_view();
}

// KEYS: the membership hash. ARGV: this router's id, its entry. A Redis at
// its memory limit (maxmemory) refuses the writes that may grow it, HSET
// among them, and a router whose beats it refused would be taken for gone
// by every router, itself included, while it works; so the beat may
// (allow-oom, Redis 7's script flags): it overwrites an entry of the same
// size, which costs no memory, but when the router joins.
constexpr const char* beat_script = R"lua(#!lua flags=allow-oom
return redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
)lua";

}  // namespace

cluster_node::cluster_node(asio::io_context& io, const router_config& cfg, std::string router_id)
    : interval_(cfg.heartbeat_interval_ms),
      timeout_(cfg.heartbeat_timeout_ms),
      members_key_(cfg.cluster_prefix + ":routers"),
      ioc_(io),
      router_id_(std::move(router_id)),
      engine_(ioc_,
              redis_options{cfg.cluster_redis, cfg.cluster_redis_user, cfg.cluster_redis_password,
                            cfg.cluster_prefix + ":" + router_id_,
                            redis_tls_options{cfg.cluster_redis_tls_ca_file, cfg.cluster_redis_tls_cert_file,
                                              cfg.cluster_redis_tls_key_file}},
              redis_engine::handlers{[this](std::string_view, std::string_view channel, std::string_view payload) {
                                         if (channel == members_key_)
                                             on_members_changed(payload);
                                         else if (!bus_.on_message(channel, payload))
                                             log_.on_message(channel, payload);
                                     },
                                     [this](bool up, std::string_view reason) { on_state(up, reason); },
                                     // Said in the membership now rather than at the next beat.
                                     [this] {
                                         if (started_ && !stopped_) beat();
                                     }}),
      log_(engine_, redis_log_options{cfg.cluster_prefix, cfg.history_meta_ttl_s, cfg.max_channels,
                                      cfg.cluster_redis_wait_replicas,
                                      std::chrono::milliseconds(cfg.cluster_redis_wait_timeout_ms)}),
      // A router silent for the heartbeat timeout is gone: one that took a
      // direct message and did not answer by then may or may not have
      // delivered it.
      bus_(ioc_, engine_, cfg.cluster_prefix, router_id_, timeout_),
      presence_(engine_, log_, cfg.cluster_prefix, router_id_, timeout_),
      beat_script_(engine_.load_script(beat_script)),
      beat_timer_(ioc_) {
    log_.set_presence_events(
        [this](std::string_view channel, std::string_view event) { presence_.on_event(channel, event); });
}

cluster_node::~cluster_node() { stop(); }

void cluster_node::start(core_runner& core, std::string ws_url, std::string backend) {
    core_ = &core;
    member_value_tail_ = " " + ws_url + " " + backend;
    const auto enter = [&core](const std::function<void()>& answer) { core.log_answer(answer); };
    log_.set_entry(enter);
    bus_.start(enter, [this](std::string_view id) { return member(id); });
    engine_.subscribe(members_key_);
    engine_.start();
    asio::post(ioc_, [this] { beat(); });
    started_ = true;
}

void cluster_node::stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    beat_timer_.cancel();
    bus_.stop();
    engine_.stop();
}

void cluster_node::leave(std::function<void()> left) {
    asio::post(ioc_, [this, left = std::move(left)]() mutable {
        leaving_ = true;
        bus_.leaving();
        beat_timer_.cancel();
        engine_.command(members_key_, {"HDEL", members_key_, router_id_},
                        [this, left = std::move(left)](redis_result r) mutable {
                            if (r.status != redis_status::ok) {
                                if (left) left();
                                return;
                            }
                            announce(std::move(left));
                        });
    });
}

// On the engine's thread.
void cluster_node::on_state(bool up, std::string_view reason) {
    log_.on_state(up, reason);
    if (!up) {
        announced_ = false;
        membership_unread_ = true;
        return;
    }
    // Back (or up for the first time): the membership may be gone with the
    // Redis that held it; write it now rather than at the next beat.
    if (started_ && !stopped_) beat();
}

// The other routers read the membership at once when it changed, rather
// than at their next beat: a router that starts is joined by the backends
// of the others within a Redis round trip, and one that drains is no
// longer sent clients or backends. Published once the change is in the
// hash (its write answered), so a read that follows the message sees it.
void cluster_node::announce(std::function<void()> done) {
    engine_.command({}, {"PUBLISH", members_key_, router_id_}, [done = std::move(done)](redis_result) {
        if (done) done();
    });
}

void cluster_node::on_members_changed(std::string_view router_id) {
    if (router_id != router_id_ && !leaving_) read_members();
}

// On the engine's thread: this router's heartbeat, then who else is alive.
void cluster_node::beat() {
    if (leaving_) return;
    const std::int64_t now = unix_ms();
    const bool sharded = engine_.listens_sharded();
    const std::string entry = std::to_string(now + timeout_.count()) + member_value_tail_ + (sharded ? " sharded" : "");
    const std::string_view args[] = {"1", members_key_, router_id_, entry};
    engine_.run_script(members_key_, beat_script_, args, [this, sharded](redis_result r) {
        if (r.status != redis_status::ok || r.reply->type == REDIS_REPLY_ERROR) {
            // Redis down says so itself (cluster.redis_down); a refusal
            // (an ACL without EVALSHA, a script error) would leave this
            // router out of the membership unsaid.
            if (r.status == redis_status::ok) {
                HS_LOG_THROTTLED(beat_log_, warn, "cluster.heartbeat_failed").kv("why", redis_failure(r));
            }
            return;
        }
        // HSET answers 1 when the field is new: this router joined, or
        // came back after Redis lost the hash. Whether it listens on its
        // sharded channel is news too (known once Redis confirmed the
        // subscription).
        const bool added = r.reply->type == REDIS_REPLY_INTEGER && r.reply->integer == 1;
        if ((added || !announced_ || sharded != announced_sharded_) && !leaving_) {
            announced_ = true;
            announced_sharded_ = sharded;
            announce();
        }
    });
    // The presence hashes this router has members in live as long as it does.
    presence_.refresh();
    read_members();
    beat_timer_.expires_after(interval_);
    beat_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) beat();
    });
}

// On the engine's thread: who is alive, from the membership hash.
void cluster_node::read_members() {
    engine_.command(members_key_, {"HGETALL", members_key_}, [this](redis_result r) {
        const redisReply* a = r.reply.get();
        if (r.status != redis_status::ok || a->type != REDIS_REPLY_ARRAY) {
            membership_unread_ = true;
            return;
        }
        const std::int64_t now = unix_ms();
        const auto steady_now = std::chrono::steady_clock::now();
        if (std::exchange(membership_unread_, false)) settle_until_ = steady_now + timeout_;
        const bool settling = steady_now < settle_until_;
        std::vector<peer_router> alive;
        std::vector<std::string> stale;
        for (std::size_t i = 0; i + 1 < a->elements; i += 2) {
            const std::string id(text_of(a->element[i]));
            // "<expiry ms> <ws url> <backend endpoint>[ sharded]"
            std::istringstream value{std::string(text_of(a->element[i + 1]))};
            std::int64_t expiry = 0;
            peer_router p;
            p.id = id;
            std::string flag;
            value >> expiry >> p.websocket_url >> p.backend >> flag;
            p.sharded_inbox = flag == "sharded";
            if (expiry > now || (settling && is_member(id)))
                alive.push_back(std::move(p));
            else if (expiry < now - 10 * timeout_.count())
                stale.push_back(id);  // long gone: nobody needs to see it again
        }
        std::sort(alive.begin(), alive.end(), [](const peer_router& x, const peer_router& y) { return x.id < y.id; });
        if (!stale.empty()) {
            std::vector<std::string> del{"HDEL", members_key_};
            del.insert(del.end(), stale.begin(), stale.end());
            engine_.command(members_key_, std::move(del), [](redis_result) {});
        }
        tell_backends(alive);
        std::lock_guard lock(members_mu_);
        if (alive.size() != members_.size()) {
            HS_LOG(info, "cluster.routers").kv("alive", alive.size());
        }
        members_ = std::move(alive);
    });
}

// The backends that follow the cluster join every other router alive: tell
// the core when that list changed.
void cluster_node::tell_backends(const std::vector<peer_router>& alive) {
    if (leaving_) return;
    std::vector<std::pair<std::string, std::string>> others;
    for (const peer_router& p : alive)
        if (p.id != router_id_ && !p.backend.empty()) others.emplace_back(p.id, p.backend);
    if (told_ && others == told_backends_) return;
    routers_body body;
    for (const auto& [id, backend] : others) body.routers.push_back({id, backend});
    core_->set_cluster_routers(body);
    told_ = true;
    told_backends_ = std::move(others);
}

std::string cluster_node::not_ready() const {
    return log_.up() ? std::string() : "Redis is unreachable: " + log_.down_reason();
}

cluster_view cluster_node::view() const {
    cluster_view v;
    v.redis_up = log_.up();
    if (!v.redis_up) v.down_reason = log_.down_reason();
    {
        std::lock_guard lock(members_mu_);
        for (const peer_router& p : members_) v.routers.push_back(p.id);
    }
    const redis_stats s = engine_.stats();
    v.redis_nodes = s.nodes;
    v.redis_rtt_ms = s.rtt_ewma_ms;
    v.redis_commands = s.commands;
    v.redis_errors = s.errors;
    v.redis_messages = s.messages;
    v.redis_reconnects = s.reconnects;
    v.redis_redirects = s.redirects;
    v.redis_sharded_pubsub = s.listens_sharded;
    v.recovered = log_.recovered();
    v.publish_failures = log_.publish_failures();
    v.unreplicated = log_.unreplicated();
    v.bad_messages = log_.bad_messages() + bus_.bad_messages();
    v.heartbeat_failures = beat_log_.occurrences();
    v.presence_write_failures = presence_.write_failures();
    return v;
}

bool cluster_node::is_member(std::string_view router_id) const { return member(router_id).alive; }

redis_bus::member_info cluster_node::member(std::string_view router_id) const {
    std::lock_guard lock(members_mu_);
    const auto it =
        std::find_if(members_.begin(), members_.end(), [&](const peer_router& p) { return p.id == router_id; });
    return it == members_.end() ? redis_bus::member_info{} : redis_bus::member_info{true, it->sharded_inbox};
}

std::vector<cluster_node::peer_router> cluster_node::drain_order() const {
    std::vector<peer_router> after;
    std::vector<peer_router> before;
    std::lock_guard lock(members_mu_);
    for (const peer_router& p : members_) {  // by id
        if (p.id == router_id_ || p.websocket_url.empty()) continue;
        (p.id > router_id_ ? after : before).push_back(p);
    }
    after.insert(after.end(), before.begin(), before.end());
    return after;
}

void cluster_node::find_live_router(std::chrono::milliseconds bound,
                                    std::function<void(std::optional<peer_router>)> done) {
    using answer = redis_bus::ping_answer;
    // What the pings said so far; shared with the bus's callbacks and the
    // bound's timer, which may come after the choice was made.
    struct search {
        search(asio::io_context& io, std::vector<peer_router> c, std::function<void(std::optional<peer_router>)> d)
            : candidates(std::move(c)), heard(candidates.size()), done(std::move(d)), timer(io) {}
        std::vector<peer_router> candidates;
        std::vector<std::optional<answer>> heard;  // none yet: waiting
        std::function<void(std::optional<peer_router>)> done;
        asio::steady_timer timer;
        // The first that answered, once every one before it is gone or not
        // known; when none answered, the first not known (Redis failed: the
        // membership's word), else none.
        void settle() {
            if (!done) return;
            std::optional<std::size_t> first_unknown;
            for (std::size_t i = 0; i < candidates.size(); ++i) {
                if (!heard[i]) return;
                if (*heard[i] == answer::alive) return finish(i);
                if (*heard[i] == answer::unknown && !first_unknown) first_unknown = i;
            }
            finish(first_unknown.value_or(candidates.size()));
        }
        void finish(std::size_t chosen) {
            for (std::size_t i = 0; i < std::min(chosen, candidates.size()); ++i)
                HS_LOG(warn, "cluster.drain_skipped").kv("router", candidates[i].id)
                    .kv("why", *heard[i] == answer::gone ? "gone or draining" : "Redis failed the ping");
            timer.cancel();
            std::exchange(done, nullptr)(chosen < candidates.size() ? std::optional(candidates[chosen]) : std::nullopt);
        }
    };
    asio::post(ioc_, [this, bound, done = std::move(done)]() mutable {
        auto s = std::make_shared<search>(ioc_, drain_order(), std::move(done));
        for (std::size_t i = 0; i < s->candidates.size(); ++i) {
            bus_.ping(s->candidates[i].id, [s, i](answer a) {
                s->heard[i] = a;
                s->settle();
            });
        }
        // Silent while Redis carried the ping: gone (killed, on a Redis
        // Cluster, whose count of receivers could not say so).
        s->timer.expires_after(bound);
        s->timer.async_wait([s](const boost::system::error_code& ec) {
            if (ec) return;
            for (auto& h : s->heard)
                if (!h) h = answer::gone;
            s->settle();
        });
        s->settle();  // none to ask
    });
}

std::string cluster_node::render_metrics() const {
    const cluster_view v = view();
    std::string out;
    append_series(out, "hyperstreams_cluster_redis_up", "gauge", "1 when every Redis slot is served and subscribed", v.redis_up ? 1 : 0);
    append_series(out, "hyperstreams_cluster_routers", "gauge", "routers of the cluster alive (heartbeating into Redis)",
           static_cast<double>(v.routers.size()));
    append_series(out, "hyperstreams_cluster_redis_rtt_seconds", "gauge", "round trip of Redis commands, smoothed",
           v.redis_rtt_ms / 1000.0);
    append_series(out, "hyperstreams_cluster_redis_commands_total", "counter", "commands sent to Redis",
           static_cast<double>(v.redis_commands));
    append_series(out, "hyperstreams_cluster_redis_errors_total", "counter",
           "Redis commands that failed (unreachable, lost, timed out, error replies)",
           static_cast<double>(v.redis_errors));
    append_series(out, "hyperstreams_cluster_redis_messages_total", "counter", "pub/sub messages received from Redis",
           static_cast<double>(v.redis_messages));
    append_series(out, "hyperstreams_cluster_redis_reconnects_total", "counter", "connections to Redis made again",
           static_cast<double>(v.redis_reconnects));
    append_series(out, "hyperstreams_cluster_redis_redirects_total", "counter", "Redis Cluster MOVED and ASK followed",
           static_cast<double>(v.redis_redirects));
    append_series(out, "hyperstreams_cluster_redis_sharded_pubsub", "gauge",
           "1 when the router listens on its own channel as a sharded one (a Redis Cluster that allows it)",
           v.redis_sharded_pubsub ? 1 : 0);
    append_series(out, "hyperstreams_cluster_recovered_total", "counter",
           "publications the pub/sub missed (its connection was down) read from the streams and delivered",
           static_cast<double>(v.recovered));
    append_series(out, "hyperstreams_cluster_publish_failures_total", "counter",
           "publications refused for want of Redis or failed there (cluster_unavailable, cluster_outcome_unknown)",
           static_cast<double>(v.publish_failures));
    append_series(out, "hyperstreams_cluster_unreplicated_total", "counter",
           "publications made but not acked: fewer replicas than cluster.redis_wait_replicas acknowledged them",
           static_cast<double>(v.unreplicated));
    append_series(out, "hyperstreams_cluster_bad_messages_total", "counter",
           "messages on the routers' Redis channels dropped as malformed (cluster.bad_message, cluster.bad_batch)",
           static_cast<double>(v.bad_messages));
    append_series(out, "hyperstreams_cluster_heartbeat_failures_total", "counter",
           "this router's heartbeats Redis refused (cluster.heartbeat_failed): past heartbeat.timeout_ms of them, "
           "the other routers take it for gone",
           static_cast<double>(v.heartbeat_failures));
    append_series(out, "hyperstreams_cluster_presence_write_failures_total", "counter",
           "presence joins and leaves Redis refused or did not answer (cluster.presence_write_failed)",
           static_cast<double>(v.presence_write_failures));
    return out;
}

}  // namespace hyperstreams::router
