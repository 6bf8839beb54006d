#include "redis_engine.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <array>
#include <bitset>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "log.hpp"
#include "redis_connection.hpp"
#include "redis_subscriber.hpp"
#include "redis_wire.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
using clock = std::chrono::steady_clock;

constexpr std::size_t slot_count = redis_slots;
// A command is sent on at most this many times after MOVED or ASK; a
// cluster that keeps redirecting is being reconfigured faster than it can
// be followed, and the last redirect is the answer.
constexpr int max_redirects = 5;
// Commands wait, rather than fail, only while the topology is first learned
// and while a node's first connection is made; at most this many.
constexpr std::size_t max_waiting = 65536;
// A command answered TRYAGAIN is sent again after a pause, from this one,
// doubled each time up to the next one, for at most the command timeout.
constexpr std::chrono::milliseconds tryagain_pause_min{10};
constexpr std::chrono::milliseconds tryagain_pause_max{160};
// While a sharded channel's subscription is down, the slot map is asked
// for this often.
constexpr std::chrono::milliseconds sharded_poll{200};

// Redis does not let the router use sharded pub/sub: a server before 7.0,
// or an ACL user without the commands.
bool refuses_sharded(std::string_view error) noexcept {
    return error.starts_with("ERR unknown command") || error.starts_with("NOPERM");
}

// A reply made here, for what is refused before it is sent.
redis_reply local_error(std::string_view text) {
    redis_reader reader;
    std::error_code ec;
    (void)reader.feed("-" + std::string(text) + "\r\n");
    return reader.next(ec);
}

}  // namespace

struct redis_engine::impl : std::enable_shared_from_this<impl> {
    struct node {
        node(asio::io_context& io, redis_address a, const redis_options& o)
            : address(std::move(a)), retry(io), backoff(o) {}
        redis_address address;
        std::shared_ptr<redis_connection> conn;
        asio::steady_timer retry;
        redis_backoff backoff;
        // Writes with a redis_wait, answered here: their completions wait
        // for a WAIT on `waits`, a second connection to the node that
        // carries nothing else: a write of the last one's fence key, then
        // WAIT. The fence runs after every write already answered, so the
        // WAIT, which counts what its own connection wrote, covers them;
        // and `conn`'s commands go on while it waits (Redis holds a
        // connection's later commands while its WAIT waits). At most one
        // WAIT on the wire: the writes answered meanwhile share the next,
        // sent once it answered.
        std::shared_ptr<redis_connection> waits;
        bool waiting_replicas = false;
        std::vector<std::pair<redis_request_ptr, redis_reply>> next_wait;
        redis_wait next_wait_options{};
        // A connection to it failed since the node was learned: commands
        // fail at once while it is down instead of waiting for an attempt.
        bool failed_before = false;
        std::string down_reason;
    };

    struct op {
        enum class kind : std::uint8_t {
            command,
            subscribe,
            unsubscribe,
            psubscribe,
            punsubscribe,
            subscribed,
            subscribe_sharded
        };
        kind what = kind::command;
        redis_request_ptr request;
        std::string name;
        std::function<void()> call;  // subscribed
    };

    enum class mode : std::uint8_t { discovering, single, cluster };

    impl(asio::io_context& i, redis_options o, handlers hs)
        : io(i), opts(std::move(o)), h(std::move(hs)), refresh_timer(i), shard_poll_timer(i), refresh_backoff(opts) {
        set_up_tls();
        redis_subscriber::events e = subscriber_events();
        e.where = [this] { return subscriber_node(); };
        e.changed = [this] {
            if (sub->failed()) settled = true;
            if (!sub->ready()) missed.set();
            evaluate();
        };
        sub = std::make_shared<redis_subscriber>(io, opts, tls, "subscriber", std::move(e));
    }

    // "rediss://" addresses, all of them, want TLS: one context for every
    // connection. What cannot be used is setup_error, and the engine's
    // reason to stay down.
    void set_up_tls() {
        bool wanted = false;
        if (redis_addresses_tls(opts.addresses, wanted)) {
            setup_error = "the Redis addresses mix redis:// and rediss://: all TLS or none";
            return;
        }
        if (!wanted) return;
        std::string why;
        tls = make_redis_tls_context(opts.tls, why);
        if (!tls) setup_error = "TLS to Redis: " + why;
    }

    // ---- any thread ----

    void enqueue(op o) {
        bool first = false;
        {
            std::lock_guard lock(inbox_mu);
            if (inbox_closed) return;
            first = inbox.empty();
            inbox.push_back(std::move(o));
        }
        if (first) asio::post(io, [self = shared_from_this()] { self->drain(); });
    }

    redis_stats snapshot() const {
        std::lock_guard lock(stats_mu);
        return st;
    }

    // ---- the engine's thread ----

    // A completion may stop the engine: what is left of the batch is then
    // stop()'s to fail.
    void drain() {
        {
            std::lock_guard lock(inbox_mu);
            for (op& o : inbox) batch.push_back(std::move(o));
            inbox.clear();
        }
        while (!batch.empty() && !stopped) {
            op o = std::move(batch.front());
            batch.pop_front();
            switch (o.what) {
                case op::kind::command: accept(std::move(o.request)); break;
                case op::kind::subscribe: sub->subscribe(o.name); break;
                case op::kind::unsubscribe: sub->unsubscribe(o.name); break;
                case op::kind::psubscribe: sub->psubscribe(o.name); break;
                case op::kind::punsubscribe: sub->punsubscribe(o.name); break;
                case op::kind::subscribed: sub->after_subscribed(std::move(o.call)); break;
                case op::kind::subscribe_sharded:
                    sharded_channels.push_back(o.name);
                    if (m != mode::discovering) place_sharded(o.name);
                    break;
            }
        }
    }

