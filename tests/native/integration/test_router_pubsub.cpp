// The real router binary: publish/subscribe between frontends (WebSocket) and
// backends (ZeroMQ), resume from history, direct messages, broadcast and
// discovery, all through the shared client engine.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <thread>

#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

TEST(RouterPubSub, FrontendsPublishAndSubscribeInOrder) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client sub(frontend_config(router.ws_url(), "sub"));
    test_client other(frontend_config(router.ws_url(), "other"));
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(sub.wait_ready() && other.wait_ready() && pub.wait_ready());

    const std::uint32_t s = sub.subscribe("factory.*.temp");
    const std::uint32_t o = other.subscribe("factory.line1.pressure");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    ASSERT_TRUE(other.wait_for(is(event_kind::ack, o)));

    const std::uint32_t first = pub.publish("factory.line1.temp", "0", true);
    for (int i = 1; i < 50; ++i) pub.publish("factory.line1.temp", std::to_string(i));
    pub.publish("factory.line2.temp", "other line");

    const auto ack = pub.wait_for(is(event_kind::ack, first));
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->seq, 1u);
    const auto got = sub.wait_count(message_on("factory.line1.temp"), 50);
    ASSERT_EQ(got.size(), 50u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].payload_text(), std::to_string(i));
        EXPECT_EQ(got[i].seq, i + 1);
        EXPECT_EQ(got[i].epoch, ack->epoch) << "every message carries the channel's epoch";
        EXPECT_EQ(got[i].subscription, s);
    }
    EXPECT_TRUE(sub.wait_for(message_on("factory.line2.temp")));
    EXPECT_EQ(other.count(is(event_kind::message)), 0u);
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
}

TEST(RouterPubSub, BackendsAndFrontendsArePeers) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client frontend(frontend_config(router.ws_url()));
    test_client backend(backend_config(router.backend_url()));
    ASSERT_TRUE(frontend.wait_ready());
    ASSERT_TRUE(backend.wait_ready());

    const std::uint32_t b = backend.subscribe("ui.clicks");
    const std::uint32_t f = frontend.subscribe("machines.>");
    ASSERT_TRUE(backend.wait_for(is(event_kind::ack, b)));
    ASSERT_TRUE(frontend.wait_for(is(event_kind::ack, f)));

    frontend.publish("ui.clicks", "button-1");
    backend.publish("machines.m3.state", "running");

    const auto click = backend.wait_for(message_on("ui.clicks"));
    ASSERT_TRUE(click);
    EXPECT_EQ(click->payload_text(), "button-1");
    const auto state = frontend.wait_for(message_on("machines.m3.state"));
    ASSERT_TRUE(state);
    EXPECT_EQ(state->payload_text(), "running");
}

TEST(RouterPubSub, UnsubscribeStopsDelivery) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client sub(frontend_config(router.ws_url()));
    test_client pub(frontend_config(router.ws_url()));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready());
    const std::uint32_t s = sub.subscribe("news");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    pub.publish("news", "one");
    ASSERT_TRUE(sub.wait_for(message_on("news")));

    const call_result u = sub.run([&](client_engine& e, time_ms) { return e.unsubscribe(s); });
    ASSERT_FALSE(u.error);
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, u.id)));
    pub.publish("news", "two");
    // A marker on another channel proves "two" had its chance to arrive.
    const std::uint32_t m = sub.subscribe("marker");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, m)));
    pub.publish("marker", "after");
    ASSERT_TRUE(sub.wait_for(message_on("marker")));
    EXPECT_EQ(sub.count(message_on("news")), 1u);
}

// A subscriber whose connection drops reconnects by itself, resubscribes
// with its last position and gets what it missed from the channel's history.
TEST(RouterPubSub, ResumeFromHistoryAfterAReconnect) {
    router_process router({"--history-max-messages", "16"});
    ASSERT_TRUE(router.ready());
    test_client sub(reconnect_on_demand(frontend_config(router.ws_url(), "resuming")));
    test_client pub(frontend_config(router.ws_url()));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready());
    const std::uint32_t s = sub.subscribe("line.speed");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    for (int i = 1; i <= 3; ++i) pub.publish("line.speed", std::to_string(i));
    ASSERT_EQ(sub.wait_count(message_on("line.speed"), 3).size(), 3u);

    sub.drop_transport();
    // The subscriber stays away until all five are in history (acked).
    std::uint32_t last = 0;
    for (int i = 4; i <= 8; ++i) last = pub.publish("line.speed", std::to_string(i), true);
    ASSERT_TRUE(pub.wait_for(is(event_kind::ack, last)));
    sub.connect_now();

    const auto got = sub.wait_count(message_on("line.speed"), 8, 10s);
    ASSERT_EQ(got.size(), 8u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].seq, i + 1);
        EXPECT_EQ(got[i].payload_text(), std::to_string(i + 1));
    }
    EXPECT_TRUE(got[4].flags & frame_flags::replayed) << "4..8 came from history";
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
}

