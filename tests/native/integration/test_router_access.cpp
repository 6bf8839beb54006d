// Access control of the real router binary (auth.mode tokens), driven by the
// real client engine over WebSocket and ZeroMQ: every allowed and denied
// case of subscribe, publish, request, stream, direct, broadcast and
// register; deny beating allow; expired, malformed, wrongly signed and
// alg:none tokens; refresh before expiry and the close after it; origins;
// each limit. Every denial is asserted with its named error, and the
// connection is used again after it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <zmq.h>

#include <csignal>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"
#include "token_maker.hpp"

namespace hyperstreams::testing {
namespace {

using nlohmann::json;

const std::string secret = "integration-test-secret-0123456789abcdef";

std::string token(const std::string& sub, const json& hs, std::int64_t lifetime_s = 600) {
    return sign_hs256(secret, {{"sub", sub}, {"exp", unix_now() + lifetime_s}, {"hs", hs}});
}

client_config with_token(client_config c, std::string t) {
    c.token = std::move(t);
    return c;
}

// A router with tokens required, anonymous clients limited to public.>, and
// every limit small enough to reach.
std::vector<std::string> access_args(std::vector<std::string> extra = {}) {
    static const std::string secret_file = write_temp_file("hs256.secret", secret + "\n");
    std::vector<std::string> args{"--auth-mode", "tokens",
                                  "--auth-hs256-secret-file", secret_file,
                                  "--auth-anonymous", R"({"subscribe":["public.>"]})",
                                  "--auth-expiry-grace-ms", "300",
                                  "--heartbeat-interval-ms", "200",
                                  "--heartbeat-timeout-ms", "5000",
                                  "--limits-max-subscriptions", "3",
                                  "--limits-max-pending-requests", "2",
                                  "--limits-publish-rate", "5",
                                  "--limits-connections-per-subject", "2",
                                  "--ws-allowed-origins", "https://good.example,http://localhost:5173"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// An ack or the named error for operation `id`; fails the test otherwise.
void expect_ack(test_client& c, std::uint32_t id, const char* what) {
    const auto ev = c.wait_for([id](const recorded_event& e) {
        return (e.kind == event_kind::ack || e.kind == event_kind::error) && e.id == id;
    });
    ASSERT_TRUE(ev) << what << ": no answer";
    EXPECT_EQ(ev->kind, event_kind::ack) << what << ": " << describe(*ev);
}

void expect_error(test_client& c, std::uint32_t id, errc code, const char* what) {
    const auto ev = c.wait_for([id](const recorded_event& e) {
        return (e.kind == event_kind::ack || e.kind == event_kind::error || e.kind == event_kind::response ||
                e.kind == event_kind::stream_item) &&
               e.id == id;
    });
    ASSERT_TRUE(ev) << what << ": no answer";
    EXPECT_EQ(ev->kind, event_kind::error) << what << ": " << describe(*ev);
    EXPECT_EQ(ev->error(), code) << what << ": " << describe(*ev);
}

// The first connection-level error (id 0) the client saw.
std::optional<recorded_event> connection_error(test_client& c, std::chrono::milliseconds timeout = 5s) {
    return c.wait_for([](const recorded_event& e) { return e.kind == event_kind::error && e.id == 0; }, timeout);
}

// Polls `condition` until it holds or `timeout` passes.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 10s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

struct curve_pair {
    std::string public_key;
    std::string secret_key;
};

curve_pair curve_keys() {
    char pub[41] = {}, sec[41] = {};
    EXPECT_EQ(zmq_curve_keypair(pub, sec), 0);
    return {pub, sec};
}

host_options curve_client(const curve_pair& server, const curve_pair& own) {
    host_options o;
    o.curve = {server.public_key, own.public_key, own.secret_key};
    return o;
}

TEST(RouterAccess, SubscribeAndPublishFollowTheClaimsAndDenyWins) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    test_client c(with_token(frontend_config(router.ws_url()),
                             token("alice", {{"subscribe", {"factory.>"}},
                                             {"publish", {"factory.*.cmd"}},
                                             {"deny", {{"subscribe", {"factory.secret.>"}},
                                                       {"publish", {"factory.m9.cmd"}}}}})));
    ASSERT_TRUE(c.wait_ready());

    expect_ack(c, c.subscribe("factory.m3.cmd"), "subscribe inside the grant");
    expect_error(c, c.subscribe("factory.>"), errc::forbidden, "pattern reaching a denied channel");
    expect_error(c, c.subscribe("factory.secret.key"), errc::forbidden, "denied channel");
    expect_error(c, c.subscribe("office.news"), errc::forbidden, "outside the grant");

    expect_ack(c, c.publish("factory.m3.cmd", "go", true), "publish inside the grant");
    expect_error(c, c.publish("factory.m9.cmd", "go", true), errc::forbidden, "publish on a denied channel");
    expect_error(c, c.publish("factory.m3.temp", "1", true), errc::forbidden, "publish outside the grant");

    // Still usable after every denial: the allowed publish arrives.
    expect_ack(c, c.publish("factory.m3.cmd", "again", true), "publish after denials");
    const auto msg = c.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::message && e.payload_text() == "again";
    });
    ASSERT_TRUE(msg);
    EXPECT_EQ(c.count(is(event_kind::message)), 2u) << "only the two allowed publishes were delivered";
}

// A latest-value subscribe is judged as any subscribe: a token reads the
// latest values of the channels its grants cover, and no pattern reaches
// past them.
TEST(RouterAccess, ALatestSubscribeGivesOnlyWhatTheTokenMayRead) {
    router_process router(
        access_args({"--channels-namespaces", R"([{"pattern": "factory.>", "latest": true, "history_size": 0}])"}));
    ASSERT_TRUE(router.ready());
    test_client pub(with_token(frontend_config(router.ws_url()), token("machines", {{"publish", {"factory.>"}}})));
    test_client line1(with_token(frontend_config(router.ws_url()),
                                 token("line1", {{"subscribe", {"factory.l1.>"}},
                                                 {"deny", {{"subscribe", {"factory.l1.secret.>"}}}}})));
    ASSERT_TRUE(pub.wait_ready() && line1.wait_ready());
    pub.publish("factory.l1.m1.telemetry", "l1-m1");
    pub.publish("factory.l1.secret.telemetry", "hidden");
    const std::uint32_t last = pub.publish("factory.l2.m1.telemetry", "l2-m1", true);
    expect_ack(pub, last, "publish");

    expect_error(line1, line1.subscribe("factory.*.*.telemetry", slow_policy::router_default, true),
                 errc::forbidden, "a pattern past the grant");
    expect_error(line1, line1.subscribe("factory.l1.*.telemetry", slow_policy::router_default, true),
                 errc::forbidden, "a pattern reaching a denied channel");
    expect_ack(line1, line1.subscribe("factory.l1.m1.telemetry", slow_policy::router_default, true),
               "a channel inside the grant");
    const auto got = line1.wait_for(is(event_kind::message));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload_text(), "l1-m1");
    EXPECT_EQ(line1.count(is(event_kind::message)), 1u) << "nothing from a refused subscribe";
}

