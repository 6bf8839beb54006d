// hyperstreams::backend against the real router binary: services, streams
// with credit, pub/sub with the web side (a WebSocket frontend), direct
// messages, load sharing, a backend restarting, the router restarting, and
// the README example as a process; the caller's side (server streams,
// subscriptions from a position, tokens, broadcasts) and the Asio
// completion tokens (coroutines, futures, callbacks).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <zmq.h>

#include "hyperstreams/backend.hpp"
#include "hyperstreams/native/engine_host.hpp"
#include "test_backend_support.hpp"
#include "token_maker.hpp"

namespace {

using namespace std::chrono_literals;
namespace hs = hyperstreams::backend;
using hyperstreams::errc;
using hyperstreams::backend_testing::eventually;
using hyperstreams::backend_testing::process;
using hyperstreams::backend_testing::router_process;
using hyperstreams::backend_testing::stream_caller;

hs::options backend_options(const router_process& router, std::string name) {
    hs::options o;
    o.url = router.backend_url();
    o.name = std::move(name);
    return o;
}

hs::options web_options(const router_process& router) {
    hs::options o;
    o.url = router.ws_url();
    o.name = "web";
    return o;
}

// Retries a call until the router has the service (registration is async).
hs::response call_until_served(hs::client& caller, const std::string& service, const std::string& method,
                               const std::string& data, std::chrono::milliseconds timeout = 10s) {
    hs::response r;
    eventually(
        [&] {
            r = caller.request(service, method, data, 2s).get();
            return !r.error || (r.error != errc::no_such_service && r.error != errc::no_instance_available);
        },
        timeout);
    return r;
}

template <class T>
class mailbox {
public:
    void push(T v) {
        std::lock_guard lock(mu_);
        items_.push_back(std::move(v));
    }
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return items_.size();
    }
    std::vector<T> items() const {
        std::lock_guard lock(mu_);
        return items_;
    }

private:
    mutable std::mutex mu_;
    std::vector<T> items_;
};

TEST(Backend, RegistersAServiceAndAnswersAWebCaller) {
    router_process router;
    hs::client backend(backend_options(router, "greeter"));
    backend.provide("greeter", "hello", [](hs::request req, hs::reply reply) {
        EXPECT_EQ(req.service, "greeter");
        EXPECT_EQ(req.method, "hello");
        reply.send_json(R"({"greeting":"hello, )" + std::string(req.text()) + R"("})");
    });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));

    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response r = web.request("greeter", "hello", "ada", 5s).get();
    ASSERT_FALSE(r.error) << r.error.message() << " " << r.error_text;
    EXPECT_TRUE(r.data.is_json);
    EXPECT_EQ(r.data.text(), R"({"greeting":"hello, ada"})");

    const hs::response missing = web.request("greeter", "nope", "", 5s).get();
    EXPECT_EQ(missing.error, errc::no_such_service) << missing.error.message();
}

TEST(Backend, ConnectsOverCurveWithAKeyTheRouterLists) {
    char server_public[41], server_secret[41], own_public[41], own_secret[41];
    ASSERT_EQ(zmq_curve_keypair(server_public, server_secret), 0);
    ASSERT_EQ(zmq_curve_keypair(own_public, own_secret), 0);
    const std::string clients = std::string(R"({")") + own_public + R"(":{"register":["greeter"]}})";
    router_process router({"--backend-auth-curve-secret-key", server_secret, "--backend-auth-curve-clients", clients});
    hs::options o = backend_options(router, "greeter");
    o.curve_server_key = server_public;
    o.curve_public_key = own_public;
    o.curve_secret_key = own_secret;
    hs::client backend(o);
    backend.provide("greeter", "hello", [](hs::request req, hs::reply reply) { reply.send(req.text()); });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));

    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response r = call_until_served(web, "greeter", "hello", "over curve");
    ASSERT_FALSE(r.error) << r.error.message() << " " << r.error_text;
    EXPECT_EQ(r.data.text(), "over curve");

    // Without the keys the same backend never gets in.
    hs::client plain(backend_options(router, "plain"));
    plain.start();
    EXPECT_FALSE(plain.wait_ready(500ms));
}

// ipc://: the same ZeroMQ transport over a Unix domain socket.
TEST(Backend, ServesOverIpc) {
    const std::string endpoint = "ipc://" + (hyperstreams::backend_testing::temp_dir() / "router.ipc").string();
    router_process router({"--backend", endpoint});
    ASSERT_EQ(router.backend_url(), endpoint);
    hs::client backend(backend_options(router, "greeter"));
    backend.provide("greeter", "hello", [](hs::request req, hs::reply reply) { reply.send(req.text()); });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));

    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response r = call_until_served(web, "greeter", "hello", "over ipc");
    ASSERT_FALSE(r.error) << r.error.message() << " " << r.error_text;
    EXPECT_EQ(r.data.text(), "over ipc");
}

// A tool's client over wss://, trusting the router's self-signed certificate
// through tls_ca_file; without it, on_error says why it cannot connect.
TEST(Backend, CallsOverWssTrustingItsCaFile) {
    const auto cert = hyperstreams::testing::make_self_signed_certificate();
    const std::string cert_file = hyperstreams::testing::write_temp_file("backend-router.crt", cert.cert_pem);
    const std::string key_file = hyperstreams::testing::write_temp_file("backend-router.key", cert.key_pem);
    router_process router({"--tls-cert-file", cert_file, "--tls-key-file", key_file});
    hs::client backend(backend_options(router, "greeter"));
    backend.provide("greeter", "hello", [](hs::request req, hs::reply reply) { reply.send(req.text()); });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));

    hs::options o;
    o.url = "wss://" + router.http_address() + "/ws";
    o.name = "web";
    o.tls_ca_file = cert_file;
    hs::client web(o);
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response r = call_until_served(web, "greeter", "hello", "over tls");
    ASSERT_FALSE(r.error) << r.error.message() << " " << r.error_text;
    EXPECT_EQ(r.data.text(), "over tls");

    mailbox<std::pair<std::error_code, std::string>> errors;
    hs::options untrusting = o;
    untrusting.tls_ca_file.clear();
    untrusting.on_error = [&](std::error_code error, std::string_view text) { errors.push({error, std::string(text)}); };
    hs::client refused(untrusting);
    refused.start();
    ASSERT_TRUE(eventually([&] { return errors.size() > 0; }));
    const auto [error, text] = errors.items().front();
    EXPECT_EQ(error, errc::transport_handshake_failed) << text;
    EXPECT_NE(text.find("TLS: the certificate of " + router.http_address() + " is not trusted: self-signed certificate"),
              std::string::npos)
        << text;
    EXPECT_FALSE(refused.wait_ready(100ms));
}

// options::urls, the routers of a cluster: the first is down (a closed
// port), so the client goes on to the next after one refused attempt, says
// why the first failed, and serves through the second.
TEST(Backend, GoesOnToTheNextRouterOfItsListWhenOneIsDown) {
    router_process router;
    hs::options o = backend_options(router, "listed");
    o.urls = {"tcp://127.0.0.1:1", router.backend_url()};
    mailbox<std::string> errors;
    o.on_error = [&](std::error_code error, std::string_view text) {
        errors.push(std::string(hyperstreams::errc_name(static_cast<std::uint16_t>(error.value()))) + ": " +
                    std::string(text));
    };
    hs::client backend(o);
    backend.provide("listed", "where", [](hs::request, hs::reply reply) { reply.send("here"); });
    const auto started = std::chrono::steady_clock::now();
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "not the backoff schedule of one dead router";
    // Reported on the handler thread: it may come after wait_ready() returned.
    ASSERT_TRUE(eventually([&] { return errors.size() > 0; }));
    EXPECT_NE(errors.items().front().find("connection_refused: nothing accepts connections at tcp://127.0.0.1:1"),
              std::string::npos)
        << errors.items().front();

    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response r = call_until_served(web, "listed", "where", "");
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_EQ(r.data.text(), "here");
}

