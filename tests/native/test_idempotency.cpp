// idempotency_keys: a channel's keys on a router on its own, bounded by
// their window and by count.
#include <gtest/gtest.h>

#include "idempotency.hpp"

namespace hyperstreams::router {
namespace {

using std::chrono::seconds;

const std::uint8_t qty3[] = {'q', '3'};
const std::uint8_t qty4[] = {'q', '4'};

TEST(IdempotencyKeys, ARepeatIsFoundWithItsPositionAnotherPayloadIsReused) {
    idempotency_keys keys(10);
    const time_point t0{};
    const auto d = idempotency_keys::digest_of(0, qty3);
    position first;
    ASSERT_EQ(keys.check("k", d, t0, first), idempotency_keys::outcome::fresh);
    keys.remember("k", d, position{7, 42}, t0 + seconds(5));
    EXPECT_EQ(keys.check("k", d, t0 + seconds(4), first), idempotency_keys::outcome::repeat);
    EXPECT_EQ(first.epoch, 7u);
    EXPECT_EQ(first.seq, 42u);
    EXPECT_EQ(keys.check("k", idempotency_keys::digest_of(0, qty4), t0, first), idempotency_keys::outcome::reused);
    EXPECT_EQ(keys.check("k", idempotency_keys::digest_of(frame_flags::json, qty3), t0, first),
              idempotency_keys::outcome::reused)
        << "the json flag is part of the payload";
    EXPECT_EQ(keys.check("k", d, t0 + seconds(5), first), idempotency_keys::outcome::fresh) << "the window ended";
    EXPECT_EQ(keys.size(), 0u);
}

TEST(IdempotencyKeys, PastTheCountTheOldestIsForgottenFirst) {
    idempotency_keys keys(2);
    const time_point t0{};
    const auto d = idempotency_keys::digest_of(0, qty3);
    keys.remember("a", d, position{1, 1}, t0 + seconds(60));
    keys.remember("b", d, position{1, 2}, t0 + seconds(60));
    keys.remember("c", d, position{1, 3}, t0 + seconds(60));
    EXPECT_EQ(keys.size(), 2u);
    position first;
    EXPECT_EQ(keys.check("a", d, t0, first), idempotency_keys::outcome::fresh);
    EXPECT_EQ(keys.check("b", d, t0, first), idempotency_keys::outcome::repeat);
    EXPECT_EQ(keys.check("c", d, t0, first), idempotency_keys::outcome::repeat);
}

}  // namespace
}  // namespace hyperstreams::router
