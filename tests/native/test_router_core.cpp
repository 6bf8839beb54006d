// router_core without sockets: fake transports (an outbox and a link that
// counts wake-ups per connection), frames in, frames out, and a clock the
// test moves by hand. Real client engines on such a clock: support/paired.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "grants.hpp"
#include "hyperstreams/body.hpp"
#include "addressing.hpp"
#include "records.hpp"
#include "memory_log.hpp"
#include "router_bus.hpp"
#include "router_core.hpp"

namespace hyperstreams::router {
namespace {

using namespace std::chrono_literals;

// A frame the core sent, owning its bytes.
using rx = testing::wire_frame;

struct fake_link final : link {
    void wake() override { ++wakes; }
    int wakes = 0;
};

struct peer {
    connection_id id = 0;
    std::shared_ptr<outbox> out;
    std::shared_ptr<fake_link> session;
    std::string address;
    bool closed = false;  // the outbox said close
};

// A channel log whose answers come when the test says, as a remote log's
// do: the in-memory log behind it decides, this one holds back appends,
// history reads and their answers, and records interest changes.
class deferred_log final : public channel_log, private channel_log::sink {
public:
    deferred_log(std::uint32_t epoch, history_limits limits, metrics& m) : inner_(epoch, limits, 1000, m) {
        inner_.bind(*this);
    }

    void append(std::string_view channel, std::uint8_t flags, bytes_view payload, const publisher& from,
                const channel_options& options, const publish_extras& extras) override {
        appends_.push_back({std::string(channel), flags, std::vector<std::uint8_t>(payload.begin(), payload.end()),
                            from, &options, std::string(extras.key), extras.ttl_s, extras.now});
    }
    void read_since(std::uint64_t ticket, std::string_view channel, position since, read_kind kind,
                    time_point now) override {
        reads_.push_back({ticket, std::string(channel), since, kind, now});
    }
    void read_latest(std::uint64_t ticket, std::string_view pattern, time_point now) override {
        latest_reads_.push_back({ticket, std::string(pattern), now});
    }
    bool positions_known() const noexcept override { return positions_known_; }
    // As a remote log: a subscribe reads the channel's position.
    void forget_positions() { positions_known_ = false; }
    position last_position(std::string_view channel) const override { return inner_.last_position(channel); }
    void interest(std::string_view pattern, interest_change change) override {
        interest_.emplace_back(std::string(pattern), change);
    }
    std::uint32_t epoch() const noexcept override { return inner_.epoch(); }
    void describe(std::vector<channel_view>& out) const override { inner_.describe(out); }

    // Places the appends held so far (delivering each), or fails them all with `code`.
    void release_appends(errc code = static_cast<errc>(0)) {
        for (auto& a : std::exchange(appends_, {})) {
            if (code != static_cast<errc>(0))
                sink_->append_failed(a.from, code, "the log is unreachable");
            else
                inner_.append(a.channel, a.flags, a.payload, a.from, *a.options, publish_extras{a.key, a.ttl_s, a.now});
        }
    }
    // Reads the history asked for so far; the answers wait for answer_reads().
    void read_now() {
        for (auto& r : std::exchange(reads_, {})) inner_.read_since(r.ticket, r.channel, r.since, r.kind, r.now);
        for (auto& [ticket, pattern, now] : std::exchange(latest_reads_, {})) inner_.read_latest(ticket, pattern, now);
    }
    void answer_reads() {
        for (auto& [ticket, channel, h] : std::exchange(answers_, {})) sink_->history_read(ticket, channel, std::move(h));
        for (auto& a : std::exchange(latest_answers_, {})) {
            std::vector<latest_value> values;
            for (const auto& [name, last] : a.values) values.push_back(latest_value{name, last});
            sink_->latest_read(a.ticket, a.pattern, a.now, values);
        }
    }
    // Fails the reads asked for so far, as a log that lost its engine does.
    void fail_reads(errc code) {
        for (auto& r : std::exchange(reads_, {})) sink_->history_failed(r.ticket, r.channel, code, "the log is unreachable");
        for (auto& [ticket, pattern, now] : std::exchange(latest_reads_, {}))
            sink_->history_failed(ticket, pattern, code, "the log is unreachable");
    }
    std::size_t pending_reads() const {
        return reads_.size() + answers_.size() + latest_reads_.size() + latest_answers_.size();
    }
    const std::vector<std::pair<std::string, interest_change>>& interest_changes() const { return interest_; }

private:
    void placed(const publisher& from, position at) override { sink_->placed(from, at); }
    shared_bytes deliver(std::string_view channel, const publication& p, bool keep) override {
        return sink_->deliver(channel, p, keep);
    }
    void append_failed(const publisher& from, errc code, std::string_view text) override {
        sink_->append_failed(from, code, text);
    }
    void history_read(std::uint64_t ticket, std::string_view channel, history h) override {
        answers_.push_back({ticket, std::string(channel), std::move(h)});
    }
    void history_failed(std::uint64_t ticket, std::string_view channel, errc code, std::string_view text) override {
        sink_->history_failed(ticket, channel, code, text);
    }
    void latest_read(std::uint64_t ticket, std::string_view pattern, position now,
                     std::span<const latest_value> values) override {
        latest_answer a{ticket, std::string(pattern), now, {}};
        for (const latest_value& v : values) a.values.emplace_back(std::string(v.channel), v.last);
        latest_answers_.push_back(std::move(a));
    }

    struct held_append {
        std::string channel;
        std::uint8_t flags;
        std::vector<std::uint8_t> payload;
        publisher from;
        const channel_options* options;  // the core's, which outlives the log's use of them
        std::string key;
        std::uint32_t ttl_s;
        time_point now;
    };
    struct held_read {
        std::uint64_t ticket;
        std::string channel;
        position since;
        read_kind kind;
        time_point now;
    };
    struct held_answer {
        std::uint64_t ticket;
        std::string channel;
        history h;
    };
    struct latest_answer {
        std::uint64_t ticket;
        std::string pattern;
        position now;
        std::vector<std::pair<std::string, publication>> values;
    };
    memory_log inner_;
    std::vector<held_append> appends_;
    std::vector<std::tuple<std::uint64_t, std::string, time_point>> latest_reads_;
    std::vector<latest_answer> latest_answers_;
    std::vector<held_read> reads_;
    std::vector<held_answer> answers_;
    std::vector<std::pair<std::string, interest_change>> interest_;
    bool positions_known_ = true;
};

frame make(frame_kind kind, std::uint32_t id = 0, std::string_view name = {}, std::string_view payload = {}) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    f.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
    return f;
}

class RouterCore : public ::testing::Test {
protected:
    void SetUp() override {
        cfg.heartbeat_interval_ms = 1000;
        cfg.heartbeat_timeout_ms = 3000;
        cfg.handshake_timeout_ms = 2000;
        cfg.history_max_messages = 4;
        cfg.drain_timeout_ms = 5000;
        rebuild();
    }

    void rebuild() { rebuild(auth); }
    void rebuild(authorizer& a) { core = std::make_unique<router_core>(cfg, a, stats, epoch, "r1"); }
    // The core with a bus to other routers (and channels in memory).
    void rebuild_with(router_bus& bus) {
        core.reset();
        log = std::make_unique<deferred_log>(epoch, history_limits{}, stats);
        core = std::make_unique<router_core>(cfg, auth, stats, *log, "r1", &bus);
    }
    // The core over a log that answers when the test says.
    deferred_log& rebuild_deferred() {
        core.reset();
        log = std::make_unique<deferred_log>(
            epoch, history_limits{cfg.history_max_messages, cfg.history_max_bytes, cfg.history_max_total_bytes, cfg.max_channels},
            stats);
        core = std::make_unique<router_core>(cfg, auth, stats, *log, "r1");
        return *log;
    }

    peer connect(transport_kind t = transport_kind::websocket) {
        peer p;
        p.id = next_connection_id();
        p.out = std::make_shared<outbox>(outbox_limits_of(cfg));
        p.session = std::make_shared<fake_link>();
        connection_init init;
        init.id = p.id;
        init.transport = t;
        init.remote = "test";
        init.session = p.session;
        init.out = p.out;
        core->open(std::move(init), now);
        wake_transports();
        return p;
    }

    // What core_runner does after every call to the core.
    void wake_transports() {
        router_core::wake_list wakes;
        core->take_wakes(wakes);
        for (const auto& w : wakes)
            if (auto s = w.lock()) s->wake();
    }

    static std::vector<std::uint8_t> batch_of(const std::vector<frame>& frames) {
        std::vector<std::uint8_t> bytes;
        for (const frame& f : frames) EXPECT_FALSE(append(bytes, f));
        return bytes;
    }

    void send(peer& p, const std::vector<frame>& frames) {
        core->receive(p.id, batch_of(frames), now);
        wake_transports();
    }
    void send(peer& p, const frame& f) { send(p, std::vector<frame>{f}); }

    std::vector<rx> take(peer& p) {
        std::vector<rx> out;
        outbox_batch b;
        for (;;) {
            p.out->take(b);
            for (const shared_bytes& bytes : b.spans) {
                decode_limits limits;
                limits.max_payload = 1u << 30;
                batch_reader r(*bytes, limits);
                frame f;
                while (r.next(f)) out.push_back(rx::from(f));
                EXPECT_FALSE(r.error());
            }
            if (b.close) p.closed = true;
            if (b.spans.empty()) break;
        }
        return out;
    }

    std::vector<rx> take(peer& p, frame_kind kind) {
        std::vector<rx> out;
        for (rx& x : take(p))
            if (x.kind == kind) out.push_back(std::move(x));
        return out;
    }

    peer hello(client_role role = client_role::frontend, transport_kind t = transport_kind::websocket,
               std::string_view token = {}) {
        peer p = connect(t);
        hello_body h;
        h.role = role;
        h.name = role == client_role::backend ? "backend" : "frontend";
        h.token = token;
        std::vector<std::uint8_t> body;
        (void)encode_body(h, body);
        frame f = make(frame_kind::hello);
        f.payload = body;
        send(p, f);
        const auto frames = take(p);
        EXPECT_EQ(frames.size(), 1u);
        if (!frames.empty() && frames[0].kind == frame_kind::welcome) {
            welcome_body w;
            const std::vector<std::uint8_t> raw(frames[0].payload.begin(), frames[0].payload.end());
            EXPECT_FALSE(decode_body(raw, w));
            p.address = std::string(w.session_id);
        }
        return p;
    }

    peer backend(std::string_view service, std::vector<method_info> methods) {
        peer b = hello(client_role::backend, transport_kind::zeromq);
        register_body body;
        body.methods = std::move(methods);
        std::vector<std::uint8_t> bytes;
        (void)encode_body(body, bytes);
        frame f = make(frame_kind::register_service, 500, service);
        f.payload = bytes;
        send(b, f);
        const auto acks = take(b, frame_kind::ack);
        EXPECT_EQ(acks.size(), 1u);
        return b;
    }

    void subscribe(peer& p, std::uint32_t id, std::string_view pattern, std::uint8_t flags = 0) {
        frame f = make(frame_kind::subscribe, id, pattern);
        f.flags = flags;
        send(p, f);
    }

    void publish(peer& p, std::string_view channel, std::string_view payload, std::uint32_t ack_id = 0) {
        frame f = make(frame_kind::publish, ack_id, channel, payload);
        if (ack_id) f.flags = frame_flags::ack_requested;
        send(p, f);
    }

    void request(peer& p, std::uint32_t id, std::string_view name, std::string_view payload,
                 std::uint32_t deadline_ms = 0) {
        frame f = make(frame_kind::request, id, name, payload);
        f.deadline_ms = deadline_ms;
        send(p, f);
    }

    // Outboxes that a few hundred 500-byte messages overflow.
    void small_outboxes(std::uint32_t max_message_bytes = 4096) {
        cfg.max_payload = 1024;
        cfg.max_message_bytes = max_message_bytes;
        cfg.outbox_batch_bytes = 4096;
        cfg.outbox_max_bytes = 16 * 1024;
        rebuild();
    }

    void advance(std::chrono::milliseconds d) {
        const time_point until = now + d;
        while (core->next_deadline() <= until) {
            now = std::max(now, core->next_deadline());
            core->tick(now);
        }
        now = until;
        core->tick(now);
        wake_transports();
    }