TEST(RouterAccess, RegisterRequestAndStreamFollowTheClaims) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    test_client backend(with_token(backend_config(router.backend_url()),
                                   token("orders-service", {{"register", {"orders"}}})));
    test_client full(with_token(frontend_config(router.ws_url()),
                                token("alice", {{"call", {"orders"}}, {"deny", {{"call", {"orders/delete"}}}}})));
    test_client narrow(with_token(frontend_config(router.ws_url()), token("bob", {{"call", {"orders/get"}}})));
    ASSERT_TRUE(backend.wait_ready() && full.wait_ready() && narrow.wait_ready());

    backend.set_handler([](client_engine& e, const recorded_event& ev, time_ms) {
        if (ev.kind == event_kind::incoming_request) {
            const auto reply = bytes_of(ev.method + ":" + ev.payload_text());
            EXPECT_FALSE(e.respond(ev.id, reply));
        }
        if (ev.kind == event_kind::incoming_stream) {
            const auto item = bytes_of("tick");
            EXPECT_EQ(e.stream_send(ev.id, item), stream_send_status::ok);
            EXPECT_FALSE(e.stream_end(ev.id));
        }
    });
    expect_error(backend, backend.register_service("billing", {{"charge", method_kind::unary}}), errc::forbidden,
                 "register a service the token does not name");
    expect_ack(backend,
               backend.register_service("orders", {{"get", method_kind::unary},
                                                   {"delete", method_kind::unary},
                                                   {"watch", method_kind::stream}}),
               "register the granted service");

    const std::uint32_t get = full.request("orders", "get", "1");
    const auto response = full.wait_for(is(event_kind::response, get));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->payload_text(), "get:1");
    expect_error(full, full.request("orders", "delete", "1"), errc::forbidden, "denied method");

    auto open_watch = [](test_client& c) {
        return c.run([](client_engine& e, time_ms now) {
            const auto q = bytes_of("q");
            return e.open_stream("orders", "watch", q, 4, 0, now);
        });
    };
    const call_result allowed = open_watch(full);
    ASSERT_FALSE(allowed.error);
    ASSERT_TRUE(full.wait_for(is(event_kind::stream_end, allowed.id)));
    EXPECT_EQ(full.count(is(event_kind::stream_item, allowed.id)), 1u);

    const call_result denied = open_watch(narrow);
    ASSERT_FALSE(denied.error);
    expect_error(narrow, denied.id, errc::forbidden, "stream outside the grant");
    const std::uint32_t narrow_get = narrow.request("orders", "get", "2");
    ASSERT_TRUE(narrow.wait_for(is(event_kind::response, narrow_get))) << "usable after the denial";
    EXPECT_EQ(backend.count(is(event_kind::incoming_request)), 2u) << "denied calls never reach the backend";
}

TEST(RouterAccess, DirectAndBroadcastFollowTheClaims) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    test_client loud(with_token(frontend_config(router.ws_url()),
                                token("alice", {{"send", {"*"}}, {"broadcast", true}})));
    test_client quiet(with_token(frontend_config(router.ws_url()),
                                 token("bob", {{"send", {"nobody-*"}}, {"broadcast", true},
                                               {"deny", {{"broadcast", true}}}})));
    ASSERT_TRUE(loud.wait_ready() && quiet.wait_ready());
    const std::string loud_address = loud.session_id();
    const std::string quiet_address = quiet.session_id();

    auto direct = [](test_client& c, const std::string& to, const std::string& text) {
        return c.run([&](client_engine& e, time_ms) {
            const auto payload = bytes_of(text);
            return e.send_direct(to, payload, true).id;
        });
    };
    auto broadcast = [](test_client& c, const std::string& text) {
        return c.run([&](client_engine& e, time_ms) {
            const auto payload = bytes_of(text);
            return e.broadcast(payload, true).id;
        });
    };
    expect_ack(loud, direct(loud, quiet_address, "hi"), "direct with send *");
    ASSERT_TRUE(quiet.wait_for(is(event_kind::direct)));
    expect_error(quiet, direct(quiet, loud_address, "hi"), errc::forbidden, "direct outside the grant");
    expect_error(quiet, direct(quiet, "no-such-address", "hi"), errc::forbidden,
                 "a forbidden address is forbidden whether or not it exists");

    expect_ack(loud, broadcast(loud, "all"), "broadcast granted");
    ASSERT_TRUE(quiet.wait_for(is(event_kind::broadcast)));
    expect_error(quiet, broadcast(quiet, "all"), errc::forbidden, "broadcast denied beats allowed");
    EXPECT_EQ(loud.count(is(event_kind::direct)) + loud.count(is(event_kind::broadcast)), 0u);
}

TEST(RouterAccess, BadTokensAreRefusedWithTheirNamedErrors) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    const json claims = {{"sub", "mallory"}, {"exp", unix_now() + 600}, {"hs", {{"publish", {">"}}}}};
    const std::vector<std::pair<std::string, errc>> cases{
        {sign_hs256(secret, {{"sub", "old"}, {"exp", unix_now() - 10}}), errc::token_expired},
        {"not.a-token", errc::unauthorized},
        {"eyJhbGciOiJIUzI1NiJ9", errc::unauthorized},
        {sign_hs256("some-other-secret-that-is-long-enough", claims), errc::unauthorized},
        {unsigned_token(claims), errc::unauthorized},
        {sign_es256(make_ec_key().private_key, claims), errc::unauthorized},
    };
    for (const auto& [bad, code] : cases) {
        test_client c(with_token(frontend_config(router.ws_url()), bad));
        const auto ev = connection_error(c);
        ASSERT_TRUE(ev) << bad;
        EXPECT_EQ(ev->error(), code) << bad << ": " << describe(*ev);
        EXPECT_TRUE(c.wait_for([](const recorded_event& e) {
            return e.kind == event_kind::state_changed && e.state == client_state::awaiting_token;
        })) << "the engine waits for a new token";
        EXPECT_NE(c.state(), client_state::ready);
    }
    // A backend with a bad token gets nothing through either.
    test_client backend(with_token(backend_config(router.backend_url()), unsigned_token(claims)));
    const auto ev = connection_error(backend);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->error(), errc::unauthorized);
}

