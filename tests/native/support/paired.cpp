#include "paired.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace hyperstreams::testing {

router::router_config paired_config() {
    router::router_config c;
    c.heartbeat_interval_ms = 1000;
    c.heartbeat_timeout_ms = 3000;
    return c;
}

// ---------------------------------------------------------------- authorizer

void scripted_authorizer::refuse(std::string token, errc code, std::string reason) {
    refused_.insert_or_assign(std::move(token), refusal_rule{code, std::move(reason)});
}

void scripted_authorizer::stop_refusing(std::string_view token) {
    if (auto it = refused_.find(token); it != refused_.end()) refused_.erase(it);
}

void scripted_authorizer::grant(std::string token, std::string_view hs_claim) {
    router::grants g;
    EXPECT_EQ(router::parse_grants(nlohmann::json::parse(hs_claim), g), "") << hs_claim;
    claims_.insert_or_assign(std::move(token), std::move(g));
}

void scripted_authorizer::expire_after(std::string token, std::chrono::milliseconds lifetime) {
    lifetimes_.insert_or_assign(std::move(token), lifetime);
}

router::verdict scripted_authorizer::present(const router::principal& who, std::string_view token) {
    if (auto it = refused_.find(token); it != refused_.end()) return router::verdict::refuse(it->second.code, it->second.reason);
    tokens_.insert_or_assign(who.connection, std::string(token));
    return {};
}

router::verdict scripted_authorizer::admit(const router::principal& who, std::string_view token) {
    return present(who, token);
}

router::verdict scripted_authorizer::refresh(const router::principal& who, std::string_view token) {
    return present(who, token);
}

void scripted_authorizer::forget(const router::principal& who) {
    tokens_.erase(who.connection);
}

std::optional<std::chrono::milliseconds> scripted_authorizer::token_lifetime(const router::principal& who) {
    const auto token = tokens_.find(who.connection);
    if (token == tokens_.end()) return std::nullopt;
    const auto it = lifetimes_.find(token->second);
    if (it == lifetimes_.end()) return std::nullopt;
    return it->second;
}

const router::grants* scripted_authorizer::rights(const router::principal& who) const {
    const auto token = tokens_.find(who.connection);
    if (token == tokens_.end()) return nullptr;
    const auto it = claims_.find(token->second);
    return it == claims_.end() ? nullptr : &it->second;
}

std::error_code scripted_authorizer::can_subscribe(const router::principal& who, std::string_view pattern) {
    const router::grants* g = rights(who);
    return g == nullptr || g->may_subscribe(pattern) ? std::error_code{} : errc::forbidden;
}

std::error_code scripted_authorizer::can_publish(const router::principal& who, std::string_view channel) {
    const router::grants* g = rights(who);
    return g == nullptr || g->may_publish(channel) ? std::error_code{} : errc::forbidden;
}

std::error_code scripted_authorizer::can_call(const router::principal& who, std::string_view service,
                                              std::string_view method) {
    const router::grants* g = rights(who);
    return g == nullptr || g->may_call(service, method) ? std::error_code{} : errc::forbidden;
}

std::error_code scripted_authorizer::can_send(const router::principal& who, std::string_view address) {
    const router::grants* g = rights(who);
    return g == nullptr || g->may_send(address) ? std::error_code{} : errc::forbidden;
}

std::error_code scripted_authorizer::can_broadcast(const router::principal& who) {
    const router::grants* g = rights(who);
    return g == nullptr || g->may_broadcast() ? std::error_code{} : errc::forbidden;
}

std::error_code scripted_authorizer::can_register(const router::principal& who, std::string_view service) {
    const router::grants* g = rights(who);
    return g == nullptr || g->may_register(service) ? std::error_code{} : errc::forbidden;
}

std::error_code scripted_authorizer::can_subscribe_clients(const router::principal& who,
                                                           std::string_view pattern) {
    const router::grants* g = rights(who);
    return g == nullptr || g->may_subscribe_clients(pattern) ? std::error_code{} : errc::forbidden;
}

std::span<const std::string> scripted_authorizer::channels(const router::principal& who) {
    const router::grants* g = rights(who);
    return g == nullptr ? std::span<const std::string>() : std::span<const std::string>(g->channels);
}

// ---------------------------------------------------------------- peer

// Marks the connection woken, as a transport posts itself a write.
struct peer::woken_link final : router::link {
    void wake() override { woken = true; }
    bool woken = false;
};

peer::peer(paired& net, client_config config, router::transport_kind kind)
    : engine(std::move(config)), transport(kind), net_(net) {}

void peer::forget_records() {
    events.clear();
    sent_messages.clear();
    received_messages.clear();
}

void peer::connect() {
    ASSERT_FALSE(engine.start(net_.now));
    net_.pump();
    ASSERT_EQ(engine.state(), client_state::ready);
    forget_records();
}

void peer::drop_transport() {
    ASSERT_TRUE(up_);
    up_ = false;
    net_.core_->closed(connection_, net_.router_time());
    net_.wake_transports();
    engine.transport_closed(transport_id_, net_.now);
    net_.pump();
}

bool peer::settle() {
    bool any = false;
    client_event e;
    while (engine.poll_event(e)) {
        any = true;
        events.push_back(seen_event::from(e, net_.now));
        if (e.kind == event_kind::open_transport) {
            opened_urls.emplace_back(e.name);
            open(e.id);
        } else if (e.kind == event_kind::close_transport && e.id == transport_id_ && up_) {
            // The host sends what is pending (a goodbye), then closes.
            transmit();
            up_ = false;
            net_.core_->closed(connection_, net_.router_time());
            net_.wake_transports();
        }
    }
    return any;
}

