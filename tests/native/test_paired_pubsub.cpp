// The client engine's subscriptions and publishing against the real router
// core: acks and refusals, pattern delivery, resuming after a reconnect
// (replay, a gap beyond the history, a channel forgotten meanwhile), a
// subscription a token refresh withdraws and a slow subscriber's gap. Real
// engines and a real core in memory, on a fake clock (support/paired.hpp).
#include <gtest/gtest.h>

#include <string>

#include "paired.hpp"

namespace hyperstreams::testing {
namespace {

client_config publisher_config() {
    client_config c = test_config();
    c.name = "publisher";
    c.token = "publisher-token";
    return c;
}

// A publishing client beside the client under test: what the fake router's
// publish() stood for.
struct two_clients {
    explicit two_clients(router::router_config cfg = paired_config()) : p(std::move(cfg)) {
        publisher.connect();
    }
    void publish(const std::string& channel, const std::string& payload = "m") {
        EXPECT_FALSE(publisher.engine.publish(channel, bytes(payload)).error);
    }

    paired p;
    peer& publisher = p.add(publisher_config());
    peer& r = p.add(test_config());
};

// --- subscribe / unsubscribe ---------------------------------------------------------

TEST(ClientSubscribe, IsSentWithItsPolicyAndAcknowledged) {
    paired p;
    peer& r = p.add(test_config());
    r.connect();
    const call_result sub = r.engine.subscribe("factory.*.temp", {.policy = slow_policy::keep_latest});
    ASSERT_FALSE(sub.error);
    EXPECT_NE(sub.id, 0u);
    p.pump();
    const auto frames = r.sent(frame_kind::subscribe);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, sub.id);
    EXPECT_EQ(frames[0].name, "factory.*.temp");
    EXPECT_EQ(policy_of(frames[0].flags), slow_policy::keep_latest);
    EXPECT_FALSE(frames[0].flags & frame_flags::since);
    const auto acks = r.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].op, operation::subscribe);
    EXPECT_EQ(acks[0].id, sub.id);
    EXPECT_EQ(acks[0].subscription, sub.id);
}

TEST(ClientSubscribe, SinceAPositionReplaysWhatFollowsIt) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    for (int i = 1; i <= 4; ++i) net.publish("plant.m1", "old" + std::to_string(i));
    net.p.pump();
    const channel_position since{1, 2};
    ASSERT_FALSE(r.engine.subscribe("plant.m1", {.since = since}).error);
    net.p.pump();
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 1u);
    EXPECT_TRUE(subs[0].flags & frame_flags::since);
    EXPECT_EQ(subs[0].epoch, 1u);
    EXPECT_EQ(subs[0].seq, 2u);
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"old3", "old4"}));
    EXPECT_EQ(r.count(event_kind::gap), 0u);
}

TEST(ClientSubscribe, RefusalIsAnErrorAndTheSubscriptionIsGone) {
    paired p;
    p.auth.grant("token-1", R"({"subscribe":["public.>"]})");
    peer& r = p.add(test_config());
    r.connect();
    const call_result sub = r.engine.subscribe("secret.>");
    p.pump();
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, sub.id);
    EXPECT_EQ(errors[0].subscription, sub.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));
    EXPECT_EQ(errors[0].text, "not allowed to subscribe");  // the router's words
    // Not restored after a reconnect, and the pattern may be used again.
    r.drop_transport();
    p.advance(2000);
    EXPECT_EQ(r.sent(frame_kind::subscribe).size(), 1u);
    EXPECT_FALSE(r.engine.subscribe("secret.>").error);
}

TEST(ClientSubscribe, UnsubscribeIsAcknowledgedAndStopsDelivery) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    net.p.pump();
    net.publish("a.b", "one");
    net.p.pump();
    const call_result unsub = r.engine.unsubscribe(sub.id);
    ASSERT_FALSE(unsub.error);
    EXPECT_NE(unsub.id, sub.id);
    // A message already on its way: the router routes it before the
    // unsubscribe reaches it.
    net.publish("a.b", "late");
    net.p.transmit(net.publisher);
    net.p.pump();
    const auto frames = r.sent(frame_kind::unsubscribe);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].name, "a.b");
    const auto acks = r.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks[1].op, operation::unsubscribe);
    EXPECT_EQ(acks[1].id, unsub.id);
    EXPECT_EQ(acks[1].subscription, sub.id);
    // It is dropped, not delivered.
    EXPECT_EQ(payloads(r.of(event_kind::message)), std::vector<std::string>{"one"});
    EXPECT_EQ(r.engine.stats().unmatched_messages, 1u);
}

