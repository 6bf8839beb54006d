// The real router binary on its own: idempotent publish (a key's repeat
// is acked with the first publication's position and not delivered again)
// and per-message expiry (an expired message is not replayed; a resume
// gets a gap for it), with every bad input a named error.
// Across routers over Redis: test_router_cluster.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

// The subscriber has had its chance to get everything published on
// `channel` before: a marker published after it arrived.
void wait_marker(test_client& pub, test_client& sub, const std::string& channel) {
    pub.publish(channel, "marker");
    ASSERT_TRUE(sub.wait_for([channel](const recorded_event& e) {
        return e.kind == event_kind::message && e.name == channel && e.payload_text() == "marker";
    }));
}

TEST(RouterIdempotency, ARepeatIsAckedWithTheFirstPositionAndNotDeliveredAgain) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client sub(frontend_config(router.ws_url(), "sub"));
    test_client pub(frontend_config(router.ws_url(), "pub"));
    test_client other(backend_config(router.backend_url(), "other"));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready() && other.wait_ready());
    const std::uint32_t s = sub.subscribe("orders.new");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));

    const auto first = pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", "qty 3", "order-17")));
    ASSERT_TRUE(first);
    pub.publish("orders.new", "between");
    // The same key and payload again, from the publisher and from another
    // client (keys belong to the channel, not to a connection).
    const auto again = pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", "qty 3", "order-17")));
    const auto elsewhere = other.wait_for(is(event_kind::ack, publish_with(other, "orders.new", "qty 3", "order-17")));
    ASSERT_TRUE(again && elsewhere);
    EXPECT_EQ(again->epoch, first->epoch);
    EXPECT_EQ(again->seq, first->seq);
    EXPECT_EQ(elsewhere->epoch, first->epoch);
    EXPECT_EQ(elsewhere->seq, first->seq);

    wait_marker(pub, sub, "orders.new");
    const auto got = sub.events(message_on("orders.new"));
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].payload_text(), "qty 3");
    EXPECT_EQ(got[1].payload_text(), "between");
    EXPECT_EQ(got[2].seq, first->seq + 2) << "the repeats took no position";
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
}

TEST(RouterIdempotency, AnotherPayloadUnderAKeyIsKeyReused) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client sub(frontend_config(router.ws_url(), "sub"));
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready());
    const std::uint32_t s = sub.subscribe("orders.new");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));

    ASSERT_TRUE(pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", "qty 3", "order-17"))));
    const auto reused = pub.wait_for(is_error(publish_with(pub, "orders.new", "qty 4", "order-17")));
    ASSERT_TRUE(reused);
    EXPECT_EQ(reused->code, static_cast<std::uint16_t>(errc::key_reused));
    // The same key on another channel is another key.
    EXPECT_TRUE(pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.old", "qty 4", "order-17"))));

    wait_marker(pub, sub, "orders.new");
    EXPECT_EQ(sub.count(message_on("orders.new")), 2u) << "qty 3 and the marker, not qty 4";
}

TEST(RouterIdempotency, AKeyRepeatedAfterItsWindowIsANewPublication) {
    router_process router({"--channels-idempotency-window-s", "1"});
    ASSERT_TRUE(router.ready());
    test_client sub(frontend_config(router.ws_url(), "sub"));
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready());
    const std::uint32_t s = sub.subscribe("orders.new");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));

    const auto first = pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", "qty 3", "order-17")));
    ASSERT_TRUE(first);
    // Repeats are acked at the first position until the window ends, then
    // one is published: bounded by 50 tries, 100 ms apart (5 s, the window is 1 s).
    std::optional<recorded_event> later;
    for (int i = 0; i < 50; ++i) {
        later = pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", "qty 3", "order-17")));
        ASSERT_TRUE(later);
        if (later->seq != first->seq) break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(later->seq, first->seq + 1);
    wait_marker(pub, sub, "orders.new");
    EXPECT_EQ(sub.count(message_on("orders.new")), 3u) << "the first, the one after the window, the marker";
}