    router_config cfg;
    allow_all auth;
    metrics stats;
    std::unique_ptr<deferred_log> log;  // declared before the core, which uses it
    const std::uint32_t epoch = 4242;
    time_point now = time_point{} + 100s;
    std::unique_ptr<router_core> core;
};

// ---------------------------------------------------------------- handshake

TEST_F(RouterCore, HelloIsAnsweredWithAWelcome) {
    peer p = connect();
    hello_body h;
    h.name = "dashboard";
    std::vector<std::uint8_t> body;
    (void)encode_body(h, body);
    frame f = make(frame_kind::hello);
    f.payload = body;
    send(p, f);
    const auto frames = take(p);
    ASSERT_EQ(frames.size(), 1u);
    ASSERT_EQ(frames[0].kind, frame_kind::welcome);
    welcome_body w;
    const std::vector<std::uint8_t> raw(frames[0].payload.begin(), frames[0].payload.end());
    ASSERT_FALSE(decode_body(raw, w));
    EXPECT_EQ(w.version, protocol_version);
    EXPECT_EQ(w.router_id, "r1");
    EXPECT_FALSE(w.session_id.empty());
    EXPECT_EQ(w.heartbeat_ms, 1000u);
    EXPECT_EQ(w.max_payload, cfg.max_payload);
    EXPECT_EQ(w.max_subscriptions, cfg.max_subscriptions);
    EXPECT_GE(p.session->wakes, 1);
}

// PROTOCOL.md section 11 (Several routers): only a backend whose hello had
// follow_cluster hears of the other routers, after its welcome and at every
// change; a router on its own (no list given) sends nothing.
TEST_F(RouterCore, TheClustersRoutersGoToTheBackendsThatFollowIt) {
    const auto hello_with = [&](client_role role, transport_kind t, std::uint8_t flags) {
        peer p = connect(t);
        hello_body h;
        h.role = role;
        std::vector<std::uint8_t> body;
        (void)encode_body(h, body);
        frame f = make(frame_kind::hello);
        f.flags = flags;
        f.payload = body;
        send(p, f);
        return p;
    };
    const auto routers_of = [](const rx& x) {
        routers_body b;
        const std::vector<std::uint8_t> raw(x.payload.begin(), x.payload.end());
        EXPECT_FALSE(decode_body(raw, b));
        std::vector<std::string> out;
        for (const router_endpoint& r : b.routers) out.push_back(std::string(r.id) + "=" + std::string(r.backend));
        return out;
    };
    peer alone = hello_with(client_role::backend, transport_kind::zeromq, frame_flags::follow_cluster);
    EXPECT_TRUE(take(alone, frame_kind::routers).empty()) << "not in a cluster: no list";

    routers_body two{{{"r2", "tcp://10.0.0.2:7071"}, {"r3", "tcp://10.0.0.3:7071"}}};
    core->set_cluster_routers(two);
    wake_transports();
    const auto first = take(alone, frame_kind::routers);
    ASSERT_EQ(first.size(), 1u) << "a follower connected before the list came gets it";
    EXPECT_EQ(routers_of(first[0]), (std::vector<std::string>{"r2=tcp://10.0.0.2:7071", "r3=tcp://10.0.0.3:7071"}));

    peer follower = hello_with(client_role::backend, transport_kind::zeromq, frame_flags::follow_cluster);
    const auto frames = take(follower);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::welcome);
    EXPECT_EQ(frames[1].kind, frame_kind::routers) << "right after its welcome";
    peer plain = hello_with(client_role::backend, transport_kind::zeromq, 0);
    peer frontend = hello_with(client_role::frontend, transport_kind::websocket, frame_flags::follow_cluster);
    EXPECT_TRUE(take(plain, frame_kind::routers).empty());
    EXPECT_TRUE(take(frontend, frame_kind::routers).empty()) << "frontends serve nothing: no list";

    core->set_cluster_routers(two);
    wake_transports();
    EXPECT_TRUE(take(follower, frame_kind::routers).empty()) << "the same list is not sent again";
    core->set_cluster_routers(routers_body{{{"r3", "tcp://10.0.0.3:7071"}}});
    wake_transports();
    const auto changed = take(follower, frame_kind::routers);
    ASSERT_EQ(changed.size(), 1u);
    EXPECT_EQ(routers_of(changed[0]), (std::vector<std::string>{"r3=tcp://10.0.0.3:7071"}));
    EXPECT_TRUE(take(plain, frame_kind::routers).empty());
}

TEST_F(RouterCore, EachConnectionGetsItsOwnAddress) {
    peer a = hello();
    peer b = hello();
    EXPECT_NE(a.address, b.address);
}

TEST_F(RouterCore, AnythingBeforeHelloEndsTheConnection) {
    peer p = connect();
    subscribe(p, 1, "a.b");
    const auto frames = take(p);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::error);
    EXPECT_EQ(frames[0].id, 0u) << "handshake errors are connection errors";
    EXPECT_EQ(frames[0].error(), errc::unexpected_frame);
    EXPECT_EQ(frames[1].kind, frame_kind::goodbye);
    EXPECT_EQ(frames[1].error(), errc::unexpected_frame);
    EXPECT_TRUE(p.closed);
    EXPECT_EQ(core->connection_count(), 0u);
}

TEST_F(RouterCore, NoHelloInTimeIsAHandshakeTimeout) {
    peer p = connect();
    advance(1900ms);
    EXPECT_TRUE(take(p).empty());
    advance(200ms);
    const auto frames = take(p);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].kind, frame_kind::goodbye);
    EXPECT_EQ(frames[0].error(), errc::handshake_timeout);
    EXPECT_TRUE(p.closed);
}

TEST_F(RouterCore, NoCommonVersionIsAVersionMismatch) {
    peer p = connect();
    hello_body h;
    h.min_version = 2;
    h.max_version = 3;
    std::vector<std::uint8_t> body;
    (void)encode_body(h, body);
    frame f = make(frame_kind::hello);
    f.payload = body;
    send(p, f);
    const auto bye = take(p, frame_kind::goodbye);
    ASSERT_EQ(bye.size(), 1u);
    EXPECT_EQ(bye[0].error(), errc::version_mismatch);
}

TEST_F(RouterCore, UndecodableBytesGetAnErrorAndAGoodbyeWithTheCode) {
    peer p = hello();
    const std::vector<std::uint8_t> garbage{1, 0xEE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    core->receive(p.id, garbage, now);
    const auto frames = take(p);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::error);
    EXPECT_EQ(frames[0].error(), errc::unknown_kind);
    EXPECT_EQ(frames[1].kind, frame_kind::goodbye);
    EXPECT_EQ(frames[1].error(), errc::unknown_kind);
    EXPECT_TRUE(p.closed);
}

TEST_F(RouterCore, FramesBeforeABadOneInTheSameBatchAreHandled) {
    peer p = hello();
    std::vector<std::uint8_t> bytes;
    frame ping = make(frame_kind::ping, 7);
    (void)append(bytes, ping);
    bytes.push_back(1);  // a truncated second frame
    bytes.push_back(2);
    core->receive(p.id, bytes, now);
    const auto frames = take(p);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].kind, frame_kind::pong);
    EXPECT_EQ(frames[0].id, 7u);
    EXPECT_EQ(frames[1].error(), errc::trailing_bytes);
}

TEST_F(RouterCore, PayloadOverTheLimitIsFrameTooLarge) {
    cfg.max_payload = 1024;
    rebuild();
    peer p = hello();
    publish(p, "a", std::string(1025, 'x'));
    const auto bye = take(p, frame_kind::goodbye);
    ASSERT_EQ(bye.size(), 1u);
    EXPECT_EQ(bye[0].error(), errc::frame_too_large);
}

TEST_F(RouterCore, FramesOnlyTheRouterSendsAreRefused) {
    peer p = hello();
    send(p, make(frame_kind::message, 3, "a"));
    const auto errors = take(p, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 3u);
    EXPECT_EQ(errors[0].error(), errc::unexpected_frame);
    EXPECT_FALSE(p.closed) << "the connection goes on";
}

TEST_F(RouterCore, PingIsAnsweredWithPong) {
    peer p = hello();
    send(p, make(frame_kind::ping, 99));
    const auto pongs = take(p, frame_kind::pong);
    ASSERT_EQ(pongs.size(), 1u);
    EXPECT_EQ(pongs[0].id, 99u);
}

// ---------------------------------------------------------------- pub/sub

TEST_F(RouterCore, PublishReachesMatchingSubscribersWithSequenceNumbers) {
    peer sub = hello();
    peer other = hello();
    peer pub = hello();
    subscribe(sub, 1, "factory.*.temp");
    subscribe(other, 1, "factory.line1.pressure");
    auto acks = take(sub, frame_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].id, 1u);
    EXPECT_EQ(acks[0].epoch, epoch);
    take(other);

    publish(pub, "factory.line1.temp", "20.5", 11);
    publish(pub, "factory.line2.temp", "21.0");
    publish(pub, "factory.line1.temp", "20.7");

    const auto got = take(sub, frame_kind::message);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].name, "factory.line1.temp");
    EXPECT_EQ(got[0].payload, "20.5");
    EXPECT_EQ(got[0].epoch, epoch);
    EXPECT_EQ(got[0].seq, 1u);
    EXPECT_EQ(got[1].name, "factory.line2.temp");
    EXPECT_EQ(got[1].seq, 1u) << "sequence numbers are per channel";
    EXPECT_EQ(got[2].seq, 2u);
    EXPECT_TRUE(take(other, frame_kind::message).empty());

    const auto pub_acks = take(pub, frame_kind::ack);
    ASSERT_EQ(pub_acks.size(), 1u) << "only the publish that asked is acknowledged";
    EXPECT_EQ(pub_acks[0].id, 11u);
    EXPECT_EQ(pub_acks[0].epoch, epoch);
    EXPECT_EQ(pub_acks[0].seq, 1u);
    EXPECT_EQ(stats.published.load(), 3u);
}

TEST_F(RouterCore, FanOutSharesOneEncodedBuffer) {
    peer a = hello();
    peer b = hello();
    peer pub = hello();
    subscribe(a, 1, "x");
    subscribe(b, 1, "x");
    take(a);
    take(b);
    publish(pub, "x", "payload");
    outbox_batch ba;
    outbox_batch bb;
    a.out->take(ba);
    b.out->take(bb);
    ASSERT_EQ(ba.spans.size(), 1u);
    ASSERT_EQ(bb.spans.size(), 1u);
    EXPECT_EQ(ba.frames, 1u);
    EXPECT_EQ(ba.spans[0].get(), bb.spans[0].get()) << "the same bytes, not a copy";
}

TEST_F(RouterCore, OrderPerPublisherAndChannelHoldsAcrossBatches) {
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, "ordered");
    take(sub);
    for (int batch = 0; batch < 10; ++batch) {
        std::vector<std::string> payloads;
        for (int i = 0; i < 10; ++i) payloads.push_back(std::to_string(batch * 10 + i));
        std::vector<frame> frames;
        for (const std::string& p : payloads) frames.push_back(make(frame_kind::publish, 0, "ordered", p));
        send(pub, frames);
    }
    const auto got = take(sub, frame_kind::message);
    ASSERT_EQ(got.size(), 100u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].payload, std::to_string(i));
        EXPECT_EQ(got[i].seq, i + 1);
    }
}

TEST_F(RouterCore, ABatchWakesEachTransportOnceAndOnlyThroughTheHost) {
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, "woken");
    take(sub);
    const int wakes_before = sub.session->wakes;
    std::vector<frame> frames;
    for (int i = 0; i < 5; ++i) frames.push_back(make(frame_kind::publish, 0, "woken", "m"));
    core->receive(pub.id, batch_of(frames), now);
    EXPECT_EQ(sub.session->wakes, wakes_before) << "the core never calls a transport itself";

    router_core::wake_list wakes;
    core->take_wakes(wakes);
    const auto for_sub = std::count_if(wakes.begin(), wakes.end(), [&](const std::weak_ptr<link>& w) {
        return w.lock() == std::static_pointer_cast<link>(sub.session);
    });
    EXPECT_EQ(for_sub, 1) << "one wake-up for the whole batch";
    EXPECT_EQ(take(sub, frame_kind::message).size(), 5u);
    wakes.clear();
    core->take_wakes(wakes);
    EXPECT_TRUE(wakes.empty()) << "taken once";
}

// The core keeps the route of the last channel published to; every change
// to who subscribes (or to the channels) must reach the next publish.
TEST_F(RouterCore, RepeatedPublishesToOneChannelFollowEverySubscriptionChange) {
    peer first = hello();
    peer second = hello();
    peer pub = hello();
    subscribe(first, 1, "line.temp");
    take(first);
    publish(pub, "line.temp", "1");
    EXPECT_EQ(take(first, frame_kind::message).size(), 1u);

    subscribe(second, 1, "line.>");  // a wildcard that matches the kept channel
    take(second);
    publish(pub, "line.temp", "2");
    EXPECT_EQ(take(first, frame_kind::message).size(), 1u);
    EXPECT_EQ(take(second, frame_kind::message).size(), 1u) << "a new subscriber is seen at once";

    send(first, make(frame_kind::unsubscribe, 2, "line.temp"));
    take(first);
    publish(pub, "line.temp", "3");
    EXPECT_TRUE(take(first, frame_kind::message).empty()) << "an unsubscribe is seen at once";
    EXPECT_EQ(take(second, frame_kind::message).size(), 1u);

    // Within one batch: the publisher subscribes between two publishes.
    send(pub, {make(frame_kind::publish, 0, "line.temp", "4"), make(frame_kind::subscribe, 7, "line.temp"),
               make(frame_kind::publish, 0, "line.temp", "5")});
    const auto own = take(pub, frame_kind::message);
    ASSERT_EQ(own.size(), 1u);
    EXPECT_EQ(own[0].payload, "5");
    EXPECT_EQ(take(second, frame_kind::message).size(), 2u);

    // A subscriber that goes away: the next publishes must not reach for it
    // (under ASan, a kept pointer to its record would show here).
    send(second, make(frame_kind::goodbye));
    publish(pub, "line.temp", "6");
    publish(pub, "line.temp", "7");
    const auto last = take(pub, frame_kind::message);
    ASSERT_EQ(last.size(), 2u);
    EXPECT_EQ(last[1].seq, 7u) << "one sequence for the channel throughout";
}

