// The client engine's connection against the real router core: handshake,
// token refusal, expiry and refresh, drain and reconnect, heartbeats both
// ways and the outbox. Real engines and a real core in memory, on a fake
// clock (support/paired.hpp).
#include <gtest/gtest.h>

#include "paired.hpp"

namespace hyperstreams::testing {
namespace {

using namespace std::chrono_literals;
using router::transport_kind;

// --- handshake -----------------------------------------------------------------

TEST(ClientHandshake, HelloCarriesVersionsRoleNameAndToken) {
    client_config c = test_config();
    c.role = client_role::backend;
    paired p;
    peer& r = p.add(c);
    ASSERT_FALSE(r.engine.start(p.now));
    p.pump();
    ASSERT_EQ(r.hellos.size(), 1u);
    const hello_record& h = r.hellos[0];
    EXPECT_EQ(h.min_version, 1);
    EXPECT_EQ(h.max_version, 1);
    EXPECT_EQ(h.role, client_role::backend);
    EXPECT_EQ(r.hellos[0].name, "test-client");
    EXPECT_EQ(r.hellos[0].token, "token-1");
    EXPECT_EQ(r.hellos[0].resume_session, "");  // nothing to resume yet
    EXPECT_EQ(r.opened_urls, std::vector<std::string>{"ws://home"});
}

TEST(ClientHandshake, WelcomeMakesItReadyWithTheSession) {
    router::router_config cfg = paired_config();
    cfg.heartbeat_interval_ms = 2500;
    cfg.heartbeat_timeout_ms = 7500;
    paired p(cfg);
    peer& r = p.add(test_config());
    ASSERT_FALSE(r.engine.start(p.now));
    p.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.states(), (std::vector<client_state>{client_state::connecting,
                                                    client_state::handshaking,
                                                    client_state::ready}));
    ASSERT_EQ(r.count(event_kind::welcome), 1u);
    ASSERT_EQ(r.sessions.size(), 1u);  // the session id the router's welcome gave
    EXPECT_EQ(r.of(event_kind::welcome)[0].name, r.sessions[0]);
    EXPECT_EQ(r.engine.session_id(), r.sessions[0]);
    EXPECT_EQ(r.engine.router_id(), "router-a");
    EXPECT_EQ(r.engine.heartbeat_ms(), 2500u);
}

TEST(ClientHandshake, ReconnectAsksToResumeThePreviousSession) {
    paired p;
    peer& r = p.add(test_config());
    r.connect();
    r.drop_transport();
    p.advance(20000);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    ASSERT_EQ(r.hellos.size(), 2u);
    ASSERT_EQ(r.sessions.size(), 2u);
    EXPECT_EQ(r.hellos[1].resume_session, r.sessions[0]);
    EXPECT_EQ(r.engine.session_id(), r.sessions[1]);
    EXPECT_NE(r.sessions[1], r.sessions[0]);
}

TEST(ClientHandshake, RejectedTokenWaitsForANewTokenInsteadOfLooping) {
    paired p;
    p.auth.refuse("token-1", errc::token_expired, "expired");
    peer& r = p.add(test_config());
    ASSERT_FALSE(r.engine.start(p.now));
    p.pump();
    EXPECT_EQ(r.engine.state(), client_state::awaiting_token);
    ASSERT_EQ(r.errors(operation::connection).size(), 1u);
    EXPECT_EQ(r.errors(operation::connection)[0].code, code(errc::token_expired));

    p.advance(3600 * 1000);
    EXPECT_EQ(r.hellos.size(), 1u) << "a refused token must not be retried";
    EXPECT_EQ(r.engine.next_deadline(), no_deadline);

    const call_result refresh = r.engine.refresh_token("token-2", p.now);
    ASSERT_FALSE(refresh.error);
    p.pump();  // connects at once, no backoff
    EXPECT_EQ(r.engine.state(), client_state::ready);
    ASSERT_EQ(r.hellos.size(), 2u);
    EXPECT_EQ(r.hellos[1].token, "token-2");
    // The refresh is confirmed over the new connection.
    ASSERT_EQ(r.count(event_kind::token_refreshed), 1u);
    EXPECT_EQ(r.of(event_kind::token_refreshed)[0].id, refresh.id);
}

// The router ends the connection once the token and its grace ran out.
TEST(ClientHandshake, TokenExpiringMidSessionWaitsForANewToken) {
    paired p;
    p.auth.expire_after("token-1", 5s);
    peer& r = p.add(test_config());
    r.connect();
    p.advance(5000 + p.cfg.auth_expiry_grace_ms);
    EXPECT_EQ(r.engine.state(), client_state::awaiting_token);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::token_expired));
    EXPECT_EQ(r.count(event_kind::close_transport), 1u);
}

