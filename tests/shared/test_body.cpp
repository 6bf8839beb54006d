// Control bodies (hello, welcome, register_service, service_list, routers): round
// trips, encoder limits, and every way a body can be malformed.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hyperstreams/body.hpp"

namespace hs = hyperstreams;

namespace {

using bytes = std::vector<std::uint8_t>;

hs::hello_body sample_hello() {
    hs::hello_body h;
    h.min_version = 1;
    h.max_version = 3;
    h.role = hs::client_role::backend;
    h.name = "inventory-7";
    h.token = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln";
    h.resume_session = "s-41f0";
    return h;
}

hs::welcome_body sample_welcome() {
    hs::welcome_body w;
    w.version = 1;
    w.session_id = "s-41f0";
    w.router_id = "r1";
    w.heartbeat_ms = 15000;
    w.max_payload = 1u << 20;
    w.max_subscriptions = 256;
    w.resumed = true;
    return w;
}

hs::register_body sample_register() {
    return {{{"lookup", hs::method_kind::unary}, {"watch", hs::method_kind::stream}}};
}

hs::service_list_body sample_list() {
    hs::service_list_body l;
    l.services.push_back({"inventory", 2, sample_register().methods});
    l.services.push_back({"factory.history", 1, {{"replay", hs::method_kind::stream}}});
    l.services.push_back({"empty", 0, {}});
    return l;
}

hs::routers_body sample_routers() {
    return {{{"r-2b7c", "tcp://10.0.0.12:7071"}, {"r-5d10", "ipc:///run/hyperstreams/r-5d10"}}};
}

template <typename Body>
bytes encoded(const Body& b) {
    bytes out;
    EXPECT_FALSE(hs::encode_body(b, out));
    return out;
}

void expect_same(const std::vector<hs::method_info>& a, const std::vector<hs::method_info>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].name, b[i].name);
        EXPECT_EQ(a[i].kind, b[i].kind);
    }
}

// ---------------------------------------------------------------- round trips

TEST(HelloBody, RoundTrips) {
    const hs::hello_body in = sample_hello();
    const bytes b = encoded(in);
    hs::hello_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    EXPECT_EQ(out.min_version, 1);
    EXPECT_EQ(out.max_version, 3);
    EXPECT_EQ(out.role, hs::client_role::backend);
    EXPECT_EQ(out.name, in.name);
    EXPECT_EQ(out.token, in.token);
    EXPECT_EQ(out.resume_session, in.resume_session);
}