// Messages along one route are handed to the outboxes a run at a time;
// everything else a connection gets must keep its place among them.
TEST_F(RouterCore, WithinABatchEveryConnectionGetsItsFramesInOrder) {
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, "t");
    subscribe(pub, 1, "t");
    take(sub);
    take(pub);
    frame acked = make(frame_kind::publish, 21, "t", "2");
    acked.flags = frame_flags::ack_requested;
    send(pub, {make(frame_kind::publish, 0, "t", "1"), acked, make(frame_kind::publish, 22, "bad..name", "x"),
               make(frame_kind::publish, 0, "t", "3"), make(frame_kind::ping, 23),
               make(frame_kind::publish, 0, "other", "4"), make(frame_kind::publish, 0, "t", "5")});
    std::vector<std::string> seen;
    for (const rx& x : take(pub)) {
        if (x.kind == frame_kind::message) seen.push_back(x.payload);
        if (x.kind == frame_kind::ack) seen.push_back("ack" + std::to_string(x.id));
        if (x.kind == frame_kind::error) seen.push_back("error" + std::to_string(x.id));
        if (x.kind == frame_kind::pong) seen.push_back("pong" + std::to_string(x.id));
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"1", "ack21", "2", "error22", "3", "pong23", "5"}));
    const auto got = take(sub, frame_kind::message);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[3].payload, "5");
    EXPECT_EQ(got[3].seq, 4u);
    EXPECT_EQ(stats.delivered.load(), 8u);
}

TEST_F(RouterCore, ASlowSubscriberInsideOneBatchIsTreatedAsAcrossBatches) {
    small_outboxes(1 << 20);  // the whole batch is one transport message
    peer dropping = hello();
    peer leaving = hello();
    peer pub = hello();
    subscribe(dropping, 1, "t");
    subscribe(leaving, 1, "t", policy_flags(slow_policy::disconnect));
    take(dropping);
    take(leaving);
    std::vector<frame> frames;
    const std::string payload(500, 'p');
    for (int i = 0; i < 100; ++i) frames.push_back(make(frame_kind::publish, 0, "t", payload));
    send(pub, frames);

    const auto kept = take(dropping);
    ASSERT_FALSE(kept.empty());
    EXPECT_EQ(kept[0].kind, frame_kind::gap);
    EXPECT_EQ(kept[0].seq, 1u);
    EXPECT_EQ(kept[0].count + kept.size() - 1, 100u) << "every message is delivered or counted";
    EXPECT_EQ(kept.back().seq, 100u);
    EXPECT_FALSE(dropping.closed);

    const auto last = take(leaving);
    ASSERT_FALSE(last.empty());
    EXPECT_EQ(last.back().kind, frame_kind::goodbye);
    EXPECT_EQ(last.back().error(), errc::slow_consumer);
    EXPECT_TRUE(leaving.closed);
    EXPECT_EQ(stats.of(transport_kind::websocket).slow_consumer_closes.load(), 1u);

    publish(pub, "t", "after");  // the route is built again without the one that left
    EXPECT_EQ(take(dropping, frame_kind::message).size(), 1u);
}

TEST_F(RouterCore, AForgottenChannelStartsAgainWithANewEpoch) {
    cfg.max_channels = 1;
    rebuild();
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, ">");
    take(sub);
    publish(pub, "a", "1");
    publish(pub, "a", "2");
    publish(pub, "b", "1");  // forgets "a"
    publish(pub, "a", "3");
    const auto got = take(sub, frame_kind::message);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[1].seq, 2u);
    EXPECT_EQ(got[3].name, "a");
    EXPECT_EQ(got[3].seq, 1u) << "the channel was created again";
    EXPECT_NE(got[3].epoch, got[0].epoch);
}

TEST_F(RouterCore, OverlappingSubscriptionsDeliverOnce) {
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, "a.b");
    subscribe(sub, 2, "a.*");
    subscribe(sub, 3, ">");
    take(sub);
    publish(pub, "a.b", "once");
    EXPECT_EQ(take(sub, frame_kind::message).size(), 1u);
}

TEST_F(RouterCore, PublisherSeesItsOwnMessages) {
    peer p = hello();
    subscribe(p, 1, "echo");
    publish(p, "echo", "hi");
    EXPECT_EQ(take(p, frame_kind::message).size(), 1u);
}

TEST_F(RouterCore, UnsubscribeStopsDelivery) {
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, "a");
    send(sub, make(frame_kind::unsubscribe, 2, "a"));
    const auto acks = take(sub, frame_kind::ack);
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks[1].id, 2u);
    publish(pub, "a", "x");
    EXPECT_TRUE(take(sub, frame_kind::message).empty());
    send(sub, make(frame_kind::unsubscribe, 3, "a"));
    const auto errors = take(sub, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].error(), errc::not_subscribed);
}

TEST_F(RouterCore, InvalidNamesAreRefused) {
    peer p = hello();
    subscribe(p, 1, "a..b");
    publish(p, "a.*", "x", 2);
    publish(p, "", "x", 3);
    const auto errors = take(p, frame_kind::error);
    ASSERT_EQ(errors.size(), 3u);
    for (const rx& e : errors) EXPECT_EQ(e.error(), errc::invalid_name);
    EXPECT_EQ(errors[1].id, 2u);
}

TEST_F(RouterCore, SubscriptionLimitPerConnection) {
    cfg.max_subscriptions = 2;
    rebuild();
    peer p = hello();
    subscribe(p, 1, "a");
    subscribe(p, 2, "b");
    subscribe(p, 3, "a");  // again: not a new one
    subscribe(p, 4, "c");
    const auto frames = take(p);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[2].kind, frame_kind::ack);
    EXPECT_EQ(frames[3].kind, frame_kind::error);
    EXPECT_EQ(frames[3].error(), errc::too_many_subscriptions);
}

TEST_F(RouterCore, ResumeReplaysFromHistoryWithTheReplayedFlag) {
    peer pub = hello();
    for (int i = 1; i <= 3; ++i) publish(pub, "h", std::to_string(i));
    peer sub = hello();
    frame f = make(frame_kind::subscribe, 1, "h");
    f.flags = frame_flags::since;
    f.epoch = epoch;
    f.seq = 1;
    send(sub, f);
    publish(pub, "h", "4");
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].seq, 3u) << "the ack says where the channel is";
    EXPECT_EQ(frames[1].seq, 2u);
    EXPECT_TRUE(frames[1].flags & frame_flags::replayed);
    EXPECT_EQ(frames[2].seq, 3u);
    EXPECT_EQ(frames[3].seq, 4u);
    EXPECT_FALSE(frames[3].flags & frame_flags::replayed) << "live again";
}

// PROTOCOL.md 11.1: a since at or past the channel's end replays nothing
// and the ack names the real position; a since from another epoch gets the
// whole history.
TEST_F(RouterCore, ResumePastTheEndOrFromAnotherEpoch) {
    peer pub = hello();
    for (int i = 1; i <= 3; ++i) publish(pub, "h", std::to_string(i));
    peer ahead = hello();
    frame f = make(frame_kind::subscribe, 1, "h");
    f.flags = frame_flags::since;
    f.epoch = epoch;
    f.seq = 9;
    send(ahead, f);
    auto frames = take(ahead);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].epoch, epoch);
    EXPECT_EQ(frames[0].seq, 3u) << "the channel's real position";

    peer elsewhere = hello();
    f.epoch = epoch + 1;
    f.seq = 2;
    send(elsewhere, f);
    frames = take(elsewhere);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    for (std::size_t i = 1; i < 4; ++i) {
        EXPECT_EQ(frames[i].seq, i) << "the whole history";
        EXPECT_TRUE(frames[i].flags & frame_flags::replayed);
        EXPECT_EQ(frames[i].epoch, epoch);
    }
}

// A second subscribe of the same pattern is not an error: acked, the policy
// replaced, and still one delivery per message.
TEST_F(RouterCore, ARepeatedSubscribeIsAckedAndReplacesThePolicy) {
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, "a.b", policy_flags(slow_policy::drop_oldest));
    subscribe(sub, 2, "a.b", policy_flags(slow_policy::keep_latest));
    const auto acks = take(sub, frame_kind::ack);
    ASSERT_EQ(acks.size(), 2u);
    EXPECT_EQ(acks[1].id, 2u);
    publish(pub, "a.b", "once");
    EXPECT_EQ(take(sub, frame_kind::message).size(), 1u);
    const auto view = nlohmann::json::parse(core->status_json(now));
    for (const auto& c : view["connections"])
        if (!c["subscriptions"].empty()) EXPECT_EQ(c["subscriptions"][0]["policy"], "keep_latest") << c.dump();
}

TEST_F(RouterCore, ResumeBeyondHistorySignalsTheGapFirst) {
    peer pub = hello();
    for (int i = 1; i <= 10; ++i) publish(pub, "h", std::to_string(i));  // history keeps 7..10
    peer sub = hello();
    frame f = make(frame_kind::subscribe, 1, "h");
    f.flags = frame_flags::since;
    f.epoch = epoch;
    f.seq = 2;
    send(sub, f);
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 6u);
    EXPECT_EQ(frames[1].kind, frame_kind::gap);
    EXPECT_EQ(frames[1].seq, 3u);
    EXPECT_EQ(frames[1].count, 4u);
    EXPECT_EQ(frames[2].seq, 7u);
    EXPECT_EQ(frames[5].seq, 10u);
}

TEST_F(RouterCore, ResumeNeedsAChannelNotAPattern) {
    peer sub = hello();
    frame f = make(frame_kind::subscribe, 1, "h.*");
    f.flags = frame_flags::since;
    send(sub, f);
    const auto errors = take(sub, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].error(), errc::protocol_violation);
}

// A log whose history comes later (a remote one): the resuming subscriber
// is subscribed at once, but what goes live meanwhile waits for the
// history; then ack, history, and the live ones, in seq order, each once.
TEST_F(RouterCore, AResumeWhoseHistoryComesLaterGetsTheLivePublicationsAfterIt) {
    deferred_log& d = rebuild_deferred();
    peer pub = hello();
    peer other = hello();
    subscribe(other, 1, "h");
    for (int i = 1; i <= 3; ++i) publish(pub, "h", std::to_string(i));
    core->log_answer([&] { d.release_appends(); }, now);
    peer sub = hello();
    frame f = make(frame_kind::subscribe, 7, "h");
    f.flags = frame_flags::since;
    f.epoch = epoch;
    f.seq = 1;
    send(sub, f);
    core->log_answer([&] { d.read_now(); }, now);  // the history is 2..3: read before 4 and 5 went out
    publish(pub, "h", "4");
    publish(pub, "h", "5");
    core->log_answer([&] { d.release_appends(); }, now);
    wake_transports();
    EXPECT_TRUE(take(sub).empty()) << "nothing before the history";
    EXPECT_EQ(take(other, frame_kind::message).size(), 5u) << "the others are not held up";

    core->log_answer([&] { d.answer_reads(); }, now);
    wake_transports();
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 5u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].id, 7u);
    EXPECT_EQ(frames[0].seq, 3u) << "where the channel was when the history was read";
    for (std::size_t i = 1; i < frames.size(); ++i) {
        EXPECT_EQ(frames[i].kind, frame_kind::message);
        EXPECT_EQ(frames[i].seq, i + 1);
        EXPECT_EQ(frames[i].payload, std::to_string(i + 1));
        EXPECT_EQ((frames[i].flags & frame_flags::replayed) != 0, i < 3) << "2 and 3 from history, 4 and 5 live";
    }
    publish(pub, "h", "6");
    core->log_answer([&] { d.release_appends(); }, now);
    wake_transports();
    const auto live = take(sub, frame_kind::message);
    ASSERT_EQ(live.size(), 1u) << "not held any more";
    EXPECT_EQ(live[0].seq, 6u);
}

TEST_F(RouterCore, ALateHistoryThatHoldsTheLivePublicationsAlreadyDeliversEachOnce) {
    deferred_log& d = rebuild_deferred();
    peer pub = hello();
    publish(pub, "h", "1");
    core->log_answer([&] { d.release_appends(); }, now);
    peer sub = hello();
    frame f = make(frame_kind::subscribe, 7, "h");
    f.flags = frame_flags::since;
    f.epoch = epoch;
    f.seq = 1;
    send(sub, f);
    publish(pub, "h", "2");
    publish(pub, "h", "3");
    core->log_answer([&] { d.release_appends(); }, now);
    core->log_answer([&] { d.read_now(); }, now);  // read after 2 and 3 were appended: the history has them
    core->log_answer([&] { d.answer_reads(); }, now);
    wake_transports();
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[1].seq, 2u);
    EXPECT_EQ(frames[2].seq, 3u);
    EXPECT_EQ(d.pending_reads(), 0u);
}

// A resume the log cannot answer fails by name; the subscription ends and
// its held publications go nowhere; the client may subscribe again.
TEST_F(RouterCore, AResumeTheLogCannotAnswerFailsTheSubscribeByName) {
    deferred_log& d = rebuild_deferred();
    peer pub = hello();
    peer sub = hello();
    frame f = make(frame_kind::subscribe, 7, "h");
    f.flags = frame_flags::since;
    f.epoch = epoch;
    send(sub, f);
    publish(pub, "h", "1");
    core->log_answer([&] { d.release_appends(); }, now);
    core->log_answer([&] { d.fail_reads(errc::cluster_unavailable); }, now);
    wake_transports();
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].kind, frame_kind::error);
    EXPECT_EQ(frames[0].id, 7u);
    EXPECT_EQ(frames[0].error(), errc::cluster_unavailable);
    publish(pub, "h", "2");
    core->log_answer([&] { d.release_appends(); }, now);
    EXPECT_TRUE(take(sub).empty()) << "the subscription ended";
    EXPECT_EQ(d.interest_changes().back(), std::make_pair(std::string("h"), interest_change::last_left));
    subscribe(sub, 8, "h");
    EXPECT_EQ(take(sub, frame_kind::ack).size(), 1u) << "and may be made again";
}

