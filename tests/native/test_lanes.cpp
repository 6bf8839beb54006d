// Lanes: the routing core's frames reach each I/O thread's connections
// through that thread's lane, in the core's order, one op per run and lane,
// and an overflow found by the lane comes back to the core as a close.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "batch_support.hpp"
#include "connection_table.hpp"

namespace hyperstreams::router {
namespace {

// A lane whose thread is the test: posts are kept, and run when it says.
class fake_lane final : public lane {
public:
    bool here() const noexcept override { return false; }
    std::vector<std::function<void()>> posted;

protected:
    void post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
};

shared_bytes message(std::string_view channel, std::uint64_t seq, std::size_t payload = 100) {
    return message_frame(channel, 1, seq, payload);
}

// Every frame queued in `o`, in order; `closed` says whether it ended with the close.
std::vector<frame> taken(outbox& o, bool* closed = nullptr) {
    std::vector<frame> out;
    outbox_batch b;
    for (;;) {
        o.take(b);
        const auto frames = frames_of(b);
        out.insert(out.end(), frames.begin(), frames.end());
        if (closed != nullptr && b.close) *closed = true;
        if (b.spans.empty()) return out;
    }
}

class Lanes : public ::testing::Test {
protected:
    connection& open(const std::shared_ptr<lane>& l, outbox_limits limits = {}) {
        connection_init init;
        init.id = next_connection_id();
        init.out = std::make_shared<outbox>(limits);
        init.served_by = l;
        connection& c = table.add(std::move(init), time_point{});
        c.state = connection_state::open;
        return c;
    }

    // What core_runner does once the core's mutex is released, for lanes
    // not on the calling thread.
    std::vector<std::shared_ptr<lane>> schedule_due() {
        std::vector<std::shared_ptr<lane>> due;
        table.take_lanes(due);
        for (const auto& l : due) l->schedule([this, raw = l.get()] { raw->drain(stats, outcome); });
        return due;
    }

    // Messages 1..4 of "news" as one run to a subscriber on lane a and one on
    // lane b, with these policies, both lanes drained: the frames sent, and
    // each subscriber's batch.
    struct two_lane_run {
        std::vector<shared_bytes> sent;
        outbox_batch on_a;
        outbox_batch on_b;
    };
    two_lane_run run_of_four(slow_policy on_a, slow_policy on_b) {
        connection& first = open(a);
        connection& second = open(b);
        const std::vector<delivery_target> targets{{&first, on_a}, {&second, on_b}};
        two_lane_run r;
        for (std::uint64_t seq = 1; seq <= 4; ++seq) {
            r.sent.push_back(message("news", seq));
            table.add_to_run(targets, 1, r.sent.back());
        }
        table.flush_run();
        schedule_due();
        a->posted.front()();
        b->posted.front()();
        first.out->take(r.on_a);
        second.out->take(r.on_b);
        return r;
    }

