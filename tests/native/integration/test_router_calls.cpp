// The real router binary: requests and streams from frontends to backends
// that registered services, load balancing, deadlines, named errors, and a
// backend process killed in the middle of a request.
#include <gtest/gtest.h>

#include <csignal>
#include <map>

#include "router_process.hpp"
#include "test_client.hpp"

namespace hyperstreams::testing {
namespace {

// Answers every request with "<name>:<payload>".
void serve_echo(test_client& backend, std::string name) {
    backend.set_handler([name](client_engine& e, const recorded_event& ev, time_ms) {
        if (ev.kind != event_kind::incoming_request) return;
        const auto reply = bytes_of(name + ":" + ev.payload_text());
        EXPECT_FALSE(e.respond(ev.id, reply));
    });
}

std::uint32_t registered(test_client& backend, const std::string& service, std::vector<method_info> methods) {
    const std::uint32_t id = backend.register_service(service, std::move(methods));
    EXPECT_TRUE(backend.wait_for(is(event_kind::ack, id))) << "register " << service;
    return id;
}

TEST(RouterCalls, RequestReachesABackendAndTheResponseComesBack) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());
    serve_echo(backend, "b1");
    registered(backend, "orders", {{"get", method_kind::unary}});

    const std::uint32_t id = frontend.request("orders", "get", "42");
    const auto response = frontend.wait_for(is(event_kind::response, id));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->payload_text(), "b1:42");

    const auto incoming = backend.wait_for(is(event_kind::incoming_request));
    ASSERT_TRUE(incoming);
    EXPECT_EQ(incoming->name, "orders");
    EXPECT_EQ(incoming->method, "get");
}

TEST(RouterCalls, BackendsCallEachOtherToo) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client server(backend_config(router.backend_url()));
    test_client caller(backend_config(router.backend_url()));
    ASSERT_TRUE(server.wait_ready() && caller.wait_ready());
    serve_echo(server, "s");
    registered(server, "inventory", {{"count", method_kind::unary}});
    const std::uint32_t id = caller.request("inventory", "count", "x");
    const auto response = caller.wait_for(is(event_kind::response, id));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->payload_text(), "s:x");
}

TEST(RouterCalls, RequestsAreSpreadOverTheInstancesOfAService) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client b1(backend_config(router.backend_url(), "b1"));
    test_client b2(backend_config(router.backend_url(), "b2"));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(b1.wait_ready() && b2.wait_ready() && frontend.wait_ready());
    serve_echo(b1, "b1");
    serve_echo(b2, "b2");
    registered(b1, "orders", {{"get", method_kind::unary}});
    registered(b2, "orders", {{"get", method_kind::unary}});

    std::vector<std::uint32_t> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(frontend.request("orders", "get", std::to_string(i)));
    std::map<std::string, int> by_backend;
    for (std::uint32_t id : ids) {
        const auto r = frontend.wait_for(is(event_kind::response, id));
        ASSERT_TRUE(r) << "request " << id;
        ++by_backend[r->payload_text().substr(0, 2)];
    }
    EXPECT_GE(by_backend["b1"], 5);
    EXPECT_GE(by_backend["b2"], 5);
}

TEST(RouterCalls, NamedErrorsForServicesNobodyServes) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(frontend.wait_ready());

    const std::uint32_t unknown = frontend.request("nobody", "home", "");
    const auto e1 = frontend.wait_for(is_error(unknown));
    ASSERT_TRUE(e1);
    EXPECT_EQ(e1->error(), errc::no_such_service);

    {
        test_client backend(backend_config(router.backend_url()));
        ASSERT_TRUE(backend.wait_ready());
        registered(backend, "orders", {{"get", method_kind::unary}});
        const auto closed = backend.run([](client_engine& e, time_ms now) { return e.close(now); });
        ASSERT_FALSE(closed);
        // The router logs the goodbye in the same call that removes the instance.
        router.wait_for_log("event=conn.goodbye");
    }
    const std::uint32_t gone = frontend.request("orders", "get", "");
    const auto e2 = frontend.wait_for(is_error(gone));
    ASSERT_TRUE(e2);
    EXPECT_EQ(e2->error(), errc::no_instance_available) << describe(*e2);
}

TEST(RouterCalls, TheRouterEnforcesItsDeadline) {
    router_process router({"--requests-max-deadline-ms", "300", "--requests-default-deadline-ms", "300"});
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());
    registered(backend, "slow", {{"op", method_kind::unary}});  // never answers

    const auto start = std::chrono::steady_clock::now();
    const std::uint32_t id = frontend.request("slow", "op", "", 10000);
    const auto error = frontend.wait_for(is_error(id));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(error);
    EXPECT_EQ(error->error(), errc::deadline_exceeded);
    EXPECT_LT(elapsed, 3s) << "the router's 300 ms, not the client's 10 s";
    EXPECT_TRUE(backend.wait_for(is(event_kind::cancelled))) << "the backend is told to stop";
}

