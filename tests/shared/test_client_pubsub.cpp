// The client engine's subscriptions and publishing: acks and failures,
// pattern delivery, per-channel sequence tracking (gaps, duplicates, epochs)
// and resuming after a reconnect.
#include <gtest/gtest.h>

#include <set>

#include "fake_router.hpp"

namespace hyperstreams::testing {
namespace {

std::vector<std::string> payloads(const std::vector<seen_event>& events) {
    std::vector<std::string> out;
    for (const seen_event& e : events) out.push_back(e.payload);
    return out;
}

// --- subscribe / unsubscribe ---------------------------------------------------------

TEST(ClientSubscribe, IsSentWithItsPolicyAndAcknowledged) {
    rig r;
    r.connect();
    const call_result sub = r.engine.subscribe("factory.*.temp", slow_policy::keep_latest);
    ASSERT_FALSE(sub.error);
    EXPECT_NE(sub.id, 0u);
    r.pump();
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
    rig r;
    r.connect();
    for (int i = 1; i <= 4; ++i) r.router.publish("plant.m1", "old" + std::to_string(i));
    const channel_position since{1, 2};
    ASSERT_FALSE(r.engine.subscribe("plant.m1", slow_policy::router_default, &since).error);
    r.pump();
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 1u);
    EXPECT_TRUE(subs[0].flags & frame_flags::since);
    EXPECT_EQ(subs[0].epoch, 1u);
    EXPECT_EQ(subs[0].seq, 2u);
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"old3", "old4"}));
    EXPECT_EQ(r.count(event_kind::gap), 0u);
}

TEST(ClientSubscribe, SinceIsRefusedForWildcards) {
    rig r;
    r.connect();
    const channel_position since{1, 2};
    EXPECT_EQ(r.engine.subscribe("plant.*", slow_policy::router_default, &since).error,
              errc::invalid_argument);
    EXPECT_EQ(r.engine.subscribe("plant.>", slow_policy::router_default, &since).error,
              errc::invalid_argument);
    r.pump();
    EXPECT_TRUE(r.sent(frame_kind::subscribe).empty());
}

TEST(ClientSubscribe, RefusalIsAnErrorAndTheSubscriptionIsGone) {
    rig r;
    r.connect();
    r.router.auto_ack = false;
    const call_result sub = r.engine.subscribe("secret.>");
    r.pump();
    r.deliver({error_frame(sub.id, errc::forbidden, "not for you")});
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, sub.id);
    EXPECT_EQ(errors[0].subscription, sub.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));
    EXPECT_EQ(errors[0].text, "not for you");
    // Not restored after a reconnect, and the pattern may be used again.
    r.drop_transport();
    r.advance(2000);
    EXPECT_EQ(r.sent(frame_kind::subscribe).size(), 1u);
    EXPECT_FALSE(r.engine.subscribe("secret.>").error);
}

TEST(ClientSubscribe, UnsubscribeIsAcknowledgedAndStopsDelivery) {
    rig r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    r.pump();
    r.router.publish("a.b", "one");
    r.pump();
    const call_result unsub = r.engine.unsubscribe(sub.id);
    ASSERT_FALSE(unsub.error);
    EXPECT_NE(unsub.id, sub.id);
    r.pump();
    const auto frames = r.sent(frame_kind::unsubscribe);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].name, "a.b");
    const auto acks = r.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks[1].op, operation::unsubscribe);
    EXPECT_EQ(acks[1].id, unsub.id);
    EXPECT_EQ(acks[1].subscription, sub.id);
    // A message already on its way is dropped, not delivered.
    r.deliver({message_frame("a.b", 1, 2, "late")});
    EXPECT_EQ(payloads(r.of(event_kind::message)), std::vector<std::string>{"one"});
    EXPECT_EQ(r.engine.stats().unmatched_messages, 1u);
}