TEST(RouterAccess, TimeClaimsAtTheExtremesHaveDefinedAnswers) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    const json hs = {{"publish", {"a.>"}}};
    // Valid for ever, in every spelling: admitted, and not expired at the
    // router's next scans (every 50 ms here).
    const std::vector<json> far{std::numeric_limits<std::int64_t>::max(), std::uint64_t{1} << 63, 1e300,
                                253'402'300'799 /* 9999-12-31 */};
    std::vector<std::unique_ptr<test_client>> clients;
    for (const json& exp : far) {
        clients.push_back(std::make_unique<test_client>(with_token(
            frontend_config(router.ws_url()), sign_hs256(secret, {{"sub", "far-" + exp.dump()}, {"exp", exp}, {"hs", hs}}))));
        ASSERT_TRUE(clients.back()->wait_ready()) << "exp " << exp.dump();
    }
    auto expired = [](const recorded_event& e) { return e.error() == errc::token_expired; };
    EXPECT_FALSE(clients.front()->wait_for(expired, 1s)) << "the router scanned 20 times meanwhile";
    for (std::size_t i = 0; i < far.size(); ++i) {
        test_client& c = *clients[i];
        EXPECT_EQ(c.count(expired), 0u) << "exp " << far[i].dump();
        expect_ack(c, c.publish("a.b", "still here", true), "publish with a far-future token");
    }

    // Refused with a named error whose text says what is wrong.
    const std::vector<std::tuple<json, errc, std::string>> refused{
        {{{"sub", "s"}, {"exp", "2030-01-01"}}, errc::unauthorized, "exp"},
        {{{"sub", "s"}, {"exp", unix_now() + 600}, {"iat", "now"}}, errc::unauthorized, "iat"},
        {{{"sub", "s"}, {"exp", unix_now() + 600}, {"nbf", std::uint64_t{1} << 63}}, errc::unauthorized,
         "not yet valid"},
        {{{"sub", "s"}, {"exp", -1e300}}, errc::token_expired, "expired"},
        {{{"sub", "s"}, {"exp", 0}}, errc::token_expired, "expired"},
    };
    for (const auto& [claims, code, text] : refused) {
        test_client c(with_token(frontend_config(router.ws_url()), sign_hs256(secret, claims)));
        const auto ev = connection_error(c);
        ASSERT_TRUE(ev) << claims.dump();
        EXPECT_EQ(ev->error(), code) << claims.dump() << ": " << describe(*ev);
        EXPECT_NE(ev->text.find(text), std::string::npos) << claims.dump() << ": " << describe(*ev);
    }
}

TEST(RouterAccess, OversizeTokensAndRuleListsAreRefusedAndChangeNothing) {
    router_process router(access_args({"--auth-max-rules", "8"}));
    ASSERT_TRUE(router.ready());
    raw_ws raw(router.http_address());
    ASSERT_TRUE(raw.join(client_role::frontend, "raw", token("alice", {{"publish", {"a.>"}}})));

    // The attack of issue 15: a refresh to a 941 KB token of 56,000 rules,
    // sent raw (the engine refuses tokens over 64 KiB itself).
    json rules = json::array();
    for (int i = 0; i < 56000; ++i) rules.push_back("b.r" + std::to_string(i) + ".>");
    const std::string huge = token("alice", {{"publish", rules}});
    ASSERT_GT(huge.size(), 900'000u);
    frame refresh;
    refresh.kind = frame_kind::token_refresh;
    refresh.id = 5;
    refresh.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(huge.data()), huge.size());
    frame granted;  // allowed by the first token only
    granted.kind = frame_kind::publish;
    granted.flags = frame_flags::ack_requested;
    granted.id = 6;
    granted.name = "a.x";
    frame withheld = granted;  // allowed by the huge token only
    withheld.id = 7;
    withheld.name = "b.r1.x";
    ASSERT_TRUE(raw.send(encode_batch({refresh, granted, withheld})));
    const auto refused = raw.read_until(frame_kind::error);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->id, 5u);
    EXPECT_EQ(static_cast<errc>(refused->code), errc::unauthorized);
    EXPECT_NE(refused->payload.find("auth.max_token_bytes is 16384"), std::string::npos) << refused->payload;
    const auto ack = raw.read_until(frame_kind::ack);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->id, 6u) << "the first token's rights stand";
    const auto forbidden = raw.read_until(frame_kind::error);
    ASSERT_TRUE(forbidden);
    EXPECT_EQ(forbidden->id, 7u);
    EXPECT_EQ(static_cast<errc>(forbidden->code), errc::forbidden) << "the huge token's rights were never taken";

    // At hello: over the size limit, and over the rule limit (8, allow and deny together).
    test_client big(with_token(frontend_config(router.ws_url()),
                               token("bob", {{"publish", {"a.>"}}}) + std::string(20000, 'A')));
    auto ev = connection_error(big);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->error(), errc::unauthorized);
    EXPECT_NE(ev->text.find("auth.max_token_bytes"), std::string::npos) << describe(*ev);
    json eight_rules = json::array();
    for (int i = 0; i < 8; ++i) eight_rules.push_back("c" + std::to_string(i));
    test_client many(with_token(frontend_config(router.ws_url()),
                                token("carol", {{"publish", eight_rules}, {"deny", {{"publish", {"c0"}}}}})));
    ev = connection_error(many);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->error(), errc::unauthorized);
    EXPECT_NE(ev->text.find("more than 8 rules"), std::string::npos) << describe(*ev);
    test_client eight(with_token(frontend_config(router.ws_url()), token("dave", {{"publish", eight_rules}})));
    EXPECT_TRUE(eight.wait_ready()) << "eight rules are within the limit";
}

TEST(RouterAccess, AnonymousClientsGetOnlyTheConfiguredRights) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    test_client c(frontend_config(router.ws_url()));
    ASSERT_TRUE(c.wait_ready());
    expect_ack(c, c.subscribe("public.news"), "anonymous subscribe in public.>");
    expect_error(c, c.subscribe("factory.>"), errc::forbidden, "anonymous subscribe elsewhere");
    expect_error(c, c.publish("public.news", "x", true), errc::forbidden, "anonymous publish");
    expect_error(c, c.request("orders", "get", "x"), errc::forbidden, "anonymous request");

    // Without auth.anonymous a hello without a token is refused.
    std::vector<std::string> args = access_args({"--auth-anonymous", "null"});
    router_process closed(args);
    ASSERT_TRUE(closed.ready());
    test_client refused(frontend_config(closed.ws_url()));
    const auto ev = connection_error(refused);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->error(), errc::unauthorized);
}

