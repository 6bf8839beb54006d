// libFuzzer target: the router's routing core as its transports drive it.
// An input is a script (script.hpp) for eight peers, WebSocket and ZeroMQ,
// frontends and backends: transport messages, valid hellos, lost
// connections, direct messages to each other's addresses, a drain, and a
// fake clock the core ticks on as core_runner would make it. After every
// step the host's part is played: the transports are woken and every outbox
// is drained as a transport drains it, so memory stays bounded. At the end
// the admin view is rendered once (it costs more than any step), then the
// router drains.
//
// The first byte configures the core: bit 0 access control by tokens
// (tokens.hpp; anonymous rights, and rights for slot 7's CURVE key) instead
// of allow_all; bit 1 small outboxes (slow consumers); bit 2 a publish rate
// limit; bit 3 drain redirects; bits 4-5 the default slow-consumer policy;
// bit 6 no history (the message frames of a run encoded in place).
//
// Besides "no crash", it checks:
//   - everything the core queues decodes, one frame per entry, and is a kind
//     the router sends;
//   - the live messages of a channel reach a connection once each, in the
//     order of their positions (a later epoch, or a later seq in the same
//     epoch);
//   - a woken transport is a live peer's (or gone);
//   - status_json() is JSON;
//   - once a drain has outlasted its timeout, the core holds no connection.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "authorizer.hpp"
#include "grants.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"
#include "log.hpp"
#include "router_core.hpp"
#include "script.hpp"
#include "token_authorizer.hpp"
#include "tokens.hpp"

