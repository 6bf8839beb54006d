// The real router binary under bad input and slow consumers: malformed,
// oversize and forbidden frames on both transports get a named error (and a
// close where the connection cannot go on); a subscriber that stops reading
// costs bounded memory, learns what it lost, and costs the others nothing.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

#include "hyperstreams/body.hpp"
#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

// The router still routes for others: a fresh pair of clients exchanges a message.
void expect_router_serves(router_process& router) {
    test_client sub(frontend_config(router.ws_url(), "witness-sub"));
    test_client pub(frontend_config(router.ws_url(), "witness-pub"));
    ASSERT_TRUE(sub.wait_ready() && pub.wait_ready());
    const std::uint32_t s = sub.subscribe("witness");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    pub.publish("witness", "still here");
    EXPECT_TRUE(sub.wait_for(is(event_kind::message)));
    EXPECT_EQ(http_get(router.http_address(), "/healthz").status, 200);
}

frame simple(frame_kind kind, std::uint32_t id = 0, std::string_view name = {}) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    return f;
}

// A register_service of `service` with one unary method, as one batch.
std::vector<std::uint8_t> register_batch(std::uint32_t id, std::string_view service, std::string_view method) {
    register_body body;
    body.methods = {{method, method_kind::unary}};
    std::vector<std::uint8_t> payload;
    (void)encode_body(body, payload);
    frame reg = simple(frame_kind::register_service, id, service);
    reg.payload = payload;
    return encode_batch({reg});
}

TEST(RouterRobustness, MalformedWebSocketInputGetsANamedErrorAndAClose) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client bystander(frontend_config(router.ws_url(), "bystander"));
    ASSERT_TRUE(bystander.wait_ready());

    struct bad_input {
        std::vector<std::uint8_t> bytes;
        errc code;
    };
    std::vector<std::uint8_t> truncated = encode_batch({simple(frame_kind::ping, 1)});
    truncated.push_back(1);
    truncated.push_back(0x04);
    const std::vector<bad_input> inputs = {
        {{1, 0xEE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, errc::unknown_kind},
        {{9, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, errc::unsupported_version},
        {{1, 0x04, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0}, errc::length_out_of_bounds},
        {truncated, errc::trailing_bytes},
    };
    for (const bad_input& in : inputs) {
        raw_ws ws(router.http_address());
        ASSERT_TRUE(ws.join());
        ASSERT_TRUE(ws.send(in.bytes));
        const auto error = ws.read_until(frame_kind::error);
        ASSERT_TRUE(error) << errc_name(static_cast<std::uint16_t>(in.code));
        EXPECT_EQ(static_cast<errc>(error->code), in.code);
        const auto bye = ws.read_until(frame_kind::goodbye);
        ASSERT_TRUE(bye);
        EXPECT_EQ(static_cast<errc>(bye->code), in.code);
        EXPECT_FALSE(ws.read());
        EXPECT_TRUE(ws.closed());
        EXPECT_EQ(ws.close_code(), 1002) << "WebSocket protocol error";
        EXPECT_EQ(ws.close_reason(), errc_name(static_cast<std::uint16_t>(in.code)));
    }
    EXPECT_EQ(bystander.state(), client_state::ready) << "no other client notices";
    expect_router_serves(router);
}

// A browser's ws.send("x") once killed the router (Beast's UTF-8 check read
// through a null pointer): a text message, before or after hello, empty,
// invalid UTF-8 or long, is refused with a named error and 1003, and no
// other client notices.
TEST(RouterRobustness, ATextMessageIsRefusedWithANamedErrorAndTheRouterLives) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client bystander(frontend_config(router.ws_url(), "bystander"));
    ASSERT_TRUE(bystander.wait_ready());

    const std::vector<std::string> texts = {"x", "", "\xC3", std::string(100000, 'a')};
    for (const bool after_hello : {false, true}) {
        for (const std::string& text : texts) {
            SCOPED_TRACE(::testing::Message() << "after hello: " << after_hello << ", " << text.size() << " bytes");
            raw_ws ws(router.http_address());
            ASSERT_TRUE(ws.connected());
            if (after_hello) {
                ASSERT_TRUE(ws.join());
            }
            ASSERT_TRUE(ws.send_text(text));
            const auto error = ws.read_until(frame_kind::error);
            ASSERT_TRUE(error);
            EXPECT_EQ(static_cast<errc>(error->code), errc::protocol_violation);
            const auto bye = ws.read_until(frame_kind::goodbye);
            ASSERT_TRUE(bye);
            EXPECT_EQ(static_cast<errc>(bye->code), errc::protocol_violation);
            EXPECT_FALSE(ws.read());
            EXPECT_TRUE(ws.closed());
            EXPECT_EQ(ws.close_code(), 1003) << "WebSocket unsupported data";
        }
    }
    EXPECT_EQ(bystander.state(), client_state::ready) << "no other client notices";
    expect_router_serves(router);
}

// A 43-character Japanese name is 129 bytes: cut at 128 in the middle of a
// character, it once made /status throw inside the core and abort the
// router. Names are cut between characters, a hello whose strings are not
// UTF-8 is refused, and the view and every log line stay valid.
TEST(RouterRobustness, NamesInViewsAndLogsAreValidUtf8) {
    router_process router({"--log-format", "json", "--log-level", "debug"});
    ASSERT_TRUE(router.ready());
    std::string name;
    for (int i = 0; i < 43; ++i) name += "\xE5\xB7\xA5";  // 工
    test_client japanese(frontend_config(router.ws_url(), name));
    ASSERT_TRUE(japanese.wait_ready());

    raw_ws invalid(router.http_address());
    ASSERT_TRUE(invalid.connected());
    ASSERT_TRUE(invalid.send(hello_bytes(client_role::frontend, "bad\xE5\xB7")));
    const auto refused = invalid.read_until(frame_kind::error);
    ASSERT_TRUE(refused);
    EXPECT_EQ(static_cast<errc>(refused->code), errc::malformed_body);

    const http_result status = http_get(router.admin_address(), "/status");
    ASSERT_EQ(status.status, 200);
    const auto doc = nlohmann::json::parse(status.body, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << status.body;
    ASSERT_EQ(doc["connections"].size(), 1u) << status.body;
    EXPECT_EQ(doc["connections"][0]["name"], name.substr(0, 126)) << "cut after 42 whole characters";

    router.wait_for_log("malformed_body");
    std::istringstream lines(router.log());
    std::size_t parsed = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] != '{') continue;  // the ready line on stdout is plain text
        EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line;
        ++parsed;
    }
    EXPECT_GT(parsed, 2u);
    expect_router_serves(router);
}

