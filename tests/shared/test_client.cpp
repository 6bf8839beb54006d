// The client engine's connection against the fake router and a scripted
// host: what the real router core never does (refused versions, a silent
// or malformed router, redirect loops, pings with chosen nonces) and what
// the host alone drives (transports refused or never opened, backoff,
// output batching, misuse). The connection as the real router core plays it
// is tested in tests/native/test_paired_client.cpp.
#include <gtest/gtest.h>

#include <set>

#include "fake_router.hpp"

namespace hyperstreams::testing {
namespace {

// --- handshake -----------------------------------------------------------------

TEST(ClientHandshake, VersionMismatchIsAnErrorAndTheEngineStaysFailed) {
    rig r;
    r.router.on_hello = [](const hello_body&) {
        return std::vector<wire_frame>{error_frame(0, errc::version_mismatch, "speaks 2 only")};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::failed);
    const auto errors = r.errors(operation::connection);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code, code(errc::version_mismatch));
    EXPECT_EQ(errors[0].text, "speaks 2 only");
    EXPECT_EQ(r.count(event_kind::close_transport), 1u);

    r.advance(3600 * 1000);  // no retry, ever
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.opened_urls.size(), 1u);
    EXPECT_EQ(r.engine.next_deadline(), no_deadline);
}

TEST(ClientHandshake, WelcomeWithAnotherVersionIsAViolation) {
    rig r;
    r.router.on_hello = [](const hello_body&) {
        return std::vector<wire_frame>{welcome_frame("s", 1000, 0, 0, 2)};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::version_mismatch));
}

TEST(ClientHandshake, NoWelcomeInTimeClosesAndRetries) {
    client_config c = test_config();
    c.handshake_timeout_ms = 5000;
    rig r(c);
    r.router.on_hello = [](const hello_body&) { return std::vector<wire_frame>{}; };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::handshaking);
    EXPECT_EQ(r.engine.next_deadline(), r.now + 5000);
    r.advance(4999);
    EXPECT_EQ(r.engine.state(), client_state::handshaking);
    r.advance(1);
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    const auto closes = r.of(event_kind::close_transport);
    ASSERT_EQ(closes.size(), 1u);
    EXPECT_EQ(closes[0].code, code(errc::handshake_timeout));
}

TEST(ClientHandshake, TransportThatNeverOpensTimesOut) {
    client_config c = test_config();
    c.handshake_timeout_ms = 3000;
    rig r(c);
    r.open = open_mode::manual;
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    const std::uint32_t first = r.transport;
    r.advance(3000);
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    EXPECT_EQ(r.of(event_kind::close_transport).at(0).id, first);
    // The late success of that attempt changes nothing.
    r.engine.transport_opened(first, r.now);
    EXPECT_EQ(r.engine.state(), client_state::backoff);
}

// --- reconnect -----------------------------------------------------------------

// The delay between a failure and the next open_transport, for `n` failures
// in a row (every attempt is refused by the network).
std::vector<time_ms> backoff_delays(rig& r, int n) {
    std::vector<time_ms> delays;
    r.open = open_mode::refuse;
    for (int i = 0; i < n; ++i) {
        EXPECT_EQ(r.engine.state(), client_state::backoff);
        const time_ms failed_at = r.now;
        const std::size_t opens = r.open_times.size();
        r.advance(r.engine.next_deadline() - r.now);
        EXPECT_EQ(r.open_times.size(), opens + 1);
        delays.push_back(r.open_times.back() - failed_at);
    }
    return delays;
}

TEST(ClientReconnect, StormIsBoundedWithFullJitter) {
    rig r;
    r.connect();
    r.open = open_mode::refuse;
    r.drop_transport();
    const std::vector<time_ms> delays = backoff_delays(r, 60);
    std::set<time_ms> distinct;
    for (std::size_t n = 0; n < delays.size(); ++n) {
        const time_ms cap = std::min<time_ms>(15000, time_ms{250} << std::min<std::size_t>(n, 20));
        EXPECT_GE(delays[n], 0) << "attempt " << n;
        EXPECT_LE(delays[n], cap) << "attempt " << n;
        distinct.insert(delays[n]);
    }
    EXPECT_GT(distinct.size(), 40u) << "jitter spreads the attempts";
    // Once capped, the delays use the whole range, not just its top.
    time_ms low = 15000, high = 0;
    for (std::size_t n = 10; n < delays.size(); ++n) {
        low = std::min(low, delays[n]);
        high = std::max(high, delays[n]);
    }
    EXPECT_LT(low, 5000);
    EXPECT_GT(high, 10000);
}

TEST(ClientReconnect, StableConnectionResetsTheBackoff) {
    rig r;
    r.connect();
    r.open = open_mode::refuse;
    r.drop_transport();
    backoff_delays(r, 12);  // the cap is now backoff_max_ms

    r.open = open_mode::accept;
    r.advance(r.engine.next_deadline() - r.now);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    r.advance(10000);  // stable_after_ms
    r.open = open_mode::refuse;
    r.drop_transport();
    for (time_ms d : backoff_delays(r, 3)) EXPECT_LE(d, 1000);
}

