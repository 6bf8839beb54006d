// Several routers as one (--cluster-redis): real redis-server processes (one
// server, and a three-master Redis Cluster made with redis-cli), two or
// three real routers on them, and real clients. Publications cross
// routers, resumes are served by any router from the history in Redis, a
// Redis outage fails publishes and resumes by name, a killed router's
// subscriber resumes on another, a router that drains sends its clients to
// another that answers, past one killed, a router asks Redis only for what its
// own clients subscribed to, direct messages and broadcasts reach the
// clients of every router, publishes keep their order across a SCRIPT
// FLUSH, the publishes of one WebSocket message to a channel are one script
// and one pub/sub message (idempotency, time to live, resume, the count
// bound, a lost answer and a malformed batch with them), a Redis at its
// memory limit refuses publishes by name and keeps the membership, and
// the routers follow a Redis restarted empty and a Redis Cluster master
// restarted on its port.
#include <signal.h>

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "raw_clients.hpp"
#include "redis_engine.hpp"
#include "redis_messages.hpp"
#include "redis_process.hpp"
#include "redis_wire.hpp"
#include "router_process.hpp"
#include "test_client.hpp"
#include "token_maker.hpp"

namespace hyperstreams::testing {
namespace {

std::string pubsub_channel(const std::string& channel) { return "hs:p:" + channel; }
std::string meta_key(const std::string& channel) { return "hs:{" + channel + "}:m"; }

// Pattern subscriptions of every client of a node together (psub= in
// CLIENT LIST): PUBSUB NUMPAT counts a pattern once however many routers
// take it.
long long pattern_subscriptions(std::uint16_t port) {
    std::istringstream clients(reply_text(redis_call(port, {"CLIENT", "LIST"})));
    long long total = 0;
    for (std::string field; clients >> field;)
        if (field.rfind("psub=", 0) == 0) total += std::stoll(field.substr(5));
    return total;
}

bool wait_numsub(std::uint16_t port, const std::string& channel, long long n) {
    return eventually([&] { return numsub(port, channel) == n; }, 5s);
}

// A field of INFO `section` ("calls" of cmdstat_evalsha is
// info_field(port, "commandstats", "cmdstat_evalsha", "calls")); -1 when
// absent.
long long info_field(std::uint16_t port, const std::string& section, const std::string& name,
                     const std::string& sub = {}) {
    std::istringstream lines(reply_text(redis_call(port, {"INFO", section})));
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind(name + ":", 0) != 0) continue;
        const std::string value = line.substr(name.size() + 1);
        if (sub.empty()) return std::stoll(value);
        const std::size_t at = value.find(sub + "=");
        return at == std::string::npos ? -1 : std::stoll(value.substr(at + sub.size() + 1));
    }
    return -1;
}

// For routers whose tests count EVALSHA: each heartbeat is a script of its
// own (cluster_node.cpp), so they beat at start and then not for minutes,
// and the count is of the publishes alone.
std::vector<std::string> rare_heartbeats(std::vector<std::string> more = {}) {
    more.insert(more.end(), {"--heartbeat-interval-ms", "300000", "--heartbeat-timeout-ms", "900000"});
    return more;
}

// `got` holds the payloads first.., each at its number's seq in `epoch`.
void expect_numbers(const std::vector<recorded_event>& got, int first, std::uint32_t epoch) {
    for (std::size_t i = 0; i < got.size(); ++i) {
        const int n = first + static_cast<int>(i);
        EXPECT_EQ(got[i].payload_text(), std::to_string(n)) << describe(got[i]);
        EXPECT_EQ(got[i].seq, static_cast<std::uint64_t>(n)) << describe(got[i]);
        EXPECT_EQ(got[i].epoch, epoch) << describe(got[i]);
    }
}

std::uint32_t send_direct(test_client& c, const std::string& to, const std::string& text, bool ack = true) {
    return c.run([&](client_engine& e, time_ms) {
        const auto payload = bytes_of(text);
        const call_result r = e.send_direct(to, payload, ack);
        EXPECT_FALSE(r.error) << r.error.message();
        return r.id;
    });
}

std::uint32_t send_broadcast(test_client& c, const std::string& text) {
    return c.run([&](client_engine& e, time_ms) {
        const auto payload = bytes_of(text);
        const call_result r = e.broadcast(payload, true);
        EXPECT_FALSE(r.error) << r.error.message();
        return r.id;
    });
}

event_filter broadcast_of(std::string text) {
    return [text](const recorded_event& e) { return e.kind == event_kind::broadcast && e.payload_text() == text; };
}

event_filter direct_of(std::string text) {
    return [text](const recorded_event& e) { return e.kind == event_kind::direct && e.payload_text() == text; };
}

// The answer to operation `id`: an ack, or an error with `code`.
void expect_answer(test_client& c, std::uint32_t id, errc code, const std::string& what) {
    const auto a = c.wait_for(answer_to(id), 10s);
    ASSERT_TRUE(a) << what << ": no answer";
    if (code == errc{}) {
        EXPECT_EQ(a->kind, event_kind::ack) << what << ": " << describe(*a);
    } else {
        EXPECT_EQ(a->kind, event_kind::error) << what << ": " << describe(*a);
        EXPECT_EQ(a->error(), code) << what << ": " << describe(*a);
    }
}

bool replayed(const recorded_event& e) { return (e.flags & frame_flags::replayed) != 0; }

// The routers alive that `r`'s /status lists (its membership); 0 when it
// does not answer.
std::size_t routers_known(const router_process& r) {
    const auto status = nlohmann::json::parse(http_get(r.admin_address(), "/status").body, nullptr, false);
    return status.is_object() && status.contains("cluster") ? status["cluster"]["routers"].size() : 0;
}

// A Redis master (full syncs at once) and its replica, the replica's link
// up once `ok`.
struct master_and_replica {
    master_and_replica() {
        ok = master.ready() && replica.ready() &&
             reply_text(redis_call(replica.port(), {"REPLICAOF", "127.0.0.1", std::to_string(master.port())})) ==
                 "OK" &&
             eventually([&] { return replication_field(replica.port(), "master_link_status") == "up"; }, 10s);
    }
    redis_server master{false, std::nullopt, {"--repl-diskless-sync-delay", "0"}};
    redis_server replica;
    bool ok = false;
};

// A counter of `r`'s /status "cluster" section; -1 when it has none.
long long cluster_count(const router_process& r, const std::string& name) {
    const auto status = nlohmann::json::parse(http_get(r.admin_address(), "/status").body, nullptr, false);
    if (!status.is_object() || !status.contains("cluster") || !status["cluster"].contains(name)) return -1;
    return status["cluster"][name].get<long long>();
}

// Whether `r`'s /metrics has `series` at `value`.
bool metric_is(const router_process& r, const std::string& series, long long value) {
    return http_get(r.admin_address(), "/metrics").body.find("\n" + series + " " + std::to_string(value) + "\n") !=
           std::string::npos;
}

std::vector<std::uint8_t> one_frame(frame_kind kind, std::uint32_t id, std::string_view name) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    return encode_batch({f});
}

// ---------------------------------------------------------------- one Redis server

TEST(RouterCluster, PublicationsCrossRoutersInOrderAtTheRedisPosition) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client on_a(frontend_config(a->ws_url(), "on-a"));
    test_client on_b(frontend_config(b->ws_url(), "on-b"));
    ASSERT_TRUE(pub.wait_ready() && on_a.wait_ready() && on_b.wait_ready());
    ASSERT_TRUE(on_a.wait_for(is(event_kind::ack, on_a.subscribe("plant.speed"))));
    ASSERT_TRUE(on_b.wait_for(is(event_kind::ack, on_b.subscribe("plant.speed"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("plant.speed"), 2));

    const auto acks = publish_numbers(pub, "plant.speed", 1, 30);
    ASSERT_EQ(acks.size(), 30u);
    const std::uint32_t epoch = acks.front().epoch;
    EXPECT_NE(epoch, 0u);
    for (std::size_t i = 0; i < acks.size(); ++i) {
        EXPECT_EQ(acks[i].epoch, epoch);
        EXPECT_EQ(acks[i].seq, i + 1);
    }
    // The acks' position is the one Redis keeps.
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"HGET", meta_key("plant.speed"), "e"})), std::to_string(epoch));
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"HGET", meta_key("plant.speed"), "s"})), "30");

    const auto seen_a = on_a.wait_count(message_on("plant.speed"), 30);
    const auto seen_b = on_b.wait_count(message_on("plant.speed"), 30);
    ASSERT_EQ(seen_a.size(), 30u);
    ASSERT_EQ(seen_b.size(), 30u);
    expect_numbers(seen_a, 1, epoch);
    expect_numbers(seen_b, 1, epoch);
    for (test_client* c : {&on_a, &on_b}) {
        EXPECT_EQ(c->count(is(event_kind::gap)), 0u);
        EXPECT_EQ(c->count(is(event_kind::epoch_changed)), 0u);
    }

    // The other way round, from B, on the same channel: one sequence.
    test_client pub_b(frontend_config(b->ws_url(), "pub-b"));
    ASSERT_TRUE(pub_b.wait_ready());
    const auto more = publish_numbers(pub_b, "plant.speed", 31, 32);
    ASSERT_EQ(more.size(), 2u);
    EXPECT_EQ(more[0].epoch, epoch);
    EXPECT_EQ(more[0].seq, 31u);
    const auto all_a = on_a.wait_count(message_on("plant.speed"), 32);
    ASSERT_EQ(all_a.size(), 32u);
    expect_numbers(all_a, 1, epoch);
}

// Three routers, clients on each. A broadcast reaches every other client of
// every router once (its sender none); a direct message reaches the
// address on another router, whose router acks it once it queued it; an
// address nobody has gets no_such_address whether its router is alive (the
// client left, or never was) or not in the cluster, with or without an ack
// asked for (PROTOCOL.md: failures are reported either way). A router that
// takes a direct and never answers leaves its outcome unknown once the
// heartbeat timeout passed.
TEST(RouterCluster, DirectsAndBroadcastsReachEveryRoutersClientsOnce) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()}, quick_heartbeats({"--router-id", "ra"}));
    auto b = cluster_router({redis.address()}, {"--router-id", "rb"});
    auto c = cluster_router({redis.address()}, {"--router-id", "rc"});
    ASSERT_TRUE(a->ready() && b->ready() && c->ready());
    test_client a1(frontend_config(a->ws_url(), "a1"));
    test_client a2(frontend_config(a->ws_url(), "a2"));
    test_client b1(frontend_config(b->ws_url(), "b1"));
    auto b2 = std::make_unique<test_client>(frontend_config(b->ws_url(), "b2"));
    test_client c1(frontend_config(c->ws_url(), "c1"));
    ASSERT_TRUE(a1.wait_ready() && a2.wait_ready() && b1.wait_ready() && b2->wait_ready() && c1.wait_ready());
    ASSERT_TRUE(wait_numsub(redis.port(), "hs:b", 3)) << "every router listens for broadcasts";
    for (const char* id : {"ra", "rb", "rc"}) ASSERT_TRUE(wait_numsub(redis.port(), std::string("hs:r:") + id, 1));
    const std::string to_b1 = b1.session_id();
    const std::string to_c1 = c1.session_id();
    const std::string from_a1 = a1.session_id();
    ASSERT_EQ(to_b1.rfind("rb-", 0), 0u) << to_b1;

    const std::vector<test_client*> everyone = {&a1, &a2, &b1, b2.get(), &c1};
    const std::vector<std::pair<test_client*, std::string>> sent = {
        {&a1, "from a1"}, {&b1, "from b1"}, {&c1, "from c1"}};
    for (const auto& [sender, text] : sent) expect_answer(*sender, send_broadcast(*sender, text), errc{}, text);
    for (test_client* t : everyone)
        for (const auto& [sender, text] : sent)
            if (t != sender) ASSERT_TRUE(t->wait_for(broadcast_of(text))) << text;
    // Published once all of those had run in Redis, so behind them (and any
    // duplicate) on every router's one Redis connection: a marker from
    // another router than the client's own.
    expect_answer(a1, send_broadcast(a1, "end a"), errc{}, "marker from A");
    expect_answer(b1, send_broadcast(b1, "end b"), errc{}, "marker from B");
    for (test_client* t : {&b1, b2.get(), &c1}) ASSERT_TRUE(t->wait_for(broadcast_of("end a")));
    for (test_client* t : {&a1, &a2}) ASSERT_TRUE(t->wait_for(broadcast_of("end b")));
    for (test_client* t : everyone) {
        const std::size_t from_a = t == &a1 ? 0 : 1;
        const std::size_t from_b = t == &b1 ? 0 : 1;
        const std::size_t from_c = t == &c1 ? 0 : 1;
        EXPECT_EQ(t->count(broadcast_of("from a1")), from_a);
        EXPECT_EQ(t->count(broadcast_of("from b1")), from_b);
        EXPECT_EQ(t->count(broadcast_of("from c1")), from_c);
    }
    const auto seen = b1.wait_for(broadcast_of("from a1"));
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->name, from_a1) << "delivered with the sender's address";

    expect_answer(a1, send_direct(a1, to_b1, "a1 to b1"), errc{}, "a direct to B's client");
    const auto got = b1.wait_for(direct_of("a1 to b1"));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->name, from_a1);
    expect_answer(b1, send_direct(b1, to_c1, "b1 to c1"), errc{}, "a direct to C's client");
    ASSERT_TRUE(c1.wait_for(direct_of("b1 to c1")));
    expect_answer(c1, send_direct(c1, from_a1, "c1 to a1"), errc{}, "a direct back to A");
    ASSERT_TRUE(a1.wait_for(direct_of("c1 to a1")));

    const std::string gone = b2->session_id();
    b2.reset();
    ASSERT_TRUE(logged(*b, "event=conn.close", 1)) << "B saw b2 go";
    expect_answer(a1, send_direct(a1, gone, "to the gone"), errc::no_such_address, "B's client that left");
    expect_answer(a1, send_direct(a1, "rb-999999-00000000", "to nobody"), errc::no_such_address,
                  "an address B never gave");
    expect_answer(a1, send_direct(a1, "rz-1-00000000", "to no router"), errc::no_such_address,
                  "a router not in the cluster");
    // Fire and forget: the failure still comes, with the id the frame had (0).
    send_direct(a1, "rb-999999-00000001", "unasked", false);
    const auto unasked = a1.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::error && e.error() == errc::no_such_address && e.id == 0;
    }, 10s);
    EXPECT_TRUE(unasked) << "a direct without an ack asked for hears of its failure";
    redis_subscription mute(redis.port(), "hs:r:rmute");
    ASSERT_TRUE(mute.ready());
    expect_answer(a1, send_direct(a1, "rmute-1-00000000", "to the mute"), errc::cluster_outcome_unknown,
                  "a router that took it and never answered");
    for (test_client* t : {&a1, &a2, &b1, &c1})
        EXPECT_EQ(t->count([](const recorded_event& e) {
            return e.kind == event_kind::direct && e.payload_text().rfind("to ", 0) == 0;
        }), 0u);
}

// A backend on one router subscribes a client of another by its address:
// the request crosses the bus, the other router's verdict comes back (its
// code and text), and the client gets the messages published on the first.
TEST(RouterCluster, ABackendSubscribesAClientOfAnotherRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    // A's bus waits for an answer as long as its heartbeat timeout.
    auto a = cluster_router({redis.address()}, quick_heartbeats({"--router-id", "ra"}));
    auto b = cluster_router({redis.address()}, {"--router-id", "rb"});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client backend(backend_config(a->backend_url(), "cells"));
    test_client screen(frontend_config(b->ws_url(), "screen"));
    ASSERT_TRUE(backend.wait_ready() && screen.wait_ready());
    for (const char* id : {"ra", "rb"}) ASSERT_TRUE(wait_numsub(redis.port(), std::string("hs:r:") + id, 1));
    const std::string address = screen.session_id();
    ASSERT_EQ(address.rfind("rb-", 0), 0u) << address;
    auto ask = [&](bool subscribe, const std::string& to, const std::string& pattern) {
        const call_result r = backend.run([&](client_engine& e, time_ms) {
            return subscribe ? e.subscribe_client(to, pattern) : e.unsubscribe_client(to, pattern);
        });
        EXPECT_FALSE(r.error);
        return r.id;
    };

    expect_answer(backend, ask(true, address, "cell.7"), errc{}, "B's client, from A");
    const auto subscribed = screen.wait_for(is(event_kind::subscribed));
    ASSERT_TRUE(subscribed);
    EXPECT_EQ(subscribed->name, "cell.7");
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("cell.7"), 1)) << "B listens for the channel";
    ASSERT_EQ(publish_numbers(backend, "cell.7", 1, 2).size(), 2u);
    const auto got = screen.wait_count(message_on("cell.7"), 2, 10s);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].subscription, subscribed->subscription);

    const std::uint32_t twice = ask(true, address, "cell.7");
    expect_answer(backend, twice, errc::already_subscribed, "B's verdict");
    const auto why = backend.wait_for(answer_to(twice));
    ASSERT_TRUE(why);
    EXPECT_NE(why->text.find("'cell.7'"), std::string::npos) << "B's words: " << why->text;
    expect_answer(backend, ask(false, address, "cell.8"), errc::not_subscribed, "B's verdict");
    expect_answer(backend, ask(true, "rb-999999-00000000", "cell.7"), errc::no_such_address, "an address B never gave");
    expect_answer(backend, ask(true, "rz-1-00000000", "cell.7"), errc::no_such_address, "a router not in the cluster");
    redis_subscription mute(redis.port(), "hs:r:rmute");
    ASSERT_TRUE(mute.ready());
    expect_answer(backend, ask(true, "rmute-1-00000000", "cell.7"), errc::cluster_outcome_unknown,
                  "a router that took it and never answered: never a false ack");

    expect_answer(backend, ask(false, address, "cell.7"), errc{}, "unsubscribed from A");
    const auto ended = screen.wait_for(is(event_kind::unsubscribed));
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->subscription, subscribed->subscription);
    EXPECT_EQ(screen.count(is(event_kind::subscribed)), 1u);
}

// Tokens mode on both routers, one secret: the rights a token grants for
// direct and broadcast are judged alike whichever router the client is on,
// for addresses of either router, and before any address is looked up.
TEST(RouterCluster, DirectAndBroadcastRightsAreJudgedAlikeOnEveryRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::string secret = "cluster-test-secret-0123456789abcdef";
    const std::string secret_file = write_temp_file("cluster-hs256.secret", secret + "\n");
    const auto token = [&](const std::string& sub, const nlohmann::json& hs) {
        return sign_hs256(secret, {{"sub", sub}, {"exp", unix_now() + 600}, {"hs", hs}});
    };
    const auto with = [](client_config c, std::string t) {
        c.token = std::move(t);
        return c;
    };
    const std::vector<std::string> tokens = {"--auth-mode", "tokens", "--auth-hs256-secret-file", secret_file};
    std::vector<std::string> on_a = tokens;
    on_a.insert(on_a.end(), {"--router-id", "ra"});
    std::vector<std::string> on_b = tokens;
    on_b.insert(on_b.end(), {"--router-id", "rb"});
    auto a = cluster_router({redis.address()}, on_a);
    auto b = cluster_router({redis.address()}, on_b);
    ASSERT_TRUE(a->ready() && b->ready());
    // Sends only to B's clients, broadcasts.
    const std::string to_b = token("to-b", {{"send", {"rb-*"}}, {"broadcast", true}});
    // Sends to nobody real, may not broadcast.
    const std::string quiet = token("quiet", {{"send", {"nobody-*"}}, {"broadcast", true}, {"deny", {{"broadcast", true}}}});
    test_client loud_a(with(frontend_config(a->ws_url(), "loud-a"), to_b));
    test_client quiet_a(with(frontend_config(a->ws_url(), "quiet-a"), quiet));
    test_client quiet_b(with(frontend_config(b->ws_url(), "quiet-b"), quiet));
    test_client loud_b(with(frontend_config(b->ws_url(), "loud-b"), to_b));
    ASSERT_TRUE(loud_a.wait_ready() && quiet_a.wait_ready() && quiet_b.wait_ready() && loud_b.wait_ready());
    ASSERT_TRUE(wait_numsub(redis.port(), "hs:b", 2));
    const std::string addr_quiet_a = quiet_a.session_id();
    const std::string addr_quiet_b = quiet_b.session_id();

    for (test_client* q : {&quiet_a, &quiet_b}) {
        expect_answer(*q, send_broadcast(*q, "not allowed"), errc::forbidden, "a broadcast the token denies");
        expect_answer(*q, send_direct(*q, addr_quiet_b, "x"), errc::forbidden, "a direct to B outside the grant");
        expect_answer(*q, send_direct(*q, addr_quiet_a, "x"), errc::forbidden, "a direct to A outside the grant");
        expect_answer(*q, send_direct(*q, "rb-999999-00000000", "x"), errc::forbidden,
                      "forbidden whether or not the address exists");
    }
    for (test_client* l : {&loud_a, &loud_b}) {
        expect_answer(*l, send_direct(*l, addr_quiet_b, "to b"), errc{}, "a direct to B, granted");
        expect_answer(*l, send_direct(*l, addr_quiet_a, "to a"), errc::forbidden, "a direct to A, not granted");
    }
    EXPECT_EQ(quiet_b.wait_count(direct_of("to b"), 2).size(), 2u);
    expect_answer(loud_a, send_broadcast(loud_a, "granted"), errc{}, "a broadcast the token grants");
    for (test_client* t : {&quiet_a, &quiet_b, &loud_b}) EXPECT_TRUE(t->wait_for(broadcast_of("granted")));
    for (test_client* t : {&loud_a, &quiet_a, &quiet_b, &loud_b}) {
        EXPECT_EQ(t->count(broadcast_of("not allowed")), 0u);
        EXPECT_EQ(t->count(direct_of("x")) + t->count(direct_of("to a")), 0u);
    }
}

// PROTOCOL.md (Subscriptions): the ack of a subscribe to a channel carries
// the channel's position at that moment, whichever router answers: one
// that never delivered the channel, and one whose interest lapsed while
// the channel moved on, too. Read on the wire (the engine keeps no ack
// position of a subscribe).
TEST(RouterCluster, ASubscribeAckCarriesTheChannelsPositionOnEveryRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    const auto acks = publish_numbers(pub, "gauge.level", 1, 5);
    ASSERT_EQ(acks.size(), 5u);
    const std::uint32_t epoch = acks.front().epoch;

    raw_ws ws(b->http_address());
    ASSERT_TRUE(ws.join());
    ASSERT_TRUE(ws.send(one_frame(frame_kind::subscribe, 1, "gauge.level")));
    const auto first = ws.read_until(frame_kind::ack);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->id, 1u);
    EXPECT_EQ(first->epoch, epoch) << "B never delivered the channel, Redis has it";
    EXPECT_EQ(first->seq, 5u);

    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("gauge.level"), 1));
    ASSERT_EQ(publish_numbers(pub, "gauge.level", 6, 6).size(), 1u);
    const auto six = ws.read_until(frame_kind::message);
    ASSERT_TRUE(six);
    EXPECT_EQ(six->seq, 6u);
    ASSERT_TRUE(ws.send(one_frame(frame_kind::unsubscribe, 2, "gauge.level")));
    ASSERT_TRUE(ws.read_until(frame_kind::ack));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("gauge.level"), 0));
    ASSERT_EQ(publish_numbers(pub, "gauge.level", 7, 9).size(), 3u);
    ASSERT_TRUE(ws.send(one_frame(frame_kind::subscribe, 3, "gauge.level")));
    const auto again = ws.read_until(frame_kind::ack);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->id, 3u);
    EXPECT_EQ(again->epoch, epoch);
    EXPECT_EQ(again->seq, 9u) << "7, 8 and 9 were published while B had no interest";
}

