// engine_host: runs one client_engine (shared/include/hyperstreams/client.hpp)
// on its own I/O thread, or on an io_context its owner runs, over a real
// transport chosen by the scheme of the URL the engine asks for (one of
// config.router_urls(), or a redirect's target):
//
//   tcp://HOST:PORT, ipc://PATH   ZeroMQ DEALER to the router's ROUTER socket
//                                 (CURVE with transport_options::curve)
//   ws://HOST:PORT/PATH           WebSocket (binary messages)
//   wss://HOST:PORT/PATH          WebSocket over TLS 1.2+ (OpenSSL): the
//                                 router's certificate is verified, host name
//                                 included (transport_options::tls)
//
// It is the host loop client.hpp describes and nothing more: it opens and
// closes transports when the engine asks, feeds received messages and
// steady_clock milliseconds in, sends output() as one transport message and
// calls handle_timeout() at next_deadline(). What the events mean is the
// owner's business: every event is handed to the event handler, on the I/O
// thread, with the engine, so the handler may answer at once (respond(),
// stream_send(), ...). The views in an event are valid during that call only
// (owned_event.hpp copies one).
//
// Internal API of the native tools (hyperstreams::backend, the CLI, the
// router's integration tests); not installed as a header. It includes
// neither Beast nor OpenSSL: only the transports' sources do.
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

namespace boost::asio {
class io_context;
}

namespace hyperstreams::native {

enum class transport_scheme : std::uint8_t { zeromq, websocket, unsupported };

// tcp:// and ipc:// are ZeroMQ, ws:// and wss:// WebSocket; anything else is unsupported.
transport_scheme scheme_of(std::string_view url) noexcept;

// ZeroMQ CURVE (the router's backend_auth.curve_secret_key): set all three
// Z85 keys (40 characters each) to connect with CURVE; empty: plain.
struct curve_keys {
    std::string server_public;
    std::string public_key;
    std::string secret_key;
    bool enabled() const noexcept { return !server_public.empty(); }
};

// wss://: how the router's certificate is checked. By default it must chain
// to a CA of the system's trust store (OpenSSL's default paths) and name the
// URL's host (a DNS name, or an IP address in its subjectAltName). A
// certificate that fails is a failed attempt: transport_handshake_failed,
// with OpenSSL's reason in the detail.
struct tls_options {
    // A PEM file of the CA certificates to trust instead of the system's (a
    // private CA, or a self-signed router certificate itself).
    std::string ca_file;
    // FOR TESTS ONLY: accept any certificate for any name. Whoever sits
    // between the client and the router can then read and change the
    // traffic, tokens included. Every connection attempt warns (below).
    bool insecure_skip_verify = false;
    // Receives that warning, on the I/O thread; unset: it goes to stderr.
    std::function<void(std::string_view warning)> warn;
};

struct transport_options {
    curve_keys curve;  // tcp://, ipc://
    tls_options tls;   // wss://
    // > 0: the socket's receive buffer (SO_RCVBUF; ZMQ_RCVBUF), set before
    // connecting. A small one makes the router's outbox bound and policy
    // apply to this client sooner.
    int receive_buffer_bytes = 0;
};

// The role a URL implies: a WebSocket client is a frontend, a ZeroMQ client a backend.
client_role role_for(std::string_view url) noexcept;

class engine_host {
public:
    using event_handler = std::function<void(client_engine&, const client_event&)>;
    using task = std::function<void(client_engine&, time_ms now)>;

    // A zero seed is replaced by a random one.
    engine_host(client_config config, event_handler on_event, transport_options transport = {});
    // The same on `io`, which the owner runs (one thread for several
    // connections): no thread of its own. close() then waits for the
    // goodbye to leave (up to the linger), never for `io` to stop, and the
    // host may be destroyed on `io`'s thread.
    engine_host(boost::asio::io_context& io, client_config config, event_handler on_event,
                transport_options transport = {});
    // Closes (as close() with the default linger) if still running. With a
    // thread of its own, must not run on the I/O thread.
    ~engine_host();
    engine_host(const engine_host&) = delete;
    engine_host& operator=(const engine_host&) = delete;

    // Starts the I/O thread (if it has its own) and the engine. Calling it again does nothing.
    void start();

    // Runs `t` on the I/O thread, in posting order, then sends what it queued
    // and dispatches the events it caused. Safe from any thread, the I/O
    // thread included (it then runs later, never inside the caller). Tasks
    // posted after close() are dropped.
    void post(task t);

    // Runs `t` on the I/O thread once `delay` has passed (an answer that
    // must come later), as post() does. Pending ones are dropped by close().
    void post_after(std::chrono::milliseconds delay, task t);

    // post() and wait for the result. From the I/O thread it would wait for
    // itself: it runs `f` inline there instead.
    template <class F>
    auto call(F&& f) -> std::invoke_result_t<F&, client_engine&, time_ms>;

    // Closes the engine (goodbye), gives the transport up to `linger` to send
    // what is queued, then stops the I/O thread (its own). Idempotent. From
    // the I/O thread (an inline handler) it closes the engine and returns at
    // once; the destructor (own thread) or the io_context (owner's) then
    // finishes the job. On an owner's io_context that nobody runs, it waits
    // for no more than the linger and a second.
    void close(std::chrono::milliseconds linger = std::chrono::milliseconds(500));

    // Stops reading from the transport, and starts again; a reconnect keeps
    // the choice. Meanwhile the router's messages wait in the kernel (and in
    // libzmq up to its high-water mark), then in the router's outbox under
    // its bound and policy, as for any consumer that falls behind.
    void pause_reading();
    void resume_reading();

    // Drops the connection at once, as a failing network would: nothing more
    // is sent (no goodbye), the engine sees the transport lost and connects
    // again after its backoff, resuming its subscriptions.
    void drop_connection();

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