// connect_now(): the attempt the backoff waits for starts at once; outside
// backoff it is refused and changes nothing.
TEST(ClientReconnect, ConnectNowSkipsTheRestOfTheBackoff) {
    client_config c = test_config();
    c.backoff_base_ms = 60000;
    c.backoff_max_ms = 60000;
    c.seed = 7;
    rig r(c);
    EXPECT_EQ(r.engine.connect_now(r.now), make_error_code(errc::invalid_argument)) << "idle";
    r.connect();
    EXPECT_EQ(r.engine.connect_now(r.now), make_error_code(errc::invalid_argument)) << "ready";
    EXPECT_EQ(r.engine.state(), client_state::ready);
    r.drop_transport();
    ASSERT_EQ(r.engine.state(), client_state::backoff);
    ASSERT_GT(r.engine.next_deadline(), r.now + 1) << "seed 7 draws a delay longer than the test's step";
    r.advance(1);
    const std::size_t opens = r.open_times.size();
    ASSERT_FALSE(r.engine.connect_now(r.now));
    r.pump();
    EXPECT_EQ(r.open_times.size(), opens + 1);
    EXPECT_EQ(r.open_times.back(), r.now);
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

TEST(ClientReconnect, ShortConnectionsDoNotResetTheBackoff) {
    client_config c = test_config();
    c.backoff_base_ms = 1000;
    c.backoff_max_ms = 1000000;
    rig r(c);
    r.connect();
    r.open = open_mode::refuse;
    r.drop_transport();
    backoff_delays(r, 8);
    // Ready for less than stable_after_ms, then lost again: the next delay
    // still comes from a wide range (attempt 9), not from [0, base].
    std::vector<time_ms> later;
    for (int i = 0; i < 20; ++i) {
        r.open = open_mode::accept;
        r.advance(r.engine.next_deadline() - r.now);
        ASSERT_EQ(r.engine.state(), client_state::ready);
        r.advance(2000);
        r.open = open_mode::refuse;
        r.drop_transport();
        later.push_back(r.engine.next_deadline() - r.now);
    }
    EXPECT_GT(*std::max_element(later.begin(), later.end()), 1000);
}

TEST(ClientReconnect, SameSeedSameDelaysOtherSeedOtherDelays) {
    auto run = [](std::uint64_t seed) {
        client_config c = test_config();
        c.seed = seed;
        rig r(c);
        r.connect();
        r.open = open_mode::refuse;
        r.drop_transport();
        return backoff_delays(r, 10);
    };
    EXPECT_EQ(run(7), run(7));
    EXPECT_NE(run(7), run(8));
}

// What a page or a CLI shows its user from the first failed attempt on:
// the host's reason and words, and when the next attempt comes.
TEST(ClientReconnect, AFailedAttemptSaysWhyAndWhenTheNextOneComes) {
    rig r;
    r.open = open_mode::manual;
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    ASSERT_EQ(r.engine.state(), client_state::connecting);
    r.engine.transport_closed(r.transport, r.now, errc::connection_refused, "nothing listens on 127.0.0.1:1");
    r.pump();
    ASSERT_EQ(r.engine.state(), client_state::backoff);
    const seen_event backoff = r.of(event_kind::state_changed).back();
    EXPECT_EQ(backoff.state, client_state::backoff);
    EXPECT_EQ(backoff.previous, client_state::connecting);
    EXPECT_EQ(backoff.code, code(errc::connection_refused));
    EXPECT_EQ(backoff.text, "nothing listens on 127.0.0.1:1");
    EXPECT_EQ(static_cast<time_ms>(backoff.count), r.engine.next_deadline() - r.now);
    EXPECT_LE(backoff.count, 250u);
    EXPECT_TRUE(r.errors(operation::connection).empty()) << "a failed attempt is a state, not an error";

    // The next attempt fails otherwise: its own reason, words and delay.
    r.advance(r.engine.next_deadline() - r.now);
    ASSERT_EQ(r.engine.state(), client_state::connecting);
    r.engine.transport_closed(r.transport, r.now, errc::upgrade_refused, "HTTP 404 Not Found");
    r.pump();
    const seen_event second = r.of(event_kind::state_changed).back();
    EXPECT_EQ(second.code, code(errc::upgrade_refused));
    EXPECT_EQ(second.text, "HTTP 404 Not Found");
    EXPECT_EQ(static_cast<time_ms>(second.count), r.engine.next_deadline() - r.now);
    EXPECT_LE(second.count, 500u);
}

TEST(ClientReconnect, AnAttemptThatTimesOutSaysWhenTheNextOneComes) {
    client_config c = test_config();
    c.handshake_timeout_ms = 3000;
    rig r(c);
    r.open = open_mode::manual;
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    r.advance(3000);
    ASSERT_EQ(r.engine.state(), client_state::backoff);
    const seen_event backoff = r.of(event_kind::state_changed).back();
    EXPECT_EQ(backoff.code, code(errc::handshake_timeout));
    EXPECT_EQ(static_cast<time_ms>(backoff.count), r.engine.next_deadline() - r.now);
}

TEST(ClientReconnect, LateCloseOfAnOldTransportIsIgnored) {
    rig r;
    r.connect();
    const std::uint32_t old = r.transport;
    r.deliver({redirect_frame("ws://other")});
    ASSERT_EQ(r.engine.state(), client_state::ready);
    ASSERT_NE(r.transport, old);
    r.events.clear();
    r.engine.transport_closed(old, r.now);  // the old socket's close arrives late
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.states().empty());
}

// --- redirects -----------------------------------------------------------------