TEST(HelloBody, DefaultsAreVersionOneFrontendAndEmptyStrings) {
    const bytes b = encoded(hs::hello_body{});
    EXPECT_EQ(b, (bytes{0x01, 0x00, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
    hs::hello_body out;
    out.name = "stale";
    ASSERT_FALSE(hs::decode_body(b, out));
    EXPECT_EQ(out.role, hs::client_role::frontend);
    EXPECT_TRUE(out.name.empty());
    EXPECT_TRUE(out.token.empty());
    EXPECT_TRUE(out.resume_session.empty());
}

TEST(HelloBody, DecodedStringsViewThePayload) {
    const bytes b = encoded(sample_hello());
    hs::hello_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    // u16 min, u16 max, u8 role, u16 name length, then the name
    EXPECT_EQ(reinterpret_cast<const std::uint8_t*>(out.name.data()), b.data() + 7);
}

// Every str of a control body is UTF-8: the router shows names in its logs
// and its JSON view, and a name that is not UTF-8 once aborted /status.
TEST(HelloBody, AStringThatIsNotUtf8IsMalformed) {
    for (const char* bad : {"\xE5\xB7", "\xFF", "\xED\xA0\x80"}) {
        hs::hello_body h = sample_hello();
        h.name = bad;
        hs::hello_body out;
        EXPECT_EQ(hs::decode_body(encoded(h), out), hs::errc::malformed_body);
        h = sample_hello();
        h.resume_session = bad;
        EXPECT_EQ(hs::decode_body(encoded(h), out), hs::errc::malformed_body);
    }
    hs::hello_body h = sample_hello();
    h.name = "\xE5\xB7\xA5\xE5\xA0\xB4";
    const bytes b = encoded(h);
    hs::hello_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    EXPECT_EQ(out.name, h.name);
}

TEST(HelloBody, AStringOf65535BytesFitsAndOneMoreIsRefused) {
    const std::string longest(0xFFFF, 't');
    hs::hello_body h;
    h.token = longest;
    bytes b = encoded(h);
    hs::hello_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    EXPECT_EQ(out.token, longest);

    const std::string too_long(0x10000, 't');
    h.token = too_long;
    bytes prefix = {0xAA};
    EXPECT_EQ(hs::encode_body(h, prefix), hs::errc::invalid_argument);
    EXPECT_EQ(prefix, bytes{0xAA}) << "a refused body leaves the output as it was";
}

TEST(WelcomeBody, RoundTrips) {
    for (bool resumed : {false, true}) {
        hs::welcome_body in = sample_welcome();
        in.resumed = resumed;
        const bytes b = encoded(in);
        hs::welcome_body out;
        ASSERT_FALSE(hs::decode_body(b, out));
        EXPECT_EQ(out.version, 1);
        EXPECT_EQ(out.session_id, "s-41f0");
        EXPECT_EQ(out.router_id, "r1");
        EXPECT_EQ(out.heartbeat_ms, 15000u);
        EXPECT_EQ(out.max_payload, 1u << 20);
        EXPECT_EQ(out.max_subscriptions, 256u);
        EXPECT_EQ(out.resumed, resumed);
    }
}

TEST(WelcomeBody, ExtremeValuesRoundTrip) {
    hs::welcome_body in;
    in.version = 0xFFFF;
    in.heartbeat_ms = 0xFFFFFFFF;
    in.max_payload = 0xFFFFFFFF;
    in.max_subscriptions = 0xFFFFFFFF;
    const bytes b = encoded(in);
    EXPECT_EQ(b.size(), 2u + 2u + 2u + 12u + 1u);
    hs::welcome_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    EXPECT_EQ(out.version, 0xFFFF);
    EXPECT_EQ(out.heartbeat_ms, 0xFFFFFFFFu);
    EXPECT_EQ(out.max_payload, 0xFFFFFFFFu);
    EXPECT_EQ(out.max_subscriptions, 0xFFFFFFFFu);
    EXPECT_FALSE(out.resumed);
}

TEST(RegisterBody, RoundTrips) {
    const hs::register_body in = sample_register();
    const bytes b = encoded(in);
    hs::register_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    expect_same(out.methods, in.methods);
}

TEST(RegisterBody, NoMethodsIsTwoZeroBytes) {
    const bytes b = encoded(hs::register_body{});
    EXPECT_EQ(b, (bytes{0, 0}));
    hs::register_body out = sample_register();
    ASSERT_FALSE(hs::decode_body(b, out));
    EXPECT_TRUE(out.methods.empty()) << "decoding replaces what the body held";
}

TEST(RegisterBody, DecodingReplacesPreviousMethods) {
    hs::register_body out = sample_register();
    const hs::register_body one{{{"only", hs::method_kind::unary}}};
    const bytes b = encoded(one);  // decoded names view it: it must outlive `out`
    ASSERT_FALSE(hs::decode_body(b, out));
    expect_same(out.methods, one.methods);
}

TEST(ServiceListBody, RoundTrips) {
    const hs::service_list_body in = sample_list();
    const bytes b = encoded(in);
    hs::service_list_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    ASSERT_EQ(out.services.size(), in.services.size());
    for (std::size_t i = 0; i < in.services.size(); ++i) {
        EXPECT_EQ(out.services[i].name, in.services[i].name);
        EXPECT_EQ(out.services[i].instances, in.services[i].instances);
        expect_same(out.services[i].methods, in.services[i].methods);
    }
}

TEST(ServiceListBody, EmptyListRoundTripsAndReplacesPreviousServices) {
    hs::service_list_body out = sample_list();
    const bytes b = encoded(hs::service_list_body{});
    ASSERT_FALSE(hs::decode_body(b, out));
    EXPECT_TRUE(out.services.empty());
}

TEST(RoutersBody, RoundTripsAndAnEmptyListReplacesTheLastOne) {
    const bytes b = encoded(sample_routers());
    hs::routers_body out;
    ASSERT_FALSE(hs::decode_body(b, out));
    ASSERT_EQ(out.routers.size(), 2u);
    EXPECT_EQ(out.routers[0].id, "r-2b7c");
    EXPECT_EQ(out.routers[0].backend, "tcp://10.0.0.12:7071");
    EXPECT_EQ(out.routers[1].id, "r-5d10");
    EXPECT_EQ(out.routers[1].backend, "ipc:///run/hyperstreams/r-5d10");
    ASSERT_FALSE(hs::decode_body(encoded(hs::routers_body{}), out));
    EXPECT_TRUE(out.routers.empty());
}

// ---------------------------------------------------------------- malformed

// Every proper prefix of a valid body is malformed, and so is the body with
// one extra byte.
template <typename Body>
void expect_prefixes_and_extension_fail(const bytes& valid) {
    for (std::size_t n = 0; n < valid.size(); ++n) {
        Body out;
        EXPECT_EQ(hs::decode_body(hs::bytes_view(valid.data(), n), out), hs::errc::malformed_body)
            << "prefix of " << n << " bytes";
    }
    bytes longer = valid;
    longer.push_back(0);
    Body out;
    EXPECT_EQ(hs::decode_body(longer, out), hs::errc::malformed_body) << "one trailing byte";
}

TEST(MalformedBody, TruncatedOrExtendedHello) {
    expect_prefixes_and_extension_fail<hs::hello_body>(encoded(sample_hello()));
}

TEST(MalformedBody, TruncatedOrExtendedWelcome) {
    expect_prefixes_and_extension_fail<hs::welcome_body>(encoded(sample_welcome()));
}

TEST(MalformedBody, TruncatedOrExtendedRegister) {
    expect_prefixes_and_extension_fail<hs::register_body>(encoded(sample_register()));
}

TEST(MalformedBody, TruncatedOrExtendedServiceList) {
    expect_prefixes_and_extension_fail<hs::service_list_body>(encoded(sample_list()));
}

TEST(MalformedBody, TruncatedOrExtendedRouters) {
    expect_prefixes_and_extension_fail<hs::routers_body>(encoded(sample_routers()));
}

TEST(MalformedBody, ARoutersCountLargerThanTheBytesIsRejected) {
    hs::routers_body r;
    EXPECT_EQ(hs::decode_body(bytes{0xFF, 0xFF}, r), hs::errc::malformed_body);
    EXPECT_EQ(hs::decode_body(bytes{2, 0, 1, 0, 'r', 1, 0, 'e'}, r), hs::errc::malformed_body);
    EXPECT_EQ(hs::decode_body(bytes{1, 0, 1, 0, 'r', 2, 0, 0xE5, 0xB7}, r), hs::errc::malformed_body)
        << "an endpoint that is not UTF-8";
}

TEST(MalformedBody, HelloRoleMustBeFrontendOrBackend) {
    bytes b = encoded(sample_hello());
    for (const std::uint8_t role : bytes{0, 1, 2, 3, 0xFF}) {
        b[4] = role;
        hs::hello_body out;
        const std::error_code ec = hs::decode_body(b, out);
        if (role == 1 || role == 2) {
            EXPECT_FALSE(ec) << int{role};
        } else {
            EXPECT_EQ(ec, hs::errc::malformed_body) << int{role};
        }
    }
}

TEST(MalformedBody, WelcomeResumedMustBeZeroOrOne) {
    bytes b = encoded(sample_welcome());
    for (const std::uint8_t resumed : bytes{0, 1, 2, 0xFF}) {
        b.back() = resumed;
        hs::welcome_body out;
        const std::error_code ec = hs::decode_body(b, out);
        if (resumed <= 1) {
            EXPECT_FALSE(ec);
            EXPECT_EQ(out.resumed, resumed == 1);
        } else {
            EXPECT_EQ(ec, hs::errc::malformed_body) << int{resumed};
        }
    }
}

TEST(MalformedBody, MethodKindMustBeUnaryOrStream) {
    const hs::register_body one{{{"m", hs::method_kind::unary}}};
    bytes b = encoded(one);
    for (const std::uint8_t kind : bytes{0, 3, 0xFF}) {
        b.back() = kind;
        hs::register_body out;
        EXPECT_EQ(hs::decode_body(b, out), hs::errc::malformed_body) << int{kind};
        hs::service_list_body list_out;
        const bytes list = {1, 0, 1, 0, 's', 1, 0, 1, 0, 1, 0, 'm', kind};
        EXPECT_EQ(hs::decode_body(list, list_out), hs::errc::malformed_body) << int{kind};
    }
}

TEST(MalformedBody, CountsLargerThanTheBytesAreRejected) {
    hs::register_body r;
    EXPECT_EQ(hs::decode_body(bytes{0xFF, 0xFF}, r), hs::errc::malformed_body);
    EXPECT_EQ(hs::decode_body(bytes{0x02, 0x00, 0x01, 0x00, 'm', 0x01}, r),
              hs::errc::malformed_body);

    hs::service_list_body l;
    EXPECT_EQ(hs::decode_body(bytes{0xFF, 0xFF}, l), hs::errc::malformed_body);
    // one service "s", 1 instance, method count 2 but one method present
    EXPECT_EQ(hs::decode_body(bytes{1, 0, 1, 0, 's', 1, 0, 2, 0, 1, 0, 'm', 1}, l),
              hs::errc::malformed_body);
}

TEST(MalformedBody, AStringLengthPastTheEndIsRejected) {
    // hello: versions, role, then a name length of 0xFFFF with 3 bytes after it
    const bytes b = {1, 0, 1, 0, 1, 0xFF, 0xFF, 'a', 'b', 'c'};
    hs::hello_body out;
    EXPECT_EQ(hs::decode_body(b, out), hs::errc::malformed_body);
}

TEST(MalformedBody, NoBodyAtAllIsMalformedForEveryKind) {
    hs::hello_body h;
    hs::welcome_body w;
    hs::register_body r;
    hs::service_list_body l;
    EXPECT_EQ(hs::decode_body(hs::bytes_view{}, h), hs::errc::malformed_body);
    EXPECT_EQ(hs::decode_body(hs::bytes_view{}, w), hs::errc::malformed_body);
    EXPECT_EQ(hs::decode_body(hs::bytes_view{}, r), hs::errc::malformed_body);
    EXPECT_EQ(hs::decode_body(hs::bytes_view{}, l), hs::errc::malformed_body);
}

// ---------------------------------------------------------------- publish options

TEST(PublishOptions, RoundTripKeyTtlAndMessage) {
    hs::publish_options o;
    o.key = "order-17";
    o.ttl_s = 0xA0B0C0D0u;
    bytes b = {9, 9};
    const bytes m = {'m'};
    ASSERT_FALSE(hs::encode_publish_payload(o, m, b));
    EXPECT_EQ(b.size(), 1u + 8u + 4u + 1u) << "what it held is replaced";
    hs::publish_options got;
    hs::bytes_view message;
    ASSERT_FALSE(hs::decode_publish_options(hs::publish_option_flags(o), b, got, message));
    EXPECT_EQ(got.key, "order-17");
    EXPECT_EQ(got.ttl_s, 0xA0B0C0D0u);
    ASSERT_EQ(message.size(), 1u);
    EXPECT_EQ(message[0], 'm');
}

TEST(PublishOptions, WithoutTheFlagsThePayloadIsTheMessage) {
    const bytes b = {8, 'o', 'r', 'd', 'e', 'r'};
    hs::publish_options got;
    hs::bytes_view message;
    ASSERT_FALSE(hs::decode_publish_options(hs::frame_flags::json, b, got, message));
    EXPECT_TRUE(got.key.empty());
    EXPECT_FALSE(got.ttl_s);
    EXPECT_EQ(message.size(), b.size());
}

TEST(PublishOptions, EveryBadBlockIsMalformed) {
    const std::uint8_t key = hs::frame_flags::idempotency_key;
    const std::uint8_t ttl = hs::frame_flags::ttl;
    const std::pair<std::uint8_t, bytes> bad[] = {
        {key, {}},                       // no key length
        {key, {0, 'm'}},                 // empty key
        {key, {3, 'a', 'b'}},            // key past the end
        {key, {2, 'a', ' '}},            // not printable ASCII
        {key, {2, 'a', 0x80}},           // not ASCII
        {ttl, {1, 0, 0}},                // short ttl
        {ttl, {0, 0, 0, 0, 'm'}},        // ttl 0
        {key | ttl, {1, 'k', 5, 0, 0}},  // key, then a short ttl
    };
    for (const auto& [flags, b] : bad) {
        hs::publish_options got;
        hs::bytes_view message;
        EXPECT_EQ(hs::decode_publish_options(flags, b, got, message), hs::errc::malformed_body)
            << int(flags) << " " << b.size();
    }
}

TEST(PublishOptions, TheEncoderRefusesWhatTheDecoderWould) {
    bytes b;
    const bytes m;
    hs::publish_options zero;
    zero.ttl_s = 0;
    EXPECT_EQ(hs::encode_publish_payload(zero, m, b), hs::errc::invalid_argument);
    const std::string long_key(256, 'k');
    hs::publish_options too_long;
    too_long.key = long_key;
    EXPECT_EQ(hs::encode_publish_payload(too_long, m, b), hs::errc::invalid_argument);
    hs::publish_options control;
    control.key = "a\tb";
    EXPECT_EQ(hs::encode_publish_payload(control, m, b), hs::errc::invalid_argument);
    EXPECT_TRUE(b.empty());
    const std::string longest(255, 'k');
    hs::publish_options ok;
    ok.key = longest;
    EXPECT_FALSE(hs::encode_publish_payload(ok, m, b));
    EXPECT_EQ(b.size(), 256u);
}

}  // namespace