// A log that does not know a channel's position here (a remote one) reads
// it for a plain subscribe: the ack carries the channel's position, and what
// was published meanwhile follows it, each once.
TEST_F(RouterCore, APlainSubscribeOnARemoteLogIsAckedWithTheChannelsPositionThenTheLiveOnes) {
    deferred_log& d = rebuild_deferred();
    d.forget_positions();
    peer pub = hello();
    for (int i = 1; i <= 3; ++i) publish(pub, "h", std::to_string(i));
    core->log_answer([&] { d.release_appends(); }, now);
    peer sub = hello();
    subscribe(sub, 7, "h");
    EXPECT_TRUE(take(sub).empty()) << "no ack before the position is read";
    core->log_answer([&] { d.read_now(); }, now);  // the channel is at 3
    publish(pub, "h", "4");
    core->log_answer([&] { d.release_appends(); }, now);
    EXPECT_TRUE(take(sub).empty()) << "4 waits for the ack";
    core->log_answer([&] { d.answer_reads(); }, now);
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].id, 7u);
    EXPECT_EQ(frames[0].epoch, epoch);
    EXPECT_EQ(frames[0].seq, 3u) << "the channel's position, not what this router saw";
    EXPECT_EQ(frames[1].seq, 4u);
    EXPECT_FALSE(frames[1].flags & frame_flags::replayed) << "live";
}

// Two-phase publish: the ack (and the fan-out) come when the log placed
// the publication, and a log that cannot place it fails it by name.
TEST_F(RouterCore, APublishIsAckedWhenTheLogPlacedItAndFailedWhenItCannot) {
    deferred_log& d = rebuild_deferred();
    peer pub = hello();
    peer sub = hello();
    subscribe(sub, 1, "h");
    publish(pub, "h", "x", 9);
    wake_transports();
    EXPECT_TRUE(take(pub).empty()) << "no ack before the log answered";
    EXPECT_TRUE(take(sub, frame_kind::message).empty());
    core->log_answer([&] { d.release_appends(); }, now);
    wake_transports();
    const auto acks = take(pub, frame_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].id, 9u);
    EXPECT_EQ(acks[0].seq, 1u);
    EXPECT_EQ(take(sub, frame_kind::message).size(), 1u);

    publish(pub, "h", "y", 10);
    core->log_answer([&] { d.release_appends(errc::going_away); }, now);
    wake_transports();
    const auto errors = take(pub, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 10u);
    EXPECT_EQ(errors[0].error(), errc::going_away);
    EXPECT_TRUE(take(sub, frame_kind::message).empty()) << "never an ack or a message for what went nowhere";
}

// The log hears when a pattern gets its first local subscriber and loses
// its last, whichever way the last one goes.
TEST_F(RouterCore, ThePatternsFirstSubscriberAndItsLastReachTheLog) {
    deferred_log& d = rebuild_deferred();
    peer a = hello();
    peer b = hello();
    subscribe(a, 1, "a.*");
    subscribe(b, 1, "a.*");
    subscribe(b, 2, "a.b");
    send(a, make(frame_kind::unsubscribe, 3, "a.*"));
    core->closed(b.id, now);
    using change = std::pair<std::string, interest_change>;
    EXPECT_EQ(d.interest_changes(), (std::vector<change>{{"a.*", interest_change::first_subscriber},
                                                        {"a.b", interest_change::first_subscriber},
                                                        {"a.*", interest_change::last_left},
                                                        {"a.b", interest_change::last_left}}));
}

// ---------------------------------------------------------------- requests

TEST_F(RouterCore, RequestGoesToTheBackendAndTheResponseComesBack) {
    peer b = backend("orders", {{"get", method_kind::unary}});
    peer c = hello();
    request(c, 7, "orders/get", "{\"id\":1}", 2000);
    const auto in = take(b, frame_kind::request);
    ASSERT_EQ(in.size(), 1u);
    EXPECT_EQ(in[0].name, "orders/get");
    EXPECT_EQ(in[0].payload, "{\"id\":1}");
    EXPECT_EQ(in[0].deadline_ms, 2000u);
    EXPECT_NE(in[0].id & 0x80000000u, 0u) << "router ids towards backends have bit 31 set";

    send(b, make(frame_kind::response, in[0].id, {}, "ok"));
    const auto out = take(c, frame_kind::response);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].id, 7u) << "the caller's id";
    EXPECT_EQ(out[0].payload, "ok");
}

TEST_F(RouterCore, NamedErrorsForServicesThatCannotAnswer) {
    peer c = hello();
    request(c, 1, "nobody/home", "");
    request(c, 2, "not-a-service-name", "");
    {
        peer b = backend("orders", {{"get", method_kind::unary}});
        request(c, 3, "orders/put", "");
        core->closed(b.id, now);
    }
    request(c, 4, "orders/get", "");
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 4u);
    EXPECT_EQ(errors[0].error(), errc::no_such_service);
    EXPECT_EQ(errors[1].error(), errc::invalid_name);
    EXPECT_EQ(errors[2].error(), errc::no_such_service);
    EXPECT_EQ(errors[3].id, 4u);
    EXPECT_EQ(errors[3].error(), errc::no_instance_available);
}

TEST_F(RouterCore, TheRouterEnforcesTheDeadline) {
    peer b = backend("slow", {{"op", method_kind::unary}});
    peer c = hello();
    request(c, 5, "slow/op", "", 300);
    const auto in = take(b, frame_kind::request);
    ASSERT_EQ(in.size(), 1u);
    advance(299ms);
    EXPECT_TRUE(take(c, frame_kind::error).empty());
    advance(2ms);
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 5u);
    EXPECT_EQ(errors[0].error(), errc::deadline_exceeded);
    const auto cancels = take(b, frame_kind::cancel);
    ASSERT_EQ(cancels.size(), 1u);
    EXPECT_EQ(cancels[0].id, in[0].id);
    // A late answer reaches nobody.
    send(b, make(frame_kind::response, in[0].id, {}, "late"));
    EXPECT_TRUE(take(c, frame_kind::response).empty());
}

// A bare cancel could not be told from the caller's: a cancel from the
// router says why in its payload, the caller's own carries none.
TEST_F(RouterCore, ABackendIsToldWhyTheRouterEndedACall) {
    peer b = backend("slow", {{"op", method_kind::unary}});
    peer c = hello();
    request(c, 5, "slow/op", "", 300);
    request(c, 6, "slow/op", "", 60000);
    const auto in = take(b, frame_kind::request);
    ASSERT_EQ(in.size(), 2u);
    advance(301ms);
    send(c, make(frame_kind::cancel, 6));
    const auto cancels = take(b, frame_kind::cancel);
    ASSERT_EQ(cancels.size(), 2u);
    EXPECT_EQ(cancels[0].id, in[0].id);
    ASSERT_EQ(cancels[0].payload.size(), cancel_reason_size);
    frame deadline;
    deadline.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(cancels[0].payload.data()), cancel_reason_size);
    EXPECT_EQ(cancel_reason(deadline), static_cast<std::uint16_t>(errc::deadline_exceeded));
    EXPECT_EQ(cancels[1].id, in[1].id);
    EXPECT_TRUE(cancels[1].payload.empty()) << "the caller's cancel";
}

// Every refused hello is answered the same way: an error with id 0, then a
// goodbye with the same code.
TEST_F(RouterCore, EveryRefusedHelloGetsAnErrorWithIdZeroThenAGoodbye) {
    const auto expect_refused = [&](peer& p, errc code) {
        const auto frames = take(p);
        ASSERT_EQ(frames.size(), 2u) << errc_name(static_cast<std::uint16_t>(code));
        EXPECT_EQ(frames[0].kind, frame_kind::error);
        EXPECT_EQ(frames[0].id, 0u);
        EXPECT_EQ(frames[0].error(), code);
        EXPECT_EQ(frames[1].kind, frame_kind::goodbye);
        EXPECT_EQ(frames[1].error(), code);
    };
    hello_body h;
    h.min_version = 2;
    h.max_version = 3;
    std::vector<std::uint8_t> body;
    (void)encode_body(h, body);
    frame f = make(frame_kind::hello, 9);
    f.payload = body;
    peer old = connect();
    send(old, f);
    expect_refused(old, errc::version_mismatch);

    peer garbled = connect();
    send(garbled, make(frame_kind::hello, 9, {}, "\x01"));
    expect_refused(garbled, errc::malformed_body);

    // A call in flight keeps the drain going, and its connections open.
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "", 60000);
    peer early = connect();
    core->begin_drain(now);
    ASSERT_FALSE(core->drained());
    h.min_version = h.max_version = 1;
    body.clear();
    (void)encode_body(h, body);
    f.payload = body;
    send(early, f);
    expect_refused(early, errc::going_away);
}

TEST_F(RouterCore, ADrainSendsEachTransportWhereItCanFollow) {
    cfg.drain_redirect_url = "ws://elsewhere:7070/ws";
    cfg.drain_redirect_backend = "tcp://elsewhere:7071";
    rebuild();
    peer f = hello();
    peer b = hello(client_role::backend, transport_kind::zeromq);
    core->begin_drain(now);
    const auto to_frontend = take(f);
    ASSERT_EQ(to_frontend.size(), 1u);
    EXPECT_EQ(to_frontend[0].kind, frame_kind::redirect);
    EXPECT_EQ(to_frontend[0].payload, "ws://elsewhere:7070/ws");
    const auto to_backend = take(b);
    ASSERT_EQ(to_backend.size(), 1u);
    EXPECT_EQ(to_backend[0].kind, frame_kind::redirect);
    EXPECT_EQ(to_backend[0].payload, "tcp://elsewhere:7071");

    cfg.drain_redirect_backend.clear();
    rebuild();
    peer b2 = hello(client_role::backend, transport_kind::zeromq);
    core->begin_drain(now);
    const auto bye = take(b2);
    ASSERT_EQ(bye.size(), 1u);
    EXPECT_EQ(bye[0].kind, frame_kind::goodbye) << "no backend target: a goodbye, never a ws:// URL";
}

TEST_F(RouterCore, DeadlinesAreCappedByTheConfiguration) {
    cfg.max_deadline_ms = 1000;
    cfg.default_deadline_ms = 500;
    rebuild();
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "", 60000);
    request(c, 2, "s/m", "", 0);
    const auto in = take(b, frame_kind::request);
    ASSERT_EQ(in.size(), 2u);
    EXPECT_EQ(in[0].deadline_ms, 1000u);
    EXPECT_EQ(in[1].deadline_ms, 500u) << "no deadline: the default";
}

TEST_F(RouterCore, ABackendThatGoesAwayFailsItsCallsAtOnce) {
    peer b = backend("s", {{"m", method_kind::unary}, {"watch", method_kind::stream}});
    peer c = hello();
    request(c, 1, "s/m", "");
    frame open = make(frame_kind::stream_open, 2, "s/watch");
    open.credit = 5;
    send(c, open);
    core->closed(b.id, now);
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 2u);
    for (const rx& e : errors) EXPECT_EQ(e.error(), errc::backend_gone);
}

TEST_F(RouterCore, ACallerThatGoesAwayCancelsItsCalls) {
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "");
    const auto in = take(b, frame_kind::request);
    core->closed(c.id, now);
    const auto cancels = take(b, frame_kind::cancel);
    ASSERT_EQ(cancels.size(), 1u);
    EXPECT_EQ(cancels[0].id, in[0].id);
}

TEST_F(RouterCore, BackendErrorsReachTheCallerWithTheirCode) {
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 9, "s/m", "");
    const auto in = take(b, frame_kind::request);
    frame e = make(frame_kind::error, in[0].id, {}, "boom");
    e.code = static_cast<std::uint16_t>(errc::handler_failed);
    send(b, e);
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 9u);
    EXPECT_EQ(errors[0].error(), errc::handler_failed);
    EXPECT_EQ(errors[0].payload, "boom");
}

TEST_F(RouterCore, RequestsAreSpreadOverInstances) {
    peer b1 = backend("s", {{"m", method_kind::unary}});
    peer b2 = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    for (std::uint32_t i = 1; i <= 10; ++i) request(c, i, "s/m", "");
    EXPECT_EQ(take(b1, frame_kind::request).size(), 5u);
    EXPECT_EQ(take(b2, frame_kind::request).size(), 5u);
}

TEST_F(RouterCore, DuplicateCallIdsAreRefused) {
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "");
    request(c, 1, "s/m", "");
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].error(), errc::duplicate_id);
    EXPECT_EQ(take(b, frame_kind::request).size(), 1u);
}

// PROTOCOL.md 11.1: the duplicate fails alone; the call in flight goes on.
TEST_F(RouterCore, ADuplicateIdLeavesTheCallInFlightAlone) {
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "first");
    request(c, 1, "s/m", "second");
    const auto in = take(b, frame_kind::request);
    ASSERT_EQ(in.size(), 1u);
    EXPECT_EQ(in[0].payload, "first");
    EXPECT_EQ(take(c, frame_kind::error).at(0).error(), errc::duplicate_id);
    send(b, make(frame_kind::response, in[0].id, {}, "answer"));
    const auto answers = take(c, frame_kind::response);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].id, 1u);
    EXPECT_EQ(answers[0].payload, "answer");
}

TEST_F(RouterCore, PendingCallsPerConnectionAreLimited) {
    cfg.max_pending_requests = 2;
    rebuild();
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    for (std::uint32_t i = 1; i <= 3; ++i) request(c, i, "s/m", "");
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 3u);
    EXPECT_EQ(errors[0].error(), errc::too_many_pending_requests);
}

