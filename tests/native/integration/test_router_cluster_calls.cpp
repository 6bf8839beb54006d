// Calls across the routers of a cluster (--cluster-redis): a backend on the
// real backend client joins every router its first router names (the
// routers frame, PROTOCOL.md section 11), so a frontend on any router calls
// it as a local backend: requests, streams with credit, cancel, deadlines,
// load balancing over the instances of every router, discovery of the
// cluster's services, a router that starts later, and a backend killed in
// the middle of a call. Real redis-server, real routers, real clients.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "hyperstreams/backend.hpp"
#include "redis_process.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

namespace hb = hyperstreams::backend;

// Quick heartbeats: the membership in Redis (beaten every interval) and so
// the routers frames follow a router's start within a fraction of a second.
std::unique_ptr<router_process> quick_router(const redis_server& redis) {
    return cluster_router({redis.address()}, quick_heartbeats());
}

// The router `c` is on lists `service` with `instances` instances within the bound.
bool discovers(test_client& c, const std::string& service, std::uint16_t instances = 1,
               std::chrono::milliseconds timeout = 10s) {
    return eventually(
        [&] {
            const call_result r = c.run([](client_engine& e, time_ms) { return e.discover(); });
            const auto list = c.wait_for(is(event_kind::service_list, r.id), 2s);
            return list && std::any_of(list->services.begin(), list->services.end(), [&](const auto& s) {
                       return s.name == service && s.instances == instances;
                   });
        },
        timeout);
}

// A backend on the real client, first connected to `url`, that answers
// echo/hello with its name, streams ten items on feed/watch, streams until
// cancelled on feed/forever, and never answers slow/never.
struct cluster_backend {
    cluster_backend(const std::string& url, std::string name) : client({.url = url, .name = name}) {
        client.provide("echo", "hello", [name](hb::request, hb::reply r) { r.send(name); });
        client.provide_stream("feed", "watch", [](hb::request, hb::stream_writer w) {
            for (int i = 0; i < 10; ++i)
                if (w.write(std::to_string(i), 5s) != hb::write_status::ok) return;
            w.end();
        });
        client.provide_stream("feed", "forever", [this](hb::request, hb::stream_writer w) {
            for (int i = 0; i < 100000; ++i) {
                const hb::write_status s = w.write("tick", 5s);
                if (s == hb::write_status::cancelled) {
                    cancelled = true;
                    return;
                }
                if (s != hb::write_status::ok) return;
            }
        });
        client.provide("slow", "never", [this](hb::request, hb::reply r) {
            std::lock_guard lock(mu);
            unanswered.push_back(std::move(r));
        });
        client.start();
        EXPECT_TRUE(client.wait_ready(10s));
    }

    hb::client client;
    std::atomic<bool> cancelled{false};
    std::mutex mu;
    std::vector<hb::reply> unanswered;
};

std::string answer_of(test_client& c, const std::string& service, const std::string& method,
                      std::uint32_t timeout_ms = 5000) {
    const std::uint32_t id = c.request(service, method, "", timeout_ms);
    const auto r = c.wait_for(
        [id](const recorded_event& e) { return (e.kind == event_kind::response || e.kind == event_kind::error) && e.id == id; },
        10s);
    if (!r) return "(no answer)";
    if (r->kind == event_kind::error) return "error " + std::string(errc_name(r->code));
    return r->payload_text();
}