    void start() {
        if (started || stopped) return;
        started = true;
        std::vector<redis_address> seeds(opts.addresses.size());
        for (std::size_t i = 0; i < seeds.size(); ++i)
            if (parse_redis_address(opts.addresses[i], seeds[i]))
                discovery_reason = "bad Redis address: " + opts.addresses[i];
        if (seeds.empty()) discovery_reason = "no Redis address";
        if (!setup_error.empty()) discovery_reason = setup_error;
        if (discovery_reason.empty()) {
            for (const redis_address& a : seeds) node_for(a);
        } else {
            settled = true;
        }
        evaluate();
    }

    void accept(redis_request_ptr r) {
        {
            std::lock_guard lock(stats_mu);
            ++st.commands;
        }
        if (r->wire.empty() && !r->sharded_publish) {
            complete_reply(std::move(r), local_error("ERR empty command"));
            return;
        }
        route(std::move(r));
    }

    void route(redis_request_ptr r) {
        if (!holds.empty() && !r->held && !r->key.empty()) {
            const auto it = holds.find(r->key);
            if (it != holds.end()) {
                wait_behind(*it->second, std::move(r));
                return;
            }
        }
        if (m == mode::discovering) {
            if (!discovery_possible())
                complete(std::move(r), redis_status::unreachable, discovery_reason);
            else if (parked.size() >= max_waiting)
                complete(std::move(r), redis_status::unreachable, "too many commands wait for the topology");
            else
                parked.push_back(std::move(r));
            return;
        }
        if (r->sharded_publish && r->wire.empty()) {
            r->spublish = m == mode::cluster && sharded;
            r->wire = redis_format({r->spublish ? "SPUBLISH" : "PUBLISH", r->key, r->sharded_message});
        }
        node* n = r->key.empty() ? keyless_node() : slots[redis_key_slot(r->key)];
        if (!n) {
            complete(std::move(r), redis_status::unreachable,
                     "no node serves slot " + std::to_string(redis_key_slot(r->key)));
            return;
        }
        send_to(*n, std::move(r));
    }

    void send_to(node& n, redis_request_ptr r) {
        if (!n.conn->is_up() && (n.failed_before || n.conn->is_dead() || n.conn->queued() >= max_waiting)) {
            complete(std::move(r), redis_status::unreachable,
                     n.down_reason.empty() ? n.address.text() + ": down" : n.down_reason);
            return;
        }
        n.conn->send(std::move(r));
    }

    // ---- WAIT after a write ----

    // `r` answered on n (not an error): its completion once a WAIT after it
    // answered. Its key's hold, if any, goes at once: it ran.
    void wait_for_replicas(node& n, redis_request_ptr r, redis_reply reply) {
        if (!r->internal) {
            // Redis's round trip, not the replicas'.
            std::lock_guard lock(stats_mu);
            note_round_trip(*r);
        }
        n.next_wait_options.replicas = std::max(n.next_wait_options.replicas, r->wait.replicas);
        n.next_wait_options.timeout = std::max(n.next_wait_options.timeout, r->wait.timeout);
        n.next_wait_options.fence = r->wait.fence;
        std::string released = r->held ? std::move(r->key) : std::string();
        r->held = false;
        n.next_wait.emplace_back(std::move(r), std::move(reply));
        if (!n.waiting_replicas) send_wait(n);
        if (!released.empty()) head_done(released);
    }

