// outbox: the bounded outgoing queue and the slow-consumer policies.
#include <gtest/gtest.h>

#include <algorithm>

#include "batch_support.hpp"
#include "outbox.hpp"

namespace hyperstreams::router {
namespace {

shared_bytes message(std::string_view channel, std::uint64_t seq, std::size_t payload = 100) {
    return message_frame(channel, 5, seq, payload);
}

shared_bytes control(std::uint32_t id, std::size_t payload = 10) {
    std::vector<std::uint8_t> body(payload, 'c');
    frame f;
    f.kind = frame_kind::response;
    f.id = id;
    f.payload = body;
    return encode_shared(f);
}

frame parse(const shared_bytes& b) {
    frame f;
    std::size_t used = 0;
    EXPECT_FALSE(decode(*b, f, used));
    EXPECT_EQ(used, b.size()) << "one frame";
    return f;
}

// Takes everything queued, batch after batch.
std::vector<frame> drain(outbox& o, std::vector<shared_bytes>& keep) {
    std::vector<frame> out;
    outbox_batch b;
    for (;;) {
        o.take(b);
        if (b.spans.empty()) break;
        keep.insert(keep.end(), b.spans.begin(), b.spans.end());
        const auto frames = frames_of(b);
        out.insert(out.end(), frames.begin(), frames.end());
    }
    return out;
}

// Two outboxes given the same messages, one way and another, hold the
// same: bytes, drops, then frames (`many`'s returned, kept by `keep`).
std::vector<frame> expect_same_queues(outbox& single, outbox& many, std::vector<shared_bytes>& keep) {
    EXPECT_EQ(many.queued_bytes(), single.queued_bytes());
    EXPECT_EQ(many.dropped_total(), single.dropped_total());
    const auto a = drain(single, keep);
    const auto b = drain(many, keep);
    EXPECT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        EXPECT_EQ(a[i].kind, b[i].kind) << i;
        EXPECT_EQ(a[i].name, b[i].name) << i;
        EXPECT_EQ(a[i].seq, b[i].seq) << i;
        EXPECT_EQ(a[i].count, b[i].count) << i;
    }
    return b;
}

outbox_limits limits(std::uint64_t max, std::uint64_t batch = 1u << 20) { return {max, 2 * max, batch}; }

// The run of `frames` as they are, its pieces the frames that already follow
// one another in their block (frame_run::laid_out makes such blocks).
frame_run_ptr joined_run(std::vector<shared_bytes> frames) {
    auto run = std::make_shared<frame_run>();
    run->frames = std::move(frames);
    run->count = static_cast<std::uint32_t>(run->frames.size());
    for (const shared_bytes& f : run->frames) {
        if (run->pieces.empty() || !run->pieces.back().bytes.join(f)) run->pieces.push_back({f, 0});
        ++run->pieces.back().frames;
        run->bytes += f.size();
    }
    return run;
}

TEST(Fifo, KeepsOrderThroughPopsCompactionAndErase) {
    fifo<int> q;
    EXPECT_TRUE(q.empty());
    int next_in = 0;
    int next_out = 0;
    for (int round = 0; round < 1500; ++round) {  // pushes and pops interleaved: the prefix is erased as it goes
        for (int i = 0; i < 7; ++i) q.push_back(int(next_in++));
        for (int i = 0; i < 5; ++i) {
            ASSERT_EQ(q.front(), next_out++);
            q.pop_front();
        }
    }
    EXPECT_EQ(q.size(), static_cast<std::size_t>(next_in - next_out));
    EXPECT_TRUE(std::is_sorted(q.begin(), q.end()));
    EXPECT_EQ(*q.begin(), next_out);
    // erase(remove_if) over what is queued, as outbox::compact does
    q.erase(std::remove_if(q.begin(), q.end(), [](int v) { return v % 2 == 0; }), q.end());
    for (int v : q) EXPECT_EQ(v % 2, 1);
    while (!q.empty()) q.pop_front();
    q.release();
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.begin(), q.end());
    q.push_back(42);
    EXPECT_EQ(q.front(), 42);
}