TEST(ClientSubscribe, BeforeStartIsSentAfterTheWelcome) {
    paired p;
    peer& r = p.add(test_config());
    const call_result sub = r.engine.subscribe("a.>");
    ASSERT_FALSE(sub.error);
    ASSERT_FALSE(r.engine.start(p.now));
    p.pump();
    ASSERT_EQ(r.sent(frame_kind::subscribe).size(), 1u);
    EXPECT_EQ(r.of(event_kind::ack).at(0).id, sub.id);
}

TEST(ClientSubscribe, SamePatternTwiceAndRouterLimit) {
    router::router_config cfg = paired_config();
    cfg.max_subscriptions = 2;
    paired p(cfg);
    peer& r = p.add(test_config());
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    EXPECT_EQ(r.engine.subscribe("a.b").error, errc::already_subscribed);
    ASSERT_FALSE(r.engine.subscribe("a.c").error);
    EXPECT_EQ(r.engine.subscribe("a.d").error, errc::too_many_subscriptions);
}

TEST(ClientSubscribe, RestoredAcksAreNotEventsAgain) {
    paired p;
    peer& r = p.add(test_config());
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    p.pump();
    r.drop_transport();
    p.advance(2000);
    EXPECT_EQ(r.sent(frame_kind::subscribe).size(), 2u);
    EXPECT_EQ(r.count(event_kind::ack), 1u);
}

TEST(ClientSubscribe, FailedRestoreIsReported) {
    paired p;
    peer& r = p.add(test_config());
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    p.pump();
    r.drop_transport();
    p.auth.grant("token-1", R"({"subscribe":["other.>"]})");  // withdrawn while away
    p.advance(2000);
    EXPECT_EQ(r.errors(operation::subscribe).at(0).id, sub.id);
    r.drop_transport();
    p.advance(2000);
    EXPECT_EQ(r.sent(frame_kind::subscribe).size(), 2u) << "not restored once refused";
}

// A token refresh withdraws the right: the router ends the subscription with
// an error carrying the id its ack carried, and routes nothing more to it.
TEST(ClientSubscribe, ARefreshedTokenThatNoLongerAllowsASubscriptionEndsIt) {
    two_clients net;
    net.p.auth.grant("token-1", R"({"subscribe":["secret.>","*.news"]})");
    net.p.auth.grant("token-2", R"({"subscribe":["*.news"]})");
    peer& r = net.r;
    r.connect();
    const call_result secret = r.engine.subscribe("secret.>");
    const call_result news = r.engine.subscribe("*.news");
    net.p.pump();
    ASSERT_EQ(r.count(event_kind::ack), 2u);
    net.publish("secret.news", "before");
    net.p.pump();

    const call_result refresh = r.engine.refresh_token("token-2", net.p.now);
    net.p.pump();
    EXPECT_EQ(r.of(event_kind::token_refreshed).at(0).id, refresh.id);
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, secret.id);
    EXPECT_EQ(errors[0].subscription, secret.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));

    net.publish("secret.news", "after");
    net.publish("secret.key", "never");
    net.p.pump();
    std::vector<std::string> to_secret, to_news;
    for (const seen_event& m : r.of(event_kind::message)) {
        if (m.subscription == secret.id) to_secret.push_back(m.payload);
        if (m.subscription == news.id) to_news.push_back(m.payload);
    }
    EXPECT_EQ(to_secret, std::vector<std::string>{"before"});
    EXPECT_EQ(to_news, (std::vector<std::string>{"before", "after"}));
    EXPECT_EQ(r.engine.stats().unmatched_messages, 0u) << "the router sends nothing the client no longer holds";
    EXPECT_EQ(r.engine.unsubscribe(secret.id).error, errc::invalid_argument) << "already gone";

    // Not restored after a reconnect, which the new token passes.
    r.drop_transport();
    net.p.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.hellos.back().token, "token-2");
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 3u);
    EXPECT_EQ(subs[2].name, "*.news");
    EXPECT_EQ(r.errors(operation::subscribe).size(), 1u);
}