TEST(RouterClusterCalls, ABackendOnOneRouterServesCallersOnTheOthers) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = quick_router(redis);
    auto b = quick_router(redis);
    auto c = quick_router(redis);
    ASSERT_TRUE(a->ready() && b->ready() && c->ready());
    cluster_backend backend(a->backend_url(), "x");
    test_client on_b(frontend_config(b->ws_url(), "on-b"));
    test_client on_c(frontend_config(c->ws_url(), "on-c"));
    ASSERT_TRUE(on_b.wait_ready() && on_c.wait_ready());
    ASSERT_TRUE(discovers(on_b, "echo")) << "the backend joined B";
    ASSERT_TRUE(discovers(on_c, "feed")) << "the backend joined C";
    EXPECT_EQ(answer_of(on_b, "echo", "hello"), "x");
    EXPECT_EQ(answer_of(on_c, "echo", "hello"), "x");

    // A stream with credit, from C: ten items in order, then the end.
    on_c.set_handler([](client_engine& e, const recorded_event& ev, time_ms) {
        if (ev.kind == event_kind::stream_item) (void)e.stream_consumed(ev.id, 1);
    });
    const call_result open = on_c.run([](client_engine& e, time_ms now) { return e.open_stream("feed", "watch", {}, 2, 0, now); });
    ASSERT_FALSE(open.error);
    ASSERT_TRUE(on_c.wait_for(is(event_kind::stream_end, open.id), 10s));
    const auto items = on_c.events(is(event_kind::stream_item, open.id));
    ASSERT_EQ(items.size(), 10u);
    for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].payload_text(), std::to_string(i));

    // Cancel, from B: the backend's writer learns it.
    const call_result forever = on_b.run([](client_engine& e, time_ms now) { return e.open_stream("feed", "forever", {}, 1, 0, now); });
    ASSERT_FALSE(forever.error);
    ASSERT_TRUE(on_b.wait_for(is(event_kind::stream_item, forever.id)));
    ASSERT_FALSE(on_b.run([&](client_engine& e, time_ms) { return e.cancel(forever.id); }));
    EXPECT_TRUE(eventually([&] { return backend.cancelled.load(); }, 10s));

    // A deadline, from B: the router of the caller ends the call.
    EXPECT_EQ(answer_of(on_b, "slow", "never", 300), "error deadline_exceeded");
}

TEST(RouterClusterCalls, RequestsBalanceOverTheInstancesOnEveryRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = quick_router(redis);
    auto b = quick_router(redis);
    auto c = quick_router(redis);
    ASSERT_TRUE(a->ready() && b->ready() && c->ready());
    cluster_backend x(a->backend_url(), "x");
    cluster_backend y(b->backend_url(), "y");
    test_client on_c(frontend_config(c->ws_url(), "on-c"));
    ASSERT_TRUE(on_c.wait_ready());
    ASSERT_TRUE(discovers(on_c, "echo", 2)) << "the cluster's two instances, one listing";
    // Both joined C: answers come from both within a bounded number of calls.
    std::set<std::string> answered;
    for (int i = 0; i < 200 && answered.size() < 2; ++i) answered.insert(answer_of(on_c, "echo", "hello"));
    EXPECT_EQ(answered, (std::set<std::string>{"x", "y"}));
    // And A sees both too (y joined A, x is on it).
    test_client on_a(frontend_config(a->ws_url(), "on-a"));
    ASSERT_TRUE(on_a.wait_ready());
    answered.clear();
    for (int i = 0; i < 200 && answered.size() < 2; ++i) answered.insert(answer_of(on_a, "echo", "hello"));
    EXPECT_EQ(answered, (std::set<std::string>{"x", "y"}));
}