TEST(Backend, RepliesLaterFromAnotherThreadAndFailsForgottenReplies) {
    router_process router;
    // What the handlers touch outlives the client that runs them.
    std::vector<std::thread> workers;
    std::mutex workers_mu;
    hs::client backend(backend_options(router, "later"));
    backend.provide("later", "echo", [&](hs::request req, hs::reply reply) {
        std::lock_guard lock(workers_mu);
        workers.emplace_back([req = std::move(req), reply = std::move(reply)]() mutable {
            std::this_thread::sleep_for(50ms);
            EXPECT_TRUE(reply.send(req.bytes()));
            EXPECT_FALSE(reply.send("twice"));
        });
    });
    backend.provide("later", "forget", [](hs::request, hs::reply) {});
    backend.provide("later", "throw", [](hs::request, hs::reply) { throw std::runtime_error("boom"); });
    backend.provide("later", "fail", [](hs::request, hs::reply reply) {
        reply.fail(errc::invalid_argument, "bad input");
    });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));

    hs::client caller(backend_options(router, "caller"));
    caller.start();
    ASSERT_TRUE(caller.wait_ready(10s));
    const hs::response echo = caller.request("later", "echo", "payload", 5s).get();
    ASSERT_FALSE(echo.error) << echo.error.message();
    EXPECT_EQ(echo.data.text(), "payload");

    const hs::response forgot = caller.request("later", "forget", "", 5s).get();
    EXPECT_EQ(forgot.error, errc::handler_failed);
    const hs::response threw = caller.request("later", "throw", "", 5s).get();
    EXPECT_EQ(threw.error, errc::handler_failed);
    EXPECT_EQ(threw.error_text, "boom");
    const hs::response failed = caller.request("later", "fail", "", 5s).get();
    EXPECT_EQ(failed.error, errc::invalid_argument);
    EXPECT_EQ(failed.error_text, "bad input");

    std::lock_guard lock(workers_mu);
    for (auto& t : workers) t.join();
}

TEST(Backend, InlineHandlersAndCustomExecutorsRunTheHandlers) {
    router_process router;
    hs::options inline_opts = backend_options(router, "inline");
    inline_opts.handlers = hs::handler_threading::io_thread;
    hs::client inline_backend(inline_opts);
    inline_backend.provide("inline", "ping", [](hs::request, hs::reply reply) { reply.send("pong"); });
    inline_backend.start();

    std::atomic<int> executed{0};
    hs::options custom = backend_options(router, "custom");
    custom.handler_executor = [&](std::function<void()> task) {
        ++executed;
        std::thread(std::move(task)).detach();
    };
    hs::client custom_backend(custom);
    custom_backend.provide("custom", "ping", [](hs::request, hs::reply reply) { reply.send("pong"); });
    custom_backend.start();
    ASSERT_TRUE(inline_backend.wait_ready(10s));
    ASSERT_TRUE(custom_backend.wait_ready(10s));

    hs::client caller(web_options(router));
    caller.start();
    EXPECT_EQ(caller.request("inline", "ping", "", 5s).get().data.text(), "pong");
    EXPECT_EQ(caller.request("custom", "ping", "", 5s).get().data.text(), "pong");
    EXPECT_GE(executed.load(), 1);
}

TEST(Backend, StreamsRespectCreditAndSeeCancellation) {
    router_process router;
    // What the handlers touch outlives the client that runs them.
    mailbox<hs::write_status> statuses;
    std::atomic<bool> saw_cancel{false};
    std::vector<std::thread> writers;
    std::mutex writers_mu;
    hs::client backend(backend_options(router, "counter"));
    backend.provide_stream("counter", "count", [&](hs::request, hs::stream_writer out) {
        std::lock_guard lock(writers_mu);
        writers.emplace_back([&, out = std::move(out)]() mutable {
            for (int i = 1; i <= 6; ++i) {
                const hs::write_status s = out.write(std::to_string(i), i == 3 ? 300ms : 10s);
                statuses.push(s);
                if (s == hs::write_status::timeout) --i;  // retry the same item
                if (s == hs::write_status::cancelled) {
                    saw_cancel = true;
                    return;
                }
            }
            out.end();
        });
    });
    backend.provide_stream("counter", "forever", [&](hs::request, hs::stream_writer out) {
        std::lock_guard lock(writers_mu);
        writers.emplace_back([&, out = std::move(out)]() mutable {
            for (int i = 0; i < 1000; ++i) {
                const hs::write_status s = out.write("tick", 10s);
                if (s == hs::write_status::cancelled) {
                    saw_cancel = true;
                    return;
                }
            }
            out.end();
        });
    });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));

    stream_caller web(router.ws_url());
    ASSERT_TRUE(eventually([&] { return web.ready(); }));
    web.open("counter", "count", 2);
    // Two items fit in the credit; the third write waits and times out.
    ASSERT_TRUE(eventually([&] { return statuses.size() >= 3 && web.items().size() >= 2; }));
    EXPECT_EQ(web.items(), (std::vector<std::string>{"1", "2"}));
    EXPECT_EQ(statuses.items()[2], hs::write_status::timeout);
    web.consume_all();
    ASSERT_TRUE(eventually([&] { return web.items().size() >= 3; }));
    ASSERT_TRUE(eventually([&] {
        web.consume_all();
        return web.ended();
    }));
    EXPECT_EQ(web.items(), (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));

    stream_caller canceller(router.ws_url());
    ASSERT_TRUE(eventually([&] { return canceller.ready(); }));
    canceller.open("counter", "forever", 4);
    ASSERT_TRUE(eventually([&] { return canceller.items().size() == 4; }));
    canceller.cancel();
    EXPECT_TRUE(eventually([&] { return saw_cancel.load(); }));

    std::lock_guard lock(writers_mu);
    for (auto& t : writers) t.join();
}

// A writer's thread may outlive the client that handed it the writer: the
// client goes while the writer waits for credit, and the writer then learns
// it (cancelled, or closed) and may be the last to let go of the connection. Under the sanitizers,
// a writer that kept the connection alive past the client's I/O context
// destroyed timers of a context already gone (a CI failure, in an example
// service that joined its writers after its client).
TEST(Backend, AWriterOutlivesItsClient) {
    router_process router;
    constexpr int waiting = 4;  // writers that wait for credit when the client goes
    constexpr int spinning = 4;  // writers that never wait, all through the client's going
    mailbox<hs::write_status> after;  // what each writer saw once the client was gone
    std::atomic<bool> gone{false};
    std::vector<std::thread> writers;
    std::mutex writers_mu;
    auto backend = std::make_unique<hs::client>(backend_options(router, "counter"));
    backend->provide_stream("counter", "wait", [&](hs::request, hs::stream_writer out) {
        std::lock_guard lock(writers_mu);
        writers.emplace_back([&, out = std::move(out)]() mutable {
            hs::write_status s = hs::write_status::ok;
            while (s == hs::write_status::ok) s = out.write("item", 10s);
            while (!gone.load()) std::this_thread::yield();
            after.push(out.write("late", 10s));
        });
    });
    backend->provide_stream("counter", "spin", [&](hs::request, hs::stream_writer out) {
        std::lock_guard lock(writers_mu);
        writers.emplace_back([&, out = std::move(out)]() mutable {
            // Bounded: the client goes within seconds.
            const auto until = std::chrono::steady_clock::now() + 20s;
            while (!gone.load() && std::chrono::steady_clock::now() < until) (void)out.write("item", 0ms);
            after.push(out.write("late", 0ms));
        });
    });
    backend->start();
    ASSERT_TRUE(backend->wait_ready(10s));

    std::vector<std::unique_ptr<stream_caller>> callers;
    for (int i = 0; i < waiting + spinning; ++i) {
        callers.push_back(std::make_unique<stream_caller>(router.ws_url()));
        ASSERT_TRUE(eventually([&] { return callers.back()->ready(); }));
        callers.back()->open("counter", i < waiting ? "wait" : "spin", 2);
    }
    // Every caller took its two items and grants no more.
    ASSERT_TRUE(eventually([&] {
        for (const auto& c : callers)
            if (c->items().size() < 2) return false;
        return true;
    }));
    backend.reset();
    gone = true;
    ASSERT_TRUE(eventually([&] { return after.size() == waiting + spinning; }));
    // Closed once the connection is gone; cancelled while another writer
    // still holds it for an instant.
    for (const hs::write_status s : after.items())
        EXPECT_TRUE(s == hs::write_status::closed || s == hs::write_status::cancelled) << hs::write_status_name(s);
    std::lock_guard lock(writers_mu);
    for (auto& t : writers) t.join();
}