// Patterns on B get what A publishes on the channels they match, as
// Redis's coarser glob carries it to B and B's topic tree filters it; what
// nobody on B subscribed to reaches none of B's clients. A channel B takes
// both by name and by pattern reaches B twice from Redis, and its clients
// once.
TEST(RouterCluster, PatternsMatchAcrossRouters) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client on_a(frontend_config(a->ws_url(), "on-a"));
    test_client star(frontend_config(b->ws_url(), "star"));
    test_client rest(frontend_config(b->ws_url(), "rest"));
    test_client exact(frontend_config(b->ws_url(), "exact"));
    ASSERT_TRUE(pub.wait_ready() && on_a.wait_ready() && star.wait_ready() && rest.wait_ready() &&
                exact.wait_ready());
    const std::uint32_t star_sub = star.subscribe("a.*");
    ASSERT_TRUE(star.wait_for(is(event_kind::ack, star_sub)));
    ASSERT_TRUE(rest.wait_for(is(event_kind::ack, rest.subscribe("a.>"))));
    ASSERT_TRUE(exact.wait_for(is(event_kind::ack, exact.subscribe("a.c"))));
    ASSERT_TRUE(exact.wait_for(is(event_kind::ack, exact.subscribe("a.end"))));
    ASSERT_TRUE(on_a.wait_for(is(event_kind::ack, on_a.subscribe("other.x"))));
    ASSERT_TRUE(eventually([&] { return pattern_subscriptions(redis.port()) == 1; }, 5s))
        << "a.* and a.> are one Redis pattern, taken once by B";
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("other.x"), 1));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("a.c"), 1));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("a.end"), 1));

    const auto ac = publish_numbers(pub, "a.c", 1, 3);
    const auto acd = publish_numbers(pub, "a.c.d", 1, 2);
    ASSERT_EQ(ac.size(), 3u);
    ASSERT_EQ(acd.size(), 2u);
    ASSERT_EQ(publish_numbers(pub, "other.x", 1, 2).size(), 2u);
    // Last, on one Redis connection: everything before it reached B, and
    // each client, first.
    const auto marker = publish_numbers(pub, "a.end", 1, 1);
    ASSERT_EQ(marker.size(), 1u);

    ASSERT_TRUE(star.wait_for(message_on("a.end")));
    ASSERT_TRUE(rest.wait_for(message_on("a.end")));
    ASSERT_TRUE(exact.wait_for(message_on("a.end")));
    const auto star_c = star.events(message_on("a.c"));
    ASSERT_EQ(star_c.size(), 3u);
    expect_numbers(star_c, 1, ac.front().epoch);
    EXPECT_EQ(star.count(message_on("a.c.d")), 0u) << "a.* is one token";
    const auto rest_c = rest.events(message_on("a.c"));
    const auto rest_cd = rest.events(message_on("a.c.d"));
    ASSERT_EQ(rest_c.size(), 3u);
    ASSERT_EQ(rest_cd.size(), 2u);
    expect_numbers(rest_c, 1, ac.front().epoch);
    expect_numbers(rest_cd, 1, acd.front().epoch);
    const auto exact_c = exact.events(message_on("a.c"));
    ASSERT_EQ(exact_c.size(), 3u);
    expect_numbers(exact_c, 1, ac.front().epoch);
    EXPECT_EQ(on_a.wait_count(message_on("other.x"), 2).size(), 2u);
    for (test_client* c : {&star, &rest, &exact}) {
        EXPECT_EQ(c->count(message_on("other.x")), 0u);
        // The router sent nothing the client did not subscribe to.
        EXPECT_EQ(c->run([](client_engine& e, time_ms) { return e.stats().unmatched_messages; }), 0u);
        EXPECT_EQ(c->run([](client_engine& e, time_ms) { return e.stats().duplicates_dropped; }), 0u);
    }

    // a.* leaves B; a.>, the same Redis pattern, still needs it.
    const call_result u = star.run([&](client_engine& e, time_ms) { return e.unsubscribe(star_sub); });
    ASSERT_TRUE(star.wait_for(is(event_kind::ack, u.id)));
    ASSERT_TRUE(exact.wait_for(is(event_kind::ack, exact.subscribe("marker.b"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("marker.b"), 1));
    EXPECT_EQ(pattern_subscriptions(redis.port()), 1);
    ASSERT_EQ(publish_numbers(pub, "a.q.r", 1, 1).size(), 1u);
    EXPECT_TRUE(rest.wait_for(message_on("a.q.r")));
}

// A subscriber of A leaves after 1..3 and comes back on B, from where it
// was: B replays what followed from the history in Redis, then live
// publications; one resuming from before the kept history gets a gap first.
TEST(RouterCluster, ASubscriberResumesOnAnotherRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()}, {"--history-max-messages", "4"});
    auto b = cluster_router({redis.address()}, {"--history-max-messages", "4"});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());

    auto first = std::make_unique<test_client>(frontend_config(a->ws_url(), "first"));
    ASSERT_TRUE(first->wait_ready());
    ASSERT_TRUE(first->wait_for(is(event_kind::ack, first->subscribe("line.count"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("line.count"), 1));
    const auto acks = publish_numbers(pub, "line.count", 1, 3);
    ASSERT_EQ(acks.size(), 3u);
    const std::uint32_t epoch = acks.front().epoch;
    const auto seen = first->wait_count(message_on("line.count"), 3);
    ASSERT_EQ(seen.size(), 3u);
    const channel_position last{seen.back().epoch, seen.back().seq};
    EXPECT_EQ(last.epoch, epoch);
    EXPECT_EQ(last.seq, 3u);
    first.reset();
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("line.count"), 0));

    ASSERT_EQ(publish_numbers(pub, "line.count", 4, 6).size(), 3u);
    test_client back(frontend_config(b->ws_url(), "back"));
    ASSERT_TRUE(back.wait_ready());
    const std::uint32_t s = subscribe_since(back, "line.count", last);
    const auto ack = back.wait_for(answer_to(s));
    ASSERT_TRUE(ack && ack->kind == event_kind::ack) << (ack ? describe(*ack) : "no answer");
    const auto replay = back.wait_count(message_on("line.count"), 3);
    ASSERT_EQ(replay.size(), 3u);
    expect_numbers(replay, 4, epoch);
    for (const auto& m : replay) EXPECT_TRUE(replayed(m)) << describe(m);

    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("line.count"), 1));
    ASSERT_EQ(publish_numbers(pub, "line.count", 7, 8).size(), 2u);  // history keeps 5..8
    const auto got = back.wait_count(message_on("line.count"), 5);
    ASSERT_EQ(got.size(), 5u);
    expect_numbers(got, 4, epoch);
    EXPECT_FALSE(replayed(got[3]) || replayed(got[4])) << "7 and 8 came live";
    EXPECT_EQ(back.count(is(event_kind::gap)), 0u);

    // From 1: 2, 3 and 4 are gone.
    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    const std::uint32_t l = subscribe_since(late, "line.count", channel_position{epoch, 1});
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, l)));
    const auto gap = late.wait_for(is(event_kind::gap));
    ASSERT_TRUE(gap);
    EXPECT_EQ(gap->name, "line.count");
    EXPECT_EQ(gap->epoch, epoch);
    EXPECT_EQ(gap->seq, 2u);
    EXPECT_EQ(gap->count, 3u);
    const auto kept = late.wait_count(message_on("line.count"), 4);
    ASSERT_EQ(kept.size(), 4u);
    expect_numbers(kept, 5, epoch);
    for (const auto& m : kept) EXPECT_TRUE(replayed(m)) << describe(m);
    ASSERT_EQ(publish_numbers(pub, "line.count", 9, 9).size(), 1u);
    const auto live = late.wait_count(message_on("line.count"), 5);
    ASSERT_EQ(live.size(), 5u);
    expect_numbers(live, 5, epoch);
    EXPECT_FALSE(replayed(live[4]));
    EXPECT_EQ(late.count(is(event_kind::gap)), 1u);
    for (test_client* c : {&back, &late})
        EXPECT_EQ(c->run([](client_engine& e, time_ms) { return e.stats().duplicates_dropped; }), 0u)
            << "nothing replayed twice, nor at or before the resume's position";
}

// A namespace's history_size is the Redis stream's length: a subscriber
// resuming on another router gets what it keeps, and a gap for the rest.
TEST(RouterCluster, ANamespacesHistorySizeHoldsAcrossRouters) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> options{"--history-max-messages", "16", "--channels-namespaces",
                                           R"([{"pattern": "factory.>", "history_size": 2}])"};
    auto a = cluster_router({redis.address()}, options);
    auto b = cluster_router({redis.address()}, options);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    const auto factory = publish_numbers(pub, "factory.m3.temp", 1, 6);
    ASSERT_EQ(factory.size(), 6u);
    const auto office = publish_numbers(pub, "office.temp", 1, 6);
    ASSERT_EQ(office.size(), 6u);

    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    const std::uint32_t f = subscribe_since(late, "factory.m3.temp", channel_position{factory.front().epoch, 0});
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, f)));
    const auto gap = late.wait_for(is(event_kind::gap));
    ASSERT_TRUE(gap);
    EXPECT_EQ(gap->name, "factory.m3.temp");
    EXPECT_EQ(gap->seq, 1u);
    EXPECT_EQ(gap->count, 4u) << "the namespace's 2 kept, not history.max_messages (16)";
    const auto kept = late.wait_count(message_on("factory.m3.temp"), 2);
    ASSERT_EQ(kept.size(), 2u);
    expect_numbers(kept, 5, factory.front().epoch);

    const std::uint32_t o = subscribe_since(late, "office.temp", channel_position{office.front().epoch, 0});
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, o)));
    const auto all = late.wait_count(message_on("office.temp"), 6);
    ASSERT_EQ(all.size(), 6u) << "no namespace: history.max_messages";
    expect_numbers(all, 1, office.front().epoch);
    EXPECT_EQ(late.count(is(event_kind::gap)), 1u);
}

// The key check and the append are one script in Redis: the same key
// published through two routers at once is placed once, and both
// publishers are acked with that position; another payload under it is
// key_reused on any router. The key lives in Redis for its window, in the
// channel's hash slot.
TEST(RouterCluster, AKeyIsPublishedOnceWhicheverRoutersItComesThrough) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub_a(frontend_config(a->ws_url(), "pub-a"));
    test_client pub_b(frontend_config(b->ws_url(), "pub-b"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub_a.wait_ready() && pub_b.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("orders.new"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("orders.new"), 1));

    const std::uint32_t on_a = publish_with(pub_a, "orders.new", "qty 3", "order-17");
    const std::uint32_t on_b = publish_with(pub_b, "orders.new", "qty 3", "order-17");
    const auto ack_a = pub_a.wait_for(answer_to(on_a), 10s);
    const auto ack_b = pub_b.wait_for(answer_to(on_b), 10s);
    ASSERT_TRUE(ack_a && ack_b);
    ASSERT_EQ(ack_a->kind, event_kind::ack) << describe(*ack_a);
    ASSERT_EQ(ack_b->kind, event_kind::ack) << describe(*ack_b);
    EXPECT_EQ(ack_a->epoch, ack_b->epoch);
    EXPECT_EQ(ack_a->seq, 1u);
    EXPECT_EQ(ack_b->seq, 1u);

    const auto reused = pub_a.wait_for(answer_to(publish_with(pub_a, "orders.new", "qty 4", "order-17")), 10s);
    ASSERT_TRUE(reused);
    EXPECT_EQ(reused->code, static_cast<std::uint16_t>(errc::key_reused)) << describe(*reused);

    const router::redis_reply left = redis_call(redis.port(), {"TTL", "hs:{orders.new}:i:order-17"});
    ASSERT_TRUE(left && left->type == REDIS_REPLY_INTEGER);
    const long long ttl = left->integer;
    EXPECT_GT(ttl, 0);
    EXPECT_LE(ttl, 300) << "channels.idempotency_window_s";

    const auto marker = publish_numbers(pub_a, "orders.new", 2, 2);
    ASSERT_EQ(marker.size(), 1u);
    EXPECT_EQ(marker[0].seq, 2u) << "the repeat and the refused publish took no position";
    const auto got = sub.wait_count(message_on("orders.new"), 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].payload_text(), "qty 3");
    EXPECT_EQ(got[1].payload_text(), "2");
    EXPECT_EQ(sub.count(message_on("orders.new")), 2u);
}

TEST(RouterCluster, AKeyRepeatedAfterItsWindowIsANewPublication) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()}, {"--channels-idempotency-window-s", "1"});
    auto b = cluster_router({redis.address()}, {"--channels-idempotency-window-s", "1"});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub_a(frontend_config(a->ws_url(), "pub-a"));
    test_client pub_b(frontend_config(b->ws_url(), "pub-b"));
    ASSERT_TRUE(pub_a.wait_ready() && pub_b.wait_ready());
    const auto first = pub_a.wait_for(is(event_kind::ack, publish_with(pub_a, "orders.new", "qty 3", "order-17")));
    ASSERT_TRUE(first);
    // Bounded: 50 tries 100 ms apart, for a 1 s window.
    std::optional<recorded_event> later;
    for (int i = 0; i < 50; ++i) {
        later = pub_b.wait_for(answer_to(publish_with(pub_b, "orders.new", "qty 3", "order-17")), 10s);
        ASSERT_TRUE(later);
        ASSERT_EQ(later->kind, event_kind::ack) << describe(*later);
        if (later->seq != first->seq) break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(later->seq, first->seq + 1);
}

// An expired message (its own ttl, or its namespace's message_ttl_s) is
// not replayed from the history in Redis: a resume on another router gets
// a gap in its place. Redis decides by its own clock, on this machine: once
// the ttl has passed since the ack, the message has expired there.
TEST(RouterCluster, AnExpiredMessageIsNotReplayedOnAnyRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> options{"--history-max-messages", "16", "--channels-namespaces",
                                           R"([{"pattern": "short.>", "message_ttl_s": 1}])"};
    auto a = cluster_router({redis.address()}, options);
    auto b = cluster_router({redis.address()}, options);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    publish_with(pub, "alarms.m3", "1 short", "", 1);
    publish_with(pub, "alarms.m3", "2 kept", "", 3600);
    const auto last = pub.wait_for(is(event_kind::ack, publish_with(pub, "alarms.m3", "3 short", "", 1)), 10s);
    ASSERT_TRUE(last);
    const auto by_namespace = publish_numbers(pub, "short.a", 1, 2);
    ASSERT_EQ(by_namespace.size(), 2u);
    std::this_thread::sleep_until(std::chrono::steady_clock::now() + 1050ms);

    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, subscribe_since(late, "alarms.m3", {last->epoch, 0}))));
    const auto gaps = late.wait_count(
        [](const recorded_event& e) { return e.kind == event_kind::gap && e.name == "alarms.m3"; }, 2);
    ASSERT_EQ(gaps.size(), 2u);
    EXPECT_EQ(gaps[0].seq, 1u);
    EXPECT_EQ(gaps[0].count, 1u);
    EXPECT_EQ(gaps[1].seq, 3u);
    EXPECT_EQ(gaps[1].count, 1u);
    const auto kept = late.wait_for(message_on("alarms.m3"));
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->payload_text(), "2 kept");
    EXPECT_EQ(kept->seq, 2u);

    ASSERT_TRUE(late.wait_for(is(event_kind::ack, subscribe_since(late, "short.a", {by_namespace[0].epoch, 0}))));
    const auto gone = late.wait_for(
        [](const recorded_event& e) { return e.kind == event_kind::gap && e.name == "short.a"; });
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->seq, 1u);
    EXPECT_EQ(gone->count, 2u) << "both took the namespace's ttl";
    EXPECT_EQ(late.count(message_on("short.a")), 0u);
    EXPECT_EQ(late.count(message_on("alarms.m3")), 1u);
}

// An expired message is no latest value on another router either: Redis's
// read of a stream's last entry leaves it out.
TEST(RouterCluster, AnExpiredMessageIsNoLatestValueOnAnyRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> options{"--channels-namespaces",
                                           R"([{"pattern": "state.>", "latest": true, "history_size": 0}])"};
    auto a = cluster_router({redis.address()}, options);
    auto b = cluster_router({redis.address()}, options);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    publish_with(pub, "state.a", "last, short", "", 1);
    const auto acked = pub.wait_for(is(event_kind::ack, publish_with(pub, "state.b", "last, kept", "", 3600)), 10s);
    ASSERT_TRUE(acked);
    std::this_thread::sleep_until(std::chrono::steady_clock::now() + 1050ms);

    test_client dashboard(frontend_config(b->ws_url(), "dashboard"));
    ASSERT_TRUE(dashboard.wait_ready());
    ASSERT_TRUE(dashboard.wait_for(is(event_kind::ack, dashboard.subscribe("state.*", slow_policy::router_default, true))));
    const auto got = dashboard.wait_for(message_on("state.b"));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload_text(), "last, kept");
    ASSERT_TRUE(eventually([&] { return pattern_subscriptions(redis.port()) == 1; }, 5s)) << "B listens for state.*";
    const auto marker = publish_numbers(pub, "state.a", 7, 7);
    ASSERT_EQ(marker.size(), 1u);
    const auto live = dashboard.wait_for(message_on("state.a"));
    ASSERT_TRUE(live);
    EXPECT_EQ(live->payload_text(), "7") << "the expired value was not given: the first on state.a is the live one";
    EXPECT_EQ(dashboard.count(message_on("state.a")), 1u);
}

// Latest value across routers: what A published, a latest-value subscribe
// on B reads from Redis (the channel index, then each stream's last entry),
// then goes on live.
TEST(RouterCluster, ALatestSubscribeOnAnotherRouterGetsEachChannelsLastMessageThenTheLiveOnes) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> options{"--channels-namespaces",
                                           R"([{"pattern": "factory.>", "latest": true, "history_size": 0}])"};
    auto a = cluster_router({redis.address()}, options);
    auto b = cluster_router({redis.address()}, options);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client dashboard(frontend_config(b->ws_url(), "dashboard"));
    ASSERT_TRUE(pub.wait_ready() && dashboard.wait_ready());
    std::vector<std::string> machines;
    for (int m = 1; m <= 12; ++m) machines.push_back("factory.m" + std::to_string(m) + ".telemetry");
    std::map<std::string, std::uint32_t> epochs;  // each channel's own
    for (const std::string& machine : machines) {
        const auto acks = publish_numbers(pub, machine, 1, 2);
        ASSERT_EQ(acks.size(), 2u);
        epochs[machine] = acks.back().epoch;
    }
    ASSERT_EQ(publish_numbers(pub, "office.temp", 1, 1).size(), 1u);
    const router::redis_reply indexed = redis_call(redis.port(), {"HLEN", "hs:latest"});
    ASSERT_TRUE(indexed);
    EXPECT_EQ(indexed->integer, 12) << "the channels of latest namespaces only";
    const router::redis_reply kept = redis_call(redis.port(), {"XLEN", "hs:{factory.m1.telemetry}:s"});
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->integer, 1) << "history_size 0 keeps the last message";

    const std::uint32_t refused = dashboard.subscribe("office.>", slow_policy::router_default, true);
    const auto not_enabled = dashboard.wait_for(answer_to(refused));
    ASSERT_TRUE(not_enabled);
    EXPECT_EQ(not_enabled->error(), errc::not_enabled);

    const std::uint32_t s = dashboard.subscribe("factory.*.telemetry", slow_policy::router_default, true);
    ASSERT_TRUE(dashboard.wait_for(is(event_kind::ack, s)));
    const auto state = dashboard.wait_count(is(event_kind::message), 12);
    ASSERT_EQ(state.size(), 12u);
    for (std::size_t i = 0; i < state.size(); ++i) {
        EXPECT_EQ(state[i].payload_text(), "2") << state[i].name;
        EXPECT_EQ(state[i].seq, 2u);
        EXPECT_EQ(state[i].epoch, epochs[state[i].name]);
        EXPECT_TRUE(replayed(state[i])) << describe(state[i]);
    }
    test_client one(frontend_config(b->ws_url(), "one"));
    ASSERT_TRUE(one.wait_ready());
    const std::uint32_t o = one.subscribe("factory.m7.telemetry", slow_policy::router_default, true);
    const auto ack = one.wait_for(is(event_kind::ack, o));
    ASSERT_TRUE(ack);
    const auto value = one.wait_for(message_on("factory.m7.telemetry"));
    ASSERT_TRUE(value);
    EXPECT_EQ(value->seq, 2u);
    EXPECT_TRUE(replayed(*value));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("factory.m7.telemetry"), 1));

    ASSERT_EQ(publish_numbers(pub, "factory.m7.telemetry", 3, 3).size(), 1u);
    for (test_client* t : {&dashboard, &one}) {
        const auto got = t->wait_count(message_on("factory.m7.telemetry"), 2);
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(got[1].seq, 3u);
        EXPECT_FALSE(replayed(got[1]));
    }
    EXPECT_EQ(dashboard.count(is(event_kind::message)), 13u);
    EXPECT_EQ(dashboard.count(is(event_kind::gap)) + one.count(is(event_kind::gap)), 0u);
}

// Publishers keep going while the latest values are read from Redis: each
// channel's messages reach the subscriber in seq order from its latest
// value on, none missing, none twice (the router's hold merges them; a live
// copy of the latest value that Redis's pub/sub brings after the read is
// dropped by the engine, which tracks positions per channel).
TEST(RouterCluster, ALatestSubscribeDuringPublishesLosesAndRepeatsNothing) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> options{"--channels-namespaces",
                                           R"([{"pattern": "cell.>", "latest": true, "history_size": 0}])"};
    auto a = cluster_router({redis.address()}, options);
    auto b = cluster_router({redis.address()}, options);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client watcher(frontend_config(b->ws_url(), "watcher"));  // B's interest in cell.* is made first
    ASSERT_TRUE(pub.wait_ready() && watcher.wait_ready());
    ASSERT_TRUE(watcher.wait_for(is(event_kind::ack, watcher.subscribe("cell.*"))));
    ASSERT_TRUE(eventually([&] { return pattern_subscriptions(redis.port()) == 1; }, 5s));
    const int channels = 8;
    const int rounds = 60;
    for (int c = 0; c < channels; ++c) ASSERT_EQ(publish_numbers(pub, "cell." + std::to_string(c), 1, 1).size(), 1u);

    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    std::uint32_t last = 0;
    for (int round = 2; round <= rounds; ++round) {
        for (int c = 0; c < channels; ++c) last = pub.publish("cell." + std::to_string(c), std::to_string(round), true);
        if (round == 10) late.subscribe("cell.*", slow_policy::router_default, true);
    }
    ASSERT_TRUE(pub.wait_for(answer_to(last), 10s));
    for (int c = 0; c < channels; ++c) {
        const std::string channel = "cell." + std::to_string(c);
        ASSERT_TRUE(late.wait_for([&](const recorded_event& e) {
            return e.kind == event_kind::message && e.name == channel && e.seq == static_cast<std::uint64_t>(rounds);
        }, 10s)) << channel;
        const auto got = late.events(message_on(channel));
        ASSERT_FALSE(got.empty());
        EXPECT_TRUE(replayed(got.front())) << "the latest value first: " << describe(got.front());
        for (std::size_t i = 1; i < got.size(); ++i) EXPECT_EQ(got[i].seq, got[i - 1].seq + 1) << channel;
    }
    EXPECT_EQ(late.count(is(event_kind::gap)), 0u);
}

// Redis goes while both routers run: a publish is refused with
// cluster_unavailable (never acked), and so is a resume. Redis comes back
// empty on its port: publishes work again, the channel has a new epoch,
// and subscribers that stayed connected (or subscribed meanwhile) get the
// new publications, told that continuity broke.
TEST(RouterCluster, ARedisOutageFailsPublishesAndResumesByName) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("tank.level"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("tank.level"), 1));
    const auto before = publish_numbers(pub, "tank.level", 1, 3);
    ASSERT_EQ(before.size(), 3u);
    const std::uint32_t old_epoch = before.front().epoch;
    ASSERT_EQ(sub.wait_count(message_on("tank.level"), 3).size(), 3u);

    redis.kill();
    // At once, whether or not the router noticed yet: never an ack (its
    // code may say the outcome is unknown, when the script was on the wire
    // as Redis went).
    const std::uint32_t early = pub.publish("tank.level", "early", true);
    const auto early_answer = pub.wait_for(answer_to(early), 10s);
    ASSERT_TRUE(early_answer);
    EXPECT_EQ(early_answer->kind, event_kind::error) << describe(*early_answer);
    EXPECT_EQ(early_answer->op, operation::publish);
    // Once the routers know: refused before anything is sent.
    ASSERT_TRUE(logged(*a, "event=cluster.redis_down", 1));
    ASSERT_TRUE(logged(*b, "event=cluster.redis_down", 1));
    const std::uint32_t refused = pub.publish("tank.level", "refused", true);
    const auto answer = pub.wait_for(answer_to(refused), 10s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->kind, event_kind::error) << describe(*answer);
    EXPECT_EQ(answer->op, operation::publish);
    EXPECT_EQ(answer->error(), errc::cluster_unavailable) << describe(*answer);
    EXPECT_EQ(cluster_count(*a, "publish_failures"), 2) << "the early publish and the refused one";
    EXPECT_TRUE(metric_is(*a, "hyperstreams_cluster_publish_failures_total", 2));
    EXPECT_EQ(cluster_count(*b, "publish_failures"), 0);
    test_client resuming(frontend_config(b->ws_url(), "resuming"));
    ASSERT_TRUE(resuming.wait_ready());
    const std::uint32_t r = subscribe_since(resuming, "tank.level", channel_position{old_epoch, 1});
    const auto resume = resuming.wait_for(answer_to(r));
    ASSERT_TRUE(resume);
    EXPECT_EQ(resume->kind, event_kind::error) << describe(*resume);
    EXPECT_EQ(resume->op, operation::subscribe);
    EXPECT_EQ(resume->error(), errc::cluster_unavailable) << describe(*resume);
    // A plain subscribe needs no Redis answer: its interest waits for Redis.
    test_client meanwhile(frontend_config(a->ws_url(), "meanwhile"));
    ASSERT_TRUE(meanwhile.wait_ready());
    ASSERT_TRUE(meanwhile.wait_for(is(event_kind::ack, meanwhile.subscribe("tank.level"))));

    ASSERT_TRUE(redis.restart());
    ASSERT_TRUE(logged(*a, "event=cluster.redis_up", 2, 15s));
    ASSERT_TRUE(logged(*b, "event=cluster.redis_up", 2, 15s));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("tank.level"), 2))
        << "both routers take their interest again";
    const auto after = publish_numbers(pub, "tank.level", 1, 2);
    ASSERT_EQ(after.size(), 2u);
    const std::uint32_t new_epoch = after.front().epoch;
    EXPECT_NE(new_epoch, old_epoch) << "an empty Redis: the channel starts again";
    EXPECT_EQ(after.front().seq, 1u);

    const auto got = sub.wait_count(message_on("tank.level"), 5);
    ASSERT_EQ(got.size(), 5u);
    expect_numbers(std::vector<recorded_event>(got.begin() + 3, got.end()), 1, new_epoch);
    const auto changed = sub.wait_for(is(event_kind::epoch_changed));
    ASSERT_TRUE(changed);
    EXPECT_EQ(changed->name, "tank.level");
    EXPECT_EQ(changed->epoch, new_epoch);
    const auto fresh = meanwhile.wait_count(message_on("tank.level"), 2);
    ASSERT_EQ(fresh.size(), 2u);
    expect_numbers(fresh, 1, new_epoch);
    for (const auto& m : sub.events(message_on("tank.level")))
        EXPECT_TRUE(m.payload_text() != "early" && m.payload_text() != "refused") << describe(m);
    EXPECT_EQ(pub.count(is(event_kind::error)), 2u);

    // The refused resume, tried again: the old position names nothing in
    // the new epoch, so all there is comes, as another epoch.
    const std::uint32_t again = subscribe_since(resuming, "tank.level", channel_position{old_epoch, 3});
    ASSERT_TRUE(resuming.wait_for(is(event_kind::ack, again)));
    const auto replay = resuming.wait_count(message_on("tank.level"), 2);
    ASSERT_EQ(replay.size(), 2u);
    expect_numbers(replay, 1, new_epoch);
    for (const auto& m : replay) EXPECT_TRUE(replayed(m)) << describe(m);
    const auto resumed_changed = resuming.wait_for(is(event_kind::epoch_changed));
    ASSERT_TRUE(resumed_changed);
    EXPECT_EQ(resumed_changed->epoch, new_epoch);
    EXPECT_EQ(resuming.count(is(event_kind::gap)), 0u);
}

