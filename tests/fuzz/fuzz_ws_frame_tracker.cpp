// libFuzzer target: the WebSocket frame tracker (ws_frame_tracker.hpp) over
// any byte stream a socket may deliver, in any pieces.
//
// The first byte seeds the sizes of the pieces; the rest is the stream.
// A reference reader walks the whole stream once, frame by frame, and
// notes where each data message ends (RFC 6455 section 5.2: the final
// frame of a message, opcode below 0x8). The tracker is fed the stream in
// pieces, and after each piece it must agree with the reference about the
// prefix read so far: how many messages ended in it, and whether it ends
// exactly where a message ends (or is empty). Fed the whole stream at once
// it must agree too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "script.hpp"
#include "ws_frame_tracker.hpp"

namespace {

using namespace hyperstreams;
using router::ws_frame_tracker;

void require(bool condition, const char* what) {
    if (!condition) hyperstreams::fuzzing::fail("fuzz_ws_frame_tracker", what);
}

// Offsets just past the last byte of every data message, in order.
std::vector<std::size_t> message_ends(const std::uint8_t* p, std::size_t n) {
    std::vector<std::size_t> ends;
    std::size_t at = 0;
    while (n - at >= 2) {
        const bool fin = (p[at] & 0x80) != 0;
        const int opcode = p[at] & 0x0f;
        const int length7 = p[at + 1] & 0x7f;
        const bool masked = (p[at + 1] & 0x80) != 0;
        const std::size_t extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
        const std::size_t header = 2 + extended + (masked ? 4 : 0);
        if (n - at < header) break;
        std::uint64_t length = length7 < 126 ? static_cast<std::uint64_t>(length7) : 0;
        for (std::size_t i = 0; i < extended; ++i) length = (length << 8) | p[at + 2 + i];
        if (length > n - at - header) break;
        at += header + static_cast<std::size_t>(length);
        if (fin && opcode < 0x8) ends.push_back(at);
    }
    return ends;
}

void check(const ws_frame_tracker& t, const std::vector<std::size_t>& ends, std::size_t read) {
    const auto ended = static_cast<std::uint64_t>(std::upper_bound(ends.begin(), ends.end(), read) - ends.begin());
    require(t.messages_ended() == ended, "the tracker counts the messages that ended");
    const bool at_end = read == 0 || std::binary_search(ends.begin(), ends.end(), read);
    require(t.drained_after(ended) == at_end, "the tracker knows when the bytes end with a message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint32_t state = data[0];
    const std::uint8_t* stream = data + 1;
    const std::size_t n = size - 1;
    const std::vector<std::size_t> ends = message_ends(stream, n);

    ws_frame_tracker whole;
    whole.add(stream, n);
    check(whole, ends, n);

    ws_frame_tracker pieces;
    check(pieces, ends, 0);
    for (std::size_t read = 0; read < n;) {
        // Pieces of 1 to 32 bytes from a linear congruential generator.
        state = state * 1664525u + 1013904223u;
        const std::size_t piece = std::min<std::size_t>(1 + (state >> 24) % 32, n - read);
        pieces.add(stream + read, piece);
        read += piece;
        check(pieces, ends, read);
    }
    return 0;
}
