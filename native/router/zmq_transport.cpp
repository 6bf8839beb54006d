#include "zmq_transport.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "io_lane.hpp"
#include "log.hpp"
#include "outbox.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;

// Messages received in one turn before the I/O thread serves its other
// handlers (the WebSocket sessions it shares with the socket).
constexpr int max_receives_per_turn = 256;
constexpr auto stalled_retry = std::chrono::milliseconds(5);
// The ZAP handler's name for a connection, on every message of it (a ZAP
// metadata property: ZeroMQ RFC 27, encoded as ZMTP metadata).
constexpr std::string_view handshake_property = "X-Handshake";

// libzmq numbers the peers that present no routing id from a counter that
// starts at rand()'s value (router.cpp, generate_random()), and never seeds
// rand(): unseeded, every router numbers its backends alike, and a peer that
// presents the next number first makes libzmq abort when it gives that
// number to a backend (its routing table asserts that ids are unique). So
// the counter starts at one of 2^32 values nobody can predict. rand() is
// process-wide; nothing else in the router uses it.
zmq::socket_t router_socket(zmq::context_t& ctx) {
    std::random_device entropy;
    std::srand(entropy());
    return zmq::socket_t(ctx, zmq::socket_type::router);
}

// ZMTP metadata (RFC 23): a one-byte name length, the name, a four-byte
// big-endian value length, the value.
std::string metadata_property(std::string_view name, std::string_view value) {
    std::string out;
    out += static_cast<char>(name.size());
    out += name;
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value.size() >> shift) & 0xFF);
    out += value;
    return out;
}

// The number our ZAP handler gave the connection `msg` came from.
std::optional<std::uint64_t> handshake_of(zmq::message_t& msg) {
    const char* text = nullptr;
    try {
        text = msg.gets(handshake_property.data());
    } catch (const zmq::error_t&) {
        return std::nullopt;
    }
    std::uint64_t n = 0;
    const char* end = text + std::strlen(text);
    const auto [ptr, ec] = std::from_chars(text, end, n);
    if (ec != std::errc() || ptr != end) return std::nullopt;
    return n;
}

// The descriptor of the TCP (or IPC) connection `msg` came from, -1 if unknown.
int descriptor_of(zmq::message_t& msg) {
    try {
        return msg.get(ZMQ_SRCFD);
    } catch (const zmq::error_t&) {
        return -1;
    }
}

}  // namespace

struct zmq_transport::impl {
    // One backend session: the connection it is bound to (its handshake
    // number and descriptor), the routing id libzmq addresses that
    // connection by, its outbox, and a message the socket would not take yet
    // (its pipe is at the high-water mark).
    struct peer final : link {
        peer(impl& o, connection_id i, std::uint64_t h, std::string rid, int d, std::shared_ptr<outbox> q)
            : owner(o), id(i), handshake(h), routing_id(std::move(rid)), fd(d), out(std::move(q)) {}
        void wake() override { owner.mark_ready(id); }

        impl& owner;
        const connection_id id;
        const std::uint64_t handshake;
        const std::string routing_id;
        const int fd;  // -1: unknown, the connection's end is then found by a send or the heartbeat
        const std::shared_ptr<outbox> out;
        std::optional<zmq::message_t> stalled;
        // The monitor reported the connection's end: nothing more is sent
        // to its routing id, and the session ends once its last messages
        // are read.
        bool disconnected = false;
    };

    impl(const router_config& c, metrics& m, core_runner& r, asio::io_context& i)
        : cfg(c),
          stats(m),
          core(r),
          io(i),
          socket(router_socket(ctx)),
          monitor(ctx, zmq::socket_type::pair),
          zap(ctx, zmq::socket_type::rep),
          socket_fd(i),
          monitor_fd(i),
          zap_fd(i),
          retry_timer(i) {}

