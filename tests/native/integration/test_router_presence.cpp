// Presence on the real router binary (docs/PROTOCOL.md section 11,
// Presence): who is subscribed to a channel of a namespace with presence,
// join and leave events for the subscriptions that ask, and each bad call's
// named error. Real clients over WebSocket; tokens give subjects and rights.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"
#include "token_maker.hpp"

namespace hyperstreams::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string secret = "presence-test-secret-0123456789abcdef";

// room.> has presence and join/leave, lobby.> presence only, secret.>
// presence but anonymous clients may not subscribe to it, chat.> nothing.
std::vector<std::string> presence_args() {
    static const std::string secret_file = write_temp_file("presence-hs256.secret", secret + "\n");
    return {"--auth-mode", "tokens",
            "--auth-hs256-secret-file", secret_file,
            "--auth-anonymous", R"({"subscribe":["room.>","lobby.>","chat.>"]})",
            "--channels-namespaces",
            R"([{"pattern":"room.>","presence":true,"join_leave":true},)"
            R"({"pattern":"lobby.>","presence":true},{"pattern":"secret.>","presence":true}])"};
}

client_config with_token(client_config c, const std::string& sub) {
    c.token = sign_hs256(secret, {{"sub", sub}, {"exp", unix_now() + 600}, {"hs", {{"subscribe", {"room.>"}}}}});
    return c;
}

struct member {
    std::string address, subject, name;
    bool operator==(const member&) const = default;
};

std::string session_of(test_client& c) {
    return c.run([](client_engine& e, time_ms) { return std::string(e.session_id()); });
}

std::uint32_t subscribe_with_events(test_client& c, const std::string& channel) {
    const call_result r = c.run([&](client_engine& e, time_ms) {
        return e.subscribe(channel, {.join_leave = true});
    });
    EXPECT_FALSE(r.error) << r.error.message();
    return r.id;
}

std::uint32_t ask_presence(test_client& c, const std::string& channel) {
    const call_result r = c.run([&](client_engine& e, time_ms) { return e.presence(channel); });
    EXPECT_FALSE(r.error) << r.error.message();
    return r.id;
}

member member_of(const recorded_event& e) {
    EXPECT_EQ(e.members.size(), 1u) << describe(e);
    if (e.members.empty()) return {};
    return {e.members.front().address, e.members.front().subject, e.members.front().name};
}

// The answer to presence call `id`: the count and the members, by address.
struct listing {
    std::uint32_t count = 0;
    std::vector<member> members;
};
std::optional<listing> presence_of(test_client& c, const std::string& channel) {
    const std::uint32_t id = ask_presence(c, channel);
    const auto ev = c.wait_for(is(event_kind::presence, id));
    if (!ev) return std::nullopt;
    listing out;
    out.count = ev->presence_count;
    for (const auto& m : ev->members) out.members.push_back({m.address, m.subject, m.name});
    std::sort(out.members.begin(), out.members.end(),
              [](const member& a, const member& b) { return a.address < b.address; });
    return out;
}

errc error_of(test_client& c, std::uint32_t id) {
    const auto ev = c.wait_for([id](const recorded_event& e) {
        return (e.kind == event_kind::error || e.kind == event_kind::ack || e.kind == event_kind::presence) &&
               e.id == id;
    });
    if (!ev) return errc{};
    EXPECT_EQ(ev->kind, event_kind::error) << describe(*ev);
    return ev->error();
}

TEST(RouterPresence, ListsTheExactSubscribersWithAddressSubjectAndName) {
    router_process router(presence_args());
    ASSERT_TRUE(router.ready());
    test_client alice(with_token(frontend_config(router.ws_url(), "alice-dashboard"), "alice"));
    test_client hmi(frontend_config(router.ws_url(), "hmi"));
    test_client wildcard(frontend_config(router.ws_url(), "wildcard"));
    test_client asker(frontend_config(router.ws_url(), "asker"));
    ASSERT_TRUE(alice.wait_ready() && hmi.wait_ready() && wildcard.wait_ready() && asker.wait_ready());

    for (test_client* c : {&alice, &hmi}) {
        const std::uint32_t s = c->subscribe("room.a");
        ASSERT_TRUE(c->wait_for(is(event_kind::ack, s)));
    }
    const std::uint32_t w = wildcard.subscribe("room.*");
    ASSERT_TRUE(wildcard.wait_for(is(event_kind::ack, w)));

    const auto list = presence_of(asker, "room.a");
    ASSERT_TRUE(list);
    EXPECT_EQ(list->count, 2u) << "a pattern subscription makes no member";
    std::vector<member> expected{{session_of(alice), "alice", "alice-dashboard"}, {session_of(hmi), "", "hmi"}};
    std::sort(expected.begin(), expected.end(), [](const member& a, const member& b) { return a.address < b.address; });
    EXPECT_EQ(list->members, expected);

    const auto empty = presence_of(asker, "room.nobody");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->count, 0u);
    EXPECT_TRUE(empty->members.empty());
}