// --- delivery ------------------------------------------------------------------------

TEST(ClientDelivery, EveryMatchingSubscriptionGetsTheMessageOnce) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    const call_result exact = r.engine.subscribe("plant.m1.temp");
    const call_result one = r.engine.subscribe("plant.*.temp");
    const call_result rest = r.engine.subscribe("plant.>");
    const call_result other = r.engine.subscribe("plant.*.rpm");
    ASSERT_FALSE(other.error);
    net.p.pump();
    net.publish("plant.m1.temp", "21.5");
    net.p.pump();
    const auto messages = r.of(event_kind::message);
    ASSERT_EQ(messages.size(), 3u);
    std::vector<std::uint32_t> subs;
    for (const seen_event& m : messages) {
        EXPECT_EQ(m.name, "plant.m1.temp");
        EXPECT_EQ(m.payload, "21.5");
        EXPECT_EQ(m.epoch, 1u);
        EXPECT_EQ(m.seq, 1u);
        subs.push_back(m.subscription);
    }
    EXPECT_EQ(subs, (std::vector<std::uint32_t>{exact.id, one.id, rest.id}));

    r.events.clear();
    net.publish("plant.line", "x");  // only ">"
    net.publish("plant", "y");       // ">" needs one more token: nothing
    net.p.pump();
    ASSERT_EQ(r.count(event_kind::message), 1u);
    EXPECT_EQ(r.of(event_kind::message)[0].subscription, rest.id);
}

TEST(ClientDelivery, SubscriptionAddedLaterJoinsAKnownChannel) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    const call_result wide = r.engine.subscribe("a.*");
    net.p.pump();
    net.publish("a.b");
    net.p.pump();
    const call_result narrow = r.engine.subscribe("a.b");
    net.p.pump();
    r.events.clear();
    net.publish("a.b");
    net.p.pump();
    const auto messages = r.of(event_kind::message);
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].subscription, wide.id);
    EXPECT_EQ(messages[1].subscription, narrow.id);
    EXPECT_EQ(r.count(event_kind::gap), 0u);
}

// A JSON message published earlier comes back replayed.
TEST(ClientDelivery, JsonAndReplayedFlagsReachTheHost) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    ASSERT_FALSE(net.publisher.engine.publish("a.b", bytes("{}"), false, frame_flags::json).error);
    net.p.pump();
    const channel_position since{1, 0};
    ASSERT_FALSE(r.engine.subscribe("a.b", {.since = since}).error);
    net.p.pump();
    EXPECT_EQ(r.of(event_kind::message).at(0).flags, frame_flags::json | frame_flags::replayed);
}

// The router drops a slow subscriber's oldest messages and says how many:
// the engine reports exactly that gap, and what follows is in order.
TEST(ClientDelivery, ASlowSubscriberHearsTheGapTheRouterCounted) {
    router::router_config cfg = paired_config();
    cfg.outbox_max_bytes = 4096;
    cfg.outbox_batch_bytes = 1024;
    two_clients net(cfg);
    peer& r = net.r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    net.p.pump();
    const std::string payload(500, 'x');
    net.publish("a.b", payload);
    net.p.pump();
    ASSERT_EQ(r.count(event_kind::message), 1u);

    r.stalled = true;
    for (int i = 0; i < 40; ++i) net.publish("a.b", payload);
    net.p.pump();
    EXPECT_EQ(r.count(event_kind::message), 1u);
    r.stalled = false;
    net.p.pump();

    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 1u);
    EXPECT_EQ(gaps[0].subscription, sub.id);
    EXPECT_EQ(gaps[0].seq, 2u) << "the first message it missed";
    ASSERT_EQ(r.received(frame_kind::gap).size(), 1u) << "the router said what it dropped";
    EXPECT_EQ(gaps[0].count, r.received(frame_kind::gap)[0].count);
    const auto messages = r.of(event_kind::message);
    ASSERT_GE(messages.size(), 2u);
    EXPECT_EQ(messages.size() - 1 + gaps[0].count, 40u) << "every message either delivered or counted";
    for (std::size_t i = 1; i < messages.size(); ++i)
        EXPECT_EQ(messages[i].seq, 1 + gaps[0].count + i) << "in order after the gap";
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

