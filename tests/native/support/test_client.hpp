// A test host for the shared client engine (hyperstreams::client_engine):
// it drives the engine over a real Beast WebSocket or a real ZeroMQ DEALER
// on a background thread with its own io_context, records every event, and
// offers blocking waits that always end at a deadline.
//
// The engine's URL picks the transport: ws://HOST:PORT/PATH or tcp://HOST:PORT.
//
//   test_client c(frontend_config(router.ws_url()));
//   ASSERT_TRUE(c.wait_ready());
//   auto sub = c.run([](client_engine& e, time_ms) { return e.subscribe("a.b"); });
//   auto ack = c.wait_for([&](const recorded_event& ev) { return ev.kind == event_kind::ack && ev.id == sub.id; });
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hyperstreams/client.hpp"

namespace hyperstreams::testing {

using namespace std::chrono_literals;

// A client_event with everything it views copied.
struct recorded_event {
    event_kind kind{};
    operation op = operation::connection;
    client_state state = client_state::idle;
    client_state previous = client_state::idle;
    std::uint8_t flags = 0;
    std::uint16_t code = 0;
    std::uint32_t id = 0;
    std::uint32_t subscription = 0;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t count = 0;
    std::string name;
    std::string method;
    std::string text;
    std::vector<std::uint8_t> payload;
    struct service {
        std::string name;
        std::uint16_t instances = 0;
        std::vector<std::pair<std::string, method_kind>> methods;
    };
    std::vector<service> services;

    std::string payload_text() const { return {payload.begin(), payload.end()}; }
    errc error() const { return static_cast<errc>(code); }
};

std::string describe(const recorded_event& e);

struct host_options {
    // WebSocket: SO_RCVBUF of the socket, set before connecting; 0: default.
    int receive_buffer_bytes = 0;
    // Start with reading paused (see pause_reading()).
    bool paused = false;
    // wss://: the PEM certificate (or CA) the router's certificate must chain to.
    std::string tls_ca_pem;
    // tcp://: connect with ZeroMQ CURVE (Z85 keys) when curve_server_key is set.
    std::string curve_server_key;
    std::string curve_public_key;
    std::string curve_secret_key;
};

using event_filter = std::function<bool(const recorded_event&)>;
// Called on the client's thread for every recorded event; may call the engine
// (respond, stream_send, ...): the host sends what it queued.
using event_handler = std::function<void(client_engine&, const recorded_event&, time_ms now)>;

class test_client {
public:
    explicit test_client(client_config config, host_options options = {});
    ~test_client();
    test_client(const test_client&) = delete;
    test_client& operator=(const test_client&) = delete;

    // Runs fn(engine, now) on the client's thread, then drains the engine's
    // events and output; returns what fn returned.
    template <typename Fn>
    auto run(Fn&& fn) -> decltype(fn(std::declval<client_engine&>(), time_ms{})) {
        using result = decltype(fn(std::declval<client_engine&>(), time_ms{}));
        auto task = std::make_shared<std::packaged_task<result()>>([this, fn = std::forward<Fn>(fn)]() mutable {
            struct pump_after {
                test_client* self;
                ~pump_after() { self->pump(); }
            } pump{this};
            return fn(engine(), now());
        });
        std::future<result> done = task->get_future();
        post([task] { (*task)(); });
        return done.get();
    }

    // The first recorded event (since the start) matching `filter`, waiting up to `timeout`.
    std::optional<recorded_event> wait_for(const event_filter& filter,
                                           std::chrono::milliseconds timeout = 5s);
    // Waits until `n` events match; returns those found (fewer on timeout).
    std::vector<recorded_event> wait_count(const event_filter& filter, std::size_t n,
                                           std::chrono::milliseconds timeout = 5s);
    std::vector<recorded_event> events(const event_filter& filter = {}) const;
    std::size_t count(const event_filter& filter) const;

    // Replaces the event handler.
    void set_handler(event_handler handler);
    // Runs fn(engine, now) on the client's thread after `delay`.
    void after(std::chrono::milliseconds delay, std::function<void(client_engine&, time_ms)> fn);

    // Waits for the engine to reach `ready` (welcome received).
    bool wait_ready(std::chrono::milliseconds timeout = 5s);
    std::string session_id();
    client_state state();

    // WebSocket only: stop reading from the socket (the router's writes back
    // up), and start again.
    void pause_reading();
    void resume_reading();
    // Drops the transport without a goodbye (as a crash would).
    void drop_transport();
    // Why the last TLS handshake failed ("" when none did).
    std::string tls_error();

    // Shorthands; each fails the calling test when the engine refuses the call.
    std::uint32_t subscribe(const std::string& pattern, slow_policy policy = slow_policy::router_default);
    std::uint32_t publish(const std::string& channel, const std::string& payload, bool ack = false);
    std::uint32_t request(const std::string& service, const std::string& method,
                          const std::string& payload, std::uint32_t timeout_ms = 5000);
    std::uint32_t register_service(const std::string& service, std::vector<method_info> methods);

    static time_ms now();

    struct impl;  // the host's state, shared with its transports (test_client.cpp)

private:
    client_engine& engine();
    void post(std::function<void()> fn);
    void pump();  // on the client's thread: events out, output sent, timer armed

    std::shared_ptr<impl> impl_;
};

// Matches an event of `kind` (and `id` when non-zero).
event_filter is(event_kind kind, std::uint32_t id = 0);
// An error event for operation id `id`.
event_filter is_error(std::uint32_t id);

client_config frontend_config(std::string url, std::string name = "test-frontend");
client_config backend_config(std::string url, std::string name = "test-backend");

std::vector<std::uint8_t> bytes_of(std::string_view text);

}  // namespace hyperstreams::testing