TEST_F(RouterCore, OnlyBackendsRegisterAndAnswer) {
    peer f = hello();
    register_body body;
    body.methods = {{"m", method_kind::unary}};
    std::vector<std::uint8_t> bytes;
    (void)encode_body(body, bytes);
    frame reg = make(frame_kind::register_service, 1, "s");
    reg.payload = bytes;
    send(f, reg);
    send(f, make(frame_kind::response, 2));
    const auto errors = take(f, frame_kind::error);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].id, 1u);
    EXPECT_EQ(errors[0].error(), errc::unexpected_frame);
    EXPECT_EQ(errors[1].error(), errc::unexpected_frame);
    EXPECT_FALSE(f.closed);
}

TEST_F(RouterCore, ABackendMayAlsoCallAndSubscribe) {
    peer b = backend("s", {{"m", method_kind::unary}});
    peer b2 = hello(client_role::backend, transport_kind::zeromq);
    request(b2, 1, "s/m", "");
    const auto in = take(b, frame_kind::request);
    ASSERT_EQ(in.size(), 1u);
    send(b, make(frame_kind::response, in[0].id, {}, "r"));
    EXPECT_EQ(take(b2, frame_kind::response).size(), 1u);
    subscribe(b2, 2, "events");
    peer f = hello();
    publish(f, "events", "e");
    EXPECT_EQ(take(b2, frame_kind::message).size(), 1u);
}

// ---------------------------------------------------------------- streams

TEST_F(RouterCore, StreamsForwardItemsWithinCreditAndEnd) {
    peer b = backend("feed", {{"watch", method_kind::stream}});
    peer c = hello();
    frame open = make(frame_kind::stream_open, 3, "feed/watch", "q");
    open.credit = 2;
    send(c, open);
    const auto opened = take(b, frame_kind::stream_open);
    ASSERT_EQ(opened.size(), 1u);
    EXPECT_EQ(opened[0].credit, 2u);
    const std::uint32_t sid = opened[0].id;

    send(b, {make(frame_kind::stream_item, sid, {}, "1"), make(frame_kind::stream_item, sid, {}, "2")});
    auto items = take(c, frame_kind::stream_item);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].id, 3u);

    frame more = make(frame_kind::stream_credit, 3);
    more.credit = 1;
    send(c, more);
    const auto credits = take(b, frame_kind::stream_credit);
    ASSERT_EQ(credits.size(), 1u);
    EXPECT_EQ(credits[0].id, sid);
    EXPECT_EQ(credits[0].credit, 1u);

    send(b, {make(frame_kind::stream_item, sid, {}, "3"), make(frame_kind::stream_end, sid)});
    const auto frames = take(c);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].payload, "3");
    EXPECT_EQ(frames[1].kind, frame_kind::stream_end);
    EXPECT_EQ(frames[1].id, 3u);
}

TEST_F(RouterCore, ABackendThatExceedsTheCreditIsStopped) {
    peer b = backend("feed", {{"watch", method_kind::stream}});
    peer c = hello();
    frame open = make(frame_kind::stream_open, 3, "feed/watch");
    open.credit = 1;
    send(c, open);
    const std::uint32_t sid = take(b, frame_kind::stream_open).at(0).id;
    send(b, {make(frame_kind::stream_item, sid, {}, "1"), make(frame_kind::stream_item, sid, {}, "2")});
    const auto frames = take(c);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::stream_item);
    EXPECT_EQ(frames[1].kind, frame_kind::error);
    EXPECT_EQ(frames[1].error(), errc::handler_failed);
    const auto to_backend = take(b);
    ASSERT_EQ(to_backend.size(), 2u);
    EXPECT_EQ(to_backend[0].error(), errc::protocol_violation);
    EXPECT_EQ(to_backend[1].kind, frame_kind::cancel);
}

TEST_F(RouterCore, CancelWorksInBothDirections) {
    peer b = backend("feed", {{"watch", method_kind::stream}});
    peer c = hello();
    frame open = make(frame_kind::stream_open, 1, "feed/watch");
    open.credit = 10;
    send(c, open);
    open.id = 2;
    send(c, open);
    const auto opened = take(b, frame_kind::stream_open);
    ASSERT_EQ(opened.size(), 2u);

    send(c, make(frame_kind::cancel, 1));
    const auto cancels = take(b, frame_kind::cancel);
    ASSERT_EQ(cancels.size(), 1u);
    EXPECT_EQ(cancels[0].id, opened[0].id);

    send(b, make(frame_kind::cancel, opened[1].id));
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 2u);
    EXPECT_EQ(errors[0].error(), errc::cancelled);
}

TEST_F(RouterCore, CreditForAnUnknownStreamIsNoSuchStream) {
    peer c = hello();
    frame more = make(frame_kind::stream_credit, 42);
    more.credit = 1;
    send(c, more);
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].error(), errc::no_such_stream);
}

// ---------------------------------------------------------------- addressing and discovery

// Ids are scoped to their connection: the receiver's copy carries id 0 (the
// golden vector direct_delivered), never the sender's correlation id.
TEST_F(RouterCore, ADeliveredDirectMessageCarriesNoCorrelationId) {
    peer a = hello();
    peer b = hello();
    frame acked = make(frame_kind::direct, 4242, b.address, "psst");
    acked.flags = frame_flags::ack_requested;
    send(a, acked);
    const auto got = take(b, frame_kind::direct);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].id, 0u);
    const auto ack = take(a, frame_kind::ack);
    ASSERT_EQ(ack.size(), 1u);
    EXPECT_EQ(ack[0].id, 4242u) << "the sender's ack keeps its id";
}

TEST_F(RouterCore, DirectMessagesGoToOneAddressWithTheSendersAddress) {
    peer a = hello();
    peer b = hello();
    send(a, make(frame_kind::direct, 0, b.address, "psst"));
    const auto got = take(b, frame_kind::direct);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].name, a.address);
    EXPECT_EQ(got[0].payload, "psst");

    frame acked = make(frame_kind::direct, 8, b.address, "ack me");
    acked.flags = frame_flags::ack_requested;
    send(a, acked);
    send(a, make(frame_kind::direct, 9, "r1-999-deadbeef", "lost"));
    const auto frames = take(a);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].id, 8u);
    EXPECT_EQ(frames[1].kind, frame_kind::error);
    EXPECT_EQ(frames[1].id, 9u);
    EXPECT_EQ(frames[1].error(), errc::no_such_address);
}

TEST_F(RouterCore, BroadcastReachesEveryoneElse) {
    peer a = hello();
    peer b = hello();
    peer c = hello(client_role::backend, transport_kind::zeromq);
    send(a, make(frame_kind::broadcast, 0, {}, "all"));
    EXPECT_TRUE(take(a, frame_kind::broadcast).empty());
    for (peer* p : {&b, &c}) {
        const auto got = take(*p, frame_kind::broadcast);
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].name, a.address);
        EXPECT_EQ(got[0].payload, "all");
    }
}

// The other routers, as the addressing room sees them: what it handed
// over, and the answers and arrivals the test gives it.
class recording_bus final : public router_bus {
public:
    struct sent {
        std::string router, to, from, payload;
        publisher ack;
    };
    void direct(std::string_view router_id, std::string_view to, std::string_view from, std::uint8_t,
                bytes_view payload, const publisher& ack) override {
        directs.push_back({std::string(router_id), std::string(to), std::string(from),
                           std::string(payload.begin(), payload.end()), ack});
    }
    void broadcast(std::string_view from, std::uint8_t, bytes_view payload) override {
        broadcasts.emplace_back(std::string(from), std::string(payload.begin(), payload.end()));
    }
    void client_subscription(std::string_view router_id, std::string_view to, std::string_view pattern,
                             slow_policy policy, bool subscribe, const publisher& ack) override {
        subscriptions.push_back({std::string(router_id), std::string(to), std::string(pattern), policy, subscribe, ack});
    }
    struct subscription_sent {
        std::string router, to, pattern;
        slow_policy policy;
        bool subscribe;
        publisher ack;
    };
    sink& answers() { return *sink_; }
    std::vector<subscription_sent> subscriptions;
    std::vector<sent> directs;
    std::vector<std::pair<std::string, std::string>> broadcasts;
};

TEST(Addressing, TheRouterOfAnAddressIsItsNameBeforeTheLastTwoParts) {
    EXPECT_EQ(router_of("r1-7-0000abcd"), "r1");
    EXPECT_EQ(router_of("plant-a-12-ffffffff"), "plant-a") << "a router id may hold dashes";
    EXPECT_EQ(router_of("nodash"), "");
    EXPECT_EQ(router_of("-1-2"), "");
    EXPECT_EQ(router_of("a-b"), "");
}

// Several routers: a direct message to an address another router gave
// crosses the bus, its answer is the sender's ack or error; what arrives
// reaches the local client; a broadcast goes to the local clients and over
// the bus, and one from elsewhere reaches every local client.
TEST_F(RouterCore, AcrossRoutersDirectMessagesAndBroadcastsCrossTheBus) {
    recording_bus bus;
    rebuild_with(bus);
    peer a = hello();
    peer b = hello();
    frame d = make(frame_kind::direct, 5, "r2-9-0000abcd", "hi");
    d.flags = frame_flags::ack_requested;
    send(a, d);
    ASSERT_EQ(bus.directs.size(), 1u);
    EXPECT_EQ(bus.directs[0].router, "r2");
    EXPECT_EQ(bus.directs[0].to, "r2-9-0000abcd");
    EXPECT_EQ(bus.directs[0].from, a.address);
    EXPECT_EQ(bus.directs[0].payload, "hi");
    EXPECT_TRUE(take(a).empty()) << "no answer before the bus gave one";
    core->log_answer([&] { bus.answers().direct_done(bus.directs[0].ack, errc{}, {}); }, now);
    auto acks = take(a, frame_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].id, 5u);

    send(a, make(frame_kind::direct, 6, "r3-1-00000001", "x"));
    core->log_answer([&] { bus.answers().direct_done(bus.directs[1].ack, errc::no_such_address, "router r3 is gone"); },
                     now);
    auto errors = take(a, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 6u);
    EXPECT_EQ(errors[0].error(), errc::no_such_address);

    send(a, make(frame_kind::direct, 7, "r1-999-00000001", "x"));
    errors = take(a, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u) << "an address of this router that is gone does not cross the bus";
    EXPECT_EQ(errors[0].error(), errc::no_such_address);
    EXPECT_EQ(bus.directs.size(), 2u);

    core->log_answer([&] {
        const std::string_view payload = "from afar";
        const bytes_view bytes(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
        EXPECT_TRUE(bus.answers().direct_arrived(b.address, "r2-4-00000002", 0, bytes));
        EXPECT_FALSE(bus.answers().direct_arrived("r1-999-00000001", "r2-4-00000002", 0, bytes))
            << "the sender's router hears that nobody has the address";
    }, now);
    auto got = take(b, frame_kind::direct);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].name, "r2-4-00000002");
    EXPECT_EQ(got[0].payload, "from afar");

    send(a, make(frame_kind::broadcast, 0, {}, "all"));
    EXPECT_EQ(take(b, frame_kind::broadcast).size(), 1u);
    ASSERT_EQ(bus.broadcasts.size(), 1u);
    EXPECT_EQ(bus.broadcasts[0], std::make_pair(a.address, std::string("all")));
    core->log_answer([&] {
        const std::string_view payload = "everyone";
        bus.answers().broadcast_arrived("r2-4-00000002", 0,
                                        bytes_view(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
    }, now);
    for (peer* p : {&a, &b}) {
        got = take(*p, frame_kind::broadcast);
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].name, "r2-4-00000002");
    }
}

// A backend's subscribe_client for an address another router gave crosses
// the bus and waits for that router's verdict; one that arrives is judged
// here, for this router's client.
TEST_F(RouterCore, AcrossRoutersSubscribeClientCrossesTheBusAndWaitsForTheVerdict) {
    recording_bus bus;
    rebuild_with(bus);
    peer backend = hello(client_role::backend, transport_kind::zeromq);
    peer screen = hello();
    frame s = make(frame_kind::subscribe_client, 5, "cell.>", "r2-9-0000abcd");
    s.flags = policy_flags(slow_policy::keep_latest);
    send(backend, s);
    ASSERT_EQ(bus.subscriptions.size(), 1u);
    EXPECT_EQ(bus.subscriptions[0].router, "r2");
    EXPECT_EQ(bus.subscriptions[0].to, "r2-9-0000abcd");
    EXPECT_EQ(bus.subscriptions[0].pattern, "cell.>");
    EXPECT_EQ(bus.subscriptions[0].policy, slow_policy::keep_latest);
    EXPECT_TRUE(bus.subscriptions[0].subscribe);
    EXPECT_TRUE(take(backend).empty()) << "no answer before the other router's";
    core->log_answer([&] {
        bus.answers().direct_done(bus.subscriptions[0].ack, errc::already_subscribed, "twice");
    }, now);
    auto errors = take(backend, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 5u);
    EXPECT_EQ(errors[0].error(), errc::already_subscribed);
    EXPECT_EQ(errors[0].payload, "twice");

    core->log_answer([&] {
        EXPECT_FALSE(bus.answers().client_subscription_arrived(screen.address, "cell.7", slow_policy::router_default,
                                                               true));
        EXPECT_EQ(bus.answers().client_subscription_arrived(screen.address, "cell.7", slow_policy::router_default, true),
                  errc::already_subscribed);
        EXPECT_EQ(bus.answers().client_subscription_arrived("r1-999-00000001", "cell.7", slow_policy::router_default,
                                                            true),
                  errc::no_such_address);
    }, now);
    const auto subscribed = take(screen, frame_kind::subscribed);
    ASSERT_EQ(subscribed.size(), 1u);
    EXPECT_EQ(subscribed[0].name, "cell.7");
    send(backend, make(frame_kind::unsubscribe_client, 6, "cell.7", "r1-999-00000001"));
    errors = take(backend, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u) << "an address of this router that is gone does not cross the bus";
    EXPECT_EQ(errors[0].error(), errc::no_such_address);
    EXPECT_EQ(bus.subscriptions.size(), 1u);
}

