// Real client engines wired to one real router core in memory: h11's
// ConnectionPair, with the router's core as the other machine. No sockets,
// no threads, one fake clock that the test moves.
//
// The fixture plays both hosts. An engine's output goes to
// router_core::receive as one transport message; a connection the core
// wakes has its outbox drained batch by batch, each batch one transport
// message to the engine's receive, as the WebSocket and ZeroMQ transports
// send them; an outbox that says close closes the transport on both sides.
// Time moves only in advance(), which fires every deadline of the core and
// of every engine on the way, the core's first at equal times. Everything
// that crosses, and every event, is recorded for assertions (records.hpp).
//
// Protocol tests use this. The fake router (tests/shared/fake_router.hpp)
// stays for what the real core never does: malformed frames, ids it never
// gave out, answers it never sends.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "grants.hpp"
#include "records.hpp"
#include "router_core.hpp"

namespace hyperstreams::testing {

// The router's configuration in paired tests: heartbeats every second, a
// connection dead after three (as the fake router's welcome says); the rest
// as shipped.
router::router_config paired_config();

// Access decisions the test scripts by token: the one a connection presented
// last, in its hello or an accepted token_refresh.
class scripted_authorizer final : public router::authorizer {
public:
    // A hello or token_refresh with `token` is refused with `code`; the
    // router's error says `reason`.
    void refuse(std::string token, errc code, std::string reason);
    void stop_refusing(std::string_view token);
    // What `token` may do, as an "hs" claim (docs/PROTOCOL.md, "Access
    // control"). A token without a claim may do everything.
    void grant(std::string token, std::string_view hs_claim);
    // `token` is valid for `lifetime` from the hello or refresh presenting it.
    void expire_after(std::string token, std::chrono::milliseconds lifetime);

    router::verdict admit(const router::principal& who, std::string_view token) override;
    router::verdict refresh(const router::principal& who, std::string_view token) override;
    void forget(const router::principal& who) override;
    std::optional<std::chrono::milliseconds> token_lifetime(const router::principal& who) override;

    std::error_code can_subscribe(const router::principal& who, std::string_view pattern) override;
    std::error_code can_publish(const router::principal& who, std::string_view channel) override;
    std::error_code can_call(const router::principal& who, std::string_view service,
                             std::string_view method) override;
    std::error_code can_send(const router::principal& who, std::string_view address) override;
    std::error_code can_broadcast(const router::principal& who) override;
    std::error_code can_register(const router::principal& who, std::string_view service) override;
    std::error_code can_subscribe_clients(const router::principal& who, std::string_view pattern) override;
    std::span<const std::string> channels(const router::principal& who) override;

private:
    struct refusal_rule {
        errc code{};
        std::string reason;
    };
    router::verdict present(const router::principal& who, std::string_view token);
    // Null: the connection may do everything.
    const router::grants* rights(const router::principal& who) const;

    std::map<std::string, refusal_rule, std::less<>> refused_;
    std::map<std::string, router::grants, std::less<>> claims_;
    std::map<std::string, std::chrono::milliseconds, std::less<>> lifetimes_;
    std::map<std::uint64_t, std::string> tokens_;  // by connection
};

// A hello as the engine sent it.
struct hello_record {
    std::uint16_t min_version = 0;
    std::uint16_t max_version = 0;
    client_role role = client_role::frontend;
    std::string name;
    std::string token;
    std::string resume_session;
    std::uint8_t flags = 0;  // the hello frame's
};

class paired;

// One engine, its host, and the connection the core gives each transport
// the engine opens.
class peer : public event_log {
public:
    peer(paired& net, client_config config, router::transport_kind transport);
    peer(const peer&) = delete;
    peer& operator=(const peer&) = delete;

    client_engine engine;
    const router::transport_kind transport;

    // Every transport message the engine sent, and every one the router
    // sent it, decoded; forget_records() clears them with the events.
    std::vector<std::vector<wire_frame>> sent_messages;
    std::vector<std::vector<wire_frame>> received_messages;
    // Kept for the engine's whole life.
    std::vector<hello_record> hellos;
    std::vector<std::string> sessions;     // the session id of every welcome the router sent
    std::vector<std::string> opened_urls;  // every open_transport, in order

    std::vector<wire_frame> sent(frame_kind k) const { return frames_of(sent_messages, k); }
    std::vector<wire_frame> received(frame_kind k) const { return frames_of(received_messages, k); }
    void forget_records();

    // start() and a handshake the router accepts; clears the records.
    void connect();
    // The network lost the transport: both hosts report it.
    void drop_transport();

    // A stalled transport writes nothing to the engine (a slow network, a
    // busy page): what the router queues for it waits in its outbox.
    bool stalled = false;

private:
    friend class paired;
    struct woken_link;

    // Events into the log; open_transport and close_transport performed.
    bool settle();
    void open(std::uint32_t transport);
    // The engine's output into the core, one transport message at a time.
    bool transmit();
    // What the core queued, batch by batch, if it woke this connection.
    bool deliver();
    void closed_by_router();

    paired& net_;
    std::uint32_t transport_id_ = 0;
    bool up_ = false;
    router::connection_id connection_ = 0;
    std::shared_ptr<router::outbox> out_;
    std::shared_ptr<woken_link> link_;
    std::vector<std::uint8_t> scratch_;
};

// The router ("router-a", channels of epoch 1 unless told otherwise, as the
// fake router's) and its clients.
class paired {
public:
    explicit paired(router::router_config cfg = paired_config(), std::uint32_t epoch = 1);
    ~paired();
    paired(const paired&) = delete;
    paired& operator=(const paired&) = delete;

    const router::router_config cfg;
    scripted_authorizer auth;
    time_ms now = 1'000'000;

    // A client of the router; `transport` is the kind of every connection it opens.
    peer& add(client_config config, router::transport_kind transport = router::transport_kind::websocket);
    router::router_core& router() { return *core_; }

    // Carries bytes both ways and performs every action until quiet.
    void pump();
    // Only what `p` has sent so far reaches the core: nothing comes back yet.
    // Orders a race (what another client sent is routed first).
    void transmit(peer& p);
    // Moves the clock forward by `ms`, firing every deadline on the way.
    void advance(time_ms ms);
    // The router's operator asks it to drain (router_core::begin_drain).
    void begin_drain();
    // The router process ends and starts again with `epoch`: every transport
    // drops, and channels, history and services are gone.
    void restart_router(std::uint32_t epoch);

private:
    friend class peer;
    router::time_point router_time() const;
    void wake_transports();
    time_ms next_deadline() const;

    const std::string router_id_ = "router-a";
    std::unique_ptr<router::metrics> stats_;  // the router process's, as its core
    std::unique_ptr<router::router_core> core_;
    std::vector<std::unique_ptr<peer>> peers_;
};

}  // namespace hyperstreams::testing