TEST(Outbox, WakesTheConsumerOnceUntilItFindsTheQueueEmpty) {
    outbox o(limits(1u << 20));
    EXPECT_TRUE(o.push(control(1)).wake);
    EXPECT_FALSE(o.push(control(2)).wake) << "a wake-up is already on its way";
    outbox_batch b;
    o.take(b);
    EXPECT_EQ(b.frames, 2u);
    EXPECT_FALSE(o.push(control(3)).wake) << "the consumer takes again before going idle";
    o.take(b);
    EXPECT_EQ(b.frames, 1u);
    o.take(b);
    EXPECT_TRUE(b.spans.empty());
    EXPECT_FALSE(b.close);
    EXPECT_TRUE(o.push(control(4)).wake) << "idle consumer: wake it";
}

TEST(Outbox, KeepsOrderAcrossControlFramesAndMessages) {
    outbox o(limits(1u << 20));
    (void)o.push(control(1));
    (void)o.push(message("a", 1), frame_class::message);
    (void)o.push(control(2));
    (void)o.push(message("a", 2), frame_class::message);
    std::vector<shared_bytes> keep;
    const auto frames = drain(o, keep);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].id, 1u);
    EXPECT_EQ(frames[1].seq, 1u);
    EXPECT_EQ(frames[2].id, 2u);
    EXPECT_EQ(frames[3].seq, 2u);
}

TEST(Outbox, BatchesAreBoundedButNeverEmpty) {
    const std::size_t one = message("a", 1, 1000)->size();
    outbox o(limits(1u << 20, 3 * one));
    for (int i = 1; i <= 10; ++i) (void)o.push(message("a", static_cast<std::uint64_t>(i), 1000), frame_class::message);
    outbox_batch b;
    o.take(b);
    EXPECT_EQ(b.frames, 3u);
    EXPECT_LE(b.bytes, 3 * one);

    outbox big(limits(1u << 20, 10));
    (void)big.push(message("a", 1, 1000), frame_class::message);
    big.take(b);
    EXPECT_EQ(b.frames, 1u) << "a frame larger than the batch goes alone";
}

TEST(Outbox, DropOldestKeepsTheNewestAndReportsTheGap) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(10 * one));
    std::uint32_t dropped = 0;
    for (std::uint64_t seq = 1; seq <= 25; ++seq) {
        const push_result r = o.push(message("a", seq), frame_class::message, slow_policy::drop_oldest);
        EXPECT_NE(r.status, push_status::overflow);
        dropped += r.dropped;
    }
    EXPECT_EQ(dropped, 15u);
    EXPECT_LE(o.queued_bytes(), 10 * one) << "the queue stays within its bound";
    EXPECT_EQ(o.dropped_total(), 15u);

    std::vector<shared_bytes> keep;
    const auto frames = drain(o, keep);
    ASSERT_EQ(frames.size(), 11u);
    EXPECT_EQ(frames[0].kind, frame_kind::gap) << "the gap comes before what follows it";
    EXPECT_EQ(frames[0].name, "a");
    EXPECT_EQ(frames[0].epoch, 5u);
    EXPECT_EQ(frames[0].seq, 1u);
    EXPECT_EQ(frames[0].count, 15u);
    for (std::size_t i = 1; i < frames.size(); ++i) EXPECT_EQ(frames[i].seq, 15 + i);
}

