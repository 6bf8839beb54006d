// The real router under a wire fuzzer, as a red team attacks it: several raw
// WebSocket and ZeroMQ connections send well-formed, mutated and random
// batches (before and after hello, every frame kind, text messages and
// multi-part ZeroMQ messages), and plain TCP connections well-formed,
// mutated and random HTTP requests (upgrades with every header the
// handshake reads, the dashboard's files, the admin endpoints, keep-alive
// and pipelined), to both listeners, while a well-behaved pair beside them (a
// ZeroMQ backend publishing, a WebSocket frontend subscribed) must lose
// nothing and never reconnect. At the end the router still serves and its
// log has no crash report; the ASan build runs the same test, so a memory
// error anywhere on these paths fails it.
//
// A fixed seed keeps the input sequence the same on every run; for a longer
// hunt: HS_WIRE_FUZZ_SECONDS=300 HS_WIRE_FUZZ_SEED=$RANDOM test_router_wire_fuzz
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "hyperstreams/body.hpp"
#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

unsigned long env_or(const char* name, unsigned long fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoul(v, nullptr, 10) : fallback;
}

// Well-formed batches of every kind a client may (or may not) send: the
// fuzzer mutates them, so that the mutations reach past the frame decoder
// into the routing core's handlers.
class input_maker {
public:
    explicit input_maker(std::uint32_t seed) : rng_(seed) {}

    std::uint32_t below(std::uint32_t n) { return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng_); }
    bool chance(std::uint32_t percent) { return below(100) < percent; }

    bytes batch() {
        std::vector<frame> frames;
        std::vector<std::string> names;
        std::vector<bytes> payloads;
        const std::uint32_t n = 1 + below(4);
        names.reserve(n);
        payloads.reserve(n);
        for (std::uint32_t i = 0; i < n; ++i) frames.push_back(one(names, payloads));
        return encode_batch(frames);
    }

    bytes mutate(bytes b) {
        const std::uint32_t edits = 1 + below(4);
        for (std::uint32_t e = 0; e < edits; ++e) {
            switch (below(7)) {
                case 0:
                    if (!b.empty()) b[below(static_cast<std::uint32_t>(b.size()))] ^= static_cast<std::uint8_t>(1u << below(8));
                    break;
                case 1: {  // a boundary value where lengths, kinds and counts live
                    static constexpr std::uint8_t edges[] = {0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF};
                    if (!b.empty()) b[below(static_cast<std::uint32_t>(b.size()))] = edges[below(6)];
                    break;
                }
                case 2:
                    if (!b.empty()) b.resize(below(static_cast<std::uint32_t>(b.size())));
                    break;
                case 3: {
                    const std::uint32_t extra = 1 + below(16);
                    for (std::uint32_t i = 0; i < extra; ++i) b.push_back(static_cast<std::uint8_t>(below(256)));
                    break;
                }
                case 4:  // one batch's frames twice
                    if (b.size() < 4096) b.insert(b.end(), b.begin(), b.end());
                    break;
                case 5:  // a header field of the first frame (kind, flags, name_len, id, body_len)
                    if (b.size() >= 12) b[1 + below(11)] = static_cast<std::uint8_t>(below(256));
                    break;
                default:  // a random body length in the first frame's header
                    if (b.size() >= 12) {
                        const std::uint32_t len = chance(50) ? below(64) : 0xFFFFFFFFu - below(16);
                        for (int k = 0; k < 4; ++k) b[8 + k] = static_cast<std::uint8_t>(len >> (8 * k));
                    }
                    break;
            }
        }
        return b;
    }

    bytes garbage() {
        bytes b(below(256));
        for (auto& x : b) x = static_cast<std::uint8_t>(below(256));
        return b;
    }