// A handler on the client's handler thread may hold the client for an
// instant (a handle's call) just when its owner destroys it. The destructor
// still returns only once no handler of the client runs, and every thread
// of the client ends. The handler calls consume(0), which only looks at the
// client, over and over while its owner destroys it.
TEST(Backend, NoHandlerRunsOnceTheClientsDestructorReturned) {
    router_process router;
    hs::client service(backend_options(router, "counter"));
    service.provide_stream("counter", "count", [](hs::request, hs::stream_writer out) {
        (void)out.write("1", 0ms);  // the caller's credit: one item, then it waits
    });
    service.start();
    ASSERT_TRUE(service.wait_ready(10s));

    const auto threads = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/self/task")) ++n;
        return n;
    };
    const std::size_t threads_before = threads();
    std::atomic<bool> spinning{false};
    std::atomic<bool> destroying{false};
    std::atomic<bool> destructor_returned{false};
    std::atomic<bool> ran_after{false};
    std::atomic<bool> handler_done{false};
    auto caller = std::make_unique<hs::client>(backend_options(router, "caller"));
    caller->start();
    ASSERT_TRUE(caller->wait_ready(10s));
    auto handle = std::make_shared<hs::stream_handle>();
    std::mutex handle_mu;
    hs::stream_options manual;
    manual.credit = 1;
    manual.manual_credit = true;
    std::unique_lock opening(handle_mu);  // the item's handler reads the handle once it is set
    *handle = caller->open_stream(
        "counter", "count", "",
        [&, handle](hs::received) {
            hs::stream_handle h;
            {
                std::lock_guard l(handle_mu);
                h = *handle;
            }
            spinning = true;
            // Until well after the owner began: bounded, and long enough
            // for the owner's close to finish meanwhile.
            const auto give_up = std::chrono::steady_clock::now() + 20s;
            std::optional<std::chrono::steady_clock::time_point> until;
            while (std::chrono::steady_clock::now() < give_up) {
                if (!until && destroying) until = std::chrono::steady_clock::now() + 2s;
                if (until && std::chrono::steady_clock::now() > *until) break;
                h.consume(0);
            }
            ran_after = destructor_returned.load();
            handler_done = true;
        },
        [](std::error_code, std::string_view) {}, manual);
    opening.unlock();
    ASSERT_TRUE(*handle);
    ASSERT_TRUE(eventually([&] { return spinning.load(); }));
    destroying = true;
    caller.reset();
    destructor_returned = true;
    ASSERT_TRUE(eventually([&] { return handler_done.load(); }, 30s));
    EXPECT_FALSE(ran_after) << "the handler was still running when the client's destructor returned";
    EXPECT_TRUE(eventually([&] { return threads() <= threads_before; }, 10s)) << threads() << " threads";
}

TEST(Backend, PublishesToAndSubscribesFromTheWebSide) {
    router_process router;
    // What the handlers touch outlives the clients that run them.
    mailbox<hs::message> from_web;
    mailbox<hs::message> to_web;
    hs::client backend(backend_options(router, "pubsub"));
    backend.start();
    auto sub = backend.subscribe("ui.*.clicks", [&](const hs::message& m) { from_web.push(m); });
    ASSERT_TRUE(backend.wait_ready(10s));

    hs::client web(web_options(router));
    web.start();
    web.subscribe("orders.>", [&](const hs::message& m) { to_web.push(m); });
    ASSERT_TRUE(web.wait_ready(10s));

    // Subscriptions are acknowledged asynchronously: publish until one lands.
    ASSERT_TRUE(eventually([&] {
        backend.publish("orders.created", hs::json(R"({"id":1})"));
        return to_web.size() > 0;
    }));
    const hs::message m = to_web.items().front();
    EXPECT_EQ(m.channel, "orders.created");
    EXPECT_TRUE(m.data.is_json);
    EXPECT_EQ(m.data.text(), R"({"id":1})");
    EXPECT_GE(m.seq, 1u);

    ASSERT_TRUE(eventually([&] {
        web.publish("ui.home.clicks", "x=1");
        return from_web.size() > 0;
    }));
    EXPECT_EQ(from_web.items().front().channel, "ui.home.clicks");
    EXPECT_EQ(from_web.items().front().data.text(), "x=1");
    EXPECT_FALSE(from_web.items().front().data.is_json);

    const hs::publish_ack ack = backend.publish_with_ack("orders.created", hs::json("{}")).get();
    EXPECT_FALSE(ack.error) << ack.error.message();
    EXPECT_GE(ack.seq, 1u);

    sub.unsubscribe();
}

// publish options: a key's repeat is acked with the first position and
// not delivered again, another payload under it is key_reused, and a ttl
// of 0 is refused before anything is sent.
TEST(Backend, PublishesWithAnIdempotencyKeyAndATtl) {
    router_process router;
    hs::client backend(backend_options(router, "keyed"));
    mailbox<hs::message> got;  // outlives the client whose handler fills it
    hs::subscription sub = backend.subscribe("orders.created", [&](const hs::message& m) { got.push(m); });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));
    // The subscription is in place once a publish on the channel comes back.
    ASSERT_TRUE(eventually([&] {
        (void)backend.publish_with_ack("orders.created", "probe").get();
        return got.size() > 0;
    }));

    hs::publish_options keyed;
    keyed.key = "order-17";
    keyed.ttl_s = 60;
    const hs::publish_ack first = backend.publish_with_ack("orders.created", "qty 3", keyed).get();
    ASSERT_FALSE(first.error) << first.error.message();
    const hs::publish_ack again = backend.publish_with_ack("orders.created", "qty 3", keyed).get();
    ASSERT_FALSE(again.error) << again.error.message();
    EXPECT_EQ(again.epoch, first.epoch);
    EXPECT_EQ(again.seq, first.seq);
    const hs::publish_ack reused = backend.publish_with_ack("orders.created", "qty 4", keyed).get();
    EXPECT_EQ(reused.error, hyperstreams::errc::key_reused);

    hs::publish_options zero;
    zero.ttl_s = 0;
    EXPECT_EQ(backend.publish_with_ack("orders.created", "never", zero).get().error,
              hyperstreams::errc::invalid_argument);

    const hs::publish_ack marker = backend.publish_with_ack("orders.created", "marker").get();
    EXPECT_EQ(marker.seq, first.seq + 1);
    ASSERT_TRUE(eventually([&] { return got.size() > 0 && got.items().back().data.text() == "marker"; }));
    std::vector<std::string> texts;
    for (const hs::message& m : got.items())
        if (m.data.text() != "probe") texts.emplace_back(m.data.text());
    EXPECT_EQ(texts, (std::vector<std::string>{"qty 3", "marker"}));
    sub.unsubscribe();
}

TEST(Backend, SendsAndReceivesDirectMessages) {
    router_process router;
    hs::client backend(backend_options(router, "direct"));
    backend.on_direct([&](const hs::direct_message& m) {
        backend.send(m.from, "re: " + std::string(m.data.text()));
    });
    backend.start();
    ASSERT_TRUE(backend.wait_ready(10s));
    ASSERT_FALSE(backend.address().empty());

    mailbox<hs::direct_message> inbox;  // outlives the client whose handler fills it
    hs::client web(web_options(router));
    web.on_direct([&](const hs::direct_message& m) { inbox.push(m); });
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    web.send(backend.address(), "hi");
    ASSERT_TRUE(eventually([&] { return inbox.size() == 1; }));
    EXPECT_EQ(inbox.items().front().data.text(), "re: hi");
    EXPECT_EQ(inbox.items().front().from, backend.address());
}

// Presence (a namespace with presence and join_leave): who is subscribed,
// a join and a leave for the subscription that asked, and the named error
// where the namespace has none.
TEST(Backend, ReadsPresenceAndHearsJoinsAndLeaves) {
    router_process router({"--channels-namespaces", R"([{"pattern": "room.>", "presence": true, "join_leave": true}])"});
    mailbox<hs::presence_change> changes;  // outlives the client whose handler fills it
    hs::client watcher(backend_options(router, "watcher"));
    hs::subscribe_options with_events;
    with_events.on_join_leave = [&](const hs::presence_change& c) { changes.push(c); };
    watcher.subscribe("room.a", [](const hs::message&) {}, with_events);
    watcher.start();
    ASSERT_TRUE(watcher.wait_ready(10s));
    // Subscribed once the router lists it.
    ASSERT_TRUE(eventually([&] { return watcher.presence("room.a").get().count == 1; }));

    auto web = std::make_unique<hs::client>(web_options(router));
    web->subscribe("room.a", [](const hs::message&) {});
    web->start();
    ASSERT_TRUE(web->wait_ready(10s));
    const std::string web_address = web->address();
    ASSERT_TRUE(eventually([&] { return changes.size() == 1; }));
    EXPECT_TRUE(changes.items()[0].joined);
    EXPECT_EQ(changes.items()[0].channel, "room.a");
    EXPECT_EQ(changes.items()[0].member.address, web_address);
    EXPECT_EQ(changes.items()[0].member.name, "web");

    const hs::presence_result both = watcher.presence("room.a").get();
    ASSERT_FALSE(both.error) << both.error.message();
    EXPECT_EQ(both.count, 2u);
    ASSERT_EQ(both.members.size(), 2u);
    EXPECT_TRUE(std::any_of(both.members.begin(), both.members.end(),
                            [&](const hs::presence_member& m) { return m.address == web_address; }));

    web.reset();  // a disconnect is a leave
    ASSERT_TRUE(eventually([&] { return changes.size() == 2; }));
    EXPECT_FALSE(changes.items()[1].joined);
    EXPECT_EQ(changes.items()[1].member.address, web_address);

    EXPECT_EQ(watcher.presence("office.a").get().error, errc::not_enabled);
    EXPECT_EQ(watcher.presence("room.*").get().error, errc::invalid_argument);
}