TEST(ClientHandshake, RetryableRefusalBacksOff) {
    paired p;
    p.auth.refuse("token-1", errc::too_many_connections, "full");
    peer& r = p.add(test_config());
    ASSERT_FALSE(r.engine.start(p.now));
    p.pump();
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::too_many_connections));
    p.auth.stop_refusing("token-1");
    p.advance(1000);
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

TEST(ClientHandshake, TokenRefreshOverTheOpenConnection) {
    paired p;
    p.auth.refuse("forged", errc::unauthorized, "bad signature");
    peer& r = p.add(test_config());
    r.connect();
    const call_result ok = r.engine.refresh_token("token-2", p.now);
    ASSERT_FALSE(ok.error);
    p.pump();
    const auto refreshes = r.sent(frame_kind::token_refresh);
    ASSERT_EQ(refreshes.size(), 1u);
    EXPECT_EQ(refreshes[0].payload, "token-2");
    EXPECT_EQ(refreshes[0].id, ok.id);
    ASSERT_EQ(r.count(event_kind::token_refreshed), 1u);
    EXPECT_EQ(r.of(event_kind::token_refreshed)[0].id, ok.id);

    // Refused refresh: an error naming the operation.
    const call_result bad = r.engine.refresh_token("forged", p.now);
    p.pump();
    const auto errors = r.errors(operation::token_refresh);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, bad.id);
    EXPECT_EQ(errors[0].code, code(errc::unauthorized));

    // The next hello carries the latest token.
    r.drop_transport();
    p.advance(20000);
    EXPECT_EQ(r.hellos.back().token, "forged");
}

// --- drain and reconnect ----------------------------------------------------------

// The router drains, and comes back after a restart.
TEST(ClientReconnect, GoingAwayReconnectsAndRestores) {
    paired p;
    peer& r = p.add(test_config());
    r.connect();
    const call_result sub = r.engine.subscribe("a.b");
    p.pump();
    p.begin_drain();
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    EXPECT_TRUE(r.errors(operation::connection).empty()) << "a drain is not an error";
    EXPECT_EQ(r.of(event_kind::state_changed).back().code, code(errc::going_away));
    p.restart_router(2);
    p.advance(1000);
    EXPECT_EQ(r.engine.state(), client_state::ready);
    const auto subs = r.sent(frame_kind::subscribe);
    ASSERT_EQ(subs.size(), 2u);
    EXPECT_EQ(subs[1].id, sub.id);
    EXPECT_EQ(subs[1].name, "a.b");
}

// --- heartbeats -------------------------------------------------------------------

TEST(ClientHeartbeat, NoPingWhileSendingAnyway) {
    paired p;
    peer& r = p.add(test_config());
    r.connect();
    for (int i = 0; i < 10; ++i) {
        p.advance(500);
        ASSERT_FALSE(r.engine.publish("a.b", bytes("x")).error);
        p.pump();
    }
    EXPECT_TRUE(r.sent(frame_kind::ping).empty());
}

