// The client engine's transition table, checked as data and on the engine:
// every row moves a real engine from its state to its target, and every
// pair outside the table leaves the engine where it was.
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "fake_router.hpp"
#include "hyperstreams/client_state.hpp"

namespace hyperstreams::testing {
namespace {

using S = client_state;
using I = client_input;

const client_state all_states[] = {S::idle,    S::connecting,     S::handshaking, S::ready,
                                   S::backoff, S::awaiting_token, S::closed,      S::failed};
const client_input all_inputs[] = {
    I::start,          I::close,         I::transport_opened,    I::transport_closed,
    I::welcome,        I::redirect,      I::redirect_limit,      I::timer_expired,
    I::retryable_rejection, I::token_rejected, I::token_refreshed, I::fatal_rejection,
    I::protocol_violation};

// Written out again, independently of the header: the behaviour promised.
const std::set<std::tuple<S, I, S>> expected_rows = {
    {S::idle, I::start, S::connecting},
    {S::idle, I::close, S::closed},
    {S::connecting, I::transport_opened, S::handshaking},
    {S::connecting, I::transport_closed, S::backoff},
    {S::connecting, I::timer_expired, S::backoff},
    {S::connecting, I::close, S::closed},
    {S::handshaking, I::welcome, S::ready},
    {S::handshaking, I::transport_closed, S::backoff},
    {S::handshaking, I::timer_expired, S::backoff},
    {S::handshaking, I::redirect, S::connecting},
    {S::handshaking, I::redirect_limit, S::backoff},
    {S::handshaking, I::retryable_rejection, S::backoff},
    {S::handshaking, I::token_rejected, S::awaiting_token},
    {S::handshaking, I::fatal_rejection, S::failed},
    {S::handshaking, I::protocol_violation, S::failed},
    {S::handshaking, I::close, S::closed},
    {S::ready, I::transport_closed, S::backoff},
    {S::ready, I::timer_expired, S::backoff},
    {S::ready, I::redirect, S::connecting},
    {S::ready, I::redirect_limit, S::backoff},
    {S::ready, I::retryable_rejection, S::backoff},
    {S::ready, I::token_rejected, S::awaiting_token},
    {S::ready, I::fatal_rejection, S::failed},
    {S::ready, I::protocol_violation, S::failed},
    {S::ready, I::close, S::closed},
    {S::backoff, I::timer_expired, S::connecting},
    {S::backoff, I::close, S::closed},
    {S::awaiting_token, I::token_refreshed, S::connecting},
    {S::awaiting_token, I::close, S::closed},
    {S::closed, I::start, S::connecting},
    {S::failed, I::start, S::connecting},
    {S::failed, I::close, S::closed},
};

TEST(ClientTable, RowsAreExactlyTheExpectedOnes) {
    std::set<std::tuple<S, I, S>> rows;
    for (const client_transition& t : client_transitions) {
        EXPECT_TRUE(rows.emplace(t.from, t.input, t.to).second)
            << "duplicate row " << state_name(t.from) << " + " << input_name(t.input);
    }
    EXPECT_EQ(rows, expected_rows);
}

TEST(ClientTable, NextStateAnswersFromTheTableOnly) {
    std::size_t moves = 0;
    for (S s : all_states) {
        for (I i : all_inputs) {
            std::optional<S> want;
            for (const auto& [from, input, to] : expected_rows)
                if (from == s && input == i) want = to;
            EXPECT_EQ(next_state(s, i), want) << state_name(s) << " + " << input_name(i);
            moves += want.has_value();
        }
    }
    EXPECT_EQ(moves, expected_rows.size());
    EXPECT_EQ(std::size(all_states), client_state_count);
    EXPECT_EQ(std::size(all_inputs), client_input_count);
}

TEST(ClientTable, EveryStateCanBeLeftAndEveryInputIsUsed) {
    for (S s : all_states) {
        const bool leaves = std::any_of(std::begin(client_transitions), std::end(client_transitions),
                                        [s](const client_transition& t) { return t.from == s; });
        EXPECT_TRUE(leaves) << state_name(s) << " is a dead end";
    }
    for (I i : all_inputs) {
        const bool used = std::any_of(std::begin(client_transitions), std::end(client_transitions),
                                      [i](const client_transition& t) { return t.input == i; });
        EXPECT_TRUE(used) << input_name(i) << " moves nothing";
    }
}

// --- the engine follows the table --------------------------------------------

// An engine in state `s`, reached the way a user would get there.
void drive_to(rig& r, S s) {
    switch (s) {
        case S::idle: return;
        case S::closed: ASSERT_FALSE(r.engine.close(r.now)); break;
        default: {
            r.open = open_mode::manual;
            ASSERT_FALSE(r.engine.start(r.now));
            r.pump();
            if (s == S::connecting) break;
            r.open = open_mode::accept;
            r.router.connection_opened();
            r.transport_up = true;
            if (s == S::awaiting_token)
                r.router.on_hello = [](const hello_body&) {
                    return std::vector<wire_frame>{error_frame(0, errc::unauthorized)};
                };
            if (s == S::handshaking || s == S::failed)
                r.router.on_hello = [](const hello_body&) { return std::vector<wire_frame>{}; };
            r.engine.transport_opened(r.transport, r.now);
            r.pump();
            r.router.on_hello = nullptr;
            if (s == S::failed) {
                static const std::uint8_t garbage[] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
                ASSERT_FALSE(r.engine.receive(garbage, r.now));
                r.pump();
            }
            if (s == S::backoff) r.drop_transport();
        }
    }
    r.pump();
    ASSERT_EQ(r.engine.state(), s) << "could not reach " << state_name(s);
}

// Produces `input` the way it happens for real. Router inputs are frames,
// which the engine reads only while it holds a transport.
void inject(rig& r, I input) {
    client_engine& e = r.engine;
    auto router_says = [&r](wire_frame f) {
        std::vector<wire_frame> frames{std::move(f)};
        r.received = encode_batch(frames);  // events view it until drained
        (void)r.engine.receive(r.received, r.now);
    };
    switch (input) {
        case I::start: (void)e.start(r.now); break;
        case I::close: (void)e.close(r.now); break;
        case I::transport_opened: e.transport_opened(r.transport, r.now); break;
        case I::transport_closed: e.transport_closed(r.transport, r.now); break;
        case I::welcome: router_says(welcome_frame()); break;
        case I::redirect:
        case I::redirect_limit: router_says(redirect_frame("ws://elsewhere")); break;
        case I::timer_expired: e.handle_timeout(r.now + 24 * 3600 * 1000); break;
        case I::retryable_rejection: router_says(goodbye_frame(errc::going_away)); break;
        case I::token_rejected: router_says(goodbye_frame(errc::token_expired)); break;
        case I::token_refreshed: (void)e.refresh_token("token-2", r.now); break;
        case I::fatal_rejection: router_says(goodbye_frame(errc::version_mismatch)); break;
        case I::protocol_violation: {
            static const std::uint8_t garbage[] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
            (void)e.receive(garbage, r.now);
            break;
        }
    }
}

client_config config_for(I input) {
    client_config c = test_config();
    if (input == I::redirect_limit) c.max_redirects = 0;  // the first redirect is one too many
    return c;
}

TEST(ClientTable, EngineTakesEveryRow) {
    for (const client_transition& t : client_transitions) {
        SCOPED_TRACE(std::string(state_name(t.from)) + " + " + std::string(input_name(t.input)));
        rig r(config_for(t.input));
        drive_to(r, t.from);
        r.events.clear();
        inject(r, t.input);
        EXPECT_EQ(r.engine.state(), t.to);
        r.drain();
        ASSERT_FALSE(r.states().empty());
        EXPECT_EQ(r.states().front(), t.to);
        EXPECT_EQ(r.of(event_kind::state_changed).front().previous, t.from);
    }
}

TEST(ClientTable, EngineIgnoresEveryOtherPair) {
    for (S s : all_states) {
        for (I i : all_inputs) {
            if (next_state(s, i)) continue;
            SCOPED_TRACE(std::string(state_name(s)) + " + " + std::string(input_name(i)));
            rig r(config_for(i));
            drive_to(r, s);
            r.events.clear();
            inject(r, i);
            r.drain();
            if (s == S::ready && i == I::welcome) {
                // A second welcome is not a welcome: it breaks the protocol.
                EXPECT_EQ(r.engine.state(), S::failed);
                continue;
            }
            EXPECT_EQ(r.engine.state(), s);
            EXPECT_TRUE(r.states().empty());
        }
    }
}

TEST(ClientTable, NamesAreDistinct) {
    std::set<std::string_view> names;
    for (S s : all_states) names.insert(state_name(s));
    EXPECT_EQ(names.size(), client_state_count);
    names.clear();
    for (I i : all_inputs) names.insert(input_name(i));
    EXPECT_EQ(names.size(), client_input_count);
}

}  // namespace
}  // namespace hyperstreams::testing