// push_messages is push() of each message under one lock: the same queue,
// the same drops and gaps, one wake-up.
TEST(Outbox, ARunOfMessagesIsQueuedAsOneByOne) {
    const std::size_t one = message("a", 1)->size();
    std::vector<shared_bytes> run;
    for (std::uint64_t seq = 1; seq <= 25; ++seq) run.push_back(message(seq % 2 ? "a" : "b", seq));
    for (slow_policy policy : {slow_policy::drop_oldest, slow_policy::keep_latest}) {
        outbox single(limits(10 * one));
        outbox many(limits(10 * one));
        (void)single.push(control(1));
        (void)many.push(control(1));
        std::uint32_t dropped = 0;
        for (const shared_bytes& m : run) dropped += single.push(m, frame_class::message, policy).dropped;
        const push_result r = many.push_messages(joined_run(run), policy);
        EXPECT_EQ(r.status, push_status::queued_dropped);
        EXPECT_EQ(r.queued, 25u);
        EXPECT_EQ(r.dropped, dropped);
        EXPECT_FALSE(r.wake) << "the control frame's wake-up is on its way";
        std::vector<shared_bytes> keep;
        (void)expect_same_queues(single, many, keep);
    }
    outbox idle(limits(10 * one));
    const push_result first =
        idle.push_messages(joined_run({run.begin(), run.begin() + 3}), slow_policy::drop_oldest);
    EXPECT_EQ(first.status, push_status::queued);
    EXPECT_TRUE(first.wake) << "an idle consumer is woken once for the run";
}

TEST(Outbox, ARunStopsAtTheFirstOverflowOrWhenClosed) {
    const std::size_t one = message("a", 1)->size();
    std::vector<shared_bytes> run;
    for (std::uint64_t seq = 1; seq <= 25; ++seq) run.push_back(message("a", seq));
    outbox o(limits(10 * one));
    const push_result r = o.push_messages(joined_run(run), slow_policy::disconnect);
    EXPECT_EQ(r.status, push_status::overflow);
    EXPECT_EQ(r.queued, 10u) << "what fitted went in, then it stopped";
    EXPECT_LE(o.queued_bytes(), 10 * one);

    outbox closed(limits(10 * one));
    (void)closed.close(nullptr, queued_data::send);
    EXPECT_EQ(closed.push_messages(joined_run(run), slow_policy::drop_oldest).status, push_status::closed);
    EXPECT_EQ(closed.push_messages(joined_run({}), slow_policy::drop_oldest).status, push_status::queued);
}

TEST(Outbox, GapsAreCountedPerChannel) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(4 * one));
    for (std::uint64_t seq = 1; seq <= 4; ++seq) {
        (void)o.push(message("a", seq), frame_class::message);
        (void)o.push(message("b", seq), frame_class::message);
    }
    std::vector<shared_bytes> keep;
    const auto frames = drain(o, keep);
    ASSERT_GE(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::gap);
    EXPECT_EQ(frames[0].name, "a");
    EXPECT_EQ(frames[0].seq, 1u);
    EXPECT_EQ(frames[0].count, 2u);
    EXPECT_EQ(frames[1].kind, frame_kind::gap);
    EXPECT_EQ(frames[1].name, "b");
    EXPECT_EQ(frames[1].count, 2u);
}

TEST(Outbox, ControlFramesAreNeverDropped) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(4 * one));
    for (std::uint64_t seq = 1; seq <= 3; ++seq) (void)o.push(message("a", seq), frame_class::message);
    for (std::uint32_t id = 1; id <= 3; ++id) EXPECT_EQ(o.push(control(id)).status, push_status::queued);
    // Full of control frames: a message pushed now can only drop messages.
    for (std::uint64_t seq = 4; seq <= 10; ++seq) (void)o.push(message("a", seq), frame_class::message);
    std::vector<shared_bytes> keep;
    const auto frames = drain(o, keep);
    int responses = 0;
    for (const frame& f : frames) responses += f.kind == frame_kind::response;
    EXPECT_EQ(responses, 3);
}

TEST(Outbox, ControlFramesPastTheHardBoundOverflow) {
    outbox o({1000, 2000, 1u << 20});
    push_result r;
    int pushed = 0;
    while ((r = o.push(control(1, 100))).status == push_status::queued) ++pushed;
    EXPECT_EQ(r.status, push_status::overflow);
    EXPECT_GE(pushed, 15);
    EXPECT_LE(o.queued_bytes(), 2000u);
}

TEST(Outbox, DisconnectPolicyOverflowsInsteadOfDropping) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(3 * one));
    for (std::uint64_t seq = 1; seq <= 3; ++seq)
        EXPECT_EQ(o.push(message("a", seq), frame_class::message, slow_policy::disconnect).status, push_status::queued);
    EXPECT_EQ(o.push(message("a", 4), frame_class::message, slow_policy::disconnect).status, push_status::overflow);
}

