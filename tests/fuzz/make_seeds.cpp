// Writes the seed corpus of every fuzz target, one folder per target under
// the directory given (tests/fuzz/corpus): valid inputs that reach far into
// each target, for the fuzzer to mutate. Regenerate them after a change of
// the wire format or of a target's input format (see
// tests/fuzz/CMakeLists.txt for the commands); regression inputs kept from
// findings live beside them under names of their own and are not touched.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"
#include "script.hpp"
#include "tokens.hpp"

namespace {

using namespace hyperstreams;
using fuzzing::as_bytes;
using fuzzing::as_text;
using fuzzing::client_step;
using fuzzing::router_step;
using fuzzing::script_writer;
using bytes = std::vector<std::uint8_t>;

int failures = 0;

frame make(frame_kind kind, std::uint32_t id, std::string_view name = {}, bytes_view payload = {},
           std::uint8_t flags = 0) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    f.payload = payload;
    f.flags = flags;
    return f;
}

template <typename Body>
bytes body_bytes(const Body& body) {
    bytes b;
    if (encode_body(body, b)) ++failures;
    return b;
}

class corpus {
public:
    corpus(const std::filesystem::path& root, const char* target) : dir_(root / target) {
        std::filesystem::create_directories(dir_);
    }

    void write(const std::string& name, const bytes& data) const {
        std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
        if (!out) ++failures;
    }
    void write(const std::string& name, std::uint8_t first, bytes_view rest) const {
        bytes data{first};
        data.insert(data.end(), rest.begin(), rest.end());
        write(name, data);
    }
    void batch(const std::string& name, std::initializer_list<frame> frames) const {
        bytes data;
        for (const frame& f : frames)
            if (append(data, f)) ++failures;
        write(name, data);
    }

private:
    std::filesystem::path dir_;
};

hello_body a_hello() {
    hello_body hello;
    hello.role = client_role::backend;
    hello.name = "dashboard";
    hello.token = "eyJhbGciOiJIUzI1NiJ9.e30.sig";
    hello.resume_session = "s-41";
    return hello;
}

welcome_body a_welcome() {
    welcome_body welcome;
    welcome.session_id = "s-42";
    welcome.router_id = "router-1";
    welcome.heartbeat_ms = 15000;
    welcome.max_payload = 1 << 20;
    welcome.max_subscriptions = 1000;
    welcome.resumed = true;
    return welcome;
}

register_body a_registration() {
    register_body reg;
    reg.methods = {{"get", method_kind::unary}, {"watch", method_kind::stream}};
    return reg;
}

service_list_body a_service_list() {
    service_list_body list;
    list.services = {{"factory.orders", 2, {{"get", method_kind::unary}}},
                     {"factory.telemetry", 1, {{"watch", method_kind::stream}}}};
    return list;
}

presence_list_body a_presence_list() {
    presence_list_body list;
    list.count = 2;
    list.members = {{"r-2b7c.5", "alice", "dashboard"}, {"r-9f01.12", "", "hs-cli"}};
    return list;
}