TEST(RouterPresence, JoinsAndLeavesReachTheSubscriptionsThatAskedOnly) {
    router_process router(presence_args());
    ASSERT_TRUE(router.ready());
    test_client watcher(frontend_config(router.ws_url(), "watcher"));
    test_client plain(frontend_config(router.ws_url(), "plain"));
    test_client leaver(frontend_config(router.ws_url(), "leaver"));
    test_client crasher(reconnect_on_demand(frontend_config(router.ws_url(), "crasher")));
    ASSERT_TRUE(watcher.wait_ready() && plain.wait_ready() && leaver.wait_ready() && crasher.wait_ready());

    const std::uint32_t ws = subscribe_with_events(watcher, "room.b");
    ASSERT_TRUE(watcher.wait_for(is(event_kind::ack, ws)));
    const std::uint32_t ps = plain.subscribe("room.b");
    ASSERT_TRUE(plain.wait_for(is(event_kind::ack, ps)));
    const auto plain_joined = watcher.wait_for(is(event_kind::join));
    ASSERT_TRUE(plain_joined);
    EXPECT_EQ(plain_joined->name, "room.b");
    EXPECT_EQ(plain_joined->subscription, ws);
    EXPECT_EQ(member_of(*plain_joined), (member{session_of(plain), "", "plain"}));

    // A member that unsubscribes leaves.
    const std::uint32_t ls = leaver.subscribe("room.b");
    ASSERT_TRUE(leaver.wait_for(is(event_kind::ack, ls)));
    ASSERT_EQ(watcher.wait_count(is(event_kind::join), 2).size(), 2u);
    const std::string leaver_address = session_of(leaver);
    const std::uint32_t unsub = leaver.run([&](client_engine& e, time_ms) { return e.unsubscribe(ls); }).id;
    ASSERT_TRUE(leaver.wait_for(is(event_kind::ack, unsub)));
    const auto left = watcher.wait_for(is(event_kind::leave));
    ASSERT_TRUE(left);
    EXPECT_EQ(member_of(*left), (member{leaver_address, "", "leaver"}));

    // A disconnect is a leave.
    const std::uint32_t cs = crasher.subscribe("room.b");
    ASSERT_TRUE(crasher.wait_for(is(event_kind::ack, cs)));
    ASSERT_EQ(watcher.wait_count(is(event_kind::join), 3).size(), 3u);
    const std::string crasher_address = session_of(crasher);
    crasher.drop_transport();
    const auto gone = watcher.wait_count(is(event_kind::leave), 2);
    ASSERT_EQ(gone.size(), 2u);
    EXPECT_EQ(member_of(gone[1]), (member{crasher_address, "", "crasher"}));
    const auto now = presence_of(watcher, "room.b");
    ASSERT_TRUE(now);
    EXPECT_EQ(now->count, 2u) << "the watcher and plain";

    // Plain did not ask: an answer it gets after all of the above came
    // after anything the router queued it before.
    ASSERT_TRUE(presence_of(plain, "room.b"));
    EXPECT_EQ(plain.count(is(event_kind::join)) + plain.count(is(event_kind::leave)), 0u);
    // Nobody hears of itself.
    EXPECT_EQ(watcher.count(is(event_kind::join)), 3u);
}

TEST(RouterPresence, EachBadCallFailsWithItsName) {
    router_process router(presence_args());
    ASSERT_TRUE(router.ready());
    test_client c(frontend_config(router.ws_url(), "caller"));
    ASSERT_TRUE(c.wait_ready());

    EXPECT_EQ(error_of(c, ask_presence(c, "chat.general")), errc::not_enabled) << "no namespace with presence";
    EXPECT_EQ(error_of(c, ask_presence(c, "secret.plans")), errc::forbidden) << "the token may not subscribe there";
    EXPECT_EQ(error_of(c, subscribe_with_events(c, "lobby.main")), errc::not_enabled) << "presence without join_leave";
    const std::uint32_t no_namespace = subscribe_with_events(c, "chat.general");
    EXPECT_EQ(error_of(c, no_namespace), errc::not_enabled);
    const auto said = c.wait_for(is_error(no_namespace));
    ASSERT_TRUE(said);
    EXPECT_EQ(said->text, "no namespace with join_leave holds this channel");
    // The engine refuses a pattern before it leaves.
    EXPECT_EQ(c.run([](client_engine& e, time_ms) { return e.presence("room.*"); }).error, errc::invalid_argument);
    // lobby.> has presence: an answer.
    ASSERT_TRUE(presence_of(c, "lobby.main"));
}

// What the engine never sends, on the wire: each a named error, and the
// connection goes on.
TEST(RouterPresence, BadFramesOnTheWireFailByName) {
    router_process router(presence_args());
    ASSERT_TRUE(router.ready());
    raw_ws ws(router.http_address());
    ASSERT_TRUE(ws.join());
    const auto answer = [&](frame f) -> errc {
        if (!ws.send(encode_batch({f}))) return errc{};
        const auto error = ws.read_until(frame_kind::error);
        if (!error) return errc{};
        EXPECT_EQ(error->id, f.id);
        return static_cast<errc>(error->code);
    };
    frame f;
    f.kind = frame_kind::presence;
    f.id = 1;
    f.name = "room.*";
    EXPECT_EQ(answer(f), errc::invalid_name) << "presence of a pattern";
    f.kind = frame_kind::subscribe;
    f.id = 2;
    f.flags = frame_flags::join_leave;
    EXPECT_EQ(answer(f), errc::protocol_violation) << "join_leave on a pattern";
    for (const frame_kind kind : {frame_kind::presence_list, frame_kind::join, frame_kind::leave}) {
        frame only_router;
        only_router.kind = kind;
        only_router.id = 3;
        EXPECT_EQ(answer(only_router), errc::unexpected_frame) << kind_name(kind);
    }
    f.kind = frame_kind::presence;
    f.id = 4;
    f.flags = 0;
    f.name = "room.a";
    ASSERT_TRUE(ws.send(encode_batch({f})));
    const auto list = ws.read_until(frame_kind::presence_list);
    ASSERT_TRUE(list) << "the connection goes on";
    EXPECT_EQ(list->id, 4u);
}

}  // namespace
}  // namespace hyperstreams::testing
