// ws_frame_tracker: telling from the bytes read off a socket whether the
// WebSocket stream above holds the start of a message it has not returned.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "ws_frame_tracker.hpp"

namespace hyperstreams::router {
namespace {

// A client frame (masked, as RFC 6455 requires of clients) with `length`
// payload bytes.
std::vector<std::uint8_t> frame_bytes(std::uint8_t opcode, bool fin, std::size_t length) {
    std::vector<std::uint8_t> out;
    out.push_back(static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | opcode));
    if (length < 126) {
        out.push_back(static_cast<std::uint8_t>(0x80 | length));
    } else if (length <= 0xffff) {
        out.push_back(0x80 | 126);
        out.push_back(static_cast<std::uint8_t>(length >> 8));
        out.push_back(static_cast<std::uint8_t>(length));
    } else {
        out.push_back(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(length >> shift));
    }
    for (std::uint8_t k : {0x11, 0x22, 0x33, 0x44}) out.push_back(k);
    out.insert(out.end(), length, 0x5a);
    return out;
}

constexpr std::uint8_t continuation = 0x0, text = 0x1, binary = 0x2, ping = 0x9, pong = 0xa;

std::vector<std::uint8_t> join(std::initializer_list<std::vector<std::uint8_t>> parts) {
    std::vector<std::uint8_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

TEST(WsFrameTracker, NothingReadIsDrained) {
    ws_frame_tracker t;
    EXPECT_TRUE(t.drained_after(0));
}

TEST(WsFrameTracker, OneWholeMessageEndsExactly) {
    ws_frame_tracker t;
    const auto m = frame_bytes(binary, true, 47);
    t.add(m.data(), m.size());
    EXPECT_EQ(t.messages_ended(), 1u);
    EXPECT_FALSE(t.drained_after(0)) << "a message the stream has not returned yet is held";
    EXPECT_TRUE(t.drained_after(1));
}

TEST(WsFrameTracker, BytesOneAtATimeGiveTheSameAnswers) {
    for (std::size_t length : {0u, 5u, 125u, 126u, 300u, 70000u}) {
        ws_frame_tracker t;
        const auto m = frame_bytes(binary, true, length);
        for (std::size_t i = 0; i < m.size(); ++i) {
            EXPECT_FALSE(t.drained_after(1)) << "length " << length << ", byte " << i;
            t.add(&m[i], 1);
        }
        EXPECT_TRUE(t.drained_after(1)) << "length " << length;
    }
}

TEST(WsFrameTracker, TheStartOfTheNextMessageIsNotDrained) {
    // Two messages in one read: after the stream returned the first, it holds
    // the second, and only the count tells.
    ws_frame_tracker t;
    const auto both = join({frame_bytes(binary, true, 20), frame_bytes(binary, true, 30)});
    t.add(both.data(), both.size());
    EXPECT_FALSE(t.drained_after(1));
    EXPECT_TRUE(t.drained_after(2));

    // A partial header after a message.
    ws_frame_tracker u;
    auto partial = join({frame_bytes(binary, true, 20), frame_bytes(binary, true, 300)});
    partial.resize(frame_bytes(binary, true, 20).size() + 3);
    u.add(partial.data(), partial.size());
    EXPECT_FALSE(u.drained_after(1));
}

TEST(WsFrameTracker, ControlFramesAfterAMessageAreHeldToo) {
    ws_frame_tracker t;
    const auto bytes = join({frame_bytes(binary, true, 10), frame_bytes(ping, true, 4)});
    t.add(bytes.data(), bytes.size());
    EXPECT_EQ(t.messages_ended(), 1u);
    EXPECT_FALSE(t.drained_after(1)) << "the ping is still to be answered";
    // A control frame between two messages changes nothing once the second ends.
    const auto next = frame_bytes(binary, true, 10);
    t.add(next.data(), next.size());
    EXPECT_TRUE(t.drained_after(2));
    const auto p = frame_bytes(pong, true, 0);
    t.add(p.data(), p.size());
    EXPECT_FALSE(t.drained_after(2));
}

TEST(WsFrameTracker, AFragmentedMessageEndsWithItsFinalFrame) {
    ws_frame_tracker t;
    const auto first = frame_bytes(text, false, 8);
    t.add(first.data(), first.size());
    EXPECT_FALSE(t.drained_after(0));
    EXPECT_EQ(t.messages_ended(), 0u);
    const auto between = join({frame_bytes(ping, true, 0), frame_bytes(continuation, false, 0)});
    t.add(between.data(), between.size());
    EXPECT_EQ(t.messages_ended(), 0u);
    const auto last = frame_bytes(continuation, true, 3);
    t.add(last.data(), last.size());
    EXPECT_EQ(t.messages_ended(), 1u);
    EXPECT_TRUE(t.drained_after(1));
}

// permessage-deflate (RFC 7692) sets RSV1 on a compressed message's first
// frame only; the frames' lengths are the compressed bytes on the wire.
TEST(WsFrameTracker, CompressedMessagesAreFollowedLikeAnyOther) {
    constexpr std::uint8_t rsv1 = 0x40;
    auto compressed = [](std::vector<std::uint8_t> f) {
        f[0] |= rsv1;
        return f;
    };
    ws_frame_tracker t;
    const auto one = compressed(frame_bytes(binary, true, 300));
    t.add(one.data(), one.size());
    EXPECT_EQ(t.messages_ended(), 1u);
    EXPECT_TRUE(t.drained_after(1));

    const auto fragmented = join({compressed(frame_bytes(binary, false, 4096)), frame_bytes(ping, true, 0),
                                  frame_bytes(continuation, true, 17), frame_bytes(binary, true, 5)});
    for (std::size_t i = 0; i < fragmented.size(); ++i) t.add(&fragmented[i], 1);
    EXPECT_EQ(t.messages_ended(), 3u) << "a compressed message, then an uncompressed one";
    EXPECT_TRUE(t.drained_after(3));
}

}  // namespace
}  // namespace hyperstreams::router