TEST(Outbox, DropOldestNeverDropsADisconnectSubscriptionsMessage) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(3 * one));
    (void)o.push(message("strict", 1), frame_class::message, slow_policy::disconnect);
    (void)o.push(message("lax", 1), frame_class::message, slow_policy::drop_oldest);
    EXPECT_EQ(o.push(message("lax", 2), frame_class::message, slow_policy::drop_oldest).status,
              push_status::overflow);
}

TEST(Outbox, KeepLatestReplacesTheQueuedMessageOfTheSameChannel) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(3 * one));
    (void)o.push(message("o", 1), frame_class::message, slow_policy::drop_oldest);
    (void)o.push(message("a", 1), frame_class::message, slow_policy::keep_latest);
    (void)o.push(message("b", 1), frame_class::message, slow_policy::keep_latest);
    // Full: "a" 2 replaces "a" 1, not the older "o" 1.
    const push_result r = o.push(message("a", 2), frame_class::message, slow_policy::keep_latest);
    EXPECT_EQ(r.status, push_status::queued_dropped);
    std::vector<shared_bytes> keep;
    const auto frames = drain(o, keep);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].kind, frame_kind::gap);
    EXPECT_EQ(frames[0].name, "a");
    EXPECT_EQ(frames[0].seq, 1u);
    EXPECT_EQ(frames[1].name, "o");
    EXPECT_EQ(frames[2].name, "b");
    EXPECT_EQ(frames[3].name, "a");
    EXPECT_EQ(frames[3].seq, 2u);
}

// Messages side by side in one block, as a run's pieces hold them.
std::vector<shared_bytes> run_of(std::vector<shared_bytes> frames) {
    lay_out(frames);
    return frames;
}

// The run the core hands to every subscriber keeps its frames as they came
// (each in its own block, for the outboxes that take them one by one) and
// copies them side by side into pieces of at most the block size; a frame
// that fills a block alone is its own piece.
TEST(Outbox, ALaidOutRunKeepsItsFramesAndCopiesThemIntoPiecesOfABlock) {
    const std::size_t one = message("a", 1)->size();
    std::vector<shared_bytes> frames;
    for (std::uint64_t seq = 1; seq <= 5; ++seq) frames.push_back(message("a", seq));
    frames.push_back(message("a", 6, 10 * one));  // alone: over the block with any other
    for (std::uint64_t seq = 7; seq <= 8; ++seq) frames.push_back(message("a", seq));
    const std::vector<shared_bytes> given = frames;
    const frame_run_ptr run = frame_run::laid_out(std::move(frames), 3 * one);

    ASSERT_EQ(run->frames.size(), given.size());
    for (std::size_t i = 0; i < given.size(); ++i)
        EXPECT_EQ(run->frames[i], given[i]) << "frame " << i << " is its own block, not a slice of a piece";
    struct expected_piece {
        std::size_t first, count;
    };
    const std::vector<expected_piece> expected{{0, 3}, {3, 2}, {5, 1}, {6, 2}};
    ASSERT_EQ(run->pieces.size(), expected.size());
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const frame_run::piece& p = run->pieces[i];
        EXPECT_EQ(p.frames, expected[i].count) << "piece " << i;
        std::vector<std::uint8_t> bytes;
        for (std::size_t f = expected[i].first; f < expected[i].first + expected[i].count; ++f)
            bytes.insert(bytes.end(), given[f].begin(), given[f].end());
        EXPECT_TRUE(std::equal(p.bytes.begin(), p.bytes.end(), bytes.begin(), bytes.end())) << "piece " << i;
        if (expected[i].count == 1)
            EXPECT_EQ(p.bytes, given[expected[i].first]) << "a frame alone is not copied";
        else
            EXPECT_EQ(p.bytes.size(), p.bytes.block()->size()) << "a piece is the whole of a block of its own";
        total += p.bytes.size();
    }
    EXPECT_EQ(run->bytes, total);

    // A keep_latest outbox, which may keep any one of them for long, holds
    // the frames' own blocks, never a piece's.
    outbox latest(limits(100 * one));
    ASSERT_EQ(latest.push_messages(run, slow_policy::keep_latest).status, push_status::queued);
    outbox_batch b;
    latest.take(b);
    ASSERT_FALSE(b.spans.empty());
    for (const shared_bytes& span : b.spans)
        EXPECT_TRUE(std::any_of(given.begin(), given.end(), [&](const shared_bytes& g) { return g == span; }));
}

