// A fake router wired to a client_engine, with a fake clock: no sockets, no
// threads, deterministic time. The router decodes the engine's output with
// the codec, plays the router's part of the protocol for the common frames
// (welcome, subscribe with resume, publish with sequence numbers and
// history, pong) and records everything; tests script the rest with push().
//
// It is for what the real router core never does: malformed or unexpected
// frames, ids it never gave out, answers it never sends, silence, and
// exact sequences a test must choose. It builds in wasm too, where the
// router core does not. The protocol as the real core plays it is tested
// with real engines paired to it: tests/native/support/paired.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/names.hpp"
#include "records.hpp"

namespace hyperstreams::testing {

// --- router frames -------------------------------------------------------------

inline wire_frame welcome_frame(std::string session = "s-1", std::uint32_t heartbeat_ms = 1000,
                                std::uint32_t max_payload = 65536,
                                std::uint32_t max_subscriptions = 0, std::uint16_t version = 1) {
    welcome_body b;
    b.version = version;
    b.session_id = session;
    b.router_id = "router-a";
    b.heartbeat_ms = heartbeat_ms;
    b.max_payload = max_payload;
    b.max_subscriptions = max_subscriptions;
    std::vector<std::uint8_t> body;
    EXPECT_FALSE(encode_body(b, body));
    wire_frame w;
    w.kind = frame_kind::welcome;
    w.payload = text(body);
    return w;
}
inline wire_frame message_frame(std::string channel, std::uint32_t epoch, std::uint64_t seq,
                                std::string payload = "m", std::uint8_t flags = 0) {
    wire_frame w;
    w.kind = frame_kind::message;
    w.name = std::move(channel);
    w.epoch = epoch;
    w.seq = seq;
    w.payload = std::move(payload);
    w.flags = flags;
    return w;
}
inline wire_frame gap_frame(std::string channel, std::uint32_t epoch, std::uint64_t first,
                            std::uint32_t count) {
    wire_frame w;
    w.kind = frame_kind::gap;
    w.name = std::move(channel);
    w.epoch = epoch;
    w.seq = first;
    w.count = count;
    return w;
}
inline wire_frame ack_frame(std::uint32_t id, std::uint32_t epoch = 0, std::uint64_t seq = 0) {
    wire_frame w;
    w.kind = frame_kind::ack;
    w.id = id;
    w.epoch = epoch;
    w.seq = seq;
    return w;
}
inline wire_frame error_frame(std::uint32_t id, errc e, std::string text_ = "no") {
    wire_frame w;
    w.kind = frame_kind::error;
    w.id = id;
    w.code = code(e);
    w.payload = std::move(text_);
    return w;
}
inline wire_frame goodbye_frame(errc e, std::string reason = "bye") {
    wire_frame w;
    w.kind = frame_kind::goodbye;
    w.code = code(e);
    w.payload = std::move(reason);
    return w;
}
inline wire_frame redirect_frame(std::string url) {
    wire_frame w;
    w.kind = frame_kind::redirect;
    w.code = code(errc::going_away);
    w.payload = std::move(url);
    return w;
}
inline wire_frame simple_frame(frame_kind kind, std::uint32_t id, std::string payload = {},
                               std::string name = {}) {
    wire_frame w;
    w.kind = kind;
    w.id = id;
    w.payload = std::move(payload);
    w.name = std::move(name);
    return w;
}

enum class open_mode { accept, refuse, manual };

// The router's side of one client connection, with channels and history
// that outlive connections (as a router's, or a Redis-backed cluster's).
struct fake_router {
    struct channel {
        std::uint32_t epoch = 1;
        std::uint64_t seq = 0;
        std::deque<std::pair<std::uint64_t, std::string>> history;
    };
    std::map<std::string, channel> channels;
    std::size_t history_limit = 100;

    // What the router does with a hello; the default welcomes it.
    std::function<std::vector<wire_frame>(const hello_body&)> on_hello;
    std::uint32_t heartbeat_ms = 1000;
    int sessions = 0;
    bool auto_ack = true;  // ack subscribe, unsubscribe, register, token_refresh
    bool silent = false;   // answers nothing, not even ping
    // While > 0: a subscribe with `since` is refused with
    // cluster_unavailable (a router whose Redis fails over), one less each time.
    int unavailable_resumes = 0;

