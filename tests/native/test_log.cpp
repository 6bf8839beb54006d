// log::throttle: a warning that can come once per message is logged the
// first time, then at most once per interval, with how many were not.
#include "log.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace hyperstreams::router::log {
namespace {

using namespace std::chrono_literals;

TEST(LogThrottle, TheFirstIsLoggedThenOnePerIntervalWithHowManyWereNot) {
    throttle t(1s);
    const auto start = std::chrono::steady_clock::time_point{} + 100s;
    std::uint64_t suppressed = 99;
    ASSERT_TRUE(t.admit(start, suppressed));
    EXPECT_EQ(suppressed, 0u);
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(t.admit(start + 100ms * (i + 1), suppressed));
    ASSERT_TRUE(t.admit(start + 1s, suppressed));
    EXPECT_EQ(suppressed, 3u);
    EXPECT_FALSE(t.admit(start + 1500ms, suppressed));
    // A quiet spell: the next comes at once, with the one held back before.
    ASSERT_TRUE(t.admit(start + 60s, suppressed));
    EXPECT_EQ(suppressed, 1u);
    ASSERT_TRUE(t.admit(start + 61s, suppressed));
    EXPECT_EQ(suppressed, 0u);
    EXPECT_EQ(t.occurrences(), 8u) << "every one counted, logged or not";
}

TEST(LogThrottle, OnlyAdmittedLinesAreWrittenAndEveryOneIsCounted) {
    int evaluated = 0;
    const auto note = [&] {
        ++evaluated;
        return 1;
    };
    configure(level::off, format::text);
    throttle quiet(1s);
    HS_LOG_THROTTLED(quiet, warn, "test.throttled").kv("n", note());
    EXPECT_EQ(evaluated, 0) << "a disabled level evaluates nothing";
    EXPECT_EQ(quiet.occurrences(), 1u) << "and counts all the same";
    configure(level::info, format::text);
    throttle t(1s);
    for (int i = 0; i < 5; ++i) HS_LOG_THROTTLED(t, warn, "test.throttled").kv("n", note());
    EXPECT_EQ(evaluated, 1) << "one line in the interval";
    EXPECT_EQ(t.occurrences(), 5u);
}

}  // namespace
}  // namespace hyperstreams::router::log
