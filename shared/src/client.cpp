// client_engine: connection lifecycle, frame dispatch, timers, output and
// the outbox. Pub/sub lives in client_pubsub.cpp, requests, streams and
// services in client_calls.cpp.
#include <algorithm>
#include <cstring>
#include <utility>

#include "client_internal.hpp"

namespace hyperstreams {
namespace {

// What a handshake error or a goodbye with `code` means for the connection.
client_input rejection_input(std::uint16_t code) noexcept {
    switch (static_cast<errc>(code)) {
        case errc::unauthorized:
        case errc::token_expired:
        case errc::forbidden:
            return client_input::token_rejected;
        case errc::version_mismatch:
        case errc::origin_not_allowed:
            return client_input::fatal_rejection;
        case errc::handshake_timeout:
        case errc::heartbeat_timeout:
            return client_input::retryable_rejection;
        default:
            break;
    }
    // The router says our bytes are wrong: the same bytes would be wrong again.
    return is_peer_fault(static_cast<errc>(code)) ? client_input::fatal_rejection
                                                  : client_input::retryable_rejection;
}

time_ms later_by(time_ms now, std::uint64_t ms) noexcept {
    const auto room = static_cast<std::uint64_t>(no_deadline - now);
    return ms >= room ? no_deadline : now + static_cast<time_ms>(ms);
}

}  // namespace

std::string_view operation_name(operation op) noexcept {
    switch (op) {
        case operation::connection: return "connection";
        case operation::subscribe: return "subscribe";
        case operation::unsubscribe: return "unsubscribe";
        case operation::publish: return "publish";
        case operation::request: return "request";
        case operation::stream: return "stream";
        case operation::direct: return "direct";
        case operation::broadcast: return "broadcast";
        case operation::register_service: return "register_service";
        case operation::unregister_service: return "unregister_service";
        case operation::discover: return "discover";
        case operation::token_refresh: return "token_refresh";
        case operation::presence: return "presence";
        case operation::subscribe_client: return "subscribe_client";
        case operation::unsubscribe_client: return "unsubscribe_client";
    }
    return "unknown";
}

std::string_view event_name(event_kind k) noexcept {
    switch (k) {
        case event_kind::open_transport: return "open_transport";
        case event_kind::close_transport: return "close_transport";
        case event_kind::state_changed: return "state_changed";
        case event_kind::welcome: return "welcome";
        case event_kind::redirected: return "redirected";
        case event_kind::message: return "message";
        case event_kind::gap: return "gap";
        case event_kind::epoch_changed: return "epoch_changed";
        case event_kind::ack: return "ack";
        case event_kind::error: return "error";
        case event_kind::response: return "response";
        case event_kind::stream_item: return "stream_item";
        case event_kind::stream_end: return "stream_end";
        case event_kind::incoming_request: return "incoming_request";
        case event_kind::incoming_stream: return "incoming_stream";
        case event_kind::stream_credit: return "stream_credit";
        case event_kind::cancelled: return "cancelled";
        case event_kind::direct: return "direct";
        case event_kind::broadcast: return "broadcast";
        case event_kind::service_list: return "service_list";
        case event_kind::token_refreshed: return "token_refreshed";
        case event_kind::routers: return "routers";
        case event_kind::presence: return "presence";
        case event_kind::join: return "join";
        case event_kind::leave: return "leave";
        case event_kind::subscribed: return "subscribed";
        case event_kind::unsubscribed: return "unsubscribed";
    }
    return "unknown";
}

// Channel names are short and hashed once per message: eight bytes per
// multiply instead of std::hash's byte-oriented Murmur. Not seeded, like
// std::hash in libstdc++ and libc++.
std::size_t client_engine::name_hash::operator()(std::string_view s) const noexcept {
    constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
    std::uint64_t h = s.size() * k;
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; n -= 8, p += 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, p, n);
    h = (h ^ tail) * k;
    h ^= h >> 32;
    return static_cast<std::size_t>(h);
}

client_engine::client_engine(client_config config)
    : config_(std::move(config)), rng_(config_.seed) {
    events_.reserve(64);
}

// --- lifecycle -----------------------------------------------------------

