// The client side of the HyperStreams protocol as a sans-I/O engine: the npm
// package (through wasm) and the C++ backend client drive this same object,
// so browsers and backends behave identically.
//
// The engine never reads a clock, opens a socket, starts a thread or draws
// randomness from the system. The host
//   - reports the transport: transport_opened(), transport_closed() (with
//     why, when it knows: a refused connection, an HTTP status instead of an
//     upgrade, ...), and the bytes of every received transport message:
//     receive();
//   - passes the current monotonic time in milliseconds to the calls that
//     need it, and calls handle_timeout(now) once now >= next_deadline();
//   - sends the bytes of output() as ONE transport message (a batch of every
//     frame queued since the last one), then calls consume_output();
//   - drains events with poll_event() after every call. Two events are
//     actions it must perform: open_transport (open a WebSocket / ZeroMQ
//     connection to `name`, tagged with `id`) and close_transport (send any
//     pending output, then close transport `id`).
//
// A host loop:
//
//   engine.start(now());
//   for (;;) {
//       client_event e;
//       while (engine.poll_event(e)) dispatch(e);
//       if (!engine.output().empty()) { send(engine.output()); engine.consume_output(); }
//       wait for bytes, a user call or engine.next_deadline();
//       ... engine.receive(bytes, now()) / engine.publish(...) / engine.handle_timeout(now());
//   }
//
// Lifetime of views. Events view either the buffer last passed to receive()
// (channel, payload, error text: valid until the next receive(), which
// refuses to run while events are undrained) or strings the engine owns
// (URL, session id, service list, a failed transport's detail: valid until
// the engine replaces them, at the next attempt, redirect, welcome, service
// list or transport_closed()). Copy what you keep.
//
// Errors come in two kinds, never mixed. A call the owner should not have
// made (invalid name, wrong role, closed engine, full outbox) returns an
// error and changes nothing. Bad bytes or frames from the router produce an
// error event (operation::connection, a framing or session errc), a
// close_transport action and the failed state, which only start() leaves.
//
// Semantics the engine implements (docs/PROTOCOL.md is normative on the wire):
//
// Connection. States and transitions: client_state.hpp. Connect and
// handshake share one timeout (handshake_timeout_ms). The routers are
// config.router_urls(): the routers of one cluster, any of which serves the
// client. The first attempt goes to the first URL; after a failed attempt or
// a lost connection the next attempt goes to the next URL of the list
// (round robin), so that a dead router costs one attempt. A round is one
// failure per URL of the list. Within a round the pause before the next URL
// is uniform in [0, min(backoff_max_ms, backoff_base_ms)]; after the last
// failure of the n-th failed round in a row (n = 0, 1, ...) the backoff is
// uniform in [0, min(backoff_max_ms, backoff_base_ms * 2^n)] ("full
// jitter"): the other routers are tried at once, the same one again only
// after a backoff. With one URL every failure ends a round: each attempt
// backs off. The round and n return to 0 once a connection stayed ready for
// stable_after_ms; a connection lost sooner counts as a failure of its
// round. The state_changed event into backoff says why (its code: the
// host's reason given to transport_closed(), handshake_timeout,
// heartbeat_timeout, a router's code; its text: the host's detail), when
// the next attempt comes (its count, in ms), where it goes (its name) and
// how many URLs the round has left (its seq; 0: the delay is the backoff
// between rounds), so that an owner can tell its user "connection refused,
// retrying in 2 s" from the first attempt on, or give up once a round
// failed. A failed attempt is not an error event: it is the engine's normal
// work, and it goes on.
//
// Rejections. A handshake error frame or a goodbye with unauthorized,
// token_expired or forbidden is an error event and the awaiting_token state:
// the engine does not retry a token the router refused, it waits for
// refresh_token() and then connects at once, to the same URL of the list.
// A refusal of a token refresh_token() replaced while the hello was on its
// way connects again at once with the new one.
// version_mismatch, origin_not_allowed and framing/session codes (the router
// says our bytes are wrong) are fatal: error event, failed. Any other code
// (going_away, too_many_connections, rate_limited, ...) is a failed attempt:
// the next URL, after a pause or a backoff.
//
// Redirects. A redirect frame (payload: target URL) is followed at once,
// without backoff; a target that is a URL of the list becomes the list's
// position, so that losing it moves on to the URL after it. A failed
// attempt at a target is a failure of the round, and the list resumes with
// the URL after the position. More than max_redirects redirects without a
// connection that stayed ready for stable_after_ms is a loop: error event
// too_many_redirects, a failure of the round like any other. The backoff
// keeps growing while the loop lasts, so an endless loop settles at
// (max_redirects + 1) attempts per URL of the list per backoff
// (backoff_max_ms / 2 on average).
//
// Heartbeats (docs/PROTOCOL.md section 11, normative). The interval is the
// welcome's heartbeat_ms (config.heartbeat_ms when the router gives 0; 0
// there too disables them). Liveness does not depend on who talks. The
// engine checks once an interval and pings when it sent nothing since the
// previous check, however much it receives, so the router hears from it at
// least every two intervals; the router pings a connection it queued
// nothing to for an interval, however much it hears from it, so even a
// client that only publishes hears from the router at least every 1.25
// intervals. A router ping is answered with pong. dead_after_heartbeats
// intervals (at least 2) without any received byte mean the transport is
// dead: close it and reconnect after a backoff.
//
// Operations and the outbox. Every call that sends something returns an id
// (non-zero, from one wrapping u32 space that skips ids in use); its outcome
// is an ack, response, stream, service_list or token_refreshed event, or an
// error event, never nothing. Calls made while not ready wait in the outbox,
// bounded by outbox_limit_bytes of encoded frames; a call that does not fit
// fails at once with errc::outbox_full. The outbox is sent, in call order,
// right after the welcome. Operations sent on a transport that is lost fail
// with errc::connection_lost (they may or may not have reached the router:
// nothing is re-sent, delivery is at most once). Output not yet taken when a
// transport is lost is dropped with it. Entering failed also fails what waits
// in the outbox (connection_lost; publishes without ack just go), and calls
// are then refused with errc::not_connected until start(); after close()
// they are refused with errc::closed.
//
// Subscriptions and registrations are state, not outbox items: they are sent
// again after every welcome (registrations first), whatever the welcome's
// `resumed` says. Only the first ack of a subscription is an event; a failed
// re-subscribe is an error event and removes the subscription, but for
// cluster_unavailable (a router of a cluster whose Redis is failing over
// cannot read the history a resume asks for): that error event ends
// nothing, and the subscription is sent again, as it was, after a pause
// that starts at backoff_base_ms and doubles while the router refuses it
// (at most backoff_max_ms, jittered), until it is served or the connection
// goes (the next welcome sends it anyway). So does an
// error for a confirmed subscription: the router ended it (a token refresh
// withdrew the right: forbidden), and no message event follows for it. A
// request or stream the router ends that way is an error event for its id.
//
// Server-side subscriptions. The router may subscribe the connection itself
// (the token's `channels`, a backend's subscribe_client): a subscribed
// frame becomes a subscription like one of the owner's (a subscribed event
// with its new id; its messages, gaps and resume are every subscription's),
// except that it was not asked for. An unsubscribed frame ends the
// subscription of that pattern, whoever made it (an unsubscribed event).
// A subscribed frame for a pattern the engine already holds changes
// nothing: that subscription takes its messages. While the engine holds a
// server-side subscription, every hello carries the flag resubscribes and
// the engine sends them again itself, with `since` like its own, so that
// the router does not apply the token's channels a second time (no loss, no
// duplicate across a reconnect).
//
// Resume. Sequence numbers are tracked per channel, not per subscription.
// A subscription whose pattern has no wildcard names one channel and is sent
// again with `since` = the last (epoch, seq) seen on it, so the router can
// replay what was missed. A wildcard pattern covers channels that each have
// their own sequence, which one `since` position cannot express, so wildcard
// subscriptions are sent again without `since`; for channels seen before,
// the first message after the reconnect then yields a gap event with the
// exact count missed. If the router answers a resume with history_gone, the
// engine reports it (error event, operation::subscribe) and subscribes again
// without `since`.
//
// Delivery. The router sends a channel's message once per connection; the
// engine delivers it once to every subscription whose pattern matches (one
// message event each, `subscription` says which). Per channel: seq one past
// the last is in order; a larger seq is a gap event (count = messages
// missed) before the message; seq <= last in the same epoch is a duplicate
// (e.g. a replay overlapping live traffic) and is dropped; another epoch
// means the router restarted the channel: an epoch_changed event (possibly
// lost messages, count unknown), then tracking restarts. A gap frame from the
// router is a gap event and moves the position past the missed range.
//
// Requests and streams. Timeouts are enforced here (error event
// deadline_exceeded at the deadline, and a cancel to the router) and sent in
// the frame as the time remaining. A client stream opens with a credit
// window; the router may send at most that many items beyond what the host
// has consumed. The host reports consumption with stream_consumed() (the JS
// async iterator as the consumer reads, a C++ handler when it returns); the
// engine grants credit back in batches of half the window. An item beyond
// the credit is a protocol violation.
//
// Backend role. Incoming requests and stream opens for a service and method
// this engine registered become events; anything else is answered by the
// engine itself with errc::no_such_service. The host answers with respond(),
// respond_error(), stream_send() (which reports no_credit: wait for a
// stream_credit event) and stream_end(). A cancel from the router, the
// request's deadline or a lost transport ends one with a cancelled event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/client_state.hpp"
#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"

