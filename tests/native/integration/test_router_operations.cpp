// The real router binary as an operator sees it: --help and flags, a config
// file, /healthz, /metrics, /status, static files, logs, and the drain on
// SIGTERM.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "raw_clients.hpp"
#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

namespace fs = std::filesystem;

class temp_dir {
public:
    temp_dir() : path_(fs::temp_directory_path() / ("hs-router-ops-" + std::to_string(::getpid()) + "-" +
                                                    std::to_string(counter_++))) {
        fs::create_directories(path_);
    }
    ~temp_dir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }
    void write(const std::string& name, const std::string& text) const {
        fs::create_directories((path_ / name).parent_path());
        std::ofstream(path_ / name, std::ios::binary) << text;
    }

private:
    static inline int counter_ = 0;
    fs::path path_;
};

TEST(RouterOperations, HelpDocumentsEveryOptionAndBadFlagsFailClearly) {
    const run_result help = run_router_once({"--help"});
    EXPECT_EQ(help.status, 0);
    for (const char* flag : {"--listen", "--backend", "--web", "--config", "--threads", "--log-level",
                             "--outbox-max-bytes", "--outbox-policy", "--history-max-messages",
                             "--requests-max-deadline-ms", "--drain-timeout-ms", "--drain-redirect-url",
                             "--admin-listen", "--admin-token-file"})
        EXPECT_NE(help.out.find(flag), std::string::npos) << flag;

    const run_result bad = run_router_once({"--threads", "lots"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("--threads"), std::string::npos) << bad.err;

    const run_result unknown = run_router_once({"--frobnicate"});
    EXPECT_EQ(unknown.status, 2);
    EXPECT_NE(unknown.err.find("unknown option"), std::string::npos) << unknown.err;

    temp_dir dir;
    dir.write("bad.json", "{\"outbox\": {\"policy\": \"maybe\"}}");
    const run_result bad_file = run_router_once({"--config", (dir.path() / "bad.json").string()});
    EXPECT_EQ(bad_file.status, 2);
    EXPECT_NE(bad_file.err.find("outbox.policy"), std::string::npos) << bad_file.err;

    const run_result printed = run_router_once({"--print-config", "--history-max-messages", "3"});
    EXPECT_EQ(printed.status, 0);
    const auto doc = nlohmann::json::parse(printed.out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << printed.out;
    EXPECT_EQ(doc["history"]["max_messages"], 3);
}

TEST(RouterOperations, AConfigFileConfiguresTheRouter) {
    temp_dir dir;
    dir.write("router.json", R"({"ws_path": "/stream", "router_id": "from-file", "history": {"max_messages": 2}})");
    router_process router({"--config", (dir.path() / "router.json").string()});
    ASSERT_TRUE(router.ready());
    test_client c(frontend_config("ws://" + router.http_address() + "/stream"));
    ASSERT_TRUE(c.wait_ready());
    EXPECT_EQ(c.run([](client_engine& e, time_ms) { return std::string(e.router_id()); }), "from-file");
    raw_ws wrong(router.http_address(), "/ws");
    EXPECT_FALSE(wrong.connected()) << "the upgrade lives on the configured path only";
}

// channels.namespaces from a file: checked at start, printed, and applied
// to the channels each pattern matches.
TEST(RouterOperations, ChannelNamespacesFromAFileApplyToTheirChannels) {
    temp_dir dir;
    dir.write("bad.json", R"({"channels": {"namespaces": [{"pattern": "factory.>", "history_szie": 2}]}})");
    const run_result bad = run_router_once({"--config", (dir.path() / "bad.json").string()});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("channels.namespaces: entry 1 ('factory.>'): unknown key 'history_szie'"), std::string::npos)
        << bad.err;

    dir.write("router.json", R"({"history": {"max_messages": 16}, "channels": {"namespaces": [
        {"pattern": "factory.>", "history_size": 2, "publish": "backends", "max_message_bytes": 64}]}})");
    const std::string config = (dir.path() / "router.json").string();
    const run_result printed = run_router_once({"--print-config", "--config", config});
    EXPECT_EQ(printed.status, 0) << printed.err;
    const auto doc = nlohmann::json::parse(printed.out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << printed.out;
    EXPECT_EQ(doc["channels"]["namespaces"][0]["history_size"], 2);
    EXPECT_EQ(doc["channels"]["namespaces"][0]["policy"], "drop_oldest") << "outbox.policy, left out";

    router_process router({"--config", config});
    ASSERT_TRUE(router.ready());
    test_client sub(reconnect_on_demand(frontend_config(router.ws_url(), "resuming")));
    test_client frontend(frontend_config(router.ws_url(), "frontend"));
    test_client backend(backend_config(router.backend_url(), "backend"));
    ASSERT_TRUE(sub.wait_ready() && frontend.wait_ready() && backend.wait_ready());

    const std::uint32_t refused = frontend.publish("factory.m3.temp", "21.5", true);
    const auto forbidden = frontend.wait_for(is_error(refused));
    ASSERT_TRUE(forbidden);
    EXPECT_EQ(forbidden->code, static_cast<std::uint16_t>(errc::forbidden));
    EXPECT_NE(forbidden->text.find("namespace 'factory.>'"), std::string::npos) << forbidden->text;
    const std::uint32_t large = backend.publish("factory.m3.temp", std::string(65, 'x'), true);
    const auto too_large = backend.wait_for(is_error(large));
    ASSERT_TRUE(too_large);
    EXPECT_EQ(too_large->code, static_cast<std::uint16_t>(errc::payload_too_large));

    // The namespace's history (2), not history.max_messages (16): a resume
    // after 6 missed messages gets a gap for the 4 that are gone.
    for (const std::string channel : {"factory.m3.temp", "office.temp"}) {
        const std::uint32_t s = sub.subscribe(channel);
        ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    }
    backend.publish("factory.m3.temp", "1");
    backend.publish("office.temp", "1");
    ASSERT_TRUE(sub.wait_count(is(event_kind::message), 2).size() == 2u);
    sub.drop_transport();
    std::uint32_t last = 0;
    for (int i = 2; i <= 7; ++i) {
        backend.publish("factory.m3.temp", std::to_string(i));
        last = backend.publish("office.temp", std::to_string(i), true);
    }
    ASSERT_TRUE(backend.wait_for(is(event_kind::ack, last)));
    sub.connect_now();
    const auto gap = sub.wait_for(is(event_kind::gap), 10s);
    ASSERT_TRUE(gap);
    EXPECT_EQ(gap->name, "factory.m3.temp");
    EXPECT_EQ(gap->seq, 2u);
    EXPECT_EQ(gap->count, 4u) << "2 to 5 are gone";
    const auto got = sub.wait_count(is(event_kind::message), 2 + 2 + 6, 10s);
    ASSERT_EQ(got.size(), 10u) << "factory: 6 and 7 replayed; office: all 6 from history.max_messages";
    EXPECT_EQ(sub.count(is(event_kind::gap)), 1u) << "office.temp kept all it missed";
}