TEST(ClientSubscribe, UnsubscribeWhileDisconnectedIsDoneLocally) {
    rig r;
    r.connect();
    const call_result keep = r.engine.subscribe("a.keep");
    const call_result drop = r.engine.subscribe("a.drop");
    r.pump();
    r.open = open_mode::manual;
    r.drop_transport();
    const call_result unsub = r.engine.unsubscribe(drop.id);
    ASSERT_FALSE(unsub.error);
    r.drain();
    ASSERT_EQ(r.count(event_kind::ack), 3u);
    EXPECT_EQ(r.of(event_kind::ack)[2].subscription, drop.id);
    r.router.forget_received();
    r.open = open_mode::accept;
    r.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    const auto frames = r.sent(frame_kind::subscribe);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, keep.id);
}

TEST(ClientSubscribe, BeforeStartIsSentAfterTheWelcome) {
    rig r;
    const call_result sub = r.engine.subscribe("a.>");
    ASSERT_FALSE(sub.error);
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    ASSERT_EQ(r.sent(frame_kind::subscribe).size(), 1u);
    EXPECT_EQ(r.of(event_kind::ack).at(0).id, sub.id);
}

TEST(ClientSubscribe, SamePatternTwiceAndRouterLimit) {
    rig r;
    r.router.max_subscriptions = 2;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    EXPECT_EQ(r.engine.subscribe("a.b").error, errc::already_subscribed);
    ASSERT_FALSE(r.engine.subscribe("a.c").error);
    EXPECT_EQ(r.engine.subscribe("a.d").error, errc::too_many_subscriptions);
}

TEST(ClientSubscribe, RestoredAcksAreNotEventsAgain) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    r.drop_transport();
    r.advance(2000);
    EXPECT_EQ(r.sent(frame_kind::subscribe).size(), 2u);
    EXPECT_EQ(r.count(event_kind::ack), 1u);
}

TEST(ClientSubscribe, FailedRestoreIsReported) {
    rig r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    r.pump();
    r.drop_transport();
    r.router.auto_ack = false;
    r.advance(2000);
    r.deliver({error_frame(sub.id, errc::forbidden, "token no longer allows it")});
    EXPECT_EQ(r.errors(operation::subscribe).at(0).id, sub.id);
    r.drop_transport();
    r.advance(2000);
    EXPECT_EQ(r.sent(frame_kind::subscribe).size(), 2u) << "not restored once refused";
}

TEST(ClientSubscribe, AConfirmedSubscriptionTheRouterEndsIsAnErrorAndGone) {
    rig r;
    r.connect();
    const call_result secret = r.engine.subscribe("secret.>");
    const call_result news = r.engine.subscribe("*.news");
    r.pump();
    ASSERT_EQ(r.count(event_kind::ack), 2u);
    r.router.publish("secret.news", "before");
    r.pump();

    // A token refresh withdrew the right: the router ends the subscription
    // with an error carrying the id its ack carried.
    r.deliver({error_frame(secret.id, errc::forbidden, "the refreshed token no longer allows this subscription")});
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, secret.id);
    EXPECT_EQ(errors[0].subscription, secret.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));

    // Later messages reach only the subscription still held.
    r.deliver({message_frame("secret.news", 1, 2, "after"), message_frame("secret.key", 1, 1, "never")});
    std::vector<std::string> to_secret, to_news;
    for (const seen_event& m : r.of(event_kind::message)) {
        if (m.subscription == secret.id) to_secret.push_back(m.payload);
        if (m.subscription == news.id) to_news.push_back(m.payload);
    }
    EXPECT_EQ(to_secret, std::vector<std::string>{"before"});
    EXPECT_EQ(to_news, (std::vector<std::string>{"before", "after"}));
    EXPECT_EQ(r.engine.stats().unmatched_messages, 1u);
    EXPECT_EQ(r.engine.unsubscribe(secret.id).error, errc::invalid_argument) << "already gone";

    // Not restored after a reconnect.
    r.drop_transport();
    r.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 3u);
    EXPECT_EQ(subs[2].name, "*.news");
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

// --- delivery ------------------------------------------------------------------------

