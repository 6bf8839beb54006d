#include "zmq_transport.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <vector>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "log.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;

// Messages received in one turn before the I/O thread serves its other
// handlers (the WebSocket sessions it shares with the socket).
constexpr int max_receives_per_turn = 256;
constexpr auto stalled_retry = std::chrono::milliseconds(5);
// After a disconnect, libzmq may take a moment to drop the pipe: probe again.
constexpr std::chrono::milliseconds probe_delays[] = {std::chrono::milliseconds(0),
                                                      std::chrono::milliseconds(50),
                                                      std::chrono::milliseconds(250)};

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

std::string hex(const std::string& bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

}  // namespace

struct zmq_transport::impl {
    // One backend connection: a routing id, its outbox, and a message the
    // socket would not take yet (its pipe is at the high-water mark).
    struct peer final : link {
        peer(impl& o, connection_id i, std::string rid, std::shared_ptr<outbox> q)
            : owner(o), id(i), routing_id(std::move(rid)), out(std::move(q)) {}
        void wake() override { owner.mark_ready(id); }

        impl& owner;
        const connection_id id;
        const std::string routing_id;
        const std::shared_ptr<outbox> out;
        std::optional<zmq::message_t> stalled;
        bool greeted = false;  // sent at least one message
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
          retry_timer(i),
          probe_timer(i) {}

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
        if (curve) zap_fd.assign(zap.get(zmq::sockopt::fd));
        asio::post(io, [this] {
            guarded([this] {
                wait(socket_fd, &impl::pump);
                wait(monitor_fd, &impl::read_monitor);
                read_monitor();
                if (curve) {
                    wait(zap_fd, &impl::answer_zap);
                    answer_zap();
                }
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

    // Sends what the core queued, retries stalled sends and due probes, and
    // receives while ZMQ_EVENTS says a message waits, at most
    // max_receives_per_turn of them before it lets the thread's other
    // handlers run.
    void pump() {
        if (stopped) return;
        in_pump = true;
        if (retry_due) {
            retry_due = false;
            retry_stalled();
        }
        run_probes();
        int budget = max_receives_per_turn;
        bool more = false;
        for (;;) {
            flush_ready();
            if ((socket.get(zmq::sockopt::events) & ZMQ_POLLIN) == 0) {
                if (flush_pending) continue;  // a receive or a loss queued more
                break;
            }
            if (budget <= 0) {
                more = true;
                break;
            }
            budget -= std::max(1, receive_some(budget));
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
        if (!probe_times.empty() && probe_armed_at != probe_times.front()) {
            probe_armed_at = probe_times.front();
            probe_timer.expires_at(probe_armed_at);  // cancels an earlier wait
            probe_timer.async_wait([this](const boost::system::error_code& ec) {
                if (ec || stopped) return;
                probe_armed_at = {};
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
            const connection_id id = handle(rid.to_string(), body);
            if (extra > 0) core.reject(id, errc::protocol_violation, "one ZeroMQ message must be one part");
        }
        return i;
    }

    // ZAP (ZeroMQ RFC 27): libzmq asks, for every CURVE handshake, whether the
    // client's public key may connect. Keys of backend_auth.curve_clients
    // may; the reply's user id (the key in Z85) comes back on every message
    // of the connection as the "User-Id" property.
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
            std::string status = "400", text = "key not allowed", user;
            // version, request id, domain, address, identity, mechanism, credentials...
            if (request.size() >= 7 && request[0].to_string_view() == "1.0" &&
                request[5].to_string_view() == "CURVE" && request[6].size() == 32) {
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
            const std::string request_id = request.size() > 1 ? request[1].to_string() : std::string();
            const std::string parts[] = {"1.0", request_id, status, text, user, ""};
            for (std::size_t i = 0; i < 6; ++i) {
                zmq::message_t out(parts[i].data(), parts[i].size());
                (void)zap.send(out, i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
            }
        }
    }

    // Passes one batch to the core; returns the connection it belongs to.
    connection_id handle(const std::string& rid, zmq::message_t& body) {
        auto& m = stats.of(transport_kind::zeromq);
        m.messages_in.fetch_add(1, std::memory_order_relaxed);
        m.bytes_in.fetch_add(body.size(), std::memory_order_relaxed);
        const auto* data = static_cast<const std::uint8_t*>(body.data());
        const bool is_hello = body.size() >= 2 && data[1] == static_cast<std::uint8_t>(frame_kind::hello);

        auto it = by_rid.find(rid);
        if (it != by_rid.end() && is_hello && it->second->greeted) {
            // The backend reconnected under the same routing id: a new session.
            const connection_id old = it->second->id;
            drop_peer(old);
            core.closed(old);
            it = by_rid.end();
        }
        if (it == by_rid.end()) {
            auto p = std::make_shared<peer>(*this, next_connection_id(), rid,
                                            std::make_shared<outbox>(outbox_limits_of(cfg)));
            connection_init init;
            init.id = p->id;
            init.transport = transport_kind::zeromq;
            try {
                const char* address = body.gets("Peer-Address");
                init.remote = std::string(address ? address : "") + " id=" + hex(rid);
            } catch (const zmq::error_t&) {
                init.remote = "id=" + hex(rid);
            }
            if (curve) {
                try {
                    if (const char* user = body.gets("User-Id")) init.curve_key = user;
                } catch (const zmq::error_t&) {
                }
            }
            init.session = p;
            init.out = p->out;
            by_id.emplace(p->id, p);
            it = by_rid.emplace(rid, p).first;
            peers.store(by_id.size(), std::memory_order_relaxed);
            core.open(std::move(init));
        }
        it->second->greeted = true;
        core.receive(it->second->id, bytes_view(data, body.size()));
        return it->second->id;
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
            if (batch.frames.empty()) {
                if (batch.close) drop_peer(id);
                return;
            }
            zmq::message_t msg(batch.bytes);
            auto* dst = static_cast<std::uint8_t*>(msg.data());
            for (const shared_bytes& f : batch.frames) {
                std::memcpy(dst, f->data(), f->size());
                dst += f->size();
            }
            auto& m = stats.of(transport_kind::zeromq);
            m.frames_out.fetch_add(batch.frames.size(), std::memory_order_relaxed);
            m.gaps.fetch_add(batch.gaps, std::memory_order_relaxed);
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
            auto& m = stats.of(transport_kind::zeromq);
            m.messages_out.fetch_add(1, std::memory_order_relaxed);
            m.bytes_out.fetch_add(size, std::memory_order_relaxed);
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
        auto r = by_rid.find(it->second->routing_id);
        if (r != by_rid.end() && r->second->id == id) by_rid.erase(r);
        by_id.erase(it);
        stalled_peers.erase(id);
        closing_after_stall.erase(id);
        peers.store(by_id.size(), std::memory_order_relaxed);
    }

    void read_monitor() {
        for (;;) {
            zmq::message_t event;
            if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
            std::uint16_t kind = 0;
            if (event.size() >= 2) std::memcpy(&kind, event.data(), 2);
            while (event.more()) {
                zmq::message_t rest;
                if (!monitor.recv(rest, zmq::recv_flags::dontwait)) break;
                event.swap(rest);
            }
            if (kind & ZMQ_EVENT_DISCONNECTED) {
                const auto now = steady_clock::now();
                probe_times.clear();
                for (auto d : probe_delays) probe_times.push_back(now + d);
                probe_armed_at = {};
                pump();  // the first probe is due now
            }
        }
    }

    // A ping to every backend: the send fails for the ones that left.
    void run_probes() {
        if (probe_times.empty() || steady_clock::now() < probe_times.front()) return;
        probe_times.erase(probe_times.begin());
        frame ping;
        ping.kind = frame_kind::ping;
        std::vector<std::uint8_t> bytes;
        (void)append(bytes, ping);
        std::vector<connection_id> ids;
        for (const auto& [id, p] : by_id)
            if (!p->stalled) ids.push_back(id);
        for (connection_id id : ids) {
            auto it = by_id.find(id);
            if (it == by_id.end()) continue;
            zmq::message_t msg(bytes.data(), bytes.size());
            if (send(*it->second, msg) == send_outcome::gone) lost(*it->second);
        }
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
    asio::steady_timer probe_timer;
    std::unordered_map<std::string, std::shared_ptr<peer>> by_rid;
    std::unordered_map<connection_id, std::shared_ptr<peer>> by_id;
    std::set<connection_id> stalled_peers;
    std::set<connection_id> closing_after_stall;
    std::vector<time_point> probe_times;
    time_point probe_armed_at{};
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
        s.set(zmq::sockopt::router_handover, 1);
        s.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(cfg.max_message_bytes));
        s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(cfg.heartbeat_interval_ms));
        s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(cfg.heartbeat_timeout_ms));
        s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(std::min<std::uint32_t>(cfg.heartbeat_timeout_ms, 6553500)));
        s.set(zmq::sockopt::sndhwm, static_cast<int>(cfg.outbox_zmq_hwm));
        s.set(zmq::sockopt::rcvhwm, 10000);
        s.set(zmq::sockopt::linger, 0);
        if (!cfg.curve_secret_key.empty()) {
            // The handler must be bound before the socket: libzmq asks it from the first handshake.
            impl_->zap.bind("inproc://zeromq.zap.01");
            impl_->curve = true;
            if (!cfg.curve_clients.empty()) {
                const auto clients = nlohmann::json::parse(cfg.curve_clients, nullptr, false);
                for (const auto& [key, rights] : clients.items()) impl_->curve_keys.insert(key);
            }
            s.set(zmq::sockopt::curve_server, 1);
            s.set(zmq::sockopt::curve_secretkey, cfg.curve_secret_key);
            s.set(zmq::sockopt::zap_domain, "hyperstreams");
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
    i.probe_timer.cancel();
    // What libzmq still holds for the backends (the goodbyes) gets `linger`.
    i.socket.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    i.monitor.close();
    i.zap.close();
    i.socket.close();
    i.ctx.close();
}

std::size_t zmq_transport::peer_count() const { return impl_->peers.load(std::memory_order_relaxed); }

}  // namespace hyperstreams::router