TEST(RouterAccess, ARefreshedTokenKeepsTheConnectionAndAnExpiredOneClosesIt) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    const json hs = {{"publish", {"a.>"}}};
    // Tokens of 3 s (whole seconds, so 2-3 s left at the hello, plus the
    // router's grace): the good refresh comes first, so that only the two
    // connections and one round trip must fit before the first token lapses.
    test_client refreshed(with_token(frontend_config(router.ws_url()), token("alice", hs, 3)));
    test_client lapsed(with_token(frontend_config(router.ws_url()), token("bob", hs, 3)));
    ASSERT_TRUE(refreshed.wait_ready() && lapsed.wait_ready());
    const call_result good = refreshed.run([&](client_engine& e, time_ms now) {
        return e.refresh_token(token("alice", hs, 600), now);
    });
    ASSERT_TRUE(refreshed.wait_for(is(event_kind::token_refreshed, good.id)));

    // A refresh with a bad token is refused and changes nothing.
    const call_result bad = refreshed.run([](client_engine& e, time_ms now) {
        return e.refresh_token(sign_hs256("wrong-secret-wrong-secret-wrong-secret", {{"sub", "alice"}, {"exp", unix_now() + 600}}), now);
    });
    expect_error(refreshed, bad.id, errc::unauthorized, "refresh with a wrongly signed token");
    const call_result other = refreshed.run([&](client_engine& e, time_ms now) {
        return e.refresh_token(token("mallory", hs, 600), now);
    });
    expect_error(refreshed, other.id, errc::forbidden, "refresh to another subject");

    const auto closed = lapsed.wait_for([](const recorded_event& e) {
        return (e.kind == event_kind::error || e.kind == event_kind::state_changed) &&
               e.error() == errc::token_expired;
    }, 15s);
    ASSERT_TRUE(closed) << "the connection whose token lapsed is closed with token_expired";
    EXPECT_TRUE(lapsed.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::state_changed && e.state == client_state::awaiting_token;
    }));

    // The refreshed one outlived the first token and its grace, and still works.
    EXPECT_EQ(refreshed.state(), client_state::ready);
    expect_ack(refreshed, refreshed.publish("a.b", "still here", true), "publish after the refresh");
    EXPECT_EQ(refreshed.count([](const recorded_event& e) { return e.error() == errc::token_expired; }), 0u);
}

TEST(RouterAccess, ARefreshWithFewerRightsEndsTheSubscriptionsAndStreamsItNoLongerAllows) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    test_client backend(with_token(backend_config(router.backend_url()), token("feeds-service", {{"register", {"feeds"}}})));
    test_client publisher(with_token(frontend_config(router.ws_url()), token("publisher", {{"publish", {">"}}})));
    const json before = {{"subscribe", {"secret.>", "public.>"}}, {"call", {"feeds"}}};
    test_client c(with_token(frontend_config(router.ws_url()), token("alice", before)));
    ASSERT_TRUE(backend.wait_ready() && publisher.wait_ready() && c.wait_ready());

    // The backend sends one item and keeps the stream open.
    backend.set_handler([](client_engine& e, const recorded_event& ev, time_ms) {
        if (ev.kind == event_kind::incoming_stream) {
            const auto item = bytes_of("first");
            EXPECT_EQ(e.stream_send(ev.id, item), stream_send_status::ok);
        }
    });
    expect_ack(backend, backend.register_service("feeds", {{"watch", method_kind::stream}}), "register feeds");
    const std::uint32_t secrets = c.subscribe("secret.>");
    const std::uint32_t news = c.subscribe("public.>");
    expect_ack(c, secrets, "subscribe secret.>");
    expect_ack(c, news, "subscribe public.>");
    const call_result watch = c.run([](client_engine& e, time_ms now) {
        const auto q = bytes_of("q");
        return e.open_stream("feeds", "watch", q, 10, 0, now);
    });
    ASSERT_FALSE(watch.error);
    ASSERT_TRUE(c.wait_for(is(event_kind::stream_item, watch.id)));
    expect_ack(publisher, publisher.publish("secret.plans", "before", true), "publish before");
    ASSERT_TRUE(c.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::message && e.payload_text() == "before";
    }));

    // The refreshed token no longer grants secret.> nor any call.
    const call_result refresh = c.run([](client_engine& e, time_ms now) {
        return e.refresh_token(token("alice", {{"subscribe", {"public.>"}}}), now);
    });
    ASSERT_TRUE(c.wait_for(is(event_kind::token_refreshed, refresh.id)));
    const auto ended = c.wait_for(is_error(secrets));
    ASSERT_TRUE(ended) << "the subscription the token no longer allows is ended";
    EXPECT_EQ(ended->op, operation::subscribe);
    EXPECT_EQ(ended->subscription, secrets);
    EXPECT_EQ(ended->error(), errc::forbidden) << describe(*ended);
    const auto stopped = c.wait_for(is_error(watch.id));
    ASSERT_TRUE(stopped) << "the stream the token no longer allows is ended";
    EXPECT_EQ(stopped->op, operation::stream);
    EXPECT_EQ(stopped->error(), errc::forbidden) << describe(*stopped);
    const auto opened = backend.wait_for(is(event_kind::incoming_stream));
    ASSERT_TRUE(opened);
    const auto cancelled = backend.wait_for(is(event_kind::cancelled, opened->id));
    ASSERT_TRUE(cancelled) << "the backend is told to stop";
    EXPECT_EQ(backend.run([&](client_engine& e, time_ms) { return e.stream_send(opened->id, bytes_of("more")); }),
              stream_send_status::unknown_stream);

    // secret.* no longer arrives; public.* does. The publisher's order holds,
    // so "after" would have come before "news".
    expect_ack(publisher, publisher.publish("secret.plans", "after", true), "publish after");
    expect_ack(publisher, publisher.publish("public.news", "news", true), "publish news");
    ASSERT_TRUE(c.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::message && e.payload_text() == "news";
    }));
    EXPECT_EQ(c.count([](const recorded_event& e) { return e.kind == event_kind::message && e.payload_text() == "after"; }),
              0u);
    EXPECT_EQ(c.count(is(event_kind::stream_item, watch.id)), 1u);
    EXPECT_EQ(c.state(), client_state::ready);

    // Subscribing again is judged by the new token.
    expect_error(c, c.subscribe("secret.>"), errc::forbidden, "subscribe with the refreshed token");
}

TEST(RouterAccess, UpgradesFromOriginsNotAllowedGetForbidden) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    EXPECT_EQ(ws_upgrade(router.http_address(), "/ws", "https://evil.example").status, 403);
    EXPECT_EQ(ws_upgrade(router.http_address(), "/ws", "https://good.example").status, 101);
    EXPECT_EQ(ws_upgrade(router.http_address(), "/ws", "http://localhost:5173").status, 101);
    EXPECT_EQ(ws_upgrade(router.http_address(), "/ws", "").status, 101) << "not a browser: no Origin";
    const auto metrics = http_get(router.admin_address(), "/metrics");
    EXPECT_NE(metrics.body.find("hyperstreams_origins_refused_total 1"), std::string::npos);
}