// Polls the admin listener's /metrics until it has the sample `line` (name,
// labels and value) or `timeout` passes.
bool metrics_show(const router_process& router, const std::string& line, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (http_get(router.admin_address(), "/metrics", 1s).body.find(line + "\n") != std::string::npos) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
}

TEST(RouterRobustness, OutOfDescriptorsTheListenerBacksOffAndServesAgainOnceTheyAreFree) {
#if defined(__SANITIZE_ADDRESS__)
    // The sanitizers' runtime needs descriptors of its own (UBSan checks a
    // pointer through a pipe before it reports): with none left it reports
    // the router's valid boost::system categories as invalid objects. The
    // native-debug stage runs this test.
    GTEST_SKIP() << "out of descriptors, the sanitizer runtime cannot work";
#endif
    // About 30 descriptors are the router's own; idle connections take the rest.
    launch_options options;
    options.max_open_files = 64;
    router_process router({"--threads", "1"}, options);
    ASSERT_TRUE(router.ready());
    std::vector<std::unique_ptr<idle_tcp>> idle;
    for (int i = 0; i < 100; ++i) {
        idle.push_back(std::make_unique<idle_tcp>(router.http_address()));
        ASSERT_TRUE(idle.back()->connected()) << "the kernel's backlog takes what the router cannot";
    }
    ASSERT_NE(router.wait_for_log("event=http.accept_failed", 10s).find("event=http.accept_failed"),
              std::string::npos);
    // The window over which the failures must cost a few lines (a spinning
    // accept loop writes tens of thousands a second).
    std::this_thread::sleep_for(2s);
    const std::string during = router.log();
    EXPECT_LE(occurrences(during, "event=http.accept_failed"), 5u) << "one line a second at most";
    EXPECT_NE(during.find("error=\"Too many open files\""), std::string::npos) << during.substr(0, 2000);

    idle.clear();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    int health = 0;
    while (health != 200 && std::chrono::steady_clock::now() < deadline)
        health = http_get(router.http_address(), "/healthz", 1s).status;
    EXPECT_EQ(health, 200) << "the router serves again once descriptors are free";
    EXPECT_NE(router.wait_for_log("event=http.accept_recovered").find("event=http.accept_recovered"),
              std::string::npos);
    const std::string metrics = http_get(router.admin_address(), "/metrics").body;
    EXPECT_EQ(metrics.find("hyperstreams_accept_failures_total{listener=\"main\"} 0\n"), std::string::npos)
        << metrics;
}

TEST(RouterRobustness, ConnectionsThatHaveNotUpgradedHaveALimitOfTheirOwn) {
    router_process router({"--limits-max-http-connections", "3"});
    ASSERT_TRUE(router.ready());
    std::vector<std::unique_ptr<idle_tcp>> idle;
    for (int i = 0; i < 3; ++i) {
        idle.push_back(std::make_unique<idle_tcp>(router.http_address()));
        ASSERT_TRUE(idle.back()->connected());
    }
    ASSERT_TRUE(metrics_show(router, "hyperstreams_http_connections{listener=\"main\"} 3"));

    idle_tcp over(router.http_address());
    ASSERT_TRUE(over.connected());
    EXPECT_TRUE(over.closed_by_peer(5s)) << "the fourth is closed as soon as accepted";
    EXPECT_TRUE(metrics_show(router, "hyperstreams_http_connections_refused_total{listener=\"main\"} 1"));
    EXPECT_NE(router.wait_for_log("event=http.connection_refused").find("event=http.connection_refused listener=main limit=3"),
              std::string::npos);
    EXPECT_EQ(http_get(router.http_address(), "/healthz", 1s).status, 0) << "no place left, for anyone";

    // A connection that upgrades gives its place back: with one place free,
    // WebSocket clients connect one after the other, as many as they like.
    idle.pop_back();
    ASSERT_TRUE(metrics_show(router, "hyperstreams_http_connections{listener=\"main\"} 2"));
    std::vector<std::unique_ptr<test_client>> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(std::make_unique<test_client>(frontend_config(router.ws_url(), "upgraded")));
        ASSERT_TRUE(clients.back()->wait_ready()) << "client " << i;
    }
    EXPECT_TRUE(metrics_show(router, "hyperstreams_http_connections{listener=\"main\"} 2"));
    EXPECT_TRUE(metrics_show(router, "hyperstreams_connections{transport=\"websocket\"} 4"));
    EXPECT_FALSE(idle.front()->closed_by_peer(100ms)) << "the connections within the limit stay";
}

TEST(RouterRobustness, AGoodbyeIsAnsweredWithANormalWebSocketClose) {
    router_process router;
    ASSERT_TRUE(router.ready());
    raw_ws ws(router.http_address());
    ASSERT_TRUE(ws.join());
    ASSERT_TRUE(ws.send(encode_batch({simple(frame_kind::goodbye)})));
    EXPECT_FALSE(ws.read());
    EXPECT_TRUE(ws.closed());
    EXPECT_EQ(ws.close_code(), 1000) << "WebSocket normal closure";
    EXPECT_EQ(ws.close_reason(), "normal");
}

TEST(RouterRobustness, AFrameBeforeHelloEndsTheHandshake) {
    router_process router;
    ASSERT_TRUE(router.ready());
    raw_ws ws(router.http_address());
    ASSERT_TRUE(ws.connected());
    ASSERT_TRUE(ws.send(encode_batch({simple(frame_kind::subscribe, 1, "a")})));
    const auto error = ws.read_until(frame_kind::error);
    ASSERT_TRUE(error);
    EXPECT_EQ(static_cast<errc>(error->code), errc::unexpected_frame);
    const auto bye = ws.read_until(frame_kind::goodbye);
    ASSERT_TRUE(bye);
    EXPECT_EQ(static_cast<errc>(bye->code), errc::unexpected_frame);
}