// What a publish costs Redis: one EVALSHA of the script each node loaded
// once (SCRIPT LOAD) rather than the script's text every time. Bytes from
// every client Redis read, over 200 publishes of 8 bytes (heartbeats and
// PINGs come along), each sent once the one before was acked: a batch of
// one each, the publish script's (publishes sent together are fewer
// scripts: AMessageOfPublishesIsOneScriptAndOnePubSubMessage).
TEST(RouterCluster, APublishSendsRedisTheScriptsShaNotItsText) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()}, rare_heartbeats());
    auto b = cluster_router({redis.address()}, rare_heartbeats());
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("cost.probe"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("cost.probe"), 1));
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");
    const long long bytes_before = info_field(redis.port(), "stats", "total_net_input_bytes");
    constexpr int publishes = 200;
    for (int i = 0; i < publishes; ++i) {
        const std::uint32_t id = pub.publish("cost.probe", "12345678", true);
        ASSERT_TRUE(pub.wait_for(is(event_kind::ack, id), 10s)) << id;
    }
    const long long bytes = info_field(redis.port(), "stats", "total_net_input_bytes") - bytes_before;
    const long long evalsha = info_field(redis.port(), "commandstats", "cmdstat_evalsha", "calls");
    const long long eval = info_field(redis.port(), "commandstats", "cmdstat_eval", "calls");
    const long long usec = std::max(0LL, info_field(redis.port(), "commandstats", "cmdstat_evalsha", "usec")) +
                           std::max(0LL, info_field(redis.port(), "commandstats", "cmdstat_eval", "usec"));
    std::printf("per publish: %.1f bytes read by Redis, %.1f us in the script's command; EVALSHA %lld, EVAL %lld "
                "for %d publishes\n",
                static_cast<double>(bytes) / publishes, static_cast<double>(usec) / publishes, evalsha, eval,
                publishes);
    EXPECT_EQ(evalsha, publishes);
    EXPECT_LE(eval, 0) << "no EVAL without a node that lost its scripts";
    EXPECT_LT(bytes, publishes * 250LL) << "a publish sends the script's SHA and its arguments";
    EXPECT_EQ(sub.wait_count(message_on("cost.probe"), publishes).size(), static_cast<std::size_t>(publishes));
}

// Redis's scripts flushed (SCRIPT FLUSH) while the routers run, twice, with
// publishes on the wire: each one lost runs from its text in its place, so
// publishes keep working, acked and delivered in the order they were made;
// a resume (the other script) works after too.
TEST(RouterCluster, PublishesKeepTheirOrderAcrossAScriptFlush) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("flush.order"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("flush.order"), 1));
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");

    constexpr int per_round = 60;
    std::vector<std::uint32_t> ids;
    for (int round = 0; round < 3; ++round) {
        for (int i = 1; i <= per_round; ++i)
            ids.push_back(pub.publish("flush.order", std::to_string(round * per_round + i), true));
        if (round < 2) ASSERT_EQ(reply_text(redis_call(redis.port(), {"SCRIPT", "FLUSH"})), "OK");
    }
    std::uint64_t last_seq = 0;
    std::uint32_t epoch = 0;
    for (std::uint32_t id : ids) {
        const auto ack = pub.wait_for(answer_to(id), 10s);
        ASSERT_TRUE(ack && ack->kind == event_kind::ack) << (ack ? describe(*ack) : "no answer");
        EXPECT_EQ(ack->seq, last_seq + 1) << "acked in the order published";
        last_seq = ack->seq;
        epoch = ack->epoch;
    }
    const auto got = sub.wait_count(message_on("flush.order"), ids.size());
    ASSERT_EQ(got.size(), ids.size());
    expect_numbers(got, 1, epoch);
    EXPECT_GE(info_field(redis.port(), "commandstats", "cmdstat_eval", "calls"), 1)
        << "a publish found its script gone, and ran it from its text";

    ASSERT_EQ(reply_text(redis_call(redis.port(), {"SCRIPT", "FLUSH"})), "OK");
    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, subscribe_since(late, "flush.order",
                                                                  channel_position{epoch, last_seq - 2}))));
    const auto replay = late.wait_count(message_on("flush.order"), 2);
    ASSERT_EQ(replay.size(), 2u);
    expect_numbers(replay, static_cast<int>(last_seq) - 1, epoch);
}

// ---------------------------------------------------------------- batches

// A publication of a WebSocket message of several (publish_in_one_message).
struct batch_item {
    std::string payload;
    std::string key;                     // an idempotency key; empty: none
    std::optional<std::uint32_t> ttl_s;  // a time to live
};

// Publishes each of `items` on its channel, with an ack, in one run of the
// client's engine: its output is then one WebSocket message, which the
// router routes in one call of its core. The publishes' ids, in order.
std::vector<std::uint32_t> publish_in_one_message(
    test_client& c, const std::vector<std::pair<std::string, batch_item>>& items) {
    return c.run([&](client_engine& e, time_ms) {
        std::vector<std::uint32_t> ids;
        for (const auto& [channel, item] : items) {
            const auto bytes = bytes_of(item.payload);
            publish_options o;
            o.key = item.key;
            o.ttl_s = item.ttl_s;
            const call_result r = e.publish(channel, bytes, true, 0, o);
            EXPECT_FALSE(r.error) << r.error.message();
            ids.push_back(r.id);
        }
        return ids;
    });
}

// The publishes "first".."last" on `channel` in one WebSocket message.
std::vector<std::uint32_t> publish_numbers_in_one_message(test_client& c, const std::string& channel, int first,
                                                          int last) {
    std::vector<std::pair<std::string, batch_item>> items;
    for (int i = first; i <= last; ++i) items.push_back({channel, batch_item{std::to_string(i), {}, {}}});
    return publish_in_one_message(c, items);
}

// The answers to `ids`, in order; fails the test at the first missing one.
std::vector<recorded_event> answers_to(test_client& c, const std::vector<std::uint32_t>& ids) {
    std::vector<recorded_event> answers;
    for (std::uint32_t id : ids) {
        const auto a = c.wait_for(answer_to(id), 10s);
        if (!a) {
            ADD_FAILURE() << "no answer to " << id;
            break;
        }
        answers.push_back(*a);
    }
    return answers;
}

long long evalsha_calls(const redis_server& redis) {
    return info_field(redis.port(), "commandstats", "cmdstat_evalsha", "calls");
}

// Routers with one I/O thread, which the Redis engine runs on too: the
// core's call that routes a WebSocket message appends all of its
// publishes before the engine's thread runs the flush the first one
// posted, so a message's publishes to a channel are exactly one batch (at
// most max_batch_publications each). With more threads the flush may run
// while another thread's call appends: fewer scripts than publishes, but
// not a count a test can know.
std::unique_ptr<router_process> one_thread_router(const redis_server& redis, std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--threads", "1"});
    return cluster_router({redis.address()}, rare_heartbeats(std::move(extra)));
}

// 100 publishes with acks in one WebSocket message on A: one EVALSHA and
// one pub/sub message (Redis counts the PUBLISH its script makes), acked at
// consecutive seqs, and delivered in that order at those positions on B
// and on A itself.
TEST(RouterCluster, AMessageOfPublishesIsOneScriptAndOnePubSubMessage) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = one_thread_router(redis, {"--history-max-messages", "128"});
    auto b = one_thread_router(redis, {"--history-max-messages", "128"});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client on_a(frontend_config(a->ws_url(), "on-a"));
    test_client on_b(frontend_config(b->ws_url(), "on-b"));
    ASSERT_TRUE(pub.wait_ready() && on_a.wait_ready() && on_b.wait_ready());
    ASSERT_TRUE(on_a.wait_for(is(event_kind::ack, on_a.subscribe("batch.line"))));
    ASSERT_TRUE(on_b.wait_for(is(event_kind::ack, on_b.subscribe("batch.line"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("batch.line"), 2));
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");

    constexpr int n = 100;
    const auto acks = answers_to(pub, publish_numbers_in_one_message(pub, "batch.line", 1, n));
    ASSERT_EQ(acks.size(), static_cast<std::size_t>(n));
    const std::uint32_t epoch = acks.front().epoch;
    EXPECT_NE(epoch, 0u);
    for (std::size_t i = 0; i < acks.size(); ++i) {
        ASSERT_EQ(acks[i].kind, event_kind::ack) << describe(acks[i]);
        EXPECT_EQ(acks[i].epoch, epoch);
        EXPECT_EQ(acks[i].seq, i + 1);
    }
    EXPECT_EQ(evalsha_calls(redis), 1) << "one script for the message's 100 publishes";
    EXPECT_EQ(info_field(redis.port(), "commandstats", "cmdstat_publish", "calls"), 1) << "one pub/sub message";
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"HGET", meta_key("batch.line"), "s"})), std::to_string(n));
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"XLEN", "hs:{batch.line}:s"})), std::to_string(n));

    for (test_client* c : {&on_a, &on_b}) {
        const auto got = c->wait_count(message_on("batch.line"), n);
        ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
        expect_numbers(got, 1, epoch);
        EXPECT_EQ(c->count(is(event_kind::gap)), 0u);
    }
}

// A batch longer than the channel's history: its appends are trimmed to
// the history length once, after them (one XTRIM, no MAXLEN on each
// XADD), so the stream holds the batch's last publications, and a resume
// on another router gets a gap for the rest and those, in order.
TEST(RouterCluster, ABatchLongerThanTheHistoryKeepsItsLastPublications) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = one_thread_router(redis, {"--history-max-messages", "10"});
    auto b = one_thread_router(redis, {"--history-max-messages", "10"});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");

    constexpr int n = 100;
    const auto acks = answers_to(pub, publish_numbers_in_one_message(pub, "batch.trim", 1, n));
    ASSERT_EQ(acks.size(), static_cast<std::size_t>(n));
    for (const auto& ack : acks) ASSERT_EQ(ack.kind, event_kind::ack) << describe(ack);
    EXPECT_EQ(evalsha_calls(redis), 1);
    EXPECT_EQ(info_field(redis.port(), "commandstats", "cmdstat_xadd", "calls"), n);
    EXPECT_EQ(info_field(redis.port(), "commandstats", "cmdstat_xtrim", "calls"), 1) << "trimmed once per batch";
    const std::string stream = "hs:{batch.trim}:s";
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"XLEN", stream})), "10");
    const router::redis_reply first = redis_call(redis.port(), {"XRANGE", stream, "-", "+", "COUNT", "1"});
    ASSERT_TRUE(first && first->type == REDIS_REPLY_ARRAY && first->elements == 1);
    ASSERT_TRUE(first->element[0]->type == REDIS_REPLY_ARRAY && first->element[0]->elements == 2);
    EXPECT_EQ(router::redis_text(*first->element[0]->element[0]), "91-0") << "the batch's last 10 kept";

    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, subscribe_since(late, "batch.trim", {acks.front().epoch, 0}))));
    const auto gap = late.wait_for(is(event_kind::gap));
    ASSERT_TRUE(gap);
    EXPECT_EQ(gap->seq, 1u);
    EXPECT_EQ(gap->count, 90u);
    const auto kept = late.wait_count(message_on("batch.trim"), 10);
    ASSERT_EQ(kept.size(), 10u);
    expect_numbers(kept, 91, acks.front().epoch);
}

// Inside one batch, each publication follows the idempotency rules on its
// own: a key published before, and a key first used earlier in the batch,
// are repeats acked with the first position; the same key with another
// payload is key_reused for that publication only; the others take
// consecutive seqs, and only they are delivered.
TEST(RouterCluster, ABatchAppliesTheIdempotencyRulesToEachPublication) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = one_thread_router(redis);
    auto b = one_thread_router(redis);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("orders.batch"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("orders.batch"), 1));
    const auto earlier = pub.wait_for(answer_to(publish_with(pub, "orders.batch", "qty 1", "order-1")), 10s);
    ASSERT_TRUE(earlier && earlier->kind == event_kind::ack);
    ASSERT_EQ(earlier->seq, 1u);
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");

    const std::string ch = "orders.batch";
    const auto ids = publish_in_one_message(pub, {{ch, {"qty 1", "order-1", {}}},    // repeat of the earlier
                                                  {ch, {"plain", "", {}}},           // seq 2
                                                  {ch, {"qty 2", "order-2", {}}},    // seq 3
                                                  {ch, {"qty 2", "order-2", {}}},    // repeat of seq 3
                                                  {ch, {"qty 9", "order-2", {}}},    // key_reused
                                                  {ch, {"qty 9", "order-1", {}}},    // key_reused
                                                  {ch, {"last", "", {}}}});          // seq 4
    const auto answers = answers_to(pub, ids);
    ASSERT_EQ(answers.size(), 7u);
    const std::uint32_t epoch = earlier->epoch;
    const auto expect_ack = [&](std::size_t i, std::uint64_t seq) {
        EXPECT_EQ(answers[i].kind, event_kind::ack) << i << ": " << describe(answers[i]);
        EXPECT_EQ(answers[i].epoch, epoch) << i;
        EXPECT_EQ(answers[i].seq, seq) << i;
    };
    expect_ack(0, 1);
    expect_ack(1, 2);
    expect_ack(2, 3);
    expect_ack(3, 3);
    for (std::size_t i : {4u, 5u}) {
        EXPECT_EQ(answers[i].kind, event_kind::error) << i << ": " << describe(answers[i]);
        EXPECT_EQ(answers[i].error(), errc::key_reused) << i << ": " << describe(answers[i]);
    }
    expect_ack(6, 4);
    EXPECT_EQ(evalsha_calls(redis), 1) << "the seven publishes were one script";

    const auto got = sub.wait_count(message_on(ch), 4);
    ASSERT_EQ(got.size(), 4u);
    const std::vector<std::string> texts = {"qty 1", "plain", "qty 2", "last"};
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].payload_text(), texts[i]) << describe(got[i]);
        EXPECT_EQ(got[i].seq, i + 1) << describe(got[i]);
    }
    const auto marker = publish_numbers(pub, ch, 5, 5);
    ASSERT_EQ(marker.size(), 1u);
    EXPECT_EQ(marker[0].seq, 5u) << "the repeats and the refused took no position";
    ASSERT_EQ(sub.wait_count(message_on(ch), 5).size(), 5u);
    EXPECT_EQ(sub.count(message_on(ch)), 5u);
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"GET", "hs:{orders.batch}:i:order-2"})).rfind(
                  std::to_string(epoch) + ":3:", 0),
              0u)
        << "the key holds the position of its first use in the batch";

    // Publications that took a seq before the batch's first repeat: the
    // script's answer then has a record for each of them too.
    const auto more = answers_to(pub, publish_in_one_message(pub, {{ch, {"six", "", {}}},
                                                                   {ch, {"seven", "", {}}},
                                                                   {ch, {"qty 2", "order-2", {}}},  // repeat of seq 3
                                                                   {ch, {"eight", "", {}}}}));
    ASSERT_EQ(more.size(), 4u);
    for (std::size_t i = 0; i < more.size(); ++i) {
        ASSERT_EQ(more[i].kind, event_kind::ack) << i << ": " << describe(more[i]);
        EXPECT_EQ(more[i].epoch, epoch) << i;
    }
    EXPECT_EQ(more[0].seq, 6u);
    EXPECT_EQ(more[1].seq, 7u);
    EXPECT_EQ(more[2].seq, 3u);
    EXPECT_EQ(more[3].seq, 8u);
    ASSERT_EQ(sub.wait_count(message_on(ch), 8).size(), 8u);
}

// Publications with a time to live inside a batch each keep their own: a
// resume on the other router after the short ones expired gets a gap for
// each, and the others.
TEST(RouterCluster, MessagesWithATimeToLiveInsideABatchExpireOnTheirOwn) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = one_thread_router(redis, {"--history-max-messages", "16"});
    auto b = one_thread_router(redis, {"--history-max-messages", "16"});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");
    const std::string ch = "alarms.batch";
    const auto answers = answers_to(pub, publish_in_one_message(pub, {{ch, {"1 short", "", 1}},
                                                                      {ch, {"2 kept", "", 3600}},
                                                                      {ch, {"3 short", "", 1}},
                                                                      {ch, {"4 forever", "", {}}}}));
    ASSERT_EQ(answers.size(), 4u);
    for (std::size_t i = 0; i < answers.size(); ++i) {
        ASSERT_EQ(answers[i].kind, event_kind::ack) << describe(answers[i]);
        EXPECT_EQ(answers[i].seq, i + 1);
    }
    EXPECT_EQ(evalsha_calls(redis), 1);
    std::this_thread::sleep_until(std::chrono::steady_clock::now() + 1050ms);

    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, subscribe_since(late, ch, {answers[0].epoch, 0}))));
    const auto gaps =
        late.wait_count([ch](const recorded_event& e) { return e.kind == event_kind::gap && e.name == ch; }, 2);
    ASSERT_EQ(gaps.size(), 2u);
    EXPECT_EQ(gaps[0].seq, 1u);
    EXPECT_EQ(gaps[0].count, 1u);
    EXPECT_EQ(gaps[1].seq, 3u);
    EXPECT_EQ(gaps[1].count, 1u);
    const auto kept = late.wait_count(message_on(ch), 2);
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_EQ(kept[0].payload_text(), "2 kept");
    EXPECT_EQ(kept[0].seq, 2u);
    EXPECT_EQ(kept[1].payload_text(), "4 forever");
    EXPECT_EQ(kept[1].seq, 4u);
}

// A message whose publishes go to two channels, interleaved, is a batch per
// channel (two scripts, each on its channel's keys), each channel's in the
// order published; a resume from the other router after the batch gets the
// batch's entries from the stream.
TEST(RouterCluster, ABatchSpanningTwoChannelsIsOneScriptEachAndResumesOnAnotherRouter) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = one_thread_router(redis);
    auto b = one_thread_router(redis);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("pair.*"))));
    ASSERT_TRUE(eventually([&] { return pattern_subscriptions(redis.port()) == 1; }, 5s));
    const auto before = publish_numbers(pub, "pair.x", 1, 2);
    ASSERT_EQ(before.size(), 2u);
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");

    std::vector<std::pair<std::string, batch_item>> items;
    for (int i = 1; i <= 20; ++i) {
        items.push_back({"pair.x", {std::to_string(i + 2), {}, {}}});
        items.push_back({"pair.y", {std::to_string(i), {}, {}}});
    }
    const auto answers = answers_to(pub, publish_in_one_message(pub, items));
    ASSERT_EQ(answers.size(), items.size());
    std::map<std::string, std::uint64_t> last_seq = {{"pair.x", 2}, {"pair.y", 0}};
    for (std::size_t i = 0; i < answers.size(); ++i) {
        ASSERT_EQ(answers[i].kind, event_kind::ack) << describe(answers[i]);
        EXPECT_EQ(answers[i].seq, ++last_seq[items[i].first]) << items[i].first << " " << items[i].second.payload;
    }
    EXPECT_EQ(evalsha_calls(redis), 2) << "one script per channel";

    const auto xs = sub.wait_count(message_on("pair.x"), 22);
    const auto ys = sub.wait_count(message_on("pair.y"), 20);
    ASSERT_EQ(xs.size(), 22u);
    ASSERT_EQ(ys.size(), 20u);
    expect_numbers(xs, 1, before.front().epoch);
    expect_numbers(ys, 1, answers[1].epoch);

    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, subscribe_since(late, "pair.x", {before.front().epoch, 2}))));
    const auto replay = late.wait_count(message_on("pair.x"), 20);
    ASSERT_EQ(replay.size(), 20u);
    expect_numbers(replay, 3, before.front().epoch);
    for (const auto& m : replay) EXPECT_TRUE(replayed(m)) << describe(m);
    EXPECT_EQ(late.count(is(event_kind::gap)), 0u);
}

// A message of more publishes than a batch holds (256) is split: 600 are
// three scripts, still one sequence in order. The publisher's messages are
// unbounded here (the tests' clients send at most 4 KiB each), so that the
// 600 are one.
TEST(RouterCluster, TheBatchBoundSplitsABiggerMessage) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = one_thread_router(redis);
    auto b = one_thread_router(redis);
    ASSERT_TRUE(a->ready() && b->ready());
    client_config unbounded = frontend_config(a->ws_url(), "pub");
    unbounded.max_batch_bytes = 0;
    test_client pub(unbounded);
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("batch.big"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("batch.big"), 1));
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "RESETSTAT"})), "OK");

    constexpr int n = 600;
    const auto acks = answers_to(pub, publish_numbers_in_one_message(pub, "batch.big", 1, n));
    ASSERT_EQ(acks.size(), static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < acks.size(); ++i) {
        ASSERT_EQ(acks[i].kind, event_kind::ack) << describe(acks[i]);
        EXPECT_EQ(acks[i].seq, i + 1);
    }
    EXPECT_EQ(evalsha_calls(redis), 3) << "256 + 256 + 88";
    EXPECT_EQ(info_field(redis.port(), "commandstats", "cmdstat_publish", "calls"), 3);
    const auto got = sub.wait_count(message_on("batch.big"), n, 10s);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
    expect_numbers(got, 1, acks.front().epoch);
}

// A batch whose answer is lost (Redis stopped while it runs, past the
// command timeout) fails each of its publications with
// cluster_outcome_unknown, in order, and the router says so once for the
// batch.
TEST(RouterCluster, ABatchWhoseAnswerIsLostFailsEachPublicationAsUnknown) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = one_thread_router(redis);
    ASSERT_TRUE(a->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    ASSERT_EQ(publish_numbers(pub, "batch.lost", 1, 1).size(), 1u);
    redis.signal(SIGSTOP);
    const auto answers = answers_to(pub, publish_numbers_in_one_message(pub, "batch.lost", 2, 4));
    redis.signal(SIGCONT);
    ASSERT_EQ(answers.size(), 3u);
    for (const auto& e : answers) {
        EXPECT_EQ(e.kind, event_kind::error) << describe(e);
        EXPECT_EQ(e.error(), errc::cluster_outcome_unknown) << describe(e);
    }
    EXPECT_TRUE(logged(*a, "event=cluster.publish_failed channel=batch.lost code=cluster_outcome_unknown "
                           "publications=3",
                       1))
        << "one failure logged for the batch of three";
}

// A batch message that does not add up (truncated, a count its bytes do
// not hold) is logged by name and dropped whole; what comes next is
// delivered.
// A one-thread router on a redis-server of its own, with a publisher and a
// subscriber of one channel, for batch messages published into Redis by hand.
struct channel_on_one_router {
    redis_server redis;
    std::unique_ptr<router_process> router;
    std::optional<test_client> pub;
    std::optional<test_client> sub;

    // True once all are up and the subscription to `channel` is in force in Redis.
    bool start(const std::string& channel) {
        if (!redis.ready()) return false;
        router = one_thread_router(redis);
        if (!router->ready()) return false;
        pub.emplace(frontend_config(router->ws_url(), "pub"));
        sub.emplace(frontend_config(router->ws_url(), "sub"));
        return pub->wait_ready() && sub->wait_ready() &&
               sub->wait_for(is(event_kind::ack, sub->subscribe(channel))) &&
               wait_numsub(redis.port(), pubsub_channel(channel), 1);
    }

    // Once started.
    struct started {
        redis_server& redis;
        router_process& router;
        test_client& pub;
        test_client& sub;
    };
    started parts() { return {redis, *router, *pub, *sub}; }
};

TEST(RouterCluster, AMalformedBatchIsDroppedWholeAndNamed) {
    channel_on_one_router one;
    ASSERT_TRUE(one.start("batch.bad"));
    auto [redis, router, pub, sub] = one.parts();

    // Epoch 7, first seq 1, two entries: "ok", then one cut short.
    std::string bad = {'\x80', '\x13', 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0};
    bad += std::string{'\0', 2, 0, 0, 0} + "ok";
    bad += std::string{'\0', 9, 0, 0, 0} + "short";
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"PUBLISH", pubsub_channel("batch.bad"), bad})), "1");
    EXPECT_TRUE(logged(router, "event=cluster.bad_batch", 1));
    const auto good = publish_numbers(pub, "batch.bad", 1, 1);
    ASSERT_EQ(good.size(), 1u);
    const auto got = sub.wait_for(message_on("batch.bad"));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload_text(), "1") << "nothing of the bad batch, not even its whole first entry";
    EXPECT_EQ(sub.count(message_on("batch.bad")), 1u);
}