TEST(RouterOperations, HealthMetricsAndStatus) {
    router_process router;
    ASSERT_TRUE(router.ready());
    const http_result health = http_get(router.http_address(), "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, "ok\n");

    test_client sub(frontend_config(router.ws_url(), "status-sub"));
    test_client backend(backend_config(router.backend_url(), "status-backend"));
    ASSERT_TRUE(sub.wait_ready() && backend.wait_ready());
    const std::uint32_t s = sub.subscribe("m.*");
    ASSERT_TRUE(sub.wait_for(is(event_kind::ack, s)));
    const std::uint32_t r = backend.register_service("svc", {{"get", method_kind::unary}});
    ASSERT_TRUE(backend.wait_for(is(event_kind::ack, r)));
    backend.publish("m.one", "x");
    ASSERT_TRUE(sub.wait_for(is(event_kind::message)));

    const http_result metrics = http_get(router.admin_address(), "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.content_type.find("text/plain"), std::string::npos);
    for (const char* series :
         {"hyperstreams_connections{transport=\"websocket\"} 1", "hyperstreams_connections{transport=\"zeromq\"} 1",
          "hyperstreams_frames_received_total{transport=\"zeromq\"}", "hyperstreams_bytes_sent_total{transport=\"websocket\"}",
          "hyperstreams_dropped_messages_total", "hyperstreams_gaps_sent_total", "hyperstreams_published_total 1",
          "hyperstreams_call_duration_seconds_bucket{le=\"+Inf\"}", "# TYPE hyperstreams_call_duration_seconds histogram"})
        EXPECT_NE(metrics.body.find(series), std::string::npos) << series;

    const http_result status = http_get(router.admin_address(), "/status");
    EXPECT_EQ(status.status, 200);
    EXPECT_EQ(status.content_type, "application/json");
    const auto doc = nlohmann::json::parse(status.body, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << status.body;
    ASSERT_EQ(doc["connections"].size(), 2u);
    bool saw_sub = false;
    for (const auto& c : doc["connections"]) {
        if (c["name"] != "status-sub") continue;
        saw_sub = true;
        EXPECT_EQ(c["transport"], "websocket");
        EXPECT_EQ(c["subscriptions"][0]["pattern"], "m.*");
    }
    EXPECT_TRUE(saw_sub);
    EXPECT_EQ(doc["channels"][0]["name"], "m.one");
    EXPECT_EQ(doc["services"][0]["name"], "svc");

    // A request failing with a named error shows up by code.
    const std::uint32_t id = sub.request("nothing", "here", "");
    ASSERT_TRUE(sub.wait_for(is_error(id)));
    EXPECT_NE(http_get(router.admin_address(), "/metrics").body.find("hyperstreams_errors_total{code=\"no_such_service\"} 1"),
              std::string::npos);
}

TEST(RouterOperations, AdminEndpointsHaveAListenerOfTheirOwn) {
    router_process router;
    ASSERT_TRUE(router.ready());
    ASSERT_NE(router.admin_address(), router.http_address());
    EXPECT_EQ(http_get(router.http_address(), "/metrics").status, 404) << "not beside the WebSocket";
    EXPECT_EQ(http_get(router.http_address(), "/status").status, 404);
    EXPECT_EQ(http_get(router.http_address(), "/healthz").status, 200);
    EXPECT_EQ(http_get(router.admin_address(), "/healthz").status, 200);
    EXPECT_EQ(http_get(router.admin_address(), "/").status, 404) << "no files on the admin listener";
    EXPECT_EQ(ws_upgrade(router.admin_address(), "/ws", "").status, 404) << "no WebSocket on the admin listener";

    router_process same({"--admin-listen", "same"});
    ASSERT_TRUE(same.ready());
    EXPECT_EQ(same.admin_address(), same.http_address());
    EXPECT_EQ(http_get(same.http_address(), "/metrics").status, 200);
    EXPECT_EQ(http_get(same.http_address(), "/status").status, 200);
    test_client beside(frontend_config(same.ws_url()));
    EXPECT_TRUE(beside.wait_ready()) << "the WebSocket is still on --listen";

    router_process off({"--admin-listen", "off"});
    ASSERT_TRUE(off.ready());
    EXPECT_EQ(off.admin_address(), "off");
    EXPECT_EQ(http_get(off.http_address(), "/metrics").status, 404);
    EXPECT_EQ(http_get(off.http_address(), "/status").status, 404);
    EXPECT_EQ(http_get(off.http_address(), "/healthz").status, 200);
}

TEST(RouterOperations, AnUnusableAdminTokenFileIsAClearError) {
    temp_dir dir;
    dir.write("short.token", "too-short\n");
    const run_result short_token = run_router_once({"--listen", "127.0.0.1:0", "--backend", "tcp://127.0.0.1:0",
                                                    "--admin-listen", "127.0.0.1:0", "--admin-token-file",
                                                    (dir.path() / "short.token").string()});
    EXPECT_EQ(short_token.status, 1);
    EXPECT_NE(short_token.err.find("admin.token_file"), std::string::npos) << short_token.err;
    const run_result missing = run_router_once({"--listen", "127.0.0.1:0", "--backend", "tcp://127.0.0.1:0",
                                                "--admin-listen", "127.0.0.1:0", "--admin-token-file",
                                                (dir.path() / "missing.token").string()});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;
}

TEST(RouterOperations, AnUnreadableRedisPasswordFileIsAClearError) {
    temp_dir dir;
    const run_result missing = run_router_once({"--listen", "127.0.0.1:0", "--backend", "tcp://127.0.0.1:0",
                                                "--admin-listen", "off", "--cluster-redis", "127.0.0.1:1",
                                                "--cluster-redis-password-file",
                                                (dir.path() / "missing.password").string()});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("cluster.redis_password_file: cannot read"), std::string::npos) << missing.err;
}

// rediss:// with a CA file that cannot be read: the router does not start,
// and says which file.
TEST(RouterOperations, AnUnreadableRedisTlsFileIsAClearError) {
    temp_dir dir;
    const run_result missing = run_router_once({"--listen", "127.0.0.1:0", "--backend", "tcp://127.0.0.1:0",
                                                "--admin-listen", "off", "--cluster-redis", "rediss://127.0.0.1:1",
                                                "--cluster-redis-tls-ca-file", (dir.path() / "missing.crt").string()});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("cluster.redis: TLS to Redis: cannot load the CA file " +
                               (dir.path() / "missing.crt").string()),
              std::string::npos)
        << missing.err;
}

TEST(RouterOperations, ServesTheDashboardsStaticFilesSafely) {
    temp_dir dir;
    dir.write("web/index.html", "<!doctype html><title>dash</title>");
    dir.write("web/assets/app.js", "console.log(1)");
    dir.write("web/client.wasm", std::string("\0asm", 4));
    dir.write("secret.txt", "top secret");
    router_process router({"--web", (dir.path() / "web").string()});
    ASSERT_TRUE(router.ready());

    const http_result index = http_get(router.http_address(), "/");
    EXPECT_EQ(index.status, 200);
    EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(index.body, "<!doctype html><title>dash</title>");
    const http_result js = http_get(router.http_address(), "/assets/app.js");
    EXPECT_EQ(js.status, 200);
    EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
    const http_result wasm = http_get(router.http_address(), "/client.wasm");
    EXPECT_EQ(wasm.status, 200);
    EXPECT_EQ(wasm.content_type, "application/wasm");
    EXPECT_EQ(wasm.body.size(), 4u);
    const http_result head = http_get(router.http_address(), "/assets/app.js", 5s, true);
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.body.empty());

    EXPECT_EQ(http_get(router.http_address(), "/missing.html").status, 404);
    for (const char* target : {"/../secret.txt", "/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"}) {
        const http_result r = http_get(router.http_address(), target);
        EXPECT_NE(r.status, 200) << target;
        EXPECT_EQ(r.body.find("top secret"), std::string::npos) << target;
    }
}