TEST(RouterAccess, EachLimitAnswersWithItsNamedError) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    const json hs = {{"subscribe", {">"}}, {"publish", {">"}}, {"call", {"slow"}}, {"register", {"slow"}}};
    test_client c(with_token(frontend_config(router.ws_url()), token("alice", hs)));
    test_client backend(with_token(backend_config(router.backend_url()), token("svc", hs)));
    ASSERT_TRUE(c.wait_ready() && backend.wait_ready());

    // Subscriptions per connection (3). The engine knows the limit from the
    // welcome and refuses a fourth itself, so a raw client asks the router.
    {
        raw_ws raw(router.http_address());
        ASSERT_TRUE(raw.join(client_role::frontend, "raw", token("carol", hs)));
        std::vector<frame> subs;
        const char* channels[] = {"a.1", "a.2", "a.3", "a.4"};
        for (std::uint32_t i = 0; i < 4; ++i) {
            frame f;
            f.kind = frame_kind::subscribe;
            f.id = i + 1;
            f.name = channels[i];
            subs.push_back(f);
        }
        ASSERT_TRUE(raw.send(encode_batch(subs)));
        for (std::uint32_t i = 0; i < 3; ++i) {
            const auto ack = raw.read_until(frame_kind::ack);
            ASSERT_TRUE(ack);
            EXPECT_EQ(ack->id, i + 1);
        }
        const auto refused = raw.read_until(frame_kind::error);
        ASSERT_TRUE(refused);
        EXPECT_EQ(refused->id, 4u);
        EXPECT_EQ(static_cast<errc>(refused->code), errc::too_many_subscriptions);
        frame ping;
        ping.kind = frame_kind::ping;
        ping.id = 77;
        ASSERT_TRUE(raw.send(encode_batch({ping})));
        EXPECT_TRUE(raw.read_until(frame_kind::pong)) << "the connection stays usable";
    }
    for (const char* channel : {"a.1", "a.2", "a.3"}) expect_ack(c, c.subscribe(channel), channel);

    // Pending requests per connection (2): the backend never answers.
    expect_ack(backend, backend.register_service("slow", {{"wait", method_kind::unary}}), "register slow");
    c.request("slow", "wait", "1", 30000);
    c.request("slow", "wait", "2", 30000);
    ASSERT_EQ(backend.wait_count(is(event_kind::incoming_request), 2).size(), 2u);
    expect_error(c, c.request("slow", "wait", "3", 30000), errc::too_many_pending_requests, "third request");

    // Publish rate (5 per second, burst 5): a quick run of 20 is cut.
    std::vector<std::uint32_t> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(c.publish("a.1", std::to_string(i), true));
    std::size_t acked = 0, limited = 0;
    for (std::uint32_t id : ids) {
        const auto ev = c.wait_for([id](const recorded_event& e) {
            return (e.kind == event_kind::ack || e.kind == event_kind::error) && e.id == id;
        });
        ASSERT_TRUE(ev);
        if (ev->kind == event_kind::ack) ++acked;
        if (ev->kind == event_kind::error && ev->error() == errc::rate_limited) ++limited;
    }
    EXPECT_GE(acked, 5u);
    EXPECT_GE(limited, 1u);
    EXPECT_EQ(acked + limited, ids.size());

    // Connections per subject (2): alice has one; a second is fine, a third is refused.
    test_client second(with_token(frontend_config(router.ws_url()), token("alice", hs)));
    ASSERT_TRUE(second.wait_ready());
    test_client third(with_token(frontend_config(router.ws_url()), token("alice", hs)));
    const auto ev = connection_error(third);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->error(), errc::too_many_connections);

    // Every limit left the first connection usable (publishing waits for the
    // bucket to refill; discovery is not rate-limited).
    const std::uint32_t discover = c.run([](client_engine& e, time_ms) { return e.discover().id; });
    EXPECT_TRUE(c.wait_for(is(event_kind::service_list, discover)));
    EXPECT_EQ(c.state(), client_state::ready);
    const auto metrics = http_get(router.admin_address(), "/metrics").body;
    for (const char* name : {"too_many_subscriptions", "too_many_pending_requests", "rate_limited",
                             "too_many_connections"})
        EXPECT_NE(metrics.find(std::string("code=\"") + name + "\""), std::string::npos) << name;
}

TEST(RouterAccess, TheAdminTokenGuardsMetricsAndStatusButNotHealthz) {
    const std::string admin_token = "admin-token-0123456789abcdef";
    const std::string token_file = write_temp_file("admin.token", admin_token + "\n");
    router_process router(access_args({"--admin-token-file", token_file}));
    ASSERT_TRUE(router.ready());
    for (const char* path : {"/metrics", "/status"}) {
        EXPECT_EQ(http_get(router.admin_address(), path).status, 401) << path << " without a token";
        EXPECT_EQ(http_get_with(router.admin_address(), path, {{"Authorization", "Bearer wrong-token-0123456789ab"}})
                      .status,
                  401)
            << path << " with another token";
        EXPECT_EQ(http_get_with(router.admin_address(), path, {{"Authorization", "Basic " + admin_token}}).status, 401)
            << path << " with another scheme";
        EXPECT_EQ(http_get_with(router.admin_address(), path, {{"Authorization", "Bearer " + admin_token}}).status,
                  200)
            << path << " with the token";
    }
    EXPECT_EQ(http_get(router.admin_address(), "/healthz").status, 200) << "load balancers need no token";
    EXPECT_EQ(http_get(router.http_address(), "/healthz").status, 200);
    const http_result metrics =
        http_get_with(router.admin_address(), "/metrics", {{"Authorization", "bearer " + admin_token}});
    EXPECT_NE(metrics.body.find("hyperstreams_admin_refused_total 6"), std::string::npos) << metrics.body;
}

TEST(RouterAccess, TheStatusViewShowsNoAddressAndNoToken) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    const std::string jwt = token("alice", {{"subscribe", {"a.>"}}});
    test_client c(with_token(frontend_config(router.ws_url(), "status-viewed"), jwt));
    ASSERT_TRUE(c.wait_ready());
    ASSERT_TRUE(c.wait_for(is(event_kind::ack, c.subscribe("a.b"))));
    const std::string address = c.run([](client_engine& e, time_ms) { return std::string(e.session_id()); });
    ASSERT_FALSE(address.empty());

    const http_result status = http_get(router.admin_address(), "/status");
    ASSERT_EQ(status.status, 200);
    const json doc = json::parse(status.body);
    ASSERT_EQ(doc["connections"].size(), 1u);
    EXPECT_EQ(doc["connections"][0]["name"], "status-viewed");
    EXPECT_EQ(doc["connections"][0]["subscriptions"][0]["pattern"], "a.b");
    EXPECT_EQ(status.body.find(address), std::string::npos) << "an address lets anyone direct-message its connection";
    EXPECT_EQ(status.body.find(jwt), std::string::npos);
}

TEST(RouterAccess, PublicKeyTokensAreAcceptedEndToEnd) {
    const pem_pair ec = make_ec_key();
    const std::string key_file = write_temp_file("es256.pub", ec.public_key);
    router_process router({"--auth-mode", "tokens", "--auth-public-key-file", key_file});
    ASSERT_TRUE(router.ready());
    const json claims = {{"sub", "alice"}, {"exp", unix_now() + 600}, {"hs", {{"publish", {"x"}}}}};
    test_client good(with_token(frontend_config(router.ws_url()), sign_es256(ec.private_key, claims)));
    ASSERT_TRUE(good.wait_ready());
    expect_ack(good, good.publish("x", "1", true), "ES256 token's grant");
    test_client hs(with_token(frontend_config(router.ws_url()), sign_hs256(secret, claims)));
    const auto ev = connection_error(hs);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->error(), errc::unauthorized) << "HS256 is not accepted when only a public key is configured";
}

