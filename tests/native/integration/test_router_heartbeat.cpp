// Heartbeats over the real transports, with the real router binary:
// connections that only publish or only receive hold for several heartbeat
// timeouts with no reconnect, over ZeroMQ (the hyperstreams::backend library)
// and WebSocket (the engine host of test_client). A short heartbeat keeps
// that quick; one test holds publishers with the default heartbeat past the
// 15 s at which every publishing backend used to be dropped (issue 21).
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hyperstreams/backend.hpp"
#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

namespace hs = hyperstreams::backend;

const std::vector<std::string> connected_once{"connecting", "handshaking", "ready"};
// What the tests publish while they hold the connections; the probe that
// finds a subscription in place is published elsewhere.
const std::string held_prefix = "liveness.held.";

// A hyperstreams::backend client, the states it went through and how many
// held messages its subscription received.
class recorded_backend {
public:
    recorded_backend(const std::string& url, const std::string& name) {
        hs::options o;
        o.url = url;
        o.name = name;
        o.on_state = [this](std::string_view s) {
            std::lock_guard lock(mu_);
            states_.emplace_back(s);
        };
        client_ = std::make_unique<hs::client>(std::move(o));
    }

    hs::client& client() { return *client_; }
    std::vector<std::string> states() const {
        std::lock_guard lock(mu_);
        return states_;
    }
    void subscribe(const std::string& pattern) {
        client_->subscribe(pattern, [this](const hs::message& m) {
            std::lock_guard lock(mu_);
            if (m.channel.starts_with(held_prefix)) ++held_;
            else ++probes_;
            cv_.notify_all();
        });
    }
    bool wait_probe(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return probes_ > 0; });
    }
    // The number of held messages once it reached `n`, or when `timeout` passed.
    std::size_t wait_held(std::size_t n, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, timeout, [&] { return held_ >= n; });
        return held_;
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> states_;
    std::size_t held_ = 0;
    std::size_t probes_ = 0;
    std::unique_ptr<hs::client> client_;  // last: gone before what its handlers touch
};

std::vector<std::string> states_of(const test_client& c) {
    std::vector<std::string> out;
    for (const recorded_event& e : c.events(is(event_kind::state_changed))) out.emplace_back(state_name(e.state));
    return out;
}

bool held_message(const recorded_event& e) { return e.kind == event_kind::message && e.name.starts_with(held_prefix); }

// Calls publish(i) every 20 ms for `hold`; how many times it did.
std::size_t publish_for(std::chrono::milliseconds hold, const std::function<void(std::size_t)>& publish) {
    const auto until = std::chrono::steady_clock::now() + hold;
    std::size_t i = 0;
    for (; std::chrono::steady_clock::now() < until; ++i) {
        publish(i);
        std::this_thread::sleep_for(20ms);
    }
    return i;
}

// A connection lost on the way would show as its end in the router's log
// and metrics and as a second hello.
void expect_connected_once(const router_process& router, std::size_t zeromq, std::size_t websocket) {
    const std::string log = router.log();
    EXPECT_EQ(occurrences(log, "event=conn.hello "), zeromq + websocket) << log;
    EXPECT_EQ(log.find("event=zmq.peer_gone"), std::string::npos) << log;
    EXPECT_EQ(log.find("heartbeat_timeout"), std::string::npos) << log;
    const std::string metrics = http_get(router.admin_address(), "/metrics").body;
    for (const auto& [transport, n] : {std::pair<std::string, std::size_t>{"zeromq", zeromq}, {"websocket", websocket}}) {
        const std::string labels = "{transport=\"" + transport + "\"} " + std::to_string(n) + "\n";
        EXPECT_NE(metrics.find("hyperstreams_connections_opened_total" + labels), std::string::npos) << metrics;
        EXPECT_NE(metrics.find("hyperstreams_connections" + labels), std::string::npos) << metrics;
    }
    EXPECT_EQ(metrics.find("hyperstreams_connections_closed_total{"), std::string::npos) << metrics;
}

TEST(RouterHeartbeat, ConnectionsThatOnlyPublishOrOnlyReceiveHoldForFourTimeouts) {
    // Timeouts: the router's 1.2 s, the client's three intervals (1.2 s).
    // A ping comes at most 1.25 intervals apart: 700 ms of slack for a
    // thread stalled on a loaded machine (200 ms intervals left 350).
    router_process router({"--heartbeat-interval-ms", "400", "--heartbeat-timeout-ms", "1200"});
    ASSERT_TRUE(router.ready());
    recorded_backend backend_pub(router.backend_url(), "backend-pub");
    recorded_backend backend_sub(router.backend_url(), "backend-sub");
    backend_pub.client().start();
    backend_sub.client().start();
    backend_sub.subscribe("liveness.>");
    test_client frontend_pub(frontend_config(router.ws_url(), "frontend-pub"));
    test_client frontend_sub(frontend_config(router.ws_url(), "frontend-sub"));
    ASSERT_TRUE(backend_pub.client().wait_ready(5s) && backend_sub.client().wait_ready(5s));
    ASSERT_TRUE(frontend_pub.wait_ready() && frontend_sub.wait_ready());
    const std::uint32_t sub = frontend_sub.subscribe("liveness.>");
    ASSERT_TRUE(frontend_sub.wait_for(is(event_kind::ack, sub)));
    // The backend's subscription has no ack to wait for: a probe finds it in place.
    for (int i = 0; i < 250 && !backend_sub.wait_probe(20ms); ++i) frontend_pub.publish("liveness.probe", "?");
    ASSERT_TRUE(backend_sub.wait_probe(0ms));

    // Four timeouts and a bit: the publishers never receive, the subscribers never publish.
    const std::size_t rounds = publish_for(5000ms, [&](std::size_t i) {
        backend_pub.client().publish(held_prefix + "backend", std::to_string(i));
        frontend_pub.publish(held_prefix + "frontend", std::to_string(i));
    });
    // Every message reached both subscribers: no connection was lost on the way.
    EXPECT_EQ(frontend_sub.wait_count(held_message, 2 * rounds).size(), 2 * rounds);
    EXPECT_EQ(backend_sub.wait_held(2 * rounds, 5s), 2 * rounds);

    EXPECT_EQ(backend_pub.states(), connected_once);
    EXPECT_EQ(backend_sub.states(), connected_once);
    EXPECT_EQ(states_of(frontend_pub), connected_once);
    EXPECT_EQ(states_of(frontend_sub), connected_once);
    expect_connected_once(router, 2, 2);
}

// The default heartbeat (5 s interval, 15 s timeouts): a publishing backend
// and a publishing frontend, at the same time, past the client's timeout.
TEST(RouterHeartbeat, PublishersHoldPastFifteenSecondsWithTheDefaultHeartbeat) {
    router_process router;
    ASSERT_TRUE(router.ready());
    recorded_backend backend_pub(router.backend_url(), "backend-pub");
    backend_pub.client().start();
    test_client frontend_pub(frontend_config(router.ws_url(), "frontend-pub"));
    ASSERT_TRUE(backend_pub.client().wait_ready(5s) && frontend_pub.wait_ready());

    publish_for(16500ms, [&](std::size_t i) {
        backend_pub.client().publish(held_prefix + "backend", std::to_string(i));
        frontend_pub.publish(held_prefix + "frontend", std::to_string(i));
    });

    EXPECT_EQ(backend_pub.states(), connected_once);
    EXPECT_EQ(states_of(frontend_pub), connected_once);
    expect_connected_once(router, 1, 1);
}

}  // namespace
}  // namespace hyperstreams::testing