TEST(RouterOperations, LogsAreStructuredAndNormalDisconnectsAreNotErrors) {
    router_process router;
    ASSERT_TRUE(router.ready());
    {
        test_client c(frontend_config(router.ws_url(), "short-lived"));
        ASSERT_TRUE(c.wait_ready());
        ASSERT_FALSE(c.run([](client_engine& e, time_ms now) { return e.close(now); }));
    }
    const std::string log = router.wait_for_log("event=conn.goodbye");
    EXPECT_NE(log.find("level=info event=router.ready"), std::string::npos) << log;
    EXPECT_NE(log.find("event=conn.hello"), std::string::npos) << log;
    EXPECT_NE(log.find("name=short-lived"), std::string::npos) << log;
    EXPECT_NE(log.find("event=conn.goodbye"), std::string::npos) << log;
    EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
    EXPECT_EQ(log.find("level=warn"), std::string::npos) << log;
}

TEST(RouterOperations, JsonLogs) {
    router_process router({"--log-format", "json"});
    ASSERT_TRUE(router.ready());
    const std::string log = router.log();
    const std::string first = log.substr(0, log.find('\n'));
    const auto doc = nlohmann::json::parse(first, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << first;
    EXPECT_EQ(doc["level"], "info");
    EXPECT_EQ(doc["event"], "router.ready");
}

TEST(RouterOperations, SigtermDrainsLetsCallsFinishAndExitsZero) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());
    // Answers after 500 ms: the request is in flight when the signal comes.
    backend.set_handler([&backend](client_engine&, const recorded_event& ev, time_ms) {
        if (ev.kind != event_kind::incoming_request) return;
        const std::uint32_t id = ev.id;
        backend.after(500ms, [id](client_engine& e, time_ms) {
            const auto reply = bytes_of("finished");
            EXPECT_FALSE(e.respond(id, reply));
        });
    });
    const std::uint32_t reg = backend.register_service("work", {{"do", method_kind::unary}});
    ASSERT_TRUE(backend.wait_for(is(event_kind::ack, reg)));

    const std::uint32_t id = frontend.request("work", "do", "", 10000);
    ASSERT_TRUE(backend.wait_for(is(event_kind::incoming_request)));
    const auto start = std::chrono::steady_clock::now();
    const auto status = router.signal_and_wait(SIGTERM, 15s);
    ASSERT_TRUE(status) << "the router exits after draining";
    EXPECT_EQ(*status, 0);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);

    const auto response = frontend.wait_for(is(event_kind::response, id));
    ASSERT_TRUE(response) << "the call in flight completed";
    EXPECT_EQ(response->payload_text(), "finished");
    const auto goodbye = [](const recorded_event& e) {
        return e.kind == event_kind::state_changed && e.code == static_cast<std::uint16_t>(errc::going_away);
    };
    EXPECT_TRUE(frontend.wait_for(goodbye)) << "the frontend was told going_away";
    EXPECT_TRUE(backend.wait_for(goodbye)) << "the backend was told going_away";
}

