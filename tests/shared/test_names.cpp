// Channel names, subscription patterns (NATS-style `*` and `>`) and
// "service/method" addresses.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/names.hpp"

namespace hs = hyperstreams;

namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------- channels

TEST(Channel, ValidNames) {
    for (std::string_view c :
         {"a", "factory", "factory.line1.m3.telemetry", "A-b_c:d~e!f", "x.y.z.1.2.3", "#.$.%",
          "s-41f0", "0.0"}) {
        EXPECT_TRUE(hs::is_valid_channel(c)) << c;
    }
}

TEST(Channel, InvalidNames) {
    for (std::string_view c :
         {"", ".", "..", "a.", ".a", "a..b", "a b", " a", "a ", "a*", "*", ">", "a.*", "a.>",
          "a/b", "service/method", "a\tb", "a\nb", "caf\xC3\xA9", "a\x7F"}) {
        EXPECT_FALSE(hs::is_valid_channel(c)) << c;
    }
    EXPECT_FALSE(hs::is_valid_channel("a\0b"s));
}

TEST(Channel, TokensAreAtMost255Bytes) {
    const std::string longest(255, 't');
    EXPECT_TRUE(hs::is_valid_channel(longest));
    EXPECT_TRUE(hs::is_valid_channel("a." + longest + ".b"));
    EXPECT_FALSE(hs::is_valid_channel(longest + "t"));
    EXPECT_FALSE(hs::is_valid_channel("a." + longest + "t"));
}

// ---------------------------------------------------------------- patterns

TEST(Pattern, ValidPatterns) {
    for (std::string_view p : {"a", "a.b.c", "*", ">", "a.*", "a.>", "*.*", "*.>", "a.*.c.>",
                               "factory.*.m3.>", "*.b.*"}) {
        EXPECT_TRUE(hs::is_valid_pattern(p)) << p;
    }
}

TEST(Pattern, InvalidPatterns) {
    for (std::string_view p :
         {"", ".", "a.", ".a", "a..b", "a.>.b", ">.a", ">.>", "a*", "*a", "a.b*", "**", ">>",
          "a>", "a.*b", " ", "a.*.", "a/b", "a.>."}) {
        EXPECT_FALSE(hs::is_valid_pattern(p)) << p;
    }
}

TEST(Pattern, EveryValidChannelIsAValidPatternMatchingItself) {
    for (std::string_view c : {"a", "factory.line1.m3.telemetry", "x.y"}) {
        ASSERT_TRUE(hs::is_valid_channel(c));
        EXPECT_TRUE(hs::is_valid_pattern(c)) << c;
        EXPECT_TRUE(hs::pattern_matches(c, c)) << c;
    }
}

struct match_case {
    std::string_view pattern;
    std::string_view channel;
    bool matches;
};

class Matching : public testing::TestWithParam<match_case> {};

TEST_P(Matching, FollowsTheNatsConvention) {
    const match_case& m = GetParam();
    ASSERT_TRUE(hs::is_valid_pattern(m.pattern)) << m.pattern;
    ASSERT_TRUE(hs::is_valid_channel(m.channel)) << m.channel;
    EXPECT_EQ(hs::pattern_matches(m.pattern, m.channel), m.matches)
        << m.pattern << " vs " << m.channel;
}

INSTANTIATE_TEST_SUITE_P(
    Names, Matching,
    testing::Values(
        // literal
        match_case{"a.b", "a.b", true}, match_case{"a.b", "a.c", false},
        match_case{"a.b", "a.bc", false}, match_case{"a.bc", "a.b", false},
        match_case{"a.b", "a", false}, match_case{"a", "a.b", false},
        match_case{"a.b", "a.b.c", false}, match_case{"ab", "a", false},
        // `*`: exactly one token
        match_case{"*", "a", true}, match_case{"*", "a.b", false},
        match_case{"a.*", "a.b", true}, match_case{"a.*", "a", false},
        match_case{"a.*", "a.b.c", false}, match_case{"*.b", "a.b", true},
        match_case{"*.b", "a.c", false}, match_case{"a.*.c", "a.x.c", true},
        match_case{"a.*.c", "a.x.d", false}, match_case{"a.*.c", "a.c", false},
        match_case{"*.*", "a.b", true}, match_case{"*.*", "a", false},
        match_case{"*.*", "a.b.c", false},
        // `>`: one or more trailing tokens
        match_case{">", "a", true}, match_case{">", "a.b.c", true},
        match_case{"a.>", "a.b", true}, match_case{"a.>", "a.b.c.d", true},
        match_case{"a.>", "a", false}, match_case{"a.>", "b.c", false},
        match_case{"a.b.>", "a.b", false}, match_case{"a.b.>", "a.bb.c", false},
        // both
        match_case{"*.>", "a", false}, match_case{"*.>", "a.b", true},
        match_case{"*.b.>", "x.b.y.z", true}, match_case{"*.b.>", "x.c.y", false},
        match_case{"factory.*.m3.>", "factory.line1.m3.telemetry", true},
        match_case{"factory.*.m3.>", "factory.line1.m4.telemetry", false},
        match_case{"factory.*.m3.>", "factory.line1.m3", false}));

// ---------------------------------------------------------------- service/method

TEST(ServiceMethod, SplitsAtTheSlash) {
    hs::service_method sm;
    ASSERT_TRUE(hs::split_service_method("inventory/lookup", sm));
    EXPECT_EQ(sm.service, "inventory");
    EXPECT_EQ(sm.method, "lookup");
}

TEST(ServiceMethod, TheServiceMayHaveDots) {
    hs::service_method sm;
    ASSERT_TRUE(hs::split_service_method("factory.history/replay", sm));
    EXPECT_EQ(sm.service, "factory.history");
    EXPECT_EQ(sm.method, "replay");
}

TEST(ServiceMethod, TheViewsPointIntoTheName) {
    const std::string name = "svc/m";
    hs::service_method sm;
    ASSERT_TRUE(hs::split_service_method(name, sm));
    EXPECT_EQ(sm.service.data(), name.data());
    EXPECT_EQ(sm.method.data(), name.data() + 4);
}

TEST(ServiceMethod, RejectsWhatIsNotServiceSlashMethod) {
    for (std::string_view name :
         {"", "/", "a", "a/", "/b", "a/b/c", "a//b", "a./b", ".a/b", "a..b/c", "a/b.c", "a*/b",
          "a/*", "a/>", "a b/c", "a/b c", "*/b"}) {
        hs::service_method sm{"untouched", "untouched"};
        EXPECT_FALSE(hs::split_service_method(name, sm)) << name;
        EXPECT_EQ(sm.service, "untouched") << name;
        EXPECT_EQ(sm.method, "untouched") << name;
    }
}

}  // namespace
