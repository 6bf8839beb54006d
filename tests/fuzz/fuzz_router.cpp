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
// bit 6 no history (the message frames of a run encoded in place); bit 7
// routers as one (cluster.redis): the core keeps its channels in the Redis
// channel log and reaches other routers over the Redis bus and presence,
// whose engine is never started (there is no Redis here: what they send
// fails at once, as to an unreachable server), and the script's
// redis_message steps are what Redis pub/sub would bring: other routers'
// publications, one and in batches, presence events, directs, client
// subscriptions, pings, answers and broadcasts, well formed or not, on the
// channels the router listens to (and others). A channel's publications
// then come with the positions Redis gave, in epochs of its choosing.
//
// Besides "no crash", it checks:
//   - everything the core queues decodes, one frame per entry, and is a kind
//     the router sends;
//   - the live messages of a channel reach a connection once each, in the
//     order of their positions (a later epoch, or a later seq in the same
//     epoch; routers as one: another epoch, which Redis draws at random, or
//     a later seq in the same), at a position that is not zero;
//   - a woken transport is a live peer's (or gone);
//   - status_json() is JSON;
//   - once a drain has outlasted its timeout, the core holds no connection.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "authorizer.hpp"
#include "grants.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"
#include "log.hpp"
#include "redis_bus.hpp"
#include "redis_engine.hpp"
#include "redis_log.hpp"
#include "redis_messages.hpp"
#include "redis_presence.hpp"
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
    if ((setup & 128) != 0) {
        c.cluster_redis = {"redis://127.0.0.1:1"};
        namespace_config presence;
        presence.pattern = "p.>";
        presence.presence = true;
        presence.join_leave = true;
        presence.latest = true;
        c.namespaces.push_back(presence);
    }
    return c;
}

// Routers as one (setup bit 7): the parts cluster_node builds, on an
// io_context the harness polls after every step.
struct cluster_parts {
    explicit cluster_parts(const router_config& cfg)
        : engine(io, redis_options{cfg.cluster_redis, {}, {}},
                 redis_engine::handlers{[](std::string_view, std::string_view, std::string_view) {},
                                        [](bool, std::string_view) {}, {}}),
          log(engine, redis_log_options{cfg.cluster_prefix, cfg.history_meta_ttl_s, cfg.max_channels}),
          bus(io, engine, cfg.cluster_prefix, "fuzz", std::chrono::milliseconds(cfg.heartbeat_timeout_ms)),
          presence(engine, log, cfg.cluster_prefix, "fuzz", std::chrono::milliseconds(cfg.heartbeat_timeout_ms)) {}

    boost::asio::io_context io;
    redis_engine engine;
    redis_log log;
    redis_bus bus;
    redis_presence presence;
};