// --- resume -----------------------------------------------------------------------------

TEST(ClientResume, ExactSubscriptionResumesFromItsLastPosition) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("plant.m1").error);
    net.p.pump();
    for (int i = 1; i <= 3; ++i) net.publish("plant.m1", "live" + std::to_string(i));
    net.p.pump();

    r.drop_transport();
    for (int i = 4; i <= 6; ++i) net.publish("plant.m1", "missed" + std::to_string(i));
    net.p.pump();
    net.p.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);

    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_TRUE(subs[1].flags & frame_flags::since);
    EXPECT_EQ(subs[1].epoch, 1u);
    EXPECT_EQ(subs[1].seq, 3u);
    EXPECT_EQ(payloads(r.of(event_kind::message)),
              (std::vector<std::string>{"live1", "live2", "live3", "missed4", "missed5", "missed6"}));
    EXPECT_EQ(r.count(event_kind::gap), 0u);
}

// What fell out of the history while the client was away is a gap the
// router names first; the rest is replayed.
TEST(ClientResume, BeyondTheHistoryTheGapComesFirstThenTheReplay) {
    router::router_config cfg = paired_config();
    cfg.history_max_messages = 2;
    two_clients net(cfg);
    peer& r = net.r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    net.p.pump();
    net.publish("a.b", "1");
    net.p.pump();
    r.drop_transport();
    for (int i = 2; i <= 6; ++i) net.publish("a.b", std::to_string(i));
    net.p.pump();
    net.p.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.errors(operation::subscribe).empty()) << "the position is still meaningful";
    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 1u);
    EXPECT_EQ(gaps[0].subscription, sub.id);
    EXPECT_EQ(gaps[0].epoch, 1u);
    EXPECT_EQ(gaps[0].seq, 2u);
    EXPECT_EQ(gaps[0].count, 3u);
    const auto messages = r.of(event_kind::message);
    EXPECT_EQ(payloads(messages), (std::vector<std::string>{"1", "5", "6"}));
    EXPECT_TRUE(messages.back().flags & frame_flags::replayed);

    net.publish("a.b", "7");
    net.p.pump();
    EXPECT_EQ(r.of(event_kind::message).back().payload, "7");
    EXPECT_EQ(r.count(event_kind::gap), 1u);
}

// A channel forgotten while the client was away (the router keeps at most
// max_channels) comes back with a new epoch: the old position means nothing
// there, so the router replays all it has and the engine reports the epoch
// change instead of a gap or an error.
TEST(ClientResume, AChannelForgottenMeanwhileComesBackWithANewEpoch) {
    router::router_config cfg = paired_config();
    cfg.max_channels = 2;
    two_clients net(cfg);
    peer& r = net.r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    net.p.pump();
    net.publish("a.b", "1");
    net.publish("a.b", "2");
    net.p.pump();
    r.drop_transport();
    net.publish("c.d");
    net.publish("e.f");        // a third channel: a.b, the least recently published, is forgotten
    net.publish("a.b", "new");  // and c.d for it: epoch 1 + 2 channels forgotten
    net.p.pump();
    net.p.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);

    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_TRUE(subs[1].flags & frame_flags::since);
    EXPECT_EQ(subs[1].epoch, 1u);
    EXPECT_EQ(subs[1].seq, 2u);
    const auto changes = r.of(event_kind::epoch_changed);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].subscription, sub.id);
    EXPECT_EQ(changes[0].epoch, 3u);
    EXPECT_EQ(changes[0].seq, 1u);
    EXPECT_EQ(r.count(event_kind::gap), 0u);
    EXPECT_TRUE(r.errors(operation::subscribe).empty());

    net.publish("a.b", "next");
    net.p.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"1", "2", "new", "next"}));
    EXPECT_EQ(r.count(event_kind::gap), 0u);
    EXPECT_EQ(r.of(event_kind::message).back().epoch, 3u);
}