TEST(Outbox, DropOldestOnARunsSlicesLeavesTheGapAndTheRestOfTheRun) {
    const std::size_t one = message("a", 1)->size();
    std::vector<shared_bytes> messages;
    for (std::uint64_t seq = 1; seq <= 20; ++seq) messages.push_back(message("a", seq));
    const std::vector<shared_bytes> run = run_of(std::move(messages));
    outbox o(limits(10 * one));
    const push_result r = o.push_messages(joined_run(run), slow_policy::drop_oldest);
    EXPECT_EQ(r.dropped, 10u);
    EXPECT_EQ(o.queued_bytes(), 10 * one) << "each slice counts its own bytes, not its block's";
    outbox_batch b;
    o.take(b);
    ASSERT_EQ(b.spans.size(), 2u) << "the gap, then what is left of the run as one span";
    EXPECT_EQ(b.gaps, 1u);
    const frame gap = parse(b.spans[0]);
    EXPECT_EQ(gap.kind, frame_kind::gap);
    EXPECT_EQ(gap.seq, 1u);
    EXPECT_EQ(gap.count, 10u);
    EXPECT_EQ(b.spans[1]->data(), run[10]->data()) << "the run's own bytes, not a copy";
    EXPECT_EQ(b.spans[1].size(), 10 * one);
    const auto frames = frames_of(b);
    ASSERT_EQ(frames.size(), 11u);
    for (std::size_t i = 1; i < frames.size(); ++i) EXPECT_EQ(frames[i].seq, 10 + i);
}

// A run that fits is queued as one piece per block it lies in and taken
// as one span of it; taken in parts when the batch is smaller.
TEST(Outbox, ARunThatFitsIsTakenAsSpansOfItsBlock) {
    const std::size_t one = message("a", 1)->size();
    std::vector<shared_bytes> messages;
    for (std::uint64_t seq = 1; seq <= 20; ++seq) messages.push_back(message("a", seq));
    const std::vector<shared_bytes> run = run_of(std::move(messages));
    outbox o(limits(100 * one, 7 * one));
    const push_result r = o.push_messages(joined_run(run), slow_policy::drop_oldest);
    EXPECT_EQ(r.status, push_status::queued);
    EXPECT_EQ(r.queued, 20u);
    EXPECT_TRUE(r.wake);
    EXPECT_EQ(o.queued_bytes(), 20 * one);
    std::uint64_t next_seq = 1;
    for (const std::uint32_t expected : {7u, 7u, 6u}) {
        outbox_batch b;
        o.take(b);
        ASSERT_EQ(b.spans.size(), 1u);
        EXPECT_EQ(b.frames, expected);
        EXPECT_EQ(b.spans[0]->data(), run[next_seq - 1]->data()) << "the block itself";
        EXPECT_EQ(b.spans[0].size(), expected * one);
        for (const frame& f : frames_of(b)) EXPECT_EQ(f.seq, next_seq++);
    }
    EXPECT_EQ(next_seq, 21u);
    EXPECT_EQ(o.queued_bytes(), 0u);
    outbox_batch b;
    o.take(b);
    EXPECT_TRUE(b.spans.empty());
}