namespace hyperstreams {

// Monotonic milliseconds from any origin the host likes (performance.now(),
// steady_clock, a test's fake clock).
using time_ms = std::int64_t;
inline constexpr time_ms no_deadline = std::numeric_limits<time_ms>::max();

struct client_config {
    // Where to connect: one router (url), or the routers of one cluster in
    // the order to try them (urls). Give one of the two: start() refuses
    // both, neither, and an empty URL.
    std::string url;
    std::vector<std::string> urls;
    std::string name;   // client name sent in hello (logs, admin view)
    std::string token;  // sent in hello; replaced by refresh_token()
    client_role role = client_role::frontend;
    // A backend that joins every router of a cluster: hello asks the router
    // for the cluster's other routers (routers events; docs/PROTOCOL.md
    // section 11, Several routers).
    bool follow_cluster = false;
    std::uint64_t seed = 1;  // seeds the backoff jitter; give each client its own

    std::uint32_t backoff_base_ms = 250;
    std::uint32_t backoff_max_ms = 15000;
    std::uint32_t stable_after_ms = 10000;  // ready this long: backoff and redirect counts reset
    std::uint32_t max_redirects = 5;
    std::uint32_t handshake_timeout_ms = 10000;  // from open_transport to welcome
    std::uint32_t heartbeat_ms = 15000;          // when the welcome gives 0
    std::uint32_t dead_after_heartbeats = 3;     // fewer than 2 is taken as 2