// A publication's message (redis_log.hpp) at epoch 0 or seq 0, which no
// script publishes, is dropped and named, as a batch at either is: clients
// take (0, 0) for "no position". Found by fuzz_router (setup bit 7).
TEST(RouterCluster, AOnePublicationAtPositionZeroIsDroppedAndNamed) {
    channel_on_one_router one;
    ASSERT_TRUE(one.start("one.zero"));
    auto [redis, router, pub, sub] = one.parts();

    const auto one_publication = [](std::uint32_t epoch, std::uint64_t seq, std::string_view payload) {
        std::string out(1, '\0');
        for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((epoch >> (8 * i)) & 0xFF));
        for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((seq >> (8 * i)) & 0xFF));
        return out + std::string(payload);
    };
    const std::string channel = pubsub_channel("one.zero");
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"PUBLISH", channel, one_publication(0, 1, "epoch 0")})), "1");
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"PUBLISH", channel, one_publication(7, 0, "seq 0")})), "1");
    // Both counted; the second, within a second of the first, is not
    // logged on its own (HS_LOG_THROTTLED).
    EXPECT_TRUE(eventually([&] { return cluster_count(router, "bad_messages") == 2; }, 5s))
        << cluster_count(router, "bad_messages");
    EXPECT_TRUE(logged(router, "why=\"position zero\"", 1));
    EXPECT_TRUE(metric_is(router, "hyperstreams_cluster_bad_messages_total", 2));
    const auto good = publish_numbers(pub, "one.zero", 1, 1);
    ASSERT_EQ(good.size(), 1u);
    const auto got = sub.wait_for(message_on("one.zero"));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload_text(), "1") << "neither message at position zero";
    EXPECT_NE(got->epoch, 0u);
    EXPECT_EQ(sub.count(message_on("one.zero")), 1u);
}

// A hole in what a router's pub/sub brings (here, two publications placed
// in the stream and never published, as while its subscriber connection
// was down): the publication after it waits while the router reads the
// missing ones from the stream, and the subscriber gets all three in
// order, with no gap.
TEST(RouterCluster, APublicationAfterAHoleWaitsForTheMissingOnesReadFromTheStream) {
    channel_on_one_router one;
    ASSERT_TRUE(one.start("hole.line"));
    auto [redis, router, pub, sub] = one.parts();
    const auto first = publish_numbers(pub, "hole.line", 1, 3);
    ASSERT_EQ(first.size(), 3u);
    ASSERT_EQ(sub.wait_count(message_on("hole.line"), 3).size(), 3u);
    const std::uint32_t epoch = first.front().epoch;

    const std::string stream = "hs:{hole.line}:s";
    for (const char* seq : {"4", "5", "6"})
        ASSERT_EQ(reply_text(redis_call(redis.port(), {"XADD", stream, std::string(seq) + "-0", "f", "0", "d", seq})),
                  std::string(seq) + "-0");
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"HSET", meta_key("hole.line"), "s", "6"})), "0");
    ASSERT_EQ(reply_text(redis_call(redis.port(),
                                    {"PUBLISH", pubsub_channel("hole.line"), fuzzing::one_publication(0, epoch, 6, "6")})),
              "1");
    const auto got = sub.wait_count(message_on("hole.line"), 6);
    ASSERT_EQ(got.size(), 6u);
    expect_numbers(got, 1, epoch);
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
    EXPECT_TRUE(logged(router, "event=cluster.hole_filled channel=hole.line after_seq=3 publications=2", 1))
        << router.log();
    // Live again: the next publication follows at once.
    ASSERT_EQ(publish_numbers(pub, "hole.line", 7, 7).size(), 1u);
    ASSERT_EQ(sub.wait_count(message_on("hole.line"), 7).size(), 7u);
}

// A channel a connection takes through two subscriptions (the channel and
// a pattern) reaches the router twice from Redis, and the router's last
// position of the channel drops the second copy. When the channel's own
// subscription goes, the pattern still matches: the position stays, and a
// copy still on its way is dropped, not delivered again. (fuzz_router found
// the router forgetting it; its input is kept in the corpus.)
TEST(RouterCluster, APositionStaysWhileAnotherSubscriptionStillMatchesItsChannel) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto router = cluster_router({redis.address()});
    ASSERT_TRUE(router->ready());
    test_client pub(frontend_config(router->ws_url(), "pub"));
    test_client sub(frontend_config(router->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    const std::uint32_t exact = sub.subscribe("dup.line");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, exact)));
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("dup.*"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("dup.line"), 1));
    ASSERT_TRUE(eventually([&] { return pattern_subscriptions(redis.port()) == 1; }, 5s));
    const auto first = publish_numbers(pub, "dup.line", 1, 1);
    ASSERT_EQ(first.size(), 1u);
    ASSERT_TRUE(sub.wait_for(message_on("dup.line")));

    const std::uint32_t gone = sub.run([&](client_engine& e, time_ms) { return e.unsubscribe(exact).id; });
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, gone)));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("dup.line"), 0));
    // The copy the pattern's subscription would bring of publication 1.
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"PUBLISH", pubsub_channel("dup.line"),
                                                   fuzzing::one_publication(0, first.front().epoch, 1, "1")})),
              "1");
    ASSERT_EQ(publish_numbers(pub, "dup.line", 2, 2).size(), 1u);
    ASSERT_TRUE(sub.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::message && e.name == "dup.line" && e.seq == 2;
    }));
    EXPECT_EQ(sub.run([](client_engine& e, time_ms) { return e.stats().duplicates_dropped; }), 0u)
        << "the router sent publication 1 once";
}

// Two routers on one Redis that wants credentials: A as the default user,
// B as the ACL user "router", which a test can refuse (ACL SETUSER router
// off); a publisher on A, and a subscriber on B that subscribed to
// `channel` and got publications 1 and 2 (`ok` once all that holds).
struct pair_with_a_refusable_user {
    explicit pair_with_a_refusable_user(const std::string& channel) {
        if (!redis.ready() || !require_credentials(redis.port())) return;
        a = cluster_router({redis.address()}, {"--cluster-redis-password", "default-pass"});
        b = cluster_router({redis.address()},
                           {"--cluster-redis-user", "router", "--cluster-redis-password", "router-pass"});
        if (!a->ready() || !b->ready()) return;
        pub = std::make_unique<test_client>(frontend_config(a->ws_url(), "pub"));
        sub = std::make_unique<test_client>(frontend_config(b->ws_url(), "sub"));
        if (!pub->wait_ready() || !sub->wait_ready() || !sub->wait_for(is(event_kind::ack, sub->subscribe(channel))) ||
            !eventually([&] { return admin({"PUBSUB", "NUMSUB", pubsub_channel(channel)}) != "0"; }, 5s))
            return;
        const auto first = publish_numbers(*pub, channel, 1, 2);
        if (first.size() != 2 || sub->wait_count(message_on(channel), 2).size() != 2) return;
        epoch = first.front().epoch;
        ok = true;
    }
    // A command as the default user.
    std::string admin(std::vector<std::string> command) const {
        const auto r = redis_calls(redis.port(), {{"AUTH", "default-pass"}, std::move(command)});
        return r.size() == 2 ? reply_text(r[1]) : std::string("no answer");
    }

    redis_server redis;
    std::unique_ptr<router_process> a;
    std::unique_ptr<router_process> b;
    std::unique_ptr<test_client> pub;
    std::unique_ptr<test_client> sub;
    std::uint32_t epoch = 0;
    bool ok = false;
};

// The README's least-privilege Redis user ("Several routers": the keys of
// the prefix, every channel (a pattern subscription passes Redis's ACL only
// when the user's rule lists it verbatim), every command but the dangerous
// ones, and INFO for the scripts' rollback check) is enough for every path: pub/sub of a
// channel and a pattern across routers, acks once a replica has them (the
// WAIT's fence), a resume from the history, a latest-value subscribe, the
// cluster's presence with join events, and a direct across routers. Redis
// logs no command refused to it (ACL LOG), and neither router says NOPERM.
TEST(RouterCluster, RoutersRunAsTheReadmesLeastPrivilegeUser) {
    master_and_replica servers;
    ASSERT_TRUE(servers.ok);
    redis_server& redis = servers.master;
    // As in README.md, "Several routers" (the password there is yours).
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"ACL", "SETUSER", "hyperstreams", "on", ">hs-secret", "resetkeys",
                                                   "~hs:*", "allchannels", "+@all", "-@dangerous",
                                                   "+info"})),
              "OK");
    const std::vector<std::string> args = {
        "--cluster-redis-user", "hyperstreams", "--cluster-redis-password-file",
        write_temp_file("least-privilege", "hs-secret\n"), "--cluster-redis-wait-replicas", "1",
        "--channels-namespaces",
        R"([{"pattern": "acl.p.>", "presence": true, "join_leave": true}, {"pattern": "acl.l.>", "latest": true}])"};
    auto a = cluster_router({redis.address()}, args);
    auto b = cluster_router({redis.address()}, args);
    ASSERT_TRUE(a->ready() && b->ready()) << a->log() << b->log();
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());

    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("acl.m"))));
    const std::uint32_t watch = sub.run([](client_engine& e, time_ms) {
        return e.subscribe("acl.p.room", {.join_leave = true});
    }).id;
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, watch)));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("acl.p.room"), 1));
    ASSERT_TRUE(pub.wait_for(is(event_kind::ack, pub.subscribe("acl.p.room"))));
    ASSERT_TRUE(sub.wait_for(is(event_kind::join), 10s)) << "presence across routers";
    const std::uint32_t listed = sub.run([](client_engine& e, time_ms) { return e.presence("acl.p.room"); }).id;
    const auto members = sub.wait_for(is(event_kind::presence, listed), 10s);
    ASSERT_TRUE(members);
    EXPECT_EQ(members->members.size(), 2u) << describe(*members);

    const auto acked = publish_numbers(pub, "acl.m", 1, 3);
    ASSERT_EQ(acked.size(), 3u) << a->log();
    ASSERT_EQ(sub.wait_count(message_on("acl.m"), 3).size(), 3u);
    ASSERT_EQ(publish_numbers(pub, "acl.l.x", 1, 1).size(), 1u);

    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(answer_to(subscribe_since(late, "acl.m", channel_position{acked.front().epoch, 1}))));
    const auto resumed = late.wait_count(message_on("acl.m"), 2);
    ASSERT_EQ(resumed.size(), 2u) << "2 and 3, from the history";
    EXPECT_EQ(resumed.front().payload_text(), "2");
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, late.subscribe("acl.l.>", slow_policy::router_default, true))));
    const auto latest = late.wait_for(message_on("acl.l.x"));
    ASSERT_TRUE(latest) << "the latest value, from the index and the stream";
    EXPECT_EQ(latest->payload_text(), "1");

    const std::string to = sub.run([](client_engine& e, time_ms) { return std::string(e.session_id()); });
    expect_answer(pub, send_direct(pub, to, "a direct"), errc{}, "a direct to B's client");
    ASSERT_TRUE(sub.wait_for(is(event_kind::direct), 10s));

    const router::redis_reply refused = redis_call(redis.port(), {"ACL", "LOG"});
    ASSERT_TRUE(refused && refused->type == REDIS_REPLY_ARRAY);
    EXPECT_EQ(refused->elements, 0u) << "a command refused to the routers' user";
    for (const router_process* r : {a.get(), b.get()}) EXPECT_EQ(r->log().find("NOPERM"), std::string::npos) << r->log();
}

// A router whose Redis connections are down while another router publishes
// (its user disabled, its connections killed) reads, once back, what its
// channels got meanwhile: its subscriber gets every publication, in order,
// though nothing was published after them.
TEST(RouterCluster, WhatARouterMissedWhileItsRedisWasDownIsReadOnceBack) {
    pair_with_a_refusable_user p("press.state");
    ASSERT_TRUE(p.ok);

    ASSERT_EQ(p.admin({"ACL", "SETUSER", "router", "off"}), "OK");
    ASSERT_NE(p.admin({"CLIENT", "KILL", "USER", "router"}), "0");
    ASSERT_TRUE(logged(*p.b, "event=cluster.redis_down", 1)) << p.b->log();
    ASSERT_EQ(publish_numbers(*p.pub, "press.state", 3, 5).size(), 3u);
    ASSERT_EQ(p.admin({"ACL", "SETUSER", "router", "on"}), "OK");
    ASSERT_TRUE(logged(*p.b, "event=cluster.redis_up", 2, 15s)) << p.b->log();

    const auto got = p.sub->wait_count(message_on("press.state"), 5, 10s);
    ASSERT_EQ(got.size(), 5u) << p.b->log();
    expect_numbers(got, 1, p.epoch);
    EXPECT_EQ(p.sub->count(is(event_kind::gap)), 0u);
    EXPECT_TRUE(logged(*p.b, "event=cluster.hole_filled channel=press.state after_seq=2 publications=3", 1))
        << p.b->log();
    const auto metrics = http_get(p.b->admin_address(), "/metrics").body;
    EXPECT_NE(metrics.find("\nhyperstreams_cluster_recovered_total 3\n"), std::string::npos) << metrics;
}

// Redis closes the routers' pub/sub connections (CLIENT KILL TYPE pubsub:
// what it does to a subscriber past its output buffer limit) between
// publishes. Until its router subscribed again, a publish is refused with
// cluster_unavailable, taking no seq, and the publisher sends it again; the
// subscriber on the other router gets every publication once, in order,
// with no gap.
TEST(RouterCluster, PubSubConnectionsClosedByRedisCostTheSubscribersNothing) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("line.speed"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("line.speed"), 1));
    const auto first = publish_numbers(pub, "line.speed", 1, 10);
    ASSERT_EQ(first.size(), 10u);
    // n, acked at seq n; sent again while refused, for up to 10 s.
    std::size_t refused = 0;
    const auto publish = [&](int n) {
        const auto until = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < until) {
            const auto answer = pub.wait_for(answer_to(pub.publish("line.speed", std::to_string(n), true)), 10s);
            if (!answer) return false;
            if (answer->kind == event_kind::ack) return answer->seq == static_cast<std::uint64_t>(n);
            if (answer->error() != errc::cluster_unavailable) return false;
            ++refused;
        }
        return false;
    };
    for (int round = 0; round < 3; ++round) {
        ASSERT_NE(reply_text(redis_call(redis.port(), {"CLIENT", "KILL", "TYPE", "pubsub"})), "0");
        for (int n = 11 + round * 10; n <= 20 + round * 10; ++n) ASSERT_TRUE(publish(n)) << n << "\n" << a->log();
    }
    const auto got = sub.wait_count(message_on("line.speed"), 40, 15s);
    ASSERT_EQ(got.size(), 40u) << b->log();
    expect_numbers(got, 1, first.front().epoch);
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
    EXPECT_EQ(sub.count(message_on("line.speed")), 40u) << "none twice";
    std::printf("publishes refused while the publisher's router subscribed again: %zu\n", refused);
}

// A publication after a hole comes on the subscriber connection while the
// router cannot read the stream (its command connection lost, and its
// Redis user refused meanwhile; on a Redis Cluster, the channel's master
// failed over and the router does not know the new one yet): the read is
// made again until it answers, and the subscriber gets the missing
// publication, then the one that waited, with no gap.
TEST(RouterCluster, AHoleWhoseReadFailsForNowIsReadAgain) {
    pair_with_a_refusable_user p("oven.temp");
    ASSERT_TRUE(p.ok);

    // B's command connection goes, and cannot come back; its subscriber
    // connection stays.
    ASSERT_EQ(p.admin({"ACL", "SETUSER", "router", "off"}), "OK");
    std::istringstream clients(p.admin({"CLIENT", "LIST"}));
    int killed = 0;
    for (std::string line; std::getline(clients, line);) {
        if (line.find(" user=router ") == std::string::npos || line.find(" sub=0 psub=0 ") == std::string::npos)
            continue;
        const std::string id = line.substr(3, line.find(' ') - 3);
        if (p.admin({"CLIENT", "KILL", "ID", id}) == "1") ++killed;
    }
    ASSERT_GE(killed, 1);
    ASSERT_TRUE(logged(*p.b, "event=cluster.redis_down", 1)) << p.b->log();
    // 3 in the stream alone (as if its live message was lost), then 4 live.
    ASSERT_EQ(p.admin({"XADD", "hs:{oven.temp}:s", "3-0", "f", "0", "d", "3"}), "3-0");
    ASSERT_EQ(p.admin({"HSET", meta_key("oven.temp"), "s", "3"}), "0");
    ASSERT_EQ(publish_numbers(*p.pub, "oven.temp", 4, 4).size(), 1u);
    ASSERT_TRUE(logged(*p.b, "event=cluster.hole_read_failed channel=oven.temp after_seq=2", 2)) << p.b->log();
    ASSERT_EQ(p.admin({"ACL", "SETUSER", "router", "on"}), "OK");

    const auto got = p.sub->wait_count(message_on("oven.temp"), 4, 10s);
    ASSERT_EQ(got.size(), 4u) << p.b->log();
    expect_numbers(got, 1, p.epoch);
    EXPECT_EQ(p.sub->count(is(event_kind::gap)), 0u);
    EXPECT_TRUE(logged(*p.b, "event=cluster.hole_filled channel=oven.temp after_seq=2 publications=1", 1))
        << p.b->log();
}

// What any client of the Redis server may publish on the channels routers
// listen to, against two real routers: other channels' publications (one,
// and in batches) at random positions, presence events, directs, client
// subscriptions and answers on each router's bus channel, broadcasts and
// membership announcements, well formed, mutated and random. A publisher
// on one router and a subscriber on the other, beside them, lose nothing
// and never reconnect, and both routers still serve, with no crash report
// (the ASan build runs it too). The pair's own channel is left alone:
// Redis is the routers' shared state, and a forged position there is what
// the routers are built to believe. fuzz_router (setup bit 7) drives the
// same messages through the core in depth; this drives them through the
// routers' Redis connections, reader and engine. A fixed seed; for a longer
// hunt: HS_WIRE_FUZZ_SECONDS=300 HS_WIRE_FUZZ_SEED=$RANDOM.
TEST(RouterCluster, MutatedMessagesOnItsRedisChannelsCostAPairAcrossRoutersNothing) {
    const auto env_or = [](const char* name, unsigned long fallback) {
        const char* v = std::getenv(name);
        return v && *v ? std::strtoul(v, nullptr, 10) : fallback;
    };
    const auto seconds = std::chrono::seconds(env_or("HS_WIRE_FUZZ_SECONDS", 3));
    const auto seed = static_cast<std::uint32_t>(env_or("HS_WIRE_FUZZ_SEED", 20261206));
    SCOPED_TRACE(::testing::Message() << "HS_WIRE_FUZZ_SEED=" << seed);

    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> presence = {
        "--channels-namespaces", R"([{"pattern":"fuzz.p.>","presence":true,"join_leave":true}])"};
    auto a = cluster_router({redis.address()}, [&] {
        std::vector<std::string> args{"--router-id", "fa"};
        args.insert(args.end(), presence.begin(), presence.end());
        return args;
    }());
    auto b = cluster_router({redis.address()}, [&] {
        std::vector<std::string> args{"--router-id", "fb"};
        args.insert(args.end(), presence.begin(), presence.end());
        return args;
    }());
    ASSERT_TRUE(a && b);
    test_client pub(frontend_config(a->ws_url(), "pair-pub"));
    test_client sub(frontend_config(b->ws_url(), "pair-sub"));
    // Clients of the channels the fuzzer publishes on, so that what parses
    // is delivered (and resumed, after a forged gap).
    test_client decoy_a(frontend_config(a->ws_url(), "decoy-a"));
    test_client decoy_b(frontend_config(b->ws_url(), "decoy-b"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready() && decoy_a.wait_ready() && decoy_b.wait_ready());
    ASSERT_TRUE(sub.wait_for(answer_to(sub.subscribe("pair.m"))));
    for (test_client* d : {&decoy_a, &decoy_b}) {
        ASSERT_TRUE(d->wait_for(answer_to(d->subscribe("fuzz.>"))));
        ASSERT_TRUE(d->wait_for(answer_to(d->run([](client_engine& e, time_ms) {
            return e.subscribe("fuzz.p.x", {.join_leave = true}).id;
        }))));
    }
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("pair.m"), 1));
    const std::size_t sub_states = sub.count(is(event_kind::state_changed));
    const std::size_t pub_states = pub.count(is(event_kind::state_changed));

    std::mt19937 rng(seed);
    const auto below = [&rng](std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng); };
    const auto text = [&](std::size_t max) {
        std::string out(below(static_cast<std::uint32_t>(max) + 1), '\0');
        for (char& c : out) c = static_cast<char>(below(256));
        return out;
    };
    const auto name = [&] {
        static const std::array<std::string, 6> names = {"fa", "fb", "other", "", "fuzz-1-0", "x y"};
        return below(4) == 0 ? text(12) : names[below(static_cast<std::uint32_t>(names.size()))];
    };
    const auto channel_name = [&] {
        static const std::array<std::string, 5> names = {"fuzz.a", "fuzz.b", "fuzz.p.x", "fuzz..bad", "fuzz.a b"};
        return names[below(static_cast<std::uint32_t>(names.size()))];
    };
    const auto message = [&]() -> std::pair<std::string, std::string> {
        const std::uint32_t epoch = 1 + below(3);
        const std::uint64_t seq = below(4) == 0 ? std::uniform_int_distribution<std::uint64_t>()(rng) : below(40);
        std::string m;
        switch (below(9)) {
            case 0: return {pubsub_channel(channel_name()), fuzzing::one_publication(static_cast<std::uint8_t>(below(4)), epoch, seq, text(300))};
            case 1: {
                const std::uint32_t count = below(6);
                m = fuzzing::batch_header(epoch, seq, count + below(2));
                for (std::uint32_t i = 0; i < count; ++i) fuzzing::batch_entry(m, static_cast<std::uint8_t>(below(2)), text(100));
                return {pubsub_channel(channel_name()), m};
            }
            case 2: {
                const std::string who = name();
                std::vector<std::uint8_t> member;
                EXPECT_FALSE(encode_body(presence_member{"fuzz-9-1", "carol", who}, member));
                m = std::string{'\x80', static_cast<char>(below(2) == 0 ? frame_kind::join : frame_kind::leave)};
                return {pubsub_channel("fuzz.p.x"), m + (below(3) == 0 ? text(40) : std::string(member.begin(), member.end()))};
            }
            case 3:
            case 4: {
                const char kind = "dsa"[below(3)];
                m.push_back(kind);
                if (kind == 'a') {
                    // An answer: by ticket (1), or for a connection's operation
                    // (0: connection, id), which the router turns into an error
                    // for that operation. Those go only to the publisher's
                    // router: the pair's publisher has no operation an error
                    // ends, and a forged one may end a subscription, such as
                    // the pair's subscriber's on the other router.
                    const bool by_ticket = below(2) == 0;
                    std::string reply(1, static_cast<char>(by_ticket ? 1 : 0));
                    fuzzing::put_le(reply, below(64), 8);
                    fuzzing::put_le(reply, below(8), 4);
                    fuzzing::bus_name(m, reply);
                    fuzzing::put_le(m, below(1000), 2);
                    return {std::string("hs:r:") + (!by_ticket || below(2) == 0 ? "fa" : "fb"), m + text(30)};
                }
                fuzzing::bus_name(m, name());
                fuzzing::bus_name(m, text(10));
                m.push_back(static_cast<char>(below(256)));
                fuzzing::bus_name(m, name());
                fuzzing::bus_name(m, kind == 's' ? channel_name() : name());
                return {std::string("hs:r:") + (below(2) == 0 ? "fa" : "fb"), m + (kind == 'd' ? text(100) : "")};
            }
            case 5:
                fuzzing::bus_name(m, name());
                fuzzing::bus_name(m, name());
                m.push_back(static_cast<char>(below(256)));
                return {"hs:b", m + text(100)};
            case 6: return {"hs:routers", name()};
            default: return {std::vector<std::string>{"hs:b", "hs:r:fa", "hs:r:fb", pubsub_channel(channel_name())}[below(4)], text(200)};
        }
    };
    const auto mutate = [&](std::string m) {
        for (std::uint32_t n = below(4); n > 0 && !m.empty(); --n) {
            switch (below(3)) {
                case 0: m[below(static_cast<std::uint32_t>(m.size()))] = static_cast<char>(below(256)); break;
                case 1: m.resize(below(static_cast<std::uint32_t>(m.size()))); break;
                default: m.insert(below(static_cast<std::uint32_t>(m.size()) + 1), text(8)); break;
            }
        }
        return m;
    };

    int published = 0;
    std::size_t sent = 0;
    const auto until = std::chrono::steady_clock::now() + seconds;
    for (int round = 0; round < 10'000 && std::chrono::steady_clock::now() < until; ++round) {
        std::vector<std::vector<std::string>> commands;
        for (int i = 0; i < 20; ++i) {
            auto [channel, payload] = message();
            commands.push_back({"PUBLISH", channel, below(2) == 0 ? mutate(std::move(payload)) : payload});
        }
        ASSERT_EQ(redis_calls(redis.port(), commands).size(), commands.size()) << "Redis answers every PUBLISH";
        sent += commands.size();
        pub.publish("pair.m", std::to_string(++published));
    }

    const auto got = sub.wait_count(message_on("pair.m"), static_cast<std::size_t>(published), 20s);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(published))
        << "the pair lost messages (" << sent << " messages published on the routers' channels)";
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].payload_text(), std::to_string(i + 1));
        EXPECT_EQ(got[i].seq, got[0].seq + i);
    }
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
    EXPECT_GT(decoy_a.count(is(event_kind::message)) + decoy_b.count(is(event_kind::message)), 0u)
        << "what parses reached the routers' cores and their clients";
    EXPECT_EQ(sub.count(is(event_kind::state_changed)), sub_states) << "the subscriber never reconnected";
    EXPECT_EQ(pub.count(is(event_kind::state_changed)), pub_states) << "the publisher never reconnected";
    // Each malformed message counted; the log holds at most a line a second
    // of each kind (HS_LOG_THROTTLED), not one per message.
    const long long bad = cluster_count(*a, "bad_messages") + cluster_count(*b, "bad_messages");
    EXPECT_GT(bad, 0);
    const auto lines = [](const std::string& log) {
        std::size_t n = 0;
        for (std::size_t at = log.find("event=cluster.bad_"); at != std::string::npos;
             at = log.find("event=cluster.bad_", at + 1))
            ++n;
        return n;
    };
    EXPECT_LT(lines(a->log()) + lines(b->log()), static_cast<std::size_t>(bad)) << bad << " bad messages";
    for (router_process* r : {a.get(), b.get()}) {
        EXPECT_EQ(http_get(r->http_address(), "/healthz").status, 200);
        const std::string log = r->log();
        EXPECT_EQ(log.find("core.crash"), std::string::npos) << log.substr(0, 4000);
        EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos);
        EXPECT_EQ(log.find("runtime error"), std::string::npos);
        EXPECT_EQ(r->stop(), 0) << "the router drains and exits cleanly";
    }
}