// A run encoded in place has no frames of its own: pieces of at most the
// block size (a larger frame alone), and an outbox that cannot take it
// whole takes it frame by frame, each frame its slice of its piece, and
// drops and overflows as it would with the messages pushed one by one.
TEST(Outbox, ARunInPlaceIsPiecesAndIsTakenFrameByFrameWhenItDoesNotFit) {
    const std::size_t one = message("a", 1)->size();
    std::vector<shared_bytes> messages;
    for (std::uint64_t seq = 1; seq <= 20; ++seq) messages.push_back(message("a", seq, seq == 9 ? 10 * one : 100));
    std::vector<std::uint8_t> encoded;
    std::vector<std::uint32_t> sizes;
    for (const shared_bytes& m : messages) {
        encoded.insert(encoded.end(), m.begin(), m.end());
        sizes.push_back(static_cast<std::uint32_t>(m.size()));
    }
    const frame_run_ptr run = frame_run::in_place(encoded, sizes, 4 * one);
    EXPECT_TRUE(run->frames.empty());
    EXPECT_EQ(run->count, 20u);
    EXPECT_EQ(run->bytes, encoded.size());
    std::vector<std::uint32_t> piece_frames;
    for (const frame_run::piece& p : run->pieces) piece_frames.push_back(p.frames);
    EXPECT_EQ(piece_frames, (std::vector<std::uint32_t>{4, 4, 1, 4, 4, 3})) << "frame 9 alone, over the block";
    std::vector<shared_bytes> each;
    run->each_frame([&](const shared_bytes& f) {
        each.push_back(f);
        return true;
    });
    ASSERT_EQ(each.size(), messages.size());
    for (std::size_t i = 0; i < each.size(); ++i)
        EXPECT_TRUE(std::equal(each[i].begin(), each[i].end(), messages[i].begin(), messages[i].end())) << i;

    for (slow_policy policy : {slow_policy::drop_oldest, slow_policy::disconnect}) {
        outbox single(limits(16 * one));
        outbox many(limits(16 * one));
        for (const shared_bytes& m : messages) {
            const push_result r = single.push(m, frame_class::message, policy);
            if (r.status == push_status::overflow) break;
        }
        const push_result r = many.push_messages(run, policy);
        EXPECT_EQ(r.status, policy == slow_policy::drop_oldest ? push_status::queued_dropped : push_status::overflow);
        std::vector<shared_bytes> keep;
        (void)expect_same_queues(single, many, keep);
    }
}

// What a later push drops of a run queued whole, and what overflows, is
// what it would be had the run been pushed message by message.
TEST(Outbox, APieceDropsAndOverflowsAsItsMessagesOneByOne) {
    const std::size_t one = message("a", 1)->size();
    for (slow_policy policy : {slow_policy::drop_oldest, slow_policy::disconnect}) {
        std::vector<shared_bytes> messages;
        for (std::uint64_t seq = 1; seq <= 8; ++seq) messages.push_back(message("a", seq));
        const std::vector<shared_bytes> run = run_of(std::move(messages));
        outbox single(limits(10 * one));
        outbox many(limits(10 * one));
        for (const shared_bytes& m : run) (void)single.push(m, frame_class::message, policy);
        EXPECT_EQ(many.push_messages(joined_run(run), policy).status, push_status::queued);
        for (std::uint64_t seq = 1; seq <= 6; ++seq) {
            const shared_bytes m = message("b", seq);
            const push_result a = single.push(m, frame_class::message, policy);
            const push_result b = many.push(m, frame_class::message, policy);
            EXPECT_EQ(a.status, b.status) << seq;
            EXPECT_EQ(a.dropped, b.dropped) << seq;
            if (a.status == push_status::overflow) break;
        }
        std::vector<shared_bytes> keep;
        const auto b = expect_same_queues(single, many, keep);
        if (policy == slow_policy::drop_oldest) {
            ASSERT_EQ(b.size(), 11u);
            EXPECT_EQ(b[0].kind, frame_kind::gap);
            EXPECT_EQ(b[0].seq, 1u);
            EXPECT_EQ(b[0].count, 4u) << "the run's first four made room";
            EXPECT_EQ(b[1].seq, 5u);
        }
    }
    std::vector<shared_bytes> messages;
    for (std::uint64_t seq = 1; seq <= 8; ++seq) messages.push_back(message("a", seq));
    outbox discarded(limits(10 * one));
    (void)discarded.push_messages(joined_run(run_of(std::move(messages))), slow_policy::drop_oldest);
    (void)discarded.close(nullptr, queued_data::discard);
    EXPECT_EQ(discarded.queued_bytes(), 0u);
    outbox_batch b;
    discarded.take(b);
    EXPECT_TRUE(b.spans.empty());
    EXPECT_TRUE(b.close);
}