    std::size_t outbox_limit_bytes = std::size_t{1} << 20;
    std::size_t max_batch_bytes = 0;  // output() message size bound; 0: none (one frame may exceed it)
    decode_limits limits{};

    // The list the engine goes round: urls, or url alone.
    std::span<const std::string> router_urls() const noexcept {
        return urls.empty() ? std::span<const std::string>(&url, 1) : std::span<const std::string>(urls);
    }
};

// What an ack or an error event answers.
enum class operation : std::uint8_t {
    connection,  // the connection itself (handshake, protocol, redirects): id 0
    subscribe,
    unsubscribe,
    publish,
    request,
    stream,
    direct,
    broadcast,
    register_service,
    unregister_service,
    discover,
    token_refresh,
    presence,
    subscribe_client,
    unsubscribe_client,
};
std::string_view operation_name(operation op) noexcept;

// The fields each kind uses; the others are zero / empty.
enum class event_kind : std::uint8_t {
    open_transport,    // action: id = transport id, name = URL
    close_transport,   // action: id = transport id, code = reason (0: owner closed)
    state_changed,     // previous -> state, code = reason (0, or e.g. heartbeat_timeout,
                       // connection_refused), text = the host's detail of a failed
                       // transport; name = the router's URL: the attempt's
                       // (connecting, handshaking, ready; awaiting_token and
                       // failed: the one that refused) or the next attempt's
                       // (backoff); into backoff: count = ms until the next
                       // attempt, seq = URLs the round has left (0: this is the
                       // backoff between rounds)
    welcome,           // name = session id (also our address for direct messages)
    redirected,        // name = target URL, code = the redirect's code
    message,           // subscription, name = channel, payload, flags, epoch, seq
    gap,               // subscription, name = channel, epoch, seq = first missed, count = missed
    epoch_changed,     // subscription, name = channel, epoch = new epoch, seq = its first seq
    ack,               // op, id, subscription (subscribe/unsubscribe), epoch + seq (publish)
    error,             // op, id, subscription (subscribe), code, text
    response,          // id, payload, flags
    stream_item,       // id, payload, flags
    stream_end,        // id
    incoming_request,  // backend: id, name = service, method, payload, flags
    incoming_stream,   // backend: id, name = service, method, payload, flags, count = credit
    stream_credit,     // backend: id, count = credit now available
    cancelled,         // backend: id, code (cancelled, deadline_exceeded, connection_lost)
    direct,            // name = sender address, payload, flags
    broadcast,         // name = sender address, payload, flags
    service_list,      // id, services
    token_refreshed,   // id
    routers,           // follow_cluster: the cluster's other routers, payload = a routers body
    presence,          // id, payload = a presence_list body, checked (decode_body succeeds)
    join,              // subscription (asked with join_leave), name = channel, payload = a presence_member body, checked
    leave,             // subscription (asked with join_leave), name = channel, payload = a presence_member body, checked
    subscribed,        // the router subscribed us (token channels, a backend): subscription (a new id),
                       // name = pattern, flags = its policy (frame_flags::policy_mask)
    unsubscribed,      // the router ended a subscription (a backend, a refresh that withdrew it):
                       // subscription, name = pattern, code (0: a backend asked), ends_subscription
};
std::string_view event_name(event_kind k) noexcept;

// Flat and trivially copyable: emitting one allocates nothing.
struct client_event {
    event_kind kind{};
    operation op = operation::connection;
    client_state state = client_state::idle;
    client_state previous = client_state::idle;
    std::uint8_t flags = 0;
    // What the event means for the owner's tables, so that no host keeps a
    // rule of its own: the last event of operation `id` (an ack, response,
    // stream end, service list, token refresh, cancelled incoming call, or
    // an error for an operation; not a history_gone that the engine answers
    // by subscribing again live, whose ack is still to come), and the end of
    // subscription `subscription` (refused, or ended by the router).
    bool ends_operation = false;
    bool ends_subscription = false;
    std::uint16_t code = 0;  // an errc value
    std::uint32_t id = 0;
    std::uint32_t subscription = 0;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t count = 0;
    std::string_view name;
    std::string_view method;
    std::string_view text;
    bytes_view payload;
    const service_list_body* services = nullptr;
};

// A position in a channel: the last message the owner already has.
struct channel_position {
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
};

// How a subscription is asked for (client_engine::subscribe).
struct subscribe_options {
    slow_policy policy = slow_policy::router_default;
    // Exact channels only: deliver what the channel's history holds after
    // this position first, as a resume does.
    std::optional<channel_position> since{};
    // Every subscribe sent without a position (the first, and after each
    // reconnect) asks for the last message of each matching channel first
    // (flag replayed); those already seen are dropped as duplicates, those
    // newer delivered, after a gap event when more were missed.
    bool latest = false;
    // Exact channels only: join and leave events of the channel's other members.
    bool join_leave = false;
};

// The credit window of a client stream whose owner names none (the JS
// package's stream(), the CLI's --credit, the backend client's
// stream_options::credit).
inline constexpr std::uint32_t default_stream_credit = 16;

// Result of a call that starts an operation: its id, or why it was refused.
struct call_result {
    std::uint32_t id = 0;
    std::error_code error;
};

enum class stream_send_status : std::uint8_t {
    ok,
    no_credit,       // the receiver granted no more items: wait for a stream_credit event
    unknown_stream,  // not an open incoming stream (ended, cancelled, never opened)
    invalid,         // flags other than json, or payload over the router's limit
};

// Counters of what the engine dropped on purpose.
struct client_stats {
    std::uint64_t duplicates_dropped = 0;  // messages at or below the channel's last seq
    std::uint64_t unmatched_messages = 0;  // messages no subscription matches (e.g. after unsubscribe)
};

class client_engine {
public:
    explicit client_engine(client_config config);