// A batch message of numbers `first`.. at `epoch`, as the batch script
// publishes it (publication_batch.hpp).
std::string batch_of_numbers(std::uint32_t epoch, std::uint64_t first, int count) {
    std::string out = {'\x80', '\x13'};
    const auto put_le = [&out](std::uint64_t v, int bytes) {
        for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    };
    put_le(epoch, 4);
    put_le(first, 8);
    put_le(static_cast<std::uint64_t>(count), 4);
    for (int i = 0; i < count; ++i) {
        const std::string payload = std::to_string(first + static_cast<std::uint64_t>(i));
        out.push_back('\0');
        put_le(payload.size(), 4);
        out += payload;
    }
    return out;
}

// A router delivers each seq of a channel once, however often a batch
// holding it comes (twice when Redis matches the channel by name and by a
// pattern): of a batch that overlaps what it delivered, only the seqs after
// it; of one it delivered whole, nothing.
TEST(RouterCluster, ABatchIsDeliveredFromTheFirstSeqNotYetDelivered) {
    channel_on_one_router one;
    ASSERT_TRUE(one.start("batch.again"));
    auto [redis, router, pub, sub] = one.parts();
    const auto acks = answers_to(pub, publish_numbers_in_one_message(pub, "batch.again", 1, 3));
    ASSERT_EQ(acks.size(), 3u);
    const std::uint32_t epoch = acks.front().epoch;
    ASSERT_EQ(sub.wait_count(message_on("batch.again"), 3).size(), 3u);

    const std::string channel = pubsub_channel("batch.again");
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"PUBLISH", channel, batch_of_numbers(epoch, 2, 4)})), "1");
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"PUBLISH", channel, batch_of_numbers(epoch, 2, 4)})), "1");
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"PUBLISH", channel, batch_of_numbers(epoch, 6, 1)})), "1");
    const auto got = sub.wait_count(message_on("batch.again"), 6);
    ASSERT_EQ(got.size(), 6u);
    expect_numbers(got, 1, epoch);
    EXPECT_EQ(sub.count(message_on("batch.again")), 6u);
    EXPECT_EQ(sub.run([](client_engine& e, time_ms) { return e.stats().duplicates_dropped; }), 0u)
        << "the router sent no seq twice";
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
}

// Redis stops (a clean shutdown, its data gone) while three routers run and
// nobody publishes, and comes back empty on its port. Each router retries
// with a growing delay, not in a loop, and once Redis is back takes up
// everything it had with nothing asked of its clients: a subscriber by name
// on B and one by pattern on C get A's next publication, told by its new
// epoch that the channel was lost; directs and broadcasts cross again; the
// membership is written again.
TEST(RouterCluster, RedisRestartedEmptyRoutersTakeUpTheirInterestAndSayTheChannelWasLost) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    // No heartbeat within the test: the membership lost with Redis's data is
    // written again when Redis comes back, not at the next beat.
    const std::vector<std::string> no_beat_in_the_test = {"--heartbeat-interval-ms", "600000", "--heartbeat-timeout-ms",
                                                  "1800000"};
    auto a = cluster_router({redis.address()}, no_beat_in_the_test);
    auto b = cluster_router({redis.address()}, no_beat_in_the_test);
    auto c = cluster_router({redis.address()}, no_beat_in_the_test);
    ASSERT_TRUE(a->ready() && b->ready() && c->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client by_name(frontend_config(b->ws_url(), "by-name"));
    test_client by_pattern(frontend_config(c->ws_url(), "by-pattern"));
    ASSERT_TRUE(pub.wait_ready() && by_name.wait_ready() && by_pattern.wait_ready());
    ASSERT_TRUE(by_name.wait_for(is(event_kind::ack, by_name.subscribe("boiler.temp"))));
    ASSERT_TRUE(by_pattern.wait_for(is(event_kind::ack, by_pattern.subscribe("boiler.*"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("boiler.temp"), 1));
    ASSERT_TRUE(eventually([&] { return pattern_subscriptions(redis.port()) == 1; }, 5s));
    const auto before = publish_numbers(pub, "boiler.temp", 1, 3);
    ASSERT_EQ(before.size(), 3u);
    const std::uint32_t old_epoch = before.front().epoch;
    for (test_client* t : {&by_name, &by_pattern})
        ASSERT_EQ(t->wait_count(message_on("boiler.temp"), 3).size(), 3u);

    const auto stopped_at = std::chrono::steady_clock::now();
    redis.stop();
    for (const auto* r : {a.get(), b.get(), c.get()}) {
        ASSERT_TRUE(logged(*r, "event=cluster.redis_down", 1));
        // The first try fails as Redis goes; the next ones wait 50..100 ms,
        // then 100..200 ms: three failures take at least 150 ms.
        ASSERT_TRUE(logged(*r, "event=redis.node_down", 3));
    }
    EXPECT_GE(std::chrono::steady_clock::now() - stopped_at, 150ms) << "the retries back off";
    for (const auto* r : {a.get(), b.get(), c.get()})
        EXPECT_LT(occurrences(r->log(), "event=redis.node_down"), 20u) << "no retry loop";
    EXPECT_EQ(http_get(b->http_address(), "/healthz").status, 503);

    ASSERT_TRUE(redis.restart());
    // (The routers write their membership as soon as they are back, so not
    // DBSIZE: the channel's keys, which only a publish writes.)
    EXPECT_EQ(redis_call(redis.port(), {"EXISTS", meta_key("boiler.temp"), "hs:{boiler.temp}:s"})->integer, 0)
        << "Redis came back empty";
    for (const auto* r : {a.get(), b.get(), c.get()}) ASSERT_TRUE(logged(*r, "event=cluster.redis_up", 2, 15s));
    EXPECT_EQ(numsub(redis.port(), pubsub_channel("boiler.temp")), 1) << "B subscribed again by itself";
    EXPECT_EQ(pattern_subscriptions(redis.port()), 1) << "so did C";
    EXPECT_EQ(numsub(redis.port(), "hs:b"), 3);

    const auto after = publish_numbers(pub, "boiler.temp", 4, 4);
    ASSERT_EQ(after.size(), 1u);
    const std::uint32_t new_epoch = after.front().epoch;
    EXPECT_NE(new_epoch, old_epoch);
    EXPECT_EQ(after.front().seq, 1u) << "the channel starts again";
    for (test_client* t : {&by_name, &by_pattern}) {
        const auto got = t->wait_count(message_on("boiler.temp"), 4);
        ASSERT_EQ(got.size(), 4u);
        EXPECT_EQ(got[3].payload_text(), "4");
        EXPECT_EQ(got[3].epoch, new_epoch);
        const auto changed = t->wait_for(is(event_kind::epoch_changed));
        ASSERT_TRUE(changed) << "the subscriber is told the channel was lost";
        EXPECT_EQ(changed->name, "boiler.temp");
        EXPECT_EQ(changed->epoch, new_epoch);
        EXPECT_EQ(t->count(is(event_kind::epoch_changed)), 1u);
        EXPECT_EQ(t->count(is(event_kind::gap)), 0u);
    }

    expect_answer(pub, send_direct(pub, by_name.session_id(), "after the restart"), errc{}, "a direct to B");
    EXPECT_TRUE(by_name.wait_for(direct_of("after the restart")));
    expect_answer(by_pattern, send_broadcast(by_pattern, "everyone again"), errc{}, "a broadcast from C");
    EXPECT_TRUE(pub.wait_for(broadcast_of("everyone again")));
    EXPECT_TRUE(by_name.wait_for(broadcast_of("everyone again")));
    EXPECT_TRUE(eventually([&] { return reply_text(redis_call(redis.port(), {"HLEN", "hs:routers"})) == "3"; }, 5s))
        << "the membership, lost with Redis's data, is written again";
    EXPECT_TRUE(eventually([&] { return routers_known(*a) == 3; }, 5s));
    for (const auto* r : {a.get(), b.get(), c.get()}) {
        EXPECT_EQ(http_get(r->http_address(), "/healthz").status, 200);
        const std::string metrics = http_get(r->admin_address(), "/metrics").body;
        const std::string series = "\nhyperstreams_cluster_redis_reconnects_total ";
        const std::size_t at = metrics.find(series);
        ASSERT_NE(at, std::string::npos) << metrics;
        EXPECT_GE(std::stod(metrics.substr(at + series.size())), 1.0) << metrics;
    }
}

// PROTOCOL.md (212): a publish refused with cluster_unavailable did not
// happen. Redis freezes (SIGSTOP) with a publish on the wire: the router
// gives up on the answer and refuses the publish; when Redis thaws it runs
// what it had read. A refusal that says "not made" must then be true: the
// publication reaches no subscriber and takes no seq. (An error that says
// the outcome is unknown would be honest too.)
TEST(RouterCluster, APublishRefusedWithClusterUnavailableReachesNobody) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("valve.state"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("valve.state"), 1));
    ASSERT_EQ(publish_numbers(pub, "valve.state", 1, 1).size(), 1u);
    ASSERT_TRUE(sub.wait_for(message_on("valve.state")));

    redis.signal(SIGSTOP);
    const std::uint32_t frozen = pub.publish("valve.state", "refused", true);
    const auto answer = pub.wait_for(answer_to(frozen), 10s);
    redis.signal(SIGCONT);
    ASSERT_TRUE(answer);
    ASSERT_EQ(answer->kind, event_kind::error) << describe(*answer);
    const bool said_not_made = answer->error() == errc::cluster_unavailable;

    ASSERT_TRUE(logged(*a, "event=cluster.redis_up", 2, 15s));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("valve.state"), 1));
    const auto after = publish_numbers(pub, "valve.state", 2, 2);
    ASSERT_EQ(after.size(), 1u);
    // The next publication, and whatever came before it on the one channel.
    ASSERT_TRUE(sub.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::message && e.payload_text() == "2";
    }));
    if (!said_not_made) return;
    for (const auto& m : sub.events(message_on("valve.state")))
        EXPECT_NE(m.payload_text(), "refused") << "the publisher was told it was not made: " << describe(m);
    EXPECT_EQ(after.front().seq, 2u) << "the refused publication took a seq";
}

// Redis at its memory limit (maxmemory, the default noeviction policy)
// refuses the writes that would grow it. A publish is refused by name,
// never acked; the routers' heartbeats still go in (they overwrite what
// is there), so no router takes another for gone and directs still cross;
// and publishes are acked again once Redis has room.
TEST(RouterCluster, ARedisOutOfMemoryRefusesPublishesByNameAndKeepsTheMembership) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> rooms = {"--channels-namespaces", R"([{"pattern":"room.>","presence":true}])"};
    auto a = cluster_router({redis.address()}, quick_heartbeats({"--router-id", "ra"}));
    auto b = cluster_router({redis.address()}, quick_heartbeats({"--router-id", "rb", rooms[0], rooms[1]}));
    ASSERT_TRUE(a->ready() && b->ready());
    test_client a1(frontend_config(a->ws_url(), "a1"));
    test_client b1(frontend_config(b->ws_url(), "b1"));
    ASSERT_TRUE(a1.wait_ready() && b1.wait_ready());
    ASSERT_TRUE(eventually([&] { return routers_known(*a) == 2 && routers_known(*b) == 2; }, 10s));
    ASSERT_TRUE(b1.wait_for(is(event_kind::ack, b1.subscribe("valve.state"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("valve.state"), 1));
    const auto first = publish_numbers(a1, "valve.state", 1, 1);
    ASSERT_EQ(first.size(), 1u);

    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "SET", "maxmemory", "1"})), "OK");
    const std::uint32_t refused = a1.publish("valve.state", "refused", true);
    const auto answer = a1.wait_for(answer_to(refused), 10s);
    ASSERT_TRUE(answer);
    ASSERT_EQ(answer->kind, event_kind::error) << describe(*answer);
    EXPECT_EQ(answer->error(), errc::cluster_unavailable) << describe(*answer);
    EXPECT_NE(answer->text.find("OOM"), std::string::npos) << "Redis's reason given: " << describe(*answer);
    ASSERT_TRUE(eventually([&] { return cluster_count(*a, "publish_failures") == 1; }, 5s));

    // Each router's entry carries its expiry (ms): both are written again
    // past the heartbeat timeout (2 s) after Redis filled up, which they
    // would not be if Redis refused the beats.
    const auto expiry = [&](const std::string& id) {
        return std::atoll(reply_text(redis_call(redis.port(), {"HGET", "hs:routers", id})).c_str());
    };
    const long long full_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch()).count();
    ASSERT_TRUE(eventually([&] { return expiry("ra") > full_at + 3000 && expiry("rb") > full_at + 3000; }, 10s))
        << "the heartbeats go in while Redis is full\n" << a->log();
    EXPECT_EQ(routers_known(*a), 2u) << a->log();
    EXPECT_EQ(routers_known(*b), 2u) << b->log();
    EXPECT_EQ(cluster_count(*a, "heartbeat_failures"), 0);
    EXPECT_TRUE(metric_is(*b, "hyperstreams_cluster_heartbeat_failures_total", 0));
    // A presence join is a member more: refused, and counted.
    ASSERT_TRUE(b1.wait_for(is(event_kind::ack, b1.subscribe("room.1"))));
    ASSERT_TRUE(eventually([&] { return cluster_count(*b, "presence_write_failures") == 1; }, 5s)) << b->log();
    EXPECT_TRUE(metric_is(*b, "hyperstreams_cluster_presence_write_failures_total", 1));
    EXPECT_TRUE(logged(*b, "event=cluster.presence_write_failed channel=room.1", 1)) << b->log();
    expect_answer(a1, send_direct(a1, b1.session_id(), "a1 to b1"), errc{}, "a direct to B's client");
    ASSERT_TRUE(b1.wait_for(direct_of("a1 to b1")));
    EXPECT_TRUE(logged(*a, "event=cluster.publish_failed", 1)) << a->log();
    // A resume reads the history: served.
    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    const std::uint32_t resume = subscribe_since(late, "valve.state", channel_position{first.front().epoch, 0});
    const auto resumed = late.wait_for(answer_to(resume));
    ASSERT_TRUE(resumed && resumed->kind == event_kind::ack) << (resumed ? describe(*resumed) : "no answer");
    const auto replay = late.wait_for(message_on("valve.state"));
    ASSERT_TRUE(replay);
    EXPECT_EQ(replay->payload_text(), "1");

    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CONFIG", "SET", "maxmemory", "0"})), "OK");
    const auto after = publish_numbers(a1, "valve.state", 2, 2);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after.front().seq, 2u) << "the refused publication took no seq";
    ASSERT_TRUE(b1.wait_for([](const recorded_event& e) {
        return e.kind == event_kind::message && e.payload_text() == "2";
    }));
    for (const auto& m : b1.events(message_on("valve.state"))) EXPECT_NE(m.payload_text(), "refused");
}

// A router that drains with no other router to ask exits within
// milliseconds; it is out of the membership by then, not listed alive to
// the others until its heartbeat expires. A race (the removal was sent, or
// not, before the engine stopped), so ten routers in turn: before the fix
// one in twenty stayed listed.
TEST(RouterCluster, ARouterThatDrainsAloneIsOutOfTheMembershipWhenItExits) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    for (int i = 0; i < 10; ++i) {
        const std::string id = "lone" + std::to_string(i);
        auto r = cluster_router({redis.address()}, {"--router-id", id});
        ASSERT_TRUE(r->ready());
        ASSERT_TRUE(eventually([&] { return !reply_text(redis_call(redis.port(), {"HGET", "hs:routers", id})).empty(); },
                               5s));
        ASSERT_EQ(r->signal_and_wait(SIGTERM, 10s), 0) << r->log();
        EXPECT_EQ(reply_text(redis_call(redis.port(), {"HGET", "hs:routers", id})), "") << r->log();
    }
}

// Every Redis connection of a router says whose it is (CLIENT SETNAME
// PREFIX:ROUTER-ID:ROLE), so that CLIENT LIST, SLOWLOG and Redis's log tell
// an operator which router and what for. A Redis user that may not name
// its connections still serves its router.
TEST(RouterCluster, EveryRedisConnectionOfARouterIsNamedForItsRouterAndRole) {
    master_and_replica redis;
    ASSERT_TRUE(redis.ok);
    const std::string address = redis.master.address();
    auto a = cluster_router({address}, {"--router-id", "ra", "--cluster-redis-wait-replicas", "1"});
    auto b = cluster_router({address}, {"--router-id", "rb"});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    ASSERT_EQ(publish_numbers(pub, "named.line", 1, 1).size(), 1u) << "acked once the replica has it: a WAIT";
    const auto names = [&] {
        std::multiset<std::string> out;
        std::istringstream clients(reply_text(redis_call(redis.master.port(), {"CLIENT", "LIST"})));
        for (std::string field; clients >> field;)
            if (field.rfind("name=hs:", 0) == 0) out.insert(field.substr(5));
        return out;
    };
    const std::multiset<std::string> expected = {"hs:ra:commands", "hs:ra:subscriber", "hs:ra:waits",
                                                 "hs:rb:commands", "hs:rb:subscriber"};
    ASSERT_TRUE(eventually([&] { return names() == expected; }, 5s)) << reply_text(
        redis_call(redis.master.port(), {"CLIENT", "LIST"}));

    ASSERT_EQ(reply_text(redis_call(redis.master.port(), {"ACL", "SETUSER", "unnamed", "on", ">unnamed-pass", "~*",
                                                          "&*", "+@all", "-client|setname"})),
              "OK");
    auto c = cluster_router({address}, {"--router-id", "rc", "--cluster-redis-user", "unnamed",
                                        "--cluster-redis-password", "unnamed-pass"});
    ASSERT_TRUE(c->ready());
    test_client on_c(frontend_config(c->ws_url(), "on-c"));
    ASSERT_TRUE(on_c.wait_ready());
    ASSERT_TRUE(on_c.wait_for(is(event_kind::ack, on_c.subscribe("named.line"))));
    ASSERT_TRUE(wait_numsub(redis.master.port(), pubsub_channel("named.line"), 1));
    ASSERT_EQ(publish_numbers(on_c, "named.line", 2, 2).size(), 1u) << c->log();
    ASSERT_TRUE(on_c.wait_for(message_on("named.line")));
    EXPECT_EQ(names(), expected) << "rc's connections unnamed";
    EXPECT_EQ(http_get(c->http_address(), "/healthz").status, 200);
}

// A router dies (SIGKILL) under its subscriber, while another router's
// publisher goes on. The subscriber comes back on the other router from the
// last position it saw and gets each missed publication once, in order,
// then the live ones.
TEST(RouterCluster, ASubscriberOfAKilledRouterResumesOnAnother) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(b->ws_url(), "pub"));
    auto sub = std::make_unique<test_client>(frontend_config(a->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub->wait_ready());
    ASSERT_TRUE(sub->wait_for(is(event_kind::ack, sub->subscribe("press.force"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("press.force"), 1));
    const auto acks = publish_numbers(pub, "press.force", 1, 5);
    ASSERT_EQ(acks.size(), 5u);
    const auto seen = sub->wait_count(message_on("press.force"), 5);
    ASSERT_EQ(seen.size(), 5u);
    const channel_position last{seen.back().epoch, seen.back().seq};

    ASSERT_EQ(a->signal_and_wait(SIGKILL, 5s), 128 + SIGKILL);
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("press.force"), 0)) << "Redis saw A go";
    ASSERT_TRUE(sub->wait_for([](const recorded_event& e) {
        return e.kind == event_kind::state_changed && e.state == client_state::backoff;
    }));
    ASSERT_EQ(publish_numbers(pub, "press.force", 6, 9).size(), 4u);
    sub.reset();

    test_client again(frontend_config(b->ws_url(), "sub-again"));
    ASSERT_TRUE(again.wait_ready());
    ASSERT_TRUE(again.wait_for(is(event_kind::ack, subscribe_since(again, "press.force", last))));
    const auto missed = again.wait_count(message_on("press.force"), 4);
    ASSERT_EQ(missed.size(), 4u);
    expect_numbers(missed, 6, last.epoch);
    for (const auto& m : missed) EXPECT_TRUE(replayed(m)) << describe(m);
    ASSERT_EQ(publish_numbers(pub, "press.force", 10, 11).size(), 2u);
    const auto got = again.wait_count(message_on("press.force"), 6);
    ASSERT_EQ(got.size(), 6u);
    expect_numbers(got, 6, last.epoch);
    EXPECT_EQ(again.count(is(event_kind::gap)), 0u);
    EXPECT_EQ(again.count(is(event_kind::epoch_changed)), 0u);
    EXPECT_EQ(again.run([](client_engine& e, time_ms) { return e.stats().duplicates_dropped; }), 0u)
        << "each publication came once";
}

// `sub` got 1..3 on `channel` before its router drained; 4..6 published now
// reach it where the drain sent it: 1..6 in all, in order, once each, in
// `epoch`, with no gap.
void expect_resumed_after_the_drain(test_client& pub, test_client& sub, const std::string& channel,
                                    std::uint32_t epoch) {
    ASSERT_EQ(publish_numbers(pub, channel, 4, 6).size(), 3u);
    const auto got = sub.wait_count(message_on(channel), 6, 15s);
    ASSERT_EQ(got.size(), 6u);
    expect_numbers(got, 1, epoch);
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
    EXPECT_EQ(sub.count(is(event_kind::epoch_changed)), 0u);
}

// A router of the cluster that drains (SIGTERM) sends its clients to another
// live router it learned from the membership; the client follows the
// redirect, resumes its subscription there, and gets every publication once,
// in order, with no gap.
TEST(RouterCluster, ADrainedRouterSendsItsClientsToAnotherWithNothingLost) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> quick_beats = quick_heartbeats();
    auto a = cluster_router({redis.address()}, quick_beats);
    auto b = cluster_router({redis.address()}, quick_beats);
    ASSERT_TRUE(a->ready() && b->ready());
    ASSERT_TRUE(logged(*a, "event=cluster.routers alive=2", 1)) << "A learns of B";
    test_client pub(frontend_config(b->ws_url(), "pub"));
    test_client sub(frontend_config(a->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("oven.temp"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("oven.temp"), 1));
    const auto first = publish_numbers(pub, "oven.temp", 1, 3);
    ASSERT_EQ(first.size(), 3u);
    ASSERT_EQ(sub.wait_count(message_on("oven.temp"), 3).size(), 3u);

    ASSERT_EQ(a->signal_and_wait(SIGTERM, 10s), 0) << a->log();
    EXPECT_TRUE(logged(*a, "event=cluster.drain_to", 1)) << a->log();
    expect_resumed_after_the_drain(pub, sub, "oven.temp", first.front().epoch);
    EXPECT_TRUE(logged(*b, "name=sub", 1)) << "the subscriber said hello to B";
}