// Heartbeats that do not come within the test: a router's join and its
// drain reach the others through the membership channel (cluster_node.hpp),
// not through their next read of the membership at a heartbeat.
TEST(RouterClusterCalls, ARouterThatStartsLaterIsJoinedAndOneThatDrainsIsLeft) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> no_beat_in_the_test = {"--heartbeat-interval-ms", "600000",
                                                          "--heartbeat-timeout-ms", "1800000"};
    auto a = cluster_router({redis.address()}, no_beat_in_the_test);
    ASSERT_TRUE(a->ready());
    cluster_backend backend(a->backend_url(), "x");
    auto d = cluster_router({redis.address()}, no_beat_in_the_test);
    ASSERT_TRUE(d->ready());
    test_client on_d(frontend_config(d->ws_url(), "on-d"));
    ASSERT_TRUE(on_d.wait_ready());
    ASSERT_TRUE(discovers(on_d, "echo")) << "the backend joined the router that came later";
    EXPECT_EQ(answer_of(on_d, "echo", "hello"), "x");

    // D drains: it leaves the membership at once, A tells the backend, which
    // leaves D (its goodbye in D's log) rather than following D's redirect.
    ASSERT_EQ(d->signal_and_wait(SIGTERM, 20s), 0);
    // A read the membership when D left (its first "alive=1" was its own start).
    EXPECT_TRUE(logged(*a, "event=cluster.routers alive=1", 2)) << "A learns that D left";
    // A call from A still reaches the backend.
    test_client on_a(frontend_config(a->ws_url(), "on-a"));
    ASSERT_TRUE(on_a.wait_ready());
    EXPECT_EQ(answer_of(on_a, "echo", "hello"), "x");
    // The connection D redirected did not come to A as a second instance:
    // the backend's one hello there is its first connection's.
    const std::string log = a->log();
    std::size_t hellos = 0;
    for (std::size_t at = log.find("event=conn.hello"); at != std::string::npos; at = log.find("event=conn.hello", at + 1))
        if (log.substr(at, log.find('\n', at) - at).find("name=x") != std::string::npos) ++hellos;
    EXPECT_EQ(hellos, 1u);
}

TEST(RouterClusterCalls, ABackendKilledInTheMiddleOfACallFailsItOnTheCallersRouterAtOnce) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = quick_router(redis);
    auto b = quick_router(redis);
    ASSERT_TRUE(a->ready() && b->ready());
    child_process doomed(HYPERSTREAMS_TEST_CLUSTER_BACKEND, {a->backend_url(), "victim"});
    ASSERT_EQ(doomed.read_line(10s), "ready");
    test_client on_b(frontend_config(b->ws_url(), "on-b"));
    ASSERT_TRUE(on_b.wait_ready());
    ASSERT_TRUE(discovers(on_b, "victim"));

    const std::uint32_t id = on_b.request("victim", "hang", "", 30000);
    ASSERT_EQ(doomed.read_line(10s), "request");
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(doomed.kill_and_wait(SIGKILL, 5s));
    const auto error = on_b.wait_for(is_error(id), 10s);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(error);
    EXPECT_EQ(error->error(), errc::backend_gone) << describe(*error);
    EXPECT_LT(elapsed, 3s) << "found by the dead TCP connection to B, not by a timeout";
    EXPECT_EQ(answer_of(on_b, "victim", "hang"), "error no_instance_available");
}

// Other routers hand a router's addresses to their clients: a wildcard one
// would send them nowhere, so the router refuses to start with it and names
// the option that fixes it.
TEST(RouterClusterCalls, AWildcardAddressNeedsAnAdvertisedOne) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::string seeds = "redis://" + redis.address();
    const run_result ws = run_router_once({"--cluster-redis", seeds, "--listen", "0.0.0.0:0", "--backend",
                                           "tcp://127.0.0.1:0", "--admin-listen", "127.0.0.1:0"});
    EXPECT_EQ(ws.status, 1);
    EXPECT_NE(ws.err.find("cluster.advertise_ws is needed"), std::string::npos) << ws.err;
    const run_result zmq = run_router_once({"--cluster-redis", seeds, "--listen", "127.0.0.1:0", "--backend",
                                            "tcp://*:0", "--admin-listen", "127.0.0.1:0"});
    EXPECT_EQ(zmq.status, 1);
    EXPECT_NE(zmq.err.find("cluster.advertise_backend is needed"), std::string::npos) << zmq.err;
    // Advertised, the same binds are fine.
    router_process advertised({"--cluster-redis", seeds, "--listen", "0.0.0.0:0", "--cluster-advertise-ws",
                               "ws://127.0.0.1:1/ws", "--cluster-advertise-backend", "tcp://127.0.0.1:1"});
    EXPECT_TRUE(advertised.ready());
}

}  // namespace
}  // namespace hyperstreams::testing