TEST(RouterRobustness, FramesAFrontendMayNotSendAreRefusedButTheConnectionGoesOn) {
    router_process router;
    ASSERT_TRUE(router.ready());
    raw_ws ws(router.http_address());
    ASSERT_TRUE(ws.join());

    ASSERT_TRUE(ws.send(register_batch(5, "svc", "m")));
    const auto refused = ws.read_until(frame_kind::error);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->id, 5u);
    EXPECT_EQ(static_cast<errc>(refused->code), errc::unexpected_frame);

    ASSERT_TRUE(ws.send(encode_batch({simple(frame_kind::ping, 77)})));
    const auto pong = ws.read_until(frame_kind::pong);
    ASSERT_TRUE(pong) << "the connection is still usable";
    EXPECT_EQ(pong->id, 77u);
}

TEST(RouterRobustness, OversizeInputOnWebSocketIsRefusedBeforeAllocation) {
    router_process router({"--limits-max-payload", "1024", "--limits-max-message-bytes", "4096",
                           "--outbox-batch-bytes", "4096"});
    ASSERT_TRUE(router.ready());
    {
        // A frame over max_payload inside a message under the transport cap:
        // the decoder names it.
        raw_ws ws(router.http_address());
        ASSERT_TRUE(ws.join());
        const std::string big(2000, 'x');
        frame pub = simple(frame_kind::publish, 0, "a");
        pub.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(big.data()), big.size());
        ASSERT_TRUE(ws.send(encode_batch({pub})));
        const auto error = ws.read_until(frame_kind::error);
        ASSERT_TRUE(error);
        EXPECT_EQ(static_cast<errc>(error->code), errc::frame_too_large);
        const auto bye = ws.read_until(frame_kind::goodbye);
        ASSERT_TRUE(bye);
        EXPECT_EQ(static_cast<errc>(bye->code), errc::frame_too_large);
        EXPECT_FALSE(ws.read());
        EXPECT_EQ(ws.close_code(), 1009);
        EXPECT_EQ(ws.close_reason(), "frame_too_large");
    }
    {
        // A WebSocket message over the transport cap: Beast refuses it from
        // its frame header (read_message_max), before reading the payload,
        // and closes with 1009. The unread payload makes the router's TCP
        // stack answer with a reset, which may overtake the close frame: the
        // client sees 1009 or a reset, never a message.
        raw_ws ws(router.http_address());
        ASSERT_TRUE(ws.join());
        ws.send(std::vector<std::uint8_t>(10u << 20, 0));
        EXPECT_FALSE(ws.read(10s));
        EXPECT_TRUE(ws.closed());
        EXPECT_TRUE(ws.close_code() == 1009 || ws.close_code() == 0) << ws.close_code();
    }
    // The client may see the reset before the router has logged why.
    EXPECT_NE(router.wait_for_log("exceeded the locally configured limit")
                  .find("exceeded the locally configured limit"),
              std::string::npos)
        << "the router refused it for its size";
    expect_router_serves(router);
}

TEST(RouterRobustness, MalformedZeroMQInputGetsANamedError) {
    router_process router;
    ASSERT_TRUE(router.ready());
    {
        raw_dealer dealer(router.backend_url());
        dealer.send({1, 0xEE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
        const auto error = dealer.read_until(frame_kind::error);
        ASSERT_TRUE(error);
        EXPECT_EQ(static_cast<errc>(error->code), errc::unknown_kind);
        const auto bye = dealer.read_until(frame_kind::goodbye);
        ASSERT_TRUE(bye);
    }
    {
        raw_dealer dealer(router.backend_url());
        ASSERT_TRUE(dealer.join());
        dealer.send({0xDE, 0xAD});
        const auto error = dealer.read_until(frame_kind::error);
        ASSERT_TRUE(error);
        EXPECT_EQ(static_cast<errc>(error->code), errc::truncated);
        ASSERT_TRUE(dealer.read_until(frame_kind::goodbye));
        // The router forgot that session: the next message must be a hello.
        dealer.send(encode_batch({simple(frame_kind::ping, 1)}));
        const auto again = dealer.read_until(frame_kind::error);
        ASSERT_TRUE(again);
        EXPECT_EQ(static_cast<errc>(again->code), errc::unexpected_frame);
    }
    {
        raw_dealer dealer(router.backend_url());
        ASSERT_TRUE(dealer.join());
        dealer.send(std::vector<std::uint8_t>{});
        const auto error = dealer.read_until(frame_kind::error);
        ASSERT_TRUE(error);
        EXPECT_EQ(static_cast<errc>(error->code), errc::empty_batch);
    }
    {
        // One ZeroMQ message is one part (PROTOCOL.md, section 1).
        raw_dealer dealer(router.backend_url());
        dealer.send_parts({hello_bytes(client_role::backend), encode_batch({simple(frame_kind::ping, 3)})});
        const auto error = dealer.read_until(frame_kind::error);
        ASSERT_TRUE(error);
        EXPECT_EQ(static_cast<errc>(error->code), errc::protocol_violation);
        const auto bye = dealer.read_until(frame_kind::goodbye);
        ASSERT_TRUE(bye);
        EXPECT_EQ(static_cast<errc>(bye->code), errc::protocol_violation);
    }
    expect_router_serves(router);
}

TEST(RouterRobustness, OversizeInputOnZeroMQIsDroppedByLibzmqAndTheRouterCarriesOn) {
    router_process router({"--limits-max-payload", "1024", "--limits-max-message-bytes", "4096",
                           "--outbox-batch-bytes", "4096"});
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url(), "well-behaved"));
    ASSERT_TRUE(backend.wait_ready());
    {
        raw_dealer dealer(router.backend_url());
        ASSERT_TRUE(dealer.join());
        // Over ZMQ_MAXMSGSIZE: libzmq drops the connection before the router
        // sees (or allocates) the message.
        dealer.send(std::vector<std::uint8_t>(1u << 20, 7));
        EXPECT_FALSE(dealer.read(500ms));
        // A frame over max_payload within the transport cap gets its name.
        const std::string big(2000, 'x');
        frame pub = simple(frame_kind::publish, 0, "a");
        pub.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(big.data()), big.size());
        ASSERT_TRUE(dealer.rejoin()) << "the DEALER reconnected";
        dealer.send(encode_batch({pub}));
        std::optional<owned_frame> error;
        do error = dealer.read_until(frame_kind::error);
        while (error && static_cast<errc>(error->code) == errc::unexpected_frame);  // a second hello's, from rejoin
        ASSERT_TRUE(error);
        EXPECT_EQ(static_cast<errc>(error->code), errc::frame_too_large);
    }
    EXPECT_EQ(backend.state(), client_state::ready);
    const std::uint32_t s = backend.subscribe("still.fine");
    EXPECT_TRUE(backend.wait_for(is(event_kind::ack, s)));
    expect_router_serves(router);
}