TEST(ClientResume, WildcardResubscribesLiveAndReportsTheExactGap) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("plant.*").error);
    net.p.pump();
    net.publish("plant.m1");
    net.publish("plant.m2");
    net.p.pump();
    r.drop_transport();
    net.publish("plant.m1");
    net.publish("plant.m1");
    net.publish("plant.m2");
    net.p.pump();
    net.p.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_FALSE(subs[1].flags & frame_flags::since) << "one position cannot cover many channels";

    net.publish("plant.m1");
    net.publish("plant.m2");
    net.p.pump();
    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 2u);
    EXPECT_EQ(gaps[0].name, "plant.m1");
    EXPECT_EQ(gaps[0].count, 2u);
    EXPECT_EQ(gaps[1].name, "plant.m2");
    EXPECT_EQ(gaps[1].count, 1u);
}

TEST(ClientResume, ResumingSubscriptionsGoFirst) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.*").error);
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    ASSERT_FALSE(r.engine.subscribe("a.never").error);
    net.p.pump();
    net.publish("a.b");
    net.p.pump();
    r.drop_transport();
    r.forget_records();
    net.p.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 3u);
    EXPECT_EQ(subs[0].name, "a.b");
    EXPECT_TRUE(subs[0].flags & frame_flags::since);
    EXPECT_EQ(subs[1].name, "a.*");
    EXPECT_EQ(subs[2].name, "a.never");
    EXPECT_FALSE(subs[2].flags & frame_flags::since) << "never saw a message: nothing to resume";
}

// --- publish ---------------------------------------------------------------------------

TEST(ClientPublish, WithoutAckHasNoId) {
    paired net;
    peer& r = net.add(test_config());
    r.connect();
    const call_result p = r.engine.publish("a.b", bytes("x"), false, frame_flags::json);
    ASSERT_FALSE(p.error);
    EXPECT_EQ(p.id, 0u);
    net.pump();
    const auto frames = r.sent(frame_kind::publish);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, 0u);
    EXPECT_EQ(frames[0].flags, frame_flags::json);
    EXPECT_EQ(frames[0].payload, "x");
    EXPECT_EQ(r.count(event_kind::ack), 0u);
}

TEST(ClientPublish, AckCarriesThePosition) {
    two_clients net;
    peer& r = net.r;
    r.connect();
    net.publish("a.b");
    net.publish("a.b");
    net.p.pump();
    const call_result p = r.engine.publish("a.b", bytes("x"), true);
    ASSERT_NE(p.id, 0u);
    net.p.pump();
    EXPECT_TRUE(r.sent(frame_kind::publish).at(0).flags & frame_flags::ack_requested);
    const auto acks = r.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].op, operation::publish);
    EXPECT_EQ(acks[0].id, p.id);
    EXPECT_EQ(acks[0].epoch, 1u);
    EXPECT_EQ(acks[0].seq, 3u);
}

TEST(ClientPublish, RefusalNamesThePublish) {
    paired net;
    net.auth.grant("token-1", R"({"subscribe":[">"]})");
    peer& r = net.add(test_config());
    r.connect();
    const call_result p = r.engine.publish("a.b", bytes("x"), true);
    net.pump();
    const auto errors = r.errors(operation::publish);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, p.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));
}

TEST(ClientPublish, OwnMessagesComeBackWhenSubscribed) {
    paired p;
    peer& r = p.add(test_config());
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("chat.>").error);
    ASSERT_FALSE(r.engine.publish("chat.room1", bytes("hello")).error);
    p.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)), std::vector<std::string>{"hello"});
}

// --- server-side subscriptions ---------------------------------------------------------

client_config backend_config() {
    client_config c = test_config();
    c.name = "orders-service";
    c.token = "backend-token";
    c.role = client_role::backend;
    return c;
}

// Connects `r` and keeps what the handshake brought (connect() forgets it):
// the router's subscribed frames follow its welcome.
void connect_keeping_records(paired& p, peer& r) {
    ASSERT_FALSE(r.engine.start(p.now));
    p.pump();
    ASSERT_EQ(r.engine.state(), client_state::ready);
}