// Liveness does not depend on who talks (PROTOCOL.md section 11): a client
// that only publishes hears the router's pings, one that only receives
// pings the router itself.
TEST(ClientHeartbeat, AReceiveOnlyClientKeepsPinging) {
    paired p;
    peer& publisher = p.add(test_config());
    peer& r = p.add(test_config());
    publisher.connect();
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("alarms.>").error);
    p.pump();
    std::vector<time_ms> pinged;
    for (int step = 0; step < 150; ++step) {
        ASSERT_FALSE(publisher.engine.publish("alarms.line1", bytes("high")).error);
        p.advance(100);
        if (r.sent(frame_kind::ping).size() > pinged.size()) pinged.push_back(p.now);
    }
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.states().empty());
    EXPECT_EQ(r.count(event_kind::message), 150u);
    // The subscribe went out first; then nothing but a ping per interval.
    ASSERT_GE(pinged.size(), 13u);
    for (std::size_t i = 1; i < pinged.size(); ++i) EXPECT_EQ(pinged[i] - pinged[i - 1], 1000);
}

TEST(ClientHeartbeat, ClientEnginesThatOnlyPublishOrOnlyReceiveStayConnected) {
    client_config backend_config = test_config();
    backend_config.url = "tcp://router";
    backend_config.role = client_role::backend;
    paired p;
    peer& backend = p.add(backend_config, transport_kind::zeromq);
    peer& frontend = p.add(test_config());
    peer& subscriber = p.add(test_config());
    const std::vector<peer*> all{&backend, &frontend, &subscriber};
    for (peer* e : all) e->connect();
    ASSERT_FALSE(subscriber.engine.subscribe("alarms.>").error);
    p.pump();
    for (peer* e : all) {
        ASSERT_EQ(e->engine.state(), client_state::ready);
        e->forget_records();
    }
    // Five timeouts of either side (3 s): the backend and the frontend only
    // publish, the subscriber only receives.
    for (int step = 0; step < 150; ++step) {
        ASSERT_FALSE(backend.engine.publish("alarms.line1", bytes("high")).error);
        ASSERT_FALSE(frontend.engine.publish("clicks.home", bytes("high")).error);
        p.advance(100);
    }
    for (peer* e : all) {
        EXPECT_EQ(e->engine.state(), client_state::ready) << e->engine.config().url;
        EXPECT_TRUE(e->states().empty()) << e->engine.config().url << ": the connection was lost and made again";
    }
    EXPECT_EQ(p.router().connection_count(), 3u);
    EXPECT_GE(backend.received(frame_kind::ping).size(), 12u) << "the router pings what it sends nothing to";
    EXPECT_GE(frontend.received(frame_kind::ping).size(), 12u);
    EXPECT_GE(subscriber.sent(frame_kind::ping).size(), 12u) << "the subscriber pings what it sends nothing to";
    EXPECT_EQ(subscriber.count(event_kind::message), 150u);
}

// --- outbox ------------------------------------------------------------------------

TEST(ClientOutbox, CallsWhileDisconnectedAreSentAfterTheWelcomeInOrder) {
    paired p;
    peer& r = p.add(test_config());
    ASSERT_FALSE(r.engine.publish("a.one", bytes("1")).error);  // before start
    ASSERT_FALSE(r.engine.start(p.now));
    p.pump();
    r.drop_transport();
    ASSERT_FALSE(r.engine.publish("a.two", bytes("2")).error);
    const call_result acked = r.engine.publish("a.three", bytes("3"), true);
    ASSERT_FALSE(acked.error);
    ASSERT_NE(acked.id, 0u);
    p.advance(2000);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    const auto publishes = r.sent(frame_kind::publish);
    ASSERT_EQ(publishes.size(), 3u);
    EXPECT_EQ(publishes[0].payload, "1");
    EXPECT_EQ(publishes[1].payload, "2");
    EXPECT_EQ(publishes[2].payload, "3");
    ASSERT_EQ(r.count(event_kind::ack), 1u);
    EXPECT_EQ(r.of(event_kind::ack)[0].id, acked.id);
}

}  // namespace
}  // namespace hyperstreams::testing