TEST(ClientDelivery, EveryMatchingSubscriptionGetsTheMessageOnce) {
    rig r;
    r.connect();
    const call_result exact = r.engine.subscribe("plant.m1.temp");
    const call_result one = r.engine.subscribe("plant.*.temp");
    const call_result rest = r.engine.subscribe("plant.>");
    const call_result other = r.engine.subscribe("plant.*.rpm");
    ASSERT_FALSE(other.error);
    r.pump();
    r.router.publish("plant.m1.temp", "21.5");
    r.pump();
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
    r.router.publish("plant.line", "x");  // only ">"
    r.router.publish("plant", "y");       // ">" needs one more token: nothing
    r.pump();
    ASSERT_EQ(r.count(event_kind::message), 1u);
    EXPECT_EQ(r.of(event_kind::message)[0].subscription, rest.id);
}

TEST(ClientDelivery, SubscriptionAddedLaterJoinsAKnownChannel) {
    rig r;
    r.connect();
    const call_result wide = r.engine.subscribe("a.*");
    r.pump();
    r.router.publish("a.b");
    r.pump();
    const call_result narrow = r.engine.subscribe("a.b");
    r.pump();
    r.events.clear();
    r.router.publish("a.b");
    r.pump();
    const auto messages = r.of(event_kind::message);
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].subscription, wide.id);
    EXPECT_EQ(messages[1].subscription, narrow.id);
    EXPECT_EQ(r.count(event_kind::gap), 0u);
}

TEST(ClientDelivery, JsonAndReplayedFlagsReachTheHost) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    r.deliver({message_frame("a.b", 1, 1, "{}", frame_flags::json | frame_flags::replayed)});
    EXPECT_EQ(r.of(event_kind::message).at(0).flags, frame_flags::json | frame_flags::replayed);
}

// --- sequence tracking --------------------------------------------------------------------

TEST(ClientSequence, JumpIsAGapWithTheMissedCount) {
    rig r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    r.pump();
    r.deliver({message_frame("a.b", 1, 1), message_frame("a.b", 1, 2),
               message_frame("a.b", 1, 7, "seventh")});
    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 1u);
    EXPECT_EQ(gaps[0].subscription, sub.id);
    EXPECT_EQ(gaps[0].name, "a.b");
    EXPECT_EQ(gaps[0].epoch, 1u);
    EXPECT_EQ(gaps[0].seq, 3u);
    EXPECT_EQ(gaps[0].count, 4u);
    // The gap comes before the message that revealed it.
    ASSERT_GE(r.events.size(), 2u);
    EXPECT_EQ(r.events[r.events.size() - 2].kind, event_kind::gap);
    EXPECT_EQ(r.events.back().payload, "seventh");
}

TEST(ClientSequence, FirstMessageIsNoGap) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    r.deliver({message_frame("a.b", 3, 1000)});
    EXPECT_EQ(r.count(event_kind::gap), 0u);
    EXPECT_EQ(r.count(event_kind::message), 1u);
}

TEST(ClientSequence, SequencesAreTrackedPerChannel) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.*").error);
    r.pump();
    r.deliver({message_frame("a.x", 1, 1), message_frame("a.y", 1, 50), message_frame("a.x", 1, 2),
               message_frame("a.y", 1, 51)});
    EXPECT_EQ(r.count(event_kind::gap), 0u);
    EXPECT_EQ(r.count(event_kind::message), 4u);
}

TEST(ClientSequence, RouterGapFrameIsReportedAndSkipsTheRange) {
    rig r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    r.pump();
    r.deliver({message_frame("a.b", 1, 1), gap_frame("a.b", 1, 2, 10), message_frame("a.b", 1, 12)});
    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 1u) << "the message after the reported range is in order";
    EXPECT_EQ(gaps[0].subscription, sub.id);
    EXPECT_EQ(gaps[0].seq, 2u);
    EXPECT_EQ(gaps[0].count, 10u);
    EXPECT_EQ(r.count(event_kind::message), 2u);
}

