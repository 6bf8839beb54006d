// The client engine's subscriptions and publishing against the fake router:
// sequences the real router core never sends one connection (jumps without a
// gap frame, duplicates, a new epoch mid-stream, history_gone, a replay from
// before the position asked, a message after the error that ended its
// subscription) and what the engine decides alone (refused arguments,
// unsubscribing offline, ids). Subscriptions and publishing as the real
// router core plays them: tests/native/test_paired_pubsub.cpp.
#include <gtest/gtest.h>

#include <set>

#include "fake_router.hpp"

namespace hyperstreams::testing {
namespace {

// Connected, subscribed to "a.b", its message "1" delivered, then the
// transport dropped: the subscription resumes after 1 on the next
// connection.
call_result subscribed_then_dropped(rig& r) {
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    r.pump();
    r.router.publish("a.b", "1");
    r.pump();
    r.drop_transport();
    return sub;
}

// --- subscribe / unsubscribe ---------------------------------------------------------

TEST(ClientSubscribe, SinceIsRefusedForWildcards) {
    rig r;
    r.connect();
    const channel_position since{1, 2};
    EXPECT_EQ(r.engine.subscribe("plant.*", {.since = since}).error,
              errc::invalid_argument);
    EXPECT_EQ(r.engine.subscribe("plant.>", {.since = since}).error,
              errc::invalid_argument);
    r.pump();
    EXPECT_TRUE(r.sent(frame_kind::subscribe).empty());
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
    EXPECT_TRUE(errors[0].ends_subscription) << "the host drops its entry on the engine's word";
    EXPECT_TRUE(errors[0].ends_operation);
    const auto acks = r.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_TRUE(acks[0].ends_operation && acks[1].ends_operation);
    EXPECT_FALSE(acks[0].ends_subscription);

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

TEST(ClientResume, HistoryGoneIsReportedAndTheSubscriptionGoesOnLive) {
    rig r;
    r.router.history_limit = 2;
    const call_result sub = subscribed_then_dropped(r);
    for (int i = 2; i <= 6; ++i) r.router.publish("a.b", std::to_string(i));
    r.advance(2000);
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code, code(errc::history_gone));
    EXPECT_EQ(errors[0].subscription, sub.id);
    EXPECT_FALSE(errors[0].ends_subscription) << "the engine goes on live: the host keeps its entry";
    EXPECT_FALSE(errors[0].ends_operation);
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

// A resume a router of a cluster cannot serve while its Redis fails over
// (cluster_unavailable) does not cost the subscription: the error ends
// nothing, and the engine sends the resume again after a pause that grows
// while the router refuses, until it is served: then every message, once,
// with no gap.
TEST(ClientResume, AResumeRefusedForNowIsSentAgainUntilServed) {
    rig r;
    const call_result sub = subscribed_then_dropped(r);
    r.router.publish("a.b", "2");
    r.router.unavailable_resumes = 3;
    // Reconnected, the resume refused three times; the pauses (within 250,
    // 500 and 1000 ms with the default backoff_base_ms) all pass in 3 s.
    r.advance(3000);
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 3u);
    for (const auto& e : errors) {
        EXPECT_EQ(e.code, code(errc::cluster_unavailable));
        EXPECT_EQ(e.subscription, sub.id);
        EXPECT_FALSE(e.ends_subscription) << "the host keeps its entry";
        EXPECT_FALSE(e.ends_operation);
    }
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 5u) << "the first, and four resumes";
    for (std::size_t i = 1; i < subs.size(); ++i) {
        EXPECT_NE(subs[i].flags & frame_flags::since, 0) << "each again from the position held";
        EXPECT_EQ(subs[i].seq, 1u);
        EXPECT_EQ(subs[i].id, sub.id);
    }
    EXPECT_EQ(r.engine.subscribe("a.b").error, errc::already_subscribed) << "still held";
    r.router.publish("a.b", "3");
    r.pump();
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(r.count(event_kind::gap), 0u);
    EXPECT_EQ(r.of(event_kind::ack).size(), 1u) << "only the first ack of a subscription is an event";
}

// The pause before a refused resume goes again grows while the router keeps
// refusing it, even when other subscriptions are served meanwhile: their
// acks say nothing of the refused one's channel (on another Redis master,
// say). With the default backoff_base_ms of 250, the pauses after the
// first four refusals are within 125-250, 250-500, 500-1000 and
// 1000-2000 ms; restarted by each other ack, all four would be within
// 125-250.
TEST(ClientResume, TheResumesPauseGrowsThoughOtherSubscriptionsAreServed) {
    rig r;
    const call_result sub = subscribed_then_dropped(r);
    r.router.unavailable_resumes = 5;
    r.pump();
    std::vector<time_ms> refusals;
    for (int i = 0; i < 500 && refusals.size() < 5; ++i) {
        const std::size_t before = r.errors(operation::subscribe).size();
        r.advance(10);
        const auto errors = r.errors(operation::subscribe);
        if (errors.size() == before) continue;
        refusals.push_back(errors.back().at);
        // Another subscription, served at once, after each refusal.
        ASSERT_FALSE(r.engine.subscribe("other." + std::to_string(refusals.size())).error);
        r.pump();
    }
    ASSERT_EQ(refusals.size(), 5u);
    EXPECT_EQ(r.of(event_kind::ack).size(), 6u) << "a.b's first, and the other subscriptions'";
    EXPECT_GE(refusals[2] - refusals[1], 250);
    EXPECT_GE(refusals[3] - refusals[2], 500);
    EXPECT_GE(refusals[4] - refusals[3], 1000);

    r.advance(4000);
    EXPECT_EQ(r.errors(operation::subscribe).size(), 5u) << "served the sixth time";
    EXPECT_EQ(r.sent(frame_kind::subscribe).back().id, sub.id);
}

// A subscribe the owner just made, refused with cluster_unavailable, is
// answered as any refusal: the error ends it.
TEST(ClientSubscribe, AFirstSubscribeRefusedWithClusterUnavailableEnds) {
    rig r;
    r.connect();
    r.router.unavailable_resumes = 1;
    const call_result sub = r.engine.subscribe("a.b", {.since = channel_position{1, 1}});
    r.pump();
    const auto errors = r.errors(operation::subscribe);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code, code(errc::cluster_unavailable));
    EXPECT_TRUE(errors[0].ends_subscription);
    EXPECT_TRUE(errors[0].ends_operation);
    r.advance(5000);
    EXPECT_EQ(r.sent(frame_kind::subscribe).size(), 1u) << "not sent again";
    EXPECT_FALSE(r.engine.subscribe("a.b").error) << "no longer held";
    (void)sub;
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

// --- latest value ----------------------------------------------------------------------

// A wildcard subscription has no one position to resume from: each subscribe
// asks for the latest values again, and the engine's per-channel positions
// turn them into what was missed.
TEST(ClientLatest, AWildcardSubscriptionAsksForTheLatestValuesOnEverySubscribe) {
    rig r;
    r.connect();
    r.router.publish("a.b", "1");
    const call_result sub = r.engine.subscribe("a.*", {.latest = true});
    ASSERT_FALSE(sub.error);
    r.pump();
    r.router.publish("a.b", "2");
    r.pump();
    r.drop_transport();
    r.router.publish("a.b", "3");
    r.router.publish("a.b", "4");
    r.router.publish("a.c", "x");
    r.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    for (const auto& s : subs) {
        EXPECT_NE(s.flags & frame_flags::latest, 0);
        EXPECT_EQ(s.flags & frame_flags::since, 0);
    }
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"1", "2", "4", "x"}));
    const auto gaps = r.of(event_kind::gap);
    ASSERT_EQ(gaps.size(), 1u) << "a.b's 3 is known missed";
    EXPECT_EQ(gaps[0].seq, 3u);
    EXPECT_EQ(gaps[0].count, 1u);
    EXPECT_NE(r.of(event_kind::message)[0].flags & frame_flags::replayed, 0);
}