// Past channels.idempotency_max_keys the oldest key is forgotten first: its
// repeat is published again, the newer ones still are not.
TEST(RouterIdempotency, TheOldestKeyIsForgottenPastTheBound) {
    router_process router({"--channels-idempotency-max-keys", "2"});
    ASSERT_TRUE(router.ready());
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    for (const std::string key : {"k1", "k2", "k3"})
        ASSERT_TRUE(pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", key, key))));
    const auto k3 = pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", "k3", "k3")));
    const auto k1 = pub.wait_for(is(event_kind::ack, publish_with(pub, "orders.new", "k1", "k1")));
    ASSERT_TRUE(k3 && k1);
    EXPECT_EQ(k3->seq, 3u);
    EXPECT_EQ(k1->seq, 4u);
}

// What the engine never sends: an options block that does not parse. The
// publish is refused by name and the connection goes on.
TEST(RouterPublishOptions, ABadOptionsBlockIsMalformedBodyAndTheConnectionLives) {
    router_process router;
    ASSERT_TRUE(router.ready());
    raw_ws ws(router.http_address());
    ASSERT_TRUE(ws.join());
    const std::vector<std::uint8_t> zero_ttl = {0, 0, 0, 0, 'm'};
    const std::vector<std::uint8_t> empty_key = {0, 'm'};
    const std::vector<std::uint8_t> short_key = {9, 'a', 'b'};
    struct bad {
        std::uint8_t flags;
        const std::vector<std::uint8_t>& payload;
    };
    std::uint32_t id = 1;
    for (const bad& b : {bad{frame_flags::ttl, zero_ttl}, bad{frame_flags::idempotency_key, empty_key},
                         bad{frame_flags::idempotency_key | frame_flags::ttl, short_key}}) {
        frame f;
        f.kind = frame_kind::publish;
        f.flags = static_cast<std::uint8_t>(b.flags | frame_flags::ack_requested);
        f.id = ++id;
        f.name = "orders.new";
        f.payload = b.payload;
        ASSERT_TRUE(ws.send(encode_batch({f})));
        const auto error = ws.read_until(frame_kind::error);
        ASSERT_TRUE(error);
        EXPECT_EQ(error->id, id);
        EXPECT_EQ(static_cast<errc>(error->code), errc::malformed_body);
    }
    frame ok;
    ok.kind = frame_kind::publish;
    ok.flags = frame_flags::ack_requested;
    ok.id = 100;
    ok.name = "orders.new";
    ASSERT_TRUE(ws.send(encode_batch({ok})));
    const auto ack = ws.read_until(frame_kind::ack);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->id, 100u);
    EXPECT_EQ(ack->seq, 1u) << "nothing refused took a position";
}

TEST(RouterPublishOptions, ATtlOfZeroIsRefusedByTheEngine) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    const call_result r = pub.run([](client_engine& e, time_ms) {
        publish_options o;
        o.ttl_s = 0;
        return e.publish("orders.new", bytes_of("x"), true, 0, o);
    });
    EXPECT_EQ(r.error, errc::invalid_argument);
}

// The router placed the message before its ack left, on the same machine's
// steady clock: once `ttl` has passed since the ack, it has expired there.
// A wait for a point in time, not for a condition.
void wait_past(std::chrono::steady_clock::time_point acked, std::chrono::seconds ttl) {
    std::this_thread::sleep_until(acked + ttl + 50ms);
}

// A resume across expired messages: each run of them gets a gap (they are
// gone, as evicted ones are), the live ones in between are replayed.
TEST(RouterExpiry, AnExpiredMessageIsNotReplayedAndTheResumeGetsAGapForIt) {
    router_process router({"--history-max-messages", "16"});
    ASSERT_TRUE(router.ready());
    test_client sub(reconnect_on_demand(frontend_config(router.ws_url(), "resuming")));
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready());
    const std::uint32_t s = sub.subscribe("alarms.m3");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    pub.publish("alarms.m3", "1");
    ASSERT_TRUE(sub.wait_for(message_on("alarms.m3")));

    sub.drop_transport();
    publish_with(pub, "alarms.m3", "2 short", "", 1);
    publish_with(pub, "alarms.m3", "3 kept", "", 3600);
    const std::uint32_t last = publish_with(pub, "alarms.m3", "4 short", "", 1);
    ASSERT_TRUE(pub.wait_for(is(event_kind::ack, last)));
    wait_past(std::chrono::steady_clock::now(), 1s);
    sub.connect_now();

    const auto gaps = sub.wait_count(gap_on("alarms.m3"), 2, 10s);
    ASSERT_EQ(gaps.size(), 2u);
    EXPECT_EQ(gaps[0].seq, 2u);
    EXPECT_EQ(gaps[0].count, 1u);
    EXPECT_EQ(gaps[1].seq, 4u);
    EXPECT_EQ(gaps[1].count, 1u);
    const auto got = sub.wait_count(message_on("alarms.m3"), 2, 10s);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].payload_text(), "3 kept");
    EXPECT_EQ(got[1].seq, 3u);
    // Live delivery is not affected: the next message is seq 5, no more gap.
    pub.publish("alarms.m3", "5");
    const auto fifth = sub.wait_count(message_on("alarms.m3"), 3);
    ASSERT_EQ(fifth.size(), 3u);
    EXPECT_EQ(fifth[2].seq, 5u);
    EXPECT_EQ(sub.count(gap_on("alarms.m3")), 2u);
}