    // Any thread: the core queued frames for backend `id`.
    void mark_ready(connection_id id) {
        bool first = false;
        {
            std::lock_guard lock(ready_mu);
            first = ready.empty();
            ready.push_back(id);
        }
        if (io.get_executor().running_in_this_thread() && in_pump) {
            // Woken by the core running inside pump(): it flushes before it
            // returns.
            flush_pending = true;
            return;
        }
        if (first) asio::post(io, [this] { guarded([this] { pump(); }); });
    }

    // ZMQ_FD is edge-triggered: it signals "ZMQ_EVENTS may have changed",
    // and reading ZMQ_EVENTS, send() and recv() may consume that signal. So
    // each wait is armed before the check it guards, and pump() reads
    // ZMQ_EVENTS after its sends, never before them.
    void start() {
        socket_fd.assign(socket.get(zmq::sockopt::fd));
        monitor_fd.assign(monitor.get(zmq::sockopt::fd));
        zap_fd.assign(zap.get(zmq::sockopt::fd));
        asio::post(io, [this] {
            guarded([this] {
                wait(socket_fd, &impl::pump);
                wait(monitor_fd, &impl::serve_monitor);
                wait(zap_fd, &impl::answer_zap);
                read_monitor();
                answer_zap();
                pump();
            });
        });
    }

    // A failure of libzmq here leaves the tables half-updated: stop.
    template <typename Fn>
    void guarded(Fn&& fn) {
        try {
            fn();
        } catch (const std::exception& e) {
            HS_LOG(error, "zmq.crash").kv("what", e.what());
            std::abort();
        }
    }

    // Waits until `fd` is readable, then arms the wait again and serves it.
    void wait(asio::posix::stream_descriptor& fd, void (impl::*serve)()) {
        fd.async_wait(asio::posix::descriptor_base::wait_read,
                      [this, &fd, serve](const boost::system::error_code& ec) {
                          if (ec || stopped) return;
                          guarded([&] {
                              wait(fd, serve);
                              (this->*serve)();
                          });
                      });
    }