// A backend that names itself (ZMQ_ROUTING_ID) reconnects under the same
// name after its connection broke: the new connection is a new session,
// which says hello, registers again and is served.
TEST(RouterRobustness, ABackendWithItsOwnRoutingIdReconnectsAndIsServedAgain) {
    router_process router({"--limits-max-payload", "1024", "--limits-max-message-bytes", "4096",
                           "--outbox-batch-bytes", "4096"});
    ASSERT_TRUE(router.ready());
    raw_dealer backend(router.backend_url(), std::string("orders-backend-1"));
    ASSERT_TRUE(backend.join("named"));
    backend.send(register_batch(1, "orders", "get"));
    ASSERT_TRUE(backend.read_until(frame_kind::ack));

    // Over ZMQ_MAXMSGSIZE: libzmq drops the connection, the DEALER connects
    // again and is welcomed.
    backend.send(std::vector<std::uint8_t>(1u << 20, 7));
    ASSERT_TRUE(backend.rejoin("named")) << "the DEALER reconnected under its name and was welcomed";
    backend.send(register_batch(2, "orders", "get"));
    const auto ack = backend.read_until(frame_kind::ack);
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->id, 2u);

    test_client caller(frontend_config(router.ws_url(), "caller"));
    ASSERT_TRUE(caller.wait_ready());
    const std::uint32_t id = caller.request("orders", "get", "1");
    const auto call = backend.read_until(frame_kind::request);
    ASSERT_TRUE(call);
    const std::string answer = "served";
    frame response = simple(frame_kind::response, call->id);
    response.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(answer.data()), answer.size());
    backend.send(encode_batch({response}));
    const auto got = caller.wait_for(is(event_kind::response, id));
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload_text(), answer);
}

// A number from the connection named `name` in /status; -1 if not found.
long status_of(router_process& router, const std::string& name, const char* field) {
    const http_result r = http_get(router.admin_address(), "/status");
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (doc.is_discarded()) return -1;
    for (const auto& c : doc["connections"])
        if (c["name"] == name) return c[field].get<long>();
    return -1;
}

// Publishes `payload` on "flood" at the pace of `fast`, a subscriber that
// keeps up (8 messages in flight), until the router has dropped for the
// connection named `stalled`, then 500 more. The kernel's socket buffers
// hide the first megabytes, so it is bounded at 25,000 messages (100 MB),
// far more than any socket buffer. On the way, the stalled connection's
// queue stays within twice `outbox`, and `fast` gets every message.
// `total` is how many were published.
void flood_until_dropped(router_process& router, test_client& pub, test_client& fast,
                         const std::string& stalled, long outbox, const std::string& payload, int& total) {
    const auto is_message = [](const recorded_event& e) { return e.kind == event_kind::message; };
    total = 0;
    int stop_at = 25000;
    while (total < stop_at) {
        pub.publish("flood", payload);
        ++total;
        if (total % 8 == 0)
            ASSERT_EQ(fast.wait_count(is_message, static_cast<std::size_t>(total), 10s).size(),
                      static_cast<std::size_t>(total));
        if (total % 250 == 0) {
            const long queued = status_of(router, stalled, "queued_bytes");
            EXPECT_GE(queued, 0);
            EXPECT_LE(queued, 2 * outbox) << stalled << "'s queue stays within its bound";
            if (stop_at == 25000 && status_of(router, stalled, "dropped") > 0) stop_at = total + 500;
        }
    }
    ASSERT_LT(stop_at, 25000) << "the router never dropped for " << stalled;
    ASSERT_EQ(fast.wait_count(is_message, static_cast<std::size_t>(total), 10s).size(),
              static_cast<std::size_t>(total));
}

TEST(RouterRobustness, ASlowSubscriberIsBoundedAndToldWhatItLost) {
    constexpr long outbox = 64 * 1024;
    router_process router({"--outbox-max-bytes", std::to_string(outbox), "--limits-max-payload", "8192",
                           "--limits-max-message-bytes", "16384", "--outbox-batch-bytes", "16384"});
    ASSERT_TRUE(router.ready());
    host_options stalled;
    stalled.receive_buffer_bytes = 4096;
    test_client slow(frontend_config(router.ws_url(), "slow"), stalled);
    test_client fast(frontend_config(router.ws_url(), "fast"));
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(slow.wait_ready() && fast.wait_ready() && pub.wait_ready());
    const std::uint32_t s1 = slow.subscribe("flood");
    const std::uint32_t s2 = fast.subscribe("flood");
    ASSERT_TRUE(slow.wait_for(is(event_kind::ack, s1)));
    ASSERT_TRUE(fast.wait_for(is(event_kind::ack, s2)));
    slow.pause_reading();

    const long rss_before = router.rss_kib();
    // Only the slow subscriber falls behind.
    const std::string payload(4000, 'f');
    int total = 0;
    flood_until_dropped(router, pub, fast, "slow", outbox, payload, total);
    if (HasFatalFailure()) return;
    const auto fast_got = fast.events(is(event_kind::message));
    ASSERT_EQ(fast_got.size(), static_cast<std::size_t>(total));
    for (std::size_t i = 0; i < fast_got.size(); ++i) ASSERT_EQ(fast_got[i].seq, i + 1);
    EXPECT_EQ(fast.count(is(event_kind::gap)), 0u) << "the fast subscriber lost nothing";
    const long rss_after = router.rss_kib();
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer keeps freed memory in quarantine (256 MiB by default),
    // so the router's RSS says nothing here; the queue bound above holds.
    (void)rss_before;
    (void)rss_after;
#else
    EXPECT_LT(rss_after - rss_before, 32 * 1024) << "memory stays bounded (KiB)";
#endif

    const http_result metrics = http_get(router.admin_address(), "/metrics");
    EXPECT_EQ(metrics.body.find("hyperstreams_dropped_messages_total{transport=\"websocket\"} 0\n"), std::string::npos);

    slow.resume_reading();
    // The last message always arrives; every earlier one arrives or is counted in a gap.
    ASSERT_TRUE(slow.wait_for([total](const recorded_event& e) {
        return e.kind == event_kind::message && e.seq == static_cast<std::uint64_t>(total);
    }, 20s));
    const auto gaps = slow.events(is(event_kind::gap));
    ASSERT_FALSE(gaps.empty()) << "the slow subscriber is told what it lost";
    std::uint64_t lost = 0;
    for (const recorded_event& g : gaps) lost += g.count;
    const std::size_t received = slow.count(is(event_kind::message));
    EXPECT_EQ(received + lost, static_cast<std::uint64_t>(total));
    EXPECT_EQ(slow.state(), client_state::ready) << "drop_oldest keeps it connected";
}