    // per connection
    bool connected = false;
    std::vector<std::string> patterns;
    std::vector<wire_frame> outgoing;  // frames to deliver at the next pump

    std::vector<std::vector<wire_frame>> messages;  // every transport message received

    void connection_opened() {
        connected = true;
        patterns.clear();
        outgoing.clear();
    }
    void connection_closed() {
        connected = false;
        patterns.clear();
        outgoing.clear();
    }

    std::vector<wire_frame> frames_of(frame_kind k) const { return testing::frames_of(messages, k); }
    void forget_received() { messages.clear(); }

    bool subscribed(std::string_view channel_name) const {
        return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
            return pattern_matches(p, channel_name);
        });
    }

    // A message published on `channel_name` by some other client.
    void publish(const std::string& channel_name, std::string payload = "m") {
        channel& c = channels[channel_name];
        ++c.seq;
        c.history.emplace_back(c.seq, payload);
        if (c.history.size() > history_limit) c.history.pop_front();
        if (connected && subscribed(channel_name))
            outgoing.push_back(message_frame(channel_name, c.epoch, c.seq, std::move(payload)));
    }
    // The channel restarts (router restart without persistence): a new epoch.
    void restart_channel(const std::string& channel_name) {
        channel& c = channels[channel_name];
        ++c.epoch;
        c.seq = 0;
        c.history.clear();
    }

    void push(wire_frame f) { outgoing.push_back(std::move(f)); }

    void receive(const std::vector<wire_frame>& frames) {
        messages.push_back(frames);
        if (silent) return;
        for (const wire_frame& f : frames) handle(f);
    }

    void handle(const wire_frame& f) {
        switch (f.kind) {
            case frame_kind::hello: {
                hello_body h;
                EXPECT_FALSE(decode_body(bytes(f.payload), h));
                if (on_hello) {
                    for (wire_frame& r : on_hello(h)) outgoing.push_back(std::move(r));
                } else {
                    ++sessions;
                    outgoing.push_back(welcome_frame("s-" + std::to_string(sessions), heartbeat_ms));
                }
                break;
            }
            case frame_kind::ping: outgoing.push_back(simple_frame(frame_kind::pong, f.id)); break;
            case frame_kind::subscribe: {
                if ((f.flags & frame_flags::since) && unavailable_resumes > 0) {
                    --unavailable_resumes;
                    outgoing.push_back(error_frame(f.id, errc::cluster_unavailable, "Redis is unreachable"));
                    break;
                }
                patterns.push_back(f.name);
                if (auto_ack) outgoing.push_back(ack_frame(f.id));
                if (f.flags & frame_flags::since)
                    replay(f);
                else if (f.flags & frame_flags::latest)
                    replay_latest(f.name);
                break;
            }
            case frame_kind::unsubscribe:
                std::erase(patterns, f.name);
                if (auto_ack) outgoing.push_back(ack_frame(f.id));
                break;
            case frame_kind::publish: {
                channel& c = channels[f.name];
                const bool deliver = subscribed(f.name);
                ++c.seq;
                c.history.emplace_back(c.seq, f.payload);
                if (f.flags & frame_flags::ack_requested)
                    outgoing.push_back(ack_frame(f.id, c.epoch, c.seq));
                if (deliver)
                    outgoing.push_back(message_frame(f.name, c.epoch, c.seq, f.payload,
                                                     f.flags & frame_flags::json));
                break;
            }
            case frame_kind::register_service:
            case frame_kind::unregister_service:
            case frame_kind::token_refresh:
                if (auto_ack) outgoing.push_back(ack_frame(f.id));
                break;
            default:
                break;  // recorded; the test answers
        }
    }

    // subscribe with `latest`: the last message of each matching channel.
    void replay_latest(std::string_view pattern) {
        for (const auto& [name, c] : channels)
            if (!c.history.empty() && pattern_matches(pattern, name))
                outgoing.push_back(message_frame(name, c.epoch, c.seq, c.history.back().second, frame_flags::replayed));
    }

    // subscribe with `since` on an exact channel: replay what is newer, or
    // history_gone when the position fell out of the history.
    void replay(const wire_frame& sub) {
        channel& c = channels[sub.name];
        const bool same_epoch = sub.epoch == c.epoch;
        const std::uint64_t oldest = c.history.empty() ? c.seq + 1 : c.history.front().first;
        if (!same_epoch || sub.seq + 1 < oldest) {
            // The ack went out already in this fake; replace it with the error.
            std::erase_if(outgoing, [&](const wire_frame& w) {
                return w.kind == frame_kind::ack && w.id == sub.id;
            });
            outgoing.push_back(error_frame(sub.id, errc::history_gone, "position gone"));
            std::erase(patterns, sub.name);
            return;
        }
        for (const auto& [seq, payload] : c.history)
            if (seq > sub.seq)
                outgoing.push_back(
                    message_frame(sub.name, c.epoch, seq, payload, frame_flags::replayed));
    }
};