TEST_F(RouterCore, DiscoveryListsServicesMethodsAndInstances) {
    peer b1 = backend("orders", {{"get", method_kind::unary}, {"watch", method_kind::stream}});
    peer b2 = backend("orders", {{"get", method_kind::unary}});
    peer b3 = backend("stock", {{"level", method_kind::unary}});
    peer c = hello();
    send(c, make(frame_kind::discover, 4));
    const auto lists = take(c, frame_kind::service_list);
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_EQ(lists[0].id, 4u);
    service_list_body body;
    const std::vector<std::uint8_t> raw(lists[0].payload.begin(), lists[0].payload.end());
    ASSERT_FALSE(decode_body(raw, body));
    ASSERT_EQ(body.services.size(), 2u);
    EXPECT_EQ(body.services[0].name, "orders");
    EXPECT_EQ(body.services[0].instances, 2u);
    ASSERT_EQ(body.services[0].methods.size(), 2u);
    EXPECT_EQ(body.services[0].methods[1].name, "watch");
    EXPECT_EQ(body.services[0].methods[1].kind, method_kind::stream);
    EXPECT_EQ(body.services[1].name, "stock");
}

// A listing longer than the payload limit is paged; registrations past the
// bounds get too_many_services; a service nobody serves is forgotten after
// its grace, so a departed backend leaves nothing behind.
TEST_F(RouterCore, RegistrationsAreBoundedAndListingsPaged) {
    cfg.max_payload = 1024;
    cfg.max_services_per_backend = 30;
    cfg.service_grace_ms = 500;
    rebuild();
    peer b = hello(client_role::backend, transport_kind::zeromq);
    register_body body;
    body.methods = {{"get", method_kind::unary}};
    std::vector<std::uint8_t> bytes;
    ASSERT_FALSE(encode_body(body, bytes));
    std::vector<frame> regs;
    std::vector<std::string> names;
    for (int i = 0; i < 31; ++i) names.push_back("service-with-a-longish-name-" + std::to_string(100 + i));
    for (std::size_t i = 0; i < names.size(); ++i) {
        frame f = make(frame_kind::register_service, static_cast<std::uint32_t>(10 + i), names[i]);
        f.payload = bytes;
        regs.push_back(f);
    }
    send(b, regs);
    const auto answers = take(b);
    ASSERT_EQ(answers.size(), 31u);
    EXPECT_EQ(std::count_if(answers.begin(), answers.end(), [](const rx& x) { return x.kind == frame_kind::ack; }), 30);
    EXPECT_EQ(answers.back().kind, frame_kind::error);
    EXPECT_EQ(answers.back().id, 40u);
    EXPECT_EQ(answers.back().error(), errc::too_many_services);

    peer c = hello();
    std::vector<std::string> listed;
    std::string after;
    for (int page = 0; page < 10; ++page) {
        send(c, make(frame_kind::discover, 4, after));
        const auto lists = take(c, frame_kind::service_list);
        ASSERT_EQ(lists.size(), 1u);
        EXPECT_LE(lists[0].payload.size(), cfg.max_payload);
        service_list_body list;
        const std::vector<std::uint8_t> raw(lists[0].payload.begin(), lists[0].payload.end());
        ASSERT_FALSE(decode_body(raw, list));
        for (const auto& svc : list.services) listed.emplace_back(svc.name);
        if ((lists[0].flags & frame_flags::more) == 0) break;
        ASSERT_FALSE(list.services.empty());
        after = listed.back();
    }
    names.pop_back();
    EXPECT_EQ(listed, names) << "every service once, in name order, over several pages";

    core->closed(b.id, now);
    advance(400ms);
    send(c, make(frame_kind::request, 5, names[0] + "/get"));
    EXPECT_EQ(take(c, frame_kind::error).at(0).error(), errc::no_instance_available);
    advance(1000ms);
    send(c, make(frame_kind::request, 6, names[0] + "/get"));
    EXPECT_EQ(take(c, frame_kind::error).at(0).error(), errc::no_such_service);
    send(c, make(frame_kind::discover, 7));
    const auto lists = take(c, frame_kind::service_list);
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_EQ(lists[0].payload, std::string("\0\0", 2)) << "nothing is left of the departed backend";
}

// ---------------------------------------------------------------- health

TEST_F(RouterCore, TheRouterPingsAndClosesSilentConnections) {
    peer p = hello();
    advance(1100ms);
    const auto pings = take(p, frame_kind::ping);
    ASSERT_EQ(pings.size(), 1u);
    send(p, make(frame_kind::pong, pings[0].id));
    advance(2900ms);
    EXPECT_TRUE(take(p, frame_kind::goodbye).empty()) << "the pong kept it alive";
    advance(400ms);  // 3 s after the pong, give or take the scan period (interval / 4)
    const auto bye = take(p, frame_kind::goodbye);
    ASSERT_EQ(bye.size(), 1u);
    EXPECT_EQ(bye[0].error(), errc::heartbeat_timeout);
    EXPECT_EQ(core->connection_count(), 0u);
}

// Liveness does not depend on who talks: a connection the router queues
// nothing to is pinged, however much it sends itself.
TEST_F(RouterCore, APublishOnlyConnectionIsPingedEveryIntervalAndASubscriberThatPingsStays) {
    peer pub = hello(client_role::backend, transport_kind::zeromq);
    peer sub = hello();
    subscribe(sub, 1, "alarms.>");
    take(sub);
    const time_point start = now;
    time_point last_ping_to_pub = start;
    time_point last_sent_by_sub = start;
    int pings_to_pub = 0;
    int messages_to_sub = 0;
    // Five heartbeat timeouts (3 s each): the publisher sends a message every
    // 100 ms and never reads; the subscriber only receives, and pings when it
    // has sent nothing for an interval, as the client engine does.
    for (int step = 0; step < 150; ++step) {
        publish(pub, "alarms.line1", "high");
        advance(100ms);
        for (const rx& f : take(pub)) {
            ASSERT_EQ(f.kind, frame_kind::ping) << "the router queues nothing else to a publisher";
            EXPECT_LE(now - last_ping_to_pub, 1250ms) << "an interval, give or take the scan period";
            last_ping_to_pub = now;
            ++pings_to_pub;
        }
        for (const rx& f : take(sub)) {
            ASSERT_NE(f.kind, frame_kind::goodbye) << "closed after " << (now - start) / 1ms << " ms";
            if (f.kind == frame_kind::message) ++messages_to_sub;
            if (f.kind == frame_kind::ping) {
                send(sub, make(frame_kind::pong, f.id));
                last_sent_by_sub = now;
            }
        }
        if (now - last_sent_by_sub >= 1000ms) {
            send(sub, make(frame_kind::ping, static_cast<std::uint32_t>(step)));
            last_sent_by_sub = now;
        }
    }
    EXPECT_GE(pings_to_pub, 12) << "15 s at one ping per interval (plus at most a scan period)";
    EXPECT_EQ(messages_to_sub, 150);
    EXPECT_FALSE(pub.closed);
    EXPECT_FALSE(sub.closed);
    EXPECT_EQ(core->connection_count(), 2u);
}

TEST_F(RouterCore, ASilentBackendIsRemovedAndItsCallsFail) {
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "", 60000);
    for (int i = 0; i < 4; ++i) {
        advance(1000ms);
        send(c, make(frame_kind::pong, 0));  // the caller stays alive
    }
    const auto errors = take(c, frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].error(), errc::backend_gone);
    request(c, 2, "s/m", "");
    EXPECT_EQ(take(c, frame_kind::error).at(0).error(), errc::no_instance_available);
}

TEST_F(RouterCore, ASlowSubscriberLosesItsOldestMessagesWithAGap) {
    small_outboxes();
    peer slow = hello();
    peer fast = hello();
    peer pub = hello();
    subscribe(slow, 1, "t");
    subscribe(fast, 1, "t");
    take(slow);
    take(fast);
    const std::string payload(500, 'p');
    std::size_t fast_got = 0;
    for (int i = 0; i < 200; ++i) {
        publish(pub, "t", payload);
        fast_got += take(fast, frame_kind::message).size();  // the fast one keeps up
        EXPECT_LE(slow.out->queued_bytes(), cfg.outbox_max_bytes);
    }
    EXPECT_EQ(fast_got, 200u) << "the slow subscriber costs the fast one nothing";
    const auto frames = take(slow);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames[0].kind, frame_kind::gap);
    EXPECT_EQ(frames[0].seq, 1u);
    const std::uint64_t first_kept = frames[1].seq;
    EXPECT_EQ(frames[0].count, first_kept - 1);
    EXPECT_EQ(frames.back().seq, 200u);
    EXPECT_GT(stats.total(transport_kind::websocket, &metrics::traffic::dropped), 0u);
    EXPECT_FALSE(slow.closed);
}

TEST_F(RouterCore, TheDisconnectPolicyClosesASlowSubscriberWithAReason) {
    small_outboxes();
    peer slow = hello();
    peer pub = hello();
    subscribe(slow, 1, "t", policy_flags(slow_policy::disconnect));
    take(slow);
    for (int i = 0; i < 100; ++i) publish(pub, "t", std::string(500, 'p'));
    const auto frames = take(slow);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().kind, frame_kind::goodbye);
    EXPECT_EQ(frames.back().error(), errc::slow_consumer);
    EXPECT_TRUE(slow.closed);
    EXPECT_EQ(stats.of(transport_kind::websocket).slow_consumer_closes.load(), 1u);
}

// ---------------------------------------------------------------- namespaces

namespace_config in_namespace(std::string pattern) {
    namespace_config ns;
    ns.pattern = std::move(pattern);
    return ns;
}

TEST_F(RouterCore, EachNamespaceKeepsTheHistoryItsHistorySizeSays) {
    namespace_config big = in_namespace("big.>");
    big.history_size = 10;
    namespace_config none = in_namespace("none.*");
    none.history_size = 0;
    cfg.namespaces = {big, none};
    rebuild();
    peer pub = hello();
    for (const char* channel : {"big.a", "none.a", "other"})
        for (int i = 1; i <= 12; ++i) publish(pub, channel, std::to_string(i));

    auto replayed = [&](std::uint32_t id, std::string_view channel) {
        peer sub = hello();
        frame f = make(frame_kind::subscribe, id, channel);
        f.flags = frame_flags::since;
        f.epoch = epoch;
        f.seq = 0;
        send(sub, f);
        return take(sub, frame_kind::message);
    };
    const auto big_replay = replayed(1, "big.a");
    ASSERT_EQ(big_replay.size(), 10u) << "the namespace's history_size, over history.max_messages (4)";
    EXPECT_EQ(big_replay.front().seq, 3u);
    EXPECT_EQ(replayed(2, "other").size(), 4u) << "no namespace: history.max_messages";
    EXPECT_TRUE(replayed(3, "none.a").empty()) << "history_size 0: no history";
}

// A channel that keeps no history has its message frames encoded in place
// (connection_table::add_encoded_to_run) while none of its subscribers
// keeps the latest; each policy still gets every message, in order, and
// a slow subscriber of such a run loses its oldest with a gap.
TEST_F(RouterCore, AChannelWithoutHistoryGivesEveryPolicyItsMessagesInOrder) {
    namespace_config none = in_namespace("none.*");
    none.history_size = 0;
    cfg.namespaces = {none};
    small_outboxes();
    peer fifo = hello();
    peer latest = hello();
    peer slow = hello();
    peer pub = hello();
    subscribe(fifo, 1, "none.a", policy_flags(slow_policy::drop_oldest));
    subscribe(latest, 1, "none.a", policy_flags(slow_policy::keep_latest));
    take(fifo);
    take(latest);
    // One message of publishes of `from`..`to` (or of `size` bytes each).
    auto publish_run = [&](int from, int to, std::size_t size = 0) {
        std::vector<std::string> payloads;
        for (int i = from; i <= to; ++i) payloads.push_back(size ? std::string(size, 'p') : std::to_string(i));
        std::vector<frame> frames;
        for (const std::string& p : payloads) frames.push_back(make(frame_kind::publish, 0, "none.a", p));
        send(pub, frames);
    };
    auto expect_seqs = [](const std::vector<rx>& got, std::uint64_t first, std::uint64_t last) {
        ASSERT_EQ(got.size(), last - first + 1);
        for (std::uint64_t seq = first; seq <= last; ++seq) {
            EXPECT_EQ(got[seq - first].seq, seq);
            EXPECT_EQ(got[seq - first].payload, std::to_string(seq));
        }
    };
    publish_run(1, 30);  // with a keep_latest subscriber: frames of their own
    expect_seqs(take(fifo, frame_kind::message), 1, 30);
    expect_seqs(take(latest, frame_kind::message), 1, 30);

    send(latest, make(frame_kind::unsubscribe, 2, "none.a"));
    publish_run(31, 60);  // encoded in place
    expect_seqs(take(fifo, frame_kind::message), 31, 60);
    EXPECT_TRUE(take(latest, frame_kind::message).empty());
    EXPECT_EQ(stats.published.load(), 60u);

    subscribe(slow, 1, "none.a", policy_flags(slow_policy::drop_oldest));
    take(slow);
    take(fifo);
    for (int round = 0; round < 8; ++round) {
        publish_run(1, 3, 1000);  // 24 KiB in all overfill the slow one's 16 KiB
        EXPECT_EQ(take(fifo, frame_kind::message).size(), 3u) << "the slow one costs the fast one nothing";
        EXPECT_LE(slow.out->queued_bytes(), cfg.outbox_max_bytes);
    }
    const auto frames = take(slow);
    ASSERT_GE(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::gap);
    EXPECT_EQ(frames[0].seq, 61u);
    EXPECT_EQ(frames[1].seq, frames[0].seq + frames[0].count);
    EXPECT_EQ(frames.back().seq, 84u);
    for (std::size_t i = 2; i < frames.size(); ++i) EXPECT_EQ(frames[i].seq, frames[i - 1].seq + 1);
}