// A backend subscribes a web client by its address (a server-side
// subscription: the router lists the client as a member) and ends it;
// the router's verdicts through a future and a completion token.
TEST(Backend, SubscribesAndUnsubscribesAWebClientByItsAddress) {
    router_process router({"--channels-namespaces", R"([{"pattern": "room.>", "presence": true}])"});
    hs::client backend(backend_options(router, "rooms"));
    backend.start();
    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(backend.wait_ready(10s) && web.wait_ready(10s));
    const std::string address = web.address();

    EXPECT_FALSE(backend.subscribe_client(address, "room.b").get());
    const hs::presence_result members = backend.presence("room.b").get();
    ASSERT_EQ(members.count, 1u);
    EXPECT_EQ(members.members.at(0).address, address);
    EXPECT_EQ(backend.subscribe_client(address, "room.b").get(), errc::already_subscribed);
    EXPECT_EQ(backend.subscribe_client(address + "0", "room.b").get(), errc::no_such_address);
    EXPECT_EQ(web.subscribe_client(address, "room.b").get(), errc::wrong_role) << "only backends may";

    std::future<std::error_code> ended = backend.unsubscribe_client(address, "room.b", boost::asio::use_future);
    EXPECT_FALSE(ended.get());
    EXPECT_EQ(backend.presence("room.b").get().count, 0u);
    EXPECT_EQ(backend.unsubscribe_client(address, "room.b", boost::asio::use_future).get(), errc::not_subscribed);
}

TEST(Backend, TwoInstancesShareTheLoad) {
    router_process router;
    auto make = [&](const std::string& name) {
        auto c = std::make_unique<hs::client>(backend_options(router, name));
        c->provide("work", "who", [name](hs::request, hs::reply reply) {
            std::this_thread::sleep_for(20ms);
            reply.send(name);
        });
        c->start();
        return c;
    };
    auto a = make("a");
    auto b = make("b");
    ASSERT_TRUE(a->wait_ready(10s));
    ASSERT_TRUE(b->wait_ready(10s));

    hs::client caller(web_options(router));
    caller.start();
    ASSERT_TRUE(caller.wait_ready(10s));
    std::vector<std::future<hs::response>> calls;
    for (int i = 0; i < 20; ++i) calls.push_back(caller.request("work", "who", "", 5s));
    std::map<std::string, int> served;
    for (auto& f : calls) {
        const hs::response r = f.get();
        ASSERT_FALSE(r.error) << r.error.message();
        ++served[std::string(r.data.text())];
    }
    EXPECT_GT(served["a"], 0);
    EXPECT_GT(served["b"], 0);

    const hs::services_result list = caller.services().get();
    ASSERT_FALSE(list.error);
    auto it = std::find_if(list.services.begin(), list.services.end(),
                           [](const hs::service_description& s) { return s.name == "work"; });
    ASSERT_NE(it, list.services.end());
    EXPECT_EQ(it->instances, 2);
}

TEST(Backend, ARestartingBackendComesBackAndCallersSeeNamedErrorsMeanwhile) {
    router_process router;
    auto make = [&] {
        auto c = std::make_unique<hs::client>(backend_options(router, "phoenix"));
        c->provide("phoenix", "alive", [](hs::request, hs::reply reply) { reply.send("yes"); });
        c->start();
        return c;
    };
    auto backend = make();
    ASSERT_TRUE(backend->wait_ready(10s));
    hs::client caller(web_options(router));
    caller.start();
    ASSERT_TRUE(caller.wait_ready(10s));
    EXPECT_EQ(caller.request("phoenix", "alive", "", 5s).get().data.text(), "yes");

    backend.reset();  // goodbye: the router forgets the instance
    hs::response down;
    ASSERT_TRUE(eventually([&] {
        down = caller.request("phoenix", "alive", "", 2s).get();
        return static_cast<bool>(down.error);
    }));
    EXPECT_TRUE(down.error == errc::no_such_service || down.error == errc::no_instance_available ||
                down.error == errc::backend_gone)
        << down.error.message();

    backend = make();
    const hs::response back = call_until_served(caller, "phoenix", "alive", "");
    ASSERT_FALSE(back.error) << back.error.message();
    EXPECT_EQ(back.data.text(), "yes");
}

TEST(Backend, ReconnectsReregistersAndResubscribesWhenTheRouterRestarts) {
    router_process router;
    mailbox<hs::message> seen;
    mailbox<std::string> states;
    hs::options opts = backend_options(router, "survivor");
    opts.on_state = [&](std::string_view s) { states.push(std::string(s)); };
    hs::client backend(opts);
    backend.provide("survivor", "ping", [](hs::request, hs::reply reply) { reply.send("pong"); });
    backend.start();
    backend.subscribe("news.>", [&](const hs::message& m) { seen.push(m); });
    ASSERT_TRUE(backend.wait_ready(10s));
    // on_state runs on the client's thread: "ready" may reach the mailbox
    // after wait_ready returned. Counted once it has.
    ASSERT_TRUE(eventually([&] {
        const auto all = states.items();
        return !all.empty() && all.back() == "ready";
    }));

    const std::size_t before = states.size();
    router.restart();  // same ports, a new process
    // The backend noticed: it left ready, and came back to it.
    ASSERT_TRUE(eventually([&] {
        const auto all = states.items();
        return all.size() >= before + 2 && all.back() == "ready";
    }, 20s));
    EXPECT_NE(states.items()[before], "ready");

    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response r = call_until_served(web, "survivor", "ping", "", 20s);
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_EQ(r.data.text(), "pong");
    ASSERT_TRUE(eventually([&] {
        web.publish("news.today", "fresh");
        return seen.size() > 0;
    }, 20s));
    EXPECT_EQ(seen.items().back().channel, "news.today");
}

TEST(Backend, TheReadmeExampleRunsAgainstTheRouter) {
    router_process router;
    process example({HELLO_BACKEND_BIN, router.backend_url()});
    mailbox<hs::message> ticks;  // outlives the client whose handler fills it
    hs::client web(web_options(router));
    web.start();
    web.subscribe("greeter.ticks", [&](const hs::message& m) { ticks.push(m); });
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response r = call_until_served(web, "greeter", "hello", "world");
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_EQ(r.data.text(), R"({"greeting":"hello, world"})");
    ASSERT_TRUE(eventually([&] { return ticks.size() > 0; }, 5s));
    EXPECT_TRUE(ticks.items().front().data.is_json);
    example.stop();
}

TEST(Backend, TheReadmeExampleAnswersValidJsonWhateverTheCallerSends) {
    router_process router;
    process example({HELLO_BACKEND_BIN, router.backend_url()});
    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const std::string tricky = R"("quoted" and \backslashed\)";
    const hs::response r = call_until_served(web, "greeter", "hello", tricky);
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_TRUE(r.data.is_json);
    const nlohmann::json answer = nlohmann::json::parse(r.data.text(), nullptr, false);
    ASSERT_FALSE(answer.is_discarded()) << "not JSON: " << r.data.text();
    EXPECT_EQ(answer, (nlohmann::json{{"greeting", "hello, " + tricky}}));
    example.stop();
}