    // Sends what the core queued and retries stalled sends, receives while
    // ZMQ_EVENTS says a message waits, at most max_receives_per_turn of them
    // before it lets the thread's other handlers run, then ends the sessions
    // whose connections the monitor saw end: a connection's last messages
    // were in its pipe before libzmq reported its end, so they were read
    // first (unless this turn's budget ran out).
    void pump() {
        if (stopped) return;
        in_pump = true;
        if (retry_due) {
            retry_due = false;
            retry_stalled();
        }
        int budget = max_receives_per_turn;
        bool more = false;
        for (;;) {
            flush_ready();
            const bool readable = (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
            if (readable && budget > 0) {
                budget -= std::max(1, receive_some(budget));
                continue;
            }
            if (!disconnected.empty()) {
                end_disconnected();
                continue;
            }
            if (!readable && flush_pending) continue;  // a receive or a loss queued more
            more = readable;
            break;
        }
        in_pump = false;
        if (more) asio::post(io, [this] { guarded([this] { pump(); }); });
        arm_timers();
    }

    void arm_timers() {
        if (!stalled_peers.empty() && !retry_armed) {
            retry_armed = true;
            retry_timer.expires_after(stalled_retry);
            retry_timer.async_wait([this](const boost::system::error_code& ec) {
                retry_armed = false;
                if (ec || stopped) return;
                retry_due = true;
                guarded([this] { pump(); });
            });
        }
    }

    // The core handles each message here, on this thread, before the next
    // one is taken: unread input waits in libzmq, bounded by ZMQ_RCVHWM.
    // Returns how many messages it took, at most `limit`.
    int receive_some(int limit) {
        int i = 0;
        for (; i < limit; ++i) {
            zmq::message_t rid;
            if (!socket.recv(rid, zmq::recv_flags::dontwait)) return i;
            if (!rid.more()) continue;  // a ROUTER always delivers the routing id first
            zmq::message_t body;
            if (!socket.recv(body, zmq::recv_flags::dontwait)) continue;
            std::size_t extra = 0;
            for (bool more = body.more(); more; ++extra) {
                // One batch is one part (PROTOCOL.md, section 1): drain the rest.
                zmq::message_t part;
                if (!socket.recv(part, zmq::recv_flags::dontwait)) break;
                more = part.more();
            }
            const std::optional<connection_id> id = handle(rid.to_string(), body);
            if (id && extra > 0) core.reject(*id, errc::protocol_violation, "one ZeroMQ message must be one part");
        }
        return i;
    }

    // ZAP (ZeroMQ RFC 27): libzmq asks, for every handshake, whether the peer
    // may connect. Under CURVE, keys of backend_auth.curve_clients may, and
    // the reply's user id (the key in Z85) comes back on every message of
    // the connection as the "User-Id" property; without CURVE, every peer
    // may. Either way the reply numbers the connection: that number comes
    // back on every message of it as the X-Handshake property, which the
    // peer cannot set (libzmq lets the handler's properties win over the
    // peer's own), and binds the session to the connection (see handle()).
    void answer_zap() {
        for (;;) {
            std::vector<zmq::message_t> request;
            do {
                zmq::message_t part;
                if (!zap.recv(part, zmq::recv_flags::dontwait)) {
                    if (request.empty()) return;
                    break;
                }
                request.push_back(std::move(part));
            } while (request.back().more());
            std::string status = "400", text = "key not allowed", user, metadata;
            // version, request id, domain, address, identity, mechanism, credentials...
            const bool well_formed = request.size() >= 6 && request[0].to_string_view() == "1.0";
            if (well_formed && !curve && request[5].to_string_view() == "NULL") {
                status = "200";
                text = "OK";
            } else if (well_formed && curve && request.size() >= 7 && request[5].to_string_view() == "CURVE" &&
                       request[6].size() == 32) {
                char z85[41] = {};
                if (zmq_z85_encode(z85, static_cast<const std::uint8_t*>(request[6].data()), 32) != nullptr &&
                    curve_keys.count(z85) != 0) {
                    status = "200";
                    text = "OK";
                    user = z85;
                }
                if (status != "200") {
                    stats.curve_refused.fetch_add(1, std::memory_order_relaxed);
                    HS_LOG(warn, "zmq.curve_refused").kv("key", std::string_view(z85))
                        .kv("address", request[3].to_string_view());
                }
            }
            if (status == "200") metadata = metadata_property(handshake_property, std::to_string(++handshakes));
            const std::string request_id = request.size() > 1 ? request[1].to_string() : std::string();
            const std::string parts[] = {"1.0", request_id, status, text, user, metadata};
            for (std::size_t i = 0; i < 6; ++i) {
                zmq::message_t out(parts[i].data(), parts[i].size());
                (void)zap.send(out, i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
            }
        }
    }

    // Passes one batch to the core; returns the session it belongs to.
    //
    // A session is bound to the connection it began on, never to the
    // routing id, which the peer chooses (ZMQ_ROUTING_ID) and anyone can
    // present: a message belongs to the session of the connection our ZAP
    // handler numbered, and a number with no session starts a new one, which
    // must say hello first. With router_handover off, libzmq does not even
    // read a second connection that presents a live connection's routing
    // id; it gives the id to another connection only once the first one is
    // gone. So a connection new to the router that presents a routing id a
    // session still holds means that session's connection ended.
    std::optional<connection_id> handle(const std::string& rid, zmq::message_t& body) {
        auto& m = stats.local(transport_kind::zeromq);
        m.messages_in.add(1);
        m.bytes_in.add(body.size());
        const std::optional<std::uint64_t> handshake = handshake_of(body);
        if (!handshake) {
            // Cannot happen while the ZAP handler is bound (bind() binds it
            // first): no session to give it to.
            HS_LOG(error, "zmq.unnumbered_message");
            return std::nullopt;
        }
        auto it = by_handshake.find(*handshake);
        if (it == by_handshake.end()) it = open_peer(*handshake, rid, body);
        const auto* data = static_cast<const std::uint8_t*>(body.data());
        core.receive(it->second->id, bytes_view(data, body.size()));
        return it->second->id;
    }

    using peer_map = std::unordered_map<std::uint64_t, std::shared_ptr<peer>>;

    peer_map::iterator open_peer(std::uint64_t handshake, const std::string& rid, zmq::message_t& body) {
        // The ends libzmq reported before this message was read are those of
        // connections that ended before it was sent: take them before this
        // connection's descriptor (perhaps a reused one) is bound.
        read_monitor();
        if (auto held = by_rid.find(rid); held != by_rid.end()) {
            const std::shared_ptr<peer> previous = held->second;
            lost(*previous);
        }
        auto p = std::make_shared<peer>(*this, next_connection_id(), handshake, rid, descriptor_of(body),
                                        std::make_shared<outbox>(outbox_limits_of(cfg)));
        connection_init init;
        init.id = p->id;
        init.transport = transport_kind::zeromq;
        try {
            if (const char* address = body.gets("Peer-Address")) init.remote = address;
        } catch (const zmq::error_t&) {
        }
        if (curve) {
            try {
                if (const char* user = body.gets("User-Id")) init.curve_key = user;
            } catch (const zmq::error_t&) {
            }
        }
        init.session = p;
        init.out = p->out;
        init.served_by = io_lane::of(io);
        by_id.emplace(p->id, p);
        by_rid.emplace(rid, p);
        if (p->fd >= 0) by_fd[p->fd] = p->id;
        peers.store(by_id.size(), std::memory_order_relaxed);
        core.open(std::move(init));
        return by_handshake.emplace(handshake, p).first;
    }

    void flush_ready() {
        flush_pending = false;
        std::vector<connection_id> ids;
        {
            std::lock_guard lock(ready_mu);
            ids.swap(ready);
        }
        for (connection_id id : ids) flush(id);
    }

    void retry_stalled() {
        if (stalled_peers.empty()) return;
        std::vector<connection_id> ids(stalled_peers.begin(), stalled_peers.end());
        stalled_peers.clear();
        for (connection_id id : ids) flush(id);
    }

    // Sends what the peer's outbox holds, one coalesced message per batch,
    // until it is empty or the socket pushes back.
    void flush(connection_id id) {
        auto found = by_id.find(id);
        if (found == by_id.end()) return;
        std::shared_ptr<peer> p = found->second;
        if (p->disconnected) return;  // the routing id may reach another connection by now
        for (;;) {
            if (p->stalled) {
                switch (send(*p, *p->stalled)) {
                    case send_outcome::sent: p->stalled.reset(); break;
                    case send_outcome::full: stalled_peers.insert(id); return;
                    case send_outcome::gone: return lost(*p);
                }
                if (closing_after_stall.erase(id)) return drop_peer(id);
            }
            p->out->take(batch);
            if (batch.spans.empty()) {
                if (batch.close) drop_peer(id);
                return;
            }
            zmq::message_t msg(batch.bytes);
            auto* dst = static_cast<std::uint8_t*>(msg.data());
            for (const shared_bytes& f : batch.spans) {
                std::memcpy(dst, f->data(), f->size());
                dst += f->size();
            }
            auto& m = stats.local(transport_kind::zeromq);
            m.frames_out.add(batch.frames);
            m.gaps.add(batch.gaps);
            const bool close_after = batch.close;
            switch (send(*p, msg)) {
                case send_outcome::sent: break;
                case send_outcome::full:
                    p->stalled.emplace(std::move(msg));
                    stalled_peers.insert(id);
                    if (close_after) closing_after_stall.insert(id);
                    return;
                case send_outcome::gone: return lost(*p);
            }
            if (close_after) return drop_peer(id);
        }
    }

    enum class send_outcome : std::uint8_t { sent, full, gone };

    send_outcome send(peer& p, zmq::message_t& body) {
        try {
            zmq::message_t rid(p.routing_id.data(), p.routing_id.size());
            if (!socket.send(rid, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return send_outcome::full;
            const std::size_t size = body.size();
            // The routing part went through, so the pipe takes the body.
            (void)socket.send(body, zmq::send_flags::dontwait);
            auto& m = stats.local(transport_kind::zeromq);
            m.messages_out.add(1);
            m.bytes_out.add(size);
            return send_outcome::sent;
        } catch (const zmq::error_t& e) {
            if (e.num() == EHOSTUNREACH) return send_outcome::gone;
            HS_LOG(warn, "zmq.send_failed").kv("conn", p.id).kv("error", e.what());
            return send_outcome::gone;
        }
    }

    // libzmq no longer knows the peer: the backend is gone.
    void lost(peer& p) {
        const connection_id id = p.id;
        HS_LOG(info, "zmq.peer_gone").kv("conn", id);
        drop_peer(id);
        core.closed(id);
    }

    void drop_peer(connection_id id) {
        auto it = by_id.find(id);
        if (it == by_id.end()) return;
        const peer& p = *it->second;
        if (auto r = by_rid.find(p.routing_id); r != by_rid.end() && r->second->id == id) by_rid.erase(r);
        if (auto h = by_handshake.find(p.handshake); h != by_handshake.end() && h->second->id == id)
            by_handshake.erase(h);
        if (auto f = by_fd.find(p.fd); f != by_fd.end() && f->second == id) by_fd.erase(f);
        by_id.erase(it);
        stalled_peers.erase(id);
        closing_after_stall.erase(id);
        peers.store(by_id.size(), std::memory_order_relaxed);
    }

    void serve_monitor() {
        read_monitor();
        if (!disconnected.empty()) pump();
    }

    // Marks the sessions whose connections libzmq reported ended; pump()
    // ends them. A DISCONNECTED event names the descriptor, which libzmq
    // closes only after the event: a descriptor reused by a later connection
    // is bound to a session only once the event was taken (open_peer()).
    void read_monitor() {
        for (;;) {
            zmq::message_t event;
            if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
            std::uint16_t kind = 0;
            std::int32_t fd = -1;
            if (event.size() >= 6) {
                std::memcpy(&kind, event.data(), 2);
                std::memcpy(&fd, static_cast<const char*>(event.data()) + 2, 4);
            }
            while (event.more()) {
                zmq::message_t rest;
                if (!monitor.recv(rest, zmq::recv_flags::dontwait)) break;
                event.swap(rest);
            }
            if ((kind & ZMQ_EVENT_DISCONNECTED) == 0) continue;
            auto bound = by_fd.find(fd);
            if (bound == by_fd.end()) continue;
            const connection_id id = bound->second;
            by_fd.erase(bound);
            if (auto p = by_id.find(id); p != by_id.end()) {
                p->second->disconnected = true;
                disconnected.push_back(id);
            }
        }
    }

    void end_disconnected() {
        std::vector<connection_id> ids;
        ids.swap(disconnected);
        for (connection_id id : ids)
            if (auto it = by_id.find(id); it != by_id.end()) lost(*it->second);
    }

    const router_config& cfg;
    metrics& stats;
    core_runner& core;
    asio::io_context& io;
    zmq::context_t ctx{1};
    zmq::socket_t socket;
    zmq::socket_t monitor;
    zmq::socket_t zap;
    bool curve = false;
    std::set<std::string, std::less<>> curve_keys;  // Z85 public keys let in
    std::atomic<std::size_t> peers{0};
    bool started = false;

    std::mutex ready_mu;
    std::vector<connection_id> ready;

    // Owned by the thread that runs `io` (and by stop(), once it no longer runs).
    // The descriptors are libzmq's: released, never closed, by stop().
    asio::posix::stream_descriptor socket_fd;
    asio::posix::stream_descriptor monitor_fd;
    asio::posix::stream_descriptor zap_fd;
    asio::steady_timer retry_timer;
    std::uint64_t handshakes = 0;  // numbers given by answer_zap()
    peer_map by_handshake;
    std::unordered_map<std::string, std::shared_ptr<peer>> by_rid;
    std::unordered_map<int, connection_id> by_fd;
    std::unordered_map<connection_id, std::shared_ptr<peer>> by_id;
    std::set<connection_id> stalled_peers;
    std::set<connection_id> closing_after_stall;
    std::vector<connection_id> disconnected;  // marked by read_monitor(), ended by pump()
    outbox_batch batch;
    bool stopped = false;
    bool in_pump = false;
    bool flush_pending = false;  // `ready` got ids from inside pump(), without a post
    bool retry_due = false;
    bool retry_armed = false;
};

zmq_transport::zmq_transport(const router_config& cfg, metrics& m, core_runner& core, asio::io_context& io)
    : impl_(std::make_unique<impl>(cfg, m, core, io)) {}

zmq_transport::~zmq_transport() { stop(std::chrono::milliseconds(0)); }

std::string zmq_transport::bind(const std::string& endpoint) {
    zmq::socket_t& s = impl_->socket;
    const router_config& cfg = impl_->cfg;
    std::string where = endpoint;
    // "tcp://host:0" asks for any free port, as "tcp://host:*" does.
    if (where.rfind("tcp://", 0) == 0 && where.size() > 2 && where.compare(where.size() - 2, 2, ":0") == 0)
        where.replace(where.size() - 1, 1, "*");
    try {
        s.set(zmq::sockopt::router_mandatory, 1);
        // A second connection presenting a live connection's routing id is
        // not read, and does not take the id over (see handle()).
        s.set(zmq::sockopt::router_handover, 0);
        s.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(cfg.max_message_bytes));
        s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(cfg.heartbeat_interval_ms));
        s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(cfg.heartbeat_timeout_ms));
        s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(std::min<std::uint32_t>(cfg.heartbeat_timeout_ms, 6553500)));
        s.set(zmq::sockopt::sndhwm, static_cast<int>(cfg.outbox_zmq_hwm));
        s.set(zmq::sockopt::rcvhwm, 10000);
        s.set(zmq::sockopt::linger, 0);
        // The ZAP handler numbers every connection (answer_zap()). It must be
        // bound before the socket: libzmq asks it from the first handshake,
        // and a handshake that finds no handler goes on without it.
        impl_->zap.bind("inproc://zeromq.zap.01");
        s.set(zmq::sockopt::zap_domain, "hyperstreams");
        if (!cfg.curve_secret_key.empty()) {
            impl_->curve = true;
            if (cfg.curve_clients)
                for (const auto& [key, client] : *cfg.curve_clients) impl_->curve_keys.insert(key);
            s.set(zmq::sockopt::curve_server, 1);
            s.set(zmq::sockopt::curve_secretkey, cfg.curve_secret_key);
        }
        s.bind(where);
        const std::string monitor = "inproc://hyperstreams-router-monitor-" +
                                    std::to_string(reinterpret_cast<std::uintptr_t>(impl_.get()));
        if (zmq_socket_monitor(s.handle(), monitor.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) throw zmq::error_t();
        impl_->monitor.connect(monitor);
        return s.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("backend: cannot bind " + endpoint + ": " + e.what());
    }
}

void zmq_transport::start() {
    impl_->started = true;
    impl_->start();
}

void zmq_transport::stop(std::chrono::milliseconds linger) {
    impl& i = *impl_;
    if (!i.started || i.stopped) return;
    i.stopped = true;
    // release() cancels the waits without closing: the descriptors are libzmq's.
    for (auto* fd : {&i.socket_fd, &i.monitor_fd, &i.zap_fd})
        if (fd->is_open()) (void)fd->release();
    i.retry_timer.cancel();
    // What libzmq still holds for the backends (the goodbyes) gets `linger`.
    i.socket.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    i.monitor.close();
    i.zap.close();
    i.socket.close();
    i.ctx.close();
}

std::size_t zmq_transport::peer_count() const { return impl_->peers.load(std::memory_order_relaxed); }

}  // namespace hyperstreams::router