    // The fence and WAIT on n's waits connection, for the writes of
    // next_wait.
    void send_wait(node& n) {
        auto covered = std::make_shared<std::vector<std::pair<redis_request_ptr, redis_reply>>>(
            std::exchange(n.next_wait, {}));
        const redis_wait wait = std::exchange(n.next_wait_options, {0, std::chrono::milliseconds(0), {}});
        if (wait.fence.empty()) {
            // Nothing this WAIT could count.
            for (auto& [r, reply] : *covered) complete_reply(std::move(r), std::move(reply), -1);
            return;
        }
        if (!n.waits || n.waits->is_dead()) open_waits(n);
        n.waiting_replicas = true;
        auto fenced = std::make_shared<bool>(false);
        auto fence = std::make_unique<redis_request>();
        fence->internal = true;
        fence->wire = redis_format({"SET", wait.fence, "1", "PX", "10000"});
        fence->done = [this, fenced, address = n.address.text()](redis_result res) {
            *fenced = res.status == redis_status::ok && !redis_is_error(*res.reply);
            if (!*fenced) {
                HS_LOG_THROTTLED(fence_log, warn, "redis.wait_fence_failed").kv("node", address)
                    .kv("why", res.status == redis_status::ok ? std::string(redis_text(*res.reply)) : res.detail);
            }
        };
        n.waits->send(std::move(fence));
        auto r = std::make_unique<redis_request>();
        r->internal = true;
        r->wire = redis_format({"WAIT", std::to_string(wait.replicas), std::to_string(wait.timeout.count())});
        r->done = [this, address = n.address, covered, fenced](redis_result res) {
            const long long replicas =
                *fenced && res.status == redis_status::ok && res.reply->type == REDIS_REPLY_INTEGER ? res.reply->integer
                                                                                                   : -1;
            for (auto& [w, reply] : *covered) complete_reply(std::move(w), std::move(reply), replicas);
            // The node, unless it was let go of meanwhile.
            const auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& k) { return k->address == address; });
            if (it == nodes.end()) return;
            node& at = **it;
            at.waiting_replicas = false;
            if (at.next_wait.empty()) return;
            if (!stopped) {
                send_wait(at);
                return;
            }
            for (auto& [w, reply] : std::exchange(at.next_wait, {})) complete_reply(std::move(w), std::move(reply), -1);
        };
        n.waits->send(std::move(r));
    }

    // The node's connection for WAITs: what it carries is the engine's own
    // (a failure answers the WAIT with no count); a new one when it died.
    void open_waits(node& n) {
        redis_connection::events e;
        e.up = [] {};
        e.failed = [this](redis_request_ptr r, redis_status s, std::string why) {
            complete(std::move(r), s, std::move(why));
        };
        e.down = [address = n.address.text()](std::string why) {
            HS_LOG(warn, "redis.wait_connection_down").kv("node", address).kv("reason", why);
        };
        e.answered = [this](redis_request_ptr r, redis_reply reply) { complete_reply(std::move(r), std::move(reply)); };
        e.pushed = [](redis_reply) {};
        n.waits = std::make_shared<redis_connection>(io, n.address, opts, tls, false, "waits", std::move(e));
        n.waits->connect();
    }

    node* keyless_node() {
        for (const auto& n : nodes)
            if (n->conn->is_up()) return n.get();
        return slots[0];
    }

    bool discovery_possible() const {
        return std::any_of(nodes.begin(), nodes.end(), [](const auto& n) {
            return n->conn->is_up() || (!n->failed_before && !n->conn->is_dead());
        });
    }

    void fail_parked(redis_status s, const std::string& why) {
        std::deque<redis_request_ptr> waiting = std::exchange(parked, {});
        for (auto& r : waiting) complete(std::move(r), s, why);
    }

    void route_parked() {
        std::deque<redis_request_ptr> waiting = std::exchange(parked, {});
        for (auto& r : waiting) route(std::move(r));
    }

    // ---- completions ----

    void complete(redis_request_ptr r, redis_status s, std::string detail) {
        if (!r->internal) {
            std::lock_guard lock(stats_mu);
            ++st.errors;
        }
        std::string released = r->held ? std::move(r->key) : std::string();
        if (r->done) r->done(redis_result{s, nullptr, std::move(detail)});
        if (r->held) head_done(released);
    }

    void complete_reply(redis_request_ptr r, redis_reply reply, long long replicas = -1) {
        std::string released = r->held ? std::move(r->key) : std::string();
        answer(std::move(r), std::move(reply), replicas);
        if (!released.empty()) head_done(released);
    }

    void answer(redis_request_ptr r, redis_reply reply, long long replicas = -1) {
        if (!r->internal) {
            std::lock_guard lock(stats_mu);
            ++st.replies;
            if (reply && redis_is_error(*reply)) ++st.errors;
            note_round_trip(*r);
        }
        if (r->done) r->done(redis_result{redis_status::ok, std::move(reply), {}, replicas});
    }

    // The round trip of `r`, answered now, into the smoothed one (once:
    // `written` is cleared). Under stats_mu.
    void note_round_trip(redis_request& r) {
        if (r.written == clock::time_point{}) return;
        const double ms = std::chrono::duration<double, std::milli>(clock::now() - r.written).count();
        st.rtt_ewma_ms = st.rtt_ewma_ms == 0 ? ms : st.rtt_ewma_ms + (ms - st.rtt_ewma_ms) / 8;
        r.written = {};
    }

    void on_answer(node& n, redis_request_ptr r, redis_reply reply) {
        if (r->spublish && redis_is_error(*reply) && refuses_sharded(redis_text(*reply))) {
            give_up_sharded(redis_text(*reply));
            r->wire.clear();  // PUBLISH now
            route(std::move(r));
            return;
        }
        if (m == mode::cluster && !r->key.empty()) {
            if (redis_is_tryagain(*reply)) {
                tried_again(n, std::move(r), std::move(reply));
                return;
            }
            const auto hold = r->held || holds.empty() ? holds.end() : holds.find(r->key);
            if (hold != holds.end()) {
                // Sent before its key was held, and answered since.
                redis_redirect to;
                if (parse_redirect(*reply, n.address, to)) {
                    if (!to.ask) {
                        slots[to.slot] = &node_for(to.to);
                        request_refresh();
                    }
                    join_returned(*hold->second, std::move(r));
                    return;
                }
                overtaken(*hold->second);
            }
        }
        redis_redirect to;
        if (m == mode::cluster && r->redirects < max_redirects && parse_redirect(*reply, n.address, to)) {
            ++r->redirects;
            {
                std::lock_guard lock(stats_mu);
                ++st.redirects;
            }
            node& target = node_for(to.to);
            if (to.ask) {
                auto asking = std::make_unique<redis_request>();
                asking->internal = true;
                asking->wire = redis_format({"ASKING"});
                send_to(target, std::move(asking));
            } else {
                slots[to.slot] = &target;
                request_refresh();
            }
            send_to(target, std::move(r));
            return;
        }
        if (r->wait.replicas > 0 && !redis_is_error(*reply)) {
            wait_for_replicas(n, std::move(r), std::move(reply));
            return;
        }
        complete_reply(std::move(r), std::move(reply));
    }

    // ---- keys held while their slot migrates ----
    //
    // A command of several keys whose slot migrates, some of its keys moved
    // and some not, is answered TRYAGAIN and did not run: a keyed publish,
    // whose new idempotency key Redis would create on the target while the
    // channel's meta and stream are still on the source. It is sent again
    // after a pause, and its key's commands asked for meanwhile wait behind
    // it; they go one at a time, each once the one before is answered, so a
    // key's commands keep the order they were asked in until its slot has
    // moved. Those that were on the wire behind it and answered ASK, MOVED
    // or TRYAGAIN join it in their order; but once one of them ran, those
    // before it can no longer run in their place: they fail (their TRYAGAIN
    // is their answer) rather than run after it. Nothing waits beyond the
    // command timeout: then TRYAGAIN is the answer.
    struct key_hold {
        explicit key_hold(asio::io_context& io, std::uint64_t i) : id(i), timer(io) {}
        const std::uint64_t id;
        // The first `returned` were sent before the key was held; the rest
        // were asked for since. Each with when it gives up.
        std::deque<std::pair<redis_request_ptr, clock::time_point>> waiting;
        std::size_t returned = 0;
        // Until the node that answered TRYAGAIN answered what was on the
        // wire behind it (a PING sent after): only then is it known which
        // of those ran.
        bool behind_unknown = true;
        bool pausing = true;
        bool in_flight = false;  // the first sent again, unanswered
        clock::time_point head_gives_up;
        std::chrono::milliseconds pause = tryagain_pause_min;
        asio::steady_timer timer;
    };

    void wait_behind(key_hold& kh, redis_request_ptr r) {
        if (kh.waiting.size() >= max_waiting) {
            complete_reply(std::move(r), local_error("TRYAGAIN too many commands wait for a slot to move"));
            return;
        }
        kh.waiting.emplace_back(std::move(r), clock::now() + opts.command_timeout);
    }

    void join_returned(key_hold& kh, redis_request_ptr r) {
        kh.waiting.emplace(kh.waiting.begin() + static_cast<std::ptrdiff_t>(kh.returned), std::move(r),
                          clock::now() + opts.command_timeout);
        ++kh.returned;
    }

    // A command sent before the key was held ran: the held ones sent before
    // it fail.
    void overtaken(key_hold& kh) {
        const std::size_t n = std::exchange(kh.returned, 0);
        for (std::size_t i = 0; i < n; ++i) {
            redis_request_ptr r = std::move(kh.waiting.front().first);
            kh.waiting.pop_front();
            answer(std::move(r), local_error("TRYAGAIN a later command of the key ran while it waited for its slot"));
        }
    }

    void tried_again(node& n, redis_request_ptr r, redis_reply reply) {
        {
            std::lock_guard lock(stats_mu);
            ++st.retries;
        }
        const std::string key = r->key;
        auto it = holds.find(key);
        if (r->held && it != holds.end()) {
            key_hold& kh = *it->second;
            kh.in_flight = false;
            if (clock::now() >= kh.head_gives_up) {
                r->held = false;
                answer(std::move(r), std::move(reply));
                release(key);
                return;
            }
            r->held = false;
            kh.waiting.emplace_front(std::move(r), kh.head_gives_up);
            ++kh.returned;
            kh.pause = std::min(kh.pause * 2, tryagain_pause_max);
            start_pause(key, kh);
            return;
        }
        if (it == holds.end()) {
            HS_LOG(debug, "redis.tryagain").kv("node", n.address.text()).kv("key", key);
            it = holds.emplace(key, std::make_unique<key_hold>(io, ++hold_ids)).first;
            key_hold& kh = *it->second;
            auto ping = std::make_unique<redis_request>();
            ping->internal = true;
            ping->wire = redis_format({"PING"});
            ping->done = [this, key, id = kh.id](redis_result) {
                const auto held = holds.find(key);
                if (held == holds.end() || held->second->id != id) return;
                held->second->behind_unknown = false;
                release(key);
            };
            send_to(n, std::move(ping));
            start_pause(key, kh);
        }
        join_returned(*it->second, std::move(r));
    }

    void start_pause(const std::string& key, key_hold& kh) {
        kh.pausing = true;
        kh.timer.expires_after(kh.pause);
        kh.timer.async_wait([self = shared_from_this(), key, id = kh.id](const error_code& ec) {
            if (ec || self->stopped) return;
            const auto held = self->holds.find(key);
            if (held == self->holds.end() || held->second->id != id) return;
            held->second->pausing = false;
            self->release(key);
        });
    }

    // The first of the key's hold answered (not TRYAGAIN) or failed.
    void head_done(const std::string& key) {
        const auto it = holds.find(key);
        if (it == holds.end()) return;
        it->second->in_flight = false;
        release(key);
    }

    // Sends the first that waits, once nothing holds it back; lets the key
    // go when none waits.
    void release(const std::string& key) {
        const auto it = holds.find(key);
        if (it == holds.end() || stopped) return;
        key_hold& kh = *it->second;
        if (kh.behind_unknown || kh.pausing || kh.in_flight) return;
        if (kh.waiting.empty()) {
            holds.erase(it);
            return;
        }
        auto [r, gives_up] = std::move(kh.waiting.front());
        kh.waiting.pop_front();
        if (kh.returned > 0) --kh.returned;
        r->held = true;
        kh.in_flight = true;
        kh.head_gives_up = gives_up;
        route(std::move(r));
    }

    // ---- nodes ----

    node& node_for(const redis_address& a) {
        for (const auto& n : nodes)
            if (n->address == a) return *n;
        nodes.push_back(std::make_unique<node>(io, a, opts));
        node& n = *nodes.back();
        connect(n);
        return n;
    }

    void connect(node& n) {
        redis_connection::events e;
        e.up = [this, &n] { on_node_up(n); };
        e.failed = [this](redis_request_ptr r, redis_status s, std::string why) {
            complete(std::move(r), s, std::move(why));
        };
        e.down = [this, &n](std::string why) { on_node_down(n, std::move(why)); };
        e.answered = [this, &n](redis_request_ptr r, redis_reply reply) {
            on_answer(n, std::move(r), std::move(reply));
        };
        e.pushed = [](redis_reply) {};
        n.conn = std::make_shared<redis_connection>(io, n.address, opts, tls, false, "commands", std::move(e));
        // Ahead of anything else on the connection: a node restarted, or
        // new, has the scripts before the first EVALSHA.
        for (const redis_script_ref& s : scripts) {
            auto load = std::make_unique<redis_request>();
            load->internal = true;
            load->wire = redis_format({"SCRIPT", "LOAD", s->body});
            load->done = [address = n.address.text()](redis_result r) {
                if (r.status == redis_status::ok && redis_is_error(*r.reply)) {
                    HS_LOG(warn, "redis.script_load_failed").kv("node", address).kv("why", redis_text(*r.reply));
                }
            };
            n.conn->send(std::move(load));
        }
        n.conn->connect();
    }

    void on_node_up(node& n) {
        n.backoff.reset();
        if (n.failed_before) {
            std::lock_guard lock(stats_mu);
            ++st.reconnects;
        }
        HS_LOG(info, "redis.node_up").kv("node", n.address.text());
        // The first node up tells whether this is a cluster; a node back
        // after a failure may come back with another role.
        if (m == mode::discovering || (m == mode::cluster && n.failed_before)) request_refresh();
        evaluate();
    }

    void on_node_down(node& n, std::string why) {
        HS_LOG(warn, "redis.node_down").kv("reason", why);
        if (m == mode::cluster) {
            for (std::size_t s = 0; s < slot_count; ++s)
                if (slots[s] == &n) missed.set(s);
        } else {
            missed.set();
        }
        n.failed_before = true;
        n.down_reason = std::move(why);
        settled = true;
        schedule(n.retry, n.backoff.next(), [this, &n] { connect(n); });
        if (m == mode::cluster) request_refresh();
        if (m == mode::discovering && !discovery_possible()) {
            discovery_reason = n.down_reason;
            fail_parked(redis_status::unreachable, discovery_reason);
        }
        evaluate();
    }

    template <typename Fn>
    void schedule(asio::steady_timer& timer, std::chrono::milliseconds delay, Fn fn) {
        timer.expires_after(delay);
        timer.async_wait([self = shared_from_this(), fn](const error_code& ec) {
            if (!ec && !self->stopped) fn();
        });
    }

    // ---- topology ----

    void request_refresh() {
        if (refreshing) {
            refresh_again = true;
            return;
        }
        node* asked = nullptr;
        for (std::size_t i = 0; i < nodes.size() && !asked; ++i) {
            node& n = *nodes[(next_asked + i) % nodes.size()];
            if (n.conn->is_up()) asked = &n;
        }
        if (!asked) return;  // the next node up asks
        ++next_asked;
        refreshing = true;
        auto r = std::make_unique<redis_request>();
        r->internal = true;
        r->wire = redis_format({"CLUSTER", "SLOTS"});
        r->done = [this, a = asked->address](redis_result result) { on_slots(a, std::move(result)); };
        asked->conn->send(std::move(r));
    }

    void on_slots(const redis_address& answered_by, redis_result result) {
        refreshing = false;
        if (stopped) return;
        std::vector<redis_slot_range> ranges;
        std::string failure;
        if (result.status != redis_status::ok) {
            failure = "CLUSTER SLOTS: " + result.detail;
        } else if (is_cluster_disabled(*result.reply)) {
            if (m == mode::discovering) become_single(answered_by);
        } else if (redis_is_error(*result.reply)) {
            failure = answered_by.text() + ": CLUSTER SLOTS: " + std::string(redis_text(*result.reply));
        } else if (parse_cluster_slots(*result.reply, answered_by, ranges)) {
            failure = answered_by.text() + ": CLUSTER SLOTS: an answer that is not a slot map";
        } else if (m != mode::single) {
            apply_slots(ranges);
        }
        if (!failure.empty()) {
            HS_LOG(warn, "redis.topology_failed").kv("reason", failure);
            if (m == mode::discovering) {
                discovery_reason = failure;
                settled = true;
                fail_parked(redis_status::unreachable, failure);
            }
            schedule(refresh_timer, refresh_backoff.next(), [this] { request_refresh(); });
        } else {
            refresh_backoff.reset();
        }
        if (refresh_again && !stopped) {
            refresh_again = false;
            request_refresh();
        }
        evaluate();
    }

    // The nodes that serve no slot and hold no command: a seed that is a
    // replica, a master that died and whose replica took its slots, a node
    // taken out of the cluster. Not kept, nor reconnected for ever; one
    // that serves slots again is learned again. (One that holds commands,
    // learned from a redirect the map has not caught up with, stays.)
    void forget_idle_nodes() {
        std::vector<const node*> serving;
        for (const node* n : slots)
            if (n && (serving.empty() || serving.back() != n)) serving.push_back(n);
        for (auto it = nodes.begin(); it != nodes.end();) {
            node& n = **it;
            if (std::find(serving.begin(), serving.end(), &n) != serving.end() || n.conn->queued() > 0 ||
                n.waiting_replicas) {
                ++it;
                continue;
            }
            HS_LOG(info, "redis.node_forgotten").kv("node", n.address.text());
            n.retry.cancel();
            for (auto& r : n.conn->close()) complete(std::move(r), redis_status::unreachable, "node forgotten");
            if (n.waits) (void)n.waits->close();  // holds no WAIT
            it = nodes.erase(it);
        }
    }

    // A server without cluster support serves every key; the other
    // addresses, if any, are not needed.
    void become_single(const redis_address& server) {
        m = mode::single;
        node* kept = nullptr;
        std::vector<redis_request_ptr> orphans;
        for (auto it = nodes.begin(); it != nodes.end();) {
            if ((*it)->address == server) {
                kept = it->get();
                ++it;
                continue;
            }
            for (auto& r : (*it)->conn->close()) orphans.push_back(std::move(r));
            if ((*it)->waits)
                for (auto& r : (*it)->waits->close()) orphans.push_back(std::move(r));
            it = nodes.erase(it);
        }
        slots.fill(kept);
        HS_LOG(info, "redis.single_server").kv("node", server.text());
        for (auto& r : orphans) complete(std::move(r), redis_status::unreachable, "not a cluster");
        route_parked();
        for (const std::string& c : sharded_channels) place_sharded(c);
        sub->start();
    }

    void apply_slots(const std::vector<redis_slot_range>& ranges) {
        const bool first = m == mode::discovering;
        m = mode::cluster;
        slots.fill(nullptr);
        for (const redis_slot_range& r : ranges) {
            node& n = node_for(r.master);
            for (std::size_t s = r.first; s <= r.last; ++s) slots[s] = &n;
        }
        forget_idle_nodes();
        for (const auto& s : shard_subs) s->reconnect_now();  // to where its slot is now
        if (first) {
            HS_LOG(info, "redis.cluster").kv("ranges", static_cast<std::uint64_t>(ranges.size()));
            route_parked();
            for (const std::string& c : sharded_channels) place_sharded(c);
            sub->start();
        }
    }

    // ---- sharded channels ----

    // A sharded channel's subscription: on a Redis Cluster, a connection of
    // its own to the node that serves its slot (following it when the slot
    // moves); else, or where Redis refuses sharded pub/sub, the
    // subscriber's SUBSCRIBE.
    void place_sharded(const std::string& channel) {
        if (m != mode::cluster || !sharded) {
            sub->subscribe(channel);
            return;
        }
        redis_subscriber::events e = subscriber_events();
        e.where = [this, slot = redis_key_slot(channel)] {
            const node* n = slots[slot];
            return n ? n->address : subscriber_node();
        };
        // Not part of up: the engine's readiness does not wait for it.
        e.changed = [this] {
            if (!all_sharded_ready()) poll_for_sharded();
            if (sharded_confirmed || std::none_of(shard_subs.begin(), shard_subs.end(),
                                                  [](const auto& s) { return s->ready(); }))
                return;
            sharded_confirmed = true;
            {
                std::lock_guard lock(stats_mu);
                st.listens_sharded = true;
            }
            if (h.on_listening_sharded) h.on_listening_sharded();
        };
        e.refused = [this](std::string_view error) {
            if (refuses_sharded(error)) {
                // Not from within the subscriber's own callback: it is stopped.
                asio::post(io, [self = shared_from_this(), why = std::string(error)] {
                    if (!self->stopped) self->give_up_sharded(why);
                });
            } else {
                request_refresh();  // its slot is elsewhere now: the map says where
            }
        };
        auto s = std::make_shared<redis_subscriber>(io, opts, tls, "sharded", std::move(e));
        s->ssubscribe(channel);
        s->start();
        shard_subs.push_back(std::move(s));
    }

    bool all_sharded_ready() const {
        return std::all_of(shard_subs.begin(), shard_subs.end(), [](const auto& s) { return s->ready(); });
    }

    // While a sharded subscription is down, the slot map is asked for
    // every sharded_poll, rather than after the growing backoff of a node
    // that went down: once a replica took over a dead master, the
    // subscription is made there within that, as the other routers, which
    // may have learned the new master first, give a router that long to be
    // there again (redis_bus's gone_checks).
    void poll_for_sharded() {
        if (shard_polling || stopped) return;
        shard_polling = true;
        schedule(shard_poll_timer, sharded_poll, [this] {
            shard_polling = false;
            if (m != mode::cluster || !sharded || all_sharded_ready()) return;
            request_refresh();
            poll_for_sharded();
        });
    }

    // Redis refused sharded pub/sub: the sharded channels become the
    // subscriber's, and their publishes PUBLISHes (counted per node again).
    void give_up_sharded(std::string_view why) {
        if (!sharded) return;
        sharded = false;
        {
            std::lock_guard lock(stats_mu);
            st.listens_sharded = false;
        }
        HS_LOG(warn, "redis.sharded_pubsub_refused").kv("reason", why);
        for (auto& s : std::exchange(shard_subs, {})) s->stop();
        for (const std::string& c : sharded_channels) sub->subscribe(c);
    }

    // ---- the subscriber ----

    // What every subscriber connection does alike: its messages are the
    // engine's, its reconnects counted.
    redis_subscriber::events subscriber_events() {
        redis_subscriber::events e;
        e.message = [this](std::string_view pattern, std::string_view channel, std::string_view payload) {
            deliver(pattern, channel, payload);
        };
        e.reconnected = [this] {
            std::lock_guard lock(stats_mu);
            ++st.reconnects;
        };
        return e;
    }

    // Any node will do: the next one that is up, in turn, so that a node
    // that went down is left.
    redis_address subscriber_node() {
        std::vector<node*> candidates;
        for (const auto& n : nodes)
            if (n->conn->is_up()) candidates.push_back(n.get());
        if (candidates.empty())
            for (const auto& n : nodes) candidates.push_back(n.get());
        return candidates[next_subscriber_node++ % candidates.size()]->address;
    }

    void deliver(std::string_view pattern, std::string_view channel, std::string_view payload) {
        {
            std::lock_guard lock(stats_mu);
            ++st.messages;
        }
        if (h.on_message) h.on_message(pattern, channel, payload);
    }

    // ---- state ----

    // Empty when up. A node making its first connection serves its slots
    // once the engine was up (commands wait for it): a node that joins the
    // cluster does not take the engine down unless it cannot be reached.
    std::string down_reason() const {
        if (!started) return "not started";
        if (m == mode::discovering) {
            if (!discovery_reason.empty()) return discovery_reason;
            for (const auto& n : nodes)
                if (!n->down_reason.empty()) return n->down_reason;
            return "learning the topology";
        }
        const node* checked = nullptr;
        for (std::size_t s = 0; s < slot_count; ++s) {
            const node* n = slots[s];
            if (!n) return "no node serves slot " + std::to_string(s);
            if (n == checked) continue;
            const bool joining = reported == true && !n->failed_before && !n->conn->is_dead();
            if (!n->conn->is_up() && !joining)
                return n->down_reason.empty() ? n->address.text() + ": connecting" : n->down_reason;
            checked = n;
        }
        if (!sub->ready()) return "subscriber: " + sub->down_reason();
        return {};
    }

    // Reports transitions. Until the engine was first up, or something
    // failed, it is still starting: nothing is reported.
    void evaluate() {
        if (stopped) return;
        std::string why = down_reason();
        const bool up = why.empty();
        {
            std::lock_guard lock(stats_mu);
            st.up = up;
            st.down_reason = why;
            st.nodes = nodes.size();
        }
        if (up) settled = true;
        if (!settled || reported == up) return;
        reported = up;
        HS_LOG(info, up ? "redis.up" : "redis.down").kv("reason", why);
        if (h.on_state) h.on_state(up, why);
    }

    void stop() {
        if (stopped) return;
        stopped = true;
        {
            std::lock_guard lock(inbox_mu);
            inbox_closed = true;
            for (op& o : inbox) batch.push_back(std::move(o));
            inbox.clear();
        }
        std::vector<redis_request_ptr> pending;
        for (op& o : batch)
            if (o.request) pending.push_back(std::move(o.request));
        batch.clear();
        for (auto& r : parked) pending.push_back(std::move(r));
        parked.clear();
        for (auto& held : holds) {
            held.second->timer.cancel();
            for (auto& w : held.second->waiting) pending.push_back(std::move(w.first));
        }
        holds.clear();
        for (const auto& n : nodes) {
            n->retry.cancel();
            if (n->conn)
                for (auto& r : n->conn->close()) pending.push_back(std::move(r));
            if (n->waits)
                for (auto& r : n->waits->close()) pending.push_back(std::move(r));
        }
        sub->stop();
        for (auto& s : shard_subs) s->stop();
        refresh_timer.cancel();
        shard_poll_timer.cancel();
        {
            std::lock_guard lock(stats_mu);
            st.up = false;
            st.down_reason = "stopped";
        }
        for (auto& r : pending) complete(std::move(r), redis_status::stopped, "stopped");
    }

    asio::io_context& io;
    const redis_options opts;
    const handlers h;
    std::shared_ptr<asio::ssl::context> tls;  // with rediss:// addresses
    std::string setup_error;

    std::mutex inbox_mu;
    std::vector<op> inbox;
    bool inbox_closed = false;
    std::deque<op> batch;  // taken from the inbox, being served

    log::throttle fence_log;  // redis.wait_fence_failed: once per WAIT while a slot moves
    mutable std::mutex stats_mu;
    redis_stats st;

    bool started = false;
    bool stopped = false;
    mode m = mode::discovering;
    std::string discovery_reason;
    std::vector<redis_script_ref> scripts;  // registered before start
    std::vector<std::unique_ptr<node>> nodes;
    std::array<node*, slot_count> slots{};
    std::deque<redis_request_ptr> parked;  // before the topology is known
    std::unordered_map<std::string, std::unique_ptr<key_hold>> holds;  // by key
    std::uint64_t hold_ids = 0;
    std::bitset<slot_count> missed;  // take_missed_slots
    bool refreshing = false;
    bool refresh_again = false;
    std::size_t next_asked = 0;
    asio::steady_timer refresh_timer;
    asio::steady_timer shard_poll_timer;  // poll_for_sharded
    bool shard_polling = false;
    std::shared_ptr<redis_subscriber> sub;
    std::size_t next_subscriber_node = 0;
    std::vector<std::string> sharded_channels;                  // subscribe_sharded's
    std::vector<std::shared_ptr<redis_subscriber>> shard_subs;  // one per sharded channel
    bool sharded = true;  // until a node refuses sharded pub/sub
    bool sharded_confirmed = false;  // a sharded subscription was in force once
    redis_backoff refresh_backoff;
    bool settled = false;
    std::optional<bool> reported;
};