    client_state state() const noexcept { return state_; }
    const client_config& config() const noexcept { return config_; }
    std::string_view session_id() const noexcept { return session_id_; }
    std::string_view router_id() const noexcept { return router_id_; }
    std::uint32_t heartbeat_ms() const noexcept { return heartbeat_ms_; }
    const client_stats& stats() const noexcept { return stats_; }

    // --- host side --------------------------------------------------------

    // Begins connecting (from idle, closed or failed).
    std::error_code start(time_ms now);
    // Says goodbye, fails every pending operation with errc::closed and
    // forgets subscriptions and registrations.
    std::error_code close(time_ms now);
    // In backoff: the next attempt starts now instead of at the end of the
    // delay (the host learnt that the network is back: a browser's "online"
    // event, an operator's command). In any other state it does nothing and
    // says errc::invalid_argument.
    std::error_code connect_now(time_ms now);

    // Reports about transport `transport` (the open_transport event's id);
    // reports about a transport the engine already gave up are ignored.
    // `reason` and `detail` say why a transport closed or could not be opened,
    // when the host knows (a transport code of errc, 600..699, and its own
    // words, e.g. "HTTP 404 Not Found"); the state_changed event carries them.
    void transport_opened(std::uint32_t transport, time_ms now);
    void transport_closed(std::uint32_t transport, time_ms now, errc reason = {},
                          std::string_view detail = {});