private:
    frame one(std::vector<std::string>& names, std::vector<bytes>& payloads) {
        static constexpr frame_kind kinds[] = {
            frame_kind::hello,         frame_kind::subscribe,        frame_kind::unsubscribe,
            frame_kind::publish,       frame_kind::request,          frame_kind::response,
            frame_kind::stream_open,   frame_kind::stream_item,      frame_kind::stream_end,
            frame_kind::stream_credit, frame_kind::cancel,           frame_kind::direct,
            frame_kind::broadcast,     frame_kind::register_service, frame_kind::unregister_service,
            frame_kind::discover,      frame_kind::token_refresh,    frame_kind::ping,
            frame_kind::pong,          frame_kind::error,            frame_kind::goodbye,
            frame_kind::ack,           frame_kind::message,          frame_kind::gap};
        static constexpr const char* channel_names[] = {"fuzz.a", "fuzz.*", "fuzz.>", ">", "*.*", "pair.x",
                                                        "svc/m", "svc/s", "svc", "", "a..b", "r1-1-00000000"};
        frame f;
        f.kind = kinds[below(sizeof kinds / sizeof kinds[0])];
        f.flags = static_cast<std::uint8_t>(chance(70) ? below(4) | (below(4) << 4) : below(256));
        f.id = chance(80) ? 1 + below(8) : static_cast<std::uint32_t>(rng_());
        names.emplace_back(channel_names[below(sizeof channel_names / sizeof channel_names[0])]);
        f.name = names.back();
        bytes payload;
        if (f.kind == frame_kind::hello) {
            hello_body h;
            h.role = chance(50) ? client_role::frontend : client_role::backend;
            h.name = "fuzz";
            h.resume_session = chance(20) ? "r1-1-00000000" : "";
            h.min_version = static_cast<std::uint16_t>(chance(90) ? 1 : below(4));
            h.max_version = static_cast<std::uint16_t>(chance(90) ? 1 : below(4));
            (void)encode_body(h, payload);
        } else if (f.kind == frame_kind::register_service) {
            register_body r;
            r.methods = {{"m", method_kind::unary}, {"s", method_kind::stream}};
            (void)encode_body(r, payload);
        } else {
            payload.resize(below(chance(95) ? 64 : 4096), static_cast<std::uint8_t>('x'));
        }
        payloads.push_back(std::move(payload));
        f.payload = payloads.back();
        f.epoch = chance(50) ? 0 : static_cast<std::uint32_t>(rng_());
        f.seq = chance(50) ? below(8) : rng_();
        f.count = below(8);
        f.deadline_ms = chance(50) ? 0 : below(100000);
        f.credit = chance(80) ? below(16) : static_cast<std::uint32_t>(rng_());
        f.code = static_cast<std::uint16_t>(below(600));
        return f;
    }

    std::mt19937 rng_;
};