TEST(ClientSequence, DuplicatesAreDropped) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    r.deliver({message_frame("a.b", 1, 1, "1"), message_frame("a.b", 1, 2, "2"),
               message_frame("a.b", 1, 2, "2 again"), message_frame("a.b", 1, 1, "1 again"),
               message_frame("a.b", 1, 3, "3")});
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(r.engine.stats().duplicates_dropped, 2u);
    EXPECT_EQ(r.count(event_kind::gap), 0u);
}

TEST(ClientSequence, NewEpochIsReportedAndRestartsTracking) {
    rig r;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    r.pump();
    r.deliver({message_frame("a.b", 1, 40), message_frame("a.b", 2, 1, "fresh"),
               message_frame("a.b", 2, 2)});
    const auto changes = r.of(event_kind::epoch_changed);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].subscription, sub.id);
    EXPECT_EQ(changes[0].epoch, 2u);
    EXPECT_EQ(changes[0].seq, 1u);
    EXPECT_EQ(r.count(event_kind::gap), 0u);
    EXPECT_EQ(r.count(event_kind::message), 3u);
}

// --- resume -----------------------------------------------------------------------------

TEST(ClientResume, ExactSubscriptionResumesFromItsLastPosition) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("plant.m1").error);
    r.pump();
    for (int i = 1; i <= 3; ++i) r.router.publish("plant.m1", "live" + std::to_string(i));
    r.pump();

    r.drop_transport();
    for (int i = 4; i <= 6; ++i) r.router.publish("plant.m1", "missed" + std::to_string(i));
    r.advance(2000);
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

// A `since` past the channel's end (same epoch) replays nothing, and the
// ack names where the channel really is: the engine takes that position, so
// the live messages that follow are delivered, not dropped as duplicates.
TEST(ClientResume, AnAckBehindTheHeldPositionIsTaken) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("plant.m1").error);
    r.pump();
    r.deliver({message_frame("plant.m1", 1, 10, "held")});
    r.router.auto_ack = false;
    r.drop_transport();
    r.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_EQ(subs[1].seq, 10u);
    r.deliver({ack_frame(subs[1].id, 1, 3), message_frame("plant.m1", 1, 4, "next")});
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"held", "next"}));
}

TEST(ClientResume, ReplayOverlappingWhatWasSeenIsDeduplicated) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    r.router.publish("a.b", "1");
    r.router.publish("a.b", "2");
    r.pump();
    r.drop_transport();
    r.router.publish("a.b", "3");
    // A router replaying from an older position than asked (at-least-once replay).
    r.router.on_hello = [](const hello_body&) {
        return std::vector<wire_frame>{welcome_frame("s-2"),
                                       message_frame("a.b", 1, 1, "1", frame_flags::replayed),
                                       message_frame("a.b", 1, 2, "2", frame_flags::replayed)};
    };
    r.advance(2000);
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(r.engine.stats().duplicates_dropped, 2u);
}

TEST(ClientResume, WildcardResubscribesLiveAndReportsTheExactGap) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("plant.*").error);
    r.pump();
    r.router.publish("plant.m1");
    r.router.publish("plant.m2");
    r.pump();
    r.drop_transport();
    r.router.publish("plant.m1");
    r.router.publish("plant.m1");
    r.router.publish("plant.m2");
    r.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_FALSE(subs[1].flags & frame_flags::since) << "one position cannot cover many channels";

    r.router.publish("plant.m1");
    r.router.publish("plant.m2");
    r.pump();
    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 2u);
    EXPECT_EQ(gaps[0].name, "plant.m1");
    EXPECT_EQ(gaps[0].count, 2u);
    EXPECT_EQ(gaps[1].name, "plant.m2");
    EXPECT_EQ(gaps[1].count, 1u);
}

TEST(ClientResume, ResumingSubscriptionsGoFirst) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.*").error);
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    ASSERT_FALSE(r.engine.subscribe("a.never").error);
    r.pump();
    r.router.publish("a.b");
    r.pump();
    r.drop_transport();
    r.router.forget_received();
    r.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 3u);
    EXPECT_EQ(subs[0].name, "a.b");
    EXPECT_TRUE(subs[0].flags & frame_flags::since);
    EXPECT_EQ(subs[1].name, "a.*");
    EXPECT_EQ(subs[2].name, "a.never");
    EXPECT_FALSE(subs[2].flags & frame_flags::since) << "never saw a message: nothing to resume";
}