    // One received transport message. Refused with errc::invalid_argument
    // while events are undrained (they may view the previous message). Bytes
    // arriving while no transport is open (late bytes of a transport the
    // engine closed) are ignored.
    std::error_code receive(bytes_view message, time_ms now);

    // The earliest time at which handle_timeout() has work; no_deadline if
    // none. It may be early (a timer whose operation already finished), never late.
    time_ms next_deadline() const noexcept;
    void handle_timeout(time_ms now);

    bool poll_event(client_event& out) noexcept {
        if (event_head_ == events_.size()) return false;
        out = events_[event_head_++];
        if (event_head_ == events_.size()) {
            events_.clear();
            event_head_ = 0;
        }
        return true;
    }

    // The next transport message to send: every queued frame, or as many whole
    // frames as fit in config.max_batch_bytes. Empty when nothing is queued.
    bytes_view output() const noexcept;
    void consume_output() noexcept;
    // output() + consume_output() into `out` (no copy when it is everything).
    bool take_output(std::vector<std::uint8_t>& out);

    // --- pub/sub ------------------------------------------------------------

    // `pattern`: a channel, `*` for one token, a final `>` for the rest.
    // A `since` or `join_leave` with a pattern is invalid_argument.
    call_result subscribe(std::string_view pattern, const subscribe_options& options = {});
    // Returns the id of the unsubscribe operation (its ack carries the subscription).
    call_result unsubscribe(std::uint32_t subscription);
    // id 0 without ack; with ack, an ack event carries the message's epoch and seq.
    // `options`: an idempotency key (a repeat within the router's window is
    // acked with the first publication's position and not delivered again)
    // and a time to live in seconds (none: the channel's namespace's); a key
    // that is not 1..255 printable ASCII bytes, and a ttl of 0, are
    // invalid_argument (an empty key is none).
    call_result publish(std::string_view channel, bytes_view payload, bool ack = false,
                        std::uint8_t flags = 0, const publish_options& options = {});