// One valid transport message per file: every frame kind, each control
// body and a batch of several frames.
void decode_seeds(const corpus& c) {
    const bytes hello_payload = body_bytes(a_hello());
    const bytes welcome_payload = body_bytes(a_welcome());
    const bytes register_payload = body_bytes(a_registration());
    const bytes list_payload = body_bytes(a_service_list());

    frame subscribe = make(frame_kind::subscribe, 7, "factory.*.telemetry", {},
                           frame_flags::since | policy_flags(slow_policy::drop_oldest));
    subscribe.epoch = 3;
    subscribe.seq = 1200;
    frame message = make(frame_kind::message, 0, "factory.line1.telemetry",
                         as_bytes(R"({"temp":21.5})"), frame_flags::json);
    message.epoch = 3;
    message.seq = 1201;
    frame gap = make(frame_kind::gap, 0, "factory.line1.telemetry");
    gap.epoch = 3;
    gap.seq = 1202;
    gap.count = 5;
    frame ack = make(frame_kind::ack, 9);
    ack.epoch = 3;
    ack.seq = 1207;
    frame request = make(frame_kind::request, 11, "factory.orders/get", as_bytes("order-17"));
    request.deadline_ms = 2000;
    frame stream_open = make(frame_kind::stream_open, 12, "factory.telemetry/watch");
    stream_open.deadline_ms = 0;
    stream_open.credit = 16;
    frame credit = make(frame_kind::stream_credit, 12);
    credit.credit = 8;
    frame error = make(frame_kind::error, 11, {}, as_bytes("no instance of factory.orders"));
    error.code = static_cast<std::uint16_t>(errc::no_instance_available);
    frame goodbye = make(frame_kind::goodbye, 0, {}, as_bytes("maintenance"));
    goodbye.code = static_cast<std::uint16_t>(errc::going_away);
    frame redirect = make(frame_kind::redirect, 0, {}, as_bytes("wss://router-2.example:8443/ws"));
    redirect.code = static_cast<std::uint16_t>(errc::going_away);

    c.batch("hello", {make(frame_kind::hello, 1, {}, hello_payload)});
    c.batch("welcome", {make(frame_kind::welcome, 1, {}, welcome_payload)});
    c.batch("register_service", {make(frame_kind::register_service, 2, "factory.orders", register_payload)});
    c.batch("service_list", {make(frame_kind::service_list, 3, {}, list_payload)});
    c.batch("subscribe_since", {subscribe});
    c.batch("presence", {make(frame_kind::subscribe, 18, "factory.line1.status", {}, frame_flags::join_leave),
                         make(frame_kind::presence, 19, "factory.line1.status"),
                         make(frame_kind::presence_list, 19, {}, body_bytes(a_presence_list())),
                         make(frame_kind::join, 0, "factory.line1.status",
                              body_bytes(presence_member{"r-2b7c.5", "alice", "dashboard"})),
                         make(frame_kind::leave, 0, "factory.line1.status",
                              body_bytes(presence_member{"r-9f01.12", "", "hs-cli"}))});
    frame unsubscribed = make(frame_kind::unsubscribed, 0, "orders.alice.>");
    unsubscribed.code = static_cast<std::uint16_t>(errc::forbidden);
    c.batch("server_subscriptions",
            {make(frame_kind::hello, 1, {}, hello_payload, frame_flags::resubscribes),
             make(frame_kind::subscribed, 0, "orders.alice.>", {}, policy_flags(slow_policy::keep_latest)),
             unsubscribed,
             make(frame_kind::subscribe_client, 21, "orders.alice.>", as_bytes("r1-7-0000002a"),
                  policy_flags(slow_policy::drop_oldest)),
             make(frame_kind::unsubscribe_client, 22, "orders.alice.>", as_bytes("r1-7-0000002a"))});
    c.batch("publish_json_ack", {make(frame_kind::publish, 8, "factory.line1.telemetry",
                                      as_bytes(R"({"temp":21.5})"),
                                      frame_flags::json | frame_flags::ack_requested)});
    c.batch("message_gap_ack", {message, gap, ack});
    c.batch("request_response", {request, make(frame_kind::response, 11, {}, as_bytes("shipped"))});
    c.batch("stream", {stream_open, make(frame_kind::stream_item, 12, {}, as_bytes("t=1")), credit,
                       make(frame_kind::stream_end, 12), make(frame_kind::cancel, 13)});
    c.batch("error_goodbye_redirect", {error, goodbye, redirect});
    c.batch("direct_broadcast", {make(frame_kind::direct, 0, "s-42", as_bytes("hi")),
                                 make(frame_kind::broadcast, 0, {}, as_bytes("all"))});
    c.batch("connection_misc", {make(frame_kind::ping, 77), make(frame_kind::pong, 77),
                                make(frame_kind::token_refresh, 14, {}, as_bytes("eyJ0.e30.sig")),
                                make(frame_kind::unsubscribe, 15, "factory.>"),
                                make(frame_kind::unregister_service, 16, "factory.orders"),
                                make(frame_kind::discover, 17)});
}

// The selector byte of fuzz_bodies, then a body.
void body_seeds(const corpus& c) {
    c.write("hello", 0, body_bytes(a_hello()));
    c.write("welcome", 1, body_bytes(a_welcome()));
    c.write("register_service", 2, body_bytes(a_registration()));
    c.write("service_list", 3, body_bytes(a_service_list()));
    std::uint8_t reason[cancel_reason_size];
    write_cancel_reason(static_cast<std::uint16_t>(errc::deadline_exceeded), reason);
    c.write("routers", 4, body_bytes(routers_body{{{"r-2b7c", "tcp://10.0.0.12:7071"}}}));
    c.write("presence_member", 5, body_bytes(presence_member{"r-2b7c.5", "alice", "dashboard"}));
    c.write("presence_list", 6, body_bytes(a_presence_list()));
    c.write("cancel_reason", 8, bytes_view(reason, sizeof reason));
    publish_options options;
    options.key = "order-17";
    options.ttl_s = 60;
    const std::uint8_t message[] = {'m'};
    std::vector<std::uint8_t> payload;
    (void)encode_publish_payload(options, message, payload);
    std::vector<std::uint8_t> publish = {publish_option_flags(options)};
    publish.insert(publish.end(), payload.begin(), payload.end());
    c.write("publish_options", 7, publish);
}

std::string part(std::string_view text) { return router::jwt::base64url_encode(text); }