TEST(Backend, TheReadmeExampleSaysWhyItCannotConnect) {
    const std::string log = (hyperstreams::backend_testing::temp_dir() / "hello-dead-endpoint.err").string();
    process example({HELLO_BACKEND_BIN, "tcp://127.0.0.1:1"}, log);
    const auto printed = [&] {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    };
    EXPECT_TRUE(eventually([&] {
        const std::string text = printed();
        return text.find("hello: backoff") != std::string::npos &&
               text.find("hello: connection_refused: nothing accepts connections at tcp://127.0.0.1:1; "
                         "next attempt in ") != std::string::npos;
    })) << printed();
    example.stop();
}

TEST(Backend, AServiceOverWebSocketIsRefusedWithTheReason) {
    router_process router;
    mailbox<std::pair<std::error_code, std::string>> errors;
    hs::options o = web_options(router);
    o.on_error = [&](std::error_code error, std::string_view text) { errors.push({error, std::string(text)}); };
    hs::client backend(o);
    backend.provide("greeter", "hello", [](hs::request, hs::reply reply) { reply.send("hi"); });
    backend.start();
    ASSERT_TRUE(eventually([&] { return errors.size() > 0; }));
    const auto [error, text] = errors.items().front();
    EXPECT_EQ(error, errc::wrong_role);
    EXPECT_NE(text.find("cannot register service 'greeter': " + router.ws_url() +
                        " connects as a frontend; services need the router's backend endpoint (tcp:// or ipc://)"),
              std::string::npos)
        << text;
}

}  // namespace

// --- what a caller does: streams, subscriptions with a position, tokens, broadcasts

namespace {

// A service whose "count" stream writes 1..N (N: the request's text) and
// ends, waiting for credit up to `wait` per item, and whose "fail" stream
// fails at once; what the writers saw lands in `statuses`.
class counting_service {
public:
    counting_service(const router_process& router, std::chrono::milliseconds wait)
        : backend_(backend_options(router, "counter")) {
        backend_.provide_stream("counter", "count", [this, wait](hs::request req, hs::stream_writer out) {
            std::lock_guard lock(mu_);
            writers_.emplace_back([this, wait, n = std::stoi(std::string(req.text())), out = std::move(out)]() mutable {
                for (int i = 1; i <= n; ++i) {
                    const hs::write_status s = out.write(std::to_string(i), wait);
                    statuses.push(s);
                    if (s == hs::write_status::timeout) --i;  // the same item again
                    if (s == hs::write_status::cancelled) return;
                }
                out.end();
            });
        });
        backend_.provide_stream("counter", "fail", [](hs::request, hs::stream_writer out) {
            out.fail(errc::invalid_argument, "no such counter");
        });
        backend_.start();
    }
    ~counting_service() {
        backend_.close();
        std::lock_guard lock(mu_);
        for (auto& t : writers_) t.join();
    }
    bool wait_ready() { return backend_.wait_ready(10s); }

    mailbox<hs::write_status> statuses;

private:
    hs::client backend_;
    std::mutex mu_;
    std::vector<std::thread> writers_;
};

struct stream_record {
    mailbox<std::string> items;
    mailbox<std::pair<std::error_code, std::string>> ends;

    hs::item_handler on_item() {
        return [this](hs::received item) { items.push(std::string(item.text())); };
    }
    hs::end_handler on_end() {
        return [this](std::error_code e, std::string_view text) { ends.push({e, std::string(text)}); };
    }
};

}  // namespace

// An owner's executor may run the client's closures after the client is
// gone: those that reach back into it (state, errors, a stream item's credit)
// then do nothing. ASan (the native-asan preset) sees any use after free.
TEST(Backend, HandlersQueuedOnTheOwnersExecutorOutliveTheClient) {
    router_process router;
    counting_service service(router, 5s);
    ASSERT_TRUE(service.wait_ready());
    std::mutex mu;
    std::vector<std::function<void()>> queued;
    std::atomic<int> states{0}, errors{0}, items{0};
    hs::options o = backend_options(router, "queued");
    o.handler_executor = [&](std::function<void()> task) {
        std::lock_guard lock(mu);
        queued.push_back(std::move(task));
    };
    o.on_state = [&](std::string_view) { ++states; };
    o.on_error = [&](std::error_code, std::string_view) { ++errors; };
    auto client = std::make_unique<hs::client>(o);
    client->start();
    ASSERT_TRUE(client->wait_ready(10s));
    client->publish("bad..channel", "x");  // refused: on_error
    client->open_stream("counter", "count", "3", [&](hs::received) { ++items; }, nullptr);
    const auto queued_count = [&] {
        std::lock_guard lock(mu);
        return queued.size();
    };
    ASSERT_TRUE(eventually([&] { return queued_count() >= 6; })) << queued_count();  // states, the error, items
    client.reset();
    std::vector<std::function<void()>> later;
    {
        std::lock_guard lock(mu);
        later.swap(queued);
    }
    for (auto& task : later) task();
    EXPECT_EQ(states.load(), 0) << "the client was gone when they ran";
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(items.load(), 0);
}

TEST(BackendCaller, ConsumesAServerStreamToItsEndAndHearsItsError) {
    router_process router;
    counting_service service(router, 10s);
    ASSERT_TRUE(service.wait_ready());
    // What the handlers touch outlives the client that runs them.
    stream_record counted;
    stream_record failed;
    stream_record missing;
    hs::client caller(backend_options(router, "caller"));
    caller.start();
    ASSERT_TRUE(caller.wait_ready(10s));

    // Credit 2 for 20 items: the credit goes back as the handler returns.
    hs::stream_options small;
    small.credit = 2;
    caller.open_stream("counter", "count", "20", counted.on_item(), counted.on_end(), small);
    ASSERT_TRUE(eventually([&] { return counted.ends.size() == 1; }));
    std::vector<std::string> expected;
    for (int i = 1; i <= 20; ++i) expected.push_back(std::to_string(i));
    EXPECT_EQ(counted.items.items(), expected);
    EXPECT_FALSE(counted.ends.items().front().first) << counted.ends.items().front().first.message();

    caller.open_stream("counter", "fail", "", failed.on_item(), failed.on_end());
    ASSERT_TRUE(eventually([&] { return failed.ends.size() == 1; }));
    EXPECT_EQ(failed.ends.items().front().first, errc::invalid_argument);
    EXPECT_EQ(failed.ends.items().front().second, "no such counter");
    EXPECT_EQ(failed.items.size(), 0u);

    caller.open_stream("counter", "nope", "", missing.on_item(), missing.on_end());
    ASSERT_TRUE(eventually([&] { return missing.ends.size() == 1; }));
    EXPECT_EQ(missing.ends.items().front().first, errc::no_such_service);
}

TEST(BackendCaller, GrantsCreditByHandAndCancels) {
    router_process router;
    counting_service service(router, 300ms);
    ASSERT_TRUE(service.wait_ready());
    // What the handlers touch outlives the client that runs them.
    stream_record counted;
    stream_record cancelled;
    hs::client caller(backend_options(router, "caller"));
    caller.start();
    ASSERT_TRUE(caller.wait_ready(10s));

    hs::stream_options manual;
    manual.credit = 2;
    manual.manual_credit = true;
    hs::stream_handle stream = caller.open_stream("counter", "count", "5", counted.on_item(), counted.on_end(), manual);
    // Two items fit; the third write finds no credit within its wait.
    ASSERT_TRUE(eventually([&] {
        const auto s = service.statuses.items();
        return s.size() >= 3 && counted.items.size() == 2;
    }));
    EXPECT_EQ(service.statuses.items()[2], hs::write_status::timeout);
    EXPECT_EQ(counted.items.items(), (std::vector<std::string>{"1", "2"}));
    stream.consume(2);
    ASSERT_TRUE(eventually([&] { return counted.items.size() == 4; }));
    stream.consume(2);
    ASSERT_TRUE(eventually([&] { return counted.ends.size() == 1; }));
    EXPECT_FALSE(counted.ends.items().front().first);
    EXPECT_EQ(counted.items.items(), (std::vector<std::string>{"1", "2", "3", "4", "5"}));

    hs::stream_handle endless =
        caller.open_stream("counter", "count", "1000000", cancelled.on_item(), cancelled.on_end(), manual);
    ASSERT_TRUE(eventually([&] { return cancelled.items.size() == 2; }));
    endless.cancel();
    ASSERT_TRUE(eventually([&] { return cancelled.ends.size() == 1; }));
    EXPECT_EQ(cancelled.ends.items().front().first, errc::cancelled);
    // The service learns it: its writer stops with cancelled.
    EXPECT_TRUE(eventually([&] {
        const auto s = service.statuses.items();
        return std::find(s.begin(), s.end(), hs::write_status::cancelled) != s.end();
    }));
    endless.cancel();  // ended already: nothing more
    EXPECT_EQ(cancelled.ends.size(), 1u);
}