    // --- requests and streams ----------------------------------------------

    // timeout_ms 0: no deadline.
    call_result request(std::string_view service, std::string_view method, bytes_view payload,
                        std::uint32_t timeout_ms, time_ms now, std::uint8_t flags = 0);
    call_result open_stream(std::string_view service, std::string_view method,
                            bytes_view payload, std::uint32_t credit, std::uint32_t timeout_ms,
                            time_ms now, std::uint8_t flags = 0);
    // The host consumed `items` delivered items of client stream `stream`.
    std::error_code stream_consumed(std::uint32_t stream, std::uint32_t items);
    // Cancels a pending request or client stream; no event follows.
    std::error_code cancel(std::uint32_t id);

    // --- addressing, discovery, token --------------------------------------

    // `to`: a session id (welcome event / session_id()). The ack flag asks the
    // router to confirm delivery, as for publish.
    call_result send_direct(std::string_view to, bytes_view payload, bool ack = false,
                            std::uint8_t flags = 0);
    call_result broadcast(bytes_view payload, bool ack = false, std::uint8_t flags = 0);
    call_result discover();
    // Who is subscribed to `channel` (a channel name): a presence event.
    call_result presence(std::string_view channel);
    // Used by every later hello; sent over the open connection (or right after
    // the next welcome). In awaiting_token it also starts connecting at once.
    call_result refresh_token(std::string_view token, time_ms now);

    // --- backend role -------------------------------------------------------

    call_result register_service(std::string_view service, std::span<const method_info> methods);
    call_result unregister_service(std::string_view service);
    // Answers incoming request `request`.
    std::error_code respond(std::uint32_t request, bytes_view payload, std::uint8_t flags = 0);
    // Fails an incoming request or stream (any code but 0; handler_failed is
    // the usual one).
    std::error_code respond_error(std::uint32_t id, errc code, std::string_view text);
    stream_send_status stream_send(std::uint32_t stream, bytes_view payload,
                                   std::uint8_t flags = 0);
    std::error_code stream_end(std::uint32_t stream);
    // Subscribes the connection at `address` (its session id, on any router
    // of the cluster) to `pattern`, or ends its subscription to it
    // (docs/PROTOCOL.md section 11, Server-side subscriptions): an ack event,
    // or an error (forbidden, no_such_address, already_subscribed,
    // not_subscribed, ...). An invalid pattern or address is invalid_argument.
    call_result subscribe_client(std::string_view address, std::string_view pattern,
                                 slow_policy policy = slow_policy::router_default);
    call_result unsubscribe_client(std::string_view address, std::string_view pattern);

private:
    struct pending_op {
        operation op = operation::connection;
        bool queued = false;  // still in the outbox
        time_ms deadline = no_deadline;
        std::uint32_t subscription = 0;  // unsubscribe: the subscription removed
        // client streams: credit + delivered + consumed == window
        std::uint32_t window = 0;
        std::uint32_t credit = 0;     // items the router may still send
        std::uint32_t delivered = 0;  // delivered to the host, not consumed yet
        std::uint32_t consumed = 0;   // consumed, not granted back yet
        // discover: the pages of the listing received so far (service_list
        // with flag `more`); they go when the operation does.
        std::vector<std::vector<std::uint8_t>> pages;
    };
    struct subscription_state {
        std::uint32_t id = 0;
        std::string pattern;
        slow_policy policy = slow_policy::router_default;
        bool exact = false;       // no wildcard: one channel, resumable with `since`
        bool confirmed = false;   // acked once (later acks are not events)
        bool in_flight = false;   // subscribe sent on this transport, unanswered
        bool resuming = false;    // that subscribe carried `since`
        bool latest = false;      // a subscribe without `since` asks for the latest values
        bool join_leave = false;  // asks for the channel's join and leave events
        bool server = false;      // the router made it (subscribed frame), not subscribe()
        bool retry = false;       // the router could not serve it for now: sent again at resubscribe_at_
        bool resent = false;      // in flight, sent again after such a refusal
    };
    struct registration {
        std::uint32_t id = 0;
        std::string service;
        std::vector<std::pair<std::string, method_kind>> methods;
        std::vector<std::uint8_t> body;  // encoded register_body, sent on every welcome
        bool confirmed = false;
        bool in_flight = false;
    };
    struct channel_state {
        std::uint32_t epoch = 0;
        std::uint64_t seq = 0;
        bool seen = false;
        std::uint64_t generation = 0;  // subscriptions_generation_ when `subscribers` was computed
        std::vector<std::uint32_t> subscribers;
    };
    struct incoming_call {
        bool stream = false;
        std::uint32_t credit = 0;
        time_ms deadline = no_deadline;
    };
    struct outbox_item {
        std::uint32_t id = 0;  // 0: nothing tracks it (publish without ack)
        std::vector<std::uint8_t> bytes;
    };
    struct timer {
        time_ms at = 0;
        std::uint32_t id = 0;
        bool incoming = false;
    };
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept;
    };
    using channel_map =
        std::unordered_map<std::string, channel_state, name_hash, std::equal_to<>>;