namespace {

using namespace hyperstreams;
using namespace hyperstreams::router;
using fuzzing::router_step;
using fuzzing::script_reader;

void require(bool condition, const char* what) {
    if (!condition) fuzzing::fail("fuzz_router", what);
}

constexpr std::size_t slot_count = 8;
constexpr std::size_t curve_slot = 7;
constexpr std::string_view curve_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

struct fake_link final : router::link {
    void wake() override { ++wakes; }
    std::uint64_t wakes = 0;
};

struct peer {
    connection_id id = 0;  // 0: no connection
    std::shared_ptr<outbox> out;
    std::shared_ptr<fake_link> session;
    std::string address;  // from the welcome
    // The position of the last live message of each channel it received.
    std::map<std::string, std::pair<std::uint32_t, std::uint64_t>, std::less<>> positions;
};

const std::vector<std::string>& tokens() {
    static const std::vector<std::string> list = fuzzing::router_tokens();
    return list;
}

grants grants_of(const char* claim) {
    grants g;
    require(parse_grants(nlohmann::json::parse(claim), g).empty(), "the harness's grants parse");
    return g;
}

const grants& anonymous_rights() {
    static const grants g = grants_of(R"({"subscribe":["public.>"],"publish":["public.>"],"call":["echo/*"],"send":["*"]})");
    return g;
}

const grants& curve_rights() {
    static const grants g = grants_of(R"({"register":[">"],"publish":[">"],"deny":{"publish":["public.>"]}})");
    return g;
}

router_config config_of(std::uint8_t setup) {
    router_config c;
    c.heartbeat_interval_ms = 1000;
    c.heartbeat_timeout_ms = 3000;
    c.handshake_timeout_ms = 2000;
    c.max_payload = 4096;
    c.max_subscriptions = 8;
    c.max_pending_requests = 4;
    c.max_connections = 6;
    c.max_channels = 16;
    c.max_services = 4;
    c.max_services_per_backend = 2;
    c.max_methods_per_service = 4;
    c.history_max_messages = 4;
    c.history_max_bytes = 2048;
    c.history_max_total_bytes = 8192;
    c.default_deadline_ms = 1000;
    c.max_deadline_ms = 4000;
    c.service_grace_ms = 2000;
    c.drain_timeout_ms = 1000;
    c.auth_expiry_grace_ms = 500;
    c.auth = (setup & 1) != 0 ? auth_mode::tokens : auth_mode::open;
    c.outbox_max_bytes = (setup & 2) != 0 ? 2048 : 64u << 10;
    c.outbox_batch_bytes = 1024;
    if ((setup & 4) != 0) {
        c.publish_rate = 4;
        c.publish_burst = 2;
    }
    if ((setup & 8) != 0) {
        c.drain_redirect_url = "ws://127.0.0.1:7170/ws";
        c.drain_redirect_backend = "tcp://127.0.0.1:7171";
    }
    constexpr std::array policies = {slow_policy::drop_oldest, slow_policy::drop_oldest,
                                     slow_policy::keep_latest, slow_policy::disconnect};
    c.outbox_policy = policies[(setup >> 4) & 3];
    // Channels without history: their runs are encoded in place unless a
    // subscriber keeps the latest (connection_table::add_encoded_to_run).
    if ((setup & 64) != 0) c.history_max_messages = 0;
    return c;
}

bool router_sends(frame_kind k) {
    switch (k) {
        case frame_kind::hello:
        case frame_kind::token_refresh:
        case frame_kind::subscribe:
        case frame_kind::unsubscribe:
        case frame_kind::publish:
        case frame_kind::register_service:
        case frame_kind::unregister_service:
        case frame_kind::discover:
        case frame_kind::subscribe_client:
        case frame_kind::unsubscribe_client:
            return false;
        default:
            return true;
    }
}

class harness {
public:
    explicit harness(std::uint8_t setup) : cfg_(config_of(setup)) {
        if (cfg_.auth == auth_mode::tokens) {
            token_policy p;
            p.keys.set_hs256_secret(std::string(fuzzing::hs256_secret));
            p.anonymous = std::make_shared<const grants>(anonymous_rights());
            p.curve_clients.emplace(std::string(curve_key), std::make_shared<const grants>(curve_rights()));
            p.connections_per_subject = 2;
            p.leeway_s = 1;
            p.max_token_bytes = 2048;
            p.max_rules = 64;
            p.unix_now = [this] {
                return fuzzing::unix_start + std::chrono::duration_cast<std::chrono::seconds>(now_ - start_).count();
            };
            auth_ = std::make_unique<token_authorizer>(std::move(p));
        } else {
            auth_ = std::make_unique<allow_all>();
        }
        core_ = std::make_unique<router_core>(cfg_, *auth_, stats_, 7, "fuzz");
    }

    void step(script_reader& in) {
        switch (static_cast<router_step>(in.u8() % static_cast<std::uint8_t>(router_step::count))) {
            case router_step::send_raw: {
                const peer& p = open(in.u8());
                receive(p, in.str16());
                break;
            }
            case router_step::send_frames: {
                const peer& p = open(in.u8());
                std::vector<std::uint8_t> message;
                const int n = 1 + in.u8() % 4;
                for (int i = 0; i < n; ++i) (void)in.frame_spec(message);
                receive(p, message);
                break;
            }
            case router_step::hello: {
                const peer& p = open(in.u8());
                const std::uint8_t how = in.u8();
                hello_body h;
                h.role = (how & 1) != 0 ? client_role::backend : client_role::frontend;
                h.name = "fuzz";
                if (const std::size_t t = how >> 1; t < tokens().size()) h.token = tokens()[t];
                std::vector<std::uint8_t> body;
                require(!encode_body(h, body), "a hello body encodes");
                send_one(p, frame_kind::hello, {}, body, 0);
                break;
            }
            case router_step::close: {
                peer& p = peers_[in.u8() % slot_count];
                if (p.id != 0) {
                    core_->closed(p.id, now_);
                    p = peer{};
                }
                break;
            }
            case router_step::reject: {
                const peer& p = open(in.u8());
                core_->reject(p.id, static_cast<errc>(in.u16()), "fuzz", now_);
                break;
            }
            case router_step::advance:
                advance(std::chrono::milliseconds(in.u16()));
                break;
            case router_step::direct: {
                const peer& p = open(in.u8());
                const std::string to = peers_[in.u8() % slot_count].address;
                const std::uint8_t flags = in.u8();
                send_one(p, frame_kind::direct, to, in.str16(), flags);
                break;
            }
            case router_step::client_subscription: {
                const peer& p = open(in.u8());
                const std::string to = peers_[in.u8() % slot_count].address;
                const std::uint8_t flags = in.u8();
                const frame_kind kind =
                    (flags & 1) != 0 ? frame_kind::unsubscribe_client : frame_kind::subscribe_client;
                send_one(p, kind, fuzzing::as_text(in.str8()), fuzzing::as_bytes(to),
                         static_cast<std::uint8_t>(flags & frame_flags::policy_mask));
                break;
            }
            case router_step::drain:
                core_->begin_drain(now_);
                break;
            case router_step::hurry:
                core_->hurry_drain(now_);
                break;
            case router_step::count:
                break;
        }
        settle();
    }

    // The admin view, then a drain as a signal starts it, past its timeout.
    void finish() {
        require(!nlohmann::json::parse(core_->status_json(now_), nullptr, false).is_discarded(),
                "status_json is JSON");
        core_->begin_drain(now_);
        settle();
        advance(std::chrono::milliseconds(cfg_.drain_timeout_ms));
        require(core_->drained(), "a drain past its timeout leaves no connection");
    }

private:
    peer& open(std::uint8_t slot) {
        peer& p = peers_[slot % slot_count];
        if (p.id != 0) return p;
        p.id = next_connection_id();
        p.out = std::make_shared<outbox>(outbox_limits_of(cfg_));
        p.session = std::make_shared<fake_link>();
        connection_init init;
        init.id = p.id;
        init.transport = slot % 2 == 0 ? transport_kind::websocket : transport_kind::zeromq;
        init.remote = "fuzz";
        if (slot % slot_count == curve_slot) init.curve_key = std::string(curve_key);
        init.session = p.session;
        init.out = p.out;
        core_->open(std::move(init), now_);
        return p;
    }

    // A copy that dies after the call: a view the core kept would be a use
    // after free at its next use.
    void receive(const peer& p, bytes_view message) {
        const std::vector<std::uint8_t> copy(message.begin(), message.end());
        core_->receive(p.id, copy, now_);
    }

    void send_one(const peer& p, frame_kind kind, std::string_view name, bytes_view payload, std::uint8_t flags) {
        frame f;
        f.kind = kind;
        f.id = 1;
        f.flags = flags;
        f.name = name;
        f.payload = payload;
        std::vector<std::uint8_t> message;
        if (!append(message, f)) receive(p, message);
    }

    void advance(std::chrono::milliseconds by) {
        now_ += by;
        if (now_ >= core_->next_deadline()) core_->tick(now_);
        settle();
    }

    // What core_runner and the transports do after every call.
    void settle() {
        core_->take_wakes(wakes_);
        for (const auto& w : wakes_) {
            const std::shared_ptr<router::link> s = w.lock();
            if (!s) continue;
            bool live = false;
            for (const peer& p : peers_) live = live || p.session == s;
            require(live, "a woken transport is a live peer's");
            s->wake();
        }
        wakes_.clear();
        for (peer& p : peers_)
            if (p.id != 0) drain(p);
    }

    void drain(peer& p) {
        for (;;) {
            p.out->take(batch_);
            std::uint32_t frames = 0;
            for (const shared_bytes& span : batch_.spans) frames += check_span(p, *span);
            require(frames == batch_.frames, "a batch counts the frames its spans hold");
            if (batch_.close) {
                // The transport sent the farewell and closed the socket.
                const connection_id id = p.id;
                p = peer{};
                core_->closed(id, now_);
                return;
            }
            if (batch_.spans.empty()) return;
        }
    }

    // A span of a batch is whole frames, one or more; how many.
    std::uint32_t check_span(peer& p, bytes_view bytes) {
        batch_reader reader(bytes, decode_limits{UINT32_MAX, UINT32_MAX});
        frame f;
        std::uint32_t frames = 0;
        while (reader.next(f)) {
            check_queued(p, f);
            ++frames;
        }
        require(!reader.error(), "a span of a batch is whole frames");
        require(frames > 0, "a span of a batch holds a frame");
        return frames;
    }

    void check_queued(peer& p, const frame& f) {
        require(router_sends(f.kind), "the router queues only kinds the router sends");
        if (f.kind == frame_kind::message && !f.has(frame_flags::replayed)) {
            const std::pair position{f.epoch, f.seq};
            auto [it, first] = p.positions.try_emplace(std::string(f.name), position);
            require(first || it->second < position, "a channel's live messages arrive once each, in order");
            it->second = position;
        }
        if (f.kind == frame_kind::welcome) {
            welcome_body w;
            require(!decode_body(f.payload, w), "a welcome body decodes");
            p.address = std::string(w.session_id);
        }
    }

    const router_config cfg_;
    metrics stats_;
    std::unique_ptr<authorizer> auth_;
    std::unique_ptr<router_core> core_;
    const time_point start_ = time_point(std::chrono::hours(1));
    time_point now_ = start_;
    std::array<peer, slot_count> peers_;
    router_core::wake_list wakes_;
    outbox_batch batch_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::configure(log::level::off, log::format::text);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    script_reader in(bytes_view(data, size));
    harness h(in.u8());
    while (!in.done()) h.step(in);
    h.finish();
    return 0;
}