// PROTOCOL.md section 11 (Several routers): a client that follows the
// cluster says so in its hello and gets each routers frame's body as an
// event, for its owner to decode and act on; one that did not ask treats a
// routers frame as the router's mistake.
TEST(ClientCluster, AFollowerAsksInItsHelloAndHearsOfTheRouters) {
    client_config config = test_config();
    config.role = client_role::backend;
    config.follow_cluster = true;
    rig r(config);
    std::vector<std::uint8_t> body;
    ASSERT_FALSE(encode_body(routers_body{{{"r2", "tcp://10.0.0.2:7071"}}}, body));
    r.router.on_hello = [&](const hello_body&) {
        return std::vector<wire_frame>{welcome_frame("s-1"),
                                       simple_frame(frame_kind::routers, 0, std::string(body.begin(), body.end()))};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
    ASSERT_FALSE(r.router.messages.empty());
    EXPECT_EQ(r.router.messages[0][0].kind, frame_kind::hello);
    EXPECT_EQ(r.router.messages[0][0].flags, frame_flags::follow_cluster);
    ASSERT_EQ(r.count(event_kind::routers), 1u);
    routers_body got;
    const std::string payload = r.of(event_kind::routers)[0].payload;
    ASSERT_FALSE(decode_body(bytes(payload), got));
    ASSERT_EQ(got.routers.size(), 1u);
    EXPECT_EQ(got.routers[0].backend, "tcp://10.0.0.2:7071");
}

TEST(ClientCluster, ARoutersFrameNobodyAskedForIsUnexpected) {
    rig r;
    r.router.on_hello = [](const hello_body&) {
        return std::vector<wire_frame>{welcome_frame("s-1"), simple_frame(frame_kind::routers, 0, std::string(2, '\0'))};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.router.messages[0][0].flags, 0) << "no follow_cluster flag";
    EXPECT_EQ(r.count(event_kind::routers), 0u);
    ASSERT_GE(r.count(event_kind::error), 1u);
    EXPECT_EQ(r.of(event_kind::error)[0].code, static_cast<std::uint16_t>(errc::unexpected_frame));
}

TEST(ClientRedirect, FollowsAtOnceToTheTarget) {
    rig r;
    r.router.on_hello = [&r](const hello_body&) {
        if (r.transport_url == "ws://home")
            return std::vector<wire_frame>{redirect_frame("ws://b")};
        return std::vector<wire_frame>{welcome_frame("s-b")};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.opened_urls, (std::vector<std::string>{"ws://home", "ws://b"}));
    EXPECT_EQ(r.open_times[1], r.open_times[0]) << "no backoff before following a redirect";
    ASSERT_EQ(r.count(event_kind::redirected), 1u);
    EXPECT_EQ(r.of(event_kind::redirected)[0].name, "ws://b");
    EXPECT_EQ(r.engine.session_id(), "s-b");
}

TEST(ClientRedirect, LoopIsBoundedThenBacksOffToHome) {
    rig r;  // max_redirects 5
    int n = 0;
    r.router.on_hello = [&n](const hello_body&) {
        return std::vector<wire_frame>{redirect_frame("ws://loop-" + std::to_string(++n % 2))};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    EXPECT_EQ(r.opened_urls.size(), 6u);  // home + 5 redirects followed
    EXPECT_EQ(r.count(event_kind::redirected), 5u);
    const auto errors = r.errors(operation::connection);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].code, code(errc::too_many_redirects));

    r.advance(r.engine.next_deadline() - r.now);
    EXPECT_EQ(r.opened_urls[6], "ws://home");

    // An endless loop costs a bounded number of attempts: backoff grows to
    // its cap between rounds of at most 6 attempts.
    r.advance(10 * 60 * 1000);
    const std::size_t rounds = r.count(event_kind::redirected) / 5;
    EXPECT_LE(r.opened_urls.size(), rounds * 6 + 6);
    EXPECT_LE(rounds, 120u) << "10 minutes at a mean backoff of 7.5 s is about 80 rounds";
    EXPECT_GE(rounds, 20u);
}

TEST(ClientRedirect, CounterResetsAfterAStableConnection) {
    client_config c = test_config();
    c.max_redirects = 1;
    rig r(c);
    r.connect();
    r.advance(10000);  // stable
    r.deliver({redirect_frame("ws://b")});
    ASSERT_EQ(r.engine.state(), client_state::ready);
    r.advance(10000);
    r.deliver({redirect_frame("ws://c")});
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.errors(operation::connection).empty());
    // Two quick ones in a row, though, are over the bound of 1.
    r.deliver({redirect_frame("ws://d")});
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::too_many_redirects));
}

TEST(ClientRedirect, EmptyTargetIsAViolation) {
    rig r;
    r.connect();
    r.deliver({redirect_frame("")});
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::malformed_body));
}

// --- several routers -------------------------------------------------------------

client_config routers_config(std::vector<std::string> urls) {
    client_config c = test_config();
    c.url.clear();
    c.urls = std::move(urls);
    return c;
}

// The state changes into backoff, in order.
std::vector<seen_event> backoffs(const rig& r) {
    std::vector<seen_event> out;
    for (const seen_event& e : r.of(event_kind::state_changed))
        if (e.state == client_state::backoff) out.push_back(e);
    return out;
}