// A namespace's message_ttl_s applies to the publishes without a ttl of
// their own; a message's own ttl wins; other namespaces keep theirs.
TEST(RouterExpiry, ANamespaceDefaultTtlExpiresItsMessages) {
    router_process router({"--history-max-messages", "16", "--channels-namespaces",
                           R"([{"pattern": "short.>", "message_ttl_s": 1}])"});
    ASSERT_TRUE(router.ready());
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    pub.publish("short.a", "expires");
    publish_with(pub, "short.a", "its own ttl", "", 3600);
    const auto acked = pub.wait_for(is(event_kind::ack, pub.publish("long.a", "stays", true)));
    ASSERT_TRUE(acked);
    wait_past(std::chrono::steady_clock::now(), 1s);

    test_client late(frontend_config(router.ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    for (const std::string channel : {"short.a", "long.a"}) {
        // From before the first message: all the history still alive.
        const call_result r = late.run([&](client_engine& e, time_ms) {
            const channel_position since{acked->epoch, 0};
            return e.subscribe(channel, {.since = since});
        });
        ASSERT_FALSE(r.error);
        ASSERT_TRUE(late.wait_for(is(event_kind::ack, r.id)));
    }
    const auto kept = late.wait_for(message_on("short.a"));
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->payload_text(), "its own ttl");
    const auto gap = late.wait_for(gap_on("short.a"));
    ASSERT_TRUE(gap);
    EXPECT_EQ(gap->seq, 1u);
    EXPECT_EQ(gap->count, 1u);
    const auto stays = late.wait_for(message_on("long.a"));
    ASSERT_TRUE(stays);
    EXPECT_EQ(stays->payload_text(), "stays");
    EXPECT_EQ(late.count(message_on("short.a")), 1u);
}

// An expired message is no latest value: a latest-value subscribe gets the
// channels whose last message is alive, and nothing for the others, whose
// next message then comes live.
TEST(RouterExpiry, AnExpiredMessageIsNoLatestValue) {
    router_process router({"--channels-namespaces", R"([{"pattern": "state.>", "latest": true, "history_size": 0}])"});
    ASSERT_TRUE(router.ready());
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    publish_with(pub, "state.a", "older, kept", "", 3600);
    publish_with(pub, "state.a", "last, short", "", 1);
    const auto acked = pub.wait_for(is(event_kind::ack, publish_with(pub, "state.b", "last, kept", "", 3600)));
    ASSERT_TRUE(acked);
    wait_past(std::chrono::steady_clock::now(), 1s);

    test_client dashboard(frontend_config(router.ws_url(), "dashboard"));
    ASSERT_TRUE(dashboard.wait_ready());
    ASSERT_TRUE(dashboard.wait_for(is(event_kind::ack, dashboard.subscribe("state.*", slow_policy::router_default, true))));
    const auto b = dashboard.wait_for(message_on("state.b"));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->payload_text(), "last, kept");
    wait_marker(pub, dashboard, "state.a");
    EXPECT_EQ(dashboard.count(message_on("state.a")), 1u) << "only the marker: the last message expired, "
                                                              "and the one before it is not the latest";
}

TEST(RouterExpiry, ABadNamespaceTtlStopsTheRouterNamingIt) {
    const run_result bad =
        run_router_once({"--channels-namespaces", R"([{"pattern": "a.>", "message_ttl_s": "60s"}])"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("entry 1 ('a.>'): message_ttl_s: expected a non-negative integer"), std::string::npos)
        << bad.err;
}

}  // namespace
}  // namespace hyperstreams::testing
