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

// ---------------------------------------------------------------- what is wrong

TEST(NameProblem, ValidNamesHaveNone) {
    for (std::string_view c : {"a", "factory.L1.M1.telemetry", "#.$.%"}) {
        EXPECT_EQ(hs::channel_problem(c), "") << c;
        EXPECT_EQ(hs::pattern_problem(c), "") << c;
    }
    for (std::string_view p : {"*", ">", "factory.*.*.telemetry", "a.*.c.>"})
        EXPECT_EQ(hs::pattern_problem(p), "") << p;
}

TEST(NameProblem, SaysWhatIsWrongWithAChannel) {
    EXPECT_EQ(hs::channel_problem(""), "is empty");
    EXPECT_EQ(hs::channel_problem(std::string(256, 'a')), "is over 255 bytes");
    for (std::string_view c : {"a..b", ".a", "a.", "."})
        EXPECT_EQ(hs::channel_problem(c), "has an empty token (two dots in a row, or a dot at an end)") << c;
    for (std::string_view c : {"factory.*.telemetry", "a.>", "a*"})
        EXPECT_EQ(hs::channel_problem(c),
                  "has a wildcard ('*' or '>'): a channel is an exact name, wildcards are for subscribing")
            << c;
    for (std::string_view c : {"a b", "a/b", "caf\xC3\xA9", "a\tb"})
        EXPECT_EQ(hs::channel_problem(c),
                  "has a character no token may hold (a space, '/', a control or non-ASCII byte)")
            << c;
}

TEST(NameProblem, SaysWhatIsWrongWithAPattern) {
    EXPECT_EQ(hs::pattern_problem(""), "is empty");
    EXPECT_EQ(hs::pattern_problem("a..*"), "has an empty token (two dots in a row, or a dot at an end)");
    for (std::string_view p : {"a.>.b", ">.>"})
        EXPECT_EQ(hs::pattern_problem(p), "has '>' before its last token ('>' matches all the rest, so it comes last)")
            << p;
    for (std::string_view p : {"a*", "factory.*x", "a.b>", "**"})
        EXPECT_EQ(hs::pattern_problem(p), "has '*' or '>' inside a token (a wildcard is a whole token)") << p;
}

TEST(NameProblem, AgreesWithTheValidityChecks) {
    for (std::string_view n : {"", ".", "a..b", "a.*", "a.>", "a.>.b", "a*", "a b", "*", ">", "a.b",
                               "*.b.>", "a/b", "x.*.y"}) {
        EXPECT_EQ(hs::channel_problem(n).empty(), hs::is_valid_channel(n)) << n;
        EXPECT_EQ(hs::pattern_problem(n).empty(), hs::is_valid_pattern(n)) << n;
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