TEST(RouterAccess, BackendsOverCurveNeedAListedKeyAndRegisterOnlyItsServices) {
    const curve_pair server = curve_keys();
    const curve_pair allowed = curve_keys();
    const curve_pair unknown = curve_keys();
    const json clients = {{allowed.public_key, {{"register", {"orders"}}}}};
    router_process router(access_args({"--backend-auth-curve-secret-key", server.secret_key,
                                       "--backend-auth-curve-clients", clients.dump()}));
    ASSERT_TRUE(router.ready());

    test_client backend(backend_config(router.backend_url()), curve_client(server, allowed));
    ASSERT_TRUE(backend.wait_ready());
    expect_error(backend, backend.register_service("billing", {{"charge", method_kind::unary}}), errc::forbidden,
                 "a service the key's rights do not name");
    expect_ack(backend, backend.register_service("orders", {{"get", method_kind::unary}}), "the key's service");

    // An unknown key, and no CURVE at all: the handshake fails, nothing gets through.
    test_client intruder(backend_config(router.backend_url(), "intruder"), curve_client(server, unknown));
    test_client plain(backend_config(router.backend_url(), "plain"));
    intruder.register_service("billing", {{"charge", method_kind::unary}});
    plain.register_service("billing", {{"charge", method_kind::unary}});
    EXPECT_TRUE(eventually([&] {
        return http_get(router.admin_address(), "/metrics").body.find("hyperstreams_curve_refused_total 0") ==
               std::string::npos;
    })) << "the ZAP handler refused the unknown key";
    EXPECT_FALSE(intruder.wait_ready(500ms));
    EXPECT_FALSE(plain.wait_ready(100ms));
    const json status = json::parse(http_get(router.admin_address(), "/status").body);
    ASSERT_EQ(status["services"].size(), 1u);
    EXPECT_EQ(status["services"][0]["name"], "orders");
    std::size_t backends = 0;
    for (const json& c : status["connections"]) backends += c["role"] == "backend" ? 1 : 0;
    EXPECT_EQ(backends, 1u) << "only the listed key reached the router's core";
}

// One frame as a batch. Batches concatenate into one batch.
std::vector<std::uint8_t> batch_of(frame_kind kind, std::uint32_t id, std::string_view name = {},
                                   std::string_view payload = {}) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    f.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
    return encode_batch({f});
}

std::string register_payload(const std::string& method) {
    register_body body;
    body.methods = {{method, method_kind::unary}};
    std::vector<std::uint8_t> bytes;
    (void)encode_body(body, bytes);
    return {bytes.begin(), bytes.end()};
}

// The services some connection serves, from /status.
std::vector<std::string> service_names(router_process& router) {
    std::vector<std::string> names;
    const json status = json::parse(http_get(router.admin_address(), "/status").body, nullptr, false);
    if (status.is_discarded()) return names;
    for (const json& s : status["services"])
        if (!s["instances"].empty()) names.push_back(s["name"].get<std::string>());
    return names;
}

// A backend answers calls over a raw DEALER that presents `routing_id`, the
// name an attacker would have learnt. A second DEALER presents the same id
// and says no hello: its answer to the backend's pending call, its publish
// and its register reach no one, it hears nothing, and the backend keeps
// serving. Once the backend has left, a connection presenting its id starts
// from scratch. `backend_token` may register "orders" and publish on "feed";
// `caller` may call "orders"; `subscriber` may subscribe to "feed".
void expect_no_session_takeover(router_process& router, const std::string& backend_token,
                                const client_config& caller_config, const client_config& subscriber_config) {
    const std::string routing_id = "orders-backend-1";
    std::optional<raw_dealer> backend;
    backend.emplace(router.backend_url(), routing_id);
    backend->send(hello_bytes(client_role::backend, "orders-backend", backend_token));
    ASSERT_TRUE(backend->read_until(frame_kind::welcome));
    backend->send(batch_of(frame_kind::register_service, 1, "orders", register_payload("get")));
    ASSERT_TRUE(backend->read_until(frame_kind::ack));

    test_client caller(caller_config);
    test_client subscriber(subscriber_config);
    ASSERT_TRUE(caller.wait_ready() && subscriber.wait_ready());
    const std::uint32_t s = subscriber.subscribe("feed");
    ASSERT_TRUE(subscriber.wait_for(is(event_kind::ack, s)));
    const std::uint32_t pending = caller.request("orders", "get", "1");
    const auto call = backend->read_until(frame_kind::request);
    ASSERT_TRUE(call);

    raw_dealer intruder(router.backend_url(), routing_id);
    std::vector<std::uint8_t> forged = batch_of(frame_kind::publish, 0, "feed", "forged");
    for (const auto& more : {batch_of(frame_kind::register_service, 2, "evil", register_payload("m")),
                             batch_of(frame_kind::response, call->id, {}, "forged")})
        forged.insert(forged.end(), more.begin(), more.end());
    intruder.send(forged);
    EXPECT_FALSE(caller.wait_for(is(event_kind::response, pending), 1s)) << "only the backend answers its calls";
    EXPECT_FALSE(intruder.read(100ms)) << "the intruder hears nothing";

    backend->send(batch_of(frame_kind::response, call->id, {}, "genuine"));
    const auto answer = caller.wait_for(is(event_kind::response, pending));
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->payload_text(), "genuine");
    const std::uint32_t next = caller.request("orders", "get", "2");
    const auto next_call = backend->read_until(frame_kind::request);
    ASSERT_TRUE(next_call) << "the backend was not cut off";
    backend->send(batch_of(frame_kind::response, next_call->id, {}, "genuine"));
    const auto next_answer = caller.wait_for(is(event_kind::response, next));
    ASSERT_TRUE(next_answer);
    EXPECT_EQ(next_answer->payload_text(), "genuine");

    backend->send(batch_of(frame_kind::publish, 0, "feed", "genuine"));
    ASSERT_TRUE(subscriber.wait_for(is(event_kind::message)));
    EXPECT_EQ(subscriber.count([](const recorded_event& e) {
        return e.kind == event_kind::message && e.payload_text() == "forged";
    }), 0u) << "the intruder published nothing";
    EXPECT_EQ(service_names(router), std::vector<std::string>{"orders"}) << "the intruder registered nothing";

    backend.reset();
    ASSERT_TRUE(eventually([&] { return service_names(router).empty(); })) << "the router saw the backend leave";
    raw_dealer successor(router.backend_url(), routing_id);
    successor.send(batch_of(frame_kind::register_service, 3, "orders", register_payload("get")));
    const auto refused = successor.read_until(frame_kind::error);
    ASSERT_TRUE(refused) << "a new connection is a new session, whatever id it presents";
    EXPECT_EQ(static_cast<errc>(refused->code), errc::unexpected_frame);
    EXPECT_TRUE(service_names(router).empty());
}