// Routers ra, rb and rc; rb is killed (SIGKILL), then ra drains (SIGTERM)
// while rb is still in the membership (its heartbeat has 15 s to expire).
// ra would send its clients to rb, the next by id: it asks first, finds rb
// gone and sends them to rc, where the subscriber resumes with nothing
// lost. `subscribers` counts a channel's subscribers in Redis.
void expect_drain_skips_a_killed_router(const std::vector<std::string>& redis,
                                        const std::function<long long(const std::string&)>& subscribers) {
    auto a = cluster_router(redis, {"--router-id", "ra"});
    auto b = cluster_router(redis, {"--router-id", "rb"});
    auto c = cluster_router(redis, {"--router-id", "rc"});
    ASSERT_TRUE(a->ready() && b->ready() && c->ready());
    ASSERT_TRUE(eventually([&] { return routers_known(*a) == 3; }, 10s)) << "A learns of B and C";
    test_client pub(frontend_config(c->ws_url(), "pub"));
    test_client sub(frontend_config(a->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("line.count"))));
    ASSERT_TRUE(eventually([&] { return subscribers(pubsub_channel("line.count")) == 1; }, 5s));
    const auto first = publish_numbers(pub, "line.count", 1, 3);
    ASSERT_EQ(first.size(), 3u);
    ASSERT_EQ(sub.wait_count(message_on("line.count"), 3).size(), 3u);

    ASSERT_EQ(b->signal_and_wait(SIGKILL, 5s), 128 + SIGKILL);
    ASSERT_TRUE(eventually([&] { return subscribers("hs:r:rb") == 0; }, 5s)) << "Redis saw B go";
    ASSERT_EQ(routers_known(*a), 3u) << "the case under test: B is still in the membership A reads";
    ASSERT_EQ(a->signal_and_wait(SIGTERM, 15s), 0) << a->log();
    EXPECT_TRUE(logged(*a, "event=cluster.drain_skipped router=rb", 1)) << a->log();
    EXPECT_TRUE(logged(*a, "event=cluster.drain_to router=rc", 1)) << a->log();
    expect_resumed_after_the_drain(pub, sub, "line.count", first.front().epoch);
    EXPECT_TRUE(logged(*c, "name=sub", 1)) << "the subscriber said hello to C";
}

TEST(RouterCluster, ADrainSendsItsClientsPastAKilledRouterToALiveOne) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    expect_drain_skips_a_killed_router({redis.address()},
                                       [&](const std::string& channel) { return numsub(redis.port(), channel); });
}

// Redis is gone when a router drains: nothing can say whether the others are
// there, and the membership's word stands: the clients are sent to the next
// router by id, which serves them as a router on its own would.
TEST(RouterCluster, ADrainWhileRedisIsDownSendsItsClientsWhereTheMembershipSaid) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()}, {"--router-id", "ra"});
    auto b = cluster_router({redis.address()}, {"--router-id", "rb"});
    ASSERT_TRUE(a->ready() && b->ready());
    ASSERT_TRUE(logged(*a, "event=cluster.routers alive=2", 1)) << "A learns of B";
    test_client sub(frontend_config(a->ws_url(), "sub"));
    ASSERT_TRUE(sub.wait_ready());
    redis.kill();
    ASSERT_TRUE(logged(*a, "event=cluster.redis_down", 1)) << a->log();
    ASSERT_EQ(a->signal_and_wait(SIGTERM, 15s), 0) << a->log();
    EXPECT_EQ(a->log().find("event=cluster.drain_skipped"), std::string::npos) << a->log();
    EXPECT_TRUE(logged(*a, "event=cluster.drain_to router=rb", 1)) << a->log();
    EXPECT_TRUE(logged(*b, "name=sub", 1)) << "the subscriber said hello to B";
}

// Two routers of one cluster: 1..3 published on `a` reach a subscriber on
// `b`, and a client on `a` resumes from 1 and gets 2 and 3 (the stream).
// `subscribers(channel)`: the routers' Redis subscriptions to a pub/sub
// channel.
void publish_and_resume_across(router_process& a, router_process& b,
                               const std::function<long long(const std::string&)>& subscribers) {
    test_client pub(frontend_config(a.ws_url(), "pub"));
    test_client sub(frontend_config(b.ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("tank.level"))));
    ASSERT_TRUE(eventually([&] { return subscribers(pubsub_channel("tank.level")) == 1; }, 5s));
    const auto acks = publish_numbers(pub, "tank.level", 1, 3);
    ASSERT_EQ(acks.size(), 3u);
    const auto got = sub.wait_count(message_on("tank.level"), 3);
    ASSERT_EQ(got.size(), 3u);
    expect_numbers(got, 1, acks.front().epoch);
    test_client late(frontend_config(a.ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(
        is(event_kind::ack, subscribe_since(late, "tank.level", channel_position{acks.front().epoch, 1}))));
    const auto replayed_ones = late.wait_count(message_on("tank.level"), 2);
    ASSERT_EQ(replayed_ones.size(), 2u);
    expect_numbers(replayed_ones, 2, acks.front().epoch);
}

// Redis that wants credentials (an ACL user, and a password for the default
// user). Routers given the user and its password, from a file, are one
// cluster as without: a publication crosses, and a subscriber resumes on the
// other router from the history. A router given a wrong password starts,
// and its /healthz says why it is not ready.
TEST(RouterCluster, RoutersAuthenticateToRedisAndAWrongPasswordIsNamed) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    ASSERT_TRUE(require_credentials(redis.port()));
    const auto subscribers = [&](const std::string& channel) {
        const auto r = redis_calls(redis.port(), {{"AUTH", "default-pass"}, {"PUBSUB", "NUMSUB", channel}});
        return r.size() == 2 && r[1] && r[1]->type == REDIS_REPLY_ARRAY && r[1]->elements == 2
                   ? r[1]->element[1]->integer
                   : -1;
    };
    const std::vector<std::string> credentials = {"--cluster-redis-user", "router", "--cluster-redis-password-file",
                                                  write_temp_file("redis-password", "router-pass\n")};
    auto a = cluster_router({redis.address()}, credentials);
    auto b = cluster_router({redis.address()}, credentials);
    ASSERT_TRUE(a->ready() && b->ready());
    publish_and_resume_across(*a, *b, subscribers);

    router_process wrong({"--cluster-redis", "redis://" + redis.address(), "--cluster-redis-password", "wrong-pass"});
    ASSERT_TRUE(wrong.ready());
    EXPECT_TRUE(eventually([&] {
        const http_result h = http_get(wrong.http_address(), "/healthz");
        return h.status == 503 && h.body.find("WRONGPASS") != std::string::npos;
    }, 10s)) << http_get(wrong.http_address(), "/healthz").body;
    EXPECT_TRUE(logged(wrong, "AUTH refused: WRONGPASS", 1)) << wrong.log();
}

// TLS to Redis (rediss://), with the routers' certificate (Redis asks for
// one by default) and a password: two routers publish across and resume
// across, every connection of theirs on Redis's TLS port; a router that
// does not trust Redis's certificate starts, and its /healthz answers 503
// saying why.
TEST(RouterCluster, RoutersReachRedisOverTlsAndAnUntrustedCertificateIsNamed) {
    const certificate cert = make_self_signed_certificate();
    const std::string cert_file = write_temp_file("redis-tls.crt", cert.cert_pem);
    const std::string key_file = write_temp_file("redis-tls.key", cert.key_pem);
    redis_server redis(false, redis_tls_setup{cert_file, key_file, cert_file, true});
    ASSERT_TRUE(redis.ready());
    ASSERT_TRUE(require_credentials(redis.port()));
    const auto subscribers = [&](const std::string& channel) {
        const auto r = redis_calls(redis.port(), {{"AUTH", "default-pass"}, {"PUBSUB", "NUMSUB", channel}});
        return r.size() == 2 && r[1] && r[1]->type == REDIS_REPLY_ARRAY && r[1]->elements == 2
                   ? r[1]->element[1]->integer
                   : -1;
    };
    // The routers' clients (user "router") by the port they reached.
    const auto router_clients_on = [&](std::uint16_t port) {
        const auto r = redis_calls(redis.port(), {{"AUTH", "default-pass"}, {"CLIENT", "LIST"}});
        std::istringstream lines(r.size() == 2 ? reply_text(r[1]) : std::string());
        const std::string laddr = "laddr=127.0.0.1:" + std::to_string(port) + " ";
        long long n = 0;
        for (std::string line; std::getline(lines, line);)
            if (line.find(laddr) != std::string::npos && line.find(" user=router ") != std::string::npos) ++n;
        return n;
    };
    const std::vector<std::string> tls_flags = {
        "--cluster-redis-tls-ca-file", cert_file, "--cluster-redis-tls-cert-file", cert_file,
        "--cluster-redis-tls-key-file", key_file, "--cluster-redis-user", "router",
        "--cluster-redis-password-file", write_temp_file("redis-tls-password", "router-pass\n")};
    auto a = cluster_router({redis.tls_address()}, tls_flags);
    auto b = cluster_router({redis.tls_address()}, tls_flags);
    ASSERT_TRUE(a->ready() && b->ready());
    publish_and_resume_across(*a, *b, subscribers);
    // Each router: a command connection and a subscriber, over TLS.
    EXPECT_EQ(router_clients_on(redis.tls_port()), 4);
    EXPECT_EQ(router_clients_on(redis.port()), 0);

    const certificate other = make_self_signed_certificate();
    router_process untrusting({"--cluster-redis", redis.tls_address(), "--cluster-redis-tls-ca-file",
                               write_temp_file("other-ca.crt", other.cert_pem), "--cluster-redis-tls-cert-file",
                               cert_file, "--cluster-redis-tls-key-file", key_file});
    ASSERT_TRUE(untrusting.ready());
    EXPECT_TRUE(eventually([&] {
        const http_result h = http_get(untrusting.http_address(), "/healthz");
        return h.status == 503 && h.body.find("certificate is not trusted") != std::string::npos;
    }, 10s)) << http_get(untrusting.http_address(), "/healthz").body;
    EXPECT_TRUE(logged(untrusting, "TLS: the certificate is not trusted: self-signed certificate", 1))
        << untrusting.log();
}

// Redis restarted from a snapshot older than the last publications (it
// saved after 3, published 4 and 5, then died): the channel's keys say 3,
// and the next publication must not take seq 4 again in the same epoch,
// which the subscriber, who had 4 and 5, would drop as a duplicate. The
// channel starts a new epoch instead: the publisher's ack has it, the
// subscriber is told the epoch changed and gets the message. (A replica
// promoted without the last writes is the same case: rolled_back_lua in
// redis_log.cpp.)
TEST(RouterCluster, RedisRestartedFromAnOlderSnapshotStartsANewEpochRatherThanGiveSeqsAgain) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()}, quick_heartbeats());
    auto b = cluster_router({redis.address()}, quick_heartbeats());
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("tank.level"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("tank.level"), 1));
    const auto first = publish_numbers(pub, "tank.level", 1, 3);
    ASSERT_EQ(first.size(), 3u);
    const std::uint32_t epoch = first.front().epoch;
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"SAVE"})), "OK");
    ASSERT_EQ(publish_numbers(pub, "tank.level", 4, 5).size(), 2u);
    ASSERT_EQ(sub.wait_count(message_on("tank.level"), 5).size(), 5u);

    ASSERT_TRUE(redis.restart());
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"HGET", meta_key("tank.level"), "s"})), "3")
        << "the snapshot's position";
    ASSERT_TRUE(logged(*a, "event=cluster.redis_up", 2, 15s));
    ASSERT_TRUE(logged(*b, "event=cluster.redis_up", 2, 15s));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("tank.level"), 1));
    const auto next = publish_numbers(pub, "tank.level", 6, 6);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_NE(next.front().epoch, epoch);
    EXPECT_EQ(next.front().seq, 1u);
    ASSERT_TRUE(sub.wait_for(is(event_kind::epoch_changed), 10s));
    const auto got = sub.wait_count(message_on("tank.level"), 6);
    ASSERT_EQ(got.size(), 6u);
    EXPECT_EQ(got.back().payload_text(), "6");
    EXPECT_EQ(got.back().epoch, next.front().epoch);
}

// cluster.redis_wait_replicas 1: a publish is acked once the master's
// replica has it (its stream there holds it when the ack comes); with the
// replica frozen, the publish (made, and delivered) fails with
// cluster_outcome_unknown after the timeout, one alone and a batch alike.
TEST(RouterCluster, WithWaitReplicasAPublishIsAckedOnceAReplicaHasIt) {
    master_and_replica servers;
    ASSERT_TRUE(servers.ok);
    redis_server& redis = servers.master;
    redis_server& replica = servers.replica;
    auto a = cluster_router({redis.address()},
                            {"--cluster-redis-wait-replicas", "1", "--cluster-redis-wait-timeout-ms", "300"});
    auto b = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("press.force"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("press.force"), 1));
    const std::string stream = "hs:{press.force}:s";

    const auto acked = publish_numbers(pub, "press.force", 1, 1);
    ASSERT_EQ(acked.size(), 1u);
    EXPECT_EQ(reply_text(redis_call(replica.port(), {"XLEN", stream})), "1") << "on the replica when acked";

    replica.signal(SIGSTOP);
    const std::uint32_t alone = pub.publish("press.force", "2", true);
    const auto refused = pub.wait_for(answer_to(alone), 10s);
    const auto batch_answers = answers_to(pub, publish_numbers_in_one_message(pub, "press.force", 3, 5));
    replica.signal(SIGCONT);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->error(), errc::cluster_outcome_unknown) << describe(*refused);
    EXPECT_NE(refused->text.find("0 of 1 replicas acknowledged it within 300 ms"), std::string::npos)
        << describe(*refused);
    ASSERT_EQ(batch_answers.size(), 3u);
    for (const auto& answer : batch_answers)
        EXPECT_EQ(answer.error(), errc::cluster_outcome_unknown) << describe(answer);
    EXPECT_EQ(cluster_count(*a, "unreplicated"), 4) << "the publish alone and the batch's three";
    EXPECT_TRUE(metric_is(*a, "hyperstreams_cluster_unreplicated_total", 4));
    EXPECT_EQ(cluster_count(*a, "publish_failures"), 0) << "made, not failed";
    // Published all the same: the subscriber has them, and the next publish
    // follows them.
    const auto got = sub.wait_count(message_on("press.force"), 5);
    ASSERT_EQ(got.size(), 5u);
    expect_numbers(got, 1, acked.front().epoch);
    ASSERT_TRUE(eventually([&] { return replication_field(replica.port(), "master_link_status") == "up"; }, 10s));
    const auto after = publish_numbers(pub, "press.force", 6, 6);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after.front().seq, 6u);
    EXPECT_EQ(reply_text(redis_call(replica.port(), {"XLEN", stream})), "6");
}

// The two rules of rolled_back_lua, one at a time, on a master with a
// replica (its replication offset grows): each write keeps the master's
// replication ID and offset; the next write finds them behind it and goes
// on. Keys that claim an offset this server never reached (its last write
// lost), or another lineage, make the channel start a new epoch.
TEST(RouterCluster, APositionIsKeptWithTheReplicationOffsetAndARollbackIsANewEpoch) {
    master_and_replica servers;
    ASSERT_TRUE(servers.ok);
    redis_server& redis = servers.master;
    redis_server& replica = servers.replica;
    auto a = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    const std::string meta = meta_key("tank.level");
    const auto one = publish_numbers(pub, "tank.level", 1, 1);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"HGET", meta, "r"})),
              replication_field(redis.port(), "master_replid"));
    const long long kept = std::stoll(reply_text(redis_call(redis.port(), {"HGET", meta, "o"})));
    EXPECT_GT(kept, 0) << "a master with a replica has an offset";
    const auto two = publish_numbers(pub, "tank.level", 2, 2);
    ASSERT_EQ(two.size(), 1u);
    EXPECT_EQ(two.front().epoch, one.front().epoch);
    EXPECT_EQ(two.front().seq, 2u);
    EXPECT_GT(std::stoll(reply_text(redis_call(redis.port(), {"HGET", meta, "o"}))), kept);
    // Replicated as written: a replica promoted now would go on too.
    ASSERT_TRUE(eventually([&] { return reply_text(redis_call(replica.port(), {"HGET", meta, "s"})) == "2"; }, 5s));

    ASSERT_EQ(reply_text(redis_call(redis.port(), {"HSET", meta, "o", "1000000000000000"})), "0");
    const auto after_loss = publish_numbers(pub, "tank.level", 3, 3);
    ASSERT_EQ(after_loss.size(), 1u);
    EXPECT_NE(after_loss.front().epoch, two.front().epoch);
    EXPECT_EQ(after_loss.front().seq, 1u);

    ASSERT_EQ(reply_text(redis_call(redis.port(), {"HSET", meta, "r", "0123456789abcdef0123456789abcdef01234567"})),
              "0");
    const auto elsewhere = publish_numbers(pub, "tank.level", 4, 4);
    ASSERT_EQ(elsewhere.size(), 1u);
    EXPECT_NE(elsewhere.front().epoch, after_loss.front().epoch);
    EXPECT_EQ(elsewhere.front().seq, 1u);
    // A read finds the same: the keys go, and the channel is none.
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"HSET", meta, "o", "1000000000000000"})), "0");
    test_client late(frontend_config(a->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(
        is(event_kind::ack, subscribe_since(late, "tank.level", channel_position{elsewhere.front().epoch, 0}))));
    EXPECT_EQ(reply_text(redis_call(redis.port(), {"EXISTS", meta})), "0");
}

// What the admin endpoints say of the cluster: /status names the routers
// alive, /metrics has the cluster's series, /healthz answers 503 with why
// while Redis is unreachable and 200 once it is back.
// The time of a log line, in ms since midnight (ts=...THH:MM:SS.mmmZ).
long long log_time_ms(const std::string& line) {
    const std::size_t t = line.find('T', line.find("ts="));
    if (t == std::string::npos || t + 13 > line.size()) return -1;
    return ((std::stoll(line.substr(t + 1, 2)) * 60 + std::stoll(line.substr(t + 4, 2))) * 60 +
            std::stoll(line.substr(t + 7, 2))) * 1000 + std::stoll(line.substr(t + 10, 3));
}

// The first line of `log` holding `needle` after the `n`-th (from 1) holding
// `after`; empty when none.
std::string line_after(const std::string& log, const std::string& after, std::size_t n, const std::string& needle) {
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        if (n == 0 && line.find(needle) != std::string::npos) return line;
        if (n != 0 && line.find(after) != std::string::npos) --n;
    }
    return {};
}

// While Redis is down nobody can beat: after an outage longer than the
// heartbeat timeout every router's membership entry has expired. A router
// back first keeps the routers it knew for one heartbeat timeout, the time
// they need to find Redis and beat again, rather than telling its backends
// (and its drains) that they are gone; one that does not beat by then is
// gone. Here B is stopped (SIGSTOP) during the outage, so it never beats again.
TEST(RouterCluster, ARouterBackFromARedisOutageGivesTheOthersATimeoutToBeatAgain) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()}, quick_heartbeats());
    auto b = cluster_router({redis.address()}, quick_heartbeats());
    ASSERT_TRUE(a->ready() && b->ready());
    ASSERT_TRUE(eventually([&] { return routers_known(*a) == 2; }, 10s));

    // Redis answers nobody for 5 s. Each router's commands time out (2 s)
    // and it closes its connections, whose unanswered commands (B's last
    // beats among them) Redis then drops unrun.
    const auto paused_at = std::chrono::system_clock::now();
    ASSERT_EQ(reply_text(redis_call(redis.port(), {"CLIENT", "PAUSE", "5000", "ALL"})), "OK");
    ASSERT_TRUE(logged(*a, "event=cluster.redis_down", 1, 10s)) << a->log();
    ASSERT_TRUE(logged(*b, "event=cluster.redis_down", 1, 10s)) << b->log();
    ASSERT_EQ(::kill(b->pid(), SIGSTOP), 0);
    const auto gone_line = [&] { return line_after(a->log(), "event=cluster.redis_down", 1, "event=cluster.routers alive=1"); };
    ASSERT_TRUE(eventually([&] { return !gone_line().empty(); }, 15s)) << "B goes once the grace is over\n" << a->log();
    ::kill(b->pid(), SIGCONT);
    // Redis answers again 5 s after the pause began, and B is kept 2 s (the
    // heartbeat timeout, quick_heartbeats) from A's first membership read
    // then: A tells B gone 7 s after the pause at the earliest, where
    // without the grace it would at 5.
    const long long paused = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 paused_at.time_since_epoch()).count() % (24LL * 3600 * 1000);
    const long long gone = log_time_ms(gone_line());
    ASSERT_GE(gone, 0);
    EXPECT_GE((gone - paused + 24LL * 3600 * 1000) % (24LL * 3600 * 1000), 6500) << a->log();
}

// A Redis that hangs (stopped here) still accepts connections, which the
// kernel completes: a connection is up only once Redis answered its
// greeting (a PING), so the router stays not ready, rather than coming up
// on every reconnect and down again at the next command's timeout.
TEST(RouterCluster, ARedisThatHangsLeavesTheRouterNotReadyUntilItAnswers) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    // Beats every 400 ms: the command connection times out first, while
    // the subscriber's is still taken as connected.
    auto router = cluster_router({redis.address()}, quick_heartbeats());
    ASSERT_TRUE(router->ready());
    redis.signal(SIGSTOP);
    ASSERT_TRUE(logged(*router, "event=cluster.redis_down", 1, 10s)) << router->log();
    // The reconnects come every 100 ms at first; each would be "up" at once.
    EXPECT_FALSE(logged(*router, "event=cluster.redis_up", 2, 3s)) << router->log();
    EXPECT_EQ(http_get(router->http_address(), "/healthz").status, 503);
    redis.signal(SIGCONT);
    ASSERT_TRUE(logged(*router, "event=cluster.redis_up", 2, 10s)) << router->log();
    EXPECT_TRUE(eventually([&] { return http_get(router->http_address(), "/healthz").status == 200; }, 5s));
}

TEST(RouterCluster, TheAdminEndpointsShowTheClusterAndHealthzItsRedis) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> quick_beats = quick_heartbeats();
    auto a = cluster_router({redis.address()}, quick_beats);
    auto b = cluster_router({redis.address()}, quick_beats);
    ASSERT_TRUE(a->ready() && b->ready());
    ASSERT_TRUE(logged(*a, "event=cluster.routers alive=2", 1));
    const auto status = nlohmann::json::parse(http_get(a->admin_address(), "/status").body);
    ASSERT_TRUE(status.contains("cluster")) << status.dump();
    EXPECT_EQ(status["cluster"]["redis"], "up");
    EXPECT_EQ(status["cluster"]["routers"].size(), 2u) << status.dump();
    EXPECT_EQ(status["cluster"].value("redis_sharded_pubsub", nlohmann::json()), false) << "a single server: PUBLISH counts every listener";
    const std::string metrics = http_get(a->admin_address(), "/metrics").body;
    EXPECT_NE(metrics.find("hyperstreams_cluster_redis_up 1\n"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("hyperstreams_cluster_routers 2\n"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("hyperstreams_cluster_redis_sharded_pubsub 0\n"), std::string::npos) << metrics;
    EXPECT_EQ(http_get(a->http_address(), "/healthz").status, 200);

    redis.kill();
    ASSERT_TRUE(logged(*a, "event=cluster.redis_down", 1));
    const http_result down = http_get(a->http_address(), "/healthz");
    EXPECT_EQ(down.status, 503);
    EXPECT_NE(down.body.find("not ready: Redis is unreachable"), std::string::npos) << down.body;
    EXPECT_NE(http_get(a->admin_address(), "/metrics").body.find("hyperstreams_cluster_redis_up 0\n"),
              std::string::npos);
    ASSERT_TRUE(redis.restart());
    ASSERT_TRUE(logged(*a, "event=cluster.redis_up", 2, 15s));
    EXPECT_EQ(http_get(a->http_address(), "/healthz").status, 200);
}

// A router asks Redis for a channel only while it has local subscribers:
// NUMSUB counts the routers with interest (one per router however many of
// its clients subscribe), a router whose clients subscribe to nothing takes
// none of a busy channel's traffic, and the last local unsubscribe (or
// disconnect) gives it up. Patterns likewise.
TEST(RouterCluster, OnlyRoutersWithLocalInterestSubscribeInRedis) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto a = cluster_router({redis.address()});
    auto b = cluster_router({redis.address()});
    auto c = cluster_router({redis.address()});
    ASSERT_TRUE(a->ready() && b->ready() && c->ready());
    const std::string busy = pubsub_channel("busy.feed");
    test_client pub(frontend_config(c->ws_url(), "pub"));
    test_client on_c(frontend_config(c->ws_url(), "on-c"));
    auto on_a = std::make_unique<test_client>(frontend_config(a->ws_url(), "on-a"));
    test_client b1(frontend_config(b->ws_url(), "b1"));
    test_client b2(frontend_config(b->ws_url(), "b2"));
    ASSERT_TRUE(pub.wait_ready() && on_c.wait_ready() && on_a->wait_ready() && b1.wait_ready() && b2.wait_ready());

    // Published to, subscribed by nobody: no router listens.
    const auto unheard = publish_numbers(pub, "busy.feed", 1, 20);
    ASSERT_EQ(unheard.size(), 20u);
    EXPECT_EQ(numsub(redis.port(), busy), 0);

    ASSERT_TRUE(on_a->wait_for(is(event_kind::ack, on_a->subscribe("busy.feed"))));
    ASSERT_TRUE(wait_numsub(redis.port(), busy, 1));
    const std::uint32_t s1 = b1.subscribe("busy.feed");
    const std::uint32_t s2 = b2.subscribe("busy.feed");
    ASSERT_TRUE(b1.wait_for(is(event_kind::ack, s1)) && b2.wait_for(is(event_kind::ack, s2)));
    ASSERT_TRUE(wait_numsub(redis.port(), busy, 2)) << "B once for its two subscribers";
    ASSERT_EQ(publish_numbers(pub, "busy.feed", 21, 60).size(), 40u);
    for (test_client* t : {on_a.get(), &b1, &b2}) {
        const auto got = t->wait_count(message_on("busy.feed"), 40);
        ASSERT_EQ(got.size(), 40u);
        expect_numbers(got, 21, unheard.front().epoch);
    }
    EXPECT_EQ(numsub(redis.port(), busy), 2) << "C, publishing, has no interest of its own";

    // B's first subscriber leaves: B keeps its interest. A subscribe after
    // it, on the same Redis connection, shows the unsubscribe would have
    // been made by then.
    const call_result u1 = b1.run([&](client_engine& e, time_ms) { return e.unsubscribe(s1); });
    ASSERT_TRUE(b1.wait_for(is(event_kind::ack, u1.id)));
    ASSERT_TRUE(b1.wait_for(is(event_kind::ack, b1.subscribe("marker.b"))));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("marker.b"), 1));
    EXPECT_EQ(numsub(redis.port(), busy), 2);
    const call_result u2 = b2.run([&](client_engine& e, time_ms) { return e.unsubscribe(s2); });
    ASSERT_TRUE(b2.wait_for(is(event_kind::ack, u2.id)));
    ASSERT_TRUE(wait_numsub(redis.port(), busy, 1)) << "B's last subscriber left";
    ASSERT_EQ(publish_numbers(pub, "busy.feed", 61, 70).size(), 10u);
    ASSERT_EQ(on_a->wait_count(message_on("busy.feed"), 50).size(), 50u);
    EXPECT_EQ(b2.count(message_on("busy.feed")), 40u);

    // Patterns: one Redis pattern per router with local interest.
    ASSERT_TRUE(b2.wait_for(is(event_kind::ack, b2.subscribe("busy.*"))));
    ASSERT_TRUE(on_c.wait_for(is(event_kind::ack, on_c.subscribe("busy.>"))));
    ASSERT_TRUE(eventually([&] { return pattern_subscriptions(redis.port()) == 2; }, 5s));
    ASSERT_EQ(publish_numbers(pub, "busy.feed", 71, 71).size(), 1u);
    ASSERT_TRUE(b2.wait_for([](const recorded_event& e) { return e.kind == event_kind::message && e.seq == 71; }));
    ASSERT_TRUE(on_c.wait_for(message_on("busy.feed")));

    // A's only subscriber goes away: A drops the channel.
    on_a.reset();
    ASSERT_TRUE(wait_numsub(redis.port(), busy, 0));
    EXPECT_EQ(pattern_subscriptions(redis.port()), 2);
}

