// Several routers as one, under faults while publishers and subscribers
// run: three real routers over a real Redis Cluster (three masters, each
// with a replica), clients that each know every router's URL, and, one
// after the other while publications flow, a router killed (SIGKILL), a
// slot moved to another master, a Redis master killed (its replica takes
// over), a router drained (SIGTERM) and the dead master started again. Publishers publish with an ack and an
// idempotency key, one publication at a time, and retry what failed with the
// same key, as a careful publisher does. Then every subscriber must hold
// every acknowledged publication once, in order, with the payload it was
// acknowledged with, with no gap (the history holds the whole run, and the
// routers read from it what their pub/sub missed while a Redis node failed
// over), unless it was told that Redis lost some (an epoch change: only on
// the failed master's channels), and must have reached each channel's last
// position.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "redis_process.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

struct acked {
    std::string channel;
    std::string payload;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t order = 0;  // when it was acknowledged, over every publisher
};

std::atomic<std::uint64_t> ack_clock{0};

// Publishes NAME:1, NAME:2, ... on its channels in turn, each with an ack
// and the idempotency key NAME:n; a publication that fails (its router went,
// Redis failed over, its answer was lost) is sent again with the same key
// until it is acknowledged. One publication in flight at a time.
class chaos_publisher {
public:
    chaos_publisher(std::vector<std::string> urls, std::string name, std::vector<std::string> channels)
        : name_(std::move(name)), channels_(std::move(channels)) {
        client_config config = frontend_config({}, name_);
        config.url.clear();
        config.urls = std::move(urls);
        config.backoff_base_ms = 50;
        config.backoff_max_ms = 500;
        client_ = std::make_unique<test_client>(std::move(config));
        client_->set_handler([this](client_engine&, const recorded_event& e, time_ms) {
            if (e.kind != event_kind::ack && e.kind != event_kind::error) return;
            std::lock_guard lock(mu_);
            answers_[e.id] = e;
            cv_.notify_all();
        });
    }

    ~chaos_publisher() { stop(); }

    bool ready() { return client_->wait_ready(10s); }

    void start() {
        thread_ = std::thread([this] { run(); });
    }

    void stop() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
            cv_.notify_all();
        }
        if (thread_.joinable()) thread_.join();
    }

    std::size_t acked_count() const {
        std::lock_guard lock(mu_);
        return acks_.size();
    }
    std::vector<acked> acks() const {
        std::lock_guard lock(mu_);
        return acks_;
    }
    std::vector<std::string> failures() const {
        std::lock_guard lock(mu_);
        return failures_;
    }
    std::size_t retries() const {
        std::lock_guard lock(mu_);
        return retries_;
    }

private:
    void run() {
        for (std::uint64_t n = 1; n <= 100000; ++n) {
            const std::string& channel = channels_[n % channels_.size()];
            const std::string payload = name_ + ":" + std::to_string(n);
            if (!publish_until_acked(channel, payload)) return;
        }
    }

    // False once stopped, or when the publication could not be made.
    bool publish_until_acked(const std::string& channel, const std::string& payload) {
        for (int attempt = 0; attempt < 3000; ++attempt) {
            {
                std::lock_guard lock(mu_);
                if (stopping_) return false;
            }
            const call_result call = client_->run([&](client_engine& e, time_ms) {
                const auto bytes = bytes_of(payload);
                publish_options o;
                o.key = payload;
                return e.publish(channel, bytes, true, 0, o);
            });
            if (call.error) return fail("publish " + payload + " refused by the engine: " + call.error.message());
            std::unique_lock lock(mu_);
            // Within the command timeout, a lost connection or a heartbeat's bound.
            if (!cv_.wait_for(lock, 20s, [&] { return stopping_ || answers_.count(call.id) != 0; }))
                return fail_locked("no answer to " + payload);
            if (stopping_) return false;
            const recorded_event answer = answers_[call.id];
            answers_.erase(call.id);
            if (answer.kind == event_kind::ack) {
                acks_.push_back({channel, payload, answer.epoch, answer.seq, ++ack_clock});
                return true;
            }
            switch (answer.error()) {
                case errc::connection_lost:
                case errc::cluster_unavailable:
                case errc::cluster_outcome_unknown:
                case errc::going_away:
                    break;
                default:
                    return fail_locked(payload + ": " + describe(answer));
            }
            ++retries_;
            // A publisher's pause before it tries again (Redis fails over in
            // about two seconds; its refusals come at once).
            cv_.wait_for(lock, 20ms, [&] { return stopping_; });
        }
        return fail("gave up on " + payload);
    }

    bool fail(std::string why) {
        std::lock_guard lock(mu_);
        return fail_locked(std::move(why));
    }
    bool fail_locked(std::string why) {
        failures_.push_back(std::move(why));
        return false;
    }

    std::string name_;
    std::vector<std::string> channels_;
    std::unique_ptr<test_client> client_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::uint32_t, recorded_event> answers_;
    std::vector<acked> acks_;
    std::vector<std::string> failures_;
    std::size_t retries_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