// A backend's messages wait in libzmq up to --outbox-zmq-hwm, then in its
// outbox under the same bound and policy as a frontend's. Once it reads
// again, the router's retry timer sends the rest without any new traffic.
TEST(RouterRobustness, ABackendThatStopsReadingIsBoundedAndCatchesUpAfterwards) {
    constexpr long outbox = 64 * 1024;
    router_process router({"--outbox-max-bytes", std::to_string(outbox), "--outbox-zmq-hwm", "4",
                           "--limits-max-payload", "8192", "--limits-max-message-bytes", "16384",
                           "--outbox-batch-bytes", "16384",
                           // It answers no ping while it does not read.
                           "--heartbeat-interval-ms", "30000", "--heartbeat-timeout-ms", "90000"});
    ASSERT_TRUE(router.ready());
    raw_dealer backend(router.backend_url(), 1, 4096);
    ASSERT_TRUE(backend.join("stalled-backend"));
    backend.send(encode_batch({simple(frame_kind::subscribe, 1, "flood")}));
    ASSERT_TRUE(backend.read_until(frame_kind::ack));
    test_client fast(frontend_config(router.ws_url(), "fast"));
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(fast.wait_ready() && pub.wait_ready());
    const std::uint32_t s = fast.subscribe("flood");
    ASSERT_TRUE(fast.wait_for(is(event_kind::ack, s)));

    // As for a slow frontend.
    const std::string payload(4000, 'f');
    int total = 0;
    flood_until_dropped(router, pub, fast, "stalled-backend", outbox, payload, total);
    if (HasFatalFailure()) return;
    EXPECT_EQ(fast.count(is(event_kind::gap)), 0u) << "the fast subscriber lost nothing";

    // Nothing is published any more: what the backend reads now left the
    // outbox on the router's retries. Every message arrives once, in order,
    // or is counted in a gap, and the last one arrives.
    std::uint64_t last_seq = 0, received = 0, lost = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (last_seq < static_cast<std::uint64_t>(total) && std::chrono::steady_clock::now() < deadline) {
        const auto batch = backend.read(1s);
        if (!batch) continue;
        for (const owned_frame& f : decode_batch(*batch)) {
            if (f.kind == frame_kind::gap) {
                lost += f.count;
            } else if (f.kind == frame_kind::message) {
                ASSERT_GT(f.seq, last_seq) << "in order, each once";
                ASSERT_EQ(f.payload, payload);
                last_seq = f.seq;
                ++received;
            }
        }
    }
    ASSERT_EQ(last_seq, static_cast<std::uint64_t>(total)) << "the last message arrives";
    EXPECT_GT(lost, 0u) << "the backend is told what it lost";
    EXPECT_EQ(received + lost, static_cast<std::uint64_t>(total));
    expect_router_serves(router);
}

TEST(RouterRobustness, TheDisconnectPolicyClosesASlowSubscriberWithAReason) {
    router_process router({"--outbox-max-bytes", "65536", "--limits-max-payload", "8192",
                           "--limits-max-message-bytes", "16384", "--outbox-batch-bytes", "16384",
                           "--outbox-policy", "disconnect"});
    ASSERT_TRUE(router.ready());
    host_options stalled;
    stalled.receive_buffer_bytes = 4096;
    test_client slow(frontend_config(router.ws_url(), "slow"), stalled);
    test_client pub(frontend_config(router.ws_url(), "pub"));
    ASSERT_TRUE(slow.wait_ready() && pub.wait_ready());
    const std::uint32_t s = slow.subscribe("flood");
    ASSERT_TRUE(slow.wait_for(is(event_kind::ack, s)));
    slow.pause_reading();
    // Publish until the router gives up on the stalled subscriber (the
    // kernel's socket buffers hide the first megabytes), bounded at 100 MB.
    const std::string payload(4000, 'f');
    const std::string closed_once = "hyperstreams_slow_consumer_closes_total{transport=\"websocket\"} 1";
    bool closed = false;
    for (int i = 1; i <= 25000 && !closed; ++i) {
        pub.publish("flood", payload);
        if (i % 250 == 0) closed = http_get(router.admin_address(), "/metrics").body.find(closed_once) != std::string::npos;
    }
    ASSERT_TRUE(closed) << "the router closed the stalled subscriber";
    slow.resume_reading();
    const auto told = slow.wait_for([](const recorded_event& e) {
        return e.code == static_cast<std::uint16_t>(errc::slow_consumer);
    }, 10s);
    ASSERT_TRUE(told) << "the goodbye names slow_consumer";
}

TEST(RouterRobustness, ASilentFrontendIsClosedByTheHeartbeat) {
    router_process router({"--heartbeat-interval-ms", "200", "--heartbeat-timeout-ms", "600"});
    ASSERT_TRUE(router.ready());
    raw_ws ws(router.http_address());
    ASSERT_TRUE(ws.join());
    // Never answers the pings.
    const auto bye = ws.read_until(frame_kind::goodbye, 5s);
    ASSERT_TRUE(bye);
    EXPECT_EQ(static_cast<errc>(bye->code), errc::heartbeat_timeout);
    EXPECT_FALSE(ws.read());
    EXPECT_TRUE(ws.closed());
}