    // lifecycle, dispatch, timers, output (client.cpp)
    bool apply(client_input input, time_ms now, errc reason = {}, std::string_view detail = {});
    void release_transport(client_input input, client_state to, errc reason);
    void enter(client_input input, time_ms now);
    void begin_connect(time_ms now);
    void schedule_backoff(time_ms now);
    void forget_failures_if_stable(time_ms now) noexcept;
    std::uint64_t next_random() noexcept;
    void handle_frame(const frame& f, time_ms now);
    void reply_ping(const frame& ping);
    void on_welcome(const frame& f, time_ms now);
    void restore_and_flush(time_ms now);
    void on_redirect(const frame& f, time_ms now);
    void on_routers(const frame& f, time_ms now);
    void on_rejection(const frame& f, time_ms now);
    void violation(errc code, std::string_view text, time_ms now);
    time_ms dead_at() const noexcept;
    static bool timer_later(const timer& a, const timer& b) noexcept;
    bool timer_is_stale(const timer& t) const;
    void add_timer(time_ms at, std::uint32_t id, bool incoming);
    void expire_timers(time_ms now);
    void fail_pending(bool include_queued, errc code);
    void cancel_incoming(errc code);
    std::error_code usable() const noexcept;
    std::error_code check_payload(bytes_view payload, std::uint8_t flags) const noexcept;
    bool id_in_use(std::uint32_t id) const;
    std::uint32_t next_id();
    call_result submit(const frame& f, operation op, time_ms deadline);
    void drop_outbox_item(std::uint32_t id);
    void write(const frame& f);
    // Valid until the next emit (the events grow).
    client_event& emit(event_kind kind) {
        client_event& e = events_.emplace_back();
        e.kind = kind;
        e.ends_operation = kind == event_kind::ack || kind == event_kind::response ||
                           kind == event_kind::stream_end || kind == event_kind::service_list ||
                           kind == event_kind::token_refreshed || kind == event_kind::cancelled ||
                           kind == event_kind::presence;
        return e;
    }
    client_event& emit_error(operation op, std::uint32_t id, std::uint16_t code, std::string_view text,
                             std::uint32_t subscription = 0);
    std::size_t batch_end() const noexcept;

    // pub/sub (client_pubsub.cpp)
    subscription_state* find_subscription(std::uint32_t id) noexcept;
    const channel_state* resume_position(const subscription_state& sub) const;
    void send_subscribe(subscription_state& sub, bool resume);
    // The subscriptions marked `retry` go again after the next pause.
    void schedule_resubscribe(time_ms now);
    void forget_subscription(std::uint32_t id);
    channel_state* channel_for(std::string_view channel, time_ms now);
    void on_message(const frame& f, time_ms now);
    void on_gap(const frame& f, time_ms now);
    void on_join_leave(const frame& f, time_ms now);
    void on_subscribed(const frame& f, time_ms now);
    void on_unsubscribed(const frame& f, time_ms now);