TEST(ClientLatest, AChannelSeenBeforeResumesWithSinceInsteadOfLatest) {
    rig r;
    r.connect();
    r.router.publish("a.b", "1");
    ASSERT_FALSE(r.engine.subscribe("a.b", {.latest = true}).error);
    r.pump();
    r.drop_transport();
    r.router.publish("a.b", "2");
    r.advance(2000);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_NE(subs[0].flags & frame_flags::latest, 0);
    EXPECT_NE(subs[1].flags & frame_flags::since, 0);
    EXPECT_EQ(subs[1].flags & frame_flags::latest, 0) << "the history holds what was missed";
    EXPECT_EQ(payloads(r.of(event_kind::message)), (std::vector<std::string>{"1", "2"}));
}

// --- publish ---------------------------------------------------------------------------

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

TEST(ClientPublish, OptionsGoBeforeTheMessageUnderTheirFlags) {
    rig r;
    r.connect();
    r.router.silent = true;
    publish_options o;
    o.key = "order-17";
    o.ttl_s = 60;
    ASSERT_FALSE(r.engine.publish("a.b", bytes("x"), true, frame_flags::json, o).error);
    ASSERT_FALSE(r.engine.publish("a.b", bytes("plain")).error);
    r.pump();
    const auto frames = r.sent(frame_kind::publish);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].flags, frame_flags::json | frame_flags::ack_requested | frame_flags::idempotency_key |
                                   frame_flags::ttl);
    EXPECT_EQ(frames[0].payload, std::string("\x08order-17\x3c\0\0\0x", 14));
    EXPECT_EQ(frames[1].flags, 0);
    EXPECT_EQ(frames[1].payload, "plain");
}

