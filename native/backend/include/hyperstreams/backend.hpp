// hyperstreams::backend: the C++ client for backend services.
//
//   hyperstreams::backend::client hs({.url = "tcp://127.0.0.1:7071", .name = "greeter"});
//   hs.provide("greeter", "hello", [](auto req, auto reply) { reply.send("hello " + std::string(req.text())); });
//   hs.start();
//   hs.publish("greeter.started", hyperstreams::backend::json(R"({"ok":true})"));
//
// It connects to the router over ZeroMQ (tcp:// or ipc://; ws:// and wss://
// work too, as a frontend, for tools) and drives the shared client engine,
// which reconnects by itself with a jittered backoff and then registers the
// services and subscribes again.
//
// Threading (native/backend/README.md is the reference of every call).
//   - The connections, the engine and every timer run on one I/O thread:
//     the client's own, or the caller's io_context (options::io_context).
//   - Handlers and callbacks (request and stream handlers, subscription,
//     direct-message, response, state and error callbacks) run where
//     options::handlers says: by default on one internal handler thread, in
//     the order the events arrived; or inline on the I/O thread (they must
//     then never block); or through an executor function of yours (a thread
//     pool: handlers may then run concurrently, in any order).
//   - Every public member function is safe from any thread, handlers
//     included. Calls that send something queue it for the I/O thread and
//     return at once; their outcome comes back as a future, a callback
//     (run where handlers run) or through an Asio completion token (its
//     handler's associated executor: a coroutine resumes on its own).
//   - A reply or a stream_writer may be kept and completed later, from any
//     thread. The destructor of client must not run in a handler.
//
// Errors are std::error_code values of hyperstreams::errc (errc_name() gives
// the stable name, e.g. "no_such_service").
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"

namespace boost::asio {
class io_context;
}

namespace hyperstreams::backend {

using byte_span = std::span<const std::uint8_t>;

// Bytes to send, and whether they are JSON (a flag tools use to render them).
// Converts from text and from bytes; json() marks JSON text. Views: the
// bytes are copied by the call that takes it.
struct payload {
    payload() = default;
    payload(std::string_view text) noexcept  // NOLINT: implicit by design
        : bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()) {}
    payload(const char* text) noexcept : payload(std::string_view(text)) {}  // NOLINT
    payload(const std::string& text) noexcept : payload(std::string_view(text)) {}  // NOLINT
    payload(byte_span data) noexcept : bytes(data) {}  // NOLINT
    payload(const std::vector<std::uint8_t>& data) noexcept : bytes(data) {}  // NOLINT

    byte_span bytes;
    bool is_json = false;
};

// `text` (valid JSON, not checked here) as a JSON payload.
inline payload json(std::string_view text) noexcept {
    payload p(text);
    p.is_json = true;
    return p;
}

// A received payload with its JSON flag; owns its bytes.
struct received {
    std::vector<std::uint8_t> bytes;
    bool is_json = false;

    std::string_view text() const noexcept {
        return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
    }
};

// A message delivered to a subscription.
struct message {
    std::string channel;
    received data;
    std::uint32_t epoch = 0;  // the channel's epoch (changes when the router restarts it)
    std::uint64_t seq = 0;    // the channel's sequence number
    bool replayed = false;    // delivered from the channel's history (resume)
};

// A direct message sent to this client's address, or a broadcast.
struct direct_message {
    std::string from;  // the sender's address: answer with client::send(from, ...)
    received data;
};

// A place in a channel: the last message a subscriber has.
struct position {
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
};

// Messages seq .. seq + count - 1 of `epoch` will never come (the router's
// history no longer held them, or a slow-consumer policy dropped them).
struct gap {
    std::string channel;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t count = 0;
};

// The router restarted `channel` (lost its history): messages may have been
// lost, how many is unknown. `epoch` and `seq` are the first message's of
// the new sequence.
struct epoch_change {
    std::string channel;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
};

// A member of a channel's presence (docs/PROTOCOL.md section 11, Presence):
// a connection subscribed to exactly that channel.
struct presence_member {
    std::string address;  // its address for send()
    std::string subject;  // its token's subject; empty without a token
    std::string name;     // its client name
};

// The outcome of client::presence(): `count` members, of which `members`
// lists those that fit in one answer (all but for very large channels).
struct presence_result {
    std::error_code error;  // not_enabled, forbidden, invalid_name, ...
    std::uint32_t count = 0;
    std::vector<presence_member> members;
};