bool client_engine::apply(client_input input, time_ms now, errc reason, std::string_view detail) {
    const std::optional<client_state> to = next_state(state_, input);
    if (!to) return false;
    const client_state from = state_;
    forget_failures_if_stable(now);
    const bool same_transport =
        input == client_input::transport_opened || input == client_input::welcome;
    if (has_transport(from) && !same_transport) release_transport(input, *to, reason);
    state_ = *to;
    const std::size_t changed = events_.size();
    client_event& e = emit(event_kind::state_changed);
    e.previous = from;
    e.state = *to;
    e.code = static_cast<std::uint16_t>(reason);
    e.text = detail;
    enter(input, now);
    // enter() chose the URL, and entering backoff drew the delay; the event
    // tells them (by index: enter() may have emitted more).
    client_event& changed_event = events_[changed];
    if (state_ != client_state::idle && state_ != client_state::closed) changed_event.name = url_;
    if (state_ == client_state::backoff) {
        changed_event.count = static_cast<std::uint64_t>(retry_at_ - now);
        changed_event.seq = round_failures_ == 0 ? 0 : config_.router_urls().size() - round_failures_;
    }
    return true;
}

void client_engine::release_transport(client_input input, client_state to, errc reason) {
    if (input != client_input::transport_closed) {
        client_event& e = emit(event_kind::close_transport);
        e.id = transport_id_;
        e.code = static_cast<std::uint16_t>(reason);
    }
    // Closing by the owner leaves the goodbye (and anything before it) to be sent.
    if (input != client_input::close) {
        out_.clear();
        out_head_ = 0;
    }
    for (subscription_state& s : subscriptions_) s.in_flight = false;
    for (registration& r : registrations_) r.in_flight = false;
    cancel_incoming(to == client_state::closed ? errc::closed : errc::connection_lost);
    if (to != client_state::closed) fail_pending(to == client_state::failed, errc::connection_lost);
}

void client_engine::enter(client_input input, time_ms now) {
    switch (state_) {
        case client_state::connecting:
            if (input != client_input::redirect) url_ = config_.router_urls()[url_index_];
            begin_connect(now);
            break;
        case client_state::handshaking: {
            last_received_ = now;
            hello_body hello;
            hello.role = config_.role;
            hello.name = config_.name;
            hello.token = config_.token;
            hello_token_ = token_changes_;
            hello.resume_session = session_id_;
            scratch_.clear();
            encode_body(hello, scratch_);  // sizes checked by start() and refresh_token()
            frame f;
            f.kind = frame_kind::hello;
            if (config_.follow_cluster) f.flags = frame_flags::follow_cluster;
            if (std::any_of(subscriptions_.begin(), subscriptions_.end(),
                            [](const subscription_state& s) { return s.server; }))
                f.flags |= frame_flags::resubscribes;
            f.payload = scratch_;
            write(f);
            break;
        }
        case client_state::ready:
            ready_since_ = now;
            stable_ = false;
            ping_at_ = heartbeat_ms_ ? later_by(now, heartbeat_ms_) : no_deadline;
            sent_since_ping_check_ = false;
            break;
        case client_state::backoff:
            schedule_backoff(now);
            break;
        case client_state::closed:
            fail_pending(true, errc::closed);
            subscriptions_.clear();
            registrations_.clear();
            ++subscriptions_generation_;
            channels_.clear();
            last_channel_ = nullptr;
            timers_.clear();
            session_id_.clear();
            router_id_.clear();
            break;
        case client_state::idle:
        case client_state::awaiting_token:
        case client_state::failed:
            break;
    }
}

void client_engine::begin_connect(time_ms now) {
    out_.clear();
    out_head_ = 0;
    if (++transport_id_ == 0) transport_id_ = 1;
    attempt_deadline_ = later_by(now, config_.handshake_timeout_ms);
    client_event& e = emit(event_kind::open_transport);
    e.id = transport_id_;
    e.name = url_;
}