std::size_t total_acked(const std::vector<std::unique_ptr<chaos_publisher>>& pubs) {
    std::size_t n = 0;
    for (const auto& p : pubs) n += p->acked_count();
    return n;
}

// Publications go on: `more` acknowledged beyond now, within `timeout`.
bool progress(const std::vector<std::unique_ptr<chaos_publisher>>& pubs, std::size_t more,
              std::chrono::milliseconds timeout = 30s) {
    const std::size_t target = total_acked(pubs) + more;
    return eventually([&] { return total_acked(pubs) >= target; }, timeout);
}

// The number after the colon of a payload NAME:n.
std::uint64_t number_of(const std::string& payload) {
    return std::stoull(payload.substr(payload.find(':') + 1));
}
std::string publisher_of(const std::string& payload) { return payload.substr(0, payload.find(':')); }

// Moves the slot of `key` from the master that serves it to another
// master (not `spare`), as redis-cli --cluster reshard does: IMPORTING and
// MIGRATING, the keys MIGRATEd in batches, then every master told. Keyed
// publications meanwhile meet TRYAGAIN (some of their keys moved, some
// not): the routers send them again once the keys have moved.
bool move_slot(const std::vector<std::unique_ptr<redis_server>>& nodes, const std::string& key, std::size_t spare) {
    const std::string slot = std::to_string(router::redis_key_slot(key));
    std::size_t from = nodes.size();
    std::size_t to = nodes.size();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (i == spare || replication_field(nodes[i]->port(), "role") != "master") continue;
        const router::redis_reply r = redis_call(nodes[i]->port(), {"EXISTS", key});
        if (r && r->type != REDIS_REPLY_ERROR)
            from = i;  // no MOVED: served there
        else if (to == nodes.size())
            to = i;
    }
    if (from == nodes.size() || to == nodes.size()) return false;
    const auto id = [&](std::size_t i) { return reply_text(redis_call(nodes[i]->port(), {"CLUSTER", "MYID"})); };
    if (reply_text(redis_call(nodes[to]->port(), {"CLUSTER", "SETSLOT", slot, "IMPORTING", id(from)})) != "OK" ||
        reply_text(redis_call(nodes[from]->port(), {"CLUSTER", "SETSLOT", slot, "MIGRATING", id(to)})) != "OK")
        return false;
    for (int batch = 0; batch < 1000; ++batch) {
        const router::redis_reply keys = redis_call(nodes[from]->port(), {"CLUSTER", "GETKEYSINSLOT", slot, "100"});
        if (!keys || keys->type != REDIS_REPLY_ARRAY) return false;
        if (keys->elements == 0) break;
        std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(nodes[to]->port()), "", "0",
                                            "5000", "KEYS"};
        for (std::size_t k = 0; k < keys->elements; ++k)
            migrate.emplace_back(keys->element[k]->str, keys->element[k]->len);
        if (reply_text(redis_call(nodes[from]->port(), migrate)) != "OK") return false;
    }
    for (std::size_t i = 0; i < nodes.size(); ++i)
        if (replication_field(nodes[i]->port(), "role") == "master" &&
            reply_text(redis_call(nodes[i]->port(), {"CLUSTER", "SETSLOT", slot, "NODE", id(to)})) != "OK")
            return false;
    return true;
}