    // calls and services (client_calls.cpp)
    call_result open_call(frame_kind kind, std::string_view service, std::string_view method,
                          bytes_view payload, std::uint32_t credit, std::uint32_t timeout_ms,
                          time_ms now, std::uint8_t flags);
    call_result send_addressed(frame_kind kind, std::string_view to, bytes_view payload, bool ack,
                               std::uint8_t flags);
    call_result client_subscription(frame_kind kind, std::string_view address, std::string_view pattern,
                                    slow_policy policy);
    registration* find_registration(std::uint32_t id) noexcept;
    void on_ack(const frame& f, time_ms now);
    void on_error(const frame& f, time_ms now);
    void on_reply(const frame& f, time_ms now);
    void on_incoming(const frame& f, time_ms now);
    void on_stream_credit(const frame& f, time_ms now);
    void on_cancel(const frame& f);

    client_config config_;
    client_state state_ = client_state::idle;
    std::uint64_t rng_;

    // connection
    std::string url_;  // target of the current or next attempt
    std::size_t url_index_ = 0;  // position in config.router_urls(): the current or next attempt's
    std::size_t round_failures_ = 0;  // failures in this round (a round: one per URL of the list)
    std::uint32_t transport_id_ = 0;
    std::string transport_detail_;  // the host's words about the last failed transport
    std::uint32_t token_changes_ = 0;  // refresh_token() calls so far
    std::uint32_t hello_token_ = 0;    // token_changes_ when the last hello was written
    std::uint32_t attempts_ = 0;   // rounds failed since the last stable connection
    std::uint32_t redirects_ = 0;  // redirects since the last stable connection
    time_ms attempt_deadline_ = no_deadline;  // connecting/handshaking timeout
    time_ms retry_at_ = no_deadline;          // backoff end
    time_ms ready_since_ = 0;
    bool stable_ = false;  // this connection stayed ready for stable_after_ms
    time_ms last_received_ = 0;
    time_ms ping_at_ = no_deadline;
    bool sent_since_ping_check_ = false;
    time_ms resubscribe_at_ = no_deadline;   // subscriptions with `retry` go again
    // Rounds in a row, on this connection, in which the router refused a
    // subscription for now; back to 0 once a round's resent ones are all
    // served (not by the ack of another subscription).
    std::uint32_t resubscribe_failures_ = 0;
    std::uint32_t ping_nonce_ = 0;

    // session (from the welcome)
    std::string session_id_;
    std::string router_id_;
    std::uint32_t heartbeat_ms_ = 0;
    std::uint32_t max_payload_ = 0;
    std::uint32_t max_subscriptions_ = 0;

    // operations
    std::uint32_t last_id_ = 0;
    std::unordered_map<std::uint32_t, pending_op> pending_;
    std::vector<outbox_item> outbox_;  // appended, sent whole after the welcome, then cleared
    std::size_t outbox_bytes_ = 0;
    std::vector<timer> timers_;  // min-heap on `at`; stale entries are skipped
    std::unordered_map<std::uint32_t, incoming_call> incoming_;
    std::vector<subscription_state> subscriptions_;
    std::uint64_t subscriptions_generation_ = 1;
    std::vector<registration> registrations_;
    channel_map channels_;
    channel_map::value_type* last_channel_ = nullptr;  // the previous message's channel
    service_list_body services_;  // views into listing_
    // The pages of the last complete listing (pending_op::pages collects them).
    std::vector<std::vector<std::uint8_t>> listing_;

    // io
    std::vector<std::uint8_t> out_;
    std::size_t out_head_ = 0;
    std::vector<client_event> events_;
    std::size_t event_head_ = 0;
    std::vector<std::uint8_t> scratch_;  // control bodies being encoded
    std::string name_scratch_;           // "service/method" being built
    std::vector<std::uint8_t> publish_scratch_;  // publish options + message
    client_stats stats_;
};

}  // namespace hyperstreams
