// channel_store: sequence numbers, the bounded history and resume plans.
#include <gtest/gtest.h>

#include "batch_support.hpp"
#include "channel_store.hpp"

namespace hyperstreams::router {
namespace {

constexpr std::uint32_t epoch = 77;

// The message frame that carries a publication: what history counts it as.
shared_bytes message_of(std::string_view channel, std::uint64_t seq, std::size_t payload = 10) {
    return message_frame(channel, epoch, seq, payload);
}

void publish(channel_store& s, std::string_view channel, int n, std::size_t payload = 10) {
    for (int i = 0; i < n; ++i) {
        channel_state& c = s.get(channel);
        publication p;
        p.epoch = c.epoch;
        p.seq = s.next_seq(c);
        p.hold = frame_bytes::copy(std::vector<std::uint8_t>(payload, 'x'));
        p.payload = *p.hold;
        s.remember(c, std::move(p));
    }
}

std::vector<std::uint64_t> seqs(const history& p) {
    std::vector<std::uint64_t> out;
    for (const publication& r : p.replay) {
        EXPECT_NE(r.hold, nullptr) << "a replayed publication keeps its payload";
        out.push_back(r.seq);
    }
    return out;
}

TEST(ChannelStore, SequenceNumbersArePerChannelFromOne) {
    channel_store s(epoch, {});
    channel_state& a = s.get("a");
    EXPECT_EQ(s.next_seq(a), 1u);
    EXPECT_EQ(s.next_seq(a), 2u);
    channel_state& b = s.get("b");
    EXPECT_EQ(s.next_seq(b), 1u);
    EXPECT_EQ(a.epoch, epoch);
}

TEST(ChannelStore, HistoryIsBoundedByCount) {
    channel_store s(epoch, {3, 1u << 20, 0, 1000});
    publish(s, "a", 10);
    const channel_state* c = s.find("a");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->history.size(), 3u);
    EXPECT_EQ(c->history.front().seq, 8u);
    EXPECT_EQ(c->last_seq, 10u);
}

TEST(ChannelStore, HistoryIsBoundedByBytes) {
    const std::size_t one = message_of("a", 1, 100)->size();
    channel_store s(epoch, {1000, 4 * one});
    publish(s, "a", 10, 100);
    const channel_state* c = s.find("a");
    EXPECT_EQ(c->history.size(), 4u);
    EXPECT_LE(c->history_bytes, 4 * one);
}

TEST(ChannelStore, NoHistoryWhenDisabled) {
    channel_store s(epoch, {0, 1u << 20});
    publish(s, "a", 5);
    EXPECT_TRUE(s.find("a")->history.empty());
    EXPECT_EQ(s.find("a")->last_seq, 5u);
}

TEST(ChannelStore, ResumeReplaysWhatWasMissed) {
    channel_store s(epoch, {16, 1u << 20});
    publish(s, "a", 10);
    const history p = s.plan_resume("a", epoch, 6);
    EXPECT_FALSE(p.gap);
    EXPECT_EQ(seqs(p), (std::vector<std::uint64_t>{7, 8, 9, 10}));
}

TEST(ChannelStore, ResumeAtTheEndReplaysNothing) {
    channel_store s(epoch, {16, 1u << 20});
    publish(s, "a", 10);
    const history p = s.plan_resume("a", epoch, 10);
    EXPECT_FALSE(p.gap);
    EXPECT_TRUE(p.replay.empty());
}

TEST(ChannelStore, ResumeBeyondHistoryGivesAGapThenTheRest) {
    channel_store s(epoch, {4, 1u << 20});
    publish(s, "a", 10);  // history: 7..10
    const history p = s.plan_resume("a", epoch, 2);
    ASSERT_TRUE(p.gap);
    EXPECT_EQ(p.gap_epoch, epoch);
    EXPECT_EQ(p.gap_seq, 3u);
    EXPECT_EQ(p.gap_count, 4u) << "3, 4, 5 and 6 are gone";
    EXPECT_EQ(seqs(p), (std::vector<std::uint64_t>{7, 8, 9, 10}));
}

TEST(ChannelStore, ResumeWithoutHistoryIsAGapOfEverythingMissed) {
    channel_store s(epoch, {0, 0});
    publish(s, "a", 10);
    const history p = s.plan_resume("a", epoch, 4);
    ASSERT_TRUE(p.gap);
    EXPECT_EQ(p.gap_seq, 5u);
    EXPECT_EQ(p.gap_count, 6u);
    EXPECT_TRUE(p.replay.empty());
}

TEST(ChannelStore, ResumeFromAnotherEpochReplaysAllHistoryWithoutGap) {
    channel_store s(epoch, {4, 1u << 20});
    publish(s, "a", 10);
    const history p = s.plan_resume("a", epoch + 1, 3);
    EXPECT_FALSE(p.gap) << "the new epoch on the messages tells the client";
    EXPECT_EQ(seqs(p), (std::vector<std::uint64_t>{7, 8, 9, 10}));
}

TEST(ChannelStore, HistoryOverAllChannelsIsBoundedLeastRecentFirst) {
    const std::size_t one = message_of("c0", 1, 100)->size();
    channel_store s(epoch, {100, 1u << 20, 10 * one, 1000});
    publish(s, "c0", 4, 100);
    publish(s, "c1", 4, 100);
    publish(s, "c2", 4, 100);  // 12 messages > 10: c0, the least recent, loses its history
    EXPECT_LE(s.history_bytes(), 10 * one);
    EXPECT_TRUE(s.find("c0")->history.empty());
    EXPECT_EQ(s.find("c1")->history.size(), 4u);
    EXPECT_EQ(s.find("c2")->history.size(), 4u);
    EXPECT_EQ(s.find("c0")->last_seq, 4u) << "the sequence survives, only the history goes";
}

TEST(ChannelStore, TheNumberOfChannelsIsBoundedAndAForgottenChannelGetsANewEpoch) {
    channel_store s(epoch, {16, 1u << 20, 0, 2});
    publish(s, "a", 3);
    publish(s, "b", 1);
    publish(s, "a", 1);  // "a" is now the most recent
    publish(s, "c", 1);  // forgets "b"
    EXPECT_EQ(s.size(), 2u);
    EXPECT_EQ(s.find("b"), nullptr);
    EXPECT_EQ(s.forgotten(), 1u);
    EXPECT_EQ(s.find("a")->last_seq, 4u);
    EXPECT_EQ(s.find("a")->epoch, epoch) << "a channel kept keeps its epoch";
    EXPECT_NE(s.find("c")->epoch, epoch) << "created after a channel was forgotten";

    publish(s, "b", 1);  // "b" again: forgets "a"
    EXPECT_EQ(s.find("b")->last_seq, 1u);
    EXPECT_NE(s.find("b")->epoch, epoch) << "seq 1 again, so never the epoch of the old seq 1";
    const history p = s.plan_resume("b", epoch, 1);
    EXPECT_FALSE(p.gap);
    EXPECT_EQ(seqs(p), (std::vector<std::uint64_t>{1})) << "an old position: replay all there is";
}

TEST(ChannelStore, ResumeOnAnUnknownChannelIsEmpty) {
    channel_store s(epoch, {4, 1u << 20});
    const history p = s.plan_resume("nothing.here", epoch, 0);
    EXPECT_FALSE(p.gap);
    EXPECT_TRUE(p.replay.empty());
}

// Publications whose expiry has come are left out of a resume, as evicted
// ones are: the plan's gap covers those before the first one alive, and
// the replay skips the others (pub/sub names each run with a gap).
TEST(ChannelStore, AResumeLeavesOutWhatHasExpired) {
    channel_store s(epoch, {16, 1u << 20, 0, 1000});
    const time_point t0{};
    for (int i = 1; i <= 5; ++i) {
        channel_state& c = s.get("a");
        publication p;
        p.epoch = c.epoch;
        p.seq = s.next_seq(c);
        p.hold = frame_bytes::copy(std::vector<std::uint8_t>(4, 'x'));
        p.payload = *p.hold;
        if (i == 1 || i == 2 || i == 4) p.expires = t0 + std::chrono::seconds(10);
        s.remember(c, std::move(p));
    }
    EXPECT_EQ(seqs(s.plan_resume("a", epoch, 0, t0 + std::chrono::seconds(9))),
              (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
    const history later = s.plan_resume("a", epoch, 0, t0 + std::chrono::seconds(10));
    EXPECT_EQ(seqs(later), (std::vector<std::uint64_t>{3, 5}));
    EXPECT_TRUE(later.gap);
    EXPECT_EQ(later.gap_seq, 1u);
    EXPECT_EQ(later.gap_count, 2u);
    EXPECT_EQ(later.now.seq, 5u);
}

}  // namespace
}  // namespace hyperstreams::router