// A WebSocket client on a bare TCP socket, so that a test decides how its
// messages are cut into TCP writes.
class bare_ws {
public:
    // `receive_buffer`: the socket's SO_RCVBUF, set before it connects
    // (0: the system's).
    explicit bare_ws(unsigned short port, int receive_buffer = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        timeval timeout{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) return;
        const std::string upgrade =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        if (!write_all(std::vector<std::uint8_t>(upgrade.begin(), upgrade.end()))) return;
        std::string response;
        while (response.find("\r\n\r\n") == std::string::npos) {
            char c = 0;
            if (::recv(fd_, &c, 1, 0) != 1) return;
            response += c;
        }
        upgraded_ = response.rfind("HTTP/1.1 101", 0) == 0;
    }
    ~bare_ws() { ::close(fd_); }
    bare_ws(const bare_ws&) = delete;
    bare_ws& operator=(const bare_ws&) = delete;

    bool upgraded() const noexcept { return upgraded_; }

    // One masked binary frame per message (mask key 0: the payload as is).
    static std::vector<std::uint8_t> ws_frame(const std::vector<std::uint8_t>& message) {
        std::vector<std::uint8_t> out{0x82};
        if (message.size() < 126) {
            out.push_back(static_cast<std::uint8_t>(0x80 | message.size()));
        } else {
            out.push_back(0x80 | 126);
            out.push_back(static_cast<std::uint8_t>(message.size() >> 8));
            out.push_back(static_cast<std::uint8_t>(message.size()));
        }
        out.insert(out.end(), 4, 0);
        out.insert(out.end(), message.begin(), message.end());
        return out;
    }

    // One publish of `payload` on `channel`, as one masked binary frame.
    static std::vector<std::uint8_t> publish(const std::string& channel, const std::string& payload) {
        frame f = simple(frame_kind::publish, 0, channel);
        f.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
        return ws_frame(encode_batch({f}));
    }

    // A masked control frame (mask key 0): `opcode` 0x9 is a ping.
    static std::vector<std::uint8_t> control_frame(std::uint8_t opcode, const std::string& payload) {
        std::vector<std::uint8_t> out{static_cast<std::uint8_t>(0x80 | opcode),
                                      static_cast<std::uint8_t>(0x80 | payload.size())};
        out.insert(out.end(), 4, 0);
        out.insert(out.end(), payload.begin(), payload.end());
        return out;
    }

    bool write_all(const std::vector<std::uint8_t>& bytes) {
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
    }

    // The next WebSocket frame as it came: its first header byte (FIN,
    // RSV and opcode), whether it was masked, and its payload. Empty on
    // timeout or a length no frame of the router's has (over 16 MiB).
    struct ws_frame_read {
        std::uint8_t first = 0;
        bool masked = false;
        std::vector<std::uint8_t> payload;
    };
    std::optional<ws_frame_read> read_frame() {
        std::uint8_t head[2];
        if (!read_exact(head, 2)) return std::nullopt;
        ws_frame_read f;
        f.first = head[0];
        f.masked = (head[1] & 0x80) != 0;
        std::uint64_t length = head[1] & 0x7f;
        if (length >= 126) {
            std::uint8_t ext[8];
            const std::size_t n = length == 126 ? 2 : 8;
            if (!read_exact(ext, n)) return std::nullopt;
            length = 0;
            for (std::size_t i = 0; i < n; ++i) length = (length << 8) | ext[i];
        }
        if (length > (16u << 20)) return std::nullopt;
        f.payload.resize(length);
        if (!read_exact(f.payload.data(), f.payload.size())) return std::nullopt;
        return f;
    }

    // The frames of the next unfragmented binary message; none on timeout.
    std::vector<owned_frame> read_message() {
        const auto f = read_frame();
        if (!f) return {};
        return decode_batch(f->payload);
    }

    // Waits up to `limit` for bytes to read.
    bool readable_within(std::chrono::milliseconds limit) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
    }

private:
    bool read_exact(std::uint8_t* p, std::size_t n) {
        while (n > 0) {
            const ssize_t got = ::recv(fd_, p, n, 0);
            if (got <= 0) return false;
            p += got;
            n -= static_cast<std::size_t>(got);
        }
        return true;
    }

    int fd_ = -1;
    bool upgraded_ = false;
};

TEST(RouterRobustness, WebSocketMessagesArrivingInOneTcpWriteAreAllHandled) {
    // The router reads up to 1,536 bytes at once: the second message is read
    // with the first. An idle connection waits for its socket to be readable,
    // which would never announce bytes already read.
    router_process router;
    ASSERT_TRUE(router.ready());
    bare_ws ws(router.http_port());
    ASSERT_TRUE(ws.upgraded());
    std::vector<std::uint8_t> both = bare_ws::ws_frame(hello_bytes(client_role::frontend));
    const auto subscribe = bare_ws::ws_frame(encode_batch({simple(frame_kind::subscribe, 7, "together")}));
    both.insert(both.end(), subscribe.begin(), subscribe.end());
    ASSERT_TRUE(ws.write_all(both));

    bool welcomed = false, acked = false;
    for (int messages = 0; messages < 4 && !(welcomed && acked); ++messages) {
        const auto frames = ws.read_message();
        ASSERT_FALSE(frames.empty()) << "welcome " << welcomed << ", ack " << acked;
        for (const owned_frame& f : frames) {
            welcomed = welcomed || f.kind == frame_kind::welcome;
            acked = acked || (f.kind == frame_kind::ack && f.id == 7);
        }
    }
    EXPECT_TRUE(welcomed);
    EXPECT_TRUE(acked) << "the subscribe that came in the same TCP write is answered";

    // And again once the connection has been idle, three messages at once.
    std::vector<std::uint8_t> three;
    for (std::uint32_t id : {8u, 9u, 10u}) {
        const auto f = bare_ws::ws_frame(encode_batch({simple(frame_kind::subscribe, id, "together")}));
        three.insert(three.end(), f.begin(), f.end());
    }
    ASSERT_TRUE(ws.write_all(three));
    std::set<std::uint32_t> acks;
    for (int messages = 0; messages < 6 && acks.size() < 3; ++messages) {
        const auto frames = ws.read_message();
        ASSERT_FALSE(frames.empty()) << acks.size() << " of 3 acks";
        for (const owned_frame& f : frames)
            if (f.kind == frame_kind::ack) acks.insert(f.id);
    }
    EXPECT_EQ(acks, (std::set<std::uint32_t>{8, 9, 10}));
}