TEST(RouterAccess, ADealerPresentingALiveBackendsRoutingIdGetsNothingOfItsSession) {
    router_process router;
    ASSERT_TRUE(router.ready());
    expect_no_session_takeover(router, "", frontend_config(router.ws_url(), "caller"),
                               frontend_config(router.ws_url(), "subscriber"));
}

TEST(RouterAccess, ADealerPresentingALiveBackendsRoutingIdGetsNothingOfItsSessionUnderTokens) {
    router_process router(access_args());
    ASSERT_TRUE(router.ready());
    expect_no_session_takeover(
        router, token("orders-service", {{"register", {"orders"}}, {"publish", {"feed"}}}),
        with_token(frontend_config(router.ws_url(), "caller"), token("alice", {{"call", {"orders"}}})),
        with_token(frontend_config(router.ws_url(), "subscriber"), token("bob", {{"subscribe", {"feed"}}})));
}

std::string hex_of(const std::string& bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

// The line of `log` that contains both `a` and `b`; empty if none.
std::string line_with(const std::string& log, const std::string& a, const std::string& b) {
    std::size_t start = 0;
    while (start < log.size()) {
        std::size_t end = log.find('\n', start);
        if (end == std::string::npos) end = log.size();
        const std::string line = log.substr(start, end - start);
        if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return line;
        start = end + 1;
    }
    return {};
}

// A routing id is how libzmq addresses a connection: whoever knows a live
// one could try to present it. The router shows a backend's address only.
TEST(RouterAccess, NoRoutingIdIsShownInStatusMetricsOrTheHelloLog) {
    router_process router;
    ASSERT_TRUE(router.ready());
    const std::string routing_id = "routing-id-to-keep";
    raw_dealer named(router.backend_url(), routing_id);
    ASSERT_TRUE(named.join("named-backend"));
    test_client native(backend_config(router.backend_url(), "native-backend"));
    ASSERT_TRUE(native.wait_ready());

    const std::string log = router.wait_for_log("name=native-backend");
    for (const char* name : {"name=named-backend", "name=native-backend"}) {
        const std::string hello = line_with(log, "conn.hello", name);
        ASSERT_FALSE(hello.empty()) << name;
        EXPECT_EQ(hello.substr(hello.find("remote=")), "remote=127.0.0.1") << hello;
    }
    const std::string status = http_get(router.admin_address(), "/status").body;
    const std::string metrics = http_get(router.admin_address(), "/metrics").body;
    for (const std::string& shown : {log, status, metrics}) {
        EXPECT_EQ(shown.find(routing_id), std::string::npos) << shown;
        EXPECT_EQ(shown.find(hex_of(routing_id)), std::string::npos) << shown;
    }
    const json view = json::parse(status);
    std::size_t backends = 0;
    for (const json& c : view["connections"]) {
        if (c["transport"] != "zeromq") continue;
        ++backends;
        EXPECT_EQ(c["remote"], "127.0.0.1") << c.dump();
    }
    EXPECT_EQ(backends, 2u);
}

// A session's address is where direct messages reach it: it is shown to its
// owner (the welcome) and to whoever it writes to, never in the logs, the
// status view or the metrics.
TEST(RouterAccess, NoDirectMessageAddressIsShownInLogsStatusOrMetrics) {
    router_process router({"--log-level", "debug"});
    ASSERT_TRUE(router.ready());
    std::string address;
    {
        test_client peer(frontend_config(router.ws_url(), "address-owner"));
        ASSERT_TRUE(peer.wait_ready());
        address = peer.session_id();
        ASSERT_FALSE(address.empty());
        const std::uint32_t s = peer.subscribe("a.b");
        ASSERT_TRUE(peer.wait_for(is(event_kind::ack, s)));
        const std::string status = http_get(router.admin_address(), "/status").body;
        const std::string metrics = http_get(router.admin_address(), "/metrics").body;
        EXPECT_NE(status.find("address-owner"), std::string::npos) << status;
        EXPECT_EQ(status.find(address), std::string::npos) << status;
        EXPECT_EQ(metrics.find(address), std::string::npos);
    }
    const std::string log = router.wait_for_log("event=conn.close");
    EXPECT_NE(log.find("name=address-owner"), std::string::npos) << log;
    EXPECT_EQ(log.find(address), std::string::npos) << log;
}

// The first failed attempt of a client that is not to get in (waited for with
// the client's bound, never read once).
std::optional<recorded_event> attempt_failure(test_client& c) {
    return c.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::state_changed && e.state == client_state::backoff && e.code != 0;
    });
}

TEST(RouterAccess, WssCarriesTheProtocolEndToEnd) {
    const certificate cert = make_self_signed_certificate();
    const std::string cert_file = write_temp_file("router.crt", cert.cert_pem);
    const std::string key_file = write_temp_file("router.key", cert.key_pem);
    router_process router(access_args({"--tls-cert-file", cert_file, "--tls-key-file", key_file}));
    ASSERT_TRUE(router.ready());
    const std::string url = "wss://" + router.http_address() + "/ws";

    host_options trusting;
    trusting.tls.ca_file = cert_file;
    test_client c(with_token(frontend_config(url), token("alice", {{"subscribe", {"a.>"}}, {"publish", {"a.>"}}})),
                  trusting);
    ASSERT_TRUE(c.wait_ready()) << c.tls_error();
    expect_ack(c, c.subscribe("a.b"), "subscribe over wss");
    expect_ack(c, c.publish("a.b", "secret", true), "publish over wss");
    const auto msg = c.wait_for(is(event_kind::message));
    ASSERT_TRUE(msg);
    EXPECT_EQ(msg->payload_text(), "secret");
    expect_error(c, c.publish("b.c", "x", true), errc::forbidden, "access control holds over wss too");

    // A client that does not trust the certificate never gets in; nor does plain ws.
    test_client untrusting(frontend_config(url));
    const auto untrusted = attempt_failure(untrusting);
    ASSERT_TRUE(untrusted) << "the untrusting client's attempt fails";
    EXPECT_EQ(untrusted->error(), errc::transport_handshake_failed) << describe(*untrusted);
    EXPECT_NE(untrusting.tls_error(), "");
    test_client plain(frontend_config(router.ws_url()));
    const auto refused = attempt_failure(plain);
    ASSERT_TRUE(refused) << "plain ws to the wss router fails";
    EXPECT_FALSE(plain.wait_ready(0ms));
    EXPECT_FALSE(untrusting.wait_ready(0ms));

    // The router's own close over TLS (the closing handshake, then the TLS
    // shutdown): a drain tells the client going_away, and the router exits
    // cleanly.
    const auto status = router.signal_and_wait(SIGTERM, 15s);
    ASSERT_TRUE(status) << "the router exits after draining";
    EXPECT_EQ(*status, 0);
    EXPECT_TRUE(c.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::state_changed && e.code == static_cast<std::uint16_t>(errc::going_away);
    })) << "the wss client was told going_away";
}