    metrics stats;
    connection_table table{stats};
    lane_outcome outcome;
    std::shared_ptr<fake_lane> a = std::make_shared<fake_lane>();
    std::shared_ptr<fake_lane> b = std::make_shared<fake_lane>();
};

TEST_F(Lanes, ABatchToManySubscribersOfAnotherLaneCrossesOnceAndKeepsEachConnectionsOrder) {
    std::vector<delivery_target> targets;
    std::vector<connection*> subs;
    for (int i = 0; i < 100; ++i) {
        connection& c = open(b);
        subs.push_back(&c);
        targets.emplace_back(&c, slow_policy::drop_oldest);
    }
    connection& near = open(a);
    targets.emplace_back(&near, slow_policy::drop_oldest);

    for (std::uint64_t seq = 1; seq <= 3; ++seq) table.add_to_run(targets, 1, message("news", seq));
    table.send_ack(*subs.front(), 7);  // after the run, on the subscriber's own lane
    table.add_to_run(targets, 1, message("news", 4));
    table.flush_run();

    for (connection* c : subs) EXPECT_EQ(c->out->queued_bytes(), 0u) << "the core pushes into no outbox";
    const auto due = schedule_due();
    ASSERT_EQ(due.size(), 2u) << "each lane named once for the whole batch";
    EXPECT_EQ(b->posts(), 1u);
    EXPECT_EQ(a->posts(), 1u);
    ASSERT_EQ(b->posted.size(), 1u);

    b->posted.front()();
    EXPECT_EQ(outcome.wakes.size(), subs.size()) << "one wake-up per idle outbox";
    EXPECT_TRUE(outcome.overflowed.empty());
    const auto first = taken(*subs.front()->out);
    ASSERT_EQ(first.size(), 5u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(first[i].kind, frame_kind::message);
        EXPECT_EQ(first[i].seq, i + 1);
    }
    EXPECT_EQ(first[3].kind, frame_kind::ack) << "the ack after the run it followed";
    EXPECT_EQ(first[3].id, 7u);
    EXPECT_EQ(first[4].seq, 4u);
    for (std::size_t i = 1; i < subs.size(); ++i) EXPECT_EQ(taken(*subs[i]->out).size(), 4u);
    EXPECT_EQ(stats.delivered.load(), 4u * targets.size());
}

TEST_F(Lanes, ALaneAlreadyDueIsNotPostedAgain) {
    connection& c = open(b);
    table.send_ack(c, 1);
    ASSERT_EQ(schedule_due().size(), 1u);
    table.send_ack(c, 2);
    EXPECT_TRUE(schedule_due().empty()) << "its drain, still to run, takes this one too";
    EXPECT_EQ(b->posts(), 1u);
    b->posted.front()();
    const auto frames = taken(*c.out);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].id, 1u);
    EXPECT_EQ(frames[1].id, 2u);

    table.send_ack(c, 3);
    EXPECT_EQ(schedule_due().size(), 1u) << "drained: the next frame posts again";
}

TEST_F(Lanes, AnOverflowFoundByTheLaneClosesTheConnectionAndNothingFollowsItsGoodbye) {
    outbox_limits small;
    small.max_bytes = 1000;
    small.hard_max_bytes = 2000;
    connection& slow = open(b, small);
    std::vector<delivery_target> targets{{&slow, slow_policy::disconnect}};
    for (std::uint64_t seq = 1; seq <= 20; ++seq) table.add_to_run(targets, 1, message("news", seq));
    table.flush_run();
    table.send_ack(slow, 9);  // queued after the run that overflows
    schedule_due();
    b->posted.front()();

    ASSERT_EQ(outcome.overflowed.size(), 1u);
    EXPECT_EQ(outcome.overflowed.front(), slow.id);
    bool closed = false;
    const auto frames = taken(*slow.out, &closed);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().kind, frame_kind::goodbye);
    EXPECT_EQ(static_cast<errc>(frames.back().code), errc::slow_consumer);
    for (const frame& f : frames) EXPECT_NE(f.kind, frame_kind::ack) << "nothing after the overflow is sent";
    EXPECT_TRUE(closed);

    // Back in the core: the connection is closed as a slow consumer.
    EXPECT_EQ(slow.state, connection_state::open);
    table.overflowed(slow.id);
    EXPECT_EQ(slow.state, connection_state::closing);
    EXPECT_EQ(stats.of(transport_kind::websocket).slow_consumer_closes.load(), 1u);
    connection_id doomed = 0;
    ASSERT_TRUE(table.take_doomed(doomed));
    EXPECT_EQ(doomed, slow.id);
    table.overflowed(slow.id);
    EXPECT_EQ(stats.of(transport_kind::websocket).slow_consumer_closes.load(), 1u) << "closed once";
}

TEST_F(Lanes, ARouteIsSlicedByLaneUntilItsGenerationChanges) {
    connection& first = open(b);
    connection& later = open(b);
    std::vector<delivery_target> targets{{&first, slow_policy::drop_oldest}};
    table.add_to_run(targets, 1, message("news", 1));
    table.flush_run();
    targets.emplace_back(&later, slow_policy::drop_oldest);  // the route changed: a new generation
    table.add_to_run(targets, 2, message("news", 2));
    table.flush_run();
    schedule_due();
    b->posted.front()();
    EXPECT_EQ(taken(*first.out).size(), 2u);
    const auto frames = taken(*later.out);
    ASSERT_EQ(frames.size(), 1u) << "sliced again for the new generation";
    EXPECT_EQ(frames[0].seq, 2u);
}