// ---------------------------------------------------------------- latest value

namespace_config with_latest(std::string pattern, std::uint32_t history_size) {
    namespace_config ns = in_namespace(std::move(pattern));
    ns.latest = true;
    ns.history_size = history_size;
    return ns;
}

TEST_F(RouterCore, ALatestSubscribeToAPatternGetsEachMatchingChannelsLastMessageThenTheLiveOnes) {
    cfg.namespaces = {with_latest("factory.>", 0)};
    rebuild();
    peer pub = hello();
    for (int i = 1; i <= 3; ++i) publish(pub, "factory.l1.m1.telemetry", "m1-" + std::to_string(i));
    for (int i = 1; i <= 2; ++i) publish(pub, "factory.l1.m2.telemetry", "m2-" + std::to_string(i));
    publish(pub, "factory.l1.m1.status", "running");
    publish(pub, "factory.l2.m7.telemetry", "m7-1");
    peer sub = hello();
    subscribe(sub, 9, "factory.*.*.telemetry", frame_flags::latest);
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].id, 9u);
    const std::vector<std::pair<std::string, std::uint64_t>> expected = {
        {"factory.l1.m1.telemetry", 3}, {"factory.l1.m2.telemetry", 2}, {"factory.l2.m7.telemetry", 1}};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const rx& m = frames[i + 1];
        EXPECT_EQ(m.kind, frame_kind::message);
        EXPECT_EQ(m.name, expected[i].first);
        EXPECT_EQ(m.seq, expected[i].second) << "at its real position";
        EXPECT_EQ(m.epoch, epoch);
        EXPECT_NE(m.flags & frame_flags::replayed, 0) << m.name;
    }
    EXPECT_EQ(frames[1].payload, "m1-3");

    publish(pub, "factory.l1.m2.telemetry", "m2-3");
    const auto live = take(sub);
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(live[0].seq, 3u);
    EXPECT_EQ(live[0].flags & frame_flags::replayed, 0);

    peer plain = hello();
    subscribe(plain, 1, "factory.*.*.telemetry");
    EXPECT_EQ(take(plain).size(), 1u) << "without the flag: the ack, nothing replayed";
}

TEST_F(RouterCore, ALatestSubscribeToAChannelIsAckedAtItsPositionWithItsLastMessage) {
    cfg.namespaces = {with_latest("state.>", 0)};
    rebuild();
    peer pub = hello();
    publish(pub, "state.a", "1");
    publish(pub, "state.a", "2");
    peer sub = hello();
    subscribe(sub, 3, "state.a", frame_flags::latest);
    subscribe(sub, 4, "state.never", frame_flags::latest);
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].seq, 2u);
    EXPECT_EQ(frames[1].kind, frame_kind::message);
    EXPECT_EQ(frames[1].payload, "2");
    EXPECT_EQ(frames[1].seq, 2u);
    EXPECT_EQ(frames[2].kind, frame_kind::ack) << "a channel with nothing yet: the ack alone";
    EXPECT_EQ(frames[2].id, 4u);
    EXPECT_EQ(frames[2].seq, 0u);
}

TEST_F(RouterCore, LatestWhereNoNamespaceEnablesItIsNotEnabled) {
    namespace_config quiet = in_namespace("factory.l1.secret.>");
    cfg.namespaces = {with_latest("factory.>", 4), quiet, in_namespace("office.>")};
    rebuild();
    peer pub = hello();
    publish(pub, "factory.l1.secret.temp", "hidden");
    publish(pub, "factory.l1.open.temp", "shown");
    peer sub = hello();
    subscribe(sub, 1, "office.>", frame_flags::latest);
    subscribe(sub, 2, ">", frame_flags::latest);
    subscribe(sub, 3, "elsewhere", frame_flags::latest);
    subscribe(sub, 4, "factory.l1.secret.temp", frame_flags::latest);
    const auto errors = take(sub, frame_kind::error);
    ASSERT_EQ(errors.size(), 4u);
    for (const rx& e : errors) EXPECT_EQ(e.error(), errc::not_enabled) << e.id;
    EXPECT_NE(errors[0].payload.find("namespace 'office.>'"), std::string::npos) << errors[0].payload;
    EXPECT_NE(errors[1].payload.find("'>'"), std::string::npos) << errors[1].payload;

    publish(pub, "office.x", "live");
    EXPECT_TRUE(take(sub).empty()) << "a refused subscribe subscribes nothing";

    subscribe(sub, 5, "factory.l1.>", frame_flags::latest);
    const auto frames = take(sub, frame_kind::message);
    ASSERT_EQ(frames.size(), 1u) << "a more specific namespace without latest gives no latest value";
    EXPECT_EQ(frames[0].name, "factory.l1.open.temp");
}

// A log whose answer comes later (a remote one): what goes live between
// the subscribe and the answer is held, then merged by seq, each once.
TEST_F(RouterCore, ALatestReadThatComesLaterIsFollowedByTheLiveOnesWithoutGapOrDuplicate) {
    cfg.namespaces = {with_latest("f.>", 0)};
    deferred_log& d = rebuild_deferred();
    peer pub = hello();
    peer other = hello();
    subscribe(other, 1, "f.*");
    for (int i = 1; i <= 3; ++i) publish(pub, "f.a", std::to_string(i));
    core->log_answer([&] { d.release_appends(); }, now);
    peer sub = hello();
    subscribe(sub, 7, "f.*", frame_flags::latest);
    publish(pub, "f.a", "4");
    core->log_answer([&] { d.release_appends(); }, now);  // live, held, and in what is read next
    core->log_answer([&] { d.read_now(); }, now);
    publish(pub, "f.a", "5");
    publish(pub, "f.b", "1");
    core->log_answer([&] { d.release_appends(); }, now);
    wake_transports();
    EXPECT_TRUE(take(sub).empty()) << "nothing before the latest values";
    EXPECT_EQ(take(other, frame_kind::message).size(), 6u) << "the others are not held up";

    core->log_answer([&] { d.answer_reads(); }, now);
    wake_transports();
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].id, 7u);
    EXPECT_EQ(frames[1].name, "f.a");
    EXPECT_EQ(frames[1].seq, 4u);
    EXPECT_NE(frames[1].flags & frame_flags::replayed, 0);
    EXPECT_EQ(frames[2].name, "f.a");
    EXPECT_EQ(frames[2].seq, 5u);
    EXPECT_EQ(frames[2].flags & frame_flags::replayed, 0);
    EXPECT_EQ(frames[3].name, "f.b");
    EXPECT_EQ(frames[3].seq, 1u);
    EXPECT_EQ(d.pending_reads(), 0u);

    publish(pub, "f.b", "2");
    core->log_answer([&] { d.release_appends(); }, now);
    wake_transports();
    const auto live = take(sub, frame_kind::message);
    ASSERT_EQ(live.size(), 1u) << "not held any more";
    EXPECT_EQ(live[0].seq, 2u);
}

TEST_F(RouterCore, ALatestReadTheLogCannotAnswerFailsTheSubscribeByName) {
    cfg.namespaces = {with_latest("f.>", 0)};
    deferred_log& d = rebuild_deferred();
    peer pub = hello();
    peer sub = hello();
    subscribe(sub, 7, "f.*", frame_flags::latest);
    publish(pub, "f.a", "1");
    core->log_answer([&] { d.release_appends(); }, now);
    core->log_answer([&] { d.fail_reads(errc::cluster_unavailable); }, now);
    wake_transports();
    const auto frames = take(sub);
    ASSERT_EQ(frames.size(), 1u) << "the held publication goes nowhere";
    EXPECT_EQ(frames[0].error(), errc::cluster_unavailable);
    EXPECT_EQ(frames[0].id, 7u);
    publish(pub, "f.a", "2");
    core->log_answer([&] { d.release_appends(); }, now);
    wake_transports();
    EXPECT_TRUE(take(sub).empty()) << "the subscription ended";
}

TEST_F(RouterCore, ASubscribeThatLeavesThePolicyToTheRouterGetsItsNamespaces) {
    namespace_config ticks = in_namespace("ticks.>");
    ticks.policy = slow_policy::disconnect;
    cfg.namespaces = {ticks};
    small_outboxes();
    peer defaulted = hello();
    peer explicit_policy = hello();
    peer elsewhere = hello();
    peer by_pattern = hello();
    peer pub = hello();
    subscribe(defaulted, 1, "ticks.a");
    subscribe(explicit_policy, 1, "ticks.a", policy_flags(slow_policy::drop_oldest));
    subscribe(elsewhere, 1, "quotes.a");
    subscribe(by_pattern, 1, "ticks.*");
    for (peer* p : {&defaulted, &explicit_policy, &elsewhere, &by_pattern}) take(*p);
    for (int i = 0; i < 100; ++i) {
        publish(pub, "ticks.a", std::string(500, 'p'));
        publish(pub, "quotes.a", std::string(500, 'p'));
    }
    const auto frames = take(defaulted);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().kind, frame_kind::goodbye);
    EXPECT_EQ(frames.back().error(), errc::slow_consumer) << "the namespace's disconnect";
    EXPECT_TRUE(defaulted.closed);
    take(by_pattern);
    EXPECT_TRUE(by_pattern.closed) << "ticks.* is all inside ticks.>";
    take(explicit_policy);
    EXPECT_FALSE(explicit_policy.closed) << "a policy the subscribe names wins";
    take(elsewhere);
    EXPECT_FALSE(elsewhere.closed) << "no namespace: outbox.policy (drop_oldest)";
}

TEST_F(RouterCore, APublishOverItsNamespacesMaxMessageBytesIsRefusedByName) {
    namespace_config small = in_namespace("small.>");
    small.max_message_bytes = 8;
    cfg.namespaces = {small};
    rebuild();
    peer sub = hello();
    peer pub = hello();
    subscribe(sub, 1, ">");
    take(sub);
    publish(pub, "small.a", "123456789", 7);
    const auto refused = take(pub, frame_kind::error);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].id, 7u);
    EXPECT_EQ(refused[0].error(), errc::payload_too_large);
    EXPECT_NE(refused[0].payload.find("namespace 'small.>'"), std::string::npos) << refused[0].payload;
    publish(pub, "small.a", "12345678", 8);
    publish(pub, "large.a", "123456789", 9);
    EXPECT_EQ(take(pub, frame_kind::ack).size(), 2u) << "at the limit, and outside the namespace";
    const auto delivered = take(sub, frame_kind::message);
    ASSERT_EQ(delivered.size(), 2u);
    EXPECT_EQ(delivered[0].payload, "12345678");
    EXPECT_EQ(delivered[1].name, "large.a");
}

TEST_F(RouterCore, ANamespaceWhereOnlyBackendsPublishRefusesFrontendsByName) {
    namespace_config factory = in_namespace("factory.>");
    factory.publish = publish_rule::backends;
    cfg.namespaces = {factory};
    rebuild();
    peer sub = hello();
    peer front = hello();
    peer back = hello(client_role::backend, transport_kind::zeromq);
    subscribe(sub, 1, "factory.>");
    take(sub);
    publish(front, "factory.m3", "from a frontend", 5);
    const auto refused = take(front, frame_kind::error);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].error(), errc::forbidden);
    EXPECT_NE(refused[0].payload.find("namespace 'factory.>'"), std::string::npos) << refused[0].payload;
    publish(back, "factory.m3", "from a backend");
    publish(front, "chat.m3", "elsewhere", 6);
    EXPECT_EQ(take(front, frame_kind::ack).size(), 1u);
    // Again along the kept route of the channel: still refused.
    publish(front, "factory.m3", "again", 7);
    EXPECT_EQ(take(front, frame_kind::error).size(), 1u);
    const auto delivered = take(sub, frame_kind::message);
    ASSERT_EQ(delivered.size(), 1u);
    EXPECT_EQ(delivered[0].payload, "from a backend");
}

// ---------------------------------------------------------------- drain

TEST_F(RouterCore, DrainLetsCallsFinishThenSaysGoodbye) {
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "");
    const auto in = take(b, frame_kind::request);
    core->begin_drain(now);
    request(c, 2, "s/m", "");
    const auto refused = take(c, frame_kind::error);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].error(), errc::going_away);
    EXPECT_FALSE(core->drained());

    send(b, make(frame_kind::response, in[0].id, {}, "done"));
    const auto frames = take(c);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::response) << "the call in flight completes";
    EXPECT_EQ(frames[1].kind, frame_kind::goodbye);
    EXPECT_EQ(frames[1].error(), errc::going_away);
    EXPECT_EQ(take(b, frame_kind::goodbye).size(), 1u);
    EXPECT_TRUE(core->drained());
}