// Another connection joined or left a channel this client subscribed to
// with subscribe_options::on_join_leave.
struct presence_change {
    bool joined = false;  // false: left (unsubscribed or disconnected)
    std::string channel;
    presence_member member;
};

// What the router does when this subscriber falls behind (docs/PROTOCOL.md).
using slow_policy = hyperstreams::slow_policy;

// The outcome of client::request().
struct response {
    std::error_code error;   // empty on success
    std::string error_text;  // the remote side's explanation, when it gave one
    received data;

    explicit operator bool() const noexcept { return !error; }
};

// The outcome of client::publish_with_ack().
struct publish_ack {
    std::error_code error;
    std::string error_text;
    std::uint32_t epoch = 0;  // where the message landed in the channel
    std::uint64_t seq = 0;
};

struct method_description {
    std::string name;
    bool stream = false;
};
struct service_description {
    std::string name;
    std::uint16_t instances = 0;
    std::vector<method_description> methods;
};
struct services_result {
    std::error_code error;
    std::vector<service_description> services;
};

// An incoming request or stream open.
struct request {
    std::string service;
    std::string method;
    received data;

    std::string_view text() const noexcept { return data.text(); }
    byte_span bytes() const noexcept { return data.bytes; }
    bool is_json() const noexcept { return data.is_json; }
};

namespace detail {
class client_core;
struct call_link;

// A payload's copy, for an operation that starts later (a deferred completion token).
struct owned_payload {
    explicit owned_payload(const payload& p) : bytes(p.bytes.begin(), p.bytes.end()), is_json(p.is_json) {}
    payload view() const noexcept {
        payload p(bytes);
        p.is_json = is_json;
        return p;
    }
    std::vector<std::uint8_t> bytes;
    bool is_json = false;
};

// An Asio completion handler as the callback of a call: it runs on its
// associated executor, whose work it counts until then (so that a
// coroutine's io_context does not run out of work while it waits).
template <class Result, class Handler>
std::function<void(Result)> completion(Handler handler) {
    struct state {
        Handler handler;
        decltype(boost::asio::make_work_guard(std::declval<Handler&>())) work;
    };
    auto work = boost::asio::make_work_guard(handler);
    auto s = std::make_shared<state>(state{std::move(handler), std::move(work)});
    return [s](Result r) {
        auto ex = s->work.get_executor();
        boost::asio::dispatch(ex, [s, r = std::move(r)]() mutable {
            s->work.reset();
            std::move(s->handler)(std::move(r));
        });
    };
}
}  // namespace detail

// The answer to one request: move-only, complete it once, now or later, from
// any thread. A reply destroyed without an answer fails the request with
// errc::handler_failed (the text of the exception when the handler threw).
class reply {
public:
    explicit reply(std::shared_ptr<detail::call_link> link) noexcept;
    reply(reply&&) noexcept = default;
    reply& operator=(reply&&) noexcept = default;
    reply(const reply&) = delete;
    reply& operator=(const reply&) = delete;
    ~reply() = default;

    // Each returns false (and sends nothing) when the request was answered,
    // cancelled, timed out or lost with the connection already.
    bool send(payload p);
    bool send_json(std::string_view json_text) { return send(json(json_text)); }
    bool fail(errc code, std::string_view text);

    // True once answered, or when the caller no longer waits (cancelled,
    // deadline passed, connection lost).
    bool done() const noexcept;

private:
    std::shared_ptr<detail::call_link> link_;
};

enum class write_status : std::uint8_t {
    ok,         // queued for sending
    no_credit,  // the caller granted no more items (only when not waiting)
    timeout,    // no credit came within the wait
    cancelled,  // the caller cancelled, the deadline passed or the connection was lost
    closed,     // the stream was ended or failed already
};
std::string_view write_status_name(write_status s) noexcept;

// The sending side of one server stream: move-only, usable from any thread.
// Flow control is the caller's credit: write() waits (up to `wait`) until the
// caller has room for one more item. On the I/O thread (inline handlers) it
// never waits: it returns no_credit instead. A writer destroyed without end()
// or fail() fails the stream with errc::handler_failed.
class stream_writer {
public:
    explicit stream_writer(std::shared_ptr<detail::call_link> link) noexcept;
    stream_writer(stream_writer&&) noexcept = default;
    stream_writer& operator=(stream_writer&&) noexcept = default;
    stream_writer(const stream_writer&) = delete;
    stream_writer& operator=(const stream_writer&) = delete;
    ~stream_writer() = default;