// Presence is the cluster's: a member on any router is listed by every
// router, joins and leaves cross routers to the subscriptions that asked,
// and a router killed with SIGKILL loses its members within the
// membership's expiry (no leave: nobody was there to say it).
TEST(RouterCluster, PresenceIsTheClustersAndItsEventsCrossRouters) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    const std::vector<std::string> options = quick_heartbeats(
        {"--channels-namespaces", R"([{"pattern": "room.>", "presence": true, "join_leave": true}])"});
    auto a = cluster_router({redis.address()}, options);
    auto b = cluster_router({redis.address()}, options);
    auto doomed_router = cluster_router({redis.address()}, options);
    ASSERT_TRUE(a->ready() && b->ready() && doomed_router->ready());
    test_client watcher(frontend_config(b->ws_url(), "watcher"));
    test_client member(frontend_config(a->ws_url(), "member"));
    test_client doomed(frontend_config(doomed_router->ws_url(), "doomed"));
    ASSERT_TRUE(watcher.wait_ready() && member.wait_ready() && doomed.wait_ready());
    const auto session = [](test_client& c) {
        return c.run([](client_engine& e, time_ms) { return std::string(e.session_id()); });
    };
    const auto member_of = [](const recorded_event& e) {
        EXPECT_EQ(e.members.size(), 1u) << describe(e);
        return e.members.empty() ? std::pair<std::string, std::string>() : std::pair{e.members[0].address, e.members[0].name};
    };
    // The members router b lists: (address, name), sorted.
    const auto listed = [&] {
        const std::uint32_t id = watcher.run([](client_engine& e, time_ms) { return e.presence("room.x"); }).id;
        const auto ev = watcher.wait_for(is(event_kind::presence, id), 10s);
        std::vector<std::pair<std::string, std::string>> out;
        if (!ev) return std::optional<decltype(out)>();
        for (const auto& m : ev->members) out.emplace_back(m.address, m.name);
        std::sort(out.begin(), out.end());
        return std::optional(out);
    };

    const std::uint32_t w = watcher.run([](client_engine& e, time_ms) {
        return e.subscribe("room.x", {.join_leave = true});
    }).id;
    ASSERT_TRUE(watcher.wait_for(is(event_kind::ack, w)));
    ASSERT_TRUE(wait_numsub(redis.port(), pubsub_channel("room.x"), 1));

    const std::uint32_t m = member.subscribe("room.x");
    ASSERT_TRUE(member.wait_for(is(event_kind::ack, m)));
    const auto joined = watcher.wait_for(is(event_kind::join), 10s);
    ASSERT_TRUE(joined) << "a join on router a reaches router b";
    EXPECT_EQ(member_of(*joined), std::pair(session(member), std::string("member")));
    const std::uint32_t d = doomed.subscribe("room.x");
    ASSERT_TRUE(doomed.wait_for(is(event_kind::ack, d)));
    ASSERT_EQ(watcher.wait_count(is(event_kind::join), 2, 10s).size(), 2u);

    std::vector<std::pair<std::string, std::string>> all{
        {session(watcher), "watcher"}, {session(member), "member"}, {session(doomed), "doomed"}};
    std::sort(all.begin(), all.end());
    EXPECT_EQ(listed(), all) << "every router's members";

    const std::uint32_t u = member.run([&](client_engine& e, time_ms) { return e.unsubscribe(m); }).id;
    ASSERT_TRUE(member.wait_for(is(event_kind::ack, u)));
    const auto left = watcher.wait_for(is(event_kind::leave), 10s);
    ASSERT_TRUE(left);
    EXPECT_EQ(member_of(*left), std::pair(session(member), std::string("member")));

    const std::string doomed_address = session(doomed);
    ASSERT_EQ(doomed_router->signal_and_wait(SIGKILL, 5s), 128 + SIGKILL);
    const std::vector<std::pair<std::string, std::string>> alone{{session(watcher), "watcher"}};
    EXPECT_TRUE(eventually([&] { return listed() == alone; }, 10s)) << "the killed router's member is gone";
    EXPECT_EQ(watcher.count(is(event_kind::join)), 2u) << "nobody hears of itself";
}

// A channel's presence hash expires with the membership's timeout: a
// router with members in it refreshes the expiry at each heartbeat, so the
// hash outlives the time it had left; once that router is killed (no leave
// said) the hash goes from Redis with nobody reading it.
TEST(RouterCluster, APresenceHashLivesAsLongAsARouterWithMembersInIt) {
    redis_server redis;
    ASSERT_TRUE(redis.ready());
    auto doomed_router = cluster_router(
        {redis.address()}, quick_heartbeats({"--channels-namespaces", R"([{"pattern": "room.>", "presence": true}])"}));
    ASSERT_TRUE(doomed_router->ready());
    test_client member(frontend_config(doomed_router->ws_url(), "member"));
    ASSERT_TRUE(member.wait_ready());
    ASSERT_TRUE(member.wait_for(is(event_kind::ack, member.subscribe("room.y"))));
    const std::string key = "hs:{room.y}:presence";
    const auto time_left = [&] {
        const router::redis_reply r = redis_call(redis.port(), {"PTTL", key});
        return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
    };
    ASSERT_TRUE(eventually([&] { return redis_call(redis.port(), {"HLEN", key})->integer == 1; }, 5s));
    const long long first = time_left();
    EXPECT_GT(first, 0) << "the hash expires";
    EXPECT_LE(first, 2000) << "with the membership's timeout";
    const auto outlived = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(first, 0LL) + 300);
    EXPECT_TRUE(eventually([&] { return std::chrono::steady_clock::now() > outlived && time_left() > 0; }, 5s))
        << "refreshed while its router lives";

    ASSERT_EQ(doomed_router->signal_and_wait(SIGKILL, 5s), 128 + SIGKILL);
    EXPECT_TRUE(eventually([&] { return redis_call(redis.port(), {"EXISTS", key})->integer == 0; }, 10s))
        << "gone once no router refreshes it";
}

// ---------------------------------------------------------------- a Redis Cluster

// Which of `nodes` the subscriber connection of `sub`'s router is on: `sub`
// subscribes to a probe channel, and the node that counts a subscriber of
// it says; nodes.size() when none does within a bound.
std::size_t subscriber_node(std::span<const std::unique_ptr<redis_server>> nodes, test_client& sub) {
    if (!sub.wait_for(is(event_kind::ack, sub.subscribe("where.is.router")))) return nodes.size();
    std::size_t at = nodes.size();
    eventually([&] {
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (numsub(nodes[i]->port(), pubsub_channel("where.is.router")) == 1) at = i;
        return at < nodes.size();
    }, 5s);
    return at;
}

// A Redis master killed, with a replica to take its place (three masters,
// each with a replica; a cluster node timeout of 1 s): a publish to its
// channels is refused with a named error, never acked, until the replica
// took over (about 2 s), and then goes on where the channel was, in the
// same epoch at the next seq; the subscriber on the other router gets every
// message once, with no gap, and a resume reads the history from the
// promoted replica. B, whose subscriber connection is on another node,
// reads again only the channels of the master that failed. (What was
// replicated: the test waits for it, as a
// publication acked and not yet replicated is lost with the master, and the
// channel then starts a new epoch: ARCHITECTURE.md, "Rolled back".)
TEST(RouterClusterFailover, ARedisMasterKilledIsReplacedByItsReplicaAndPositionsGoOn) {
    const auto nodes = make_redis_cluster(3, 1, {"--cluster-node-timeout", "1000"});
    ASSERT_EQ(nodes.size(), 6u);
    std::vector<std::string> seeds;
    for (const auto& n : nodes) seeds.push_back(n->address());
    auto a = cluster_router(seeds);
    auto b = cluster_router(seeds);
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());

    // The master killed is not the node B's subscriber connection is on.
    const std::size_t listening = subscriber_node(nodes, sub);
    ASSERT_LT(listening, nodes.size());
    std::size_t victim = nodes.size();
    for (std::size_t i = 0; i < nodes.size() && victim == nodes.size(); ++i)
        if (i != listening && replication_field(nodes[i]->port(), "role") == "master") victim = i;
    ASSERT_LT(victim, nodes.size());
    std::size_t heir = nodes.size();
    for (std::size_t i = 0; i < nodes.size(); ++i)
        if (replication_field(nodes[i]->port(), "master_port") == std::to_string(nodes[victim]->port())) heir = i;
    ASSERT_LT(heir, nodes.size());
    // `channel` on the victim, `steady` on another master.
    std::string channel;
    std::string steady;
    for (int i = 0; i < 10000 && (channel.empty() || steady.empty()); ++i) {
        const std::string candidate = "line.failover." + std::to_string(i);
        for (std::size_t n = 0; n < nodes.size(); ++n) {
            if (replication_field(nodes[n]->port(), "role") != "master") continue;
            const router::redis_reply r = redis_call(nodes[n]->port(), {"EXISTS", meta_key(candidate)});
            if (!r || r->type == REDIS_REPLY_ERROR) continue;  // MOVED: served elsewhere
            if (n == victim && channel.empty()) channel = candidate;
            if (n != victim && steady.empty()) steady = candidate;
        }
    }
    ASSERT_FALSE(channel.empty() || steady.empty());
    const auto subscribers = [&] {
        long long total = 0;
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (i != victim) total += std::max(0LL, numsub(nodes[i]->port(), pubsub_channel(channel)));
        return total;
    };
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe(channel))));
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe(steady))));
    ASSERT_TRUE(eventually([&] { return subscribers() + numsub(nodes[victim]->port(), pubsub_channel(channel)) == 1; },
                           5s));
    ASSERT_EQ(publish_numbers(pub, steady, 1, 1).size(), 1u);
    ASSERT_EQ(sub.wait_count(message_on(steady), 1).size(), 1u);
    const auto acks = publish_numbers(pub, channel, 1, 3);
    ASSERT_EQ(acks.size(), 3u);
    const std::uint32_t epoch = acks.front().epoch;
    ASSERT_EQ(sub.wait_count(message_on(channel), 3).size(), 3u);
    ASSERT_TRUE(wait_replicated(nodes[victim]->port(), nodes[heir]->port(), 10s));

    nodes[victim]->kill();
    ASSERT_TRUE(logged(*a, "event=cluster.redis_down", 1));
    const std::uint32_t refused = pub.publish(channel, "refused", true);
    const auto answer = pub.wait_for(answer_to(refused), 10s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->kind, event_kind::error) << describe(*answer);
    EXPECT_EQ(answer->error(), errc::cluster_unavailable) << describe(*answer);
    // The replica takes over, and the routers follow.
    ASSERT_TRUE(logged(*a, "event=cluster.redis_up", 2, 20s)) << a->log();
    ASSERT_TRUE(logged(*b, "event=cluster.redis_up", 2, 20s)) << b->log();
    ASSERT_TRUE(eventually([&] { return subscribers() == 1; }, 10s)) << "the subscriber's router listens again";
    // Its subscriber connection stayed: B reads again only the channel of
    // the master that failed, the one that may have lost a message.
    EXPECT_TRUE(logged(*b, "event=cluster.catch_up channels=1 known=2", 1)) << b->log();
    const auto after = publish_numbers(pub, channel, 4, 6);
    ASSERT_EQ(after.size(), 3u);
    EXPECT_EQ(after.front().epoch, epoch);
    EXPECT_EQ(after.front().seq, 4u);
    const auto got = sub.wait_count(message_on(channel), 6);
    ASSERT_EQ(got.size(), 6u);
    expect_numbers(got, 1, epoch);
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
    EXPECT_EQ(sub.count(is(event_kind::epoch_changed)), 0u);
    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(is(event_kind::ack, subscribe_since(late, channel, channel_position{epoch, 1}))));
    const auto replayed = late.wait_count(message_on(channel), 5);
    ASSERT_EQ(replayed.size(), 5u);
    expect_numbers(replayed, 2, epoch);
    ASSERT_EQ(publish_numbers(pub, steady, 2, 2).size(), 1u);
    EXPECT_EQ(sub.wait_count(message_on(steady), 2).size(), 2u);
}

// Directs from `from` to `to`, each acked, until the Redis node at `port`
// counts one more SPUBLISH across one of them: the sender's router read in
// the membership that the receiver's listens on its sharded channel there.
// How many were sent; 0 when that did not come within the bound.
int directs_until_spublished(test_client& from, test_client& to, std::uint16_t port) {
    const auto spublished = [&] { return info_field(port, "commandstats", "cmdstat_spublish", "calls"); };
    int sent = 0;
    const bool seen = eventually([&] {
        const long long before = spublished();
        expect_answer(from, send_direct(from, to.session_id(), "hello " + std::to_string(++sent)), errc{},
                      "a direct to the other router's client");
        return spublished() > before;
    }, 10s);
    return seen ? sent : 0;
}

// B's own channel is sharded on a master that is killed: once its
// replica took over, the routers follow at their own pace, and a router
// that learned the new master before B made its subscription there again
// must not take B for gone. Directs from a client of A to one of B, one
// after the other through the failover: each is delivered, or refused
// while Redis cannot carry it (cluster_unavailable, or
// cluster_outcome_unknown for one on the wire when the master died);
// none is answered no_such_address, and they are delivered again after.
TEST(RouterClusterFailover, DirectsToARouterWhoseChannelsMasterFailsOverAreNotTakenForGone) {
    const auto nodes = make_redis_cluster(3, 1, {"--cluster-node-timeout", "1000"});
    ASSERT_EQ(nodes.size(), 6u);
    std::vector<std::string> seeds;
    for (const auto& n : nodes) seeds.push_back(n->address());
    std::size_t victim = nodes.size();
    for (std::size_t i = 0; i < nodes.size() && victim == nodes.size(); ++i)
        if (replication_field(nodes[i]->port(), "role") == "master") victim = i;
    ASSERT_LT(victim, nodes.size());
    // B's id, such that its channel is the victim's.
    std::string b_id;
    for (int i = 0; i < 10000 && b_id.empty(); ++i) {
        const std::string candidate = "rb" + std::to_string(i);
        const router::redis_reply r = redis_call(nodes[victim]->port(), {"EXISTS", "hs:r:" + candidate});
        if (r && r->type != REDIS_REPLY_ERROR) b_id = candidate;
    }
    ASSERT_FALSE(b_id.empty());
    auto a = cluster_router(seeds, {"--router-id", "ra"});
    auto b = cluster_router(seeds, {"--router-id", b_id});
    ASSERT_TRUE(a->ready() && b->ready());
    ASSERT_TRUE(eventually([&] { return shardnumsub(nodes[victim]->port(), "hs:r:" + b_id) == 1; }, 10s));
    test_client a1(frontend_config(a->ws_url(), "a1"));
    test_client b1(frontend_config(b->ws_url(), "b1"));
    ASSERT_TRUE(a1.wait_ready() && b1.wait_ready());
    ASSERT_GT(directs_until_spublished(a1, b1, nodes[victim]->port()), 0) << "A SPUBLISHes to B";

    nodes[victim]->kill();
    std::map<std::string, int> outcomes;
    int delivered_after = 0;
    bool refused_once = false;
    const auto deadline = std::chrono::steady_clock::now() + 40s;
    for (int i = 0; i < 2000 && delivered_after < 20 && std::chrono::steady_clock::now() < deadline; ++i) {
        const std::uint32_t id = send_direct(a1, b1.session_id(), "during " + std::to_string(i));
        const auto answer = a1.wait_for(answer_to(id), 10s);
        ASSERT_TRUE(answer) << "every direct is answered";
        const std::string outcome = answer->kind == event_kind::error ? std::string(errc_name(static_cast<std::uint16_t>(answer->error()))) : "ok";
        ++outcomes[outcome];
        if (outcome != "ok") refused_once = true;
        if (outcome == "ok" && refused_once) ++delivered_after;
        // A pace, not a wait for a condition: the failover takes seconds.
        std::this_thread::sleep_for(20ms);
    }
    std::string seen;
    for (const auto& [outcome, count] : outcomes) seen += outcome + "=" + std::to_string(count) + " ";
    EXPECT_TRUE(refused_once) << "the case under test: the master's death was felt; " << seen;
    EXPECT_EQ(outcomes.count("no_such_address"), 0u) << seen << "\n" << a->log() << "\n" << b->log();
    EXPECT_EQ(delivered_after, 20) << seen;
}

// cluster.redis_wait_replicas 1 on a Redis Cluster: each publish's WAIT
// goes to the master that ran its script, after a fence in the channel's
// slot, so publishes on every master are acked, one alone and a batch
// alike, each once that master's replica has it; none is answered
// cluster_outcome_unknown for a fence sent to a node that does not serve
// its slot.
TEST(RouterClusterFailover, WithWaitReplicasPublishesOnEveryMasterAreAckedOnceItsReplicaHasThem) {
    const auto nodes = make_redis_cluster(3, 1, {"--cluster-node-timeout", "1000"});
    ASSERT_EQ(nodes.size(), 6u);
    std::vector<std::string> seeds;
    for (const auto& n : nodes) seeds.push_back(n->address());
    auto a = cluster_router(seeds, {"--cluster-redis-wait-replicas", "1"});
    ASSERT_TRUE(a->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    ASSERT_TRUE(pub.wait_ready());
    const auto on_replica = [&](std::size_t replica, const std::string& channel) {
        const auto replies = redis_calls(nodes[replica]->port(), {{"READONLY"}, {"XLEN", "hs:{" + channel + "}:s"}});
        return replies.size() == 2 ? reply_text(replies[1]) : std::string("no answer");
    };
    std::size_t masters = 0;
    for (std::size_t m = 0; m < nodes.size(); ++m) {
        if (replication_field(nodes[m]->port(), "role") != "master") continue;
        ++masters;
        std::size_t replica = nodes.size();
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (replication_field(nodes[i]->port(), "master_port") == std::to_string(nodes[m]->port())) replica = i;
        ASSERT_LT(replica, nodes.size());
        ASSERT_TRUE(eventually([&] { return replication_field(nodes[replica]->port(), "master_link_status") == "up"; },
                               10s));
        std::string channel;
        for (int i = 0; i < 10000 && channel.empty(); ++i) {
            const std::string candidate = "press.durable." + std::to_string(i);
            const router::redis_reply r = redis_call(nodes[m]->port(), {"EXISTS", meta_key(candidate)});
            if (r && r->type != REDIS_REPLY_ERROR) channel = candidate;  // else MOVED: served elsewhere
        }
        ASSERT_FALSE(channel.empty());

        const auto alone = publish_numbers(pub, channel, 1, 1);
        ASSERT_EQ(alone.size(), 1u) << channel << "\n" << a->log();
        EXPECT_EQ(on_replica(replica, channel), "1") << "on the replica when acked";
        const auto batch = answers_to(pub, publish_numbers_in_one_message(pub, channel, 2, 4));
        ASSERT_EQ(batch.size(), 3u);
        for (const auto& answer : batch) EXPECT_EQ(answer.kind, event_kind::ack) << describe(answer);
        EXPECT_EQ(on_replica(replica, channel), "4") << "on the replica when acked";
    }
    EXPECT_EQ(masters, 3u);
    EXPECT_EQ(a->log().find("redis.wait_fence_failed"), std::string::npos) << a->log();
}

// Three masters, from redis-cli --cluster create, one cluster for the
// suite (each test's channels are its own; a test that restarts a node
// leaves the cluster ok).
class RouterClusterOnRedisCluster : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        std::vector<std::string> args = {"--cluster", "create"};
        for (auto& n : nodes_) {
            n = std::make_unique<redis_server>(true);
            if (!n->ready()) return;
            args.push_back(n->address());
        }
        args.insert(args.end(), {"--cluster-replicas", "0", "--cluster-yes"});
        const auto created = run_program("redis-cli", args, 30s);
        created_ = created.status == 0;
        if (!created_) std::fprintf(stderr, "redis-cli --cluster create failed:\n%s\n", created.output.c_str());
    }

    static void TearDownTestSuite() {
        for (auto& n : nodes_) n.reset();
    }

    void SetUp() override {
        ASSERT_TRUE(created_);
        ASSERT_TRUE(cluster_ok());
    }

    std::vector<std::string> addresses() const {
        std::vector<std::string> out;
        for (const auto& n : nodes_) out.push_back(n->address());
        return out;
    }

    // Which node serves `slot`, as node 0 sees it.
    std::size_t owner(std::uint16_t slot) const {
        const router::redis_reply r = redis_call(nodes_[0]->port(), {"CLUSTER", "SLOTS"});
        std::vector<router::redis_slot_range> ranges;
        if (!r || router::parse_cluster_slots(*r, router::redis_address{"127.0.0.1", nodes_[0]->port()}, ranges))
            return nodes_.size();
        for (const auto& range : ranges)
            if (slot >= range.first && slot <= range.last)
                for (std::size_t i = 0; i < nodes_.size(); ++i)
                    if (range.master.port == nodes_[i]->port()) return i;
        return nodes_.size();
    }

    // A channel `prefix`N whose keys node `node` serves.
    std::string channel_on(std::size_t node, const std::string& prefix) const {
        for (int i = 0; i < 10000; ++i) {
            std::string channel = prefix + std::to_string(i);
            if (owner(router::redis_key_slot(meta_key(channel))) == node) return channel;
        }
        ADD_FAILURE() << "no channel of node " << node;
        return prefix;
    }

    // Subscribers of `channel` over every node.
    long long numsub_all(const std::string& channel) const {
        long long total = 0;
        for (const auto& n : nodes_) total += std::max(0LL, numsub(n->port(), channel));
        return total;
    }

    // Every node says the cluster is ok.
    static bool cluster_ok() {
        return eventually([&] {
            for (const auto& n : nodes_)
                if (reply_text(redis_call(n->port(), {"CLUSTER", "INFO"})).find("cluster_state:ok") ==
                    std::string::npos)
                    return false;
            return true;
        }, 15s);
    }

    static inline std::array<std::unique_ptr<redis_server>, 3> nodes_;
    static inline bool created_ = false;
};