TEST(Outbox, KeepLatestReplacesASliceOfARun) {
    const std::size_t one = message("a", 1)->size();
    const std::vector<shared_bytes> run = run_of({message("a", 1), message("b", 1), message("c", 1)});
    outbox o(limits(3 * one));
    EXPECT_EQ(o.push_messages(joined_run(run), slow_policy::keep_latest).status, push_status::queued);
    // Full: the next run's "b" replaces the first run's, in the middle of it.
    const std::vector<shared_bytes> next = run_of({message("b", 2), message("d", 2)});
    const push_result r = o.push_messages(joined_run({next[0]}), slow_policy::keep_latest);
    EXPECT_EQ(r.status, push_status::queued_dropped);
    EXPECT_EQ(r.dropped, 1u);
    EXPECT_EQ(o.queued_bytes(), 3 * one);
    outbox_batch b;
    o.take(b);
    ASSERT_EQ(b.spans.size(), 4u);
    const frame gap = parse(b.spans[0]);
    EXPECT_EQ(gap.kind, frame_kind::gap);
    EXPECT_EQ(gap.name, "b");
    EXPECT_EQ(gap.seq, 1u);
    EXPECT_EQ(parse(b.spans[1]).name, "a");
    EXPECT_EQ(b.spans[1]->data(), run[0]->data());
    EXPECT_EQ(parse(b.spans[2]).name, "c");
    EXPECT_EQ(b.spans[2]->data(), run[2]->data());
    EXPECT_FALSE(b.spans[1].followed_by(b.spans[2])) << "the replaced slice leaves a hole";
    EXPECT_EQ(parse(b.spans[3]).name, "b");
    EXPECT_EQ(parse(b.spans[3]).seq, 2u);
    EXPECT_EQ(b.spans[3]->data(), next[0]->data());
}

TEST(Outbox, KeepLatestUnderSustainedPressureKeepsTheQueueBounded) {
    const std::size_t one = message("c0", 1)->size();
    outbox o(limits(8 * one));
    for (std::uint64_t seq = 1; seq <= 5000; ++seq)
        (void)o.push(message("c" + std::to_string(seq % 4), seq), frame_class::message, slow_policy::keep_latest);
    EXPECT_LE(o.queued_bytes(), 8 * one);
    std::vector<shared_bytes> keep;
    const auto frames = drain(o, keep);
    std::size_t messages = 0;
    for (const frame& f : frames) messages += f.kind == frame_kind::message;
    EXPECT_LE(messages, 8u);
    EXPECT_GE(messages, 4u) << "the newest of each channel is kept";
}

TEST(Outbox, CloseFlushesThenSignalsTheEnd) {
    outbox o(limits(1u << 20));
    (void)o.push(control(1));
    frame g;
    g.kind = frame_kind::goodbye;
    g.code = static_cast<std::uint16_t>(errc::going_away);
    (void)o.close(encode_shared(g), queued_data::send);
    EXPECT_EQ(o.push(control(2)).status, push_status::closed);
    EXPECT_EQ(o.close_code(), static_cast<std::uint16_t>(errc::going_away));
    outbox_batch b;
    o.take(b);
    ASSERT_EQ(b.spans.size(), 2u);
    EXPECT_EQ(parse(b.spans[1]).kind, frame_kind::goodbye);
    EXPECT_TRUE(b.close);
}

TEST(Outbox, CloseCanDiscardQueuedMessages) {
    outbox o(limits(1u << 20));
    (void)o.push(message("a", 1), frame_class::message);
    (void)o.push(control(1));
    (void)o.close(nullptr, queued_data::discard);
    outbox_batch b;
    o.take(b);
    ASSERT_EQ(b.spans.size(), 1u);
    EXPECT_EQ(parse(b.spans[0]).kind, frame_kind::response);
    EXPECT_TRUE(b.close);
    EXPECT_EQ(o.queued_bytes(), 0u);
}