// A failure: the next attempt goes to the next URL of the list, after a
// short pause within the round, or after the backoff once the round is over.
void client_engine::schedule_backoff(time_ms now) {
    const std::span<const std::string> urls = config_.router_urls();
    url_index_ = (url_index_ + 1) % urls.size();
    url_ = urls[url_index_];
    const std::uint64_t max = config_.backoff_max_ms;
    std::uint64_t cap = std::min<std::uint64_t>(max, config_.backoff_base_ms);
    if (++round_failures_ >= urls.size()) {
        round_failures_ = 0;
        cap = attempts_ >= 32 ? max : std::min(max, std::uint64_t{config_.backoff_base_ms} << attempts_);
        if (attempts_ < UINT32_MAX) ++attempts_;
    }
    retry_at_ = later_by(now, next_random() % (cap + 1));
}

// Full jitter over a cap that doubles with each refusal in a row, as the
// reconnect's backoff; one pause for every subscription refused meanwhile.
void client_engine::schedule_resubscribe(time_ms now) {
    if (resubscribe_at_ != no_deadline) return;
    const std::uint64_t max = config_.backoff_max_ms;
    const std::uint64_t cap = resubscribe_failures_ >= 32
                                  ? max
                                  : std::min(max, std::uint64_t{config_.backoff_base_ms} << resubscribe_failures_);
    if (resubscribe_failures_ < UINT32_MAX) ++resubscribe_failures_;
    resubscribe_at_ = later_by(now, cap / 2 + next_random() % (cap / 2 + 1));
}

// Called before anything counts a failure or a redirect; once per connection.
void client_engine::forget_failures_if_stable(time_ms now) noexcept {
    if (state_ == client_state::ready && !stable_ &&
        now - ready_since_ >= time_ms{config_.stable_after_ms}) {
        stable_ = true;
        attempts_ = 0;
        round_failures_ = 0;
        redirects_ = 0;
    }
}