TEST_F(RouterClusterOnRedisCluster, ChannelsOfEveryMasterCrossRoutersAndResume) {
    auto a = cluster_router(addresses());
    auto b = cluster_router(addresses());
    ASSERT_TRUE(a->ready() && b->ready());
    std::array<std::string, 3> channels;
    for (std::size_t i = 0; i < channels.size(); ++i) channels[i] = channel_on(i, "cell.");
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    test_client every(frontend_config(b->ws_url(), "every"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready() && every.wait_ready());
    for (const std::string& ch : channels) ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe(ch))));
    ASSERT_TRUE(every.wait_for(is(event_kind::ack, every.subscribe("cell.*"))));
    for (const std::string& ch : channels)
        ASSERT_TRUE(eventually([&] { return numsub_all(pubsub_channel(ch)) == 1; }, 5s)) << ch;
    ASSERT_TRUE(eventually([&] {
        long long total = 0;
        for (const auto& n : nodes_) total += pattern_subscriptions(n->port());
        return total == 1;
    }, 5s));

    std::array<std::uint32_t, 3> epochs{};
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto acks = publish_numbers(pub, channels[i], 1, 4);
        ASSERT_EQ(acks.size(), 4u);
        epochs[i] = acks.front().epoch;
        EXPECT_EQ(acks.back().seq, 4u);
        // Kept on the master of the channel's slot.
        EXPECT_EQ(reply_text(redis_call(nodes_[i]->port(), {"HGET", meta_key(channels[i]), "s"})), "4")
            << channels[i];
    }
    for (std::size_t i = 0; i < channels.size(); ++i) {
        for (test_client* t : {&sub, &every}) {
            const auto got = t->wait_count(message_on(channels[i]), 4);
            ASSERT_EQ(got.size(), 4u) << channels[i];
            expect_numbers(got, 1, epochs[i]);
        }
    }

    // Resumed on A, from 2 of each.
    test_client back(frontend_config(a->ws_url(), "back"));
    ASSERT_TRUE(back.wait_ready());
    for (std::size_t i = 0; i < channels.size(); ++i)
        ASSERT_TRUE(back.wait_for(
            is(event_kind::ack, subscribe_since(back, channels[i], channel_position{epochs[i], 2}))));
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto replay = back.wait_count(message_on(channels[i]), 2);
        ASSERT_EQ(replay.size(), 2u) << channels[i];
        expect_numbers(replay, 3, epochs[i]);
        for (const auto& m : replay) EXPECT_TRUE(replayed(m)) << describe(m);
    }
    for (const std::string& ch : channels)
        ASSERT_TRUE(eventually([&] { return numsub_all(pubsub_channel(ch)) == 2; }, 5s)) << ch;
    // And live again, from B this time.
    test_client pub_b(frontend_config(b->ws_url(), "pub-b"));
    ASSERT_TRUE(pub_b.wait_ready());
    for (std::size_t i = 0; i < channels.size(); ++i) ASSERT_EQ(publish_numbers(pub_b, channels[i], 5, 5).size(), 1u);
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto got = back.wait_count(message_on(channels[i]), 3);
        ASSERT_EQ(got.size(), 3u) << channels[i];
        expect_numbers(got, 3, epochs[i]);
        EXPECT_FALSE(replayed(got[2]));
        EXPECT_EQ(sub.wait_count(message_on(channels[i]), 5).size(), 5u);
    }
    EXPECT_EQ(back.count(is(event_kind::gap)) + sub.count(is(event_kind::gap)), 0u);
}

// On a Redis Cluster the index is one key (its own slot) and each channel's
// last entry is read on the master of its slot.
TEST_F(RouterClusterOnRedisCluster, ALatestSubscribeReadsTheChannelsOfEveryMaster) {
    const std::vector<std::string> options{"--channels-namespaces", R"([{"pattern": "cell.>", "latest": true}])"};
    auto a = cluster_router(addresses(), options);
    auto b = cluster_router(addresses(), options);
    ASSERT_TRUE(a->ready() && b->ready());
    std::array<std::string, 3> channels;
    for (std::size_t i = 0; i < channels.size(); ++i) channels[i] = channel_on(i, "cell.latest");
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    for (const std::string& ch : channels) ASSERT_EQ(publish_numbers(pub, ch, 1, 3).size(), 3u);
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("cell.*", slow_policy::router_default, true))));
    const auto got = sub.wait_count(is(event_kind::message), 3);
    ASSERT_EQ(got.size(), 3u);
    std::set<std::string> names;
    for (const auto& m : got) {
        names.insert(m.name);
        EXPECT_EQ(m.seq, 3u) << describe(m);
        EXPECT_EQ(m.payload_text(), "3");
        EXPECT_TRUE(replayed(m));
    }
    EXPECT_EQ(names, std::set<std::string>(channels.begin(), channels.end()));
}

// A latest-value subscribe that makes B's first subscription of the channel
// reads the channel once Redis confirmed that subscription. The node that
// holds B's subscriber connection is paused (CLIENT PAUSE ALL: its clients'
// commands, B's SUBSCRIBE too, wait; the cluster bus still brings it every
// PUBLISH): publication 4, placed on another node meanwhile, reaches the
// subscriber, as its latest value or live, and 5 follows with no gap.
TEST_F(RouterClusterOnRedisCluster, ALatestSubscribeMissesNothingPlacedBeforeItsSubscriptionTookEffect) {
    const std::vector<std::string> options{"--channels-namespaces", R"([{"pattern": "cell.>", "latest": true}])"};
    auto a = cluster_router(addresses(), options);
    std::vector<std::string> named = options;
    named.insert(named.end(), {"--router-id", "rb"});
    auto b = cluster_router(addresses(), named);
    ASSERT_TRUE(a->ready() && b->ready());
    std::size_t paused = nodes_.size();
    ASSERT_TRUE(eventually([&] {
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (numsub(nodes_[i]->port(), "hs:r:rb") == 1) paused = i;
        return paused < nodes_.size();
    }, 5s)) << "B's subscriber connection is on no node";
    const std::string channel = channel_on((paused + 1) % nodes_.size(), "cell.gap");
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(pub.wait_ready() && late.wait_ready());
    ASSERT_EQ(publish_numbers(pub, channel, 1, 3).size(), 3u);

    // Well inside the routers' PING and command timeouts (2 s), so that a
    // router slowed down (ASan, a busy machine) still keeps its connection
    // to the paused node; long enough for the steps below (about 0.4 s).
    const auto pause = std::chrono::milliseconds(1200);
    const auto paused_at = std::chrono::steady_clock::now();
    ASSERT_EQ(reply_text(redis_call(nodes_[paused]->port(), {"CLIENT", "PAUSE", std::to_string(pause.count()), "ALL"})),
              "OK");
    late.subscribe(channel, slow_policy::router_default, true);
    // Without waiting for the subscription, B answers with 3 at once; with
    // it, once the pause is over.
    (void)late.wait_for(message_on(channel), 300ms);
    ASSERT_EQ(publish_numbers(pub, channel, 4, 4).size(), 1u);
    // A machine too slow to place 4 within the pause tests nothing here:
    // said, not failed (the pause cannot be longer, see above).
    if (std::chrono::steady_clock::now() - paused_at >= pause)
        GTEST_SKIP() << "4 was placed after the pause: nothing tested";
    // Answered once the pause is over.
    ASSERT_EQ(reply_text(redis_call(nodes_[paused]->port(), {"PING"}, 5s)), "PONG");
    ASSERT_EQ(publish_numbers(pub, channel, 5, 5).size(), 1u);

    ASSERT_TRUE(late.wait_for([&](const recorded_event& e) {
        return e.kind == event_kind::message && e.name == channel && e.seq == 5;
    }, 10s));
    const auto got = late.events(message_on(channel));
    ASSERT_FALSE(got.empty());
    EXPECT_TRUE(replayed(got.front())) << "the latest value first: " << describe(got.front());
    for (std::size_t i = 1; i < got.size(); ++i)
        EXPECT_EQ(got[i].seq, got[i - 1].seq + 1) << describe(got[i - 1]) << " then " << describe(got[i]);
    EXPECT_EQ(late.count(is(event_kind::gap)), 0u);
}

// The master of a channel's slot, which B's subscriber connection is on
// too, is killed (SIGKILL) and started again on its port with its
// nodes.conf, its data gone. The routers follow with no restart of their
// own: publishes on the channel fail by name while the shard is down, and
// once it is back A's publications reach B's subscriber, which did nothing
// and is told the channel was lost by its new epoch.
TEST_F(RouterClusterOnRedisCluster, AShardRestartedIsFollowedWithoutRestartingTheRouters) {
    auto a = cluster_router(addresses());
    auto b = cluster_router(addresses());
    ASSERT_TRUE(a->ready() && b->ready());
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    const std::size_t victim = subscriber_node(nodes_, sub);
    ASSERT_LT(victim, nodes_.size()) << "B's subscriber connection is on some node";
    const std::string channel = channel_on(victim, "shard.");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe(channel))));
    ASSERT_TRUE(wait_numsub(nodes_[victim]->port(), pubsub_channel(channel), 1));
    const auto before = publish_numbers(pub, channel, 1, 3);
    ASSERT_EQ(before.size(), 3u);
    ASSERT_EQ(sub.wait_count(message_on(channel), 3).size(), 3u);

    nodes_[victim]->kill();
    ASSERT_TRUE(logged(*a, "event=cluster.redis_down", 1));
    const std::uint32_t refused = pub.publish(channel, "refused", true);
    expect_answer(pub, refused, errc::cluster_unavailable, "a publish while its shard is down");

    ASSERT_TRUE(nodes_[victim]->restart());
    ASSERT_TRUE(cluster_ok()) << "the node rejoined from its nodes.conf";
    ASSERT_TRUE(logged(*a, "event=cluster.redis_up", 2, 15s));
    ASSERT_TRUE(logged(*b, "event=cluster.redis_up", 2, 15s));
    ASSERT_TRUE(eventually([&] { return numsub_all(pubsub_channel(channel)) == 1; }, 5s))
        << "B subscribed again, on a node that is up";
    // A master just restarted may refuse writes for a moment (CLUSTERDOWN):
    // such a publish fails by name, and is not made.
    std::optional<recorded_event> made;
    EXPECT_TRUE(eventually([&] {
        const auto answer = pub.wait_for(answer_to(pub.publish(channel, "4", true)), 10s);
        if (answer && answer->kind == event_kind::ack) made = *answer;
        EXPECT_TRUE(answer && (made || answer->error() == errc::cluster_unavailable))
            << (answer ? describe(*answer) : "no answer");
        return made.has_value();
    }, 10s));
    ASSERT_TRUE(made) << "publishes on the channel work again";
    EXPECT_NE(made->epoch, before.front().epoch) << "the shard lost the channel";
    EXPECT_EQ(made->seq, 1u);
    const auto got = sub.wait_count(message_on(channel), 4);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[3].payload_text(), "4");
    EXPECT_EQ(got[3].epoch, made->epoch);
    const auto changed = sub.wait_for(is(event_kind::epoch_changed));
    ASSERT_TRUE(changed);
    EXPECT_EQ(changed->name, channel);
    for (const auto& m : sub.events(message_on(channel))) EXPECT_NE(m.payload_text(), "refused") << describe(m);
}

// While a channel's slot migrates, a publish with an idempotency key meets
// TRYAGAIN: the channel's meta and stream are still on the source, and
// its new key would be made on the target. The router sends it again until
// the keys have moved, and the channel's next publish waits behind it: both
// are acked, in the order they were made, and reach the subscriber so.
TEST_F(RouterClusterOnRedisCluster, AKeyedPublishWhileItsSlotMigratesWaitsForTheSlotInItsOrder) {
    auto a = cluster_router(addresses());
    auto b = cluster_router(addresses());
    ASSERT_TRUE(a->ready() && b->ready());
    const std::size_t from = 1;
    const std::size_t to = 2;
    const std::string channel = channel_on(from, "migrating.");
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe(channel))));
    ASSERT_TRUE(eventually([&] { return numsub_all(pubsub_channel(channel)) == 1; }, 5s));
    const auto before = publish_numbers(pub, channel, 1, 2);
    ASSERT_EQ(before.size(), 2u);

    const std::string slot = std::to_string(router::redis_key_slot(meta_key(channel)));
    const auto id = [&](std::size_t i) { return reply_text(redis_call(nodes_[i]->port(), {"CLUSTER", "MYID"})); };
    const auto tryagains = [&] {
        const std::string info = reply_text(redis_call(nodes_[from]->port(), {"INFO", "errorstats"}));
        const std::size_t at = info.find("errorstat_TRYAGAIN:count=");
        return at == std::string::npos ? 0LL : std::stoll(info.substr(at + 25));
    };
    const long long tryagains_before = tryagains();
    ASSERT_EQ(reply_text(redis_call(nodes_[to]->port(), {"CLUSTER", "SETSLOT", slot, "IMPORTING", id(from)})), "OK");
    ASSERT_EQ(reply_text(redis_call(nodes_[from]->port(), {"CLUSTER", "SETSLOT", slot, "MIGRATING", id(to)})), "OK");

    const std::uint32_t keyed = publish_with(pub, channel, "keyed", "order-1");
    ASSERT_TRUE(eventually([&] { return tryagains() > tryagains_before; }, 5s));
    const std::uint32_t after = pub.publish(channel, "after", true);
    // The rest of the migration: the channel's keys, then the slot.
    const std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(nodes_[to]->port()), "",
                                              "0", "5000", "KEYS", meta_key(channel),
                                              "hs:{" + channel + "}:s"};
    ASSERT_EQ(reply_text(redis_call(nodes_[from]->port(), migrate)), "OK");
    for (std::size_t i : {to, from, std::size_t{0}})
        ASSERT_EQ(reply_text(redis_call(nodes_[i]->port(), {"CLUSTER", "SETSLOT", slot, "NODE", id(to)})), "OK");

    const auto keyed_ack = pub.wait_for(answer_to(keyed), 10s);
    const auto after_ack = pub.wait_for(answer_to(after), 10s);
    ASSERT_TRUE(keyed_ack && after_ack);
    ASSERT_EQ(keyed_ack->kind, event_kind::ack) << describe(*keyed_ack);
    ASSERT_EQ(after_ack->kind, event_kind::ack) << describe(*after_ack);
    EXPECT_EQ(keyed_ack->epoch, before.front().epoch) << "a migration keeps the channel's epoch";
    EXPECT_EQ(keyed_ack->seq, 3u);
    EXPECT_EQ(after_ack->seq, 4u);
    const auto got = sub.wait_count(message_on(channel), 4);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[2].payload_text(), "keyed");
    EXPECT_EQ(got[3].payload_text(), "after");
    EXPECT_EQ(sub.count(is(event_kind::gap)), 0u);
    EXPECT_EQ(reply_text(redis_call(nodes_[to]->port(), {"HGET", meta_key(channel), "s"})), "4");
}

// Where Redis refuses sharded pub/sub (before 7.0, or, here, an ACL user
// without SSUBSCRIBE and SPUBLISH), the routers' own channels are classic
// ones, and PUBLISH counts only the subscribers of the node that took it,
// so its count of 0 does not say that a router is gone: a router may
// listen on another node. Given the seeds in opposite orders, A and B
// listen, and A publishes, on different nodes; directs still cross both
// ways and are acked, and an address of a router that is not in the
// cluster is still refused at once.
// The README's least-privilege user on a Redis Cluster too: the slot map
// (CLUSTER SLOTS), the scripts' CLUSTER MYID, ASKING and sharded pub/sub
// for the routers' own channels are not among the dangerous commands.
// Channels on every master and a pattern cross routers, a resume reads a
// stream, a direct goes by SPUBLISH; no node refused a command.
TEST_F(RouterClusterOnRedisCluster, TheReadmesLeastPrivilegeUserServesARedisClusterToo) {
    for (const auto& n : nodes_)
        ASSERT_EQ(reply_text(redis_call(n->port(), {"ACL", "SETUSER", "hyperstreams", "on", ">hs-secret", "resetkeys",
                                                    "~hs:*", "allchannels", "+@all", "-@dangerous", "+info"})),
                  "OK");
    const std::vector<std::string> args = {"--cluster-redis-user", "hyperstreams", "--cluster-redis-password-file",
                                           write_temp_file("least-privilege-cluster", "hs-secret\n")};
    const auto with_id = [&](const std::string& id) {
        std::vector<std::string> v = args;
        v.insert(v.end(), {"--router-id", id});
        return v;
    };
    auto a = cluster_router(addresses(), with_id("lpa"));
    auto b = cluster_router(addresses(), with_id("lpb"));
    ASSERT_TRUE(a->ready() && b->ready()) << a->log();
    test_client pub(frontend_config(a->ws_url(), "pub"));
    test_client sub(frontend_config(b->ws_url(), "sub"));
    ASSERT_TRUE(pub.wait_ready() && sub.wait_ready());
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, sub.subscribe("lp.>"))));
    ASSERT_TRUE(eventually([&] {
        long long patterns = 0;
        for (const auto& node : nodes_) {
            const router::redis_reply r = redis_call(node->port(), {"PUBSUB", "NUMPAT"});
            if (r && r->type == REDIS_REPLY_INTEGER) patterns += r->integer;
        }
        return patterns >= 1;
    }, 10s));
    std::vector<recorded_event> acks;
    for (int i = 0; i < 12; ++i) {
        const auto one = publish_numbers(pub, "lp.c" + std::to_string(i), 1, 1);
        ASSERT_EQ(one.size(), 1u) << a->log();
        acks.push_back(one.front());
    }
    ASSERT_EQ(sub.wait_count([](const recorded_event& e) { return e.kind == event_kind::message; }, 12).size(), 12u);
    ASSERT_EQ(publish_numbers(pub, "lp.c0", 2, 2).size(), 1u);
    test_client late(frontend_config(b->ws_url(), "late"));
    ASSERT_TRUE(late.wait_ready());
    ASSERT_TRUE(late.wait_for(answer_to(subscribe_since(late, "lp.c0", channel_position{acks.front().epoch, 1}))));
    ASSERT_EQ(late.wait_count(message_on("lp.c0"), 1).size(), 1u) << "2, from the stream";
    // B listens on its channel as a sharded one: A's direct goes by SPUBLISH.
    ASSERT_TRUE(eventually([&] {
        for (const auto& node : nodes_) {
            const std::string v = reply_text(redis_call(node->port(), {"HGET", "hs:routers", "lpb"}));
            if (v.find(" sharded") != std::string::npos) return true;
        }
        return false;
    }, 10s));
    expect_answer(pub, send_direct(pub, sub.session_id(), "a direct"), errc{}, "a direct to B's client");
    ASSERT_TRUE(sub.wait_for(direct_of("a direct")));
    // Its sharded connection is named for it, on the node of its channel.
    std::size_t sharded = 0;
    for (const auto& node : nodes_)
        if (reply_text(redis_call(node->port(), {"CLIENT", "LIST"})).find(" name=hs:lpb:sharded ") != std::string::npos)
            ++sharded;
    EXPECT_EQ(sharded, 1u);
    for (const auto& n : nodes_) {
        const router::redis_reply refused = redis_call(n->port(), {"ACL", "LOG"});
        ASSERT_TRUE(refused && refused->type == REDIS_REPLY_ARRAY);
        EXPECT_EQ(refused->elements, 0u) << "a command refused on " << n->address();
    }
    for (const router_process* r : {a.get(), b.get()}) EXPECT_EQ(r->log().find("NOPERM"), std::string::npos) << r->log();
}

TEST_F(RouterClusterOnRedisCluster, DirectsReachARouterListeningOnAnotherNode) {
    for (const auto& n : nodes_)
        ASSERT_EQ(reply_text(redis_call(n->port(), {"ACL", "SETUSER", "noshard", "on", ">noshard-pass", "~*", "&*",
                                                    "+@all", "-ssubscribe", "-spublish"})),
                  "OK");
    std::vector<std::string> reversed = addresses();
    std::reverse(reversed.begin(), reversed.end());
    const std::string password = write_temp_file("redis-noshard-password", "noshard-pass\n");
    auto a = cluster_router(addresses(), {"--router-id", "ra", "--cluster-redis-user", "noshard",
                                          "--cluster-redis-password-file", password});
    auto b = cluster_router(reversed, {"--router-id", "rb", "--cluster-redis-user", "noshard",
                                       "--cluster-redis-password-file", password});
    ASSERT_TRUE(a->ready() && b->ready());
    EXPECT_TRUE(logged(*a, "event=redis.sharded_pubsub_refused", 1)) << a->log();
    const auto listens_on = [&](const std::string& channel) {
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (numsub(nodes_[i]->port(), channel) == 1) return i;
        return nodes_.size();
    };
    std::size_t a_node = nodes_.size();
    std::size_t b_node = nodes_.size();
    ASSERT_TRUE(eventually([&] {
        a_node = listens_on("hs:r:ra");
        b_node = listens_on("hs:r:rb");
        return a_node < nodes_.size() && b_node < nodes_.size();
    }, 10s));
    ASSERT_NE(a_node, b_node) << "the case under test: the routers listen on different nodes";
    // Each router knows the other (its membership), as a client would find it.
    ASSERT_TRUE(eventually([&] { return routers_known(*a) == 2; }, 10s));
    ASSERT_TRUE(eventually([&] { return routers_known(*b) == 2; }, 10s));

    test_client a1(frontend_config(a->ws_url(), "a1"));
    test_client b1(frontend_config(b->ws_url(), "b1"));
    ASSERT_TRUE(a1.wait_ready() && b1.wait_ready());
    expect_answer(a1, send_direct(a1, b1.session_id(), "a1 to b1"), errc{}, "a direct to B's client");
    ASSERT_TRUE(b1.wait_for(direct_of("a1 to b1")));
    expect_answer(b1, send_direct(b1, a1.session_id(), "b1 to a1"), errc{}, "a direct to A's client");
    ASSERT_TRUE(a1.wait_for(direct_of("b1 to a1")));
    // B's own verdict still comes back: no client of B has this address.
    expect_answer(a1, send_direct(a1, "rb-999999-00000000", "to nobody"), errc::no_such_address,
                  "an address B never gave");
    const auto asked = std::chrono::steady_clock::now();
    expect_answer(a1, send_direct(a1, "rz-1-00000000", "to no router"), errc::no_such_address,
                  "a router not in the cluster");
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s) << "refused at once, not at the answer's timeout";
    EXPECT_EQ(a1.count(direct_of("b1 to a1")), 1u);
    EXPECT_EQ(b1.count(direct_of("a1 to b1")), 1u);
    EXPECT_EQ(shardnumsub(nodes_[owner(router::redis_key_slot("hs:r:rb"))]->port(), "hs:r:rb"), 0);
    const std::string member = reply_text(
        redis_call(nodes_[owner(router::redis_key_slot("hs:routers"))]->port(), {"HGET", "hs:routers", "rb"}));
    EXPECT_FALSE(member.empty());
    EXPECT_FALSE(member.ends_with(" sharded")) << "B does not say it listens there: " << member;
    const auto status = nlohmann::json::parse(http_get(b->admin_address(), "/status").body, nullptr, false);
    EXPECT_EQ(status["cluster"].value("redis_sharded_pubsub", nlohmann::json()), false) << status.dump();
    a.reset();
    b.reset();
    for (const auto& n : nodes_) redis_call(n->port(), {"ACL", "DELUSER", "noshard"});
}

// On a Redis Cluster each router also listens on its own channel as a
// sharded channel (SSUBSCRIBE, on the node serving its slot), and says so
// in the membership; SPUBLISH's count there is of every listener. So a
// direct to a client of a router killed (SIGKILL), which the membership
// still names until its heartbeat expires (15 s by default), is refused
// with no_such_address at once rather than left unknown after the
// answer's timeout.
TEST_F(RouterClusterOnRedisCluster, ADirectToAKilledRoutersClientIsRefusedAtOnce) {
    auto a = cluster_router(addresses(), {"--router-id", "ra"});
    auto b = cluster_router(addresses(), {"--router-id", "rb"});
    ASSERT_TRUE(a->ready() && b->ready());
    const std::size_t inbox_node = owner(router::redis_key_slot("hs:r:rb"));
    ASSERT_LT(inbox_node, nodes_.size());
    ASSERT_TRUE(eventually([&] { return shardnumsub(nodes_[inbox_node]->port(), "hs:r:rb") == 1; }, 10s))
        << "B listens on its sharded channel, on the node of its slot";
    const std::size_t members_node = owner(router::redis_key_slot("hs:routers"));
    ASSERT_TRUE(eventually([&] {
        return reply_text(redis_call(nodes_[members_node]->port(), {"HGET", "hs:routers", "rb"})).ends_with(" sharded");
    }, 10s)) << "and says so in the membership";
    const auto status = nlohmann::json::parse(http_get(b->admin_address(), "/status").body, nullptr, false);
    ASSERT_TRUE(status.is_object() && status.contains("cluster")) << status.dump();
    EXPECT_EQ(status["cluster"].value("redis_sharded_pubsub", nlohmann::json()), true) << "and in /status";
    EXPECT_NE(http_get(b->admin_address(), "/metrics").body.find("hyperstreams_cluster_redis_sharded_pubsub 1\n"),
              std::string::npos);

    test_client a1(frontend_config(a->ws_url(), "a1"));
    test_client b1(frontend_config(b->ws_url(), "b1"));
    ASSERT_TRUE(a1.wait_ready() && b1.wait_ready());
    // Once A has read B's word, its directs to B are SPUBLISHed.
    const int sent = directs_until_spublished(a1, b1, nodes_[inbox_node]->port());
    ASSERT_GT(sent, 0);
    EXPECT_EQ(b1.wait_count(is(event_kind::direct), static_cast<std::size_t>(sent)).size(),
              static_cast<std::size_t>(sent));

    const std::string address = b1.session_id();
    ASSERT_EQ(b->signal_and_wait(SIGKILL, 5s), 128 + SIGKILL);
    ASSERT_EQ(routers_known(*a), 2u) << "the case under test: B is still in the membership A reads";
    const auto asked = std::chrono::steady_clock::now();
    expect_answer(a1, send_direct(a1, address, "to a killed router"), errc::no_such_address,
                  "a client of the killed router");
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 3s) << "refused at once, not at the answer's timeout";
    EXPECT_EQ(routers_known(*a), 2u);
}

// On a Redis Cluster the killed router is found gone as on a single
// server: nobody listens on its sharded channel.
TEST_F(RouterClusterOnRedisCluster, ADrainSendsItsClientsPastAKilledRouterToALiveOne) {
    expect_drain_skips_a_killed_router(addresses(), [&](const std::string& channel) { return numsub_all(channel); });
}

}  // namespace
}  // namespace hyperstreams::testing