TEST(BackendCaller, SubscribesSinceAPositionAndHearsTheGapHistoryNoLongerHolds) {
    router_process router({"--history-max-messages", "2"});
    hs::client publisher(backend_options(router, "publisher"));
    publisher.start();
    ASSERT_TRUE(publisher.wait_ready(10s));
    std::uint32_t epoch = 0;
    for (int i = 1; i <= 5; ++i) {
        const hs::publish_ack ack = publisher.publish_with_ack("line.speed", std::to_string(i)).get();
        ASSERT_FALSE(ack.error) << ack.error.message();
        ASSERT_EQ(ack.seq, static_cast<std::uint64_t>(i));
        epoch = ack.epoch;
    }

    mailbox<hs::message> got;
    mailbox<hs::gap> gaps;
    hs::client subscriber(backend_options(router, "resumer"));
    hs::subscribe_options o;
    o.since = hs::position{epoch, 0};
    o.policy = hs::slow_policy::drop_oldest;
    o.on_gap = [&](const hs::gap& g) { gaps.push(g); };
    subscriber.subscribe("line.speed", [&](const hs::message& m) { got.push(m); }, o);
    subscriber.start();
    ASSERT_TRUE(eventually([&] { return got.size() == 2; }));
    ASSERT_EQ(gaps.size(), 1u) << "the gap comes before the messages after it";
    EXPECT_EQ(gaps.items().front().channel, "line.speed");
    EXPECT_EQ(gaps.items().front().epoch, epoch);
    EXPECT_EQ(gaps.items().front().seq, 1u);
    EXPECT_EQ(gaps.items().front().count, 3u) << "1, 2 and 3 are gone";
    const auto messages = got.items();
    EXPECT_EQ(messages[0].seq, 4u);
    EXPECT_EQ(messages[0].data.text(), "4");
    EXPECT_TRUE(messages[0].replayed);
    EXPECT_EQ(messages[1].seq, 5u);
}

// The body of GET `target` from the router's admin listener (HTTP/1.0: the
// router closes the connection after the answer).
std::string admin_get(const router_process& router, const std::string& target) {
    const std::string& address = router.admin_address();
    const auto colon = address.rfind(':');
    boost::asio::ip::tcp::iostream http(address.substr(0, colon), address.substr(colon + 1));
    http.expires_after(5s);
    http << "GET " << target << " HTTP/1.0\r\nHost: " << address << "\r\n\r\n" << std::flush;
    std::stringstream answer;
    answer << http.rdbuf();
    const std::string text = answer.str();
    const auto body = text.find("\r\n\r\n");
    return body == std::string::npos ? std::string() : text.substr(body + 4);
}

// A subscription's slow-consumer policy reaches the router, which applies it
// to what it queues for that subscription (the router's tests show what each
// policy does; /status shows which one each subscription has).
TEST(BackendCaller, SubscribesWithASlowConsumerPolicy) {
    router_process router;
    hs::client subscriber(backend_options(router, "policies"));
    hs::subscribe_options latest;
    latest.policy = hs::slow_policy::keep_latest;
    hs::subscribe_options strict;
    strict.policy = hs::slow_policy::disconnect;
    subscriber.subscribe("line.*", [](const hs::message&) {}, latest);
    subscriber.subscribe("line.speed", [](const hs::message&) {}, strict);
    subscriber.subscribe("line.temp", [](const hs::message&) {});
    subscriber.start();
    ASSERT_TRUE(subscriber.wait_ready(10s));
    std::map<std::string, std::string> policies;
    ASSERT_TRUE(eventually([&] {
        const auto status = nlohmann::json::parse(admin_get(router, "/status"), nullptr, false);
        if (status.is_discarded()) return false;
        for (const auto& c : status["connections"])
            if (c["name"] == "policies")
                for (const auto& s : c["subscriptions"]) policies[s["pattern"]] = s["policy"];
        return policies.size() == 3;
    }));
    EXPECT_EQ(policies["line.*"], "keep_latest");
    EXPECT_EQ(policies["line.speed"], "disconnect");
    EXPECT_EQ(policies["line.temp"], "drop_oldest") << "the router's default";
}

TEST(BackendCaller, SubscribesWithTheLatestValueOfEveryMatchingChannel) {
    router_process router({"--channels-namespaces", R"([{"pattern": "line.>", "latest": true}])"});
    hs::client publisher(backend_options(router, "publisher"));
    publisher.start();
    ASSERT_TRUE(publisher.wait_ready(10s));
    for (const char* channel : {"line.speed", "line.temp"})
        for (const char* value : {"old", "now"})
            ASSERT_FALSE(publisher.publish_with_ack(channel, value).get().error);

    mailbox<hs::message> got;
    mailbox<std::error_code> errors;
    hs::options so = backend_options(router, "state");
    so.on_error = [&](std::error_code error, std::string_view) { errors.push(error); };
    hs::client subscriber(so);
    hs::subscribe_options o;
    o.latest = true;
    subscriber.subscribe("line.*", [&](const hs::message& m) { got.push(m); }, o);
    subscriber.subscribe("other.*", [&](const hs::message& m) { got.push(m); }, o);
    subscriber.start();
    ASSERT_TRUE(eventually([&] { return got.size() == 2 && errors.size() == 1; }));
    for (const hs::message& m : got.items()) {
        EXPECT_EQ(m.data.text(), "now") << m.channel;
        EXPECT_EQ(m.seq, 2u);
        EXPECT_TRUE(m.replayed);
    }
    EXPECT_EQ(errors.items().front(), hyperstreams::errc::not_enabled);
}

TEST(BackendCaller, HearsTheEpochChangeWhenTheRouterRestartsTheChannel) {
    router_process router;
    mailbox<hs::message> got;
    mailbox<hs::epoch_change> changes;
    hs::client subscriber(backend_options(router, "subscriber"));
    hs::subscribe_options o;
    o.on_epoch_change = [&](const hs::epoch_change& c) { changes.push(c); };
    subscriber.subscribe("line.speed", [&](const hs::message& m) { got.push(m); }, o);
    subscriber.start();
    hs::client publisher(backend_options(router, "publisher"));
    publisher.start();
    ASSERT_TRUE(subscriber.wait_ready(10s) && publisher.wait_ready(10s));
    ASSERT_TRUE(eventually([&] {
        publisher.publish("line.speed", "before");
        return got.size() > 0;
    }));
    const std::uint32_t before = got.items().front().epoch;

    router.restart();  // the channel's history is gone with the process
    ASSERT_TRUE(eventually([&] {
        publisher.publish("line.speed", "after");
        return changes.size() > 0;
    }, 30s));
    const hs::epoch_change change = changes.items().front();
    EXPECT_EQ(change.channel, "line.speed");
    EXPECT_NE(change.epoch, before);
    ASSERT_TRUE(eventually([&] { return got.items().back().epoch == change.epoch; }));
    EXPECT_EQ(got.items().back().data.text(), "after");
}

