// topic_tree: pattern matching with "*" and ">", once per subscriber.
#include <gtest/gtest.h>

#include "topic_tree.hpp"

namespace hyperstreams::router {
namespace {

std::vector<std::uint64_t> ids(const topic_tree& t, std::string_view channel) {
    std::vector<topic_tree::match> out;
    t.collect(channel, out);
    std::vector<std::uint64_t> r;
    for (const auto& m : out) r.push_back(m.subscriber);
    return r;
}

using v = std::vector<std::uint64_t>;

TEST(TopicTree, ExactChannelMatchesOnlyItself) {
    topic_tree t;
    t.subscribe(1, "factory.line1.temp", 0);
    EXPECT_EQ(ids(t, "factory.line1.temp"), v{1});
    EXPECT_EQ(ids(t, "factory.line1"), v{});
    EXPECT_EQ(ids(t, "factory.line1.temp.x"), v{});
    EXPECT_EQ(ids(t, "factory.line2.temp"), v{});
}

TEST(TopicTree, StarMatchesExactlyOneToken) {
    topic_tree t;
    t.subscribe(1, "factory.*.temp", 0);
    EXPECT_EQ(ids(t, "factory.line1.temp"), v{1});
    EXPECT_EQ(ids(t, "factory.line2.temp"), v{1});
    EXPECT_EQ(ids(t, "factory.temp"), v{});
    EXPECT_EQ(ids(t, "factory.a.b.temp"), v{});
}

TEST(TopicTree, GreaterMatchesOneOrMoreTrailingTokens) {
    topic_tree t;
    t.subscribe(1, "factory.>", 0);
    EXPECT_EQ(ids(t, "factory.line1"), v{1});
    EXPECT_EQ(ids(t, "factory.line1.m3.temp"), v{1});
    EXPECT_EQ(ids(t, "factory"), v{}) << "'>' needs at least one token";
    EXPECT_EQ(ids(t, "other.line1"), v{});
}

TEST(TopicTree, RootGreaterMatchesEverything) {
    topic_tree t;
    t.subscribe(7, ">", 0);
    EXPECT_EQ(ids(t, "a"), v{7});
    EXPECT_EQ(ids(t, "a.b.c"), v{7});
}

TEST(TopicTree, SubscriberWithOverlappingPatternsIsReturnedOnce) {
    topic_tree t;
    t.subscribe(1, "a.b.c", 1);
    t.subscribe(1, "a.*.c", 2);
    t.subscribe(1, "a.>", 3);
    t.subscribe(2, "a.>", 0);
    std::vector<topic_tree::match> out;
    t.collect("a.b.c", out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].subscriber, 1u);
    EXPECT_EQ(out[0].tag, 1) << "the exact pattern is the most specific";
    EXPECT_EQ(out[1].subscriber, 2u);
}

TEST(TopicTree, ResultIsSortedAcrossBranches) {
    topic_tree t;
    t.subscribe(9, "x.y", 0);
    t.subscribe(3, "x.*", 0);
    t.subscribe(5, "x.>", 0);
    t.subscribe(1, "x.y", 0);
    EXPECT_EQ(ids(t, "x.y"), (v{1, 3, 5, 9}));
}

TEST(TopicTree, SubscribeTwiceUpdatesTheTag) {
    topic_tree t;
    EXPECT_TRUE(t.subscribe(1, "a", 1));
    EXPECT_FALSE(t.subscribe(1, "a", 2));
    EXPECT_EQ(t.subscription_count(), 1u);
    std::vector<topic_tree::match> out;
    t.collect("a", out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].tag, 2);
}

TEST(TopicTree, UnsubscribeRemovesOnlyThatPattern) {
    topic_tree t;
    t.subscribe(1, "a.*", 0);
    t.subscribe(1, "a.b", 0);
    t.subscribe(2, "a.b", 0);
    EXPECT_TRUE(t.unsubscribe(1, "a.b"));
    EXPECT_FALSE(t.unsubscribe(1, "a.b"));
    EXPECT_FALSE(t.unsubscribe(3, "a.b"));
    EXPECT_FALSE(t.unsubscribe(1, "never.there"));
    EXPECT_EQ(ids(t, "a.b"), (v{1, 2}));
    EXPECT_TRUE(t.unsubscribe(1, "a.*"));
    EXPECT_EQ(ids(t, "a.b"), v{2});
    EXPECT_TRUE(t.unsubscribe(2, "a.b"));
    EXPECT_EQ(ids(t, "a.b"), v{});
    EXPECT_EQ(t.subscription_count(), 0u);
}

TEST(TopicTree, ManySubscribersOnOneChannel) {
    topic_tree t;
    for (std::uint64_t i = 1000; i > 0; --i) t.subscribe(i, "hot.channel", 0);
    const auto r = ids(t, "hot.channel");
    ASSERT_EQ(r.size(), 1000u);
    EXPECT_TRUE(std::is_sorted(r.begin(), r.end()));
}

TEST(TopicTree, APatternsFirstSubscriberAndItsLastAreInterestTransitions) {
    topic_tree t;
    EXPECT_TRUE(t.subscribe(1, "a.*", 0).interest) << "the first subscriber of a.*";
    EXPECT_FALSE(t.subscribe(2, "a.*", 0).interest) << "a.* had one";
    EXPECT_FALSE(t.subscribe(2, "a.*", 1).interest) << "a tag update changes nothing";
    EXPECT_TRUE(t.subscribe(2, "a.b", 0).interest) << "another pattern, even one a.* covers";
    EXPECT_FALSE(t.unsubscribe(1, "a.*").interest) << "2 still has a.*";
    EXPECT_FALSE(t.unsubscribe(1, "a.*").interest) << "nothing to remove";
    EXPECT_TRUE(t.unsubscribe(2, "a.*").interest) << "the last subscriber of a.* left";
    EXPECT_TRUE(t.unsubscribe(2, "a.b").interest);
    EXPECT_TRUE(t.subscribe(3, "a.*", 0).interest) << "a.* has a first subscriber again";
}

}  // namespace
}  // namespace hyperstreams::router