// One HTTPS request with OpenSSL's own client (no Beast on this side):
// the response's bytes, and whether the router ended TLS with its
// close_notify (SSL_RECEIVED_SHUTDOWN) before closing.
struct https_result {
    std::string response;
    bool closed_with_notify = false;
};

https_result https_get(unsigned short port, const std::string& target) {
    https_result result;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return result;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const timeval limit{10, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return result;
    }
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);  // the test reads the router's behaviour, not its certificate
    if (SSL_connect(ssl) == 1) {
        const std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
            char buffer[4096];
            int n = 0;
            while ((n = SSL_read(ssl, buffer, sizeof buffer)) > 0) result.response.append(buffer, static_cast<std::size_t>(n));
            result.closed_with_notify = (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
        }
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
    return result;
}

// HTTPS on a TLS router: a request answered over TLS, and the connection
// ended the way TLS ends it, with the router's close_notify.
TEST(RouterAccess, HttpsAnswersAndEndsTlsWithCloseNotify) {
    const certificate cert = make_self_signed_certificate();
    router_process router({"--tls-cert-file", write_temp_file("https.crt", cert.cert_pem), "--tls-key-file",
                           write_temp_file("https.key", cert.key_pem)});
    ASSERT_TRUE(router.ready());
    const https_result r = https_get(router.http_port(), "/healthz");
    EXPECT_EQ(r.response.rfind("HTTP/1.1 200", 0), 0u) << r.response;
    EXPECT_TRUE(r.closed_with_notify) << "the router shut TLS down before closing";
}

// A TLS router in open mode, with a certificate for `names`; its wss:// URL.
struct tls_router {
    explicit tls_router(const std::string& names = "IP:127.0.0.1,DNS:localhost")
        : cert(make_self_signed_certificate(names)),
          cert_file(write_temp_file("tls-router.crt", cert.cert_pem)),
          router({"--tls-cert-file", cert_file, "--tls-key-file", write_temp_file("tls-router.key", cert.key_pem)}) {}
    std::string url(const std::string& host = "127.0.0.1") const {
        return "wss://" + host + ":" + std::to_string(router.http_port()) + "/ws";
    }
    certificate cert;
    std::string cert_file;
    router_process router;
};

// The failed attempt of a client that never gets in: why, in the host's words.
TEST(RouterAccess, TheRoutersCertificateMustChainToATrustedCaAndNameTheHost) {
    tls_router tls;
    ASSERT_TRUE(tls.router.ready());
    host_options trusting;
    trusting.tls.ca_file = tls.cert_file;

    // The certificate names localhost as a DNS name too (resolved, sent in SNI).
    test_client by_name(frontend_config(tls.url("localhost")), trusting);
    ASSERT_TRUE(by_name.wait_ready()) << by_name.tls_error();

    // Without the CA file the system's CAs do not know the self-signed certificate.
    test_client untrusting(frontend_config(tls.url()));
    const auto untrusted = attempt_failure(untrusting);
    ASSERT_TRUE(untrusted);
    EXPECT_EQ(untrusted->error(), errc::transport_handshake_failed) << describe(*untrusted);
    EXPECT_NE(untrusted->text.find("TLS: the certificate of 127.0.0.1:"), std::string::npos) << untrusted->text;
    EXPECT_NE(untrusted->text.find("is not trusted: self-signed certificate (trusting the system's CAs)"),
              std::string::npos)
        << untrusted->text;

    // A CA file that cannot be read fails every attempt, and says so.
    host_options missing;
    missing.tls.ca_file = tls.cert_file + ".missing";
    test_client unloaded(frontend_config(tls.url()), missing);
    const auto unreadable = attempt_failure(unloaded);
    ASSERT_TRUE(unreadable);
    EXPECT_EQ(unreadable->error(), errc::connection_failed) << describe(*unreadable);
    EXPECT_NE(unreadable->text.find("cannot load the CA file " + missing.tls.ca_file), std::string::npos)
        << unreadable->text;
    EXPECT_FALSE(unloaded.wait_ready(200ms));
}

TEST(RouterAccess, ATrustedCertificateForAnotherHostIsRefused) {
    tls_router tls("DNS:router.example");
    ASSERT_TRUE(tls.router.ready());
    host_options trusting;
    trusting.tls.ca_file = tls.cert_file;
    test_client by_address(frontend_config(tls.url()), trusting);
    const auto wrong_address = attempt_failure(by_address);
    ASSERT_TRUE(wrong_address);
    EXPECT_EQ(wrong_address->error(), errc::transport_handshake_failed) << describe(*wrong_address);
    EXPECT_NE(wrong_address->text.find("is not trusted: IP address mismatch"), std::string::npos)
        << wrong_address->text;
    test_client by_name(frontend_config(tls.url("localhost")), trusting);
    const auto wrong_name = attempt_failure(by_name);
    ASSERT_TRUE(wrong_name);
    EXPECT_NE(wrong_name->text.find("is not trusted: hostname mismatch"), std::string::npos) << wrong_name->text;
    EXPECT_FALSE(by_address.wait_ready(200ms));
    EXPECT_FALSE(by_name.wait_ready(1ms));
}

TEST(RouterAccess, WssToAPlainRouterIsNotATlsEndpoint) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client c(frontend_config("wss://" + router.http_address() + "/ws"));
    const auto failure = attempt_failure(c);
    ASSERT_TRUE(failure);
    EXPECT_EQ(failure->error(), errc::transport_handshake_failed) << describe(*failure);
    EXPECT_NE(failure->text.find("no TLS handshake with " + router.http_address()), std::string::npos)
        << failure->text;
    EXPECT_NE(failure->text.find("not a TLS endpoint (ws://)?"), std::string::npos) << failure->text;
}

// The opt-out for tests connects to anything, and says so on every connection.
TEST(RouterAccess, AnUnverifiedWssClientWarnsOnEveryConnection) {
    tls_router tls("DNS:router.example");
    ASSERT_TRUE(tls.router.ready());
    std::mutex mu;
    std::vector<std::string> warnings;
    host_options unverified;
    unverified.tls.insecure_skip_verify = true;
    unverified.tls.warn = [&](std::string_view warning) {
        std::lock_guard lock(mu);
        warnings.emplace_back(warning);
    };
    test_client c(frontend_config(tls.url()), unverified);
    ASSERT_TRUE(c.wait_ready()) << c.tls_error();
    c.drop_transport();
    ASSERT_EQ(c.wait_count(is(event_kind::welcome), 2, 10s).size(), 2u) << "connected again";
    std::lock_guard lock(mu);
    ASSERT_EQ(warnings.size(), 2u);
    for (const std::string& w : warnings)
        EXPECT_NE(w.find("connecting to " + tls.url() + " WITHOUT verifying the router's TLS certificate"),
                  std::string::npos)
            << w;
}

}  // namespace
}  // namespace hyperstreams::testing