// fuzz_jwt: tokens as they come (mode 0), and header and claims for the
// target to sign (mode 1).
void jwt_seeds(const corpus& c) {
    const std::vector<std::string> tokens = fuzzing::router_tokens();
    for (std::size_t i = 0; i < tokens.size(); ++i) c.write("signed_" + std::to_string(i), 0, as_bytes(tokens[i]));
    const std::string claims = part(R"({"sub":"x","exp":1900000000})");
    c.write("rs256", 0, as_bytes(part(R"({"alg":"RS256"})") + "." + claims + "." + part(std::string(256, 'r'))));
    c.write("es256", 0, as_bytes(part(R"({"alg":"ES256","kid":"k1"})") + "." + claims + "." + part(std::string(64, 'e'))));
    c.write("alg_none", 0, as_bytes(part(R"({"alg":"none"})") + "." + claims + "."));
    c.write("crit", 0, as_bytes(part(R"({"alg":"HS256","crit":["b64"]})") + "." + claims + ".c2ln"));

    auto signed_claims = [&](const std::string& name, std::string_view header, std::string_view claims_text) {
        script_writer w;
        w.u8(1).str16(header).raw(as_bytes(claims_text));
        c.write(name, w.bytes());
    };
    const std::string header(fuzzing::hs256_header);
    signed_claims("grants_every_key", header,
                  R"({"sub":"alice","exp":1900000000,"nbf":1600000000,"iat":1600000000,)"
                  R"("hs":{"subscribe":["a.*",">"],"publish":["a.b.c"],"call":["svc/get","svc.*/*","other"],)"
                  R"("send":["*","r-1*","r-2-0b"],"broadcast":true,"register":["svc.>"],)"
                  R"("deny":{"subscribe":["a.secret"],"publish":["a.*.c"],"call":["svc/put"],"send":["r-9*"],)"
                  R"("broadcast":false,"register":["svc.x"]}}})");
    signed_claims("float_exp", header, R"({"sub":"bob","exp":1.9e9,"nbf":1e300})");
    signed_claims("huge_exp", header, R"({"sub":"bob","exp":1e300,"iat":-1e300})");
    signed_claims("time_claim_not_a_number", header, R"({"sub":"bob","exp":"soon","iat":null})");
    signed_claims("no_exp", header, R"({"sub":"bob"})");
    signed_claims("expired", header, R"({"sub":"bob","exp":1600000000})");
    signed_claims("bad_grants", header, R"({"sub":"bob","exp":1900000000,"hs":{"subscribe":["a..b"],"nope":1}})");
}

// The piece seed of fuzz_ws_frame_tracker, then the frames a client sends
// (masked) and a server sends (not masked).
void ws_frame_seeds(const corpus& c) {
    const bytes mask = {0x11, 0x22, 0x33, 0x44};
    // `wide`: the length in 64 bits whatever it is (allowed by the tracker, not by RFC 6455).
    auto frame_of = [&](std::uint8_t first, std::uint64_t length, bool masked, bool wide = false) {
        bytes f{first};
        const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
        if (length < 126 && !wide) {
            f.push_back(static_cast<std::uint8_t>(mask_bit | length));
        } else if (length <= 0xFFFF && !wide) {
            f.push_back(mask_bit | 126);
            for (int shift = 8; shift >= 0; shift -= 8) f.push_back(static_cast<std::uint8_t>(length >> shift));
        } else {
            f.push_back(mask_bit | 127);
            for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<std::uint8_t>(length >> shift));
        }
        if (masked) f.insert(f.end(), mask.begin(), mask.end());
        f.insert(f.end(), static_cast<std::size_t>(length), 0x5A);
        return f;
    };
    auto stream = [&](std::uint8_t seed, std::initializer_list<bytes> frames) {
        bytes s{seed};
        for (const bytes& f : frames) s.insert(s.end(), f.begin(), f.end());
        return s;
    };
    const std::uint8_t binary = 0x02, continuation = 0x00, close = 0x08, ping = 0x09, fin = 0x80;
    c.write("one_message", stream(1, {frame_of(fin | binary, 5, true)}));
    c.write("fragments_around_a_ping",
            stream(2, {frame_of(binary, 3, true), frame_of(fin | ping, 0, true), frame_of(continuation, 0, true),
                       frame_of(fin | continuation, 2, true)}));
    c.write("lengths_16_and_64_bits",
            stream(3, {frame_of(fin | binary, 200, true), frame_of(fin | binary, 300, false, true)}));
    c.write("messages_then_close",
            stream(4, {frame_of(fin | binary, 1, false), frame_of(fin | binary, 0, false), frame_of(fin | close, 2, true)}));
    c.write("truncated", bytes{5, fin | binary, 0x80 | 100, 0x11, 0x22, 0x33, 0x44, 1, 2, 3});
}

// fuzz_client scripts (script.hpp): the engine's calls made before the
// script have ids 1 (subscribe a.b), 2 (subscribe a.*), 3 (request
// svc/get), 4 (stream svc/watch), 5 (discover) and, for a backend, 6
// (register svc).
void client_seeds(const corpus& c) {
    auto frames = [](script_writer& w, std::initializer_list<std::pair<frame, std::uint32_t>> list) {
        w.u8(static_cast<std::uint8_t>(client_step::receive_frames)).u8(static_cast<std::uint8_t>(list.size() - 1));
        for (const auto& [f, ext] : list) w.frame_spec(f, ext);
    };
    auto advance = [](script_writer& w, std::uint16_t ms) { w.u8(static_cast<std::uint8_t>(client_step::advance)).u16(ms); };
    auto call = [](script_writer& w, std::uint8_t which, std::uint8_t arg, std::string_view data) {
        w.u8(static_cast<std::uint8_t>(client_step::call)).u8(which).u8(arg).str16(data);
    };
    const bytes list = body_bytes(a_service_list());
    {
        script_writer w;
        w.u8(4);  // frontend, welcomed by the harness
        auto message = [](std::string_view channel, std::uint64_t seq, std::string_view payload) {
            frame m = make(frame_kind::message, 0, channel, as_bytes(payload));
            m.seq = seq;
            return m;
        };
        frames(w, {{make(frame_kind::ack, 1), 7}, {make(frame_kind::ack, 2), 7}, {message("a.b", 1, "m1"), 7},
                   {message("a.c", 1, "m2"), 7}});
        frame gap = make(frame_kind::gap, 0, "a.c");
        gap.seq = 2;
        frames(w, {{message("a.b", 4, "m3"), 7}, {gap, 3}, {message("a.b", 1, "epoch"), 8}, {make(frame_kind::ping, 9), 0}});
        frames(w, {{make(frame_kind::response, 3, {}, as_bytes("r")), 0}, {make(frame_kind::stream_item, 4, {}, as_bytes("i")), 0},
                   {make(frame_kind::stream_end, 4), 0}, {make(frame_kind::service_list, 5, {}, list), 0}});
        frames(w, {{make(frame_kind::direct, 0, "s-2", as_bytes("d")), 0}, {make(frame_kind::broadcast, 0, "s-3"), 0},
                   {make(frame_kind::error, 0, {}, as_bytes("e")), static_cast<std::uint16_t>(errc::rate_limited)}});
        frames(w, {{make(frame_kind::subscribed, 0, "s.>", {}, policy_flags(slow_policy::drop_oldest)), 0},
                   {message("s.x", 1, "server"), 7},
                   {make(frame_kind::unsubscribed, 0, "s.>"), 0},
                   {make(frame_kind::subscribed, 0, "a.b"), 0}});
        call(w, 2, 1, "published");
        call(w, 3, 50, "asked");
        advance(w, 600);
        call(w, 1, 1, "");
        advance(w, 5000);
        c.write("frontend_ready", w.bytes());
    }
    {
        script_writer w;
        w.u8(0);  // frontend; the script answers the hello
        w.u8(static_cast<std::uint8_t>(client_step::receive_raw));
        bytes welcome;
        welcome_body body = a_welcome();
        body.heartbeat_ms = 1000;
        const bytes payload = body_bytes(body);
        if (append(welcome, make(frame_kind::welcome, 0, {}, payload))) ++failures;
        w.str16(welcome);
        advance(w, 1100);
        advance(w, 1100);
        frames(w, {{make(frame_kind::redirect, 0, {}, as_bytes("ws://elsewhere/ws")), static_cast<std::uint16_t>(errc::going_away)}});
        w.u8(static_cast<std::uint8_t>(client_step::receive_raw)).str16(welcome);
        frames(w, {{make(frame_kind::goodbye, 0, {}, as_bytes("bye")), static_cast<std::uint16_t>(errc::going_away)}});
        advance(w, 200);
        frames(w, {{make(frame_kind::error, 0, {}, as_bytes("who")), static_cast<std::uint16_t>(errc::unauthorized)}});
        call(w, 10, 0, "new-token");
        w.u8(static_cast<std::uint8_t>(client_step::lose_transport)).u8(1);
        advance(w, 3000);
        c.write("frontend_handshake_redirect_reject", w.bytes());
    }
    {
        script_writer w;
        w.u8(5);  // backend, welcomed by the harness
        frame request = make(frame_kind::request, 0x80000001, "svc/get", as_bytes("q"));
        frame open = make(frame_kind::stream_open, 0x80000002, "svc/watch", as_bytes("w"));
        frames(w, {{make(frame_kind::ack, 6), 0}, {request, 50}, {open, 2}});
        frames(w, {{make(frame_kind::stream_credit, 0x80000002), 3}, {make(frame_kind::cancel, 0x80000002), 0},
                   {make(frame_kind::request, 0x80000004, "other/get"), 0}});
        call(w, 12, 4, "item");
        call(w, 13, 3, "r-1-00000001");
        call(w, 13, 0, "r-1-00000001");
        frames(w, {{make(frame_kind::ack, 7), 0},
                   {make(frame_kind::error, 8, {}, as_bytes("no")), static_cast<std::uint16_t>(errc::not_subscribed)}});
        call(w, 11, 1, "");
        advance(w, 100);
        c.write("backend_serving", w.bytes());
    }
    {
        script_writer w;
        w.u8(6);  // frontend, output bounded to 200 bytes, welcomed by the harness
        for (int i = 0; i < 12; ++i) call(w, 2, static_cast<std::uint8_t>(i), std::string(40, 'p'));
        c.write("bounded_batches", w.bytes());
    }
}

// fuzz_router scripts (script.hpp). Backend call ids start at 0x80000001
// on each backend connection.
void router_seeds(const corpus& c) {
    auto step = [](script_writer& w, router_step s) -> script_writer& { return w.u8(static_cast<std::uint8_t>(s)); };
    auto hello = [&](script_writer& w, std::uint8_t slot, std::uint8_t how) { step(w, router_step::hello).u8(slot).u8(how); };
    auto frames = [&](script_writer& w, std::uint8_t slot, std::initializer_list<std::pair<frame, std::uint32_t>> list) {
        step(w, router_step::send_frames).u8(slot).u8(static_cast<std::uint8_t>(list.size() - 1));
        for (const auto& [f, ext] : list) w.frame_spec(f, ext);
    };
    auto advance = [&](script_writer& w, std::uint16_t ms) { step(w, router_step::advance).u16(ms); };
    constexpr std::uint8_t frontend = 0, backend = 1, anonymous = 2 * 10;
    const std::uint8_t since_drop_oldest = frame_flags::since | policy_flags(slow_policy::drop_oldest);
    const bytes reg = body_bytes(a_registration());
    {
        script_writer w;
        w.u8(0);
        hello(w, 0, frontend);
        hello(w, 1, frontend);
        frames(w, 0, {{make(frame_kind::subscribe, 1, "a.>"), 0}, {make(frame_kind::subscribe, 2, "a.b", {}, policy_flags(slow_policy::keep_latest)), 0}});
        frames(w, 1, {{make(frame_kind::publish, 1, "a.b", as_bytes("1"), frame_flags::ack_requested), 0},
                      {make(frame_kind::publish, 0, "a.b", as_bytes("2")), 0},
                      {make(frame_kind::publish, 0, "a.c", as_bytes("3"), frame_flags::json), 0}});
        frames(w, 1, {{make(frame_kind::subscribe, 3, "a.b", {}, since_drop_oldest), 7}, {make(frame_kind::ping, 4), 0}});
        advance(w, 1500);
        frames(w, 0, {{make(frame_kind::unsubscribe, 5, "a.>"), 0}, {make(frame_kind::discover, 6), 0}});
        step(w, router_step::close).u8(1);
        advance(w, 4000);
        c.write("pubsub", w.bytes());
    }
    {
        script_writer w;
        w.u8(0);
        hello(w, 1, backend);
        frames(w, 1, {{make(frame_kind::register_service, 1, "svc", reg), 0}});
        hello(w, 0, frontend);
        frames(w, 0, {{make(frame_kind::request, 1, "svc/get", as_bytes("q")), 500},
                      {make(frame_kind::stream_open, 2, "svc/watch"), 1},
                      {make(frame_kind::discover, 3), 0}});
        frames(w, 1, {{make(frame_kind::response, 0x80000001, {}, as_bytes("r")), 0},
                      {make(frame_kind::stream_item, 0x80000002, {}, as_bytes("i")), 0},
                      {make(frame_kind::stream_item, 0x80000002, {}, as_bytes("j")), 0}});
        frames(w, 0, {{make(frame_kind::stream_open, 4, "svc/watch"), 2}, {make(frame_kind::stream_credit, 4), 3},
                      {make(frame_kind::request, 5, "svc/get"), 0}, {make(frame_kind::cancel, 4), 0}});
        frames(w, 1, {{make(frame_kind::error, 0x80000005, {}, as_bytes("no")), static_cast<std::uint16_t>(errc::handler_failed)},
                      {make(frame_kind::unregister_service, 2, "svc"), 0}});
        advance(w, 2500);
        step(w, router_step::close).u8(1);
        c.write("calls", w.bytes());
    }
    {
        const std::vector<std::string> tokens = fuzzing::router_tokens();
        script_writer w;
        w.u8(1);  // tokens
        hello(w, 0, 0 << 1);  // alice
        hello(w, 2, 1 << 1);  // bob, expiring
        hello(w, 4, anonymous);
        hello(w, 7, backend | anonymous);  // the CURVE key's rights
        hello(w, 6, 2 << 1);  // expired
        frames(w, 2, {{make(frame_kind::subscribe, 1, "public.>"), 0}, {make(frame_kind::subscribe, 2, "private.x"), 0}});
        frames(w, 7, {{make(frame_kind::register_service, 1, "echo", reg), 0}});
        frames(w, 4, {{make(frame_kind::request, 1, "echo/get"), 0}, {make(frame_kind::publish, 2, "public.a", {}, frame_flags::ack_requested), 0}});
        frames(w, 2, {{make(frame_kind::token_refresh, 3, {}, as_bytes(tokens[0])), 0}});
        frames(w, 0, {{make(frame_kind::token_refresh, 4, {}, as_bytes(tokens[0])), 0}, {make(frame_kind::broadcast, 5, {}, as_bytes("b"), frame_flags::ack_requested), 0}});
        step(w, router_step::direct).u8(0).u8(4).u8(frame_flags::ack_requested).str16(std::string_view("hi"));
        advance(w, 6000);
        c.write("tokens", w.bytes());
    }
    {
        const std::vector<std::string> tokens = fuzzing::router_tokens();
        script_writer w;
        w.u8(1);  // tokens
        hello(w, 0, 0 << 1);            // alice: channels at hello
        hello(w, 1, backend | 0 << 1);  // a backend with every right
        hello(w, 2, 1 << 1);            // bob: public.news at hello
        hello(w, 4, anonymous);
        auto client_subscription = [&](std::uint8_t to, std::uint8_t flags, std::string_view pattern) {
            step(w, router_step::client_subscription).u8(1).u8(to).u8(flags).str8(pattern);
        };
        client_subscription(2, policy_flags(slow_policy::keep_latest), "public.a");
        client_subscription(2, 0, "public.a");   // already subscribed
        client_subscription(2, 0, "private.x");  // beyond bob's rights
        client_subscription(4, 0, "public.b");
        client_subscription(6, 0, "public.b");   // no such address
        client_subscription(2, 1, "public.a");   // unsubscribe
        client_subscription(2, 1, "public.a");   // not subscribed
        frames(w, 1, {{make(frame_kind::publish, 0, "public.b", as_bytes("x")), 0},
                      {make(frame_kind::publish, 0, "alerts.1"), 0}});
        frames(w, 0, {{make(frame_kind::subscribe_client, 9, "a.b", as_bytes("fuzz-1-0")), 0}});  // a frontend
        frames(w, 2, {{make(frame_kind::token_refresh, 3, {}, as_bytes(tokens[0])), 0}});
        advance(w, 6000);
        c.write("server_subscriptions", w.bytes());
    }
    {
        script_writer w;
        w.u8(2 | 0x30);  // small outboxes, disconnect by default
        hello(w, 0, frontend);
        hello(w, 1, frontend);
        frames(w, 0, {{make(frame_kind::subscribe, 1, "big"), 0}, {make(frame_kind::subscribe, 2, "big2", {}, policy_flags(slow_policy::drop_oldest)), 0}});
        const std::string payload(500, 'x');
        for (int i = 0; i < 3; ++i)
            frames(w, 1, {{make(frame_kind::publish, 0, "big2", as_bytes(payload)), 0}, {make(frame_kind::publish, 0, "big", as_bytes(payload)), 0}});
        c.write("slow_consumers", w.bytes());
    }
    {
        script_writer w;
        w.u8(8 | 4);  // drain redirects, publish rate limit
        hello(w, 1, backend);
        frames(w, 1, {{make(frame_kind::register_service, 1, "svc", reg), 0}});
        hello(w, 0, frontend);
        frames(w, 0, {{make(frame_kind::request, 1, "svc/get"), 3000}});
        for (int i = 0; i < 4; ++i) frames(w, 0, {{make(frame_kind::publish, 2, "a.b", {}, frame_flags::ack_requested), 0}});
        step(w, router_step::drain);
        hello(w, 2, frontend);
        advance(w, 500);
        step(w, router_step::hurry);
        c.write("drain", w.bytes());
    }
    {
        script_writer w;
        w.u8(0);
        bytes hello_batch;
        const bytes payload = body_bytes(a_hello());
        if (append(hello_batch, make(frame_kind::hello, 1, {}, payload))) ++failures;
        step(w, router_step::send_raw).u8(3).str16(hello_batch);
        step(w, router_step::send_raw).u8(0).str16(std::string_view("\x02garbage"));
        frames(w, 2, {{make(frame_kind::publish, 1, "a.b"), 0}});
        step(w, router_step::reject).u8(3).u16(static_cast<std::uint16_t>(errc::malformed_body));
        hello(w, 4, frontend);
        frames(w, 4, {{make(frame_kind::hello, 2, {}, payload), 0}, {make(frame_kind::message, 3, "a.b"), 0},
                      {make(frame_kind::response, 4), 0}, {make(frame_kind::register_service, 5, "svc", reg), 0}});
        advance(w, 2500);
        c.write("bad_peers", w.bytes());
    }
    {
        // Routers as one: what other routers publish on Redis reaches this
        // one's clients (the names index fuzz_router's redis_names: 0 a.b,
        // 2 public.a, 5 p.x; `what` picks the message).
        script_writer w;
        w.u8(128);
        auto redis = [&](std::uint8_t what, std::uint8_t flags, std::uint8_t name, std::uint8_t epoch,
                         std::uint8_t seq, std::string_view payload) {
            step(w, router_step::redis_message).u8(what).u8(flags).u8(name).u8(epoch).u8(seq).str16(payload);
        };
        hello(w, 0, frontend);
        hello(w, 2, frontend);
        frames(w, 0, {{make(frame_kind::subscribe, 1, "a.>"), 0},
                      {make(frame_kind::subscribe, 2, "p.x", {}, frame_flags::join_leave), 0}});
        frames(w, 2, {{make(frame_kind::subscribe, 1, "a.b"), 0}});
        redis(0, 0, 0, 0, 1, "one");
        redis(0, frame_flags::json, 0, 0, 2, R"({"t":21.5})");
        redis(1, 0, 0, 0, 3, std::string_view("\x01" "a" "\x02" "bc" "\x00", 6));  // a batch of three: seqs 3 to 5
        redis(0, 0, 0, 0, 2, "again");                                               // delivered already
        redis(0, 0, 0, 1, 1, "another epoch");
        redis(1, 0, 0, 1, 0, std::string_view("\x01" "z", 2));  // seq 0: refused
        const bytes member = body_bytes(presence_member{"fuzz-9-1", "carol", "hmi"});
        redis(3, 0, 5, 0, 0, as_text(member));  // a join
        redis(3, 1, 5, 0, 0, as_text(member));  // a leave
        redis(5, 0, 0, 0, 2, "a direct for slot 2");
        redis(5, frame_flags::ack_requested, 0, 0, 2, "asks for an ack");
        redis(6, static_cast<std::uint8_t>(1 | policy_flags(slow_policy::keep_latest)), 2, 0, 2, {});  // subscribed
        redis(6, 0, 2, 0, 2, {});  // and unsubscribed
        redis(7, 1, 0, 0, 1, "an answer to ticket 1");
        redis(7, 0, 0, 0, 2, std::string_view("\x13\x00" "failed", 8));
        redis(8, 0, 0, 0, 2, "a broadcast");
        redis(2, 0, 0, 0, 0, "\x80\x13garbage");
        redis(4, 0, 0, 0, 0, "d\x05");
        redis(9, 0, 0, 0, 0, "\x05other");
        frames(w, 0, {{make(frame_kind::publish, 3, "a.b", as_bytes("no Redis"), frame_flags::ack_requested), 0},
                      {make(frame_kind::broadcast, 4, {}, as_bytes("b"), frame_flags::ack_requested), 0}});
        redis(10, 1, 0, 0, 0, {});  // Redis up: the publishes go to the engine, which fails them
        frames(w, 0, {{make(frame_kind::publish, 5, "a.b", as_bytes("lost"), frame_flags::ack_requested), 0},
                      {make(frame_kind::publish, 6, "a.c", as_bytes("lost too"), frame_flags::ack_requested), 0}});
        frames(w, 2, {{make(frame_kind::subscribe, 2, "a.c", {}, since_drop_oldest), 1}});
        redis(10, 0, 0, 0, 0, {});  // and gone
        advance(w, 4000);
        c.write("cluster", w.bytes());
    }
}

}  // namespace

// Batches of publications as Redis carries them between routers
// (publication_batch.hpp): whole ones, and ones that do not add up.
void publication_batch_seeds(const corpus& c) {
    auto le = [](bytes& out, std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    };
    auto batch = [&](std::uint32_t epoch, std::uint64_t first_seq, std::uint32_t count,
                     std::initializer_list<std::string_view> payloads) {
        bytes out = {0x80, 0x13};
        le(out, epoch, 4);
        le(out, first_seq, 8);
        le(out, count, 4);
        for (const std::string_view p : payloads) {
            out.push_back(frame_flags::json);
            le(out, p.size(), 4);
            out.insert(out.end(), p.begin(), p.end());
        }
        return out;
    };
    c.write("three", batch(0x1234, 1, 3, {"1", R"({"t":21.5})", ""}));
    c.write("last_seqs", batch(9, 0xFFFFFFFFFFFFFFFEull, 2, {"a", "b"}));
    bytes cut = batch(9, 5, 2, {"ok", "cut short"});
    cut.resize(cut.size() - 3);
    c.write("cut_short", cut);
    c.write("count_too_big", batch(9, 5, 1000, {"x"}));
    c.write("trailing_bytes", batch(9, 5, 1, {"x", "y"}));
}

// What a router reads from Redis (fuzz_redis_wire): the first byte picks
// one read (0) or pieces (1), then RESP as Redis writes it.
void redis_wire_seeds(const corpus& c) {
    const auto resp = [&](const std::string& name, std::uint8_t pieces, std::string_view text) {
        c.write(name, pieces, as_bytes(text));
    };
    resp("cluster_slots", 0,
         "*2\r\n*3\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$40\r\n0123456789012345678901234567890123456789\r\n"
         "*4\r\n:8192\r\n:16383\r\n*2\r\n$0\r\n\r\n:7001\r\n*2\r\n$9\r\n127.0.0.1\r\n:7004\r\n");
    resp("redirects", 1, "-MOVED 3999 127.0.0.1:6381\r\n-ASK 12182 [::1]:7002\r\n-MOVED 1 :7003\r\n-MOVED 99999 x:1\r\n");
    resp("pushes", 1,
         "*3\r\n$9\r\nsubscribe\r\n$6\r\nhs:p:a\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$6\r\nhs:p:a\r\n$5\r\nhello\r\n"
         "*4\r\n$8\r\npmessage\r\n$6\r\nhs:p:*\r\n$6\r\nhs:p:b\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n+PONG\r\n");
    resp("sharded_pushes", 1,
         "*3\r\n$10\r\nssubscribe\r\n$6\r\nhs:r:a\r\n:1\r\n*3\r\n$8\r\nsmessage\r\n$6\r\nhs:r:a\r\n$1\r\nd\r\n"
         "*3\r\n$12\r\nsunsubscribe\r\n$6\r\nhs:r:a\r\n:0\r\n-MOVED 9886 127.0.0.1:7002\r\n"
         "-NOPERM this user has no permissions to run the 'ssubscribe' command\r\n");
    resp("answers", 0,
         "-NOSCRIPT No matching script. Please use EVAL.\r\n-ERR This instance has cluster support disabled\r\n"
         "*3\r\n:1\r\n:2\r\n:0\r\n$13\r\nepoch and seq\r\n*-1\r\n$-1\r\n+OK\r\n");
    resp("not_resp", 1, "*2\r\n:1\r\n!garbage\r\n");
    resp("address", 0, "redis://[::1]:6380");
}

// Configuration files (fuzz_config): empty, one of every section's kind of
// value, and ones the router refuses.
void config_seeds(const corpus& c) {
    const auto file = [&](const std::string& name, std::string_view text) { c.write(name, bytes(text.begin(), text.end())); };
    file("empty", "{}");
    file("most", R"({"listen": "0.0.0.0:7070", "backend": "tcp://*:7071", "threads": 2,
  "admin": {"listen": "127.0.0.1:0"}, "log": {"level": "debug", "format": "json"},
  "heartbeat": {"interval_ms": 1000, "timeout_ms": 3000},
  "limits": {"max_payload": 65536, "publish_rate": 100, "publish_burst": 10},
  "history": {"max_messages": 16, "max_bytes": 4096, "ttl_s": 60},
  "outbox": {"policy": "keep_latest", "max_bytes": 1048576},
  "channels": {"namespaces": [
    {"pattern": "factory.>", "history_size": 100, "latest": true, "presence": true, "join_leave": true,
     "policy": "drop_oldest", "max_message_bytes": 1024, "publish": "backends", "message_ttl_s": 30,
     "idempotency_window_s": 60},
    {"pattern": "alerts.*", "history_ttl_s": 10}]},
  "cluster": {"redis": ["redis://127.0.0.1:6379", "[::1]:6380"], "prefix": "plant_1",
              "advertise_ws": "ws://10.0.0.5:7070/ws", "advertise_backend": "tcp://10.0.0.5:7071"},
  "requests": {"balance": "round_robin", "default_deadline_ms": 5000},
  "drain": {"timeout_ms": 2000, "redirect_url": "wss://other.example/ws"},
  "auth": {"mode": "tokens", "hs256_secret": "0123456789abcdef0123456789abcdef",
           "anonymous": {"subscribe": ["public.>"]}},
  "ws": {"permessage_deflate": {"enabled": true, "threshold_bytes": 64}}})");
    file("refused", R"({"limits": {"max_payload": -1}, "unknown": true})");
    file("bad_namespace", R"({"channels": {"namespaces": [{"pattern": "a..b", "policy": "maybe"}]}})");
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus-root>\n", argv[0]);
        return 2;
    }
    const std::filesystem::path root = argv[1];
    decode_seeds(corpus(root, "decode"));
    body_seeds(corpus(root, "bodies"));
    jwt_seeds(corpus(root, "jwt"));
    ws_frame_seeds(corpus(root, "ws_frame_tracker"));
    publication_batch_seeds(corpus(root, "publication_batch"));
    redis_wire_seeds(corpus(root, "redis_wire"));
    config_seeds(corpus(root, "config"));
    client_seeds(corpus(root, "client"));
    router_seeds(corpus(root, "router"));
    if (failures != 0) {
        std::fprintf(stderr, "%d seeds could not be encoded or written\n", failures);
        return 1;
    }
    return 0;
}