    write_status write(payload p, std::chrono::milliseconds wait = std::chrono::seconds(30));
    write_status write_json(std::string_view json_text,
                            std::chrono::milliseconds wait = std::chrono::seconds(30)) {
        return write(json(json_text), wait);
    }
    // Ends the stream normally / with an error. False when already finished.
    bool end();
    bool fail(errc code, std::string_view text);

    bool cancelled() const noexcept;
    // Items the caller can take now without waiting.
    std::uint32_t credit() const noexcept;

private:
    std::shared_ptr<detail::call_link> link_;
};

using request_handler = std::function<void(request, reply)>;
using stream_handler = std::function<void(request, stream_writer)>;
using message_handler = std::function<void(const message&)>;
using direct_handler = std::function<void(const direct_message&)>;
using gap_handler = std::function<void(const gap&)>;
using epoch_change_handler = std::function<void(const epoch_change&)>;
using presence_handler = std::function<void(const presence_change&)>;
using item_handler = std::function<void(received item)>;
// A stream's end: no error (the service ended it), or why not.
using end_handler = std::function<void(std::error_code error, std::string_view text)>;
using executor = std::function<void(std::function<void()>)>;

enum class handler_threading : std::uint8_t {
    handler_thread,  // one internal thread, events in order (default)
    io_thread,       // inline on the I/O thread: handlers must not block
};

struct options {
    std::string url = "tcp://127.0.0.1:7071";  // the router's backend endpoint
    // The routers of one cluster, tried in turn (a dead one costs one
    // attempt; see client.hpp); when given, in place of `url`. All of one
    // kind: tcp:// and ipc://, or ws:// and wss://.
    std::vector<std::string> urls{};
    std::string name = "backend";              // shown in the router's logs and admin view
    std::string token{};                       // sent in hello, when the router wants one
    // ZeroMQ CURVE, for a router with backend_auth.curve_secret_key: its
    // public key and this backend's key pair (Z85, 40 characters each; see
    // zmq_curve_keypair). All empty: a plain connection.
    std::string curve_server_key{};
    std::string curve_public_key{};
    std::string curve_secret_key{};
    // wss:// only: a PEM file of the CA certificates that the router's
    // certificate must chain to, instead of the system's trusted CAs (a
    // private CA, or the router's self-signed certificate). The certificate
    // must also name the URL's host. One that does not verify fails the
    // attempt: on_error gets transport_handshake_failed and OpenSSL's reason.
    std::string tls_ca_file{};
    handler_threading handlers = handler_threading::handler_thread;
    executor handler_executor{};  // when set, handlers run through it (overrides `handlers`)
    std::chrono::milliseconds request_timeout{10000};  // default deadline of request()
    std::function<void(std::string_view state)> on_state{};  // "connecting", "ready", "backoff", ...
    // Failures nothing else reports: a connection attempt that failed or
    // timed out and a connection that went silent (why, e.g.
    // connection_refused, and when the next attempt comes), a refusal by the
    // router (e.g. unauthorized, in its words), a publish without ack the
    // router refused, a subscription or registration it rejected (a service
    // over ws://: wrong_role), a protocol error.
    std::function<void(std::error_code error, std::string_view text)> on_error{};
    std::uint64_t seed = 0;  // backoff jitter; 0: random
    // Routers run as one (cluster.redis): join every router of the cluster,
    // which the first one names (and names again as routers come and go),
    // and serve the services on each, so that a caller on any router
    // reaches this backend. Everything else (subscriptions, publishes,
    // requests, direct messages) goes through the connection to `url`
    // only. No effect on a router on its own, or over ws:// and wss://.
    bool follow_cluster = true;
    // Gives a fresh token (e.g. from an identity provider; it may block: it
    // runs where handlers run). Called `token_refresh_margin` before the
    // current token's `exp` (read from the JWT, not verified), and when the
    // router refuses the token as expired; the token it returns is sent with
    // refresh_token(). An empty string skips the refresh. With an empty
    // `token`, start() calls it for the first one.
    std::function<std::string()> token_provider{};
    std::chrono::seconds token_refresh_margin{30};
    // The caller's io_context, which the caller runs: the connections and
    // their timers run there instead of on a thread of the client's own. It
    // must outlive the client, and every reply and stream_writer of the
    // client that another thread still uses; close() waits for the goodbye
    // (up to half a second), never for it to stop, and fails what still
    // waits on its thread (or, when nobody runs it for a second, on the
    // caller's).
    boost::asio::io_context* io_context = nullptr;
};