// A client, a publisher and a backend that subscribes the client.
struct with_backend : two_clients {
    with_backend() { backend.connect(); }
    peer& backend = p.add(backend_config());
};

TEST(ServerSubscription, TheTokensChannelsAreSubscribedAtHelloBeforeAnyMessage) {
    two_clients net;
    net.p.auth.grant("token-1", R"({"subscribe":["orders.>"],"channels":["orders.alice.>"]})");
    peer& r = net.r;
    connect_keeping_records(net.p, r);
    const auto subscribed = r.of(event_kind::subscribed);
    ASSERT_EQ(subscribed.size(), 1u);
    EXPECT_EQ(subscribed[0].name, "orders.alice.>");
    EXPECT_NE(subscribed[0].subscription, 0u);
    net.publish("orders.alice.1", "first");
    net.publish("orders.bob.1", "not hers");
    net.p.pump();
    const auto messages = r.of(event_kind::message);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].payload, "first");
    EXPECT_EQ(messages[0].subscription, subscribed[0].subscription);
    EXPECT_TRUE(r.sent(frame_kind::subscribe).empty()) << "the client asked for nothing";
    EXPECT_FALSE(r.hellos.at(0).flags & frame_flags::resubscribes) << "nothing to restore yet";
}

TEST(ServerSubscription, ABackendSubscribesAClientByItsAddressAndUnsubscribesIt) {
    with_backend net;
    peer& r = net.r;
    r.connect();
    const std::string address(r.engine.session_id());
    const call_result sub = net.backend.engine.subscribe_client(address, "orders.bob", slow_policy::keep_latest);
    ASSERT_FALSE(sub.error);
    net.p.pump();
    const auto acks = net.backend.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].op, operation::subscribe_client);
    EXPECT_EQ(acks[0].id, sub.id);
    const auto subscribed = r.of(event_kind::subscribed);
    ASSERT_EQ(subscribed.size(), 1u);
    EXPECT_EQ(subscribed[0].name, "orders.bob");
    EXPECT_EQ(policy_of(subscribed[0].flags), slow_policy::keep_latest);
    net.publish("orders.bob", "one");
    net.p.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)), std::vector<std::string>{"one"});

    const call_result unsub = net.backend.engine.unsubscribe_client(address, "orders.bob");
    net.p.pump();
    ASSERT_EQ(net.backend.of(event_kind::ack).size(), 2u);
    EXPECT_EQ(net.backend.of(event_kind::ack)[1].op, operation::unsubscribe_client);
    EXPECT_EQ(net.backend.of(event_kind::ack)[1].id, unsub.id);
    const auto ended = r.of(event_kind::unsubscribed);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].subscription, subscribed[0].subscription);
    EXPECT_EQ(ended[0].code, 0u);
    EXPECT_TRUE(ended[0].ends_subscription);
    net.publish("orders.bob", "two");
    net.p.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)), std::vector<std::string>{"one"});
    EXPECT_EQ(r.engine.stats().unmatched_messages, 0u) << "the router no longer sends it";
}

TEST(ServerSubscription, EveryRefusalIsANamedError) {
    with_backend net;
    net.p.auth.grant("token-1", R"({"subscribe":["orders.alice.>"]})");
    net.p.auth.grant("backend-token", R"({"subscribe_clients":["orders.>"]})");
    peer& r = net.r;
    r.connect();
    const std::string address(r.engine.session_id());
    peer& b = net.backend;
    auto verdict = [&](call_result c) {
        EXPECT_FALSE(c.error);
        net.p.pump();
        for (const seen_event& e : b.of(event_kind::error))
            if (e.id == c.id) return static_cast<errc>(e.code);
        return b.count(event_kind::ack) != 0 && b.of(event_kind::ack).back().id == c.id ? errc{} : errc::invalid_argument;
    };
    EXPECT_EQ(verdict(b.engine.subscribe_client(address, "news.>")), errc::forbidden) << "the backend's right";
    EXPECT_EQ(verdict(b.engine.subscribe_client(address, "orders.bob")), errc::forbidden) << "the client's right";
    EXPECT_EQ(verdict(b.engine.subscribe_client("router-a-999-00000000", "orders.alice.x")), errc::no_such_address);
    EXPECT_EQ(verdict(b.engine.subscribe_client(address, "orders.alice.x")), errc{});
    EXPECT_EQ(verdict(b.engine.subscribe_client(address, "orders.alice.x")), errc::already_subscribed);
    EXPECT_EQ(verdict(b.engine.unsubscribe_client(address, "orders.alice.y")), errc::not_subscribed);
    EXPECT_EQ(verdict(b.engine.unsubscribe_client(address, "news.x")), errc::forbidden);
    EXPECT_EQ(r.count(event_kind::subscribed), 1u);
    // Refused before anything is sent.
    EXPECT_EQ(b.engine.subscribe_client(address, "orders..x").error, errc::invalid_argument);
    EXPECT_EQ(b.engine.subscribe_client("", "orders.x").error, errc::invalid_argument);
    EXPECT_EQ(r.engine.subscribe_client(address, "orders.x").error, errc::wrong_role);
}