TEST(RouterPubSub, ResumeBeyondHistorySignalsTheGap) {
    router_process router({"--history-max-messages", "2"});
    ASSERT_TRUE(router.ready());
    test_client sub(reconnect_on_demand(frontend_config(router.ws_url(), "resuming")));
    test_client pub(frontend_config(router.ws_url()));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready());
    const std::uint32_t s = sub.subscribe("line.speed");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    for (int i = 1; i <= 3; ++i) pub.publish("line.speed", std::to_string(i));
    ASSERT_EQ(sub.wait_count(message_on("line.speed"), 3).size(), 3u);

    sub.drop_transport();
    std::uint32_t last = 0;
    for (int i = 4; i <= 9; ++i) last = pub.publish("line.speed", std::to_string(i), true);  // history keeps 8, 9
    ASSERT_TRUE(pub.wait_for(is(event_kind::ack, last)));
    sub.connect_now();

    const auto gap = sub.wait_for(is(event_kind::gap), 10s);
    ASSERT_TRUE(gap);
    EXPECT_EQ(gap->name, "line.speed");
    EXPECT_EQ(gap->seq, 4u);
    EXPECT_EQ(gap->count, 4u) << "4, 5, 6 and 7 are gone";
    const auto got = sub.wait_count(message_on("line.speed"), 5);
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got[3].seq, 8u);
    EXPECT_EQ(got[4].seq, 9u);
}

// The factory's state at once: a latest-value subscribe to a pattern gets
// the last message of every machine, then the live ones, each channel in
// seq order with nothing missed and nothing twice.
TEST(RouterPubSub, ALatestSubscribeGetsEveryMatchingChannelsLastMessageThenTheLiveOnes) {
    router_process router({"--channels-namespaces", R"([{"pattern": "factory.>", "latest": true, "history_size": 0}])"});
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url(), "machines"));
    test_client dashboard(frontend_config(router.ws_url(), "dashboard"));
    ASSERT_TRUE(backend.wait_ready() && dashboard.wait_ready());
    auto machine = [](int line, int m) {
        return "factory.l" + std::to_string(line) + ".m" + std::to_string(m) + ".telemetry";
    };
    std::uint32_t last = 0;
    for (int round = 1; round <= 3; ++round)
        for (int line = 1; line <= 4; ++line)
            for (int m = 1; m <= 5; ++m) last = backend.publish(machine(line, m), "r" + std::to_string(round), true);
    backend.publish("factory.l1.m1.status", "running");
    ASSERT_TRUE(backend.wait_for(is(event_kind::ack, last)));

    const std::uint32_t refused = dashboard.subscribe("office.>", slow_policy::router_default, true);
    const auto not_enabled = dashboard.wait_for(is_error(refused));
    ASSERT_TRUE(not_enabled);
    EXPECT_EQ(not_enabled->error(), errc::not_enabled);

    const std::uint32_t s = dashboard.subscribe("factory.*.*.telemetry", slow_policy::router_default, true);
    ASSERT_TRUE(dashboard.wait_for(is(event_kind::ack, s)));
    const auto state = dashboard.wait_count(is(event_kind::message), 20);
    ASSERT_EQ(state.size(), 20u);
    std::set<std::string> machines;
    for (const recorded_event& e : state) {
        machines.insert(e.name);
        EXPECT_EQ(e.payload_text(), "r3") << e.name;
        EXPECT_EQ(e.seq, 3u) << e.name;
        EXPECT_NE(e.flags & frame_flags::replayed, 0) << e.name;
    }
    EXPECT_EQ(machines.size(), 20u);

    backend.publish(machine(2, 3), "r4");
    const auto live = dashboard.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::message && e.payload_text() == "r4";
    });
    ASSERT_TRUE(live);
    EXPECT_EQ(live->seq, 4u);
    EXPECT_EQ(live->flags & frame_flags::replayed, 0);
    EXPECT_EQ(dashboard.count(is(event_kind::message)), 21u);
    EXPECT_EQ(dashboard.count(is(event_kind::gap)), 0u);
}