// `sub` joined and subscribed to `channel` (its ack read), `pub` joined
// (its welcome read).
::testing::AssertionResult join_publisher_and_subscriber(bare_ws& pub, bare_ws& sub, const std::string& channel) {
    if (!sub.upgraded() || !pub.upgraded()) return ::testing::AssertionFailure() << "no WebSocket upgrade";
    std::vector<std::uint8_t> join = bare_ws::ws_frame(hello_bytes(client_role::frontend, "sub"));
    const auto subscribe = bare_ws::ws_frame(encode_batch({simple(frame_kind::subscribe, 1, channel)}));
    join.insert(join.end(), subscribe.begin(), subscribe.end());
    if (!sub.write_all(join)) return ::testing::AssertionFailure() << "the subscriber's hello not sent";
    bool acked = false;
    for (int messages = 0; messages < 4 && !acked; ++messages) {
        const auto frames = sub.read_message();
        if (frames.empty()) return ::testing::AssertionFailure() << "no subscribe ack";
        for (const owned_frame& f : frames) acked = acked || (f.kind == frame_kind::ack && f.id == 1);
    }
    if (!acked) return ::testing::AssertionFailure() << "no subscribe ack in four messages";
    if (!pub.write_all(bare_ws::ws_frame(hello_bytes(client_role::frontend, "pub"))))
        return ::testing::AssertionFailure() << "the publisher's hello not sent";
    if (pub.read_message().empty()) return ::testing::AssertionFailure() << "no welcome for the publisher";
    return ::testing::AssertionSuccess();
}

// wake_queue's hold (ws_session.cpp): publishes already in the router's
// socket are read one after the other before the subscribers they reach
// write, so a subscriber gets them in a few WebSocket messages, not one per
// publish. One I/O thread: the publisher's and the subscriber's. Every
// publication still arrives, once, in order.
TEST(RouterRobustness, PublishesArrivingTogetherReachASubscriberInFewWrites) {
    router_process router({"--threads", "1"});
    ASSERT_TRUE(router.ready());
    bare_ws sub(router.http_port());
    bare_ws pub(router.http_port());
    ASSERT_TRUE(join_publisher_and_subscriber(pub, sub, "burst"));

    constexpr int publishes = 24;
    std::vector<std::uint8_t> burst;  // one WebSocket message per publish, in one TCP write
    std::vector<std::string> sent;
    for (int i = 0; i < publishes; ++i) {
        sent.push_back("p" + std::to_string(i));
        const auto m = bare_ws::publish("burst", sent.back());
        burst.insert(burst.end(), m.begin(), m.end());
    }
    ASSERT_TRUE(pub.write_all(burst));
    std::vector<std::string> got;
    int messages = 0;
    while (got.size() < sent.size() && messages < publishes) {
        const auto frames = sub.read_message();
        ASSERT_FALSE(frames.empty()) << got.size() << " of " << publishes << " publications";
        ++messages;
        for (const owned_frame& f : frames)
            if (f.kind == frame_kind::message) got.push_back(f.payload);
    }
    EXPECT_EQ(got, sent);
    EXPECT_LE(messages, 4) << "the subscriber wrote before the burst was read";
}

// The hold never waits for the network: a publish followed by part of the
// next message reaches the subscriber while the rest is still to come.
TEST(RouterRobustness, APublishBeforeAPartialMessageIsNotHeldForItsRest) {
    router_process router({"--threads", "1"});
    ASSERT_TRUE(router.ready());
    bare_ws sub(router.http_port());
    bare_ws pub(router.http_port());
    ASSERT_TRUE(join_publisher_and_subscriber(pub, sub, "partial"));

    std::vector<std::uint8_t> first = bare_ws::publish("partial", "first");
    const std::vector<std::uint8_t> second = bare_ws::publish("partial", std::string(1000, 's'));
    const std::size_t half = second.size() / 2;
    first.insert(first.end(), second.begin(), second.begin() + static_cast<std::ptrdiff_t>(half));
    ASSERT_TRUE(pub.write_all(first));
    const auto frames = sub.read_message();  // bounded: the socket's 5 s receive timeout
    ASSERT_EQ(frames.size(), 1u) << "the first publication waited for the rest of the second message";
    EXPECT_EQ(frames[0].kind, frame_kind::message);
    EXPECT_EQ(frames[0].payload, "first");

    ASSERT_TRUE(pub.write_all(std::vector<std::uint8_t>(second.begin() + static_cast<std::ptrdiff_t>(half), second.end())));
    const auto rest = sub.read_message();
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_EQ(rest[0].payload, std::string(1000, 's'));
}

TEST(RouterRobustness, AWebSocketClientThatSendsNothingAfterTheUpgradeIsClosed) {
    // An idle connection holds no read, only a wait for the socket: it is
    // still closed when no hello comes.
    router_process router({"--handshake-timeout-ms", "300"});
    ASSERT_TRUE(router.ready());
    raw_ws ws(router.http_address());
    ASSERT_TRUE(ws.connected());
    const auto bye = ws.read_until(frame_kind::goodbye, 5s);
    ASSERT_TRUE(bye);
    EXPECT_EQ(static_cast<errc>(bye->code), errc::handshake_timeout);
    EXPECT_FALSE(ws.read());
    EXPECT_TRUE(ws.closed());
}

// libzmq numbers the connections that present no routing id from a counter
// that starts at rand()'s value: without a seed, at the same value in every
// process. A peer that presents the next number first makes libzmq's ROUTER
// abort when it gives that number to the next backend (the routing table
// asserts unique ids). The router seeds it, so the number cannot be known.
TEST(RouterRobustness, TheRoutingIdTheRouterWouldGiveTheNextBackendCannotBePredicted) {
    router_process router;
    ASSERT_TRUE(router.ready());
    std::srand(1);  // glibc's seed when none was set
    const auto low = static_cast<std::uint32_t>(std::rand());
    const auto high = static_cast<std::uint32_t>(std::rand());
    const std::uint32_t first = (high << 31) | low;  // libzmq's generate_random()
    const std::string predicted{'\0', static_cast<char>(first >> 24), static_cast<char>(first >> 16),
                                static_cast<char>(first >> 8), static_cast<char>(first)};
    raw_dealer squatter(router.backend_url(), predicted);
    ASSERT_TRUE(squatter.join("squatter"));

    raw_dealer next(router.backend_url());
    ASSERT_TRUE(next.join("next")) << "the router gave the next backend another id";
    expect_router_serves(router);
}