TEST(RouterClusterChaos, SubscribersHoldEveryAcknowledgedPublicationThroughKillsDrainsAndAFailover) {
    const auto nodes = make_redis_cluster(3, 1, {"--cluster-node-timeout", "1000"});
    ASSERT_EQ(nodes.size(), 6u);
    std::vector<std::string> seeds;
    std::size_t victim = nodes.size();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        seeds.push_back(nodes[i]->address());
        if (victim == nodes.size() && replication_field(nodes[i]->port(), "role") == "master") victim = i;
    }
    ASSERT_LT(victim, nodes.size());
    // Channels on every master: two on the one that will be killed.
    std::vector<std::string> on_victim;
    std::vector<std::string> elsewhere;
    for (int i = 0; i < 1000 && (on_victim.size() < 2 || elsewhere.size() < 4); ++i) {
        const std::string channel = "chaos.line" + std::to_string(i);
        const router::redis_reply r = redis_call(nodes[victim]->port(), {"EXISTS", "hs:{" + channel + "}:m"});
        auto& group = r && r->type != REDIS_REPLY_ERROR ? on_victim : elsewhere;  // no MOVED: served there
        if (group.size() < (&group == &on_victim ? 2u : 4u)) group.push_back(channel);
    }
    ASSERT_EQ(on_victim.size(), 2u);
    ASSERT_EQ(elsewhere.size(), 4u);
    std::vector<std::string> channels = on_victim;
    channels.insert(channels.end(), elsewhere.begin(), elsewhere.end());

    const auto router_flags = [](const std::string& id) {
        return quick_heartbeats({"--router-id", id, "--history-max-messages", "100000", "--history-max-bytes",
                                 "16777216"});
    };
    auto ra = cluster_router(seeds, router_flags("ra"));
    auto rb = cluster_router(seeds, router_flags("rb"));
    auto rc = cluster_router(seeds, router_flags("rc"));
    ASSERT_TRUE(ra->ready() && rb->ready() && rc->ready());
    const std::vector<std::string> urls = {ra->ws_url(), rb->ws_url(), rc->ws_url()};
    const auto rotated = [&](std::size_t first) {
        std::vector<std::string> out;
        for (std::size_t i = 0; i < urls.size(); ++i) out.push_back(urls[(first + i) % urls.size()]);
        return out;
    };

    // Three subscribers, one starting on each router, to every channel.
    std::vector<std::unique_ptr<test_client>> subs;
    for (std::size_t i = 0; i < 3; ++i) {
        client_config config = frontend_config({}, "sub" + std::to_string(i));
        config.url.clear();
        config.urls = rotated(i);
        config.seed = 100 + i;
        config.backoff_base_ms = 50;
        config.backoff_max_ms = 500;
        subs.push_back(std::make_unique<test_client>(std::move(config)));
        ASSERT_TRUE(subs.back()->wait_ready(10s));
        for (const std::string& channel : channels)
            ASSERT_TRUE(subs.back()->wait_for(is(event_kind::ack, subs.back()->subscribe(channel)), 10s));
    }
    // Two publishers, starting on the first two routers.
    std::vector<std::unique_ptr<chaos_publisher>> pubs;
    for (std::size_t i = 0; i < 2; ++i) {
        pubs.push_back(std::make_unique<chaos_publisher>(rotated(i), "pub" + std::to_string(i), channels));
        ASSERT_TRUE(pubs.back()->ready());
    }
    for (auto& p : pubs) p->start();
    ASSERT_TRUE(progress(pubs, 300)) << "publications flow before any fault";

    // 1. A router killed: its clients go to the next URL of their lists and resume.
    ASSERT_EQ(ra->signal_and_wait(SIGKILL, 5s), 128 + SIGKILL);
    ASSERT_TRUE(progress(pubs, 300)) << "after the kill of a router";

    // 2. A slot moves to another master under load (MIGRATE of its keys,
    //    as a resharding does): its publications carry on in their epoch.
    ASSERT_TRUE(move_slot(nodes, "hs:{" + elsewhere.front() + "}:m", victim));
    ASSERT_TRUE(progress(pubs, 300)) << "after the slot moved";

    // 3. A router started that no client lists (a drain may send clients
    //    there), and a Redis master killed: its replica takes over.
    auto rd = cluster_router(seeds, router_flags("rd"));
    ASSERT_TRUE(rd->ready());
    ASSERT_TRUE(progress(pubs, 100));
    nodes[victim]->kill();
    ASSERT_TRUE(logged(*rb, "event=cluster.redis_down", 1, 10s)) << rb->log();
    ASSERT_TRUE(logged(*rb, "event=cluster.redis_up", 2, 30s)) << rb->log();
    ASSERT_TRUE(progress(pubs, 300)) << "after the failover";

    // 4. A router drained: its clients are sent to another live router.
    ASSERT_EQ(rb->signal_and_wait(SIGTERM, 15s), 0) << rb->log();
    ASSERT_TRUE(progress(pubs, 300)) << "after the drain";

    // 5. The dead master back, as a replica of the one that took its place.
    ASSERT_TRUE(nodes[victim]->restart());
    ASSERT_TRUE(eventually([&] { return replication_field(nodes[victim]->port(), "role") == "slave"; }, 20s));
    ASSERT_TRUE(progress(pubs, 300)) << "after the old master came back";

    for (auto& p : pubs) p->stop();
    std::vector<acked> all;
    for (auto& p : pubs) {
        for (const std::string& f : p->failures()) ADD_FAILURE() << f;
        const auto a = p->acks();
        all.insert(all.end(), a.begin(), a.end());
    }
    std::printf("[ chaos    ] %zu publications acknowledged, %zu retried\n", all.size(),
                pubs[0]->retries() + pubs[1]->retries());

    // Positions: no two acknowledged payloads share one; each channel's last.
    std::map<std::string, std::map<std::pair<std::uint32_t, std::uint64_t>, std::string>> at;
    std::map<std::string, acked> last;
    for (const acked& a : all) {
        const auto [it, fresh] = at[a.channel].emplace(std::make_pair(a.epoch, a.seq), a.payload);
        if (!fresh)
            EXPECT_EQ(it->second, a.payload) << "two publications acknowledged at " << a.channel << " " << a.epoch
                                             << ":" << a.seq;
        if (last[a.channel].order < a.order) last[a.channel] = a;
    }
    for (const std::string& channel : channels) {
        const acked& l = last[channel];
        std::uint64_t top = l.seq;  // the highest seq acknowledged in the last acknowledgement's epoch
        for (const auto& [pos, payload] : at[channel])
            if (pos.first == l.epoch) top = std::max(top, pos.second);
        last[channel].seq = top;
    }

    for (std::size_t s = 0; s < subs.size(); ++s) {
        test_client& sub = *subs[s];
        for (const std::string& channel : channels) {
            const acked& l = last[channel];
            const bool reached = sub.wait_for(
                [&](const recorded_event& e) {
                    return e.kind == event_kind::message && e.name == channel && e.epoch == l.epoch && e.seq == l.seq;
                },
                30s).has_value();
            if (!reached) {
                std::string tail;
                const auto seen = sub.events([&](const recorded_event& e) { return e.name == channel || e.name.empty(); });
                for (std::size_t i = seen.size() > 12 ? seen.size() - 12 : 0; i < seen.size(); ++i)
                    tail += "\n  " + describe(seen[i]);
                FAIL() << "sub" << s << " reaches " << channel << " " << l.epoch << ":" << l.seq << "; its last events:"
                       << tail;
            }
        }
    }

    for (std::size_t s = 0; s < subs.size(); ++s) {
        test_client& sub = *subs[s];
        for (const std::string& channel : channels) {
            const auto events = sub.events([&](const recorded_event& e) {
                return e.name == channel &&
                       (e.kind == event_kind::message || e.kind == event_kind::gap ||
                        e.kind == event_kind::epoch_changed);
            });
            std::set<std::pair<std::uint32_t, std::uint64_t>> got;
            // Epochs the subscriber was told were left behind: Redis may
            // lose the last acknowledged publications of a master killed
            // before its replica had them, and then starts a new epoch.
            std::set<std::uint32_t> told;
            std::uint32_t epoch = 0;
            std::uint64_t seq = 0;
            std::map<std::string, std::uint64_t> per_publisher;
            for (const recorded_event& e : events) {
                const std::string where = "sub" + std::to_string(s) + " " + describe(e);
                // The history holds every publication of the run, and the
                // routers fill what their pub/sub missed: never a gap.
                EXPECT_NE(e.kind, event_kind::gap) << where;
                if (e.kind == event_kind::epoch_changed) {
                    told.insert(epoch);
                    continue;
                }
                if (e.kind == event_kind::gap) continue;
                if (e.epoch == epoch) {
                    EXPECT_GT(e.seq, seq) << "in order, once: " << where;
                } else {
                    epoch = e.epoch;
                }
                seq = e.seq;
                got.emplace(e.epoch, e.seq);
                const auto a = at[channel].find({e.epoch, e.seq});
                if (a != at[channel].end()) EXPECT_EQ(a->second, e.payload_text()) << where;
                const std::string payload = e.payload_text();
                std::uint64_t& n = per_publisher[publisher_of(payload)];
                EXPECT_GE(number_of(payload), n) << "a publisher's order: " << where;
                n = number_of(payload);
            }
            std::size_t missing = 0;
            for (const auto& [pos, payload] : at[channel])
                if (got.count(pos) == 0 && told.count(pos.first) == 0) {
                    if (++missing <= 5)
                        ADD_FAILURE() << "sub" << s << " never got " << channel << " " << pos.first << ":" << pos.second
                                      << " (" << payload << ") and was not told";
                }
            EXPECT_EQ(missing, 0u) << "sub" << s << " " << channel;
            if (std::find(on_victim.begin(), on_victim.end(), channel) == on_victim.end())
                EXPECT_TRUE(told.empty()) << "sub" << s << " " << channel
                                          << ": only a failover may lose publications (a new epoch)";
            std::printf("[ chaos    ] sub%zu %s: %zu messages, %zu epochs left behind\n", s, channel.c_str(),
                        got.size(), told.size());
        }
    }
}

}  // namespace
}  // namespace hyperstreams::testing
