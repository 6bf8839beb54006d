// Server-side subscriptions on the real router binary (docs/PROTOCOL.md
// section 11): a token's channels subscribed at hello, a backend that
// subscribes and unsubscribes a connection by its address over ZeroMQ, each
// refusal by name (the backend's right, the connection's own, an unknown
// address, twice, malformed frames, a frontend that tries), and a reconnect
// that keeps such a subscription without loss or duplicate.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"
#include "token_maker.hpp"

namespace hyperstreams::testing {
namespace {

using nlohmann::json;

const std::string secret = "server-subscriptions-secret-0123456789";

std::string token(const std::string& sub, const json& hs) {
    return sign_hs256(secret, {{"sub", sub}, {"exp", unix_now() + 600}, {"hs", hs}});
}

client_config with_token(client_config c, std::string t) {
    c.token = std::move(t);
    return c;
}

std::vector<std::string> token_args() {
    static const std::string secret_file = write_temp_file("hs256.secret", secret + "\n");
    return {"--router-id", "r1", "--auth-mode", "tokens", "--auth-hs256-secret-file", secret_file};
}

// The ack or error answering `id`: errc{} for an ack.
std::optional<errc> verdict_of(test_client& c, std::uint32_t id) {
    const auto ev = c.wait_for(answer_to(id));
    if (!ev) return std::nullopt;
    return ev->kind == event_kind::ack ? errc{} : ev->error();
}

std::uint32_t subscribe_client(test_client& backend, const std::string& address, const std::string& pattern,
                               slow_policy policy = slow_policy::router_default) {
    const call_result r = backend.run([&](client_engine& e, time_ms) {
        return e.subscribe_client(address, pattern, policy);
    });
    EXPECT_FALSE(r.error) << r.error.message();
    return r.id;
}

std::uint32_t unsubscribe_client(test_client& backend, const std::string& address, const std::string& pattern) {
    const call_result r = backend.run([&](client_engine& e, time_ms) { return e.unsubscribe_client(address, pattern); });
    EXPECT_FALSE(r.error) << r.error.message();
    return r.id;
}

std::vector<std::string> payloads_on(test_client& c, const std::string& channel) {
    std::vector<std::string> out;
    for (const recorded_event& e : c.events(message_on(channel))) out.push_back(e.payload_text());
    return out;
}

TEST(RouterServerSubscriptions, TheTokensChannelsAreSubscribedAtHelloAndTheirMessagesArrive) {
    router_process router(token_args());
    ASSERT_TRUE(router.ready());
    test_client alice(with_token(frontend_config(router.ws_url(), "alice"),
                                 token("alice", {{"subscribe", {"orders.>"}}, {"channels", {"orders.alice.>"}}})));
    test_client shop(with_token(frontend_config(router.ws_url(), "shop"), token("shop", {{"publish", {"orders.>"}}})));
    ASSERT_TRUE(alice.wait_ready() && shop.wait_ready());
    const auto subscribed = alice.wait_for(is(event_kind::subscribed));
    ASSERT_TRUE(subscribed);
    EXPECT_EQ(subscribed->name, "orders.alice.>");

    ASSERT_TRUE(shop.wait_for(answer_to(shop.publish("orders.bob.1", "for bob", true))));
    ASSERT_TRUE(shop.wait_for(answer_to(shop.publish("orders.alice.1", "for alice", true))));
    const auto got = alice.wait_for(message_on("orders.alice.1"));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload_text(), "for alice");
    EXPECT_EQ(got->subscription, subscribed->subscription);
    EXPECT_EQ(alice.count(message_on("orders.bob.1")), 0u);
}

TEST(RouterServerSubscriptions, AChannelTheTokenMayNotSubscribeToMakesItInvalid) {
    router_process router(token_args());
    ASSERT_TRUE(router.ready());
    const json uncovered = {{"subscribe", {"orders.alice.>"}}, {"channels", {"orders.bob.>"}}};
    const json denied = {{"subscribe", {"orders.>"}},
                         {"channels", {"orders.*.new"}},
                         {"deny", {{"subscribe", {"orders.carol.>"}}}}};
    for (const json& hs : {uncovered, denied}) {
        test_client c(with_token(frontend_config(router.ws_url()), token("mallory", hs)));
        const auto refused = c.wait_for([](const recorded_event& e) { return e.kind == event_kind::error && e.id == 0; });
        ASSERT_TRUE(refused) << hs.dump();
        EXPECT_EQ(refused->error(), errc::unauthorized) << hs.dump();
        const std::string pattern = hs["channels"][0];
        EXPECT_NE(refused->text.find("'" + pattern + "'"), std::string::npos) << refused->text;
        EXPECT_EQ(c.count(is(event_kind::subscribed)), 0u);
    }
}

TEST(RouterServerSubscriptions, ABackendSubscribesAConnectionByItsAddressAndUnsubscribesIt) {
    router_process router(token_args());
    ASSERT_TRUE(router.ready());
    test_client backend(with_token(backend_config(router.backend_url(), "orders"),
                                   token("orders", {{"subscribe_clients", {"orders.>"}}, {"publish", {"orders.>"}}})));
    test_client carol(with_token(frontend_config(router.ws_url(), "carol"), token("carol", {{"subscribe", {"orders.carol.>"}}})));
    ASSERT_TRUE(backend.wait_ready() && carol.wait_ready());
    const std::string address = carol.session_id();

    ASSERT_EQ(verdict_of(backend, subscribe_client(backend, address, "orders.carol.>", slow_policy::keep_latest)),
              errc{});
    const auto subscribed = carol.wait_for(is(event_kind::subscribed));
    ASSERT_TRUE(subscribed);
    EXPECT_EQ(subscribed->name, "orders.carol.>");
    EXPECT_EQ(policy_of(subscribed->flags), slow_policy::keep_latest);
    ASSERT_TRUE(backend.wait_for(answer_to(backend.publish("orders.carol.7", "shipped", true))));
    const auto got = carol.wait_for(message_on("orders.carol.7"));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->subscription, subscribed->subscription);

