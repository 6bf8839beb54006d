// call_table: calls in flight, their two ids and their deadlines.
#include <gtest/gtest.h>

#include "call_table.hpp"

namespace hyperstreams::router {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + 1000s;

call make(std::uint64_t caller, std::uint32_t caller_id, std::uint64_t backend, std::uint32_t backend_id,
          time_point deadline = time_point::max()) {
    call c;
    c.caller = caller;
    c.caller_id = caller_id;
    c.backend = backend;
    c.backend_id = backend_id;
    c.service = "svc";
    c.started = t0;
    c.deadline = deadline;
    return c;
}

TEST(CallTable, FindsACallByEitherSide) {
    call_table t;
    ASSERT_TRUE(t.add(make(1, 10, 2, 0x80000001)));
    call* a = t.by_caller(1, 10);
    call* b = t.by_backend(2, 0x80000001);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a, b);
    EXPECT_EQ(t.by_caller(1, 11), nullptr);
    EXPECT_EQ(t.by_backend(3, 0x80000001), nullptr);
    EXPECT_TRUE(t.backend_id_in_use(2, 0x80000001));
    EXPECT_EQ(t.count_for_caller(1), 1u);
}

TEST(CallTable, RefusesADuplicateCallerIdOrBackendId) {
    call_table t;
    ASSERT_TRUE(t.add(make(1, 10, 2, 100)));
    EXPECT_FALSE(t.add(make(1, 10, 3, 101)));
    EXPECT_FALSE(t.add(make(4, 10, 2, 100)));
    EXPECT_TRUE(t.add(make(4, 10, 2, 101))) << "ids are per connection";
    EXPECT_EQ(t.size(), 2u);
}

TEST(CallTable, ExpiresCallsInDeadlineOrder) {
    call_table t;
    ASSERT_TRUE(t.add(make(1, 1, 9, 1, t0 + 300ms)));
    ASSERT_TRUE(t.add(make(1, 2, 9, 2, t0 + 100ms)));
    ASSERT_TRUE(t.add(make(1, 3, 9, 3, t0 + 200ms)));
    ASSERT_TRUE(t.add(make(1, 4, 9, 4)));  // no deadline
    EXPECT_EQ(t.next_deadline(), t0 + 100ms);
    EXPECT_TRUE(t.take_expired(t0 + 99ms).empty());

    const auto first = t.take_expired(t0 + 200ms);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0].caller_id, 2u);
    EXPECT_EQ(first[1].caller_id, 3u);
    EXPECT_EQ(t.next_deadline(), t0 + 300ms);
    EXPECT_EQ(t.take_expired(t0 + 10s).size(), 1u);
    EXPECT_EQ(t.next_deadline(), time_point::max()) << "a call without deadline never expires";
    EXPECT_EQ(t.size(), 1u);
}

TEST(CallTable, RemovingACallForgetsItsDeadline) {
    call_table t;
    ASSERT_TRUE(t.add(make(1, 1, 9, 1, t0 + 100ms)));
    const call gone = t.remove(*t.by_caller(1, 1));
    EXPECT_EQ(gone.caller_id, 1u);
    EXPECT_TRUE(t.take_expired(t0 + 1s).empty());
    EXPECT_EQ(t.count_for_caller(1), 0u);
}

TEST(CallTable, TakesEveryCallOfAGoneBackendOrCaller) {
    call_table t;
    ASSERT_TRUE(t.add(make(1, 1, 9, 1)));
    ASSERT_TRUE(t.add(make(2, 1, 9, 2)));
    ASSERT_TRUE(t.add(make(1, 2, 8, 1)));
    const auto served = t.take_by_backend(9);
    EXPECT_EQ(served.size(), 2u);
    EXPECT_EQ(t.size(), 1u);
    const auto made = t.take_by_caller(1);
    ASSERT_EQ(made.size(), 1u);
    EXPECT_EQ(made[0].backend, 8u);
    EXPECT_EQ(t.size(), 0u);
}

TEST(CallTable, TakesTheCallsOfACallerThatAPredicateEnds) {
    call_table t;
    ASSERT_TRUE(t.add(make(1, 1, 9, 1)));
    call other_method = make(1, 2, 9, 2);
    other_method.method = "delete";
    ASSERT_TRUE(t.add(other_method));
    ASSERT_TRUE(t.add(make(2, 3, 9, 3, t0 + 5s)));
    const auto ended = t.take_by_caller_if(1, [](const call& k) { return k.method == "delete"; });
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].caller_id, 2u);
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(t.by_backend(9, 2), nullptr);
    EXPECT_EQ(t.count_for_caller(1), 1u);
    EXPECT_TRUE(t.take_by_caller_if(2, [](const call&) { return false; }).empty());
    EXPECT_EQ(t.take_by_caller_if(2, [](const call&) { return true; }).size(), 1u);
    EXPECT_EQ(t.next_deadline(), time_point::max()) << "its deadline went with it";
}

}  // namespace
}  // namespace hyperstreams::router