TEST(RouterCalls, ABackendKilledInTheMiddleOfARequestFailsItAtOnce) {
    router_process router;
    ASSERT_TRUE(router.ready());
    child_process doomed(HYPERSTREAMS_TEST_BACKEND, {router.backend_url(), "victim", "hang"});
    ASSERT_EQ(doomed.read_line(10s), "ready");
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(frontend.wait_ready());

    const std::uint32_t id = frontend.request("victim", "hang", "", 30000);
    ASSERT_EQ(doomed.read_line(10s), "request");
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(doomed.kill_and_wait(SIGKILL, 5s));
    const auto error = frontend.wait_for(is_error(id), 10s);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(error);
    EXPECT_EQ(error->error(), errc::backend_gone) << describe(*error);
    EXPECT_LT(elapsed, 3s) << "found by the dead TCP connection, not by a heartbeat timeout";

    const std::uint32_t again = frontend.request("victim", "hang", "");
    const auto e2 = frontend.wait_for(is_error(again));
    ASSERT_TRUE(e2);
    EXPECT_EQ(e2->error(), errc::no_instance_available);
}

TEST(RouterCalls, StreamsFlowWithCreditAndEnd) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());

    // The backend sends 20 items as fast as the credit allows, then ends.
    struct producer {
        std::uint32_t stream = 0;
        int sent = 0;
        bool ended = false;
    };
    auto state = std::make_shared<producer>();
    backend.set_handler([state](client_engine& e, const recorded_event& ev, time_ms) {
        if (ev.kind == event_kind::incoming_stream) state->stream = ev.id;
        if (ev.kind != event_kind::incoming_stream && ev.kind != event_kind::stream_credit) return;
        if (state->ended) return;
        while (state->sent < 20) {
            const auto item = bytes_of(std::to_string(state->sent));
            if (e.stream_send(state->stream, item) != stream_send_status::ok) return;
            ++state->sent;
        }
        EXPECT_FALSE(e.stream_end(state->stream));
        state->ended = true;
    });
    registered(backend, "feed", {{"watch", method_kind::stream}});

    // The frontend consumes each item as it arrives, which grants credit back
    // (items that arrive with the end need no credit: the engine refuses those).
    frontend.set_handler([](client_engine& e, const recorded_event& ev, time_ms) {
        if (ev.kind == event_kind::stream_item) (void)e.stream_consumed(ev.id, 1);
    });
    const call_result open = frontend.run([](client_engine& e, time_ms now) {
        const auto q = bytes_of("q");
        return e.open_stream("feed", "watch", q, 4, 0, now);
    });
    ASSERT_FALSE(open.error);
    ASSERT_TRUE(frontend.wait_for(is(event_kind::stream_end, open.id), 10s));
    const auto items = frontend.events(is(event_kind::stream_item, open.id));
    ASSERT_EQ(items.size(), 20u);
    for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].payload_text(), std::to_string(i));
    EXPECT_GE(backend.count(is(event_kind::stream_credit)), 1u) << "credit came back through the router";
}

TEST(RouterCalls, ACallerCancelsAStream) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());
    registered(backend, "feed", {{"watch", method_kind::stream}});
    const call_result open = frontend.run([](client_engine& e, time_ms now) {
        return e.open_stream("feed", "watch", {}, 4, 0, now);
    });
    ASSERT_FALSE(open.error);
    const auto incoming = backend.wait_for(is(event_kind::incoming_stream));
    ASSERT_TRUE(incoming);
    ASSERT_FALSE(frontend.run([&](client_engine& e, time_ms) { return e.cancel(open.id); }));
    const auto cancelled = backend.wait_for(is(event_kind::cancelled, incoming->id));
    ASSERT_TRUE(cancelled);
    EXPECT_EQ(cancelled->error(), errc::cancelled);
}

TEST(RouterCalls, ABackendCancelsAStream) {
    router_process router;
    ASSERT_TRUE(router.ready());
    test_client backend(backend_config(router.backend_url()));
    test_client frontend(frontend_config(router.ws_url()));
    ASSERT_TRUE(backend.wait_ready() && frontend.wait_ready());
    backend.set_handler([](client_engine& e, const recorded_event& ev, time_ms) {
        if (ev.kind == event_kind::incoming_stream)
            EXPECT_FALSE(e.respond_error(ev.id, errc::cancelled, "shutting this feed down"));
    });
    registered(backend, "feed", {{"watch", method_kind::stream}});
    const call_result open = frontend.run([](client_engine& e, time_ms now) {
        return e.open_stream("feed", "watch", {}, 4, 0, now);
    });
    const auto error = frontend.wait_for(is_error(open.id));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->error(), errc::cancelled);
    EXPECT_EQ(error->text, "shutting this feed down");
}

}  // namespace
}  // namespace hyperstreams::testing
