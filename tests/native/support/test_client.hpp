// The integration tests' client: the shipped engine host
// (hyperstreams/native/engine_host.hpp, the one the backend library and the
// CLI run on) with every event recorded, and blocking waits that always end
// at a deadline. The host owns the sockets and the I/O thread; this only
// records and waits.
//
// The engine's URL picks the transport: ws://, wss://, tcp:// or ipc://.
//
//   test_client c(frontend_config(router.ws_url()));
//   ASSERT_TRUE(c.wait_ready());
//   auto sub = c.run([](client_engine& e, time_ms) { return e.subscribe("a.b"); });
//   auto ack = c.wait_for([&](const recorded_event& ev) { return ev.kind == event_kind::ack && ev.id == sub.id; });
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hyperstreams/client.hpp"
#include "hyperstreams/native/engine_host.hpp"
#include "hyperstreams/native/owned_event.hpp"

namespace hyperstreams::testing {

using namespace std::chrono_literals;

// Every event the engine emitted (open_transport and close_transport aside), copied.
using recorded_event = native::owned_event;

std::string describe(const recorded_event& e);

// The shipped host's transport options (CURVE keys, the wss:// trust, the
// receive buffer).
using host_options = native::transport_options;

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
        return host().call(std::forward<Fn>(fn));
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

    // Stop reading from the connection (the router's writes back up), and start again.
    void pause_reading();
    void resume_reading();
    // Drops the transport without a goodbye (as a crash would).
    void drop_transport();
    // In backoff: the next attempt starts now (client_engine::connect_now).
    // With reconnect_on_demand() below, the test decides when a dropped
    // client comes back (after what it must miss is in the router's history).
    void connect_now();
    // Why the last attempt failed in its TLS, WebSocket or ZMTP handshake
    // (transport_handshake_failed, in the host's words); "" when none did.
    std::string tls_error();

    // Shorthands; each fails the calling test when the engine refuses the call.
    std::uint32_t subscribe(const std::string& pattern, slow_policy policy = slow_policy::router_default,
                            bool latest = false);
    std::uint32_t publish(const std::string& channel, const std::string& payload, bool ack = false);
    std::uint32_t request(const std::string& service, const std::string& method,
                          const std::string& payload, std::uint32_t timeout_ms = 5000);
    std::uint32_t register_service(const std::string& service, std::vector<method_info> methods);

    static time_ms now();

private:
    struct record;  // the events and the handler, written on the host's thread
    native::engine_host& host();

    std::shared_ptr<record> record_;
    std::unique_ptr<native::engine_host> host_;
};

// Matches an event of `kind` (and `id` when non-zero).
event_filter is(event_kind kind, std::uint32_t id = 0);
// An error event for operation id `id`.
event_filter is_error(std::uint32_t id);

client_config frontend_config(std::string url, std::string name = "test-frontend");
// `config` with the longest backoff (49 days): after a drop the client
// stays away until connect_now().
client_config reconnect_on_demand(client_config config);
client_config backend_config(std::string url, std::string name = "test-backend");

std::vector<std::uint8_t> bytes_of(std::string_view text);

// A message event on `channel`; a gap event on `channel`; the ack or error
// answering operation `id`.
event_filter message_on(std::string channel);
event_filter gap_on(std::string channel);
event_filter answer_to(std::uint32_t id);

// Publishes with an ack and the options (an idempotency key, "" for none;
// a ttl); the publish's id.
std::uint32_t publish_with(test_client& c, const std::string& channel, const std::string& payload,
                           const std::string& key, std::optional<std::uint32_t> ttl_s = std::nullopt);
// Publishes first..last (their numbers as payloads) with acks; the acks, in
// order (fewer, and a failure, when one is refused or missing).
std::vector<recorded_event> publish_numbers(test_client& pub, const std::string& channel, int first, int last);
// Subscribes to `channel` from `since` (a resume); the subscribe's id.
std::uint32_t subscribe_since(test_client& c, const std::string& channel, channel_position since);

}  // namespace hyperstreams::testing