TEST(RouterOperations, SigtermWhileTheReadyLineIsOnItsWayDrainsAndExitsZero) {
    // A supervisor stops the router as soon as it reads the ready line. The
    // router's stdout is held full, so the signal lands exactly while the
    // line is being written: the router must already be handling it then.
    launch_options options;
    options.before_ready_line = [](pid_t pid) { ::kill(pid, SIGTERM); };
    router_process router({}, options);
    ASSERT_TRUE(router.ready()) << "the ready line still came out whole";
    const auto status = router.wait_exit(10s);
    ASSERT_TRUE(status) << "the router drained and exited by itself";
    EXPECT_EQ(*status, 0);
    const std::string log = router.wait_for_log("event=router.stopped");
    EXPECT_NE(log.find("event=router.signal signal=15 action=drain"), std::string::npos) << log;
    EXPECT_NE(log.find("event=router.stopped"), std::string::npos) << log;
}

TEST(RouterOperations, DrainFailsCallsThatOutliveTheDrainTimeout) {
    router_process router({"--drain-timeout-ms", "300"});
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());
    const std::uint32_t reg = backend.register_service("never", {{"answers", method_kind::unary}});
    ASSERT_TRUE(backend.wait_for(is(event_kind::ack, reg)));
    const std::uint32_t id = frontend.request("never", "answers", "", 30000);
    ASSERT_TRUE(backend.wait_for(is(event_kind::incoming_request)));

    const auto status = router.signal_and_wait(SIGTERM, 10s);
    ASSERT_TRUE(status);
    EXPECT_EQ(*status, 0);
    const auto error = frontend.wait_for(is_error(id));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->error(), errc::going_away);
}

