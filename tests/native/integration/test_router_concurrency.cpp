// The real router binary on four I/O threads with many connections sending at
// once on both transports, so that the routing core is entered from several
// threads at the same time: every message reaches every subscriber exactly
// once, with the channel's sequence numbers in order and each publisher's
// messages in the order it sent them; every call gets its own answer, once.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

constexpr auto long_wait = 60s;  // the sanitizer build on a loaded machine

// Publishes "<who>:<k>" on `channel` for k in [first, first + count), in one batch.
void publish_run(test_client& c, const std::string& channel, const std::string& who, int first, int count) {
    c.run([&](client_engine& e, time_ms) {
        for (int k = first; k < first + count; ++k) {
            const auto bytes = bytes_of(who + ":" + std::to_string(k));
            EXPECT_FALSE(e.publish(channel, bytes).error);
        }
        return 0;
    });
}

// Publishes `total` messages in batches of 1 to 7 frames.
void publish_all(test_client& c, const std::string& channel, const std::string& who, int total) {
    for (int k = 0, size = 1; k < total; k += size, size = size % 7 + 1)
        publish_run(c, channel, who, k, std::min(size, total - k));
}

std::pair<std::string, int> split_payload(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return {text, -1};
    return {text.substr(0, colon), std::stoi(text.substr(colon + 1))};
}

TEST(RouterConcurrency, ManyConnectionsOnSeveralThreadsLoseNothingAndKeepTheOrder) {
    router_process router({"--threads", "4"});
    ASSERT_TRUE(router.ready());
    constexpr int frontend_publishers = 8;
    constexpr int backends = 2;  // they publish too, through the first I/O thread, which serves ZeroMQ
    constexpr int per_publisher = 400;
    constexpr int callers = 6;
    constexpr int calls_per_caller = 150;
    const std::string channel = "load.all";

    std::vector<std::unique_ptr<test_client>> serving;
    for (int b = 0; b < backends; ++b) {
        const std::string name = "backend" + std::to_string(b);
        auto c = std::make_unique<test_client>(backend_config(router.backend_url(), name));
        ASSERT_TRUE(c->wait_ready());
        c->set_handler([name](client_engine& e, const recorded_event& ev, time_ms) {
            if (ev.kind != event_kind::incoming_request) return;
            EXPECT_FALSE(e.respond(ev.id, bytes_of(name + "|" + ev.payload_text())));
        });
        const std::uint32_t id = c->register_service("echo", {{"m", method_kind::unary}});
        ASSERT_TRUE(c->wait_for(is(event_kind::ack, id)));
        serving.push_back(std::move(c));
    }
    std::vector<std::unique_ptr<test_client>> subscribers;
    for (int s = 0; s < 2; ++s) {
        auto c = std::make_unique<test_client>(frontend_config(router.ws_url(), "sub" + std::to_string(s)));
        ASSERT_TRUE(c->wait_ready());
        const std::uint32_t id = c->subscribe("load.>");
        ASSERT_TRUE(c->wait_for(is(event_kind::ack, id)));
        subscribers.push_back(std::move(c));
    }
    std::vector<std::unique_ptr<test_client>> publishers;
    for (int p = 0; p < frontend_publishers; ++p) {
        publishers.push_back(std::make_unique<test_client>(frontend_config(router.ws_url(), "pub" + std::to_string(p))));
        ASSERT_TRUE(publishers.back()->wait_ready());
    }
    std::vector<std::unique_ptr<test_client>> calling;
    for (int c = 0; c < callers; ++c) {
        calling.push_back(std::make_unique<test_client>(frontend_config(router.ws_url(), "caller" + std::to_string(c))));
        ASSERT_TRUE(calling.back()->wait_ready());
    }

    // Every client sends from its own thread; all start together.
    std::vector<std::map<std::uint32_t, std::string>> calls(callers);  // per caller (and its thread): id -> payload
    std::vector<std::thread> drivers;
    for (int p = 0; p < frontend_publishers; ++p)
        drivers.emplace_back([&, p] { publish_all(*publishers[p], channel, "pub" + std::to_string(p), per_publisher); });
    for (int b = 0; b < backends; ++b)
        drivers.emplace_back([&, b] { publish_all(*serving[b], channel, "backend" + std::to_string(b), per_publisher); });
    for (int c = 0; c < callers; ++c) {
        drivers.emplace_back([&, c] {
            for (int r = 0; r < calls_per_caller; ++r) {
                const std::string payload = "caller" + std::to_string(c) + ":" + std::to_string(r);
                const call_result k = calling[c]->run([&](client_engine& e, time_ms now) {
                    return e.request("echo", "m", bytes_of(payload), 30000, now);
                });
                EXPECT_FALSE(k.error);
                EXPECT_TRUE(calls[c].emplace(k.id, payload).second);
            }
        });
    }
    for (std::thread& t : drivers) t.join();

    const int total = (frontend_publishers + backends) * per_publisher;
    for (const auto& sub : subscribers) {
        const auto got = sub->wait_count(is(event_kind::message), total, long_wait);
        ASSERT_EQ(got.size(), static_cast<std::size_t>(total));
        std::map<std::string, int> next;  // publisher -> the k it sends next
        for (std::size_t i = 0; i < got.size(); ++i) {
            ASSERT_EQ(got[i].name, channel);
            ASSERT_EQ(got[i].seq, i + 1) << "every sequence number once, in order";
            const auto [who, k] = split_payload(got[i].payload_text());
            ASSERT_EQ(k, next[who]) << "the order of " << who << "'s messages";
            ++next[who];
        }
        EXPECT_EQ(next.size(), static_cast<std::size_t>(frontend_publishers + backends));
        EXPECT_EQ(sub->count(is(event_kind::gap)), 0u);
    }

    for (int c = 0; c < callers; ++c) {
        const auto answers = calling[c]->wait_count(is(event_kind::response), calls_per_caller, long_wait);
        ASSERT_EQ(answers.size(), static_cast<std::size_t>(calls_per_caller));
        std::set<std::uint32_t> answered;
        for (const recorded_event& a : answers) {
            EXPECT_TRUE(answered.insert(a.id).second) << "answered once: " << a.id;
            const auto it = calls[c].find(a.id);
            ASSERT_NE(it, calls[c].end()) << "an answer to a call it made: " << a.id;
            const std::string text = a.payload_text();
            const auto bar = text.find('|');
            ASSERT_NE(bar, std::string::npos) << text;
            EXPECT_EQ(text.substr(bar + 1), it->second) << "the answer to this call";
        }
        EXPECT_EQ(calling[c]->count(is(event_kind::error)), 0u);
    }
    std::set<std::string> served_by;
    for (int c = 0; c < callers; ++c)
        for (const recorded_event& a : calling[c]->events(is(event_kind::response)))
            served_by.insert(a.payload_text().substr(0, a.payload_text().find('|')));
    EXPECT_EQ(served_by.size(), static_cast<std::size_t>(backends)) << "both instances served";
}