// The channels a redis_message step names: those the seeds' clients use,
// two of the presence namespace (p.>), then names no router publishes on.
constexpr std::array<std::string_view, 10> redis_names = {"a.b", "a.c", "public.a", "public.b", "big",
                                                          "p.x",  "p.y", "",         "a..b",     "a b"};

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
        if ((setup & 128) == 0) {
            core_ = std::make_unique<router_core>(cfg_, *auth_, stats_, 7, "fuzz");
            return;
        }
        cluster_ = std::make_unique<cluster_parts>(cfg_);
        core_ = std::make_unique<router_core>(cfg_, *auth_, stats_, cluster_->log, "fuzz", &cluster_->bus,
                                              &cluster_->presence);
        // As cluster_node::start, with the core's own call for core_runner's.
        const auto enter = [this](const std::function<void()>& answer) { core_->log_answer(answer, now_); };
        cluster_->log.set_entry(enter);
        cluster_->log.set_presence_events([this](std::string_view channel, std::string_view event) {
            cluster_->presence.on_event(channel, event);
        });
        // No membership read: as a router before its first heartbeat.
        cluster_->bus.start(enter, [](std::string_view) { return redis_bus::member_info{}; });
    }

    harness(const harness&) = delete;
    harness& operator=(const harness&) = delete;

    // As cluster_node::stop: nothing enters the core after.
    ~harness() {
        if (!cluster_) return;
        cluster_->bus.stop();
        cluster_->engine.stop();
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
            case router_step::redis_message:
                redis_message(in);
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
    // What Redis pub/sub brings (router_step::redis_message), handed over as
    // cluster_node's handler does: to the bus when on its channels, else to
    // the channel log. `what` % 11 picks the message, or (10) Redis gone or
    // back as the engine reports it: while the log says it is up, publishes
    // go to the engine, which answers every command as unreachable.
    void redis_message(script_reader& in) {
        const std::uint8_t what = in.u8();
        const std::uint8_t flags = in.u8();
        const std::string_view name = redis_names[in.u8() % redis_names.size()];
        const std::uint32_t epoch = 1 + in.u8() % 3;  // few: runs in one epoch, and changes
        const std::uint8_t seq = in.u8();
        const std::string payload(fuzzing::as_text(in.str16()));
        if (!cluster_) return;
        const std::string& prefix = cfg_.cluster_prefix;
        const std::string own = prefix + ":r:fuzz";
        const std::string other = seq % 2 == 0 ? "other" : "fuzz";  // another router's, or this one's
        const peer& to = peers_[seq % slot_count];
        std::string m;
        switch (what % 11) {
            case 0:  // one publication
                on_pubsub(cluster_->log.pubsub_channel(name), fuzzing::one_publication(flags, epoch, seq, payload));
                break;
            case 1: {  // a batch, its entries the payload cut as fuzz_publication_batch does
                std::string entries;
                std::uint32_t count = 0;
                for (std::size_t at = 0; at < payload.size(); ++count) {
                    const std::size_t n =
                        std::min<std::size_t>(static_cast<unsigned char>(payload[at]), payload.size() - at - 1);
                    fuzzing::batch_entry(entries, flags, std::string_view(payload).substr(at + 1, n));
                    at += 1 + n;
                }
                on_pubsub(cluster_->log.pubsub_channel(name), fuzzing::batch_header(epoch, seq, count) + entries);
                break;
            }
            case 2:  // anything, on a channel's pub/sub
                on_pubsub(cluster_->log.pubsub_channel(name), payload);
                break;
            case 3:  // a presence event: [0x80][join or leave][member body]
                m.push_back(static_cast<char>(0x80));
                m.push_back(static_cast<char>(flags % 2 == 0 ? frame_kind::join : frame_kind::leave));
                on_pubsub(cluster_->log.pubsub_channel(name), m + payload);
                break;
            case 4:  // anything on this router's bus channel, or (flags bit 0) a ping, well formed when the payload is empty
                if (flags % 2 == 1) {
                    m = "p";
                    fuzzing::bus_name(m, other);
                    fuzzing::bus_name(m, "reply");
                }
                on_pubsub(own, m + payload);
                break;
            case 5:  // a direct for a client's address
                m = "d";
                fuzzing::bus_name(m, other);
                fuzzing::bus_name(m, "reply");
                m.push_back(static_cast<char>(flags));
                fuzzing::bus_name(m, to.address);
                fuzzing::bus_name(m, "sender");
                on_pubsub(own, m + payload);
                break;
            case 6:  // a subscribe_client (flags bit 0) or unsubscribe_client for a client's address
                m = "s";
                fuzzing::bus_name(m, other);
                fuzzing::bus_name(m, "reply");
                m.push_back(static_cast<char>(flags));
                fuzzing::bus_name(m, to.address);
                fuzzing::bus_name(m, name);
                on_pubsub(own, m);
                break;
            case 7: {  // an answer to a direct or subscription of this router's: by ticket, or by connection
                std::string reply(1, static_cast<char>(flags % 2));
                if (flags % 2 == 1) {
                    fuzzing::put_le(reply, seq, 8);
                } else {
                    fuzzing::put_le(reply, to.id, 8);
                    fuzzing::put_le(reply, 1, 4);
                }
                m = "a";
                fuzzing::bus_name(m, reply);
                fuzzing::put_le(m, seq, 2);
                on_pubsub(own, m + payload);
                break;
            }
            case 8:  // a broadcast: [origin][from][flags][payload]
                fuzzing::bus_name(m, other);
                fuzzing::bus_name(m, "sender");
                m.push_back(static_cast<char>(flags));
                on_pubsub(prefix + ":b", m + payload);
                break;
            case 9:  // anything, on the broadcast channel, or on one of no part's
                on_pubsub(flags % 2 == 0 ? prefix + ":b" : prefix + ":" + std::string(name), payload);
                break;
            default:
                cluster_->log.on_state(flags % 2 == 1, "fuzz");
                break;
        }
    }

    void on_pubsub(std::string_view channel, std::string_view payload) {
        if (!cluster_->bus.on_message(channel, payload)) cluster_->log.on_message(channel, payload);
    }

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

    // What core_runner and the transports do after every call (and, for
    // routers as one, the engine's thread: what the log and the bus read
    // enters the core).
    void settle() {
        if (cluster_) {
            cluster_->io.restart();
            cluster_->io.poll();
        }
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
            require(f.epoch != 0 && f.seq != 0, "a live message has a position");
            auto [it, first] = p.positions.try_emplace(std::string(f.name), position);
            const bool later = cluster_ ? it->second.first != position.first || it->second.second < position.second
                                        : it->second < position;
            require(first || later, "a channel's live messages arrive once each, in order");
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
    std::unique_ptr<cluster_parts> cluster_;  // routers as one; outlives the core
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