// What a publish may carry besides its payload (PROTOCOL.md, Idempotent
// publish and Expiry).
struct publish_options {
    // An idempotency key (1-255 printable ASCII characters): a repeat within
    // the router's window is acked with the first publication's position and
    // not delivered again; another payload under it fails with key_reused.
    // Empty: none.
    std::string key;
    // The message expires this long after the router placed it (at least 1:
    // 0 fails with invalid_argument); none: its namespace's message_ttl_s.
    std::optional<std::uint32_t> ttl_s;
};

struct subscribe_options {
    slow_policy policy = slow_policy::router_default;
    // Exact channels only: deliver first what the channel's history holds
    // after this position (flagged replayed), with a gap for what it no longer holds.
    std::optional<position> since{};
    // First the last message of every channel the pattern matches (flagged
    // replayed; the router's namespace must enable latest, else on_error
    // hears not_enabled), then live; asked again on each resubscribe without
    // a position, where what was seen already is dropped.
    bool latest = false;
    gap_handler on_gap{};
    epoch_change_handler on_epoch_change{};
    // Exact channels of a namespace with join_leave only: the channel's
    // other members joining and leaving (the subscribe fails with
    // not_enabled elsewhere).
    presence_handler on_join_leave{};
};

struct stream_options {
    // Items the service may send ahead of the consumer (the credit window).
    std::uint32_t credit = 16;  // the engine's default_stream_credit (checked where it is built)
    std::chrono::milliseconds timeout{0};  // 0: no deadline
    // false: an item is consumed when its handler returns, and the credit
    // goes back to the service. true: the consumer says when, with
    // stream_handle::consume() (e.g. after work done on another thread).
    bool manual_credit = false;
};

// A subscription made by client::subscribe(). Copyable; unsubscribe() ends it
// (destroying the handle does not).
class subscription {
public:
    subscription() = default;
    void unsubscribe();
    explicit operator bool() const noexcept { return id_ != 0; }

private:
    friend class client;
    subscription(std::weak_ptr<detail::client_core> core, std::uint64_t id) noexcept
        : core_(std::move(core)), id_(id) {}
    std::weak_ptr<detail::client_core> core_;
    std::uint64_t id_ = 0;
};

// A stream opened by client::open_stream(). Copyable; cancel() ends it
// (destroying the handle does not).
class stream_handle {
public:
    stream_handle() = default;
    // The service is told to stop; the end handler gets errc::cancelled,
    // unless the stream ended already.
    void cancel();
    // stream_options::manual_credit: `items` more delivered items are done
    // with, so the service may send as many more.
    void consume(std::uint32_t items = 1);
    explicit operator bool() const noexcept { return id_ != 0; }

private:
    friend class client;
    stream_handle(std::weak_ptr<detail::client_core> core, std::uint64_t id) noexcept
        : core_(std::move(core)), id_(id) {}
    std::weak_ptr<detail::client_core> core_;
    std::uint64_t id_ = 0;
};

// One read of a stream_reader: the next item, or the stream's end.
struct stream_read {
    bool end = false;      // no more items: `error` says why (none: the service ended it)
    received item;         // when !end
    std::error_code error;
    std::string text;      // the error's words
};

namespace detail {
// What a stream_reader's reads take from: the items delivered and not read
// yet (at most the stream's credit), its end, a read waiting for either.
// Any thread.
struct reader_state {
    void read(std::function<void(stream_read)> done);
    void add(stream_read r);  // an item or the end, from the client

    std::mutex mu;
    std::deque<stream_read> ready;
    std::function<void(stream_read)> waiting;
    bool ended = false;
    stream_handle stream;  // set before the first item can arrive
};
}  // namespace detail

// A server stream read with Asio (client::read_stream()): each async_read
// completes with the next item, then once with the end; a read after the
// end completes with the end again. An item read is consumed: the credit
// goes back to the service then, so it is never more than the credit window
// ahead of the reader. Copyable; cancel() ends the stream (destroying the
// reader does not).
class stream_reader {
public:
    stream_reader() = default;

