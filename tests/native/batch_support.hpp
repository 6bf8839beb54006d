// The router's unit tests' message frames, and what the transports take
// from an outbox read back as frames.
#pragma once

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "outbox.hpp"

namespace hyperstreams::router {

// An encoded message frame of `channel` at (`epoch`, `seq`), its payload
// `payload` bytes of 'm'.
inline shared_bytes message_frame(std::string_view channel, std::uint32_t epoch, std::uint64_t seq,
                                  std::size_t payload) {
    std::vector<std::uint8_t> body(payload, 'm');
    frame f;
    f.kind = frame_kind::message;
    f.name = channel;
    f.epoch = epoch;
    f.seq = seq;
    f.payload = body;
    return encode_shared(f);
}

// The frames of a batch, in order: a span holds one frame or several.
inline std::vector<frame> frames_of(const outbox_batch& b) {
    std::vector<frame> out;
    for (const shared_bytes& span : b.spans) {
        bytes_view rest = *span;
        while (!rest.empty()) {
            frame f;
            std::size_t used = 0;
            EXPECT_FALSE(decode(rest, f, used));
            if (used == 0) break;
            out.push_back(f);
            rest = rest.subspan(used);
        }
    }
    EXPECT_EQ(out.size(), b.frames);
    return out;
}

}  // namespace hyperstreams::router