redis_engine::redis_engine(asio::io_context& ioc, redis_options options, handlers h)
    : impl_(std::make_shared<impl>(ioc, std::move(options), std::move(h))) {}

redis_engine::~redis_engine() { stop(); }

const std::string& redis_engine::setup_error() const noexcept { return impl_->setup_error; }

void redis_engine::start() { asio::post(impl_->io, [self = impl_] { self->start(); }); }

void redis_engine::stop() { impl_->stop(); }

void redis_engine::command(std::string key, std::vector<std::string> args, completion done) {
    auto r = std::make_unique<redis_request>();
    r->key = std::move(key);
    if (!args.empty()) r->wire = redis_format(args);
    r->done = std::move(done);
    impl_->enqueue({impl::op::kind::command, std::move(r), {}, {}});
}

redis_script_ref redis_engine::load_script(std::string body) {
    auto s = std::make_shared<redis_script>();
    s->sha1 = redis_script_sha1(body);
    s->body = std::move(body);
    impl_->scripts.push_back(s);
    return s;
}

void redis_engine::run_script(std::string key, const redis_script_ref& script, std::span<const std::string_view> args,
                              completion done, redis_wait wait) {
    auto r = std::make_unique<redis_request>();
    r->key = std::move(key);
    r->wait = wait;
    r->wire = redis_format_evalsha(script->sha1, args);
    r->script = script;
    r->done = std::move(done);
    impl_->enqueue({impl::op::kind::command, std::move(r), {}, {}});
}

