// What crossed between a client engine and a router, kept for assertions:
// frames that own their bytes, events with copies of what they view, and
// the queries tests ask of them. Shared by the fake router (fake_router.hpp)
// and the fixture that pairs engines with the real router core
// (tests/native/support/paired.hpp), so a test reads the same either way.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/client.hpp"
#include "hyperstreams/frame.hpp"

namespace hyperstreams::testing {

inline bytes_view bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string text(bytes_view b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
inline std::uint16_t code(errc e) { return static_cast<std::uint16_t>(e); }

// A frame that owns its bytes.
struct wire_frame {
    frame_kind kind{};
    std::uint8_t flags = 0;
    std::uint32_t id = 0;
    std::string name;
    std::string payload;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint32_t count = 0;
    std::uint32_t deadline_ms = 0;
    std::uint32_t credit = 0;
    std::uint16_t code = 0;

    static wire_frame from(const frame& f) {
        wire_frame w;
        w.kind = f.kind;
        w.flags = f.flags;
        w.id = f.id;
        w.name.assign(f.name);
        w.payload = text(f.payload);
        w.epoch = f.epoch;
        w.seq = f.seq;
        w.count = f.count;
        w.deadline_ms = f.deadline_ms;
        w.credit = f.credit;
        w.code = f.code;
        return w;
    }
    errc error() const { return static_cast<errc>(code); }
    frame view() const {
        frame f;
        f.kind = kind;
        f.flags = flags;
        f.id = id;
        f.name = name;
        f.payload = bytes(payload);
        f.epoch = epoch;
        f.seq = seq;
        f.count = count;
        f.deadline_ms = deadline_ms;
        f.credit = credit;
        f.code = code;
        return f;
    }
};

inline std::vector<std::uint8_t> encode_batch(const std::vector<wire_frame>& frames) {
    std::vector<std::uint8_t> out;
    for (const wire_frame& w : frames) EXPECT_FALSE(append(out, w.view()));
    return out;
}

inline std::vector<wire_frame> decode_batch(bytes_view message) {
    std::vector<wire_frame> frames;
    batch_reader reader(message);
    frame f;
    while (reader.next(f)) frames.push_back(wire_frame::from(f));
    EXPECT_FALSE(reader.error()) << reader.error().message();
    return frames;
}

// The frames of kind `k` in transport messages, in order.
inline std::vector<wire_frame> frames_of(const std::vector<std::vector<wire_frame>>& messages,
                                         frame_kind k) {
    std::vector<wire_frame> out;
    for (const auto& m : messages)
        for (const wire_frame& f : m)
            if (f.kind == k) out.push_back(f);
    return out;
}

// An event with copies of everything it views.
struct seen_event {
    event_kind kind{};
    operation op{};
    client_state state{};
    client_state previous{};
    std::uint8_t flags = 0;
    bool ends_operation = false;
    bool ends_subscription = false;
    std::uint16_t code = 0;
    std::uint32_t id = 0;
    std::uint32_t subscription = 0;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t count = 0;
    std::string name;
    std::string method;
    std::string text;
    std::string payload;
    std::vector<std::string> services;  // service_list: "name/method" per method
    std::uint32_t presence_count = 0;   // presence, join, leave
    std::vector<std::string> members;   // presence, join, leave: "address subject name" each
    time_ms at = 0;

    static seen_event from(const client_event& e, time_ms now) {
        seen_event s;
        s.kind = e.kind;
        s.op = e.op;
        s.state = e.state;
        s.previous = e.previous;
        s.flags = e.flags;
        s.ends_operation = e.ends_operation;
        s.ends_subscription = e.ends_subscription;
        s.code = e.code;
        s.id = e.id;
        s.subscription = e.subscription;
        s.epoch = e.epoch;
        s.seq = e.seq;
        s.count = e.count;
        s.name.assign(e.name);
        s.method.assign(e.method);
        s.text.assign(e.text);
        s.payload = testing::text(e.payload);
        if (e.services)
            for (const service_info& svc : e.services->services)
                for (const method_info& m : svc.methods)
                    s.services.push_back(std::string(svc.name) + "/" + std::string(m.name));
        presence_list_body list;
        if (e.kind == event_kind::presence && !decode_body(e.payload, list)) s.presence_count = list.count;
        presence_member member;
        if ((e.kind == event_kind::join || e.kind == event_kind::leave) && !decode_body(e.payload, member)) {
            s.presence_count = 1;
            list.members = {member};
        }
        for (const presence_member& m : list.members)
            s.members.push_back(std::string(m.address) + " " + std::string(m.subject) + " " + std::string(m.name));
        s.at = now;
        return s;
    }
};

// The payloads of `events`, in order.
inline std::vector<std::string> payloads(const std::vector<seen_event>& events) {
    std::vector<std::string> out;
    for (const seen_event& e : events) out.push_back(e.payload);
    return out;
}

// An engine's events, in order, and the questions tests ask of them.
struct event_log {
    std::vector<seen_event> events;

    std::vector<seen_event> of(event_kind k) const {
        std::vector<seen_event> out;
        for (const seen_event& e : events)
            if (e.kind == k) out.push_back(e);
        return out;
    }
    std::size_t count(event_kind k) const { return of(k).size(); }
    std::vector<seen_event> errors(operation op) const {
        std::vector<seen_event> out;
        for (const seen_event& e : events)
            if (e.kind == event_kind::error && e.op == op) out.push_back(e);
        return out;
    }
    std::vector<client_state> states() const {
        std::vector<client_state> out;
        for (const seen_event& e : events)
            if (e.kind == event_kind::state_changed) out.push_back(e.state);
        return out;
    }
};

// Every test client's configuration, unless it says otherwise.
inline client_config test_config() {
    client_config c;
    c.url = "ws://home";
    c.name = "test-client";
    c.token = "token-1";
    c.seed = 42;
    return c;
}

}  // namespace hyperstreams::testing