TEST_F(Lanes, ARunReachesItsSubscribersAsSlicesOfOneBlock) {
    const two_lane_run r = run_of_four(slow_policy::drop_oldest, slow_policy::drop_oldest);
    for (const outbox_batch* batch : {&r.on_a, &r.on_b}) {
        EXPECT_EQ(batch->frames, 4u);
        ASSERT_EQ(batch->spans.size(), 1u) << "the four, side by side in one block";
        EXPECT_EQ(batch->spans[0]->data(), r.on_a.spans[0]->data()) << "one copy, shared by every lane";
    }
    std::vector<std::uint8_t> sent;
    for (const shared_bytes& f : r.sent) sent.insert(sent.end(), f.begin(), f.end());
    const shared_bytes& span = r.on_a.spans[0];
    EXPECT_TRUE(std::equal(span.begin(), span.end(), sent.begin(), sent.end()));
}

// An outbox that keeps the latest message per channel drops from the middle
// of its queue: a slice it kept would hold its run's whole block. It gets
// the frames in their own blocks; the other subscribers of the run get the
// slices.
TEST_F(Lanes, AKeepLatestSubscriberGetsTheRunsFramesInBlocksOfTheirOwn) {
    const two_lane_run r = run_of_four(slow_policy::drop_oldest, slow_policy::keep_latest);
    ASSERT_EQ(r.on_a.spans.size(), 1u);
    EXPECT_EQ(r.on_a.frames, 4u);
    EXPECT_GT(r.on_a.spans[0].block()->size(), r.sent[0].size());
    ASSERT_EQ(r.on_b.spans.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
        const shared_bytes& own = r.on_b.spans[i];
        EXPECT_EQ(own->data(), r.sent[i]->data()) << i;
        EXPECT_EQ(own.block()->size(), own.size()) << i;
    }
}

TEST_F(Lanes, ARunIsLaidOutInBlocksOfAtMostOneWrite) {
    connection& c = open(b, outbox_limits{1u << 20, 2u << 20, 1u << 20});
    std::vector<delivery_target> targets{{&c, slow_policy::drop_oldest}};
    // 40 of 2 KiB, then one larger than a block, then 2 more.
    for (std::uint64_t seq = 1; seq <= 40; ++seq) table.add_to_run(targets, 1, message("news", seq, 2048));
    table.add_to_run(targets, 1, message("news", 41, 70000));
    for (std::uint64_t seq = 42; seq <= 43; ++seq) table.add_to_run(targets, 1, message("news", seq, 2048));
    table.flush_run();
    schedule_due();
    b->posted.front()();
    outbox_batch batch;
    c.out->take(batch);
    EXPECT_EQ(batch.frames, 43u);
    ASSERT_EQ(batch.spans.size(), 4u) << "31 and 9 of 2 KiB, the large one alone, then 2";
    const std::size_t two_k = message("news", 1, 2048).size();
    const std::size_t sizes[] = {31 * two_k, 9 * two_k, message("news", 41, 70000).size(), 2 * two_k};
    for (std::size_t i = 0; i < 4; ++i) {
        const shared_bytes& span = batch.spans[i];
        EXPECT_EQ(span.size(), sizes[i]) << i;
        EXPECT_EQ(span.block()->size(), span.size()) << "each block holds exactly its frames: " << i;
        EXPECT_LE(span.block()->size(), std::max<std::size_t>(64u << 10, span.size())) << i;
    }
}

TEST_F(Lanes, TheCoresOwnLanePushesAsTheCoreSends) {
    connection& c = open(nullptr);
    table.send_ack(c, 3);
    std::vector<std::shared_ptr<lane>> due;
    table.take_lanes(due);
    EXPECT_TRUE(due.empty());
    const auto frames = taken(*c.out);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, 3u);
}

}  // namespace
}  // namespace hyperstreams::router