// A dead router costs one attempt and a short pause, not the backoff
// schedule: the next attempt goes to the next router of the list, and the
// event says where and how many routers the round has left.
TEST(ClientRouters, AFailedAttemptGoesOnToTheNextRouterAfterAShortPause) {
    rig r(routers_config({"ws://a", "ws://b", "ws://c"}));
    r.unreachable = {"ws://a", "ws://b"};
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    ASSERT_EQ(r.engine.state(), client_state::backoff);
    const seen_event first = backoffs(r).at(0);
    EXPECT_EQ(first.name, "ws://b");
    EXPECT_EQ(first.seq, 2u) << "b and c are left in this round";
    EXPECT_LE(first.count, 250u);
    EXPECT_EQ(static_cast<time_ms>(first.count), r.engine.next_deadline() - r.now);

    r.advance(r.engine.next_deadline() - r.now);
    const seen_event second = backoffs(r).at(1);
    EXPECT_EQ(second.name, "ws://c");
    EXPECT_EQ(second.seq, 1u);
    EXPECT_LE(second.count, 250u);

    r.advance(r.engine.next_deadline() - r.now);
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.opened_urls, (std::vector<std::string>{"ws://a", "ws://b", "ws://c"}));
    EXPECT_LE(r.open_times[2] - r.open_times[0], 500);
    const seen_event ready = r.of(event_kind::state_changed).back();
    EXPECT_EQ(ready.state, client_state::ready);
    EXPECT_EQ(ready.name, "ws://c");
}

// With every router down the list is tried round after round: the pauses
// within a round stay short, the backoff between rounds grows as it grows
// between the attempts at a single router (full jitter, capped).
TEST(ClientRouters, EveryRouterDownBacksOffBetweenRoundsOnly) {
    const std::vector<std::string> urls = {"ws://a", "ws://b", "ws://c"};
    rig r(routers_config(urls));
    r.open = open_mode::refuse;
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    for (int i = 0; i < 59; ++i) r.advance(r.engine.next_deadline() - r.now);

    const std::vector<seen_event> b = backoffs(r);
    ASSERT_EQ(b.size(), 60u);
    ASSERT_EQ(r.opened_urls.size(), 60u);
    time_ms longest_backoff = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        EXPECT_EQ(r.opened_urls[i], urls[i % 3]) << "attempt " << i;
        EXPECT_EQ(b[i].name, urls[(i + 1) % 3]) << "attempt " << i;
        const std::size_t round = i / 3;
        const auto delay = static_cast<time_ms>(b[i].count);
        if (i % 3 != 2) {
            EXPECT_EQ(b[i].seq, 2 - i % 3) << "attempt " << i;
            EXPECT_LE(delay, 250) << "attempt " << i << ": a pause within a round does not grow";
        } else {
            EXPECT_EQ(b[i].seq, 0u) << "attempt " << i << " ends round " << round;
            EXPECT_LE(delay, std::min<time_ms>(15000, time_ms{250} << std::min<std::size_t>(round, 20)))
                << "round " << round;
            if (round >= 10) longest_backoff = std::max(longest_backoff, delay);
        }
    }
    EXPECT_GT(longest_backoff, 5000) << "the backoff between rounds grew";
}

TEST(ClientRouters, ALostConnectionGoesOnToTheNextRouterRoundRobin) {
    rig r(routers_config({"ws://a", "ws://b"}));
    r.connect();
    ASSERT_EQ(r.transport_url, "ws://a");
    r.advance(10000);  // stable
    r.unreachable = {"ws://a"};
    r.drop_transport();
    const seen_event lost = backoffs(r).at(0);
    EXPECT_EQ(lost.name, "ws://b");
    EXPECT_EQ(lost.seq, 1u);
    EXPECT_LE(lost.count, 250u);
    r.advance(r.engine.next_deadline() - r.now);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.transport_url, "ws://b");

    r.advance(10000);
    r.unreachable = {"ws://b"};  // a is back, b dies
    r.drop_transport();
    EXPECT_EQ(backoffs(r).back().seq, 1u) << "b held: its loss begins a new round";
    EXPECT_LE(backoffs(r).back().count, 250u);
    r.advance(r.engine.next_deadline() - r.now);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.opened_urls, (std::vector<std::string>{"ws://a", "ws://b", "ws://a"}));
}

// A connection that did not stay ready for stable_after_ms counts as a
// failure of its round: routers that accept and then drop the client at
// once cannot make it reconnect without backing off.
TEST(ClientRouters, AConnectionLostBeforeItWasStableEndsTheRound) {
    rig r(routers_config({"ws://a", "ws://b"}));
    r.unreachable = {"ws://a"};
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    r.advance(r.engine.next_deadline() - r.now);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    r.advance(2000);
    r.drop_transport();
    const seen_event lost = backoffs(r).back();
    EXPECT_EQ(lost.name, "ws://a");
    EXPECT_EQ(lost.seq, 0u) << "a failed and b did not hold: the round is over";
}

TEST(ClientRouters, ARedirectIsFollowedAtOnceAndTheListResumesAfterIt) {
    rig r(routers_config({"ws://a", "ws://b", "ws://c"}));
    r.unreachable = {"ws://elsewhere"};
    r.router.on_hello = [&r](const hello_body&) {
        if (r.transport_url == "ws://a") return std::vector<wire_frame>{redirect_frame("ws://elsewhere")};
        return std::vector<wire_frame>{welcome_frame("s-" + r.transport_url)};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    ASSERT_GE(r.open_times.size(), 2u);
    EXPECT_EQ(r.open_times[1], r.open_times[0]) << "no pause before following a redirect";
    const seen_event failed = backoffs(r).at(0);
    EXPECT_EQ(failed.name, "ws://b");
    EXPECT_EQ(failed.seq, 2u);
    r.advance(r.engine.next_deadline() - r.now);
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.opened_urls, (std::vector<std::string>{"ws://a", "ws://elsewhere", "ws://b"}));
}