    ASSERT_EQ(verdict_of(backend, unsubscribe_client(backend, address, "orders.carol.>")), errc{});
    const auto ended = carol.wait_for(is(event_kind::unsubscribed));
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->subscription, subscribed->subscription);
    EXPECT_EQ(ended->code, 0u);
    ASSERT_TRUE(backend.wait_for(answer_to(backend.publish("orders.carol.8", "after", true))));
    // A marker on a channel carol holds herself, published after: once it
    // arrived, "after" would have too.
    const std::uint32_t own = carol.subscribe("orders.carol.marker");
    ASSERT_TRUE(carol.wait_for(answer_to(own)));
    ASSERT_TRUE(backend.wait_for(answer_to(backend.publish("orders.carol.marker", "m", true))));
    ASSERT_TRUE(carol.wait_for(message_on("orders.carol.marker")));
    EXPECT_EQ(carol.count(message_on("orders.carol.8")), 0u);
}

TEST(RouterServerSubscriptions, EveryBadSubscribeClientIsANamedError) {
    router_process router(token_args());
    ASSERT_TRUE(router.ready());
    test_client backend(with_token(backend_config(router.backend_url(), "orders"),
                                   token("orders", {{"subscribe_clients", {"orders.>"}}})));
    test_client unentitled(with_token(backend_config(router.backend_url(), "other"),
                                      token("other", {{"subscribe", {"orders.>"}}})));
    test_client dave(with_token(frontend_config(router.ws_url(), "dave"), token("dave", {{"subscribe", {"orders.dave.>"}}})));
    ASSERT_TRUE(backend.wait_ready() && unentitled.wait_ready() && dave.wait_ready());
    const std::string address = dave.session_id();

    EXPECT_EQ(verdict_of(unentitled, subscribe_client(unentitled, address, "orders.dave.1")), errc::forbidden)
        << "a backend without subscribe_clients";
    EXPECT_EQ(verdict_of(backend, subscribe_client(backend, address, "news.>")), errc::forbidden)
        << "beyond the backend's subscribe_clients";
    EXPECT_EQ(verdict_of(backend, subscribe_client(backend, address, "orders.erin.1")), errc::forbidden)
        << "beyond the connection's own subscribe rights";
    EXPECT_EQ(verdict_of(backend, subscribe_client(backend, "r1-999999-00000000", "orders.dave.1")),
              errc::no_such_address);
    EXPECT_EQ(verdict_of(backend, subscribe_client(backend, address, "orders.dave.1")), errc{});
    EXPECT_EQ(verdict_of(backend, subscribe_client(backend, address, "orders.dave.1")), errc::already_subscribed);
    EXPECT_EQ(verdict_of(backend, unsubscribe_client(backend, address, "orders.dave.2")), errc::not_subscribed);
    ASSERT_TRUE(dave.wait_for(is(event_kind::subscribed)));

    // What the engine never sends: a malformed pattern, no address, and a
    // frontend that tries.
    raw_dealer raw(router.backend_url());
    ASSERT_TRUE(raw.join("raw", token("raw", {{"subscribe_clients", {">"}}})));
    const std::string bad_pattern = "orders..x";
    frame f;
    f.kind = frame_kind::subscribe_client;
    f.id = 7;
    f.name = bad_pattern;
    f.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(address.data()), address.size());
    frame no_address;
    no_address.kind = frame_kind::unsubscribe_client;
    no_address.id = 8;
    no_address.name = "orders.dave.1";
    raw.send(encode_batch({f, no_address}));
    for (const std::uint32_t id : {7u, 8u}) {
        const auto error = raw.read_until(frame_kind::error);
        ASSERT_TRUE(error);
        EXPECT_EQ(error->id, id);
        EXPECT_EQ(static_cast<errc>(error->code), errc::invalid_name);
    }
    raw_ws frontend(router.http_address());
    ASSERT_TRUE(frontend.join(client_role::frontend, "raw", token("raw", {{"subscribe", {">"}}})));
    f.name = "orders.dave.2";
    ASSERT_TRUE(frontend.send(encode_batch({f})));
    const auto refused = frontend.read_until(frame_kind::error);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->id, 7u);
    EXPECT_EQ(static_cast<errc>(refused->code), errc::unexpected_frame);
    EXPECT_EQ(dave.count(is(event_kind::subscribed)), 1u);
}