TEST(BackendCaller, RefreshesItsTokenBeforeItExpiresAndHearsTheRoutersVerdict) {
    const std::string secret = "backend-test-secret-0123456789abcdef";
    const std::string secret_file = hyperstreams::testing::write_temp_file("backend-hs256.secret", secret + "\n");
    router_process router({"--auth-mode", "tokens", "--auth-hs256-secret-file", secret_file,
                           "--auth-expiry-grace-ms", "300"});
    const auto token = [&](const std::string& sub, std::int64_t lifetime_s) {
        return hyperstreams::testing::sign_hs256(
            secret, {{"sub", sub}, {"exp", hyperstreams::testing::unix_now() + lifetime_s},
                     {"hs", {{"publish", {"a.>"}}}}});
    };

    // Both tokens lapse in 3 s; one client has a provider asked 2 s ahead.
    std::atomic<int> provided{0};
    mailbox<std::string> refreshed_states;
    hs::options refreshing = web_options(router);
    refreshing.token = token("alice", 3);
    refreshing.token_refresh_margin = 2s;
    refreshing.token_provider = [&] {
        ++provided;
        return token("alice", 600);
    };
    refreshing.on_state = [&](std::string_view s) { refreshed_states.push(std::string(s)); };
    hs::client refreshed(refreshing);
    refreshed.start();

    mailbox<std::error_code> lapsed_errors;
    hs::options lapsing = web_options(router);
    lapsing.token = token("bob", 3);
    lapsing.on_error = [&](std::error_code e, std::string_view) { lapsed_errors.push(e); };
    hs::client lapsed(lapsing);
    lapsed.start();
    ASSERT_TRUE(refreshed.wait_ready(10s) && lapsed.wait_ready(10s));

    ASSERT_TRUE(eventually([&] {
        const auto errors = lapsed_errors.items();
        return std::find(errors.begin(), errors.end(), errc::token_expired) != errors.end();
    }, 15s)) << "the router closes the connection whose token lapsed";
    EXPECT_EQ(provided.load(), 1);
    const auto states = refreshed_states.items();
    EXPECT_EQ(std::count(states.begin(), states.end(), "awaiting_token"), 0);
    const hs::publish_ack ack = refreshed.publish_with_ack("a.b", "still here").get();
    EXPECT_FALSE(ack.error) << ack.error.message() << " " << ack.error_text;

    // refresh_token() by hand: the router's verdict.
    EXPECT_EQ(refreshed.refresh_token(token("mallory", 600)).get(), errc::forbidden);
    EXPECT_EQ(refreshed.refresh_token("not a token").get(), errc::unauthorized);
    EXPECT_FALSE(refreshed.refresh_token(token("alice", 600)).get());

    // Without a token, start() asks the provider for the first one.
    hs::options first = web_options(router);
    first.token_provider = [&] { return token("carol", 600); };
    hs::client provided_first(first);
    provided_first.start();
    ASSERT_TRUE(provided_first.wait_ready(10s));
    const hs::publish_ack first_ack = provided_first.publish_with_ack("a.c", "with carol's rights").get();
    EXPECT_FALSE(first_ack.error) << first_ack.error.message() << " " << first_ack.error_text;

    // A token that lapsed before the client started: the router refuses it
    // (token_expired) and the provider gives the next one; the client
    // connects with it instead of waiting for ever.
    std::atomic<int> asked{0};
    hs::options stale = web_options(router);
    stale.token = token("dave", -60);
    stale.token_provider = [&] {
        ++asked;
        return token("dave", 600);
    };
    hs::client renewed(stale);
    renewed.start();
    ASSERT_TRUE(renewed.wait_ready(10s));
    EXPECT_GE(asked.load(), 1);
    const hs::publish_ack renewed_ack = renewed.publish_with_ack("a.d", "with dave's new token").get();
    EXPECT_FALSE(renewed_ack.error) << renewed_ack.error.message() << " " << renewed_ack.error_text;
}

TEST(BackendCaller, BroadcastsToEveryOtherClient) {
    router_process router;
    mailbox<hs::direct_message> at_backend;
    mailbox<hs::direct_message> at_web;
    mailbox<hs::direct_message> directs;
    hs::client backend(backend_options(router, "announcer"));
    backend.on_broadcast([&](const hs::direct_message& m) { at_backend.push(m); });
    backend.on_direct([&](const hs::direct_message& m) { directs.push(m); });
    backend.start();
    hs::client web(web_options(router));
    web.on_broadcast([&](const hs::direct_message& m) { at_web.push(m); });
    web.start();
    ASSERT_TRUE(backend.wait_ready(10s) && web.wait_ready(10s));

    backend.broadcast(hs::json(R"({"shift":"ends"})"));
    ASSERT_TRUE(eventually([&] { return at_web.size() == 1; }));
    EXPECT_EQ(at_web.items().front().from, backend.address());
    EXPECT_TRUE(at_web.items().front().data.is_json);
    EXPECT_EQ(at_web.items().front().data.text(), R"({"shift":"ends"})");

    web.broadcast("seen");
    ASSERT_TRUE(eventually([&] { return at_backend.size() == 1; }));
    EXPECT_EQ(at_backend.items().front().from, web.address());
    EXPECT_EQ(at_backend.items().front().data.text(), "seen");
    EXPECT_EQ(at_web.size(), 1u) << "not back to its sender";
    EXPECT_EQ(directs.size(), 0u) << "a broadcast is not a direct message";
}

// --- Asio completion tokens

namespace {

// A factory service that lists its machines.
class factory_service {
public:
    explicit factory_service(const router_process& router) : backend_(backend_options(router, "factory")) {
        backend_.provide("factory", "machines", [](hs::request, hs::reply reply) {
            reply.send_json(R"(["press","lathe"])");
        });
        backend_.start();
    }
    bool wait_ready() { return backend_.wait_ready(10s); }

private:
    hs::client backend_;
};

}  // namespace

TEST(BackendAsio, ACoroutineCallsOnTheCallersIoContext) {
    router_process router;
    factory_service factory(router);
    ASSERT_TRUE(factory.wait_ready());

    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread io_thread([&] { io.run(); });
    hs::options o = backend_options(router, "coroutine");
    o.io_context = &io;
    auto caller = std::make_unique<hs::client>(o);
    caller->start();
    ASSERT_TRUE(caller->wait_ready(10s));

    struct outcome {
        hs::response machines;
        hs::publish_ack ack;
        hs::services_result services;
        std::error_code refresh;
        bool on_io_thread = false;
    };
    std::future<outcome> done = boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<outcome> {
            outcome out;
            out.machines = co_await caller->request("factory", "machines", {}, boost::asio::use_awaitable);
            out.on_io_thread = std::this_thread::get_id() == io_thread.get_id();
            out.ack = co_await caller->publish_with_ack("factory.events", "started", boost::asio::use_awaitable);
            out.services = co_await caller->services(boost::asio::use_awaitable);
            out.refresh = co_await caller->refresh_token("any", boost::asio::use_awaitable);
            co_return out;
        },
        boost::asio::use_future);
    ASSERT_EQ(done.wait_for(20s), std::future_status::ready);
    const outcome out = done.get();
    ASSERT_FALSE(out.machines.error) << out.machines.error.message();
    EXPECT_EQ(out.machines.data.text(), R"(["press","lathe"])");
    EXPECT_TRUE(out.on_io_thread) << "the coroutine resumes on its own executor";
    EXPECT_FALSE(out.ack.error) << out.ack.error.message();
    EXPECT_GE(out.ack.seq, 1u);
    ASSERT_FALSE(out.services.error);
    EXPECT_TRUE(std::any_of(out.services.services.begin(), out.services.services.end(),
                            [](const hs::service_description& s) { return s.name == "factory"; }));
    EXPECT_FALSE(out.refresh) << "a router without tokens takes any: " << out.refresh.message();

    // A call still waiting when the client closes completes with closed.
    std::future<hs::response> pending =
        caller->request("nowhere", "slow", "", 10s, boost::asio::use_future);
    caller.reset();
    ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(pending.get().error);
    work.reset();
    io_thread.join();  // nothing of the client's keeps it running
}

