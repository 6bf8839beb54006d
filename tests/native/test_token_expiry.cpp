// When the backend client asks its token provider again: the `exp` claim of
// a JWT, read without verifying (native/backend/token_expiry.hpp), wherever
// it sits among the claims, and nothing from what is not a JWT.
#include <gtest/gtest.h>

#include "token_expiry.hpp"
#include "token_maker.hpp"

namespace {

using hyperstreams::backend::detail::token_expiry;
using hyperstreams::testing::base64url;

std::string jwt_with_claims(const std::string& claims) {
    return base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(claims) + ".c2lnbmF0dXJl";
}

TEST(TokenExpiry, ReadsExpAfterClaimsOfEveryKind) {
    EXPECT_EQ(token_expiry(jwt_with_claims(R"({"exp":1700000000})")), 1700000000);
    EXPECT_EQ(token_expiry(jwt_with_claims(
                  R"({"sub":"a \"quoted\" exp","hs":{"publish":["a.>"],"exp":1},"n":[1,{"exp":2}],"ok":true,"exp" : 1800000000.5})")),
              1800000000);
    EXPECT_EQ(token_expiry(hyperstreams::testing::sign_hs256("secret-secret-secret-secret-secret-",
                                                             {{"sub", "s"}, {"exp", 1900000000}, {"zz", "later"}})),
              1900000000);
}

TEST(TokenExpiry, NothingFromWhatIsNotAJwtWithAnIntegerExp) {
    EXPECT_FALSE(token_expiry(""));
    EXPECT_FALSE(token_expiry("not a token"));
    EXPECT_FALSE(token_expiry("a.b"));
    EXPECT_FALSE(token_expiry("a.!!!.c"));
    EXPECT_FALSE(token_expiry(jwt_with_claims(R"({"sub":"s"})")));
    EXPECT_FALSE(token_expiry(jwt_with_claims(R"({"hs":{"exp":1}})"))) << "only a top-level exp counts";
    EXPECT_FALSE(token_expiry(jwt_with_claims(R"({"exp":"tomorrow"})")));
    EXPECT_FALSE(token_expiry(jwt_with_claims(R"({"exp":-5})")));
    EXPECT_FALSE(token_expiry(jwt_with_claims(R"({"sub":"unterminated)")));
    EXPECT_FALSE(token_expiry(jwt_with_claims(R"(["exp",1])")));
}

}  // namespace
