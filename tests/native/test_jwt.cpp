// Token verification (jwt.hpp), the rights in the hs claim (grants.hpp) and
// the authorizer over both (token_authorizer.hpp): every allowed and refused
// case, with tokens signed by OpenSSL at test time.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>

#include "grants.hpp"
#include "hyperstreams/errc.hpp"
#include "hyperstreams/names.hpp"
#include "jwt.hpp"
#include "token_authorizer.hpp"
#include "token_maker.hpp"

namespace hyperstreams::router {
namespace {

using nlohmann::json;
using testing::sign_es256;
using testing::sign_hs256;
using testing::sign_rs256;
using testing::unsigned_token;

const std::string secret = "0123456789abcdef0123456789abcdef-test";
constexpr std::int64_t now_s = 1'800'000'000;

json claims(std::int64_t exp = now_s + 60) { return {{"sub", "alice"}, {"exp", exp}}; }

jwt::verifier hs_verifier() {
    jwt::verifier v;
    v.set_hs256_secret(secret);
    return v;
}

TEST(Base64Url, RoundTripsEveryLength) {
    std::string bytes;
    for (int n = 0; n < 40; ++n) {
        std::string back;
        ASSERT_TRUE(jwt::base64url_decode(jwt::base64url_encode(bytes), back));
        EXPECT_EQ(back, bytes);
        EXPECT_EQ(jwt::base64url_encode(bytes), testing::base64url(bytes));
        bytes += static_cast<char>(n * 37 + 200);
    }
    std::string out;
    EXPECT_FALSE(jwt::base64url_decode("a+b/", out));  // standard alphabet, not url
    EXPECT_FALSE(jwt::base64url_decode("abcde", out));  // impossible length
    EXPECT_FALSE(jwt::base64url_decode("YR", out));     // non-zero trailing bits
}

TEST(Jwt, Hs256TokenIsAcceptedAndItsClaimsReturned) {
    const auto r = hs_verifier().verify(sign_hs256(secret, claims()), now_s);
    EXPECT_EQ(r.why, jwt::failure::none);
    EXPECT_EQ(r.exp, now_s + 60);
    EXPECT_EQ(json::parse(r.claims_json)["sub"], "alice");
}

TEST(Jwt, Rs256AndEs256TokensAreCheckedWithThePublicKey) {
    const auto rsa = testing::make_rsa_key();
    const auto ec = testing::make_ec_key();
    jwt::verifier v;
    ASSERT_EQ(v.set_public_key_pem(rsa.public_key), "");
    ASSERT_EQ(v.set_public_key_pem(ec.public_key), "");
    EXPECT_EQ(v.verify(sign_rs256(rsa.private_key, claims()), now_s).why, jwt::failure::none);
    EXPECT_EQ(v.verify(sign_es256(ec.private_key, claims()), now_s).why, jwt::failure::none);

    // Signed by another key of the same kind.
    EXPECT_EQ(v.verify(sign_rs256(testing::make_rsa_key().private_key, claims()), now_s).why,
              jwt::failure::bad_signature);
    EXPECT_EQ(v.verify(sign_es256(testing::make_ec_key().private_key, claims()), now_s).why,
              jwt::failure::bad_signature);
    // No HS256 secret configured: HS256 is not an accepted algorithm at all.
    EXPECT_EQ(v.verify(sign_hs256(secret, claims()), now_s).why, jwt::failure::unsupported_alg);
}

TEST(Jwt, HmacWithThePublicKeyAsSecretIsRefused) {
    const auto rsa = testing::make_rsa_key();
    jwt::verifier v;
    ASSERT_EQ(v.set_public_key_pem(rsa.public_key), "");
    EXPECT_EQ(v.verify(sign_hs256(rsa.public_key, claims()), now_s).why, jwt::failure::unsupported_alg);
}

TEST(Jwt, WeakOrUnknownPublicKeysAreRefused) {
    jwt::verifier v;
    EXPECT_NE(v.set_public_key_pem("not a key"), "");
    EXPECT_NE(v.set_public_key_pem(testing::make_rsa_key(1024).public_key), "");
    EXPECT_FALSE(v.has_keys());
}

TEST(Jwt, AlgNoneIsRefused) {
    EXPECT_EQ(hs_verifier().verify(unsigned_token(claims()), now_s).why, jwt::failure::unsupported_alg);
    // Even when it carries a signature-looking part.
    EXPECT_EQ(hs_verifier().verify(unsigned_token(claims()) + "AAAA", now_s).why, jwt::failure::unsupported_alg);
}

TEST(Jwt, WrongSecretAndTamperedClaimsFailTheSignature) {
    EXPECT_EQ(hs_verifier().verify(sign_hs256(secret + "x", claims()), now_s).why, jwt::failure::bad_signature);
    std::string token = sign_hs256(secret, claims());
    const std::size_t dot1 = token.find('.'), dot2 = token.rfind('.');
    json other = claims();
    other["sub"] = "mallory";
    token = token.substr(0, dot1 + 1) + testing::base64url(other.dump()) + token.substr(dot2);
    EXPECT_EQ(hs_verifier().verify(token, now_s).why, jwt::failure::bad_signature);
}

TEST(Jwt, MalformedTokensAreRefused) {
    const auto v = hs_verifier();
    for (const std::string& t : {std::string(), std::string("abc"), std::string("a.b"), std::string("a.b.c.d"),
                                 std::string("!!.e30.AAAA"), testing::base64url("[1]") + ".e30.",
                                 testing::base64url("{\"typ\":\"JWT\"}") + ".e30."})
        EXPECT_EQ(v.verify(t, now_s).why, jwt::failure::malformed) << t;
    // Claims that are not an object, under a good signature.
    EXPECT_EQ(v.verify(sign_hs256(secret, json::array({1, 2})), now_s).why, jwt::failure::malformed);
}

TEST(Jwt, ExpiryAndNotBeforeAreEnforced) {
    const auto v = hs_verifier();
    EXPECT_EQ(v.verify(sign_hs256(secret, claims(now_s)), now_s).why, jwt::failure::expired);
    EXPECT_EQ(v.verify(sign_hs256(secret, claims(now_s - 1)), now_s).why, jwt::failure::expired);
    EXPECT_EQ(v.verify(sign_hs256(secret, {{"sub", "a"}}), now_s).why, jwt::failure::missing_exp);
    EXPECT_EQ(v.verify(sign_hs256(secret, {{"sub", "a"}, {"exp", "soon"}}), now_s).why, jwt::failure::bad_time_claim);
    json early = claims();
    early["nbf"] = now_s + 30;
    EXPECT_EQ(v.verify(sign_hs256(secret, early), now_s, 5).why, jwt::failure::not_yet_valid);
    early["nbf"] = now_s + 3;
    EXPECT_EQ(v.verify(sign_hs256(secret, early), now_s, 5).why, jwt::failure::none);
}

// exp, nbf and iat at the ends of every range: each value is accepted (with
// the exp it stands for) or refused with a named failure.
constexpr std::int64_t max_s = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t min_s = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t year_3000 = 32'503'680'000;
constexpr std::int64_t year_9999 = 253'402'300'799;  // 9999-12-31T23:59:59Z
constexpr std::uint64_t two_to_63 = std::uint64_t{1} << 63;
constexpr std::int64_t two_to_53 = std::int64_t{1} << 53;

struct time_case {
    json value;
    jwt::failure why;
    std::int64_t exp = 0;  // for exp cases that pass: the exp it counts as
};

TEST(Jwt, ExpAtTheExtremesIsExpiredAcceptedOrNamed) {
    const std::vector<time_case> cases{
        {0, jwt::failure::expired},
        {-1, jwt::failure::expired},
        {min_s, jwt::failure::expired},
        {-1e300, jwt::failure::expired},
        {static_cast<double>(now_s) + 0.5, jwt::failure::expired},  // the fraction is dropped
        {static_cast<double>(now_s) + 60.9, jwt::failure::none, now_s + 60},
        {two_to_53, jwt::failure::none, two_to_53},
        {year_3000, jwt::failure::none, year_3000},
        {year_9999, jwt::failure::none, year_9999},
        {max_s, jwt::failure::none, max_s},
        {two_to_63, jwt::failure::none, max_s},  // beyond int64: the end of the range
        {std::numeric_limits<std::uint64_t>::max(), jwt::failure::none, max_s},
        {1.8446744073709552e19, jwt::failure::none, max_s},
        {1e300, jwt::failure::none, max_s},
        {"1893456000", jwt::failure::bad_time_claim},
        {true, jwt::failure::bad_time_claim},
        {nullptr, jwt::failure::bad_time_claim},
        {json::array({now_s + 60}), jwt::failure::bad_time_claim},
        {json::object(), jwt::failure::bad_time_claim},
    };
    const auto v = hs_verifier();
    for (const time_case& c : cases) {
        const auto r = v.verify(sign_hs256(secret, {{"sub", "a"}, {"exp", c.value}}), now_s);
        EXPECT_EQ(r.why, c.why) << "exp " << c.value.dump() << ": " << jwt::describe(r);
        if (c.why == jwt::failure::none) EXPECT_EQ(r.exp, c.exp) << "exp " << c.value.dump();
        if (c.why == jwt::failure::bad_time_claim) EXPECT_EQ(r.claim, "exp");
    }
}

TEST(Jwt, NotBeforeAtTheExtremesIsValidNotYetValidOrNamed) {
    const std::vector<time_case> cases{
        {0, jwt::failure::none},
        {-1, jwt::failure::none},
        {min_s, jwt::failure::none},
        {-1e300, jwt::failure::none},
        {now_s + 5, jwt::failure::none},  // within the leeway
        {static_cast<double>(now_s) + 5.9, jwt::failure::none},
        {now_s + 6, jwt::failure::not_yet_valid},
        {two_to_53, jwt::failure::not_yet_valid},
        {year_3000, jwt::failure::not_yet_valid},
        {year_9999, jwt::failure::not_yet_valid},
        {max_s, jwt::failure::not_yet_valid},
        {two_to_63, jwt::failure::not_yet_valid},
        {1e300, jwt::failure::not_yet_valid},
        {"now", jwt::failure::bad_time_claim},
        {nullptr, jwt::failure::bad_time_claim},
    };
    const auto v = hs_verifier();
    for (const time_case& c : cases) {
        json claims_with_nbf = claims();
        claims_with_nbf["nbf"] = c.value;
        const auto r = v.verify(sign_hs256(secret, claims_with_nbf), now_s, 5);
        EXPECT_EQ(r.why, c.why) << "nbf " << c.value.dump() << ": " << jwt::describe(r);
        if (c.why == jwt::failure::bad_time_claim) EXPECT_EQ(r.claim, "nbf");
    }
    // now + leeway at the end of the range does not wrap around.
    json late = {{"sub", "a"}, {"exp", max_s}, {"nbf", max_s}};
    EXPECT_EQ(v.verify(sign_hs256(secret, late), max_s - 3, 5).why, jwt::failure::none);
    EXPECT_EQ(v.verify(sign_hs256(secret, late), max_s - 30, 5).why, jwt::failure::not_yet_valid);
}

TEST(Jwt, IssuedAtIsInformationalButMustBeANumber) {
    const auto v = hs_verifier();
    for (const json& iat : {json(0), json(-1), json(min_s), json(two_to_53), json(two_to_63), json(1e300),
                            json(year_9999), json(static_cast<double>(now_s) + 0.25)}) {
        json c = claims();
        c["iat"] = iat;
        EXPECT_EQ(v.verify(sign_hs256(secret, c), now_s).why, jwt::failure::none) << "iat " << iat.dump();
    }
    for (const json& iat : {json("yesterday"), json(false), json::array()}) {
        json c = claims();
        c["iat"] = iat;
        const auto r = v.verify(sign_hs256(secret, c), now_s);
        EXPECT_EQ(r.why, jwt::failure::bad_time_claim) << "iat " << iat.dump();
        EXPECT_EQ(r.claim, "iat");
        EXPECT_NE(jwt::describe(r).find("iat"), std::string::npos) << jwt::describe(r);
    }
}

TEST(Jwt, CriticalHeaderExtensionsAreRefused) {
    const json header = {{"alg", "HS256"}, {"crit", {"exp"}}};
    EXPECT_EQ(hs_verifier().verify(sign_hs256(secret, claims(), header), now_s).why, jwt::failure::unsupported_alg);
}

// One rule compiled on its own.
bool pattern_covers(std::string_view rule, std::string_view pattern) {
    pattern_set set;
    set.add(rule);
    return set.covers(pattern);
}

bool patterns_overlap(std::string_view rule, std::string_view pattern) {
    pattern_set set;
    set.add(rule);
    return set.overlaps(pattern);
}

TEST(Patterns, CoverMeansEveryChannelOfThePatternIsAllowed) {
    EXPECT_TRUE(pattern_covers("factory.>", "factory.line1.temp"));
    EXPECT_TRUE(pattern_covers("factory.>", "factory.*"));
    EXPECT_TRUE(pattern_covers("factory.>", "factory.>"));
    EXPECT_TRUE(pattern_covers("factory.*.temp", "factory.line1.temp"));
    EXPECT_TRUE(pattern_covers("factory.*.temp", "factory.*.temp"));
    EXPECT_FALSE(pattern_covers("factory.*.temp", "factory.>"));
    EXPECT_FALSE(pattern_covers("factory.line1.temp", "factory.*.temp"));
    EXPECT_FALSE(pattern_covers("factory.>", "factory"));
    EXPECT_FALSE(pattern_covers("factory.*", "factory.a.b"));
    EXPECT_TRUE(pattern_covers(">", "anything.at.all"));
}

TEST(Patterns, OverlapMeansSomeChannelMatchesBoth) {
    EXPECT_TRUE(patterns_overlap("factory.secret.>", "factory.>"));
    EXPECT_TRUE(patterns_overlap("factory.*.temp", "factory.line1.*"));
    EXPECT_TRUE(patterns_overlap("a.b", "a.b"));
    EXPECT_FALSE(patterns_overlap("factory.secret.>", "factory.public.>"));
    EXPECT_FALSE(patterns_overlap("a.*", "a.b.c"));
    EXPECT_FALSE(patterns_overlap("a.>", "a"));
}

// The rules one by one, as the router judged them before they were compiled:
// the oracle the compiled sets must agree with.
std::string_view first_token(std::string_view& rest) {
    const std::size_t dot = rest.find('.');
    const std::string_view token = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    return token;
}

bool one_rule_covers(std::string_view rule, std::string_view pattern) {
    for (;;) {
        if (rule.empty() && pattern.empty()) return true;
        if (rule.empty() || pattern.empty()) return false;
        const std::string_view r = first_token(rule);
        const std::string_view p = first_token(pattern);
        if (r == ">") return true;
        if (p == ">") return false;
        if (r == "*") continue;
        if (p == "*" || r != p) return false;
    }
}

bool one_rule_overlaps(std::string_view rule, std::string_view pattern) {
    for (;;) {
        if (rule.empty() && pattern.empty()) return true;
        if (rule.empty() || pattern.empty()) return false;
        const std::string_view r = first_token(rule);
        const std::string_view p = first_token(pattern);
        if (r == ">" || p == ">") return true;
        if (r == "*" || p == "*" || r == p) continue;
        return false;
    }
}

std::string random_name(std::mt19937& rng, bool wildcards) {
    static const char* const tokens[] = {"a", "b", "c", "*", ">"};
    const std::size_t depth = 1 + rng() % 4;
    std::string name;
    for (std::size_t i = 0; i < depth; ++i) {
        const char* t = tokens[rng() % (wildcards ? (i + 1 == depth ? 5 : 4) : 3)];
        name += (i == 0 ? "" : ".") + std::string(t);
    }
    return name;
}

TEST(PatternSet, AgreesWithEveryRuleJudgedOnItsOwn) {
    std::mt19937 rng(15);
    for (int trial = 0; trial < 300; ++trial) {
        std::vector<std::string> rules(1 + rng() % 8);
        pattern_set set;
        for (std::string& r : rules) {
            r = random_name(rng, true);
            set.add(r);
        }
        for (int q = 0; q < 40; ++q) {
            const std::string channel = random_name(rng, false);
            const std::string pattern = random_name(rng, true);
            auto any = [&](auto judge) {
                return std::any_of(rules.begin(), rules.end(), [&](const std::string& r) { return judge(r); });
            };
            const std::string context = ::testing::PrintToString(rules);
            EXPECT_EQ(set.matches(channel), any([&](const std::string& r) { return pattern_matches(r, channel); }))
                << context << " matching " << channel;
            EXPECT_EQ(set.covers(pattern), any([&](const std::string& r) { return one_rule_covers(r, pattern); }))
                << context << " covering " << pattern;
            EXPECT_EQ(set.overlaps(pattern), any([&](const std::string& r) { return one_rule_overlaps(r, pattern); }))
                << context << " overlapping " << pattern;
        }
    }
}

TEST(AddressRules, ExactAddressesPrefixesAndAnything) {
    address_rules rules;
    EXPECT_FALSE(rules.matches(""));
    rules.add("r1-7-abc");
    rules.add("r2-*");
    rules.add("r2-admin-long-prefix*");
    EXPECT_TRUE(rules.matches("r1-7-abc"));
    EXPECT_FALSE(rules.matches("r1-7-abcd"));
    EXPECT_FALSE(rules.matches("r1-7"));
    EXPECT_TRUE(rules.matches("r2-"));
    EXPECT_TRUE(rules.matches("r2-5-x"));
    EXPECT_FALSE(rules.matches("r2"));
    EXPECT_FALSE(rules.matches("r3-5-x"));
    rules.add("*");
    EXPECT_TRUE(rules.matches("r3-5-x"));
    EXPECT_TRUE(rules.matches(""));
}

grants parsed(const json& hs) {
    grants g;
    EXPECT_EQ(parse_grants(hs, g), "") << hs.dump();
    return g;
}

TEST(Grants, AllowAndDenyForEveryRight) {
    const grants g = parsed({{"subscribe", {"factory.>"}},
                             {"publish", {"factory.*.cmd"}},
                             {"call", {"orders", "inventory/count", "billing.*/get"}},
                             {"send", {"r1-*"}},
                             {"register", {"orders.>"}},
                             {"broadcast", true},
                             {"deny",
                              {{"subscribe", {"factory.secret.>"}},
                               {"publish", {"factory.m9.cmd"}},
                               {"call", {"orders/delete"}},
                               {"send", {"r1-admin*"}},
                               {"register", {"orders.admin"}}}}});
    EXPECT_TRUE(g.may_subscribe("factory.line1.temp"));
    EXPECT_TRUE(g.may_subscribe("factory.public.>"));
    EXPECT_FALSE(g.may_subscribe("factory.>"));  // could receive factory.secret.*
    EXPECT_FALSE(g.may_subscribe("factory.secret.key"));
    EXPECT_FALSE(g.may_subscribe("office.>"));

    EXPECT_TRUE(g.may_publish("factory.m3.cmd"));
    EXPECT_FALSE(g.may_publish("factory.m9.cmd"));
    EXPECT_FALSE(g.may_publish("factory.m3.temp"));

    EXPECT_TRUE(g.may_call("orders", "get"));
    EXPECT_FALSE(g.may_call("orders", "delete"));
    EXPECT_TRUE(g.may_call("inventory", "count"));
    EXPECT_FALSE(g.may_call("inventory", "reset"));
    EXPECT_TRUE(g.may_call("billing.eu", "get"));
    EXPECT_FALSE(g.may_call("billing.eu", "put"));
    EXPECT_FALSE(g.may_call("shipping", "get"));

    EXPECT_TRUE(g.may_send("r1-5-abc"));
    EXPECT_FALSE(g.may_send("r1-admin-1"));
    EXPECT_FALSE(g.may_send("r2-5-abc"));

    EXPECT_TRUE(g.may_register("orders.eu"));
    EXPECT_FALSE(g.may_register("orders.admin"));
    EXPECT_FALSE(g.may_register("orders"));

    EXPECT_TRUE(g.may_broadcast());
    EXPECT_FALSE(parsed({{"broadcast", true}, {"deny", {{"broadcast", true}}}}).may_broadcast());
}

// A decision is made for every publish, under the core's lock: with 20,000
// rules it must cost about what it costs with 10, not 2,000 times as much.
TEST(Grants, ADecisionCostsAboutTheSameWithTenRulesOrTwentyThousand) {
    auto make = [](int tenants) {
        json allow = json::array(), deny = json::array();
        for (int i = 0; i < tenants; ++i) {
            allow.push_back("tenant" + std::to_string(i) + ".>");
            deny.push_back("tenant" + std::to_string(i) + ".secret.*");
        }
        return parsed({{"publish", allow}, {"subscribe", allow}, {"deny", {{"publish", deny}, {"subscribe", deny}}}});
    };
    auto names = [](int tenants) {
        std::vector<std::string> out;
        for (int i = 0; i < 200; ++i) {
            const std::string tenant = "tenant" + std::to_string(i * 7919 % tenants);
            out.push_back(tenant + (i % 4 == 0 ? ".secret.key" : ".line" + std::to_string(i) + ".temp"));
        }
        return out;
    };
    // The fastest of several rounds: other processes only ever make a round slower.
    auto cost = [](const grants& g, const std::vector<std::string>& channels) {
        auto best = std::chrono::nanoseconds::max();
        for (int round = 0; round < 7; ++round) {
            const auto start = std::chrono::steady_clock::now();
            std::size_t allowed = 0;
            for (const std::string& c : channels) allowed += g.may_publish(c) + g.may_subscribe(c);
            best = std::min(best, std::chrono::steady_clock::now() - start);
            EXPECT_EQ(allowed, channels.size() / 4 * 3 * 2);
        }
        return best;
    };
    const grants few = make(10), many = make(20000);
    const auto few_cost = cost(few, names(10));
    const auto many_cost = cost(many, names(20000));
    EXPECT_LT(many_cost, few_cost * 10) << "10 rules: " << few_cost.count() << " ns, 20,000 rules: "
                                        << many_cost.count() << " ns for 200 publishes and subscribes";
}

TEST(Grants, NothingGrantedMeansNothingAllowed) {
    const grants g = parsed(json::object());
    EXPECT_FALSE(g.may_subscribe("a"));
    EXPECT_FALSE(g.may_publish("a"));
    EXPECT_FALSE(g.may_call("a", "b"));
    EXPECT_FALSE(g.may_send("x"));
    EXPECT_FALSE(g.may_broadcast());
    EXPECT_FALSE(g.may_register("a"));
}

TEST(Grants, TyposAreErrorsNotSilentRights) {
    grants g;
    EXPECT_NE(parse_grants({{"subscribes", {"a"}}}, g), "");
    EXPECT_NE(parse_grants({{"subscribe", "a"}}, g), "");
    EXPECT_NE(parse_grants({{"subscribe", {"a..b"}}}, g), "");
    EXPECT_NE(parse_grants({{"broadcast", "yes"}}, g), "");
    EXPECT_NE(parse_grants({{"call", {"a/b/c"}}}, g), "");
    EXPECT_NE(parse_grants({{"deny", {{"deny", json::object()}}}}, g), "");
    EXPECT_NE(parse_grants(json::array(), g), "");
}

// A backend's right to subscribe other connections: covered as a subscribe
// is, deny overlapping.
TEST(Grants, SubscribeClientsCoversPatternsAndDenyWins) {
    const grants g = parsed({{"subscribe_clients", {"orders.>"}}, {"deny", {{"subscribe_clients", {"orders.admin.>"}}}}});
    EXPECT_TRUE(g.may_subscribe_clients("orders.alice.>"));
    EXPECT_TRUE(g.may_subscribe_clients("orders.alice.*"));
    EXPECT_FALSE(g.may_subscribe_clients("orders.*.new")) << "could reach orders.admin.new";
    EXPECT_FALSE(g.may_subscribe_clients("orders.>")) << "could reach orders.admin.*";
    EXPECT_FALSE(g.may_subscribe_clients("news.>"));
    EXPECT_FALSE(g.may_subscribe("orders.alice.>")) << "a separate right";
    EXPECT_FALSE(parsed(json::object()).may_subscribe_clients("a"));
}

// Channels subscribed at hello are kept in order, and each must be one the
// claim may subscribe to: a typo never subscribes.
TEST(Grants, ChannelsMustBeOnesTheClaimMaySubscribeTo) {
    const grants g = parsed({{"subscribe", {"orders.>"}}, {"channels", {"orders.alice.>", "orders.*.new"}}});
    EXPECT_EQ(g.channels, (std::vector<std::string>{"orders.alice.>", "orders.*.new"}));
    grants bad;
    EXPECT_EQ(parse_grants({{"subscribe", {"orders.alice.>"}}, {"channels", {"orders.bob.>"}}}, bad),
              "channels: 'orders.bob.>' is not one this claim may subscribe to");
    EXPECT_NE(parse_grants({{"channels", {"orders.bob.>"}}}, bad), "") << "nothing to subscribe with";
    // The deny comes after the channels in the claim, and still counts.
    EXPECT_EQ(parse_grants({{"channels", {"orders.>"}}, {"subscribe", {">"}}, {"deny", {{"subscribe", {"orders.x"}}}}},
                           bad),
              "channels: 'orders.>' is not one this claim may subscribe to");
    EXPECT_NE(parse_grants({{"subscribe", {">"}}, {"channels", {"a..b"}}}, bad), "");
    EXPECT_NE(parse_grants({{"subscribe", {">"}}, {"deny", {{"channels", {"a"}}}}}, bad), "") << "not a deny rule";
}

struct authorizer_fixture : ::testing::Test {
    std::int64_t clock = now_s;
    std::unique_ptr<token_authorizer> auth;