// A draining router of the cluster names another router of the list: once
// there, the list goes on from it.
TEST(ClientRouters, ARedirectToARouterOfTheListMovesTheListThere) {
    rig r(routers_config({"ws://a", "ws://b", "ws://c"}));
    r.connect();
    r.deliver({redirect_frame("ws://c")});
    ASSERT_EQ(r.engine.state(), client_state::ready);
    ASSERT_EQ(r.transport_url, "ws://c");
    r.advance(10000);
    r.drop_transport();
    EXPECT_EQ(backoffs(r).at(0).name, "ws://a") << "after c comes a, not b";
    r.advance(r.engine.next_deadline() - r.now);
    EXPECT_EQ(r.opened_urls, (std::vector<std::string>{"ws://a", "ws://c", "ws://a"}));
}

// Each router of a redirect loop gets max_redirects + 1 attempts per round,
// and the rounds back off.
TEST(ClientRouters, ARedirectLoopIsBoundedPerRouterAndBacksOffBetweenRounds) {
    rig r(routers_config({"ws://a", "ws://b"}));  // max_redirects 5
    int n = 0;
    r.router.on_hello = [&n](const hello_body&) {
        return std::vector<wire_frame>{redirect_frame("ws://loop-" + std::to_string(++n % 2))};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    r.advance(r.engine.next_deadline() - r.now);
    EXPECT_EQ(r.opened_urls.size(), 12u);
    EXPECT_EQ(r.opened_urls[6], "ws://b");
    EXPECT_EQ(backoffs(r).at(1).seq, 0u) << "a and b looped: the round is over";

    r.advance(10 * 60 * 1000);
    std::size_t rounds = 0;
    for (const seen_event& e : backoffs(r)) rounds += e.seq == 0 ? 1 : 0;
    EXPECT_LE(r.opened_urls.size(), (rounds + 1) * 12);
    EXPECT_LE(rounds, 120u) << "10 minutes at a mean backoff of 7.5 s is about 80 rounds";
    EXPECT_GE(rounds, 20u);
}

TEST(ClientRouters, ARefusedTokenIsTriedAgainOnTheSameRouter) {
    rig r(routers_config({"ws://a", "ws://b"}));
    r.unreachable = {"ws://a"};
    r.router.on_hello = [](const hello_body& h) {
        if (h.token == "token-1") return std::vector<wire_frame>{error_frame(0, errc::unauthorized, "expired")};
        return std::vector<wire_frame>{welcome_frame()};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    r.advance(r.engine.next_deadline() - r.now);
    ASSERT_EQ(r.engine.state(), client_state::awaiting_token);
    ASSERT_FALSE(r.engine.refresh_token("token-2", r.now).error);
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.opened_urls, (std::vector<std::string>{"ws://a", "ws://b", "ws://b"}));
}

// The token changed while the hello with the old one was on its way: the
// router's refusal is about a token the engine no longer holds, so it
// connects again at once with the new one instead of waiting for another.
TEST(ClientRouters, ATokenRefreshedDuringTheHandshakeOutlivesTheOldOnesRefusal) {
    client_config c = test_config();
    c.token = "token-1";
    rig r(c);
    r.router.on_hello = [](const hello_body& h) {
        if (h.token == "token-1") return std::vector<wire_frame>{};  // answered below, by hand
        return std::vector<wire_frame>{welcome_frame()};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    ASSERT_EQ(r.engine.state(), client_state::handshaking);
    ASSERT_FALSE(r.engine.refresh_token("token-2", r.now).error);
    r.pump();
    r.deliver({error_frame(0, errc::token_expired, "expired")});
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.of(event_kind::open_transport).size(), 2u);
}

// --- heartbeats -------------------------------------------------------------------

TEST(ClientHeartbeat, PingAfterAQuietIntervalAndPongKeepsItAlive) {
    rig r;  // router heartbeat 1000 ms, answers pings
    r.connect();
    EXPECT_EQ(r.engine.next_deadline(), r.now + 1000);
    r.advance(999);
    EXPECT_TRUE(r.sent(frame_kind::ping).empty());
    r.advance(1);
    ASSERT_EQ(r.sent(frame_kind::ping).size(), 1u);
    r.advance(60000);  // pongs keep it alive
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(r.sent(frame_kind::ping).size(), 61u);
    const auto pings = r.sent(frame_kind::ping);
    EXPECT_NE(pings[0].id, pings[1].id);
}

TEST(ClientHeartbeat, SilentRouterIsDeclaredDead) {
    rig r;
    r.connect();
    r.router.silent = true;
    const time_ms last_heard = r.now;
    r.advance(2999);
    EXPECT_EQ(r.engine.state(), client_state::ready);
    r.advance(1);
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    const auto closes = r.of(event_kind::close_transport);
    ASSERT_EQ(closes.size(), 1u);
    EXPECT_EQ(closes[0].code, code(errc::heartbeat_timeout));
    EXPECT_EQ(closes[0].at, last_heard + 3000);
}

// Liveness does not depend on who talks (PROTOCOL.md section 11): a client
// that only publishes hears the router's pings, one that only receives
// pings the router itself.
TEST(ClientHeartbeat, APublishOnlyClientStaysReadyOnTheRoutersPings) {
    rig r;  // heartbeat 1000 ms: dead after 3000 ms without a byte
    r.connect();
    // Five timeouts; the router pings a connection it sends nothing to,
    // at worst 1.25 intervals apart (its scan period is a quarter interval).
    for (std::uint32_t step = 1; step <= 150; ++step) {
        ASSERT_FALSE(r.engine.publish("alarms.line1", bytes("high")).error);
        r.advance(100);
        if (step % 12 == 0) r.deliver({simple_frame(frame_kind::ping, step)});
    }
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.states().empty()) << "the connection was lost and made again";
    EXPECT_EQ(r.sent(frame_kind::pong).size(), 12u);
    EXPECT_TRUE(r.sent(frame_kind::ping).empty()) << "it never stays quiet for an interval";
}