TEST(ClientPublish, BadOptionsAreRefusedLocally) {
    rig r;
    r.connect();
    r.router.silent = true;
    publish_options zero_ttl;
    zero_ttl.ttl_s = 0;
    EXPECT_EQ(r.engine.publish("a.b", bytes("x"), true, 0, zero_ttl).error, errc::invalid_argument);
    publish_options spaced;
    spaced.key = "a key";
    EXPECT_EQ(r.engine.publish("a.b", bytes("x"), true, 0, spaced).error, errc::invalid_argument);
    const std::string long_key(256, 'k');
    publish_options too_long;
    too_long.key = long_key;
    EXPECT_EQ(r.engine.publish("a.b", bytes("x"), true, 0, too_long).error, errc::invalid_argument);
    r.pump();
    EXPECT_TRUE(r.sent(frame_kind::publish).empty());
}

// --- presence -------------------------------------------------------------------------

std::string member_body(std::string_view address, std::string_view subject, std::string_view name) {
    std::vector<std::uint8_t> body;
    EXPECT_FALSE(encode_body(presence_member{address, subject, name}, body));
    return text(body);
}

TEST(ClientPresence, TheListIsAnEventThatEndsTheCall) {
    rig r;
    r.connect();
    const call_result call = r.engine.presence("plant.line1");
    ASSERT_FALSE(call.error);
    r.pump();
    const auto asked = r.sent(frame_kind::presence);
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_EQ(asked[0].id, call.id);
    EXPECT_EQ(asked[0].name, "plant.line1");

    presence_list_body list;
    list.count = 1;
    list.members = {{"s-7", "alice", "dashboard"}};
    std::vector<std::uint8_t> body;
    ASSERT_FALSE(encode_body(list, body));
    r.deliver({simple_frame(frame_kind::presence_list, call.id, text(body))});
    const auto events = r.of(event_kind::presence);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].id, call.id);
    EXPECT_TRUE(events[0].ends_operation);
    EXPECT_EQ(events[0].presence_count, 1u);
    EXPECT_EQ(events[0].members, (std::vector<std::string>{"s-7 alice dashboard"})) << "a body the engine checked: it decodes";
}