// The engine, the router and the clock, pumped until quiet.
struct rig : event_log {
    explicit rig(client_config config = test_config()) : engine(std::move(config)) {}

    client_engine engine;
    fake_router router;
    time_ms now = 1'000'000;
    open_mode open = open_mode::accept;
    std::set<std::string> unreachable;  // URLs the network refuses, whatever `open` says

    std::uint32_t transport = 0;  // the last open_transport id
    std::string transport_url;
    bool transport_up = false;
    std::vector<std::string> opened_urls;  // every open_transport, in order
    std::vector<time_ms> open_times;
    std::vector<std::uint8_t> received;  // the last message given to receive()

    // Drains events, performs actions, carries bytes both ways, until quiet.
    void pump() {
        for (int round = 0; round < 10000; ++round) {
            bool progress = drain();
            if (transport_up) {
                std::vector<std::uint8_t> out;
                while (engine.take_output(out)) {
                    router.receive(decode_batch(out));
                    progress = true;
                }
                if (!router.outgoing.empty()) {
                    std::vector<wire_frame> batch;
                    batch.swap(router.outgoing);
                    // Kept until the next receive: the events view it.
                    received = encode_batch(batch);
                    EXPECT_FALSE(engine.receive(received, now));
                    progress = true;
                }
            }
            if (!progress) return;
        }
        ADD_FAILURE() << "rig::pump did not settle";
    }

    bool drain() {
        bool any = false;
        client_event e;
        while (engine.poll_event(e)) {
            any = true;
            events.push_back(seen_event::from(e, now));
            if (e.kind == event_kind::open_transport) {
                transport = e.id;
                transport_url.assign(e.name);
                opened_urls.emplace_back(e.name);
                open_times.push_back(now);
                transport_up = false;
                const open_mode mode = unreachable.count(transport_url) ? open_mode::refuse : open;
                if (mode == open_mode::accept) {
                    router.connection_opened();
                    transport_up = true;
                    engine.transport_opened(e.id, now);
                } else if (mode == open_mode::refuse) {
                    engine.transport_closed(e.id, now);
                }
            } else if (e.kind == event_kind::close_transport && e.id == transport && transport_up) {
                // The host sends what is pending (a goodbye), then closes.
                std::vector<std::uint8_t> out;
                while (engine.take_output(out)) router.receive(decode_batch(out));
                transport_up = false;
                router.connection_closed();
            }
        }
        return any;
    }

    // start() and a handshake the router accepts; clears the records.
    void connect() {
        ASSERT_FALSE(engine.start(now));
        pump();
        ASSERT_EQ(engine.state(), client_state::ready);
        events.clear();
        router.forget_received();
    }

    // Moves the clock forward by `ms`, firing every deadline on the way.
    void advance(time_ms ms) {
        const time_ms target = now + ms;
        for (int i = 0; i < 100000; ++i) {
            const time_ms next = engine.next_deadline();
            if (next > target) break;
            now = std::max(now, next);
            engine.handle_timeout(now);
            pump();
        }
        now = target;
        pump();
    }

    // The host reports that the network dropped the transport.
    void drop_transport() {
        ASSERT_TRUE(transport_up);
        transport_up = false;
        router.connection_closed();
        engine.transport_closed(transport, now);
        pump();
    }

    // Delivers frames from the router now (outside its automatic replies).
    void deliver(std::vector<wire_frame> frames) {
        for (wire_frame& f : frames) router.push(std::move(f));
        pump();
    }

    std::vector<wire_frame> sent(frame_kind k) const { return router.frames_of(k); }
};

}  // namespace hyperstreams::testing