void peer::open(std::uint32_t transport_id) {
    transport_id_ = transport_id;
    connection_ = router::next_connection_id();
    out_ = std::make_shared<router::outbox>(router::outbox_limits_of(net_.cfg));
    link_ = std::make_shared<woken_link>();
    router::connection_init init;
    init.id = connection_;
    init.transport = transport;
    init.remote = "paired";
    init.session = link_;
    init.out = out_;
    up_ = true;
    net_.core_->open(std::move(init), net_.router_time());
    net_.wake_transports();
    engine.transport_opened(transport_id, net_.now);
}

bool peer::transmit() {
    if (!up_) return false;
    bool any = false;
    while (engine.take_output(scratch_)) {
        any = true;
        sent_messages.push_back(decode_batch(scratch_));
        for (const wire_frame& f : sent_messages.back()) {
            if (f.kind != frame_kind::hello) continue;
            hello_body h;
            EXPECT_FALSE(decode_body(bytes(f.payload), h));
            hellos.push_back(hello_record{h.min_version, h.max_version, h.role, std::string(h.name),
                                          std::string(h.token), std::string(h.resume_session), f.flags});
        }
        net_.core_->receive(connection_, scratch_, net_.router_time());
        net_.wake_transports();
    }
    return any;
}

bool peer::deliver() {
    if (!up_ || stalled || !link_->woken) return false;
    link_->woken = false;
    // The engine may close this transport and open another on the way.
    const std::shared_ptr<router::outbox> out = out_;
    router::outbox_batch batch;
    bool any = false;
    while (up_ && out == out_) {
        out->take(batch);
        if (!batch.spans.empty()) {
            any = true;
            scratch_.clear();
            for (const router::shared_bytes& f : batch.spans) scratch_.insert(scratch_.end(), f->begin(), f->end());
            received_messages.push_back(decode_batch(scratch_));
            for (const wire_frame& f : received_messages.back()) {
                if (f.kind != frame_kind::welcome) continue;
                welcome_body w;
                EXPECT_FALSE(decode_body(bytes(f.payload), w));
                sessions.emplace_back(w.session_id);
            }
            EXPECT_FALSE(engine.receive(scratch_, net_.now));
            settle();
        }
        if (batch.close && up_ && out == out_) {
            closed_by_router();
            return true;
        }
        if (batch.spans.empty()) break;
    }
    return any;
}

// The router's farewell went out: its transport closes the connection.
void peer::closed_by_router() {
    up_ = false;
    net_.core_->closed(connection_, net_.router_time());
    net_.wake_transports();
    engine.transport_closed(transport_id_, net_.now);
}

// ---------------------------------------------------------------- paired

paired::paired(router::router_config config, std::uint32_t epoch)
    : cfg(std::move(config)),
      stats_(std::make_unique<router::metrics>()),
      core_(std::make_unique<router::router_core>(cfg, auth, *stats_, epoch, router_id_)) {}

paired::~paired() = default;

peer& paired::add(client_config config, router::transport_kind transport) {
    peers_.push_back(std::make_unique<peer>(*this, std::move(config), transport));
    return *peers_.back();
}

router::time_point paired::router_time() const { return router::time_point{} + std::chrono::milliseconds(now); }

void paired::wake_transports() {
    router::router_core::wake_list wakes;
    core_->take_wakes(wakes);
    for (const auto& w : wakes)
        if (auto link = w.lock()) link->wake();
}

void paired::pump() {
    for (int round = 0; round < 10000; ++round) {
        bool progress = false;
        for (auto& p : peers_) progress = p->settle() || progress;
        for (auto& p : peers_) progress = p->transmit() || progress;
        for (auto& p : peers_) progress = p->deliver() || progress;
        if (!progress) return;
    }
    ADD_FAILURE() << "paired::pump did not settle";
}

void paired::transmit(peer& p) {
    p.settle();
    p.transmit();
}

time_ms paired::next_deadline() const {
    time_ms next = no_deadline;
    if (const router::time_point t = core_->next_deadline(); t != router::time_point::max())
        next = std::chrono::ceil<std::chrono::milliseconds>(t.time_since_epoch()).count();
    for (const auto& p : peers_) next = std::min(next, p->engine.next_deadline());
    return next;
}

void paired::advance(time_ms ms) {
    const time_ms target = now + ms;
    for (int i = 0;; ++i) {
        if (i == 100000) {
            ADD_FAILURE() << "paired::advance: deadlines without end";
            break;
        }
        const time_ms next = next_deadline();
        if (next > target) break;
        now = std::max(now, next);
        core_->tick(router_time());
        wake_transports();
        for (auto& p : peers_)
            if (p->engine.next_deadline() <= now) p->engine.handle_timeout(now);
        pump();
    }
    now = target;
    core_->tick(router_time());
    wake_transports();
    pump();
}

void paired::begin_drain() {
    core_->begin_drain(router_time());
    wake_transports();
    pump();
}

void paired::restart_router(std::uint32_t epoch) {
    for (auto& p : peers_) {
        if (!p->up_) continue;
        p->up_ = false;
        p->engine.transport_closed(p->transport_id_, now);
    }
    core_.reset();
    stats_ = std::make_unique<router::metrics>();
    core_ = std::make_unique<router::router_core>(cfg, auth, *stats_, epoch, router_id_);
    pump();
}

}  // namespace hyperstreams::testing
