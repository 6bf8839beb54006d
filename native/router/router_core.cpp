#include "router_core.hpp"

#include <algorithm>

#include "hyperstreams/utf8.hpp"
#include "log.hpp"
#include "memory_log.hpp"

namespace hyperstreams::router {
namespace {

std::uint16_t code_of(errc e) noexcept { return static_cast<std::uint16_t>(e); }

bytes_view text_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string_view role_name(client_role r) noexcept {
    return r == client_role::backend ? "backend" : "frontend";
}

// Frames only the router sends.
bool router_only(frame_kind k) noexcept {
    switch (k) {
        case frame_kind::welcome:
        case frame_kind::redirect:
        case frame_kind::ack:
        case frame_kind::message:
        case frame_kind::gap:
        case frame_kind::presence_list:
        case frame_kind::join:
        case frame_kind::leave:
        case frame_kind::subscribed:
        case frame_kind::unsubscribed:
        case frame_kind::service_list:
            return true;
        default:
            return false;
    }
}

std::string only_backends_send(frame_kind k) { return "only backends send " + std::string(kind_name(k)); }

}  // namespace

router_core::router_core(const router_config& cfg, authorizer& auth, metrics& m, std::unique_ptr<channel_log> own,
                         channel_log* log, std::string router_id, router_bus* bus,
                         presence_cluster* presence)
    : cfg_(cfg),
      auth_(auth),
      metrics_(m),
      router_id_(std::move(router_id)),
      own_log_(std::move(own)),
      log_(log != nullptr ? *log : *own_log_),
      table_(m),
      pubsub_(cfg_, auth, m, table_, log_, presence),
      calls_(cfg_, auth, m, table_),
      addressing_(auth, table_, pubsub_, router_id_, bus),
      drain_redirect_url_(cfg.drain_redirect_url),
      drain_redirect_backend_(cfg.drain_redirect_backend) {}

router_core::router_core(const router_config& cfg, authorizer& auth, metrics& m, channel_log& log,
                         std::string router_id, router_bus* bus, presence_cluster* presence)
    : router_core(cfg, auth, m, nullptr, &log, std::move(router_id), bus, presence) {}

router_core::router_core(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch,
                         std::string router_id)
    : router_core(cfg, auth, m,
                  std::make_unique<memory_log>(epoch,
                                               history_limits{cfg.history_max_messages, cfg.history_max_bytes,
                                                              cfg.history_max_total_bytes, cfg.max_channels},
                                               cfg.idempotency_max_keys, m),
                  nullptr, std::move(router_id), nullptr, nullptr) {}

router_core::~router_core() = default;

// ---------------------------------------------------------------- lifecycle

void router_core::open(connection_init init, time_point now) {
    connection& c = table_.add(std::move(init), now);
    HS_LOG(debug, "conn.open").kv("conn", c.id).kv("transport", transport_name(c.transport)).kv("remote", c.remote);
    if (draining_) {
        table_.close(c, errc::going_away, "router is draining", queued_data::send);
    } else if (table_.size() > cfg_.max_connections) {
        table_.close(c, errc::too_many_connections, "too many connections", queued_data::send);
    }
    reap(now);
}

void router_core::receive(connection_id id, bytes_view batch, time_point now) {
    connection* c = table_.find(id);
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
    table_.flush_run();
    metrics_.local(c->transport).frames_in.add(frames);
    c->frames_in += frames;
    if (reader.error() && c->state != connection_state::closing) {
        const auto code = static_cast<errc>(reader.error().value());
        HS_LOG(warn, "conn.bad_input").kv("conn", c->id).kv("code", errc_name(code_of(code)))
            .kv("frames_before", frames);
        table_.send_error(*c, 0, code, "cannot decode the message");
        table_.close(*c, code, "cannot decode the message", queued_data::send);
    }
    reap(now);
}

void router_core::closed(connection_id id, time_point now) {
    if (connection* c = table_.find(id)) table_.lost(*c);
    reap(now);
}

void router_core::reject(connection_id id, errc code, std::string_view text, time_point now) {
    if (connection* c = table_.find(id); c && c->state != connection_state::closing) {
        HS_LOG(warn, "conn.bad_input").kv("conn", c->id).kv("code", errc_name(code_of(code))).kv("text", text);
        table_.send_error(*c, 0, code, text);
        table_.close(*c, code, text, queued_data::send);
    }
    reap(now);
}

void router_core::reap(time_point now) {
    connection_id id = 0;
    while (table_.take_doomed(id))
        if (connection* c = table_.find(id)) remove(*c, now);
    metrics_.subscriptions.store(static_cast<std::int64_t>(pubsub_.subscription_count()), std::memory_order_relaxed);
    metrics_.pending_calls.store(static_cast<std::int64_t>(calls_.in_flight()), std::memory_order_relaxed);
    if (draining_) check_drain(now);
}

void router_core::remove(connection& c, time_point now) {
    pubsub_.drop(c);
    calls_.drop(c, now);
    if (!c.address.empty()) {
        addressing_.drop(c);
        auth_.forget(who(c));
    }
    table_.erase(c.id);  // c is gone from here on
}

// ---------------------------------------------------------------- dispatch

void router_core::dispatch(connection& c, const frame& f, time_point now) {
    if (c.state == connection_state::awaiting_hello) {
        if (f.kind == frame_kind::hello) {
            hello(c, f, now);
        } else {
            table_.send_error(c, 0, errc::unexpected_frame, "the first frame must be hello");
            table_.close(c, errc::unexpected_frame, "the first frame must be hello", queued_data::send);
        }
        return;
    }
    const bool backend = c.role == client_role::backend;
    switch (f.kind) {
        case frame_kind::ping: {
            frame pong;
            pong.kind = frame_kind::pong;
            pong.id = f.id;
            table_.send(c, pong);
            return;
        }
        case frame_kind::pong:
            return;
        case frame_kind::goodbye:
            HS_LOG(info, "conn.goodbye").kv("conn", c.id).kv("code", errc_name(f.code));
            table_.close(c, static_cast<errc>(0), {}, queued_data::send);
            return;
        case frame_kind::subscribe: pubsub_.subscribe(c, f, now); return;
        case frame_kind::unsubscribe: pubsub_.unsubscribe(c, f); return;
        case frame_kind::publish: pubsub_.publish(c, f, now); return;
        case frame_kind::presence: pubsub_.presence(c, f); return;
        case frame_kind::request:
        case frame_kind::stream_open: calls_.start(c, f, now); return;
        case frame_kind::stream_credit: calls_.credit(c, f); return;
        case frame_kind::cancel: calls_.cancel(c, f, now); return;
        case frame_kind::direct: addressing_.direct(c, f); return;
        case frame_kind::broadcast: addressing_.broadcast(c, f); return;
        case frame_kind::discover: calls_.discover(c, f); return;
        case frame_kind::token_refresh: token_refresh(c, f, now); return;
        case frame_kind::response:
        case frame_kind::stream_item:
        case frame_kind::stream_end:
        case frame_kind::error:
            if (backend) {
                calls_.reply(c, f, now);
            } else if (f.kind != frame_kind::error) {
                table_.send_error(c, f.id, errc::unexpected_frame, only_backends_send(f.kind));
            }
            return;
        case frame_kind::subscribe_client:
        case frame_kind::unsubscribe_client:
            if (!backend)
                table_.send_error(c, f.id, errc::unexpected_frame, only_backends_send(f.kind));
            else
                addressing_.client_subscription(c, f);
            return;
        case frame_kind::register_service:
        case frame_kind::unregister_service:
            if (!backend) {
                table_.send_error(c, f.id, errc::unexpected_frame, only_backends_send(f.kind));
            } else if (f.kind == frame_kind::register_service) {
                calls_.register_service(c, f);
            } else {
                calls_.unregister_service(c, f, now);
            }
            return;
        case frame_kind::hello:
            table_.send_error(c, f.id, errc::unexpected_frame, "hello was already accepted");
            return;
        default:
            if (router_only(f.kind))
                table_.send_error(c, f.id, errc::unexpected_frame,
                                  std::string("only the router sends ") + std::string(kind_name(f.kind)));
            return;
    }
}

void router_core::refuse(connection& c, errc code, std::string_view reason) {
    table_.send_error(c, 0, code, reason);
    table_.close(c, code, reason, queued_data::send);
}

void router_core::hello(connection& c, const frame& f, time_point now) {
    hello_body h;
    if (decode_body(f.payload, h)) {
        refuse(c, errc::malformed_body, "hello body does not parse");
        return;
    }
    if (h.min_version > protocol_version || h.max_version < protocol_version) {
        refuse(c, errc::version_mismatch, "this router speaks protocol version 1");
        return;
    }
    if (draining_) {
        refuse(c, errc::going_away, "router is draining");
        return;
    }
    c.role = h.role;
    c.name = std::string(utf8_prefix(h.name, 128));  // the decoder checked it is UTF-8: cut between characters
    addressing_.name(c);
    if (const verdict v = auth_.admit(who(c), h.token)) {
        const errc code = static_cast<errc>(v.code.value());
        metrics_.auth_refused.fetch_add(1, std::memory_order_relaxed);
        HS_LOG(warn, "auth.refused").kv("conn", c.id).kv("remote", c.remote).kv("code", errc_name(code_of(code)))
            .kv("reason", v.reason);
        c.address.clear();
        refuse(c, code, v.reason);
        return;
    }
    addressing_.enter(c);
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
    (void)encode_body(w, body);  // within every bound: the names are the router's own
    frame welcome;
    welcome.kind = frame_kind::welcome;
    welcome.id = f.id;
    welcome.payload = body;
    table_.send(c, welcome);
    c.follows_cluster = c.role == client_role::backend && f.has(frame_flags::follow_cluster);
    if (c.follows_cluster && cluster_routers_) send_routers(c);
    // A client that restores its server-side subscriptions itself (with
    // their positions) would get them twice.
    if (!f.has(frame_flags::resubscribes)) {
        for (const std::string& pattern : auth_.channels(who(c))) {
            if (const verdict v = pubsub_.subscribe_for(c, pattern, slow_policy::router_default)) {
                HS_LOG(warn, "auth.channel_not_subscribed").kv("conn", c.id).kv("pattern", pattern)
                    .kv("code", errc_name(static_cast<std::uint16_t>(v.code.value()))).kv("reason", v.reason);
            }
        }
    }
    HS_LOG(info, "conn.hello").kv("conn", c.id).kv("transport", transport_name(c.transport))
        .kv("role", role_name(c.role)).kv("name", c.name).kv("remote", c.remote);
}

void router_core::token_refresh(connection& c, const frame& f, time_point now) {
    const std::string_view token(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    if (const verdict v = auth_.refresh(who(c), token)) {
        metrics_.auth_refused.fetch_add(1, std::memory_order_relaxed);
        HS_LOG(warn, "auth.refresh_refused").kv("conn", c.id)
            .kv("code", errc_name(static_cast<std::uint16_t>(v.code.value()))).kv("reason", v.reason);
        table_.send_error(c, f.id, static_cast<errc>(v.code.value()), v.reason);
        return;
    }
    arm_token_deadline(c, now);
    HS_LOG(info, "auth.refreshed").kv("conn", c.id);
    table_.send_ack(c, f.id);
    // A refreshed token may grant less than the one before: what the
    // connection holds open and may no longer have ends now.
    const std::size_t subscriptions = pubsub_.withdraw(c);
    const std::size_t ended_calls = calls_.withdraw(c, now);
    if (subscriptions != 0 || ended_calls != 0) {
        HS_LOG(info, "auth.withdrawn").kv("conn", c.id).kv("subscriptions", subscriptions).kv("calls", ended_calls);
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

void router_core::overflowed(const std::vector<connection_id>& ids, time_point now) {
    for (const connection_id id : ids) table_.overflowed(id);
    reap(now);
}

void router_core::tick(time_point now) {
    calls_.tick(now);
    if (now >= next_scan_) heartbeat_scan(now);
    reap(now);
}

void router_core::heartbeat_scan(time_point now) {
    const auto interval = std::chrono::milliseconds(cfg_.heartbeat_interval_ms);
    const auto timeout = std::chrono::milliseconds(cfg_.heartbeat_timeout_ms);
    const auto handshake = std::chrono::milliseconds(cfg_.handshake_timeout_ms);
    for (connection_id id : table_.ids()) {
        connection* c = table_.find(id);
        if (c == nullptr) continue;
        if (c->state == connection_state::awaiting_hello) {
            if (now - c->opened >= handshake)
                table_.close(*c, errc::handshake_timeout, "no hello in time", queued_data::send);
            continue;
        }
        if (c->state != connection_state::open) continue;
        if (now >= c->token_deadline) {
            metrics_.tokens_expired.fetch_add(1, std::memory_order_relaxed);
            table_.send_error(*c, 0, errc::token_expired, "the token expired and was not refreshed");
            table_.close(*c, errc::token_expired, "the token expired and was not refreshed", queued_data::send);
            continue;
        }
        if (now - c->last_received >= timeout) {
            table_.close(*c, errc::heartbeat_timeout, "no traffic within the heartbeat timeout", queued_data::discard);
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
            table_.send(*c, ping);
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
    calls_.refuse_new(true);
    drain_deadline_ = now + std::chrono::milliseconds(cfg_.drain_timeout_ms);
    HS_LOG(info, "router.drain").kv("calls_in_flight", calls_.in_flight()).kv("timeout_ms", cfg_.drain_timeout_ms);
    reap(now);
}

void router_core::redirect_drain_to(std::string websocket_url, std::string backend_endpoint) {
    if (cfg_.drain_redirect_url.empty()) drain_redirect_url_ = std::move(websocket_url);
    if (cfg_.drain_redirect_backend.empty()) drain_redirect_backend_ = std::move(backend_endpoint);
}

void router_core::set_cluster_routers(const routers_body& others) {
    std::vector<std::uint8_t> body;
    if (encode_body(others, body)) {
        HS_LOG(error, "cluster.routers_too_many").kv("routers", others.routers.size());
        return;
    }
    if (cluster_routers_ == body) return;
    cluster_routers_ = std::move(body);
    for (const connection_id id : table_.ids())
        if (connection* c = table_.find(id); c && c->follows_cluster && c->state == connection_state::open)
            send_routers(*c);
}

void router_core::send_routers(connection& c) {
    frame f;
    f.kind = frame_kind::routers;
    f.payload = *cluster_routers_;
    table_.send(c, f);
}

void router_core::hurry_drain(time_point now) {
    if (!draining_) return;
    drain_deadline_ = now;
    reap(now);
}

void router_core::check_drain(time_point now) {
    if (drain_done_) return;
    if (calls_.in_flight() != 0 && now < drain_deadline_) return;
    drain_done_ = true;
    calls_.fail_all(errc::going_away, "router is draining", now);

    for (connection_id id : table_.ids()) {
        connection* c = table_.find(id);
        if (c == nullptr || c->state == connection_state::closing) continue;
        // Each transport is sent where it can follow: a backend over ZeroMQ
        // cannot follow a WebSocket URL.
        const std::string& target =
            c->transport == transport_kind::zeromq ? drain_redirect_backend_ : drain_redirect_url_;
        if (!target.empty() && c->state == connection_state::open) {
            frame r;
            r.kind = frame_kind::redirect;
            r.code = code_of(errc::going_away);
            r.payload = text_bytes(target);
            table_.close_with(*c, encode_shared(r), errc::going_away, "redirected", queued_data::send);
        } else {
            table_.close(*c, errc::going_away, "router is draining", queued_data::send);
        }
    }
    // remove() may land here again through reap(); drain_done_ stops it.
    connection_id id = 0;
    while (table_.take_doomed(id))
        if (connection* c = table_.find(id)) remove(*c, now);
}

// ---------------------------------------------------------------- status

status_snapshot router_core::snapshot(time_point now) const {
    status_snapshot s;
    s.router_id = router_id_;
    s.epoch = log_.epoch();
    s.draining = draining_;
    s.connections.reserve(table_.size());
    for (const auto& [id, c] : table_.all()) {
        status_snapshot::connection_row row;
        row.id = c.id;
        row.transport = c.transport;
        row.state = c.state;
        row.role = c.role;
        row.name = c.name;
        row.remote = c.remote;
        row.age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - c.opened).count();
        for (const auto& [pattern, sub] : c.subscriptions) row.subscriptions.emplace_back(pattern, sub.policy);
        if (c.extras) row.services.assign(c.extras->services.begin(), c.extras->services.end());
        row.frames_in = c.frames_in;
        row.frames_queued = c.frames_queued;
        row.dropped = c.out->dropped_total();  // counted where the lane pushed
        row.queued_bytes = c.out->queued_bytes();
        s.connections.push_back(std::move(row));
    }
    std::sort(s.connections.begin(), s.connections.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    log_.describe(s.channels);
    calls_.describe(s.services);
    s.calls_in_flight = calls_.in_flight();
    return s;
}

}  // namespace hyperstreams::router