    //   for (;;) {
    //       hs::stream_read r = co_await reader.async_read(asio::use_awaitable);
    //       if (r.end) break;  // r.error: why, if not the service's own end
    //       use(r.item);
    //   }
    template <class Token>
    auto async_read(Token&& token) {
        return boost::asio::async_initiate<Token, void(stream_read)>(
            [state = state_](auto handler) {
                auto done = detail::completion<stream_read>(std::move(handler));
                if (!state) {
                    stream_read r;
                    r.end = true;
                    r.error = make_error_code(errc::invalid_argument);
                    r.text = "a stream_reader that read_stream() did not make";
                    return done(std::move(r));
                }
                state->read(std::move(done));
            },
            token);
    }
    // The service is told to stop; the next reads give the items already
    // delivered, then the end with errc::cancelled.
    void cancel();
    explicit operator bool() const noexcept { return state_ != nullptr; }

private:
    friend class client;
    explicit stream_reader(std::shared_ptr<detail::reader_state> state) noexcept : state_(std::move(state)) {}
    std::shared_ptr<detail::reader_state> state_;
};

class client {
public:
    explicit client(options opts);
    ~client();  // close(); no handler of the client runs once it returns
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // Serves `service`/`method`. Before start() the services are registered on
    // connecting; later, the service is registered again with the new method.
    void provide(std::string_view service, std::string_view method, request_handler handler);
    void provide_stream(std::string_view service, std::string_view method, stream_handler handler);
    // Stops serving a whole service.
    void withdraw(std::string_view service);

    // Connects (in the background) and keeps connecting until close().
    void start();
    // Waits until connected with every service registered; false on timeout.
    bool wait_ready(std::chrono::milliseconds timeout);
    // This client's address for direct messages (changes on every reconnect); empty before.
    std::string address() const;

    void publish(std::string_view channel, payload p);
    void publish(std::string_view channel, payload p, publish_options options);
    std::future<publish_ack> publish_with_ack(std::string_view channel, payload p);
    std::future<publish_ack> publish_with_ack(std::string_view channel, payload p, publish_options options);
    void publish_with_ack(std::string_view channel, payload p, std::function<void(publish_ack)> done);
    void publish_with_ack(std::string_view channel, payload p, publish_options options,
                          std::function<void(publish_ack)> done);

    // `pattern`: a channel, `*` for one token, a final `>` for the rest.
    subscription subscribe(std::string_view pattern, message_handler handler);
    subscription subscribe(std::string_view pattern, message_handler handler, subscribe_options options);

    void send(std::string_view address, payload p);
    void on_direct(direct_handler handler);
    // To every other client of every router. Needs the
    // broadcast right when the router checks tokens.
    void broadcast(payload p);
    void on_broadcast(direct_handler handler);

    // Calls another service (timeout 0: options::request_timeout).
    std::future<response> request(std::string_view service, std::string_view method, payload p,
                                   std::chrono::milliseconds timeout = {});
    void request(std::string_view service, std::string_view method, payload p,
                 std::chrono::milliseconds timeout, std::function<void(response)> done);

    // Opens a server stream: `on_item` gets each item, then `on_end` once
    // (no error: the service ended it; otherwise why: the service's error,
    // deadline_exceeded, connection_lost, cancelled, closed). Both run where
    // handlers run.
    stream_handle open_stream(std::string_view service, std::string_view method, payload p,
                              item_handler on_item, end_handler on_end, stream_options options = {});

    // The same stream for Asio code: read its items with
    // stream_reader::async_read() (options.manual_credit is ignored: an item
    // is consumed when it is read).
    stream_reader read_stream(std::string_view service, std::string_view method, payload p,
                              stream_options options = {});

    std::future<services_result> services();
    void services(std::function<void(services_result)> done);

    // Who is subscribed to `channel` (a namespace with presence; reading
    // it takes the right to subscribe to the channel).
    std::future<presence_result> presence(std::string_view channel);
    void presence(std::string_view channel, std::function<void(presence_result)> done);

    // Replaces the token: the router checks it and applies its rights to
    // this connection; later connections send it in hello. The future holds
    // the router's verdict (empty: accepted; unauthorized, forbidden, ...).
    std::future<std::error_code> refresh_token(std::string_view token);
    void refresh_token(std::string_view token, std::function<void(std::error_code)> done);

    // Subscribes the client at `address` (its session id, on any router of
    // the cluster) to `pattern`, under that client's own rights; it hears of
    // it (the npm package's 'subscribed' event) and keeps it across its
    // reconnects. Needs the subscribe_clients right when the router checks
    // tokens. The future holds the router's verdict (empty: done; forbidden,
    // no_such_address, already_subscribed, too_many_subscriptions,
    // cluster_outcome_unknown, ...). docs/PROTOCOL.md section 11,
    // Server-side subscriptions.
    std::future<std::error_code> subscribe_client(std::string_view address, std::string_view pattern,
                                                  slow_policy policy = slow_policy::router_default);
    void subscribe_client(std::string_view address, std::string_view pattern, slow_policy policy,
                          std::function<void(std::error_code)> done);
    // Ends that client's subscription to `pattern`, whoever made it
    // (not_subscribed when it has none).
    std::future<std::error_code> unsubscribe_client(std::string_view address, std::string_view pattern);
    void unsubscribe_client(std::string_view address, std::string_view pattern,
                            std::function<void(std::error_code)> done);