// HTTP requests as a browser, a proxy or an attacker sends them: a method,
// a target (the dashboard's files, the admin endpoints, the WebSocket path,
// escapes out of the web root), a version, the headers the upgrade and the
// admin endpoints read, and a body; mutated or not.
std::string http_request(input_maker& in) {
    const auto pick = [&in](std::initializer_list<const char*> list) {
        return std::string(*(list.begin() + in.below(static_cast<std::uint32_t>(list.size()))));
    };
    const auto random_text = [&in](std::uint32_t max) {
        std::string out(in.below(max + 1), '\0');
        for (char& c : out) c = static_cast<char>(in.below(256));
        return out;
    };
    std::string target = pick({"/", "/ws", "/healthz", "/status", "/metrics", "/index.html", "/app.js",
                               "/%2e%2e/secret.txt", "/a/../../secret.txt", "/%", "/%zz", "/%00x", "*",
                               "http://127.0.0.1/ws", "//", "/ws?token=x", "/index.html#frag"});
    const bool upgrade = in.chance(50);
    if (upgrade && in.chance(70)) target = "/ws";
    if (in.chance(10)) target += random_text(40);
    if (in.chance(3)) target = "/" + std::string(in.below(20000), 'a');
    std::string r = pick({"GET", "GET", "GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE", "G\x01T", ""}) + " " +
                    target + " " + pick({"HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "http/1.1"}) + "\r\n";
    if (in.chance(90)) r += "Host: 127.0.0.1\r\n";
    if (upgrade) {
        r += "Connection: " + pick({"Upgrade", "upgrade, keep-alive", "close", "keep-alive"}) + "\r\n";
        r += "Upgrade: " + pick({"websocket", "WebSocket", "h2c", ""}) + "\r\n";
        r += "Sec-WebSocket-Version: " + pick({"13", "13", "8", "x", ""}) + "\r\n";
        r += "Sec-WebSocket-Key: " + pick({"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==", "short", ""}) + "\r\n";
        if (in.chance(40))
            r += "Sec-WebSocket-Extensions: " +
                 pick({"permessage-deflate", "permessage-deflate; client_max_window_bits",
                       "permessage-deflate; server_max_window_bits=8; client_no_context_takeover",
                       "permessage-deflate; server_max_window_bits=99", "permessage-deflate;;;=", "x-unknown"}) +
                 "\r\n";
        if (in.chance(30)) r += "Sec-WebSocket-Protocol: " + pick({"hyperstreams", "x, y", ""}) + "\r\n";
    } else if (in.chance(30)) {
        r += "Connection: " + pick({"keep-alive", "close"}) + "\r\n";
    }
    if (in.chance(20)) r += "Origin: " + pick({"http://127.0.0.1", "null", "http://evil.example"}) + "\r\n";
    if (in.chance(20)) r += "Authorization: " + pick({"Bearer x", "Bearer ", "Basic eDp5", ""}) + "\r\n";
    if (in.chance(10)) r += random_text(30) + ": " + random_text(60) + "\r\n";
    if (in.chance(2)) r += "X-Long: " + std::string(in.below(20000), 'h') + "\r\n";
    std::string body;
    if (in.chance(20)) {
        body = random_text(200);
        if (in.chance(50)) {
            r += "Content-Length: " + std::to_string(in.chance(80) ? body.size() : in.below(100000)) + "\r\n";
        } else {
            r += "Transfer-Encoding: chunked\r\n";
            body = pick({"5\r\nhello\r\n0\r\n\r\n", "zz\r\n", "FFFFFFFFFFFFFFFF\r\n"}) + body;
        }
    }
    r += "\r\n" + body;
    if (in.chance(30)) {
        bytes b(r.begin(), r.end());
        b = in.mutate(std::move(b));
        r.assign(b.begin(), b.end());
    }
    return r;
}

// One fuzzing plain TCP connection to an HTTP listener: one request, or a
// few pipelined on a kept-alive connection, what comes back read or not.
struct http_fuzzer {
    std::string address;
    std::unique_ptr<raw_tcp> tcp;
    bool leaked = false;  // an answer held the file outside the web root

    void send(input_maker& in) {
        if (!tcp || !tcp->connected() || in.chance(60)) tcp = std::make_unique<raw_tcp>(address);
        std::string requests = http_request(in);
        if (in.chance(20)) requests += http_request(in);
        if (!tcp->send(requests, 1s)) {
            tcp.reset();
            return;
        }
        if (in.chance(50) && tcp->read_some(1ms).find("top secret") != std::string::npos) leaked = true;
    }
};

// One fuzzing WebSocket connection, opened again when the router closed it.
struct ws_fuzzer {
    std::string address;
    std::unique_ptr<raw_ws> ws;
    std::size_t reopened = 0;

    void send(input_maker& in, const bytes& message, bool text) {
        if (!ws || !ws->connected()) {
            ws = std::make_unique<raw_ws>(address);
            ++reopened;
            if (!ws->connected()) return;
            if (in.chance(80)) (void)ws->send(hello_bytes(in.chance(90) ? client_role::frontend : client_role::backend, "fuzz"), 1s);
        }
        bool ok = false;
        if (text) {
            ok = ws->send_text(std::string(message.begin(), message.end()), 1s);
        } else {
            ok = ws->send(message, 1s);
        }
        // WebSocket pings too, which Beast answers on its own beside the
        // router's writes (tracked_socket in ws_session.cpp; the stalled
        // write a pong must wait for is RouterRobustness's
        // PongsWaitForTheEndOfTheMessageBeingWritten).
        if (ok && in.chance(10)) ok = ws->ping("fuzz", 1s);
        if (!ok) ws.reset();
        // What the router answers is read now and then, without waiting.
        else if (in.chance(20)) (void)ws->read(1ms);
    }
};

// One fuzzing DEALER; reconnects (a new routing id) now and then.
struct zmq_fuzzer {
    zmq::context_t& ctx;
    std::string endpoint;
    std::optional<zmq::socket_t> socket;

    void send(input_maker& in, const std::vector<bytes>& parts) {
        if (!socket || in.chance(2)) {
            socket.emplace(ctx, zmq::socket_type::dealer);
            socket->set(zmq::sockopt::linger, 0);
            socket->set(zmq::sockopt::sndhwm, 100);
            socket->connect(endpoint);
            if (in.chance(80)) {
                const bytes hello = hello_bytes(in.chance(90) ? client_role::backend : client_role::frontend, "fuzz");
                (void)socket->send(zmq::buffer(hello), zmq::send_flags::dontwait);
            }
        }
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const auto more = i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
            if (!socket->send(zmq::buffer(parts[i]), more | zmq::send_flags::dontwait)) return;  // at its HWM
        }
        zmq::message_t ignored;
        while (socket->recv(ignored, zmq::recv_flags::dontwait)) {
        }
    }
};

TEST(RouterWireFuzz, MutatedInputOnBothTransportsCostsAWellBehavedPairNothing) {
    const auto seconds = std::chrono::seconds(env_or("HS_WIRE_FUZZ_SECONDS", 4));
    const auto seed = static_cast<std::uint32_t>(env_or("HS_WIRE_FUZZ_SEED", 20261204));
    SCOPED_TRACE(::testing::Message() << "HS_WIRE_FUZZ_SEED=" << seed);

    // The dashboard's files, and one outside them that no request may read.
    const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                      ("hs-wire-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "web");
    std::ofstream(dir / "web" / "index.html") << "<!doctype html><title>dash</title>";
    std::ofstream(dir / "web" / "app.js") << "console.log(1)";
    std::ofstream(dir / "secret.txt") << "top secret";
    struct remove_dir {
        std::filesystem::path path;
        ~remove_dir() { std::filesystem::remove_all(path); }
    } cleanup{dir};

    router_process router({"--log-level", "warn", "--web", (dir / "web").string()});
    ASSERT_TRUE(router.ready());

    // The well-behaved pair: a backend publishes over ZeroMQ, a frontend
    // subscribed over WebSocket must get every message, in order.
    test_client subscriber(frontend_config(router.ws_url(), "pair-sub"));
    test_client publisher(backend_config(router.backend_url(), "pair-pub"));
    ASSERT_TRUE(subscriber.wait_ready() && publisher.wait_ready());
    const std::uint32_t sub = subscriber.subscribe("pair.m");
    ASSERT_TRUE(subscriber.wait_for(is(event_kind::ack, sub)));
    const std::size_t subscriber_states = subscriber.count(is(event_kind::state_changed));
    const std::size_t publisher_states = publisher.count(is(event_kind::state_changed));
    std::size_t published = 0;

    input_maker in(seed);
    std::vector<ws_fuzzer> ws(4);
    for (auto& w : ws) w.address = router.http_address();
    std::vector<http_fuzzer> http(2);
    http[0].address = router.http_address();
    http[1].address = router.admin_address() == "off" ? router.http_address() : router.admin_address();
    zmq::context_t ctx(1);
    std::vector<zmq_fuzzer> dealers;
    for (int i = 0; i < 4; ++i) dealers.push_back(zmq_fuzzer{ctx, router.backend_url(), std::nullopt});

    std::size_t sent = 0;
    const auto until = std::chrono::steady_clock::now() + seconds;
    for (std::size_t round = 0; round < 1'000'000 && std::chrono::steady_clock::now() < until; ++round) {
        bytes message;
        switch (in.below(10)) {
            case 0: message = in.garbage(); break;
            case 1:
            case 2: message = in.batch(); break;
            default: message = in.mutate(in.batch()); break;
        }
        if (in.chance(10)) {
            http[in.below(2)].send(in);
        } else if (in.chance(50)) {
            ws[in.below(4)].send(in, message, in.chance(3));
        } else {
            std::vector<bytes> parts{message};
            if (in.chance(3)) parts.push_back(in.garbage());
            dealers[in.below(4)].send(in, parts);
        }
        ++sent;
        if (round % 50 == 0) {
            publisher.publish("pair.m", std::to_string(published));
            ++published;
        }
    }

    const auto got = subscriber.wait_count(is(event_kind::message), published, 10s);
    ASSERT_EQ(got.size(), published) << "the well-behaved pair lost messages (" << sent << " fuzz messages sent)";
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].payload_text(), std::to_string(i));
        EXPECT_EQ(got[i].seq, got[0].seq + i);
    }
    EXPECT_EQ(subscriber.count(is(event_kind::gap)), 0u);
    EXPECT_EQ(subscriber.state(), client_state::ready);
    EXPECT_EQ(publisher.state(), client_state::ready);
    EXPECT_EQ(subscriber.count(is(event_kind::state_changed)), subscriber_states) << "the pair never reconnected";
    EXPECT_EQ(publisher.count(is(event_kind::state_changed)), publisher_states);

    EXPECT_EQ(http_get(router.http_address(), "/healthz").status, 200);
    for (const http_fuzzer& h : http) EXPECT_FALSE(h.leaked) << "a file outside the web root was served";
    const http_result index = http_get(router.http_address(), "/");
    EXPECT_EQ(index.status, 200);
    EXPECT_EQ(index.body, "<!doctype html><title>dash</title>");
    const std::string log = router.log();
    EXPECT_EQ(log.find("core.crash"), std::string::npos) << log.substr(0, 4000);
    EXPECT_EQ(log.find("AddressSanitizer"), std::string::npos);
    EXPECT_EQ(log.find("runtime error"), std::string::npos);
    EXPECT_EQ(router.stop(), 0) << "the router drains and exits cleanly after the attack";
}

}  // namespace
}  // namespace hyperstreams::testing