// splitmix64: small, fast, and good enough to spread reconnects.
std::uint64_t client_engine::next_random() noexcept {
    std::uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::error_code client_engine::start(time_ms now) {
    if (!next_state(state_, client_input::start)) return errc::invalid_argument;
    const std::span<const std::string> urls = config_.router_urls();
    const bool one_list = config_.url.empty() || config_.urls.empty();
    if (!one_list || std::any_of(urls.begin(), urls.end(), [](const std::string& u) { return u.empty(); }) ||
        config_.name.size() > 0xFFFF || config_.token.size() > 0xFFFF)
        return errc::invalid_argument;
    url_index_ = 0;
    round_failures_ = 0;
    attempts_ = 0;
    redirects_ = 0;
    apply(client_input::start, now);
    return {};
}

std::error_code client_engine::connect_now(time_ms now) {
    if (state_ != client_state::backoff) return errc::invalid_argument;
    retry_at_ = now;
    handle_timeout(now);
    return {};
}

std::error_code client_engine::close(time_ms now) {
    if (state_ == client_state::closed) return errc::closed;
    if (state_ == client_state::handshaking || state_ == client_state::ready) {
        frame f;
        f.kind = frame_kind::goodbye;
        write(f);
    }
    apply(client_input::close, now);
    return {};
}

void client_engine::transport_opened(std::uint32_t transport, time_ms now) {
    if (transport == transport_id_) apply(client_input::transport_opened, now);
}

void client_engine::transport_closed(std::uint32_t transport, time_ms now, errc reason,
                                     std::string_view detail) {
    if (transport != transport_id_ || !has_transport(state_)) return;
    transport_detail_.assign(detail);
    apply(client_input::transport_closed, now, reason, transport_detail_);
}

// --- receiving -------------------------------------------------------------

std::error_code client_engine::receive(bytes_view message, time_ms now) {
    if (!events_.empty()) return errc::invalid_argument;
    if (state_ != client_state::handshaking && state_ != client_state::ready) return {};
    last_received_ = now;
    const std::uint32_t transport = transport_id_;
    batch_reader reader(message, config_.limits);
    frame f;
    while (reader.next(f)) {
        handle_frame(f, now);
        // A redirect, goodbye or violation ends the transport: ignore the rest.
        if (transport_id_ != transport ||
            (state_ != client_state::handshaking && state_ != client_state::ready))
            return {};
    }
    if (reader.error())
        violation(static_cast<errc>(reader.error().value()), "undecodable transport message", now);
    return {};
}

void client_engine::handle_frame(const frame& f, time_ms now) {
    if (state_ == client_state::handshaking) {
        switch (f.kind) {
            case frame_kind::welcome: on_welcome(f, now); return;
            case frame_kind::error:
                if (f.id != 0) break;
                on_rejection(f, now);
                return;
            case frame_kind::goodbye: on_rejection(f, now); return;
            case frame_kind::redirect: on_redirect(f, now); return;
            case frame_kind::ping: reply_ping(f); return;
            case frame_kind::pong: return;
            default: break;
        }
        violation(errc::unexpected_frame, kind_name(f.kind), now);
        return;
    }
    switch (f.kind) {
        case frame_kind::message: on_message(f, now); return;
        case frame_kind::gap: on_gap(f, now); return;
        case frame_kind::ack: on_ack(f, now); return;
        case frame_kind::error: on_error(f, now); return;
        case frame_kind::response:
        case frame_kind::stream_item:
        case frame_kind::stream_end:
        case frame_kind::service_list:
        case frame_kind::presence_list: on_reply(f, now); return;
        case frame_kind::join:
        case frame_kind::leave: on_join_leave(f, now); return;
        case frame_kind::subscribed: on_subscribed(f, now); return;
        case frame_kind::unsubscribed: on_unsubscribed(f, now); return;
        case frame_kind::request:
        case frame_kind::stream_open: on_incoming(f, now); return;
        case frame_kind::stream_credit: on_stream_credit(f, now); return;
        case frame_kind::cancel: on_cancel(f); return;
        case frame_kind::direct:
        case frame_kind::broadcast: {
            client_event& e =
                emit(f.kind == frame_kind::direct ? event_kind::direct : event_kind::broadcast);
            e.name = f.name;
            e.payload = f.payload;
            e.flags = f.flags;
            return;
        }
        case frame_kind::ping: reply_ping(f); return;
        case frame_kind::pong: return;
        case frame_kind::goodbye: on_rejection(f, now); return;
        case frame_kind::redirect: on_redirect(f, now); return;
        case frame_kind::routers: on_routers(f, now); return;
        default: break;  // a second welcome, or a kind only clients send
    }
    violation(errc::unexpected_frame, kind_name(f.kind), now);
}

// What to do with the list (join the routers) is the owner's business, and
// so is its body (decode_body): only a backend that follows the cluster
// reads it, and the browser's module carries no decoder for it.
void client_engine::on_routers(const frame& f, time_ms now) {
    if (!config_.follow_cluster) {
        violation(errc::unexpected_frame, "routers, which this client did not ask for", now);
        return;
    }
    emit(event_kind::routers).payload = f.payload;
}

void client_engine::reply_ping(const frame& ping) {
    frame f;
    f.kind = frame_kind::pong;
    f.id = ping.id;
    write(f);
}

void client_engine::on_welcome(const frame& f, time_ms now) {
    welcome_body body;
    if (decode_body(f.payload, body) || body.session_id.empty()) {
        violation(errc::malformed_body, "welcome", now);
        return;
    }
    if (body.version != protocol_version) {
        violation(errc::version_mismatch, "welcome", now);
        return;
    }
    session_id_.assign(body.session_id);
    router_id_.assign(body.router_id);
    heartbeat_ms_ = body.heartbeat_ms ? body.heartbeat_ms : config_.heartbeat_ms;
    max_payload_ = body.max_payload;
    max_subscriptions_ = body.max_subscriptions;
    apply(client_input::welcome, now);
    emit(event_kind::welcome).name = session_id_;
    restore_and_flush(now);
}

// After a welcome: registrations, then subscriptions (those resuming a
// position first, so their replay is not overtaken by live traffic matched
// by a wildcard), then the outbox in call order. One batch.
void client_engine::restore_and_flush(time_ms now) {
    resubscribe_at_ = no_deadline;
    resubscribe_failures_ = 0;
    for (subscription_state& s : subscriptions_) s.retry = s.resent = false;
    for (registration& r : registrations_) {
        frame f;
        f.kind = frame_kind::register_service;
        f.id = r.id;
        f.name = r.service;
        f.payload = r.body;
        write(f);
        r.in_flight = true;
    }
    for (subscription_state& s : subscriptions_)
        if (resume_position(s)) send_subscribe(s, true);
    for (subscription_state& s : subscriptions_)
        if (!s.in_flight) send_subscribe(s, false);

    for (outbox_item& item : outbox_) {
        if (item.id != 0) {
            auto it = pending_.find(item.id);
            if (it == pending_.end()) continue;
            pending_op& op = it->second;
            op.queued = false;
            if (op.deadline != no_deadline) {
                if (now >= op.deadline) {
                    emit_error(op.op, item.id, static_cast<std::uint16_t>(errc::deadline_exceeded),
                               "deadline passed in the outbox");
                    pending_.erase(it);
                    continue;
                }
                // Only requests and stream opens have a deadline: set_deadline cannot fail.
                const time_ms left = op.deadline - now;
                (void)set_deadline(item.bytes, static_cast<std::uint32_t>(std::min<time_ms>(left, UINT32_MAX)));
            }
        }
        out_.insert(out_.end(), item.bytes.begin(), item.bytes.end());
    }
    outbox_.clear();
    outbox_bytes_ = 0;
}

void client_engine::on_redirect(const frame& f, time_ms now) {
    if (f.payload.empty()) {
        violation(errc::malformed_body, "redirect without a target", now);
        return;
    }
    forget_failures_if_stable(now);
    if (++redirects_ > config_.max_redirects) {
        redirects_ = 0;
        emit_error(operation::connection, 0, static_cast<std::uint16_t>(errc::too_many_redirects),
                   as_text(f.payload));
        apply(client_input::redirect_limit, now, errc::too_many_redirects);
        return;
    }
    url_.assign(as_text(f.payload));
    const std::span<const std::string> urls = config_.router_urls();
    if (const auto listed = std::find(urls.begin(), urls.end(), url_); listed != urls.end())
        url_index_ = static_cast<std::size_t>(listed - urls.begin());
    client_event& e = emit(event_kind::redirected);
    e.name = url_;
    e.code = f.code;
    apply(client_input::redirect, now, static_cast<errc>(f.code));
}

// A goodbye, or an error frame answering the hello.
void client_engine::on_rejection(const frame& f, time_ms now) {
    const client_input input = rejection_input(f.code);
    if (f.kind == frame_kind::error || input != client_input::retryable_rejection)
        emit_error(operation::connection, 0, f.code, as_text(f.payload));
    apply(input, now, static_cast<errc>(f.code));
    // The refused token is not the one held now (refreshed while the hello
    // was on its way): the new one goes at once, as after refresh_token().
    if (state_ == client_state::awaiting_token && hello_token_ != token_changes_)
        apply(client_input::token_refreshed, now);
}

void client_engine::violation(errc code, std::string_view text, time_ms now) {
    emit_error(operation::connection, 0, static_cast<std::uint16_t>(code), text);
    apply(client_input::protocol_violation, now, code);
}

// --- time ------------------------------------------------------------------

time_ms client_engine::next_deadline() const noexcept {
    time_ms t = timers_.empty() ? no_deadline : timers_.front().at;
    switch (state_) {
        case client_state::connecting:
        case client_state::handshaking:
            t = std::min(t, attempt_deadline_);
            break;
        case client_state::ready:
            if (heartbeat_ms_ != 0) t = std::min({t, ping_at_, dead_at()});
            t = std::min(t, resubscribe_at_);
            break;
        case client_state::backoff:
            t = std::min(t, retry_at_);
            break;
        default:
            break;
    }
    return t;
}

time_ms client_engine::dead_at() const noexcept {
    // A live router may stay quiet for 1.25 intervals (PROTOCOL.md section 11).
    return later_by(last_received_,
                    std::uint64_t{heartbeat_ms_} * std::max(config_.dead_after_heartbeats, 2u));
}

void client_engine::handle_timeout(time_ms now) {
    // Operations first: a request whose deadline passed reports that, even
    // if the transport times out at the same moment.
    expire_timers(now);
    switch (state_) {
        case client_state::connecting:
        case client_state::handshaking:
            if (now >= attempt_deadline_)
                apply(client_input::timer_expired, now, errc::handshake_timeout);
            break;
        case client_state::ready:
            if (now >= resubscribe_at_) {
                resubscribe_at_ = no_deadline;
                for (subscription_state& s : subscriptions_)
                    if (std::exchange(s.retry, false) && !s.in_flight) {
                        send_subscribe(s, true);
                        s.resent = true;
                    }
            }
            if (heartbeat_ms_ == 0) break;
            if (now >= dead_at()) {
                apply(client_input::timer_expired, now, errc::heartbeat_timeout);
            } else if (now >= ping_at_) {
                if (!sent_since_ping_check_) {
                    frame f;
                    f.kind = frame_kind::ping;
                    f.id = ++ping_nonce_;
                    write(f);
                }
                ping_at_ = later_by(now, heartbeat_ms_);
                sent_since_ping_check_ = false;
            }
            break;
        case client_state::backoff:
            if (now >= retry_at_) apply(client_input::timer_expired, now);
            break;
        default:
            break;
    }
}

void client_engine::add_timer(time_ms at, std::uint32_t id, bool incoming) {
    if (at == no_deadline) return;
    // Finished operations leave their timers behind; sweep them before the
    // heap grows past twice what is live.
    if (timers_.size() > 64 && timers_.size() > 2 * (pending_.size() + incoming_.size())) {
        std::erase_if(timers_, [this](const timer& t) { return timer_is_stale(t); });
        std::make_heap(timers_.begin(), timers_.end(), timer_later);
    }
    timers_.push_back({at, id, incoming});
    std::push_heap(timers_.begin(), timers_.end(), timer_later);
}

bool client_engine::timer_later(const timer& a, const timer& b) noexcept { return a.at > b.at; }

bool client_engine::timer_is_stale(const timer& t) const {
    if (t.incoming) {
        auto it = incoming_.find(t.id);
        return it == incoming_.end() || it->second.deadline != t.at;
    }
    auto it = pending_.find(t.id);
    return it == pending_.end() || it->second.deadline != t.at;
}

void client_engine::expire_timers(time_ms now) {
    while (!timers_.empty() && timers_.front().at <= now) {
        std::pop_heap(timers_.begin(), timers_.end(), timer_later);
        const timer t = timers_.back();
        timers_.pop_back();
        if (timer_is_stale(t)) continue;
        if (t.incoming) {
            incoming_.erase(t.id);
            client_event& e = emit(event_kind::cancelled);
            e.id = t.id;
            e.code = static_cast<std::uint16_t>(errc::deadline_exceeded);
            continue;
        }
        auto it = pending_.find(t.id);
        if (it->second.queued) {
            drop_outbox_item(t.id);
        } else {
            // Tell the router, so the backend can stop working on it.
            frame f;
            f.kind = frame_kind::cancel;
            f.id = t.id;
            write(f);
        }
        emit_error(it->second.op, t.id, static_cast<std::uint16_t>(errc::deadline_exceeded),
                   "deadline exceeded");
        pending_.erase(it);
    }
}

// --- operations ----------------------------------------------------------

void client_engine::fail_pending(bool include_queued, errc code) {
    std::vector<std::uint32_t> ids;
    for (const auto& [id, op] : pending_)
        if (include_queued || !op.queued) ids.push_back(id);
    sort_ids(ids);  // events in a deterministic order
    for (std::uint32_t id : ids) {
        auto it = pending_.find(id);
        emit_error(it->second.op, id, static_cast<std::uint16_t>(code), errc_name(
                   static_cast<std::uint16_t>(code)), it->second.subscription);
        pending_.erase(it);
    }
    if (include_queued) {
        outbox_.clear();
        outbox_bytes_ = 0;
    }
}

void client_engine::cancel_incoming(errc code) {
    std::vector<std::uint32_t> ids;
    for (const auto& entry : incoming_) ids.push_back(entry.first);
    sort_ids(ids);
    for (std::uint32_t id : ids) {
        client_event& e = emit(event_kind::cancelled);
        e.id = id;
        e.code = static_cast<std::uint16_t>(code);
    }
    incoming_.clear();
}

std::error_code client_engine::usable() const noexcept {
    if (state_ == client_state::closed) return errc::closed;
    if (state_ == client_state::failed) return errc::not_connected;
    return {};
}

std::error_code client_engine::check_payload(bytes_view payload, std::uint8_t flags) const noexcept {
    if ((flags & ~frame_flags::json) != 0) return errc::invalid_argument;
    if (max_payload_ != 0 && payload.size() > max_payload_) return errc::frame_too_large;
    return {};
}

bool client_engine::id_in_use(std::uint32_t id) const {
    return pending_.count(id) != 0 ||
           std::any_of(subscriptions_.begin(), subscriptions_.end(),
                       [id](const subscription_state& s) { return s.id == id; }) ||
           std::any_of(registrations_.begin(), registrations_.end(),
                       [id](const registration& r) { return r.id == id; });
}

std::uint32_t client_engine::next_id() {
    do {
        ++last_id_;
    } while (last_id_ == 0 || id_in_use(last_id_));
    return last_id_;
}

call_result client_engine::submit(const frame& f, operation op, time_ms deadline) {
    const bool now_or_later = state_ == client_state::ready;
    if (now_or_later) {
        write(f);
    } else {
        const std::size_t size = encoded_size(f);
        if (outbox_bytes_ + size > config_.outbox_limit_bytes) return {0, errc::outbox_full};
        outbox_item& item = outbox_.emplace_back();
        item.id = f.id;
        item.bytes.resize(size);
        encode_to(f, item.bytes);
        outbox_bytes_ += size;
    }
    if (f.id != 0) {
        pending_op& p = pending_[f.id];
        p.op = op;
        p.queued = !now_or_later;
        p.deadline = deadline;
        add_timer(deadline, f.id, false);
    }
    return {f.id, {}};
}

void client_engine::drop_outbox_item(std::uint32_t id) {
    auto it = std::find_if(outbox_.begin(), outbox_.end(),
                           [id](const outbox_item& i) { return i.id == id; });
    if (it == outbox_.end()) return;
    outbox_bytes_ -= it->bytes.size();
    outbox_.erase(it);
}

// --- output and events -----------------------------------------------------

void client_engine::write(const frame& f) {
    append(out_, f);  // names were checked by the caller
    sent_since_ping_check_ = true;
}

client_event& client_engine::emit_error(operation op, std::uint32_t id, std::uint16_t code,
                                        std::string_view text, std::uint32_t subscription) {
    client_event& e = emit(event_kind::error);
    e.op = op;
    e.id = id;
    e.code = code;
    e.text = text;
    e.subscription = subscription;
    e.ends_operation = op != operation::connection;
    return e;
}

std::size_t client_engine::batch_end() const noexcept {
    const std::size_t limit = config_.max_batch_bytes;
    if (limit == 0 || out_.size() - out_head_ <= limit) return out_.size();
    std::size_t end = out_head_;
    while (end < out_.size()) {
        // out_ holds only whole frames the engine encoded: the size fits and is never 0.
        const auto size = static_cast<std::size_t>(encoded_frame_size(bytes_view(out_).subspan(end)));
        if (end > out_head_ && end + size - out_head_ > limit) break;
        end += size;
    }
    return end;
}

bytes_view client_engine::output() const noexcept {
    return bytes_view(out_).subspan(out_head_, batch_end() - out_head_);
}

void client_engine::consume_output() noexcept {
    out_head_ = batch_end();
    if (out_head_ == out_.size()) {
        out_.clear();
        out_head_ = 0;
    }
}

bool client_engine::take_output(std::vector<std::uint8_t>& out) {
    const std::size_t end = batch_end();
    if (end == out_head_) return false;
    if (out_head_ == 0 && end == out_.size()) {
        out.clear();
        out.swap(out_);
        return true;
    }
    out.assign(out_.begin() + static_cast<std::ptrdiff_t>(out_head_),
               out_.begin() + static_cast<std::ptrdiff_t>(end));
    consume_output();
    return true;
}

}  // namespace hyperstreams
