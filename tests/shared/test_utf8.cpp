// UTF-8 checks of the protocol's strings, and cutting a text between
// characters.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "hyperstreams/utf8.hpp"

namespace hs = hyperstreams;

namespace {

TEST(Utf8, WellFormedTextIsValid) {
    using namespace std::string_view_literals;
    for (std::string_view s : {""sv, "plain ascii"sv, "caf\xC3\xA9"sv, "\xE5\xB7\xA5\xE5\xA0\xB4"sv,  // 工場
                               "\xF0\x9F\x8F\xAD"sv,                                     // U+1F3ED
                               "\xEF\xBF\xBF"sv, "\xF4\x8F\xBF\xBF"sv, "\0"sv}) {
        EXPECT_TRUE(hs::is_valid_utf8(s)) << s;
    }
}

TEST(Utf8, EveryMalformedFormIsInvalid) {
    for (std::string_view s : {
             "\x80",              // a continuation byte alone
             "\xC3",              // truncated two-byte character
             "\xE5\xB7",          // truncated three-byte character
             "\xF0\x9F\x8F",      // truncated four-byte character
             "\xC0\xAF",          // overlong '/'
             "\xC1\xBF",          // overlong
             "\xE0\x80\xAF",      // overlong three-byte
             "\xF0\x80\x80\xAF",  // overlong four-byte
             "\xED\xA0\x80",      // a surrogate (U+D800)
             "\xF4\x90\x80\x80",  // past U+10FFFF
             "\xF5\x80\x80\x80",  // lead byte past F4
             "\xFF",              // never in UTF-8
             "ok\xE5\xB7X",       // a character cut by an ASCII byte
         }) {
        EXPECT_FALSE(hs::is_valid_utf8(s)) << testing::PrintToString(std::string(s));
    }
}

TEST(Utf8, APrefixIsCutBetweenCharacters) {
    // 43 three-byte characters: 129 bytes, over a 128-byte limit in the
    // middle of the 43rd character.
    std::string name;
    for (int i = 0; i < 43; ++i) name += "\xE5\xB7\xA5";
    const std::string_view cut = hs::utf8_prefix(name, 128);
    EXPECT_EQ(cut.size(), 126u);
    EXPECT_TRUE(hs::is_valid_utf8(cut));

    EXPECT_EQ(hs::utf8_prefix(name, 129), name) << "what fits is not cut";
    EXPECT_EQ(hs::utf8_prefix("abc", 2), "ab");
    EXPECT_EQ(hs::utf8_prefix("\xF0\x9F\x8F\xAD", 3), "") << "a character that does not fit whole is left out";
    EXPECT_EQ(hs::utf8_prefix("a\xF0\x9F\x8F\xAD", 4), "a");
}

}  // namespace