// Lanes (docs/ARCHITECTURE.md): on two I/O threads, a connection gets what
// the core routed to it from the other thread (queued to its lane, drained
// there later) and what the core answers it on its own thread (drained at
// once) in the order the core made them. Each client here subscribes to the
// channel and publishes on it with an ack, while the others do the same
// from both threads. The core delivers a publication when it places it, so
// when a client's ack names position s, every message before s (most of them
// other clients', routed by the core on either thread) must have reached it
// already; and every message arrives once, in sequence order.
TEST(RouterConcurrency, AnAckComesAfterTheMessagesTheCoreRoutedBeforeItOnAnyThread) {
    router_process router({"--threads", "2"});
    ASSERT_TRUE(router.ready());
    constexpr int clients = 6;  // spread over both I/O threads
    constexpr int per_client = 200;
    const std::string channel = "lanes.mix";
    std::vector<std::unique_ptr<test_client>> mixed;
    for (int c = 0; c < clients; ++c) {
        auto client = std::make_unique<test_client>(frontend_config(router.ws_url(), "mix" + std::to_string(c)));
        ASSERT_TRUE(client->wait_ready());
        const std::uint32_t id = client->subscribe(channel);
        ASSERT_TRUE(client->wait_for(is(event_kind::ack, id)));
        mixed.push_back(std::move(client));
    }
    std::vector<std::thread> drivers;
    for (int c = 0; c < clients; ++c)
        drivers.emplace_back([&, c] {
            for (int k = 0; k < per_client; ++k)
                mixed[c]->publish(channel, "mix" + std::to_string(c) + ":" + std::to_string(k), true);
        });
    for (std::thread& t : drivers) t.join();

    const int total = clients * per_client;
    for (const auto& client : mixed) {
        ASSERT_EQ(client->wait_count(is(event_kind::message), total, long_wait).size(), static_cast<std::size_t>(total));
        ASSERT_EQ(client->wait_count(is(event_kind::ack), per_client + 1, long_wait).size(),
                  static_cast<std::size_t>(per_client + 1));  // and the subscribe's
        std::uint64_t seen = 0;  // the highest sequence number received so far
        std::size_t acks = 0;
        for (const recorded_event& e : client->events()) {
            if (e.kind == event_kind::message) {
                ASSERT_EQ(e.seq, seen + 1) << "every message once, in order";
                seen = e.seq;
            } else if (e.kind == event_kind::ack && e.seq != 0) {
                EXPECT_GE(seen + 1, e.seq) << "the ack of publication " << e.seq << " overtook message " << seen + 1;
                ++acks;
            }
        }
        EXPECT_EQ(acks, static_cast<std::size_t>(per_client));
        EXPECT_EQ(client->count(is(event_kind::gap)), 0u);
    }
}

}  // namespace
}  // namespace hyperstreams::testing
