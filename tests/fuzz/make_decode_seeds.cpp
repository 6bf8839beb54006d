// Writes the seed corpus of fuzz_decode: one valid transport message per
// file, covering every frame kind, each control body and a multi-frame batch.
// The seeds are committed in tests/fuzz/corpus/decode; regenerate them after a
// wire format change (see tests/fuzz/CMakeLists.txt for the commands).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"

namespace {

using namespace hyperstreams;
using bytes = std::vector<std::uint8_t>;

bytes_view as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

frame make(frame_kind kind, std::uint32_t id, std::string_view name = {},
           bytes_view payload = {}, std::uint8_t flags = 0) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    f.payload = payload;
    f.flags = flags;
    return f;
}

bool write_file(const std::string& dir, const std::string& name, const bytes& data) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    int failures = 0;
    auto emit = [&](const std::string& name, std::initializer_list<frame> frames) {
        bytes batch;
        for (const frame& f : frames)
            if (append(batch, f)) ++failures;
        if (!write_file(dir, name, batch)) ++failures;
    };
    auto body_bytes = [&](const auto& body) {
        bytes b;
        if (encode_body(body, b)) ++failures;
        return b;
    };

    hello_body hello;
    hello.role = client_role::backend;
    hello.name = "dashboard";
    hello.token = "eyJhbGciOiJIUzI1NiJ9.e30.sig";
    hello.resume_session = "s-41";
    const bytes hello_payload = body_bytes(hello);

    welcome_body welcome;
    welcome.session_id = "s-42";
    welcome.router_id = "router-1";
    welcome.heartbeat_ms = 15000;
    welcome.max_payload = 1 << 20;
    welcome.max_subscriptions = 1000;
    welcome.resumed = true;
    const bytes welcome_payload = body_bytes(welcome);

    register_body reg;
    reg.methods = {{"get", method_kind::unary}, {"watch", method_kind::stream}};
    const bytes register_payload = body_bytes(reg);

    service_list_body list;
    list.services = {{"factory.orders", 2, {{"get", method_kind::unary}}},
                     {"factory.telemetry", 1, {{"watch", method_kind::stream}}}};
    const bytes list_payload = body_bytes(list);

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

    emit("hello", {make(frame_kind::hello, 1, {}, hello_payload)});
    emit("welcome", {make(frame_kind::welcome, 1, {}, welcome_payload)});
    emit("register_service", {make(frame_kind::register_service, 2, "factory.orders", register_payload)});
    emit("service_list", {make(frame_kind::service_list, 3, {}, list_payload)});
    emit("subscribe_since", {subscribe});
    emit("publish_json_ack", {make(frame_kind::publish, 8, "factory.line1.telemetry",
                                   as_bytes(R"({"temp":21.5})"),
                                   frame_flags::json | frame_flags::ack_requested)});
    emit("message_gap_ack", {message, gap, ack});
    emit("request_response", {request, make(frame_kind::response, 11, {}, as_bytes("shipped"))});
    emit("stream", {stream_open, make(frame_kind::stream_item, 12, {}, as_bytes("t=1")), credit,
                    make(frame_kind::stream_end, 12), make(frame_kind::cancel, 13)});
    emit("error_goodbye_redirect", {error, goodbye, redirect});
    emit("direct_broadcast", {make(frame_kind::direct, 0, "s-42", as_bytes("hi")),
                              make(frame_kind::broadcast, 0, {}, as_bytes("all"))});
    emit("connection_misc", {make(frame_kind::ping, 77), make(frame_kind::pong, 77),
                             make(frame_kind::token_refresh, 14, {}, as_bytes("eyJ0.e30.sig")),
                             make(frame_kind::unsubscribe, 15, "factory.>"),
                             make(frame_kind::unregister_service, 16, "factory.orders"),
                             make(frame_kind::discover, 17)});

    if (failures != 0) {
        std::fprintf(stderr, "%d seeds could not be encoded or written\n", failures);
        return 1;
    }
    return 0;
}