TEST_F(RouterCore, DrainFailsWhatIsStillInFlightAtTheTimeout) {
    cfg.heartbeat_timeout_ms = 60000;  // only the drain ends anything here
    rebuild();
    peer b = backend("s", {{"m", method_kind::unary}});
    peer c = hello();
    request(c, 1, "s/m", "", 60000);
    take(b);
    core->begin_drain(now);
    advance(4900ms);
    EXPECT_FALSE(core->drained());
    advance(200ms);
    const auto frames = take(c);
    ASSERT_GE(frames.size(), 2u);
    EXPECT_EQ(frames[frames.size() - 2].kind, frame_kind::error);
    EXPECT_EQ(frames[frames.size() - 2].error(), errc::going_away);
    EXPECT_EQ(frames.back().kind, frame_kind::goodbye);
    const auto to_backend = take(b);
    ASSERT_GE(to_backend.size(), 2u);
    EXPECT_EQ(to_backend[to_backend.size() - 2].kind, frame_kind::cancel);
    EXPECT_TRUE(core->drained());
}

TEST_F(RouterCore, DrainRedirectsWhenConfigured) {
    cfg.drain_redirect_url = "ws://elsewhere:7070/ws";
    rebuild();
    peer c = hello();
    core->begin_drain(now);
    const auto frames = take(c);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].kind, frame_kind::redirect);
    EXPECT_EQ(frames[0].payload, "ws://elsewhere:7070/ws");
    EXPECT_TRUE(c.closed);
    peer late = connect();
    const auto bye = take(late);
    ASSERT_EQ(bye.size(), 1u);
    EXPECT_EQ(bye[0].kind, frame_kind::goodbye) << "new connections are turned away";
    EXPECT_EQ(bye[0].error(), errc::going_away);
}

// ---------------------------------------------------------------- admin view

TEST_F(RouterCore, StatusShowsConnectionsChannelsAndServices) {
    peer b = backend("orders", {{"get", method_kind::unary}});
    peer c = hello();
    subscribe(c, 1, "a.*");
    publish(c, "a.b", "x");
    const auto doc = nlohmann::json::parse(core->status_json(now));
    EXPECT_EQ(doc["router_id"], "r1");
    EXPECT_EQ(doc["epoch"], epoch);
    ASSERT_EQ(doc["connections"].size(), 2u);
    EXPECT_EQ(doc["connections"][0]["role"], "backend");
    EXPECT_EQ(doc["connections"][0]["transport"], "zeromq");
    EXPECT_EQ(doc["connections"][1]["subscriptions"][0]["pattern"], "a.*");
    ASSERT_EQ(doc["channels"].size(), 1u);
    EXPECT_EQ(doc["channels"][0]["name"], "a.b");
    EXPECT_EQ(doc["channels"][0]["seq"], 1);
    ASSERT_EQ(doc["services"].size(), 1u);
    EXPECT_EQ(doc["services"][0]["name"], "orders");
}

// ---------------------------------------------------------------- access limits

TEST_F(RouterCore, PublishRateIsATokenBucketAnsweredWithRateLimited) {
    cfg.publish_rate = 2;
    rebuild();
    peer p = hello();
    publish(p, "a.b", "1", 1);
    publish(p, "a.b", "2", 2);
    publish(p, "a.b", "3", 3);
    auto frames = take(p);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[1].kind, frame_kind::ack);
    EXPECT_EQ(frames[2].kind, frame_kind::error);
    EXPECT_EQ(frames[2].id, 3u);
    EXPECT_EQ(frames[2].error(), errc::rate_limited);
    advance(500ms);  // one publish's worth at 2 per second
    (void)take(p);   // pings
    publish(p, "a.b", "4", 4);
    publish(p, "a.b", "5", 5);
    frames = take(p);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[1].error(), errc::rate_limited);
    EXPECT_FALSE(p.closed);
}

// Tokens that live for `lifetime`; a refresh grants `refreshed`.
class expiring_tokens final : public authorizer {
public:
    std::chrono::milliseconds lifetime{1000};
    std::chrono::milliseconds refreshed{5000};
    verdict admit(const principal&, std::string_view) override { return {}; }
    verdict refresh(const principal&, std::string_view) override {
        lifetime = refreshed;
        return {};
    }
    void forget(const principal&) override {}
    std::optional<std::chrono::milliseconds> token_lifetime(const principal&) override { return lifetime; }
    std::error_code can_subscribe(const principal&, std::string_view) override { return {}; }
    std::error_code can_publish(const principal&, std::string_view) override { return {}; }
    std::error_code can_call(const principal&, std::string_view, std::string_view) override { return {}; }
    std::error_code can_send(const principal&, std::string_view) override { return {}; }
    std::error_code can_broadcast(const principal&) override { return {}; }
    std::error_code can_register(const principal&, std::string_view) override { return {}; }
    std::error_code can_subscribe_clients(const principal&, std::string_view) override { return {}; }
};

TEST_F(RouterCore, AnExpiredTokenClosesTheConnectionAfterTheGraceUnlessRefreshed) {
    expiring_tokens tokens;
    cfg.auth_expiry_grace_ms = 500;
    rebuild(tokens);
    peer lapsing = hello();
    advance(1400ms);
    for (const auto& f : take(lapsing)) EXPECT_NE(f.kind, frame_kind::goodbye);
    EXPECT_FALSE(lapsing.closed) << "within exp + grace";
    advance(200ms);
    const auto frames = take(lapsing);
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().kind, frame_kind::goodbye);
    EXPECT_EQ(frames.back().error(), errc::token_expired);
    EXPECT_TRUE(lapsing.closed);

    peer refreshing = hello();
    advance(900ms);
    frame f = make(frame_kind::token_refresh, 9, "", "new-token");
    send(refreshing, f);
    const auto acks = take(refreshing, frame_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].id, 9u);
    advance(2000ms);
    for (const auto& x : take(refreshing)) EXPECT_NE(x.kind, frame_kind::goodbye);
    EXPECT_FALSE(refreshing.closed) << "the refreshed token lives on";
    core.reset();  // before `tokens` goes
}

// The token is the hs claim itself (JSON); none grants everything.
class claimed_rights final : public authorizer {
public:
    verdict admit(const principal& who, std::string_view token) override { return take(who, token); }
    verdict refresh(const principal& who, std::string_view token) override { return take(who, token); }
    void forget(const principal& who) override { rights_.erase(who.connection); }
    std::error_code can_subscribe(const principal& who, std::string_view pattern) override {
        return decide(rights_.at(who.connection).may_subscribe(pattern));
    }
    std::error_code can_publish(const principal& who, std::string_view channel) override {
        return decide(rights_.at(who.connection).may_publish(channel));
    }
    std::error_code can_call(const principal& who, std::string_view service, std::string_view method) override {
        return decide(rights_.at(who.connection).may_call(service, method));
    }
    std::error_code can_send(const principal& who, std::string_view address) override {
        return decide(rights_.at(who.connection).may_send(address));
    }
    std::error_code can_broadcast(const principal& who) override {
        return decide(rights_.at(who.connection).may_broadcast());
    }
    std::error_code can_register(const principal& who, std::string_view service) override {
        return decide(rights_.at(who.connection).may_register(service));
    }
    std::error_code can_subscribe_clients(const principal& who, std::string_view pattern) override {
        return decide(rights_.at(who.connection).may_subscribe_clients(pattern));
    }

private:
    static std::error_code decide(bool allowed) { return allowed ? std::error_code{} : errc::forbidden; }
    verdict take(const principal& who, std::string_view token) {
        const auto hs = nlohmann::json::parse(
            token.empty() ? R"({"subscribe":[">"],"publish":[">"],"call":[">"],"register":[">"]})" : token);
        grants g;
        EXPECT_EQ(parse_grants(hs, g), "") << token;
        rights_.insert_or_assign(who.connection, std::move(g));
        return {};
    }
    std::map<std::uint64_t, grants> rights_;
};

TEST_F(RouterCore, ARefreshEndsTheSubscriptionsAndCallsItNoLongerAllows) {
    claimed_rights rights;
    rebuild(rights);
    peer b = backend("feeds", {{"watch", method_kind::stream}, {"get", method_kind::unary}});
    peer publisher = hello();
    peer c = hello(client_role::frontend, transport_kind::websocket,
                   R"({"subscribe":["secret.>","public.>"],"call":["feeds"]})");
    subscribe(c, 1, "secret.>");
    subscribe(c, 2, "public.>");
    frame watch = make(frame_kind::stream_open, 3, "feeds/watch");
    watch.credit = 10;
    send(c, watch);
    request(c, 4, "feeds/get", "q");
    ASSERT_EQ(take(c, frame_kind::ack).size(), 2u);
    const auto calls = take(b);
    ASSERT_EQ(calls.size(), 2u);
    ASSERT_EQ(calls[0].kind, frame_kind::stream_open);
    ASSERT_EQ(calls[1].kind, frame_kind::request);
    const std::uint32_t stream_id = calls[0].id;
    const std::uint32_t request_id = calls[1].id;
    send(b, make(frame_kind::stream_item, stream_id, {}, "1"));
    ASSERT_EQ(take(c, frame_kind::stream_item).size(), 1u);
    publish(publisher, "secret.plans", "before");
    ASSERT_EQ(take(c, frame_kind::message).size(), 1u);

    send(c, make(frame_kind::token_refresh, 9, {}, R"({"subscribe":["public.>"],"call":["feeds/get"]})"));
    const auto frames = take(c);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].kind, frame_kind::ack);
    EXPECT_EQ(frames[0].id, 9u);
    EXPECT_EQ(frames[1].kind, frame_kind::error);
    EXPECT_EQ(frames[1].id, 1u) << "the id of the subscribe that made it";
    EXPECT_EQ(frames[1].error(), errc::forbidden);
    EXPECT_EQ(frames[2].kind, frame_kind::error);
    EXPECT_EQ(frames[2].id, 3u) << "the stream's id";
    EXPECT_EQ(frames[2].error(), errc::forbidden);
    const auto to_backend = take(b);
    ASSERT_EQ(to_backend.size(), 1u);
    EXPECT_EQ(to_backend[0].kind, frame_kind::cancel);
    EXPECT_EQ(to_backend[0].id, stream_id);

    // The secret channel no longer reaches it, the public one does; the
    // stream's late items go nowhere; the request still allowed completes.
    publish(publisher, "secret.plans", "after");
    publish(publisher, "public.news", "news");
    send(b, {make(frame_kind::stream_item, stream_id, {}, "2"), make(frame_kind::response, request_id, {}, "r")});
    const auto after = take(c);
    ASSERT_EQ(after.size(), 2u);
    EXPECT_EQ(after[0].kind, frame_kind::message);
    EXPECT_EQ(after[0].name, "public.news");
    EXPECT_EQ(after[1].kind, frame_kind::response);
    EXPECT_EQ(after[1].id, 4u);
    send(c, make(frame_kind::unsubscribe, 10, "secret.>"));
    EXPECT_EQ(take(c, frame_kind::error).at(0).error(), errc::not_subscribed);
    core.reset();
}

TEST_F(RouterCore, AnExpiredTokenEndsEverythingItsConnectionHeld) {
    expiring_tokens tokens;
    tokens.lifetime = std::chrono::hours(1);
    cfg.auth_expiry_grace_ms = 500;
    rebuild(tokens);
    peer b = backend("feed", {{"watch", method_kind::stream}});
    peer publisher = hello();
    tokens.lifetime = 1000ms;
    peer lapsing = hello();
    subscribe(lapsing, 1, "a.>");
    frame watch = make(frame_kind::stream_open, 2, "feed/watch");
    watch.credit = 4;
    send(lapsing, watch);
    const std::uint32_t stream_id = take(b, frame_kind::stream_open).at(0).id;
    advance(1600ms);
    const auto last = take(lapsing);
    ASSERT_FALSE(last.empty());
    EXPECT_EQ(last.back().error(), errc::token_expired);
    EXPECT_TRUE(lapsing.closed);
    const auto cancels = take(b, frame_kind::cancel);
    ASSERT_EQ(cancels.size(), 1u) << "the backend is told to stop the expired connection's stream";
    EXPECT_EQ(cancels[0].id, stream_id);
    publish(publisher, "a.b", "x", 7);
    EXPECT_EQ(take(publisher, frame_kind::ack).size(), 1u);
    EXPECT_EQ(core->status_json(now).find("\"a.>\""), std::string::npos) << "its subscription is gone";
    core.reset();
}

TEST_F(RouterCore, ALifetimeBeyondWhatTheClockHoldsNeverExpires) {
    expiring_tokens tokens;
    cfg.auth_expiry_grace_ms = 500;
    rebuild(tokens);
    for (const auto lifetime : {std::chrono::milliseconds::max(), std::chrono::milliseconds::max() - 1000ms,
                                std::chrono::duration_cast<std::chrono::milliseconds>(time_point::max() - now)}) {
        tokens.lifetime = lifetime;
        peer forever = hello();
        advance(2000ms);
        for (const auto& f : take(forever)) EXPECT_NE(f.kind, frame_kind::goodbye) << lifetime.count();
        EXPECT_FALSE(forever.closed) << "a lifetime of " << lifetime.count() << " ms is not already over";
    }
    core.reset();
}

}  // namespace
}  // namespace hyperstreams::router
