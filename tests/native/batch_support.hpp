// What the router's transports take from an outbox, read back as frames by
// the router's unit tests.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "outbox.hpp"

namespace hyperstreams::router {

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