// A body the engine cannot decode is the router's fault, as for any body.
TEST(ClientPresence, AListOrAMemberThatDoesNotDecodeIsMalformedBody) {
    rig r;
    r.connect();
    const call_result call = r.engine.presence("plant.line1");
    r.pump();
    r.deliver({simple_frame(frame_kind::presence_list, call.id, "\x01\x00\x00\x00\x05\x00")});
    ASSERT_EQ(r.errors(operation::connection).size(), 1u);
    EXPECT_EQ(r.errors(operation::connection)[0].code, code(errc::malformed_body));
    EXPECT_TRUE(r.of(event_kind::presence).empty());
    EXPECT_EQ(r.errors(operation::presence).at(0).code, code(errc::connection_lost)) << "the call went with the connection";

    rig j;
    j.connect();
    ASSERT_FALSE(j.engine.subscribe("plant.line1", {.join_leave = true}).error);
    j.pump();
    j.deliver({simple_frame(frame_kind::join, 0, "\x09\x00s-9", "plant.line1")});
    ASSERT_EQ(j.errors(operation::connection).size(), 1u);
    EXPECT_EQ(j.errors(operation::connection)[0].code, code(errc::malformed_body));
    EXPECT_TRUE(j.of(event_kind::join).empty());
}

TEST(ClientPresence, AnErrorEndsTheCallByName) {
    rig r;
    r.connect();
    const call_result call = r.engine.presence("plant.line1");
    r.pump();
    r.deliver({error_frame(call.id, errc::not_enabled, "the namespace 'chat.*' has no presence")});
    const auto errors = r.errors(operation::presence);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code, code(errc::not_enabled));
    EXPECT_TRUE(errors[0].ends_operation);
}

TEST(ClientPresence, PatternsAreRefused) {
    rig r;
    r.connect();
    EXPECT_EQ(r.engine.presence("plant.*").error, errc::invalid_argument);
    EXPECT_EQ(r.engine.presence("plant.>").error, errc::invalid_argument);
    EXPECT_EQ(r.engine.subscribe("plant.*", {.join_leave = true}).error,
              errc::invalid_argument);
    r.pump();
    EXPECT_TRUE(r.sent(frame_kind::presence).empty());
    EXPECT_TRUE(r.sent(frame_kind::subscribe).empty());
}

TEST(ClientPresence, JoinsAndLeavesGoToTheSubscriptionThatAskedAndItsFlagIsSentAgain) {
    rig r;
    r.connect();
    const call_result plain = r.engine.subscribe("plant.*");
    const call_result asked = r.engine.subscribe("plant.line1", {.join_leave = true});
    r.pump();
    auto subscribes = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subscribes.size(), 2u);
    EXPECT_EQ(subscribes[0].flags & frame_flags::join_leave, 0);
    EXPECT_EQ(subscribes[1].flags & frame_flags::join_leave, frame_flags::join_leave);

    r.deliver({simple_frame(frame_kind::join, 0, member_body("s-9", "bob", "hmi"), "plant.line1"),
               simple_frame(frame_kind::leave, 0, member_body("s-9", "bob", "hmi"), "plant.line1"),
               simple_frame(frame_kind::join, 0, member_body("s-9", "bob", "hmi"), "plant.line2")});
    const auto joins = r.of(event_kind::join);
    const auto leaves = r.of(event_kind::leave);
    ASSERT_EQ(joins.size(), 1u) << "plant.line2 has no subscription that asked";
    ASSERT_EQ(leaves.size(), 1u);
    EXPECT_EQ(joins[0].subscription, asked.id);
    EXPECT_EQ(joins[0].name, "plant.line1");
    EXPECT_EQ(joins[0].members, (std::vector<std::string>{"s-9 bob hmi"}));
    EXPECT_EQ(joins[0].presence_count, 1u);
    EXPECT_EQ(leaves[0].subscription, asked.id);
    (void)plain;

    // After a reconnect the subscription asks again.
    r.router.forget_received();
    r.drop_transport();
    r.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    subscribes = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subscribes.size(), 2u);
    for (const auto& f : subscribes)
        EXPECT_EQ(f.flags & frame_flags::join_leave, f.id == asked.id ? frame_flags::join_leave : 0) << f.name;
}

}  // namespace
}  // namespace hyperstreams::testing