// wait_ready and a stream's items as Asio operations: a coroutine waits for
// the connection and reads one item; while nobody reads, the service gets no
// further than the credit; then another reads the rest, item by item.
TEST(BackendAsio, ACoroutineWaitsForReadyAndReadsAStreamItemByItem) {
    router_process router;
    counting_service service(router, 200ms);
    ASSERT_TRUE(service.wait_ready());

    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread io_thread([&] { io.run(); });
    hs::options o = backend_options(router, "reader");
    o.io_context = &io;
    auto caller = std::make_unique<hs::client>(o);

    struct first_read {
        std::error_code ready;
        hs::stream_reader reader;
        std::string item;
    };
    std::future<first_read> started = boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<first_read> {
            first_read out;
            out.ready = co_await caller->wait_ready(boost::asio::use_awaitable);
            hs::stream_options small;
            small.credit = 2;
            out.reader = caller->read_stream("counter", "count", "6", small);
            out.item = std::string((co_await out.reader.async_read(boost::asio::use_awaitable)).item.text());
            co_return out;
        },
        boost::asio::use_future);
    caller->start();
    ASSERT_EQ(started.wait_for(20s), std::future_status::ready);
    first_read first = started.get();
    EXPECT_FALSE(first.ready) << first.ready.message();
    EXPECT_EQ(first.item, "1");
    // One item read, two delivered and not read (the credit): the service's
    // next write finds no credit within its wait.
    // (The third write waits for the credit the first read returned: wait
    // for the three, then the timeout after them.)
    const auto ok_writes = [&] {
        const auto s = service.statuses.items();
        return std::count(s.begin(), s.end(), hs::write_status::ok);
    };
    ASSERT_TRUE(eventually([&] {
        const auto s = service.statuses.items();
        return ok_writes() >= 3 && std::find(s.begin(), s.end(), hs::write_status::timeout) != s.end();
    })) << "ok writes: " << ok_writes();
    EXPECT_EQ(ok_writes(), 3) << "the read one and the credit's two";

    struct the_rest {
        std::vector<std::string> items;
        hs::stream_read end, after_end, cancelled;
    };
    std::future<the_rest> rest = boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<the_rest> {
            the_rest out;
            for (;;) {
                hs::stream_read r = co_await first.reader.async_read(boost::asio::use_awaitable);
                if (r.end) {
                    out.end = std::move(r);
                    break;
                }
                out.items.push_back(std::string(r.item.text()));
            }
            out.after_end = co_await first.reader.async_read(boost::asio::use_awaitable);

            hs::stream_options small;
            small.credit = 2;
            hs::stream_reader endless = caller->read_stream("counter", "count", "1000000", small);
            (void)co_await endless.async_read(boost::asio::use_awaitable);
            endless.cancel();
            for (int i = 0; i < 4; ++i) {  // at most the credit's items, then the end
                out.cancelled = co_await endless.async_read(boost::asio::use_awaitable);
                if (out.cancelled.end) break;
            }
            co_return out;
        },
        boost::asio::use_future);
    ASSERT_EQ(rest.wait_for(20s), std::future_status::ready);
    const the_rest out = rest.get();
    EXPECT_EQ(out.items, (std::vector<std::string>{"2", "3", "4", "5", "6"}));
    EXPECT_TRUE(out.end.end);
    EXPECT_FALSE(out.end.error) << out.end.error.message() << ": " << out.end.text;
    EXPECT_TRUE(out.after_end.end) << "a read after the end gives the end again";
    EXPECT_TRUE(out.cancelled.end);
    EXPECT_EQ(out.cancelled.error, errc::cancelled);

    // A wait for a client that closes first completes with closed.
    hs::client never(backend_options(router, "never-started"));
    std::future<std::error_code> waited = never.wait_ready(boost::asio::use_future);
    never.close();
    ASSERT_EQ(waited.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(waited.get(), errc::closed);

    first = {};
    caller.reset();
    work.reset();
    io_thread.join();
}

TEST(BackendAsio, FuturesAndCallbacksAreCompletionTokensToo) {
    router_process router;
    factory_service factory(router);
    ASSERT_TRUE(factory.wait_ready());
    hs::client caller(backend_options(router, "caller"));
    caller.start();
    ASSERT_TRUE(caller.wait_ready(10s));

    std::future<hs::response> machines = caller.request("factory", "machines", {}, boost::asio::use_future);
    ASSERT_EQ(machines.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(machines.get().data.text(), R"(["press","lathe"])");

    std::promise<hs::response> by_callback;
    caller.request("factory", "machines", "", [&](hs::response r) { by_callback.set_value(std::move(r)); });
    auto called = by_callback.get_future();
    ASSERT_EQ(called.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(called.get().data.text(), R"(["press","lathe"])");

    std::promise<hs::publish_ack> acked;
    caller.publish_with_ack("factory.events", "x", [&](hs::publish_ack a) { acked.set_value(std::move(a)); });
    auto ack = acked.get_future();
    ASSERT_EQ(ack.wait_for(10s), std::future_status::ready);
    EXPECT_FALSE(ack.get().error);

    std::future<hs::response> missing = caller.request("factory", "nope", {}, 5s, boost::asio::use_future);
    ASSERT_EQ(missing.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(missing.get().error, errc::no_such_service);
}

// --- the examples of native/examples, as processes against the real router

TEST(BackendExamples, TheRequestServiceAnswersAndTheCoroutineCallerCallsIt) {
    router_process router;
    process service({REQUEST_SERVICE_BIN, router.backend_url()});
    ASSERT_EQ(service.read_line(), "ready");

    process caller({COROUTINE_CALLER_BIN, router.backend_url()});
    EXPECT_EQ(caller.read_all(), "machines: [\"lathe\",\"press\"]\n"
                                 "lathe: {\"name\":\"lathe\",\"state\":\"idle\"}\n"
                                 "press: {\"name\":\"press\",\"state\":\"running\"}\n");
    EXPECT_EQ(caller.wait(), 0);

    hs::client web(web_options(router));
    web.start();
    ASSERT_TRUE(web.wait_ready(10s));
    const hs::response missing = web.request("factory", "machine", "mill", 5s).get();
    EXPECT_EQ(missing.error, errc::invalid_argument);
    EXPECT_EQ(missing.error_text, "no machine named 'mill'");
    service.stop();
    EXPECT_EQ(service.wait(), 0) << "it stops cleanly on SIGTERM";
}

TEST(BackendExamples, TheStreamServiceSendsAsTheCallersCreditAllows) {
    router_process router;
    process service({STREAM_SERVICE_BIN, router.backend_url()});
    ASSERT_EQ(service.read_line(), "ready");
    // What the handlers touch outlives the client that runs them.
    stream_record readings;
    stream_record bad;
    stream_record stalled;
    hs::client caller(backend_options(router, "reader"));
    caller.start();
    ASSERT_TRUE(caller.wait_ready(10s));
    hs::stream_options o;
    o.credit = 4;
    caller.open_stream("factory", "readings", "50", readings.on_item(), readings.on_end(), o);
    ASSERT_TRUE(eventually([&] { return readings.ends.size() == 1; }));
    EXPECT_FALSE(readings.ends.items().front().first);
    ASSERT_EQ(readings.items.size(), 50u);
    EXPECT_EQ(readings.items.items().back(), R"({"reading":50})");

    caller.open_stream("factory", "readings", "many", bad.on_item(), bad.on_end());
    ASSERT_TRUE(eventually([&] { return bad.ends.size() == 1; }));
    EXPECT_EQ(bad.ends.items().front().first, errc::invalid_argument);

    // A caller that reads nothing more holds the service's writer; stopping
    // the service releases it.
    hs::stream_options manual = o;
    manual.manual_credit = true;
    caller.open_stream("factory", "readings", "1000", stalled.on_item(), stalled.on_end(), manual);
    ASSERT_TRUE(eventually([&] { return stalled.items.size() == 4; }));
    service.stop();
    EXPECT_EQ(service.wait(), 0);
}

TEST(BackendExamples, TheSubscriberResumesAfterItsRestartWithWhatItMissed) {
    router_process router({"--history-max-messages", "16"});
    const std::string position = (hyperstreams::backend_testing::temp_dir() / "subscriber.position").string();
    std::filesystem::remove(position);  // a position left by an earlier run (--gtest_repeat) names another router's epoch
    hs::client publisher(backend_options(router, "publisher"));
    publisher.start();
    ASSERT_TRUE(publisher.wait_ready(10s));

    {
        process first({RESUMING_SUBSCRIBER_BIN, router.backend_url(), position, "2"});
        // It subscribes asynchronously: publish once the router shows its
        // subscription (publishing until it prints could hand it two of
        // these, and it takes two messages in all).
        ASSERT_TRUE(eventually([&] {
            const auto status = nlohmann::json::parse(admin_get(router, "/status"), nullptr, false);
            if (status.is_discarded()) return false;
            for (const auto& c : status["connections"])
                if (c["name"] == "resuming-subscriber" && !c["subscriptions"].empty()) return true;
            return false;
        }));
        ASSERT_FALSE(publisher.publish_with_ack("factory.events", "started").get().error);
        const std::optional<std::string> line = first.read_line(10s);
        ASSERT_TRUE(line) << "the subscriber printed the first message";
        EXPECT_NE(line->find(" started"), std::string::npos) << *line;
        (void)publisher.publish_with_ack("factory.events", "first shift").get();
        ASSERT_TRUE(eventually([&] { return first.wait(100ms).has_value(); }));
        EXPECT_EQ(first.wait(), 0);
    }
    std::ifstream saved(position);
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    ASSERT_TRUE(saved >> epoch >> seq);

    // Published while it is down.
    const hs::publish_ack missed = publisher.publish_with_ack("factory.events", "second shift").get();
    ASSERT_FALSE(missed.error);
    process second({RESUMING_SUBSCRIBER_BIN, router.backend_url(), position, "1"});
    const auto line = second.read_line();
    ASSERT_TRUE(line);
    EXPECT_EQ(*line, std::to_string(missed.seq) + " second shift (replayed)");
    EXPECT_EQ(missed.seq, seq + 1) << "nothing in between";
    EXPECT_EQ(second.wait(), 0);
}