// The client comes back on its own: it restores the subscription the
// backend made, from its position, and the router does not make it again.
TEST(RouterServerSubscriptions, AReconnectKeepsItWithoutLossOrDuplicate) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url(), "plant"));
    test_client screen(reconnect_on_demand(frontend_config(router.ws_url(), "screen")));
    ASSERT_TRUE(backend.wait_ready() && screen.wait_ready());
    ASSERT_EQ(verdict_of(backend, subscribe_client(backend, screen.session_id(), "plant.m1")), errc{});
    ASSERT_TRUE(screen.wait_for(is(event_kind::subscribed)));
    ASSERT_EQ(publish_numbers(backend, "plant.m1", 1, 3).size(), 3u);
    ASSERT_EQ(screen.wait_count(message_on("plant.m1"), 3).size(), 3u);

    screen.drop_transport();
    ASSERT_TRUE(screen.wait_for(is(event_kind::state_changed), 5s));
    ASSERT_EQ(publish_numbers(backend, "plant.m1", 4, 6).size(), 3u);
    screen.connect_now();
    ASSERT_TRUE(screen.wait_count(is(event_kind::welcome), 2).size() == 2);
    ASSERT_EQ(publish_numbers(backend, "plant.m1", 7, 7).size(), 1u);
    ASSERT_EQ(screen.wait_count(message_on("plant.m1"), 7).size(), 7u);
    EXPECT_EQ(payloads_on(screen, "plant.m1"), (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"}));
    EXPECT_EQ(screen.count(is(event_kind::subscribed)), 1u) << "made once, restored by the client";
    EXPECT_EQ(screen.count(gap_on("plant.m1")), 0u);
    const auto stats = screen.run([](client_engine& e, time_ms) { return e.stats(); });
    EXPECT_EQ(stats.duplicates_dropped, 0u) << "nothing came twice";
}

}  // namespace
}  // namespace hyperstreams::testing