TEST(RouterOperations, HealthzAnswers503UntilTheDrainEnds) {
    router_process router({"--drain-timeout-ms", "60000"});
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());
    const std::uint32_t reg = backend.register_service("never", {{"answers", method_kind::unary}});
    ASSERT_TRUE(backend.wait_for(is(event_kind::ack, reg)));
    frontend.request("never", "answers", "", 60000);
    ASSERT_TRUE(backend.wait_for(is(event_kind::incoming_request)));

    // The call keeps the drain going: a load balancer polling /healthz sees it.
    ::kill(router.pid(), SIGTERM);
    router.wait_for_log("event=router.drain");
    const http_result health = http_get(router.http_address(), "/healthz");
    EXPECT_EQ(health.status, 503);
    EXPECT_EQ(health.body, "draining\n");
    EXPECT_EQ(ws_upgrade(router.http_address(), "/ws", "").status, 503) << "no new WebSocket sessions";

    const auto status = router.signal_and_wait(SIGTERM, 10s);  // the second signal hurries the drain
    ASSERT_TRUE(status);
    EXPECT_EQ(*status, 0);
}

TEST(RouterOperations, DrainRedirectsClientsWhenConfigured) {
    router_process router({"--drain-redirect-url", "ws://127.0.0.1:9/ws"});
    ASSERT_TRUE(router.ready());
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(frontend.wait_ready());
    const auto status = router.signal_and_wait(SIGTERM, 10s);
    ASSERT_TRUE(status);
    EXPECT_EQ(*status, 0);
    const auto redirected = frontend.wait_for(is(event_kind::redirected));
    ASSERT_TRUE(redirected);
    EXPECT_EQ(redirected->name, "ws://127.0.0.1:9/ws");
}

TEST(RouterOperations, AnAddressInUseIsAClearError) {
    router_process first;
    ASSERT_TRUE(first.ready());
    const run_result second = run_router_once({"--listen", first.http_address(), "--backend", "tcp://127.0.0.1:0"});
    EXPECT_EQ(second.status, 1);
    EXPECT_NE(second.err.find("cannot bind"), std::string::npos) << second.err;
}

}  // namespace
}  // namespace hyperstreams::testing