TEST(ClientHeartbeat, DeadAfterOneHeartbeatIsTakenAsTwo) {
    client_config c = test_config();
    c.dead_after_heartbeats = 1;
    rig r(c);
    r.connect();
    r.router.silent = true;  // no pongs: only the pings below
    // A live router may stay quiet for 1.25 intervals.
    for (std::uint32_t i = 1; i <= 8; ++i) {
        r.advance(1250);
        ASSERT_EQ(r.engine.state(), client_state::ready) << "after " << i * 1250 << " ms";
        r.deliver({simple_frame(frame_kind::ping, i)});
    }
    const time_ms last_heard = r.now;
    r.advance(2000);
    EXPECT_EQ(r.engine.state(), client_state::backoff);
    const auto closes = r.of(event_kind::close_transport);
    ASSERT_EQ(closes.size(), 1u);
    EXPECT_EQ(closes[0].code, code(errc::heartbeat_timeout));
    EXPECT_EQ(closes[0].at, last_heard + 2000);
}

TEST(ClientHeartbeat, RouterPingIsAnsweredWithItsNonce) {
    rig r;
    r.connect();
    r.deliver({simple_frame(frame_kind::ping, 77)});
    const auto pongs = r.sent(frame_kind::pong);
    ASSERT_EQ(pongs.size(), 1u);
    EXPECT_EQ(pongs[0].id, 77u);
}

TEST(ClientHeartbeat, ConfigIntervalWhenTheWelcomeGivesNone) {
    client_config c = test_config();
    c.heartbeat_ms = 4000;
    rig r(c);
    r.router.heartbeat_ms = 0;
    r.connect();
    EXPECT_EQ(r.engine.heartbeat_ms(), 4000u);
    EXPECT_EQ(r.engine.next_deadline(), r.now + 4000);
}

// --- outbox ------------------------------------------------------------------------

TEST(ClientOutbox, FullOutboxFailsTheCallAtOnce) {
    client_config c = test_config();
    c.outbox_limit_bytes = 100;
    rig r(c);
    const std::string payload(40, 'x');  // 12 + 3 + 40 = 55 bytes per frame
    ASSERT_FALSE(r.engine.publish("a.b", bytes(payload)).error);
    const call_result refused = r.engine.publish("a.b", bytes(payload), true);
    EXPECT_EQ(refused.error, errc::outbox_full);
    EXPECT_EQ(refused.id, 0u);
    EXPECT_EQ(r.engine.request("svc", "m", bytes(payload), 1000, r.now).error, errc::outbox_full);
    ASSERT_FALSE(r.engine.publish("a.b", bytes("small")).error);  // still fits
    r.connect();
    EXPECT_EQ(r.sent(frame_kind::publish).size(), 0u);  // connect() forgot the records...
    EXPECT_EQ(r.router.channels["a.b"].seq, 2u);        // ...but the router got both
    EXPECT_TRUE(r.of(event_kind::error).empty());
}

TEST(ClientOutbox, SubscriptionsAreStateNotOutboxItems) {
    client_config c = test_config();
    c.outbox_limit_bytes = 10;
    rig r(c);
    for (int i = 0; i < 20; ++i)
        ASSERT_FALSE(r.engine.subscribe("chan.n" + std::to_string(i)).error);
    r.connect();
    EXPECT_EQ(r.router.patterns.size(), 20u);
}

TEST(ClientOutbox, CloseFailsQueuedOperations) {
    rig r;
    const call_result p = r.engine.publish("a.b", bytes("x"), true);
    const call_result q = r.engine.request("svc", "m", {}, 0, r.now);
    ASSERT_FALSE(r.engine.close(r.now));
    r.drain();
    const auto errors = r.of(event_kind::error);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].id, p.id);
    EXPECT_EQ(errors[0].op, operation::publish);
    EXPECT_EQ(errors[0].code, code(errc::closed));
    EXPECT_EQ(errors[1].id, q.id);
    EXPECT_EQ(errors[1].op, operation::request);
}

TEST(ClientOutbox, OperationsInFlightFailWithConnectionLost) {
    rig r;
    r.connect();
    r.router.auto_ack = false;
    const call_result p = r.engine.publish("a.b", bytes("x"), true);
    r.router.silent = true;
    r.pump();
    r.drop_transport();
    const auto errors = r.errors(operation::publish);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, p.id);
    EXPECT_EQ(errors[0].code, code(errc::connection_lost));
}

// --- output ---------------------------------------------------------------------------