TEST(ServerSubscription, AReconnectRestoresItFromItsPositionWithoutLossOrDuplicate) {
    two_clients net;
    net.p.auth.grant("token-1", R"({"subscribe":["plant.>"],"channels":["plant.m1"]})");
    peer& r = net.r;
    connect_keeping_records(net.p, r);
    for (int i = 1; i <= 3; ++i) net.publish("plant.m1", "live" + std::to_string(i));
    net.p.pump();

    r.drop_transport();
    for (int i = 4; i <= 6; ++i) net.publish("plant.m1", "missed" + std::to_string(i));
    net.p.pump();
    net.p.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);

    ASSERT_EQ(r.hellos.size(), 2u);
    EXPECT_TRUE(r.hellos[1].flags & frame_flags::resubscribes);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 1u);
    EXPECT_EQ(subs[0].name, "plant.m1");
    EXPECT_TRUE(subs[0].flags & frame_flags::since);
    EXPECT_EQ(subs[0].seq, 3u);
    EXPECT_EQ(r.received(frame_kind::subscribed).size(), 1u) << "the router did not subscribe it again";
    EXPECT_EQ(r.count(event_kind::subscribed), 1u);
    net.publish("plant.m1", "after7");
    net.p.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)),
              (std::vector<std::string>{"live1", "live2", "live3", "missed4", "missed5", "missed6", "after7"}));
    EXPECT_EQ(r.count(event_kind::gap), 0u);
    EXPECT_EQ(r.engine.stats().duplicates_dropped, 0u) << "nothing was sent twice";
}

TEST(ServerSubscription, ARefreshThatWithdrawsItSaysUnsubscribedForbidden) {
    two_clients net;
    net.p.auth.grant("token-1", R"({"subscribe":["orders.>"],"channels":["orders.alice.>"]})");
    net.p.auth.grant("token-2", R"({"subscribe":["news.>"]})");
    peer& r = net.r;
    connect_keeping_records(net.p, r);
    ASSERT_EQ(r.count(event_kind::subscribed), 1u);
    (void)r.engine.refresh_token("token-2", net.p.now);
    net.p.pump();
    const auto ended = r.of(event_kind::unsubscribed);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].code, code(errc::forbidden));
    EXPECT_EQ(ended[0].name, "orders.alice.>");
    net.publish("orders.alice.1", "never");
    net.p.pump();
    EXPECT_EQ(r.count(event_kind::message), 0u);
}

TEST(ServerSubscription, APatternTheClientHoldsAlreadyIsRefused) {
    with_backend net;
    peer& r = net.r;
    r.connect();
    const call_result own = r.engine.subscribe("orders.>");
    net.p.pump();
    const call_result sub = net.backend.engine.subscribe_client(std::string(r.engine.session_id()), "orders.>");
    net.p.pump();
    const auto errors = net.backend.errors(operation::subscribe_client);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, sub.id);
    EXPECT_EQ(errors[0].code, code(errc::already_subscribed));
    EXPECT_EQ(r.count(event_kind::subscribed), 0u);
    net.publish("orders.x", "m");
    net.p.pump();
    ASSERT_EQ(r.count(event_kind::message), 1u);
    EXPECT_EQ(r.of(event_kind::message)[0].subscription, own.id);
}

}  // namespace
}  // namespace hyperstreams::testing