    void make(std::optional<grants> anonymous = std::nullopt, std::uint32_t per_subject = 0,
              std::size_t max_token_bytes = 16384, std::size_t max_rules = 1024) {
        token_policy p;
        p.keys.set_hs256_secret(secret);
        if (anonymous) p.anonymous = std::make_shared<const grants>(std::move(*anonymous));
        p.connections_per_subject = per_subject;
        p.max_token_bytes = max_token_bytes;
        p.max_rules = max_rules;
        p.unix_now = [this] { return clock; };
        auth = std::make_unique<token_authorizer>(std::move(p));
    }
    static principal conn(std::uint64_t id) {
        principal p;
        p.connection = id;
        return p;
    }
    static std::string token(std::string sub, const json& hs, std::int64_t exp = now_s + 60) {
        return sign_hs256(secret, {{"sub", std::move(sub)}, {"exp", exp}, {"hs", hs}});
    }
};

using TokenAuthorizer = authorizer_fixture;

TEST_F(TokenAuthorizer, RefusalsCarryTheirNamedCodes) {
    make();
    EXPECT_EQ(auth->admit(conn(1), ""), errc::unauthorized);
    EXPECT_EQ(auth->admit(conn(1), "garbage"), errc::unauthorized);
    EXPECT_EQ(auth->admit(conn(1), unsigned_token(claims())), errc::unauthorized);
    EXPECT_EQ(auth->admit(conn(1), token("a", json::object(), now_s - 1)), errc::token_expired);
    EXPECT_EQ(auth->admit(conn(1), sign_hs256(secret, {{"exp", now_s + 60}})), errc::unauthorized);
    const verdict refused = auth->admit(conn(1), token("a", {{"subscribe", "x"}}));
    EXPECT_EQ(refused, errc::unauthorized);
    EXPECT_NE(refused.reason, "");
}

TEST_F(TokenAuthorizer, TheTokenGrantsItsRightsToItsConnectionOnly) {
    make();
    ASSERT_FALSE(auth->admit(conn(1), token("alice", {{"subscribe", {"a.>"}}, {"publish", {"a.x"}}})));
    ASSERT_FALSE(auth->admit(conn(2), token("bob", json::object())));
    EXPECT_FALSE(auth->can_subscribe(conn(1), "a.b"));
    EXPECT_FALSE(auth->can_publish(conn(1), "a.x"));
    EXPECT_EQ(auth->can_subscribe(conn(2), "a.b"), errc::forbidden);
    EXPECT_EQ(auth->can_publish(conn(2), "a.x"), errc::forbidden);
    EXPECT_EQ(auth->can_publish(conn(3), "a.x"), errc::forbidden);  // never admitted
    EXPECT_EQ(auth->token_lifetime(conn(1)), std::chrono::milliseconds(60000));
}

TEST_F(TokenAuthorizer, AFarFutureExpLivesTheLongestLifetimeAndNoLonger) {
    make();
    constexpr std::int64_t year_2100 = 4'102'444'800;
    ASSERT_FALSE(auth->admit(conn(1), token("a", json::object(), year_2100)));
    EXPECT_EQ(auth->token_lifetime(conn(1)), std::chrono::seconds(year_2100 - now_s));
    for (const json& exp : {json(year_3000), json(year_9999), json(max_s), json(two_to_63), json(1e300)}) {
        const std::string far = sign_hs256(secret, {{"sub", "a"}, {"exp", exp}});
        const verdict v = auth->refresh(conn(1), far);
        ASSERT_FALSE(v) << "exp " << exp.dump() << ": " << v.reason;
        EXPECT_EQ(auth->token_lifetime(conn(1)), longest_token_lifetime) << "exp " << exp.dump();
    }
    clock = max_s - 10;  // a clock at the end of the range: what is left, without overflow
    EXPECT_EQ(auth->token_lifetime(conn(1)), std::chrono::seconds(10));
    clock = max_s;
    EXPECT_EQ(auth->token_lifetime(conn(1)), std::chrono::milliseconds(0));
}

TEST_F(TokenAuthorizer, ATimeClaimThatIsNotANumberIsUnauthorizedAndSaysWhich) {
    make();
    verdict v = auth->admit(conn(1), sign_hs256(secret, {{"sub", "a"}, {"exp", "2030-01-01"}}));
    EXPECT_EQ(v, errc::unauthorized);
    EXPECT_NE(v.reason.find("exp"), std::string_view::npos) << v.reason;
    v = auth->admit(conn(1), sign_hs256(secret, {{"sub", "a"}, {"exp", now_s + 60}, {"nbf", true}}));
    EXPECT_EQ(v, errc::unauthorized);
    EXPECT_NE(v.reason.find("nbf"), std::string_view::npos) << v.reason;
}

TEST_F(TokenAuthorizer, AnonymousConnectionsGetTheConfiguredRights) {
    make(parsed({{"subscribe", {"public.>"}}}));
    ASSERT_FALSE(auth->admit(conn(1), ""));
    EXPECT_FALSE(auth->can_subscribe(conn(1), "public.news"));
    EXPECT_EQ(auth->can_subscribe(conn(1), "private.x"), errc::forbidden);
    EXPECT_EQ(auth->token_lifetime(conn(1)), std::nullopt);
}

TEST_F(TokenAuthorizer, RefreshReplacesTheRightsAndTheExpiryButNotTheSubject) {
    make();
    ASSERT_FALSE(auth->admit(conn(1), token("alice", {{"publish", {"a"}}})));
    clock += 50;
    ASSERT_FALSE(auth->refresh(conn(1), token("alice", {{"publish", {"b"}}}, clock + 100)));
    EXPECT_EQ(auth->can_publish(conn(1), "a"), errc::forbidden);
    EXPECT_FALSE(auth->can_publish(conn(1), "b"));
    EXPECT_EQ(auth->token_lifetime(conn(1)), std::chrono::milliseconds(100000));
    EXPECT_EQ(auth->refresh(conn(1), token("mallory", {{"publish", {">"}}})), errc::forbidden);
    EXPECT_EQ(auth->refresh(conn(1), token("alice", json::object(), clock - 1)), errc::token_expired);
    EXPECT_FALSE(auth->can_publish(conn(1), "b"));  // a refused refresh changes nothing
}

TEST_F(TokenAuthorizer, TokenSizeAndRuleCountAreCapped) {
    make(std::nullopt, 0, 2048, 10);
    json rules = json::array();
    for (int i = 0; i < 10; ++i) rules.push_back("a" + std::to_string(i));
    const std::string ten_rules = token("alice", {{"publish", rules}});
    verdict v = auth->admit(conn(1), ten_rules);
    ASSERT_FALSE(v) << v.reason;

    // One rule more, counted over allow and deny together.
    v = auth->refresh(conn(1), token("alice", {{"publish", rules}, {"deny", {{"publish", {"a0"}}}}}));
    EXPECT_EQ(v, errc::unauthorized);
    EXPECT_NE(v.reason.find("more than 10 rules"), std::string_view::npos) << v.reason;
    EXPECT_FALSE(auth->can_publish(conn(1), "a0")) << "a refused refresh changes nothing";

    // A token over the size limit, whatever it holds.
    const std::string padded = sign_hs256(secret, {{"sub", "alice"}, {"exp", now_s + 60}, {"hs", {{"publish", {"a0"}}}},
                                                   {"note", std::string(2048, 'x')}});
    v = auth->refresh(conn(1), padded);
    EXPECT_EQ(v, errc::unauthorized);
    EXPECT_NE(v.reason.find("auth.max_token_bytes is 2048"), std::string_view::npos) << v.reason;
    EXPECT_EQ(auth->admit(conn(2), padded), errc::unauthorized);
    v = auth->admit(conn(2), std::string(4096, 'x'));
    EXPECT_EQ(v, errc::unauthorized);
    EXPECT_NE(v.reason.find("4096 bytes"), std::string_view::npos) << v.reason;
}

TEST_F(TokenAuthorizer, ConnectionsPerSubjectAreLimitedAndFreedOnForget) {
    make(std::nullopt, 2);
    ASSERT_FALSE(auth->admit(conn(1), token("alice", json::object())));
    ASSERT_FALSE(auth->admit(conn(2), token("alice", json::object())));
    EXPECT_EQ(auth->admit(conn(3), token("alice", json::object())), errc::too_many_connections);
    EXPECT_FALSE(auth->admit(conn(4), token("bob", json::object())));
    auth->forget(conn(1));
    EXPECT_FALSE(auth->admit(conn(3), token("alice", json::object())));
}

TEST(MakeAuthorizer, OpenModeAllowsAllAndTokensModeNeedsAKeyOrAnonymousRights) {
    router_config cfg;
    std::string error;
    auto open = make_authorizer(cfg, error);
    ASSERT_TRUE(open);
    EXPECT_FALSE(open->can_publish(principal{}, "anything"));

    cfg.auth = auth_mode::tokens;
    EXPECT_FALSE(make_authorizer(cfg, error));
    EXPECT_NE(error, "");
    cfg.auth_hs256_secret = "short";
    EXPECT_FALSE(make_authorizer(cfg, error));
    cfg.auth_hs256_secret = secret;
    EXPECT_TRUE(make_authorizer(cfg, error)) << error;
    // Rights the configuration grants are checked when it is read (config.cpp).
    EXPECT_NE(apply_json(cfg, R"({"auth":{"anonymous":{"subscribe":["a..b"]}}})"), "");
}

}  // namespace
}  // namespace hyperstreams::router