TEST(ClientOutput, FramesQueuedTogetherLeaveAsOneMessage) {
    rig r;
    r.connect();
    for (int i = 0; i < 5; ++i) ASSERT_FALSE(r.engine.publish("a.b", bytes("x")).error);
    ASSERT_FALSE(r.engine.subscribe("c.>").error);
    r.pump();
    ASSERT_EQ(r.router.messages.size(), 1u);
    EXPECT_EQ(r.router.messages[0].size(), 6u);
}

TEST(ClientOutput, RestoreAndOutboxShareOneMessage) {
    rig r;
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    ASSERT_FALSE(r.engine.publish("a.b", bytes("x")).error);
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    ASSERT_GE(r.router.messages.size(), 2u);
    EXPECT_EQ(r.router.messages[0].size(), 1u);  // hello
    ASSERT_EQ(r.router.messages[1].size(), 2u);
    EXPECT_EQ(r.router.messages[1][0].kind, frame_kind::subscribe);
    EXPECT_EQ(r.router.messages[1][1].kind, frame_kind::publish);
}

TEST(ClientOutput, BatchBoundSplitsAtFrameBoundaries) {
    client_config c = test_config();
    c.max_batch_bytes = 100;
    rig r(c);
    r.connect();
    const std::string small(20, 's');  // 12 + 3 + 20 = 35 bytes: two per message
    const std::string big(200, 'b');   // alone, over the bound
    for (int i = 0; i < 3; ++i) ASSERT_FALSE(r.engine.publish("a.b", bytes(small)).error);
    ASSERT_FALSE(r.engine.publish("a.b", bytes(big)).error);
    ASSERT_FALSE(r.engine.publish("a.b", bytes(small)).error);
    std::vector<std::size_t> sizes;
    while (!r.engine.output().empty()) {
        sizes.push_back(r.engine.output().size());
        r.router.receive(decode_batch(r.engine.output()));
        r.engine.consume_output();
    }
    EXPECT_EQ(sizes, (std::vector<std::size_t>{70, 35, 215, 35}));
    EXPECT_EQ(r.router.frames_of(frame_kind::publish).size(), 5u);
}

// --- violations --------------------------------------------------------------------

void expect_violation(rig& r, errc expected) {
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::failed);
    const auto errors = r.errors(operation::connection);
    ASSERT_FALSE(errors.empty());
    EXPECT_EQ(errors.back().code, code(expected));
    EXPECT_EQ(r.count(event_kind::close_transport), 1u);
}

TEST(ClientViolation, GarbageBytesFailTheEngineForGood) {
    rig r;
    r.connect();
    const call_result pending = r.engine.request("svc", "m", {}, 0, r.now);
    r.pump();
    const std::uint8_t garbage[] = {1, 0xEE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_FALSE(r.engine.receive(garbage, r.now));
    expect_violation(r, errc::unknown_kind);
    EXPECT_EQ(r.errors(operation::request).at(0).id, pending.id);

    // It stays failed: no reconnect, frames ignored, calls refused.
    r.advance(3600 * 1000);
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.opened_urls.size(), 1u);
    EXPECT_FALSE(r.engine.receive(encode_batch({welcome_frame()}), r.now));
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.engine.publish("a.b", bytes("x")).error, errc::not_connected);

    // Until the owner starts it again.
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

TEST(ClientViolation, FramesBeforeTheErrorInABatchStillCount) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    std::vector<std::uint8_t> batch = encode_batch({message_frame("a.b", 1, 1, "kept")});
    batch.insert(batch.end(), {1, 2, 3});
    ASSERT_FALSE(r.engine.receive(batch, r.now));
    r.drain();
    EXPECT_EQ(r.of(event_kind::message).at(0).payload, "kept");
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::trailing_bytes));
}

TEST(ClientViolation, EmptyMessage) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.receive({}, r.now));
    expect_violation(r, errc::empty_batch);
}

TEST(ClientViolation, FramesOnlyClientsSend) {
    for (frame_kind k : {frame_kind::hello, frame_kind::subscribe, frame_kind::publish,
                         frame_kind::register_service, frame_kind::discover,
                         frame_kind::token_refresh, frame_kind::welcome}) {
        SCOPED_TRACE(std::string(kind_name(k)));
        rig r;
        r.connect();
        wire_frame f = simple_frame(k, 1);
        if (k == frame_kind::welcome) f = welcome_frame();
        if (k == frame_kind::subscribe || k == frame_kind::publish) f.name = "a.b";
        r.router.push(f);
        expect_violation(r, errc::unexpected_frame);
    }
}

TEST(ClientViolation, TrafficBeforeTheWelcome) {
    rig r;
    r.router.on_hello = [](const hello_body&) {
        return std::vector<wire_frame>{message_frame("a.b", 1, 1), welcome_frame()};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    expect_violation(r, errc::unexpected_frame);
}

TEST(ClientViolation, MalformedWelcome) {
    rig r;
    r.router.on_hello = [](const hello_body&) {
        return std::vector<wire_frame>{simple_frame(frame_kind::welcome, 0, "xx")};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    expect_violation(r, errc::malformed_body);
}

TEST(ClientViolation, InvalidChannelName) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe(">").error);
    r.pump();
    r.router.push(message_frame("bad..name", 1, 1));
    expect_violation(r, errc::invalid_name);
}

TEST(ClientViolation, RouterErrorSayingOurBytesAreBadIsFatal) {
    rig r;
    r.router.on_hello = [](const hello_body&) {
        return std::vector<wire_frame>{error_frame(0, errc::malformed_body, "bad hello")};
    };
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::failed);
}