    // Says goodbye and stops; pending calls fail with errc::closed. Idempotent.
    void close();

    // --- Asio completion tokens ---------------------------------------------
    //
    // The same calls for Asio code: each takes a completion token and
    // completes with the outcome, as every Asio operation does:
    //
    //   hs::response r = co_await hs.request("factory", "machines", {}, asio::use_awaitable);
    //   std::future<hs::response> f = hs.request("factory", "machines", {}, asio::use_future);
    //   hs.request("factory", "machines", {}, [](hs::response r) { ... });
    //
    // The handler runs on its associated executor (a coroutine resumes on its
    // own), which is kept busy until then; a handler without one (a plain
    // callback) runs where handlers run. Failures are in the outcome (its
    // `error`), never thrown. The arguments are copied at once.
    template <class Token>
        requires(!std::is_convertible_v<Token, std::chrono::milliseconds>)
    auto request(std::string_view service, std::string_view method, payload p, Token&& token) {
        return request(service, method, p, std::chrono::milliseconds{}, std::forward<Token>(token));
    }
    template <class Token>
    auto request(std::string_view service, std::string_view method, payload p, std::chrono::milliseconds timeout,
                 Token&& token) {
        return boost::asio::async_initiate<Token, void(response)>(
            [this](auto handler, const std::string& s, const std::string& m, const detail::owned_payload& data,
                   std::chrono::milliseconds t) {
                request(s, m, data.view(), t, detail::completion<response>(std::move(handler)));
            },
            token, std::string(service), std::string(method), detail::owned_payload(p), timeout);
    }

    // Completes when connected with every service registered (at once if
    // so), with no error; or with errc::closed when the client closes first,
    // or the code of a connection that failed for good.
    template <class Token>
        requires(!std::is_convertible_v<Token, std::chrono::milliseconds>)
    auto wait_ready(Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code)>(
            [this](auto handler) { when_ready(detail::completion<std::error_code>(std::move(handler))); }, token);
    }

    template <class Token>
    auto publish_with_ack(std::string_view channel, payload p, Token&& token) {
        return boost::asio::async_initiate<Token, void(publish_ack)>(
            [this](auto handler, const std::string& ch, const detail::owned_payload& data) {
                publish_with_ack(ch, data.view(), detail::completion<publish_ack>(std::move(handler)));
            },
            token, std::string(channel), detail::owned_payload(p));
    }

    template <class Token>
    auto services(Token&& token) {
        return boost::asio::async_initiate<Token, void(services_result)>(
            [this](auto handler) { services(detail::completion<services_result>(std::move(handler))); }, token);
    }

    template <class Token>
    auto presence(std::string_view channel, Token&& token) {
        return boost::asio::async_initiate<Token, void(presence_result)>(
            [this](auto handler, const std::string& ch) {
                presence(ch, detail::completion<presence_result>(std::move(handler)));
            },
            token, std::string(channel));
    }

    template <class Token>
    auto refresh_token(std::string_view token_text, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code)>(
            [this](auto handler, const std::string& t) {
                refresh_token(t, detail::completion<std::error_code>(std::move(handler)));
            },
            token, std::string(token_text));
    }

    template <class Token>
    auto subscribe_client(std::string_view address, std::string_view pattern, slow_policy policy, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code)>(
            [this](auto handler, const std::string& a, const std::string& p, slow_policy s) {
                subscribe_client(a, p, s, detail::completion<std::error_code>(std::move(handler)));
            },
            token, std::string(address), std::string(pattern), policy);
    }

    template <class Token>
    auto unsubscribe_client(std::string_view address, std::string_view pattern, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code)>(
            [this](auto handler, const std::string& a, const std::string& p) {
                unsubscribe_client(a, p, detail::completion<std::error_code>(std::move(handler)));
            },
            token, std::string(address), std::string(pattern));
    }

private:
    void when_ready(std::function<void(std::error_code)> done);
    std::shared_ptr<detail::client_core> core_;
};

}  // namespace hyperstreams::backend