// The keep-latest and gap maps exist only while something needs them (the
// first drop or keep_latest message creates them, an empty queue frees
// them): the policies behave the same on every round.
TEST(Outbox, KeepLatestAndGapsBehaveTheSameAfterTheQueueWentIdle) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(3 * one));
    for (std::uint64_t round = 0; round < 3; ++round) {
        const std::uint64_t s = 10 * round;
        (void)o.push(message("o", s + 1), frame_class::message, slow_policy::drop_oldest);
        (void)o.push(message("a", s + 1), frame_class::message, slow_policy::keep_latest);
        (void)o.push(message("b", s + 1), frame_class::message, slow_policy::keep_latest);
        const push_result r = o.push(message("a", s + 2), frame_class::message, slow_policy::keep_latest);
        EXPECT_EQ(r.status, push_status::queued_dropped) << "round " << round;
        std::vector<shared_bytes> keep;
        const auto frames = drain(o, keep);
        ASSERT_EQ(frames.size(), 4u) << "round " << round;
        EXPECT_EQ(frames[0].kind, frame_kind::gap);
        EXPECT_EQ(frames[0].name, "a");
        EXPECT_EQ(frames[0].seq, s + 1);
        EXPECT_EQ(frames[0].count, 1u);
        EXPECT_EQ(frames[1].name, "o");
        EXPECT_EQ(frames[2].name, "b");
        EXPECT_EQ(frames[3].name, "a");
        EXPECT_EQ(frames[3].seq, s + 2);
        // Idle now: a plain message goes through without any gap.
        (void)o.push(message("o", s + 3), frame_class::message, slow_policy::drop_oldest);
        const auto after = drain(o, keep);
        ASSERT_EQ(after.size(), 1u) << "round " << round;
        EXPECT_EQ(after[0].kind, frame_kind::message);
    }
    EXPECT_EQ(o.dropped_total(), 3u);
}

TEST(Outbox, KeepLatestStillReplacesAcrossPartialTakes) {
    const std::size_t one = message("a", 1)->size();
    // Batches of one message: taking one leaves the others queued.
    outbox o(limits(3 * one, one));
    (void)o.push(message("x", 1), frame_class::message, slow_policy::keep_latest);
    (void)o.push(message("a", 1), frame_class::message, slow_policy::keep_latest);
    (void)o.push(message("b", 1), frame_class::message, slow_policy::keep_latest);
    outbox_batch batch;
    o.take(batch);
    ASSERT_EQ(batch.spans.size(), 1u);
    EXPECT_EQ(parse(batch.spans[0]).name, "x");
    (void)o.push(message("c", 1), frame_class::message, slow_policy::keep_latest);
    // Full again: "a" 2 must replace the "a" 1 still queued.
    EXPECT_EQ(o.push(message("a", 2), frame_class::message, slow_policy::keep_latest).status,
              push_status::queued_dropped);
    std::vector<shared_bytes> keep;
    const auto frames = drain(o, keep);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].kind, frame_kind::gap);
    EXPECT_EQ(frames[0].name, "a");
    EXPECT_EQ(frames[1].name, "b");
    EXPECT_EQ(frames[2].name, "c");
    EXPECT_EQ(frames[3].name, "a");
    EXPECT_EQ(frames[3].seq, 2u);
}

TEST(Outbox, CloseDiscardingDataForgetsPendingGaps) {
    const std::size_t one = message("a", 1)->size();
    outbox o(limits(2 * one));
    for (std::uint64_t seq = 1; seq <= 4; ++seq) (void)o.push(message("a", seq), frame_class::message);
    EXPECT_EQ(o.dropped_total(), 2u);
    (void)o.close(nullptr, queued_data::discard);
    outbox_batch b;
    o.take(b);
    EXPECT_TRUE(b.spans.empty()) << "neither the messages nor their gap";
    EXPECT_EQ(b.gaps, 0u);
    EXPECT_TRUE(b.close);
}

}  // namespace
}  // namespace hyperstreams::router