TEST(ClientResume, HistoryGoneIsReportedAndTheSubscriptionGoesOnLive) {
    rig r;
    r.router.history_limit = 2;
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    r.pump();
    r.router.publish("a.b", "1");
    r.pump();
    r.drop_transport();
    for (int i = 2; i <= 6; ++i) r.router.publish("a.b", std::to_string(i));
    r.advance(2000);
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code, code(errc::history_gone));
    EXPECT_EQ(errors[0].subscription, sub.id);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 3u);
    EXPECT_FALSE(subs[2].flags & frame_flags::since);

    r.router.publish("a.b", "7");
    r.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"1", "7"}));
    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 1u);
    EXPECT_EQ(gaps[0].count, 5u);
}

TEST(ClientResume, RouterRestartedTheChannel) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    r.router.publish("a.b");
    r.pump();
    r.drop_transport();
    r.router.restart_channel("a.b");
    r.advance(2000);
    EXPECT_EQ(r.errors(operation::subscribe).at(0).code, code(errc::history_gone));
    r.router.publish("a.b");
    r.pump();
    EXPECT_EQ(r.count(event_kind::epoch_changed), 1u);
}

// --- publish ---------------------------------------------------------------------------

TEST(ClientPublish, WithoutAckHasNoId) {
    rig r;
    r.connect();
    const call_result p = r.engine.publish("a.b", bytes("x"), false, frame_flags::json);
    ASSERT_FALSE(p.error);
    EXPECT_EQ(p.id, 0u);
    r.pump();
    const auto frames = r.sent(frame_kind::publish);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, 0u);
    EXPECT_EQ(frames[0].flags, frame_flags::json);
    EXPECT_EQ(frames[0].payload, "x");
    EXPECT_EQ(r.count(event_kind::ack), 0u);
}

TEST(ClientPublish, AckCarriesThePosition) {
    rig r;
    r.connect();
    r.router.publish("a.b");
    r.router.publish("a.b");
    const call_result p = r.engine.publish("a.b", bytes("x"), true);
    ASSERT_NE(p.id, 0u);
    r.pump();
    EXPECT_TRUE(r.sent(frame_kind::publish).at(0).flags & frame_flags::ack_requested);
    const auto acks = r.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].op, operation::publish);
    EXPECT_EQ(acks[0].id, p.id);
    EXPECT_EQ(acks[0].epoch, 1u);
    EXPECT_EQ(acks[0].seq, 3u);
}

TEST(ClientPublish, RefusalNamesThePublish) {
    rig r;
    r.connect();
    r.router.silent = true;
    const call_result p = r.engine.publish("a.b", bytes("x"), true);
    r.pump();
    r.router.silent = false;
    r.deliver({error_frame(p.id, errc::forbidden, "read only")});
    const auto errors = r.errors(operation::publish);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, p.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));
}

TEST(ClientPublish, OwnMessagesComeBackWhenSubscribed) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("chat.>").error);
    ASSERT_FALSE(r.engine.publish("chat.room1", bytes("hello")).error);
    r.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)), std::vector<std::string>{"hello"});
}

TEST(ClientPublish, IdsAreUniqueAndNonZero) {
    rig r;
    r.connect();
    r.router.silent = true;
    std::set<std::uint32_t> ids;
    const call_result sub = r.engine.subscribe("a.b");
    ids.insert(sub.id);
    for (int i = 0; i < 1000; ++i) {
        const call_result p = r.engine.publish("a.b", bytes("x"), true);
        ASSERT_NE(p.id, 0u);
        ids.insert(p.id);
    }
    EXPECT_EQ(ids.size(), 1001u);
}

}  // namespace
}  // namespace hyperstreams::testing