// Asio runs what is posted from its own thread after the completions its
// last wait for the sockets found ready.
void redis_engine::after_reads(std::function<void()> fn) {
    asio::post(impl_->io, [self = impl_, fn = std::move(fn)] {
        if (!self->stopped) fn();
    });
}

void redis_engine::after(std::chrono::milliseconds delay, std::function<void()> fn) {
    auto timer = std::make_shared<asio::steady_timer>(impl_->io, delay);
    timer->async_wait([self = impl_, timer, fn = std::move(fn)](const error_code& ec) {
        if (!ec && !self->stopped) fn();
    });
}

void redis_engine::subscribe(std::string channel) {
    impl_->enqueue({impl::op::kind::subscribe, nullptr, std::move(channel), {}});
}

void redis_engine::unsubscribe(std::string channel) {
    impl_->enqueue({impl::op::kind::unsubscribe, nullptr, std::move(channel), {}});
}

void redis_engine::psubscribe(std::string pattern) {
    impl_->enqueue({impl::op::kind::psubscribe, nullptr, std::move(pattern), {}});
}

void redis_engine::punsubscribe(std::string pattern) {
    impl_->enqueue({impl::op::kind::punsubscribe, nullptr, std::move(pattern), {}});
}

void redis_engine::subscribe_sharded(std::string channel) {
    impl_->enqueue({impl::op::kind::subscribe_sharded, nullptr, std::move(channel), {}});
}

void redis_engine::publish_sharded(std::string channel, std::string message, completion done) {
    auto r = std::make_unique<redis_request>();
    r->key = std::move(channel);
    r->sharded_message = std::move(message);
    r->sharded_publish = true;
    r->done = std::move(done);
    impl_->enqueue({impl::op::kind::command, std::move(r), {}, {}});
}

bool redis_engine::sharded_pubsub() const noexcept { return impl_->m == impl::mode::cluster && impl_->sharded; }

bool redis_engine::listens_sharded() const noexcept { return sharded_pubsub() && impl_->sharded_confirmed; }

void redis_engine::after_subscribed(std::function<void()> fn) {
    impl_->enqueue({impl::op::kind::subscribed, nullptr, {}, std::move(fn)});
}

redis_stats redis_engine::stats() const { return impl_->snapshot(); }

bool redis_engine::is_cluster() const noexcept { return impl_->m == impl::mode::cluster; }

std::bitset<redis_slots> redis_engine::take_missed_slots() { return std::exchange(impl_->missed, {}); }

}  // namespace hyperstreams::router
