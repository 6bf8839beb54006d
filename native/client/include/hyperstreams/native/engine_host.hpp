// engine_host: runs one client_engine (shared/include/hyperstreams/client.hpp)
// on its own I/O thread over a real transport, chosen by the URL scheme:
//
//   tcp://HOST:PORT, ipc://PATH   ZeroMQ DEALER to the router's ROUTER socket
//   ws://HOST:PORT/PATH           WebSocket (binary messages)
//
// It is the host loop client.hpp describes and nothing more: it opens and
// closes transports when the engine asks, feeds received messages and
// steady_clock milliseconds in, sends output() as one transport message and
// calls handle_timeout() at next_deadline(). What the events mean is the
// owner's business: every event is handed to the event handler, on the I/O
// thread, with the engine, so the handler may answer at once (respond(),
// stream_send(), ...). The views in an event are valid during that call only.
//
// Internal API of the native tools (hyperstreams::backend, the CLI, the
// benchmarks, the router's integration tests); not installed as a header.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "hyperstreams/client.hpp"

namespace hyperstreams::native {

enum class transport_scheme : std::uint8_t { zeromq, websocket, unsupported };

// tcp:// and ipc:// are ZeroMQ, ws:// is WebSocket; anything else (wss://
// included: TLS is not implemented in the client yet) is unsupported.
transport_scheme scheme_of(std::string_view url) noexcept;

// ZeroMQ CURVE (the router's backend_auth.curve_secret_key): set all three
// Z85 keys (40 characters each) to connect with CURVE; empty: plain.
struct curve_keys {
    std::string server_public;
    std::string public_key;
    std::string secret_key;
    bool enabled() const noexcept { return !server_public.empty(); }
};

// The role a URL implies: a WebSocket client is a frontend, a ZeroMQ client a backend.
client_role role_for(std::string_view url) noexcept;

class engine_host {
public:
    using event_handler = std::function<void(client_engine&, const client_event&)>;
    using task = std::function<void(client_engine&, time_ms now)>;

    // `config.url` selects the transport. A zero seed is replaced by a random one.
    engine_host(client_config config, event_handler on_event, curve_keys curve = {});
    // Closes (as close() with the default linger) if still running. Must not
    // run on the I/O thread.
    ~engine_host();
    engine_host(const engine_host&) = delete;
    engine_host& operator=(const engine_host&) = delete;

    // Starts the I/O thread and the engine. Calling it again does nothing.
    void start();

    // Runs `t` on the I/O thread, in posting order, then sends what it queued
    // and dispatches the events it caused. Safe from any thread, the I/O
    // thread included (it then runs later, never inside the caller). Tasks
    // posted after close() are dropped.
    void post(task t);

    // post() and wait for the result. From the I/O thread it would wait for
    // itself: it runs `f` inline there instead.
    template <class F>
    auto call(F&& f) -> std::invoke_result_t<F&, client_engine&, time_ms>;

    // Closes the engine (goodbye), gives the transport up to `linger` to send
    // what is queued, then stops the I/O thread. Idempotent. From the I/O
    // thread (an inline handler) it closes the engine and returns at once;
    // the destructor then finishes the job.
    void close(std::chrono::milliseconds linger = std::chrono::milliseconds(500));

    bool on_io_thread() const noexcept;
    // The clock the engine sees: steady_clock in milliseconds.
    static time_ms now() noexcept;

private:
    struct impl;
    bool run_inline(const task& t);
    std::shared_ptr<impl> impl_;
};

template <class F>
auto engine_host::call(F&& f) -> std::invoke_result_t<F&, client_engine&, time_ms> {
    using result = std::invoke_result_t<F&, client_engine&, time_ms>;
    auto promise = std::make_shared<std::promise<result>>();
    std::future<result> future = promise->get_future();
    task t = [&f, promise](client_engine& engine, time_ms now) {
        if constexpr (std::is_void_v<result>) {
            f(engine, now);
            promise->set_value();
        } else {
            promise->set_value(f(engine, now));
        }
    };
    if (!run_inline(t)) {
        post(t);
        // A task dropped by close() breaks the promise: get() throws future_error.
        t = nullptr;
    }
    return future.get();
}

}  // namespace hyperstreams::native
