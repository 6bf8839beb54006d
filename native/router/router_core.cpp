#include "router_core.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>

#include "hyperstreams/names.hpp"
#include "hyperstreams/utf8.hpp"
#include "log.hpp"

namespace hyperstreams::router {
namespace {

constexpr std::uint32_t backend_id_bit = 0x80000000u;

std::uint16_t code_of(errc e) noexcept { return static_cast<std::uint16_t>(e); }

bytes_view text_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string_view role_name(client_role r) noexcept {
    return r == client_role::backend ? "backend" : "frontend";
}

double seconds_between(time_point from, time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

// Frames only the router sends.
bool router_only(frame_kind k) noexcept {
    switch (k) {
        case frame_kind::welcome:
        case frame_kind::redirect:
        case frame_kind::ack:
        case frame_kind::message:
        case frame_kind::gap:
        case frame_kind::service_list:
            return true;
        default:
            return false;
    }
}

}  // namespace

connection_id next_connection_id() noexcept {
    static std::atomic<connection_id> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

outbox_limits outbox_limits_of(const router_config& cfg) noexcept {
    outbox_limits l;
    l.max_bytes = cfg.outbox_max_bytes;
    l.hard_max_bytes = cfg.outbox_max_bytes * 2;
    l.batch_bytes = cfg.outbox_batch_bytes;
    return l;
}

router_core::router_core(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch,
                         std::string router_id)
    : cfg_(cfg),
      auth_(auth),
      metrics_(m),
      router_id_(std::move(router_id)),
      rng_(std::random_device{}()),
      channels_(epoch, history_limits{cfg.history_max_messages, cfg.history_max_bytes,
                                      cfg.history_max_total_bytes, cfg.max_channels}),
      services_(cfg.balance, service_registry::limits{cfg.max_services, cfg.max_methods_per_service,
                                                      std::chrono::milliseconds(cfg.service_grace_ms)}) {}

router_core::~router_core() = default;

principal router_core::who(const connection& c) const {
    return principal{c.id, c.transport, c.role, c.name, c.address, c.curve_key()};
}

slow_policy router_core::resolve(slow_policy p) const noexcept {
    return p == slow_policy::router_default ? cfg_.outbox_policy : p;
}

connection* router_core::find(connection_id id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------- lifecycle

void router_core::open(connection_init init, time_point now) {
    connection& ref = connections_.try_emplace(init.id).first->second;
    ref.id = init.id;
    ref.transport = init.transport;
    ref.remote = std::move(init.remote);
    if (!init.curve_key.empty()) ref.extras_for_writing().curve_key = std::move(init.curve_key);
    ref.session = std::move(init.session);
    ref.out = std::move(init.out);
    ref.opened = ref.last_received = ref.last_queued = now;
    ref.next_backend_id = 0;
    metrics_.of(ref.transport).connections_opened.fetch_add(1, std::memory_order_relaxed);
    metrics_.of(ref.transport).connections.fetch_add(1, std::memory_order_relaxed);
    HS_LOG(debug, "conn.open").kv("conn", ref.id).kv("transport", transport_name(ref.transport)).kv("remote", ref.remote);

    if (draining_) {
        close(ref, errc::going_away, "router is draining", false);
    } else if (connections_.size() > cfg_.max_connections) {
        close(ref, errc::too_many_connections, "too many connections", false);
    }
    reap(now);
}

void router_core::receive(connection_id id, bytes_view batch, time_point now) {
    connection* c = find(id);
    if (c == nullptr || c->state == connection_state::closing) return;
    c->last_received = now;

    decode_limits limits;
    limits.max_payload = cfg_.max_payload;
    batch_reader reader(batch, limits);
    frame f;
    std::uint64_t frames = 0;
    while (c->state != connection_state::closing && reader.next(f)) {
        ++frames;
        dispatch(*c, f, now);
    }
    flush_run();
    metrics_.of(c->transport).frames_in.fetch_add(frames, std::memory_order_relaxed);
    c->frames_in += frames;
    if (reader.error() && c->state != connection_state::closing) {
        const auto code = static_cast<errc>(reader.error().value());
        HS_LOG(warn, "conn.bad_input").kv("conn", c->id).kv("code", errc_name(code_of(code)))
            .kv("frames_before", frames);
        send_error(*c, 0, code, "cannot decode the message");
        close(*c, code, "cannot decode the message", false);
    }
    reap(now);
}

void router_core::closed(connection_id id, time_point now) {
    connection* c = find(id);
    if (c == nullptr) return;
    if (c->state != connection_state::closing) {
        HS_LOG(info, "conn.closed").kv("conn", c->id).kv("by", "peer");
        metrics_.connection_closed(0);
        c->state = connection_state::closing;
        c->out->close(nullptr, true);
        doomed_.push_back(c->id);
    }
    reap(now);
}

void router_core::reject(connection_id id, errc code, std::string_view text, time_point now) {
    if (connection* c = find(id); c && c->state != connection_state::closing) {
        HS_LOG(warn, "conn.bad_input").kv("conn", c->id).kv("code", errc_name(code_of(code))).kv("text", text);
        send_error(*c, 0, code, text);
        close(*c, code, text, false);
    }
    reap(now);
}

void router_core::close(connection& c, errc code, std::string_view reason, bool discard_data) {
    shared_bytes farewell;
    if (code_of(code) != 0) {
        frame g;
        g.kind = frame_kind::goodbye;
        g.code = code_of(code);
        g.payload = text_bytes(reason);
        farewell = encode_shared(g);
    }
    close_with(c, std::move(farewell), code, reason, discard_data);
}

void router_core::close_with(connection& c, shared_bytes farewell, errc code, std::string_view reason,
                             bool discard_data) {
    if (c.state == connection_state::closing) return;
    flush_run();  // what was routed to it before goes before the farewell
    c.state = connection_state::closing;
    metrics_.connection_closed(code_of(code));
    if (code == errc::going_away || code_of(code) == 0) {
        HS_LOG(info, "conn.close").kv("conn", c.id)
            .kv("code", code_of(code) == 0 ? std::string_view("closed") : errc_name(code_of(code)));
    } else {
        HS_LOG(warn, "conn.close").kv("conn", c.id).kv("code", errc_name(code_of(code)))
            .kv("reason", reason);
    }
    if (c.out->close(std::move(farewell), discard_data)) wake(c);
    doomed_.push_back(c.id);
}

void router_core::reap(time_point now) {
    while (!doomed_.empty()) {
        const connection_id id = doomed_.back();
        doomed_.pop_back();
        if (connection* c = find(id)) remove(*c, now);
    }
    metrics_.subscriptions.store(static_cast<std::int64_t>(topics_.subscription_count()),
                                 std::memory_order_relaxed);
    metrics_.pending_calls.store(static_cast<std::int64_t>(calls_.size()), std::memory_order_relaxed);
    if (draining_) check_drain(now);
}

void router_core::remove(connection& c, time_point now) {
    for (const auto& [pattern, sub] : c.subscriptions) topics_.unsubscribe(c.id, pattern);
    c.subscriptions.clear();

    if (c.has_services()) {
        services_.remove_all(c.id, c.extras->services, now);
        metrics_.services.store(static_cast<std::int64_t>(services_.instance_count()), std::memory_order_relaxed);
    }
    for (const call& k : calls_.take_by_backend(c.id))
        fail_call(k, errc::backend_gone, "the backend serving this call went away", false, now);
    for (const call& k : calls_.take_by_caller(c.id)) {
        if (connection* b = find(k.backend)) {
            frame cancel;
            cancel.kind = frame_kind::cancel;
            cancel.id = k.backend_id;
            send(*b, cancel);
        }
        finish_call(k, now);
    }
    if (!c.address.empty()) {
        addresses_.erase(c.address);
        auth_.forget(who(c));
    }
    metrics_.of(c.transport).connections.fetch_sub(1, std::memory_order_relaxed);
    const connection_id id = c.id;
    connections_.erase(id);  // c is gone from here on
}

// ---------------------------------------------------------------- outgoing

void router_core::wake(connection& c) {
    wakes_.push_back(c.session);  // once per outbox: it asks again only after take()
}

void router_core::take_wakes(wake_list& out) {
    out.insert(out.end(), std::make_move_iterator(wakes_.begin()), std::make_move_iterator(wakes_.end()));
    wakes_.clear();
}

void router_core::deliver(connection& c, const shared_bytes& bytes, frame_class cls, slow_policy policy) {
    if (!bytes || c.state == connection_state::closing) return;
    flush_run();  // every connection gets its frames in the order the core made them
    if (settle(c, c.out->push(bytes, cls, policy))) ++c.frames_queued;
}

void router_core::deliver_run(connection& c, std::span<const shared_bytes> run, slow_policy policy) {
    if (c.state == connection_state::closing) return;
    const push_result r = c.out->push_messages(run, policy);
    if (settle(c, r)) c.frames_queued += r.queued;
}

void router_core::flush_run() {
    if (run_.empty()) return;
    // Moved out first: a subscriber closed as too slow below comes back here.
    std::vector<shared_bytes> run = std::move(run_);
    run_.clear();
    for (const auto& [target, policy] : route_.targets) deliver_run(*target, run, policy);
    metrics_.delivered.fetch_add(route_.targets.size() * run.size(), std::memory_order_relaxed);
    run.clear();
    run_ = std::move(run);  // its capacity serves the next run
}

bool router_core::settle(connection& c, const push_result& r) {
    if (r.dropped > 0) {
        c.dropped += r.dropped;
        metrics_.of(c.transport).dropped.fetch_add(r.dropped, std::memory_order_relaxed);
    }
    if (r.wake) wake(c);
    if (r.status == push_status::overflow) {
        metrics_.of(c.transport).slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
        close(c, errc::slow_consumer, "outgoing queue full", true);
        return false;
    }
    return true;
}

void router_core::send(connection& c, const frame& f) {
    deliver(c, encode_shared(f), frame_class::control, slow_policy::drop_oldest);
}

void router_core::send_error(connection& c, std::uint32_t id, errc code, std::string_view text) {
    frame e;
    e.kind = frame_kind::error;
    e.id = id;
    e.code = code_of(code);
    e.payload = text_bytes(text);
    metrics_.error_sent(e.code);
    HS_LOG(debug, "conn.error_sent").kv("conn", c.id).kv("id", id).kv("code", errc_name(e.code)).kv("text", text);
    send(c, e);
}

void router_core::send_ack(connection& c, std::uint32_t id, std::uint32_t epoch, std::uint64_t seq) {
    frame a;
    a.kind = frame_kind::ack;
    a.id = id;
    a.epoch = epoch;
    a.seq = seq;
    send(c, a);
}

// ---------------------------------------------------------------- dispatch

void router_core::dispatch(connection& c, const frame& f, time_point now) {
    if (c.state == connection_state::awaiting_hello) {
        if (f.kind == frame_kind::hello) {
            on_hello(c, f, now);
        } else {
            send_error(c, 0, errc::unexpected_frame, "the first frame must be hello");
            close(c, errc::unexpected_frame, "the first frame must be hello", false);
        }
        return;
    }
    const bool backend = c.role == client_role::backend;
    switch (f.kind) {
        case frame_kind::ping: {
            frame pong;
            pong.kind = frame_kind::pong;
            pong.id = f.id;
            send(c, pong);
            return;
        }
        case frame_kind::pong:
            return;
        case frame_kind::goodbye:
            HS_LOG(info, "conn.goodbye").kv("conn", c.id).kv("code", errc_name(f.code));
            close(c, static_cast<errc>(0), {}, false);
            return;
        case frame_kind::subscribe: on_subscribe(c, f); return;
        case frame_kind::unsubscribe: on_unsubscribe(c, f); return;
        case frame_kind::publish: on_publish(c, f, now); return;
        case frame_kind::request:
        case frame_kind::stream_open: on_call(c, f, now); return;
        case frame_kind::stream_credit: on_stream_credit(c, f); return;
        case frame_kind::cancel: on_cancel(c, f, now); return;
        case frame_kind::direct: on_direct(c, f); return;
        case frame_kind::broadcast: on_broadcast(c, f); return;
        case frame_kind::discover: on_discover(c, f); return;
        case frame_kind::token_refresh: on_token_refresh(c, f, now); return;
        case frame_kind::response:
        case frame_kind::stream_item:
        case frame_kind::stream_end:
        case frame_kind::error:
            if (backend) {
                on_backend_reply(c, f, now);
            } else if (f.kind != frame_kind::error) {
                send_error(c, f.id, errc::unexpected_frame,
                           std::string("only backends send ") + std::string(kind_name(f.kind)));
            }
            return;
        case frame_kind::register_service:
        case frame_kind::unregister_service:
            if (!backend) {
                send_error(c, f.id, errc::unexpected_frame,
                           std::string("only backends send ") + std::string(kind_name(f.kind)));
                return;
            }
            if (f.kind == frame_kind::register_service)
                on_register(c, f);
            else
                on_unregister(c, f, now);
            return;
        case frame_kind::hello:
            send_error(c, f.id, errc::unexpected_frame, "hello was already accepted");
            return;
        default:
            if (router_only(f.kind))
                send_error(c, f.id, errc::unexpected_frame,
                           std::string("only the router sends ") + std::string(kind_name(f.kind)));
            return;
    }
}

void router_core::on_hello(connection& c, const frame& f, time_point now) {
    hello_body h;
    if (std::error_code ec = decode_body(f.payload, h)) {
        send_error(c, 0, errc::malformed_body, "hello body does not parse");
        close(c, errc::malformed_body, "hello body does not parse", false);
        return;
    }
    // Every refused hello gets an error with id 0, then a goodbye with the same code.
    if (h.min_version > protocol_version || h.max_version < protocol_version) {
        send_error(c, 0, errc::version_mismatch, "this router speaks protocol version 1");
        close(c, errc::version_mismatch, "this router speaks protocol version 1", false);
        return;
    }
    if (draining_) {
        send_error(c, 0, errc::going_away, "router is draining");
        close(c, errc::going_away, "router is draining", false);
        return;
    }
    c.role = h.role;
    c.name = std::string(utf8_prefix(h.name, 128));  // the decoder checked it is UTF-8: cut between characters
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "-%llu-%08x", static_cast<unsigned long long>(c.id),
                  static_cast<unsigned>(rng_() & 0xFFFFFFFFu));
    c.address = router_id_ + suffix;
    if (std::error_code ec = auth_.admit(who(c), h.token)) {
        const errc code = static_cast<errc>(ec.value());
        const std::string reason(auth_.refusal(who(c)));
        metrics_.auth_refused.fetch_add(1, std::memory_order_relaxed);
        HS_LOG(warn, "auth.refused").kv("conn", c.id).kv("remote", c.remote).kv("code", errc_name(code_of(code)))
            .kv("reason", reason);
        send_error(c, 0, code, reason);
        c.address.clear();
        close(c, code, reason, false);
        return;
    }
    addresses_.emplace(c.address, c.id);
    c.state = connection_state::open;
    c.publish_allowance = cfg_.publish_burst != 0 ? cfg_.publish_burst : cfg_.publish_rate;
    c.publish_refilled = now;
    arm_token_deadline(c, now);

    std::vector<std::uint8_t> body;
    welcome_body w;
    w.version = protocol_version;
    w.session_id = c.address;
    w.router_id = router_id_;
    w.heartbeat_ms = cfg_.heartbeat_interval_ms;
    w.max_payload = cfg_.max_payload;
    w.max_subscriptions = cfg_.max_subscriptions;
    w.resumed = false;
    (void)encode_body(w, body);
    frame welcome;
    welcome.kind = frame_kind::welcome;
    welcome.id = f.id;
    welcome.payload = body;
    send(c, welcome);
    HS_LOG(info, "conn.hello").kv("conn", c.id).kv("transport", transport_name(c.transport))
        .kv("role", role_name(c.role)).kv("name", c.name).kv("remote", c.remote);
}

// ---------------------------------------------------------------- pub/sub

void router_core::on_subscribe(connection& c, const frame& f) {
    if (!is_valid_pattern(f.name)) {
        send_error(c, f.id, errc::invalid_name, "not a valid channel pattern");
        return;
    }
    const bool wildcard = !is_valid_channel(f.name);
    if (f.has(frame_flags::since) && wildcard) {
        send_error(c, f.id, errc::protocol_violation, "since needs a channel name, not a pattern");
        return;
    }
    const bool known = c.subscriptions.count(f.name) != 0;
    if (!known && c.subscriptions.size() >= cfg_.max_subscriptions) {
        send_error(c, f.id, errc::too_many_subscriptions, "subscription limit reached");
        return;
    }
    if (std::error_code ec = auth_.can_subscribe(who(c), f.name)) {
        send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to subscribe");
        return;
    }
    const slow_policy policy = resolve(policy_of(f.flags));
    c.subscriptions.insert_or_assign(std::string(f.name), subscription{policy, f.id});
    topics_.subscribe(c.id, f.name, static_cast<std::uint8_t>(policy));

    const channel_state* state = wildcard ? nullptr : channels_.find(f.name);
    send_ack(c, f.id, wildcard ? channels_.epoch() : channels_.epoch_of(f.name), state ? state->last_seq : 0);

    if (!f.has(frame_flags::since)) return;
    resume_plan plan = channels_.plan_resume(f.name, f.epoch, f.seq);
    if (plan.gap) {
        frame g;
        g.kind = frame_kind::gap;
        g.name = f.name;
        g.epoch = plan.gap_epoch;
        g.seq = plan.gap_seq;
        g.count = plan.gap_count;
        send(c, g);
        metrics_.of(c.transport).gaps.fetch_add(1, std::memory_order_relaxed);
    }
    for (const shared_bytes& original : plan.replay) {
        auto copy = frame_bytes::copy(*original);
        (*copy)[2] |= frame_flags::replayed;
        deliver(c, copy, frame_class::message, policy);
        if (c.state == connection_state::closing) return;
    }
}

void router_core::on_unsubscribe(connection& c, const frame& f) {
    auto it = c.subscriptions.find(f.name);
    if (it == c.subscriptions.end()) {
        send_error(c, f.id, errc::not_subscribed, "no such subscription");
        return;
    }
    c.subscriptions.erase(it);
    topics_.unsubscribe(c.id, f.name);
    send_ack(c, f.id);
}

bool router_core::take_publish_allowance(connection& c, time_point now) {
    if (cfg_.publish_rate == 0) return true;
    const double burst = cfg_.publish_burst != 0 ? cfg_.publish_burst : cfg_.publish_rate;
    c.publish_allowance = std::min(burst, c.publish_allowance + seconds_between(c.publish_refilled, now) *
                                                                    static_cast<double>(cfg_.publish_rate));
    c.publish_refilled = now;
    if (c.publish_allowance < 1.0) return false;
    c.publish_allowance -= 1.0;
    return true;
}

bool router_core::route_kept(std::string_view channel) const noexcept {
    return route_.state != nullptr && route_.topics_version == topics_.version() &&
           route_.channels_version == channels_.version() && route_.channel == channel;
}

// `channel` must be valid; `kept` is route_kept(channel).
const router_core::publish_route& router_core::route_to(std::string_view channel, bool kept) {
    if (kept) {
        channels_.touch(*route_.state);
        return route_;
    }
    flush_run();  // along the route it was made for
    route_.state = &channels_.get(channel);  // may forget another channel: versions are read after
    route_.channel.assign(channel);
    topics_.collect(channel, match_scratch_);
    route_.targets.clear();
    for (const topic_tree::match& t : match_scratch_)
        if (connection* s = find(t.subscriber)) route_.targets.emplace_back(s, static_cast<slow_policy>(t.tag));
    route_.topics_version = topics_.version();
    route_.channels_version = channels_.version();
    return route_;
}

void router_core::on_publish(connection& c, const frame& f, time_point now) {
    const bool ack = f.has(frame_flags::ack_requested);
    const bool kept = route_kept(f.name);  // a kept route's name was checked when it was built
    if (!kept && !is_valid_channel(f.name)) {
        send_error(c, f.id, errc::invalid_name, "not a valid channel name");
        return;
    }
    if (!take_publish_allowance(c, now)) {
        send_error(c, f.id, errc::rate_limited, "publish rate limit reached");
        return;
    }
    if (std::error_code ec = auth_.can_publish(who(c), f.name)) {
        send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to publish");
        return;
    }
    const publish_route& route = route_to(f.name, kept);
    channel_state& ch = *route.state;
    metrics_.channels.store(static_cast<std::int64_t>(channels_.size()), std::memory_order_relaxed);
    frame m;
    m.kind = frame_kind::message;
    m.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    m.name = f.name;
    m.payload = f.payload;
    m.epoch = ch.epoch;
    m.seq = channels_.next_seq(ch);
    shared_bytes encoded = encode_shared(m);
    channels_.remember(ch, m.seq, encoded);
    metrics_.history_bytes.store(static_cast<std::int64_t>(channels_.history_bytes()), std::memory_order_relaxed);
    metrics_.channels_forgotten.store(static_cast<std::int64_t>(channels_.forgotten()), std::memory_order_relaxed);
    metrics_.published.fetch_add(1, std::memory_order_relaxed);

    if (ack) send_ack(c, f.id, m.epoch, m.seq);

    // To the subscribers with the next publishes along the same route (one
    // push per subscriber for the run, at flush_run()). Delivering may
    // close a connection (a slow consumer), which only marks it: it leaves
    // the topic tree, and the route is built again, at reap().
    if (encoded) run_.push_back(std::move(encoded));
}

// ---------------------------------------------------------------- calls

void router_core::on_call(connection& c, const frame& f, time_point now) {
    const bool stream = f.kind == frame_kind::stream_open;
    service_method sm;
    if (!split_service_method(f.name, sm)) {
        send_error(c, f.id, errc::invalid_name, "the name must be service/method");
        return;
    }
    if (draining_) {
        send_error(c, f.id, errc::going_away, "router is draining");
        return;
    }
    if (std::error_code ec = auth_.can_call(who(c), sm.service, sm.method)) {
        send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to call this service");
        return;
    }
    if (calls_.by_caller(c.id, f.id) != nullptr) {
        send_error(c, f.id, errc::duplicate_id, "a call with this id is in flight");
        return;
    }
    if (calls_.count_for_caller(c.id) >= cfg_.max_pending_requests) {
        send_error(c, f.id, errc::too_many_pending_requests, "too many calls in flight");
        return;
    }
    connection_id backend_id = 0;
    if (std::error_code ec = services_.choose(sm.service, sm.method,
                                              stream ? method_kind::stream : method_kind::unary, backend_id)) {
        const auto code = static_cast<errc>(ec.value());
        std::string text = code == errc::no_instance_available
                               ? "no instance of " + std::string(sm.service) + " is available"
                               : "no " + std::string(stream ? "stream" : "unary") + " method " +
                                     std::string(f.name);
        send_error(c, f.id, code, text);
        return;
    }
    connection* b = find(backend_id);
    if (b == nullptr || b->state == connection_state::closing) {
        send_error(c, f.id, errc::no_instance_available, "no instance is available");
        return;
    }

    call k;
    k.caller = c.id;
    k.caller_id = f.id;
    k.backend = b->id;
    do {
        k.backend_id = backend_id_bit | (++b->next_backend_id & ~backend_id_bit);
    } while (calls_.backend_id_in_use(b->id, k.backend_id));
    k.stream = stream;
    k.service = std::string(sm.service);
    k.method = std::string(sm.method);
    k.started = now;
    k.credit = stream ? f.credit : 0;
    std::uint32_t deadline_ms = f.deadline_ms;
    if (deadline_ms == 0 && !stream) deadline_ms = cfg_.default_deadline_ms;
    if (deadline_ms != 0) {
        deadline_ms = std::min(deadline_ms, cfg_.max_deadline_ms);
        k.deadline = now + std::chrono::milliseconds(deadline_ms);
    }

    frame out;
    out.kind = f.kind;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.id = k.backend_id;
    out.name = f.name;
    out.payload = f.payload;
    out.deadline_ms = deadline_ms;
    out.credit = k.credit;
    const std::string service = k.service;
    calls_.add(std::move(k));
    services_.call_started(service, b->id);
    metrics_.calls_started.fetch_add(1, std::memory_order_relaxed);
    send(*b, out);
}

void router_core::finish_call(const call& k, time_point now) {
    services_.call_finished(k.service, k.backend);
    metrics_.observe_call(seconds_between(k.started, now));
}

void router_core::fail_call(const call& k, errc code, std::string_view text, bool tell_backend,
                            time_point now) {
    if (connection* caller = find(k.caller)) send_error(*caller, k.caller_id, code, text);
    if (tell_backend) {
        if (connection* b = find(k.backend)) {
            // The backend learns why: a cancel from the router carries the
            // code (PROTOCOL.md, cancel); the caller's own cancel has none.
            std::uint8_t why[cancel_reason_size];
            write_cancel_reason(code_of(code), why);
            frame cancel;
            cancel.kind = frame_kind::cancel;
            cancel.id = k.backend_id;
            if (code != errc::cancelled) cancel.payload = bytes_view(why, sizeof why);
            send(*b, cancel);
        }
    }
    finish_call(k, now);
}

void router_core::on_backend_reply(connection& c, const frame& f, time_point now) {
    call* k = calls_.by_backend(c.id, f.id);
    if (k == nullptr) {
        // Late (after a deadline or cancel) or unknown: nobody waits for it.
        HS_LOG(debug, "call.late_reply").kv("conn", c.id).kv("id", f.id).kv("kind", kind_name(f.kind));
        return;
    }
    connection* caller = find(k->caller);
    frame out;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.id = k->caller_id;
    out.payload = f.payload;

    switch (f.kind) {
        case frame_kind::response:
        case frame_kind::stream_end:
            if ((f.kind == frame_kind::response) == k->stream) {
                send_error(c, f.id, errc::unexpected_frame,
                           k->stream ? "this call is a stream" : "this call is a request");
                return;
            }
            out.kind = f.kind;
            if (caller) send(*caller, out);
            finish_call(calls_.remove(*k), now);
            return;
        case frame_kind::error:
            out.kind = frame_kind::error;
            out.code = f.code;
            metrics_.error_sent(f.code);
            if (caller) send(*caller, out);
            finish_call(calls_.remove(*k), now);
            return;
        case frame_kind::stream_item:
            if (!k->stream) {
                send_error(c, f.id, errc::unexpected_frame, "this call is a request");
                return;
            }
            if (k->credit == 0) {
                send_error(c, f.id, errc::protocol_violation, "stream item without credit");
                const call gone = calls_.remove(*k);
                fail_call(gone, errc::handler_failed, "the backend exceeded the stream's credit", true, now);
                return;
            }
            --k->credit;
            out.kind = frame_kind::stream_item;
            if (caller) send(*caller, out);
            return;
        default:
            return;
    }
}

void router_core::on_stream_credit(connection& c, const frame& f) {
    call* k = calls_.by_caller(c.id, f.id);
    if (k == nullptr || !k->stream) {
        send_error(c, f.id, errc::no_such_stream, "no such stream");
        return;
    }
    k->credit = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{k->credit} + f.credit, 0xFFFFFFFFu));
    if (connection* b = find(k->backend)) {
        frame out;
        out.kind = frame_kind::stream_credit;
        out.id = k->backend_id;
        out.credit = f.credit;
        send(*b, out);
    }
}

void router_core::on_cancel(connection& c, const frame& f, time_point now) {
    if (c.role == client_role::backend) {
        if (call* k = calls_.by_backend(c.id, f.id)) {
            const call gone = calls_.remove(*k);
            if (connection* caller = find(gone.caller))
                send_error(*caller, gone.caller_id, errc::cancelled, "cancelled by the service");
            finish_call(gone, now);
            return;
        }
    }
    call* k = calls_.by_caller(c.id, f.id);
    if (k == nullptr) return;  // already finished: cancel races with the reply
    const call gone = calls_.remove(*k);
    if (connection* b = find(gone.backend)) {
        frame out;
        out.kind = frame_kind::cancel;
        out.id = gone.backend_id;
        send(*b, out);
    }
    finish_call(gone, now);
}

// ---------------------------------------------------------------- addressing

void router_core::on_direct(connection& c, const frame& f) {
    // Permission first: a client may not learn which addresses exist beyond its rights.
    if (std::error_code ec = auth_.can_send(who(c), f.name)) {
        send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to send to this address");
        return;
    }
    auto it = addresses_.find(f.name);
    connection* target = it == addresses_.end() ? nullptr : find(it->second);
    if (target == nullptr || target->state != connection_state::open) {
        send_error(c, f.id, errc::no_such_address, "no client has this address");
        return;
    }
    frame out;
    out.kind = frame_kind::direct;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.name = c.address;
    out.payload = f.payload;
    deliver(*target, encode_shared(out), frame_class::control, slow_policy::drop_oldest);
    if (f.has(frame_flags::ack_requested)) send_ack(c, f.id);
}

void router_core::on_broadcast(connection& c, const frame& f) {
    if (std::error_code ec = auth_.can_broadcast(who(c))) {
        send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to broadcast");
        return;
    }
    frame out;
    out.kind = frame_kind::broadcast;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.name = c.address;
    out.payload = f.payload;
    const shared_bytes encoded = encode_shared(out);
    std::vector<connection_id> targets;
    targets.reserve(connections_.size());
    for (const auto& [id, other] : connections_)
        if (id != c.id && other.state == connection_state::open) targets.push_back(id);
    for (connection_id id : targets)
        if (connection* t = find(id)) deliver(*t, encoded, frame_class::control, slow_policy::drop_oldest);
    if (f.has(frame_flags::ack_requested)) send_ack(c, f.id);
}

// ---------------------------------------------------------------- services

void router_core::on_discover(connection& c, const frame& f) {
    // A listing comes in pages that fit the payload limit: a discover names
    // the last service of the page before (empty: from the first), and a
    // page with more after it has the flag `more`.
    if (!f.name.empty() && !is_valid_channel(f.name)) {
        send_error(c, f.id, errc::invalid_name, "a discover names the last service of the page before");
        return;
    }
    service_registry::page page;
    if (services_.list(f.name, cfg_.max_payload, page)) {
        send_error(c, f.id, errc::frame_too_large, "one service's listing does not fit in a frame");
        return;
    }
    service_list_body list;
    list.services = std::move(page.services);
    std::vector<std::uint8_t> body;
    if (encode_body(list, body)) {
        send_error(c, f.id, errc::frame_too_large, "the service list is too large");
        return;
    }
    frame out;
    out.kind = frame_kind::service_list;
    out.id = f.id;
    if (page.more) out.flags = frame_flags::more;
    out.payload = body;
    send(c, out);
}

void router_core::on_register(connection& c, const frame& f) {
    register_body body;
    if (!is_valid_channel(f.name)) {
        send_error(c, f.id, errc::invalid_name, "not a valid service name");
        return;
    }
    if (decode_body(f.payload, body)) {
        send_error(c, f.id, errc::malformed_body, "register body does not parse");
        return;
    }
    std::vector<service_registry::method> methods;
    for (const method_info& m : body.methods) {
        service_method sm;
        const std::string full = std::string(f.name) + "/" + std::string(m.name);
        if (!split_service_method(full, sm)) {
            send_error(c, f.id, errc::invalid_name, "not a valid method name: " + std::string(m.name));
            return;
        }
        methods.push_back(service_registry::method{std::string(m.name), m.kind});
    }
    if (std::error_code ec = auth_.can_register(who(c), f.name)) {
        send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to register this service");
        return;
    }
    if (c.extras && c.extras->services.size() >= cfg_.max_services_per_backend &&
        !c.extras->services.contains(f.name)) {
        send_error(c, f.id, errc::too_many_services,
                   "this connection serves limits.max_services_per_backend services already");
        return;
    }
    if (services_.add(f.name, c.id, std::move(methods))) {
        send_error(c, f.id, errc::too_many_services,
                   "the router knows limits.max_services services, or this service would have more "
                   "than limits.max_methods_per_service methods");
        return;
    }
    c.extras_for_writing().services.emplace(f.name);
    metrics_.services.store(static_cast<std::int64_t>(services_.instance_count()), std::memory_order_relaxed);
    HS_LOG(info, "service.register").kv("conn", c.id).kv("service", f.name).kv("methods", body.methods.size());
    send_ack(c, f.id);
}

void router_core::on_unregister(connection& c, const frame& f, time_point now) {
    if (!services_.remove(f.name, c.id, now)) {
        send_error(c, f.id, errc::no_such_service, "this connection does not serve it");
        return;
    }
    if (c.extras) {
        if (auto it = c.extras->services.find(f.name); it != c.extras->services.end()) c.extras->services.erase(it);
    }
    metrics_.services.store(static_cast<std::int64_t>(services_.instance_count()), std::memory_order_relaxed);
    HS_LOG(info, "service.unregister").kv("conn", c.id).kv("service", f.name);
    send_ack(c, f.id);
}

void router_core::on_token_refresh(connection& c, const frame& f, time_point now) {
    const std::string_view token(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    if (std::error_code ec = auth_.refresh(who(c), token)) {
        metrics_.auth_refused.fetch_add(1, std::memory_order_relaxed);
        const std::string reason(auth_.refusal(who(c)));
        HS_LOG(warn, "auth.refresh_refused").kv("conn", c.id)
            .kv("code", errc_name(static_cast<std::uint16_t>(ec.value()))).kv("reason", reason);
        send_error(c, f.id, static_cast<errc>(ec.value()), reason);
        return;
    }
    arm_token_deadline(c, now);
    HS_LOG(info, "auth.refreshed").kv("conn", c.id);
    send_ack(c, f.id);
    end_withdrawn(c, now);
}

// A refreshed token may grant less than the one before. What the connection
// holds open and may no longer have ends now, as if it were refused at this
// moment: an error forbidden with the id the client knows it by (NATS ends
// subscriptions on a permission reload likewise).
void router_core::end_withdrawn(connection& c, time_point now) {
    const principal p = who(c);
    std::size_t subscriptions = 0;
    for (auto it = c.subscriptions.begin(); it != c.subscriptions.end();) {
        const bool refused = static_cast<bool>(auth_.can_subscribe(p, it->first));
        if (!refused) {
            ++it;
            continue;
        }
        topics_.unsubscribe(c.id, it->first);
        send_error(c, it->second.id, errc::forbidden, "the refreshed token no longer allows this subscription");
        it = c.subscriptions.erase(it);
        ++subscriptions;
    }
    const std::vector<call> calls = calls_.take_by_caller_if(
        c.id, [&](const call& k) { return static_cast<bool>(auth_.can_call(p, k.service, k.method)); });
    for (const call& k : calls)
        fail_call(k, errc::forbidden, "the refreshed token no longer allows this call", true, now);
    if (subscriptions != 0 || !calls.empty()) {
        HS_LOG(info, "auth.withdrawn").kv("conn", c.id)
            .kv("subscriptions", subscriptions).kv("calls", calls.size());
    }
}

void router_core::arm_token_deadline(connection& c, time_point now) {
    const auto lifetime = auth_.token_lifetime(who(c));
    const std::chrono::milliseconds grace(cfg_.auth_expiry_grace_ms);
    // A deadline beyond what the clock holds is no deadline: now + lifetime
    // would overflow (and land in the past).
    const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(time_point::max() - now);
    c.token_deadline = lifetime && *lifetime < room - grace ? now + *lifetime + grace : time_point::max();
}

// ---------------------------------------------------------------- time

time_point router_core::next_deadline() const {
    time_point t = std::min(calls_.next_deadline(), next_scan_);
    if (draining_ && !drain_done_) t = std::min(t, drain_deadline_);
    return t;
}

void router_core::tick(time_point now) {
    for (const call& k : calls_.take_expired(now))
        fail_call(k, errc::deadline_exceeded, "the deadline passed", true, now);
    if (now >= next_scan_) {
        heartbeat_scan(now);
        services_.forget_idle(now);
    }
    reap(now);
}

void router_core::heartbeat_scan(time_point now) {
    const auto interval = std::chrono::milliseconds(cfg_.heartbeat_interval_ms);
    const auto timeout = std::chrono::milliseconds(cfg_.heartbeat_timeout_ms);
    const auto handshake = std::chrono::milliseconds(cfg_.handshake_timeout_ms);
    std::vector<connection_id> ids;
    ids.reserve(connections_.size());
    for (const auto& [id, c] : connections_) ids.push_back(id);
    for (connection_id id : ids) {
        connection* c = find(id);
        if (c == nullptr) continue;
        if (c->state == connection_state::awaiting_hello) {
            if (now - c->opened >= handshake) close(*c, errc::handshake_timeout, "no hello in time", false);
            continue;
        }
        if (c->state != connection_state::open) continue;
        if (now >= c->token_deadline) {
            metrics_.tokens_expired.fetch_add(1, std::memory_order_relaxed);
            send_error(*c, 0, errc::token_expired, "the token expired and was not refreshed");
            close(*c, errc::token_expired, "the token expired and was not refreshed", false);
            continue;
        }
        if (now - c->last_received >= timeout) {
            close(*c, errc::heartbeat_timeout, "no traffic within the heartbeat timeout", true);
            continue;
        }
        // The peer must hear from us whatever it sends itself (a backend
        // that only publishes receives nothing else): ping a connection
        // nothing was queued to since a scan an interval ago.
        const auto queued = static_cast<std::uint32_t>(c->frames_queued);
        if (queued != c->queued_at_scan) {
            c->queued_at_scan = queued;
            c->last_queued = now;
        } else if (now - c->last_queued >= interval) {
            frame ping;
            ping.kind = frame_kind::ping;
            ping.id = ++c->ping_nonce;
            send(*c, ping);
            c->queued_at_scan = static_cast<std::uint32_t>(c->frames_queued);
            c->last_queued = now;
        }
    }
    // A quarter interval: nothing queued to a connection for longer than
    // 1.25 intervals goes without a ping.
    next_scan_ = now + std::max<std::chrono::milliseconds>(interval / 4, std::chrono::milliseconds(10));
}

void router_core::begin_drain(time_point now) {
    if (draining_) return;
    draining_ = true;
    drain_deadline_ = now + std::chrono::milliseconds(cfg_.drain_timeout_ms);
    HS_LOG(info, "router.drain").kv("calls_in_flight", calls_.size()).kv("timeout_ms", cfg_.drain_timeout_ms);
    reap(now);
}

void router_core::hurry_drain(time_point now) {
    if (!draining_) return;
    drain_deadline_ = now;
    reap(now);
}

void router_core::check_drain(time_point now) {
    if (drain_done_) return;
    if (!calls_.all().empty() && now < drain_deadline_) return;
    drain_done_ = true;
    for (const call& k : calls_.take_all())
        fail_call(k, errc::going_away, "router is draining", true, now);

    std::vector<connection_id> ids;
    for (const auto& [id, c] : connections_) ids.push_back(id);
    for (connection_id id : ids) {
        connection* c = find(id);
        if (c == nullptr || c->state == connection_state::closing) continue;
        // Each transport is sent where it can follow: a backend over ZeroMQ
        // cannot follow a WebSocket URL.
        const std::string& target =
            c->transport == transport_kind::zeromq ? cfg_.drain_redirect_backend : cfg_.drain_redirect_url;
        if (!target.empty() && c->state == connection_state::open) {
            frame r;
            r.kind = frame_kind::redirect;
            r.code = code_of(errc::going_away);
            r.payload = text_bytes(target);
            close_with(*c, encode_shared(r), errc::going_away, "redirected", false);
        } else {
            close(*c, errc::going_away, "router is draining", false);
        }
    }
    // remove() may land here again through reap(); drain_done_ stops it.
    while (!doomed_.empty()) {
        const connection_id id = doomed_.back();
        doomed_.pop_back();
        if (connection* c = find(id)) remove(*c, now);
    }
}

// ---------------------------------------------------------------- status

std::string router_core::status_json(time_point now) const {
    using nlohmann::json;
    json doc;
    doc["router_id"] = router_id_;
    doc["epoch"] = channels_.epoch();
    doc["draining"] = draining_;

    json conns = json::array();
    std::vector<const connection*> sorted;
    for (const auto& [id, c] : connections_) sorted.push_back(&c);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->id < b->id; });
    for (const connection* c : sorted) {
        json j;
        j["id"] = c->id;
        j["transport"] = transport_name(c->transport);
        j["state"] = c->state == connection_state::awaiting_hello ? "awaiting_hello"
                     : c->state == connection_state::open         ? "open"
                                                                  : "closing";
        j["role"] = role_name(c->role);
        j["name"] = c->name;
        // Not the address: whoever knows it can send the connection direct messages.
        j["remote"] = c->remote;
        j["age_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(now - c->opened).count();
        j["subscriptions"] = json::array();
        for (const auto& [pattern, sub] : c->subscriptions)
            j["subscriptions"].push_back({{"pattern", pattern}, {"policy", policy_name(sub.policy)}});
        j["services"] = c->extras ? json(c->extras->services) : json::array();
        j["frames_in"] = c->frames_in;
        j["frames_queued"] = c->frames_queued;
        j["dropped"] = c->dropped;
        j["queued_bytes"] = c->out->queued_bytes();
        conns.push_back(std::move(j));
    }
    doc["connections"] = std::move(conns);

    json chans = json::array();
    for (const auto& [name, ch] : channels_.all()) {
        chans.push_back({{"name", name},
                         {"epoch", ch.epoch},
                         {"seq", ch.last_seq},
                         {"published", ch.published},
                         {"history_messages", ch.history.size()},
                         {"history_bytes", ch.history_bytes}});
    }
    doc["channels"] = std::move(chans);

    json svcs = json::array();
    for (const auto& [name, s] : services_.all()) {
        json instances = json::array();
        for (const auto& inst : s.instances) {
            json methods = json::array();
            for (const auto& m : inst.methods)
                methods.push_back({{"name", m.name}, {"kind", m.kind == method_kind::stream ? "stream" : "unary"}});
            instances.push_back({{"connection", inst.conn},
                                 {"pending", inst.pending},
                                 {"served", inst.served},
                                 {"methods", std::move(methods)}});
        }
        svcs.push_back({{"name", name}, {"instances", std::move(instances)}});
    }
    doc["services"] = std::move(svcs);
    doc["calls_in_flight"] = calls_.size();
    // Whatever reached a view is valid UTF-8 (names are checked when decoded,
    // and cut between characters); `replace` keeps a slip from throwing.
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hyperstreams::router