TEST(RouterRobustness, ASilentBackendIsRemovedAndItsRequestsFail) {
    router_process router({"--heartbeat-interval-ms", "200", "--heartbeat-timeout-ms", "600"});
    ASSERT_TRUE(router.ready());
    raw_dealer dealer(router.backend_url());
    ASSERT_TRUE(dealer.join());
    dealer.send(register_batch(1, "mute", "m"));
    ASSERT_TRUE(dealer.read_until(frame_kind::ack));

    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(frontend.wait_ready());
    const std::uint32_t id = frontend.request("mute", "m", "", 10000);
    const auto error = frontend.wait_for(is_error(id), 5s);
    ASSERT_TRUE(error);
    EXPECT_EQ(error->error(), errc::backend_gone);
}

// Publishes 10 MiB to a subscriber with a small receive buffer that does
// not read: the router's write of a data message to it stalls half done
// (its socket takes up to 4 MiB, Linux's default tcp_wmem maximum, and the
// outbox holds the rest). Returns once the subscriber has bytes to read.
struct stalled_subscriber {
    router_process router{{"--threads", "1", "--outbox-max-bytes", std::to_string(64u << 20)}};
    std::unique_ptr<bare_ws> sub;
    std::unique_ptr<bare_ws> pub;
    std::vector<std::string> sent;

    ::testing::AssertionResult start() {
        if (!router.ready()) return ::testing::AssertionFailure() << "no router";
        sub = std::make_unique<bare_ws>(router.http_port(), 4096);
        pub = std::make_unique<bare_ws>(router.http_port());
        if (auto joined = join_publisher_and_subscriber(*pub, *sub, "large"); !joined) return joined;
        std::vector<std::uint8_t> burst;
        for (int i = 0; i < 640; ++i) {
            std::string payload = "p" + std::to_string(i) + ":";
            payload.resize(16 << 10, static_cast<char>('a' + i % 26));
            sent.push_back(std::move(payload));
            const auto m = bare_ws::publish("large", sent.back());
            burst.insert(burst.end(), m.begin(), m.end());
        }
        if (!pub->write_all(burst)) return ::testing::AssertionFailure() << "the publishes not sent";
        if (!sub->readable_within(5s)) return ::testing::AssertionFailure() << "nothing written to the subscriber";
        return ::testing::AssertionSuccess();
    }

    // The publications of one whole binary frame, added to `got`.
    static ::testing::AssertionResult take(const bare_ws::ws_frame_read& f, std::vector<std::string>& got) {
        if (f.masked || (f.first & 0xf0) != 0x80)
            return ::testing::AssertionFailure() << "header byte " << int(f.first) << (f.masked ? ", masked" : "");
        if ((f.first & 0x0f) != 0x2) return ::testing::AssertionFailure() << "opcode " << (f.first & 0x0f);
        const auto batch = decode_batch(f.payload);
        if (batch.empty()) return ::testing::AssertionFailure() << "not a whole batch";
        for (const owned_frame& m : batch)
            if (m.kind == frame_kind::message) got.push_back(m.payload);
        return ::testing::AssertionSuccess();
    }
};

// The router writes a subscriber's data messages past Beast
// (tracked_socket in ws_session.cpp), and Beast answers a ping on its own: a
// pong must wait for the end of the message being written, never land in
// it. A subscriber with a small receive buffer that does not read leaves the
// router's write of a large message half done; its pings arrive meanwhile.
// Every frame it then reads is whole: every publication, in order, and
// every pong, with its ping's payload.
TEST(RouterRobustness, PongsWaitForTheEndOfTheMessageBeingWritten) {
    stalled_subscriber s;
    ASSERT_TRUE(s.start());
    bare_ws& sub = *s.sub;
    const std::vector<std::string>& sent = s.sent;
    const int publishes = static_cast<int>(sent.size());

    constexpr int pings = 12;
    std::vector<std::string> pinged;
    for (int i = 0; i < pings; ++i) {
        pinged.push_back("ping-" + std::to_string(i));
        ASSERT_TRUE(sub.write_all(bare_ws::control_frame(0x9, pinged.back())));
    }

    std::vector<std::string> got, ponged;
    for (int frames = 0; frames < 4 * (publishes + pings) && (got.size() < sent.size() || ponged.size() < pinged.size());
         ++frames) {
        const auto f = sub.read_frame();
        ASSERT_TRUE(f) << got.size() << " publications and " << ponged.size() << " pongs read";
        if (f->first == 0x8A && !f->masked) {
            ponged.emplace_back(f->payload.begin(), f->payload.end());
            continue;
        }
        ASSERT_TRUE(stalled_subscriber::take(*f, got)) << "after " << got.size() << " publications";
    }
    EXPECT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent) << "every publication, whole and in order";
    EXPECT_EQ(ponged, pinged);
}

// The same with a close frame: Beast's answer waits for the end of the
// message being written, and no data message follows it.
TEST(RouterRobustness, NoDataMessageFollowsTheCloseFrame) {
    stalled_subscriber s;
    ASSERT_TRUE(s.start());
    bare_ws& sub = *s.sub;
    ASSERT_TRUE(sub.write_all(bare_ws::control_frame(0x8, std::string("\x03\xe8", 2))));  // 1000, normal

    std::vector<std::string> got;
    bool closed = false;
    for (std::size_t frames = 0; frames < 2 * s.sent.size() && !closed; ++frames) {
        const auto f = sub.read_frame();
        ASSERT_TRUE(f) << "no close frame after " << got.size() << " publications";
        if (f->first == 0x88 && !f->masked) {
            closed = true;
            break;
        }
        ASSERT_TRUE(stalled_subscriber::take(*f, got)) << "after " << got.size() << " publications";
    }
    ASSERT_TRUE(closed);
    EXPECT_FALSE(sub.read_frame()) << "a frame after the close frame";
    ASSERT_LE(got.size(), s.sent.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), s.sent.begin())) << "whole publications, in order";
}

}  // namespace
}  // namespace hyperstreams::testing