// --- misuse --------------------------------------------------------------------------

TEST(ClientMisuse, IsReturnedAndChangesNothing) {
    client_config c = test_config();
    rig r(c);
    r.connect();
    const std::size_t messages = r.router.messages.size();
    EXPECT_EQ(r.engine.start(r.now), errc::invalid_argument);
    EXPECT_EQ(r.engine.subscribe("a..b").error, errc::invalid_argument);
    EXPECT_EQ(r.engine.subscribe("a.>.b").error, errc::invalid_argument);
    EXPECT_EQ(r.engine.publish("a.*", bytes("x")).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.publish("a.b", bytes("x"), false, frame_flags::replayed).error,
              errc::invalid_argument);
    EXPECT_EQ(r.engine.request("svc", "a/b", {}, 0, r.now).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.request("", "m", {}, 0, r.now).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.unsubscribe(999).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.cancel(999), errc::invalid_argument);
    EXPECT_EQ(r.engine.stream_consumed(999, 1), errc::invalid_argument);
    EXPECT_EQ(r.engine.open_stream("svc", "m", {}, 0, 0, r.now).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.send_direct("", bytes("x")).error, errc::invalid_argument);
    const method_info m[] = {{"get", method_kind::unary}};
    EXPECT_EQ(r.engine.register_service("svc", m).error, errc::wrong_role);
    EXPECT_EQ(r.engine.unregister_service("svc").error, errc::wrong_role);
    EXPECT_EQ(r.engine.respond(5, bytes("x")), errc::invalid_argument);
    EXPECT_EQ(r.engine.respond_error(5, errc::handler_failed, "x"), errc::invalid_argument);
    EXPECT_EQ(r.engine.stream_send(5, bytes("x")), stream_send_status::unknown_stream);
    EXPECT_EQ(r.engine.stream_end(5), errc::invalid_argument);
    const std::string too_big(70000, 'x');  // over the welcome's max_payload
    EXPECT_EQ(r.engine.publish("a.b", bytes(too_big)).error, errc::frame_too_large);

    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.events.empty());
    EXPECT_EQ(r.router.messages.size(), messages);
}

TEST(ClientMisuse, ReceiveWithUndrainedEventsIsRefused) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    const std::vector<std::uint8_t> first = encode_batch({message_frame("a.b", 1, 1)});
    const std::vector<std::uint8_t> second = encode_batch({message_frame("a.b", 1, 2)});
    ASSERT_FALSE(r.engine.receive(first, r.now));
    EXPECT_EQ(r.engine.receive(second, r.now), errc::invalid_argument);
    r.drain();
    EXPECT_EQ(r.count(event_kind::message), 1u);
}

TEST(ClientMisuse, ClosedEngineRefusesCalls) {
    rig r;
    r.connect();
    ASSERT_FALSE(r.engine.close(r.now));
    r.pump();
    EXPECT_EQ(r.engine.state(), client_state::closed);
    EXPECT_EQ(r.sent(frame_kind::goodbye).size(), 1u) << "the goodbye is sent before closing";
    EXPECT_EQ(r.engine.close(r.now), errc::closed);
    EXPECT_EQ(r.engine.subscribe("a.b").error, errc::closed);
    EXPECT_EQ(r.engine.publish("a.b", bytes("x")).error, errc::closed);
    EXPECT_EQ(r.engine.refresh_token("t", r.now).error, errc::closed);
    EXPECT_EQ(r.engine.discover().error, errc::closed);
    EXPECT_EQ(r.engine.next_deadline(), no_deadline);
}

TEST(ClientMisuse, StartNeedsAUrl) {
    client_config c = test_config();
    c.url.clear();
    client_engine e(c);
    EXPECT_EQ(e.start(0), errc::invalid_argument);
    EXPECT_EQ(e.state(), client_state::idle);
}

TEST(ClientMisuse, StartTakesUrlOrUrlsNotBothAndNoEmptyOne) {
    client_config both = test_config();
    both.urls = {"ws://a"};
    client_engine e1(both);
    EXPECT_EQ(e1.start(0), errc::invalid_argument);
    EXPECT_EQ(e1.state(), client_state::idle);

    client_engine e2(routers_config({"ws://a", ""}));
    EXPECT_EQ(e2.start(0), errc::invalid_argument);

    client_engine e3(routers_config({"ws://a"}));
    EXPECT_FALSE(e3.start(0));
    EXPECT_EQ(e3.state(), client_state::connecting);
}

TEST(ClientMisuse, ErrorCodesHaveNames) {
    EXPECT_EQ(errc_name(code(errc::connection_lost)), "connection_lost");
    EXPECT_EQ(errc_name(code(errc::connection_refused)), "connection_refused");
    EXPECT_EQ(errc_name(code(errc::upgrade_refused)), "upgrade_refused");
    EXPECT_EQ(errc_name(code(errc::transport_handshake_failed)), "transport_handshake_failed");
    EXPECT_EQ(errc_name(code(errc::connection_failed)), "connection_failed");
    EXPECT_EQ(make_error_code(errc::outbox_full).message(), "outbox_full");
    EXPECT_EQ(operation_name(operation::token_refresh), "token_refresh");
    EXPECT_EQ(event_name(event_kind::epoch_changed), "epoch_changed");
}

}  // namespace
}  // namespace hyperstreams::testing