TEST(RouterPubSub, DirectMessagesAndBroadcast) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client a(frontend_config(router.ws_url(), "a"));
    test_client b(backend_config(router.backend_url(), "b"));
    test_client c(frontend_config(router.ws_url(), "c"));
    ASSERT_TRUE(a.wait_ready() && b.wait_ready() && c.wait_ready());
    const std::string a_address = a.session_id();
    const std::string b_address = b.session_id();

    const call_result sent = a.run([&](client_engine& e, time_ms) {
        const auto payload = bytes_of("to b only");
        return e.send_direct(b_address, payload, true);
    });
    ASSERT_FALSE(sent.error);
    ASSERT_TRUE(a.wait_for(is(event_kind::ack, sent.id)));
    const auto direct = b.wait_for(is(event_kind::direct));
    ASSERT_TRUE(direct);
    EXPECT_EQ(direct->name, a_address) << "delivered with the sender's address";
    EXPECT_EQ(direct->payload_text(), "to b only");

    const call_result lost = a.run([&](client_engine& e, time_ms) {
        const auto payload = bytes_of("nobody");
        return e.send_direct("no-such-client", payload, true);
    });
    const auto error = a.wait_for(is_error(lost.id));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->error(), errc::no_such_address);

    b.run([](client_engine& e, time_ms) {
        const auto payload = bytes_of("hello all");
        return e.broadcast(payload);
    });
    for (test_client* t : {&a, &c}) {
        const auto got = t->wait_for(is(event_kind::broadcast));
        ASSERT_TRUE(got);
        EXPECT_EQ(got->name, b_address);
        EXPECT_EQ(got->payload_text(), "hello all");
    }
    EXPECT_EQ(c.count(is(event_kind::direct)), 0u);
}

TEST(RouterPubSub, DiscoveryListsWhatBackendsRegistered) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client b1(backend_config(router.backend_url()));
    test_client b2(backend_config(router.backend_url()));
    test_client f(frontend_config(router.ws_url()));
    ASSERT_TRUE(b1.wait_ready() && b2.wait_ready() && f.wait_ready());
    const auto r1 = b1.register_service("orders", {{"get", method_kind::unary}, {"watch", method_kind::stream}});
    const auto r2 = b2.register_service("orders", {{"get", method_kind::unary}, {"watch", method_kind::stream}});
    const auto r3 = b2.register_service("stock", {{"level", method_kind::unary}});
    ASSERT_TRUE(b1.wait_for(is(event_kind::ack, r1)));
    ASSERT_TRUE(b2.wait_for(is(event_kind::ack, r2)));
    ASSERT_TRUE(b2.wait_for(is(event_kind::ack, r3)));

    const call_result d = f.run([](client_engine& e, time_ms) { return e.discover(); });
    const auto list = f.wait_for(is(event_kind::service_list, d.id));
    ASSERT_TRUE(list);
    ASSERT_EQ(list->services.size(), 2u);
    EXPECT_EQ(list->services[0].name, "orders");
    EXPECT_EQ(list->services[0].instances, 2u);
    ASSERT_EQ(list->services[0].methods.size(), 2u);
    EXPECT_EQ(list->services[0].methods[1].first, "watch");
    EXPECT_EQ(list->services[0].methods[1].second, method_kind::stream);
    EXPECT_EQ(list->services[1].name, "stock");
    EXPECT_EQ(list->services[1].instances, 1u);
}

// A backend may not grow the registry without bound, a listing longer than
// the payload limit reaches the caller whole (in pages the engine collects),
// and a departed backend's services are forgotten after their grace.
TEST(RouterPubSub, TheRegistryIsBoundedPagedAndForgets) {
    router_process router({"--limits-max-payload", "1024", "--limits-max-services-per-backend", "60",
                           "--requests-service-grace-ms", "300"});
    ASSERT_TRUE(router.ready());
    auto backend = std::make_unique<test_client>(backend_config(router.backend_url(), "many"));
    test_client f(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend->wait_ready() && f.wait_ready());
    std::vector<std::string> names;
    std::vector<std::uint32_t> ids;
    for (int i = 0; i < 61; ++i) {
        names.push_back("service-with-a-longish-name-" + std::to_string(100 + i));
        ids.push_back(backend->register_service(names.back(), {{"get", method_kind::unary}}));
    }
    for (int i = 0; i < 60; ++i) ASSERT_TRUE(backend->wait_for(is(event_kind::ack, ids[i]))) << i;
    const auto refused = backend->wait_for(is_error(ids[60]));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->error(), errc::too_many_services);
    names.pop_back();

    const call_result d = f.run([](client_engine& e, time_ms) { return e.discover(); });
    const auto list = f.wait_for(is(event_kind::service_list, d.id));
    ASSERT_TRUE(list);
    std::vector<std::string> listed;
    for (const auto& s : list->services) listed.push_back(s.name);
    EXPECT_EQ(listed, names) << "60 services of about 40 bytes each: three pages of 1 KiB";

    backend.reset();
    std::size_t left = names.size();
    for (int attempt = 0; attempt < 100 && left != 0; ++attempt) {
        const call_result again = f.run([](client_engine& e, time_ms) { return e.discover(); });
        const auto later = f.wait_for(is(event_kind::service_list, again.id));
        ASSERT_TRUE(later);
        left = later->services.size();
        if (left != 0) std::this_thread::sleep_for(50ms);  // polling a condition, bounded by the attempts
    }
    EXPECT_EQ(left, 0u) << "the departed backend's services are forgotten after the grace";
}

}  // namespace
}  // namespace hyperstreams::testing
