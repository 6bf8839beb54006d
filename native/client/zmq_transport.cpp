// The ZeroMQ transport: one DEALER socket per connection to the router.
//
// Asio integration through the socket's ZMQ_FD rather than a dedicated
// thread: the engine, the timer and the socket then share the I/O thread and
// nothing needs a lock or a hand-off queue. ZMQ_FD is edge-triggered (it
// signals "ZMQ_EVENTS may have changed", and reading ZMQ_EVENTS, send() or
// recv() may consume that signal), so:
//   - every wake-up drains: send and receive until ZMQ_EVENTS says neither
//     can make progress;
//   - the wait is armed BEFORE the last check, never after it: a signal that
//     lands between the check and the wait would otherwise be lost (Asio
//     registers descriptors with EPOLLET and keeps no readiness of its own);
//   - send() only queues and posts a drain, because the send itself may eat
//     the signal of a message that arrived meanwhile.
//
// ZeroMQ hides connections; a socket monitor (PAIR socket over inproc)
// reports them: HANDSHAKE_SUCCEEDED is "opened"; DISCONNECTED, a failed
// handshake or a refused connection (CONNECT_RETRIED: libzmq would retry it
// by itself) is "closed", with the reason the engine passes on. The engine
// never sees libzmq's own reconnects: a lost connection closes this
// transport and the engine opens a new one (a new socket, so the router sees
// a new routing id and a new session), after its own backoff.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <atomic>
#include <cstring>
#include <deque>
#include <zmq.hpp>

#include "hyperstreams/native/engine_host.hpp"
#include "transport.hpp"

namespace hyperstreams::native {

namespace asio = boost::asio;

class zmq_context {
public:
    zmq::context_t context{1};
    std::atomic<std::uint64_t> monitors{0};
};

std::shared_ptr<zmq_context> make_zmq_context() { return std::make_shared<zmq_context>(); }

namespace {

// Time libzmq may keep sending a closed socket's last messages (the goodbye).
constexpr int close_linger_ms = 500;
// ZeroMQ-level heartbeats close a TCP connection whose peer vanished without
// a FIN (the protocol's own heartbeats would notice too, later).
constexpr int zmq_heartbeat_ivl_ms = 2000;
constexpr int zmq_heartbeat_timeout_ms = 6000;

class zmq_link final : public transport, public std::enable_shared_from_this<zmq_link> {
public:
    zmq_link(asio::io_context& io, std::shared_ptr<zmq_context> context, transport_callbacks cb)
        : io_(io),
          context_(std::move(context)),
          callbacks_(std::move(cb)),
          socket_(context_->context, zmq::socket_type::dealer),
          monitor_(context_->context, zmq::socket_type::pair),
          data_fd_(io),
          monitor_fd_(io) {}

    ~zmq_link() override { shutdown(); }

    void start(const std::string& url, const transport_options& options) {
        url_ = url;
        try {
            const curve_keys& curve = options.curve;
            if (curve.enabled()) {
                socket_.set(zmq::sockopt::curve_serverkey, curve.server_public);
                socket_.set(zmq::sockopt::curve_publickey, curve.public_key);
                socket_.set(zmq::sockopt::curve_secretkey, curve.secret_key);
            }
            socket_.set(zmq::sockopt::linger, 0);
            socket_.set(zmq::sockopt::heartbeat_ivl, zmq_heartbeat_ivl_ms);
            socket_.set(zmq::sockopt::heartbeat_timeout, zmq_heartbeat_timeout_ms);
            if (options.receive_buffer_bytes > 0) socket_.set(zmq::sockopt::rcvbuf, options.receive_buffer_bytes);
            const std::string endpoint = "inproc://hyperstreams-host-monitor-" +
                                         std::to_string(context_->monitors.fetch_add(1));
            if (zmq_socket_monitor(socket_.handle(), endpoint.c_str(),
                                   ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                       ZMQ_EVENT_CONNECT_RETRIED |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
                throw zmq::error_t();
            monitor_.connect(endpoint);
            socket_.connect(url);
            data_fd_.assign(socket_.get(zmq::sockopt::fd));
            monitor_fd_.assign(monitor_.get(zmq::sockopt::fd));
        } catch (const zmq::error_t& e) {
            // A malformed endpoint or an exhausted context: a connection that failed.
            fail_later(errc::connection_failed, "cannot connect to " + url + ": " + e.what());
            return;
        }
        wait_data();
        wait_monitor();
        // Armed, now check: whatever was signalled before the waits existed
        // produced no edge they could see.
        asio::post(io_, [self = shared_from_this()] {
            if (self->closed_) return;
            self->read_monitor();
            self->drain();
        });
    }

    void send(bytes_view message) override {
        if (closed_) return;
        out_.emplace_back(message.data(), message.size());
        schedule_drain();
    }

    void close() override {
        owner_closed_ = true;
        if (closed_) return;
        closed_ = true;
        // Hand what is queued to libzmq: it keeps sending during the linger.
        for (zmq::message_t& m : out_) {
            try {
                if (!socket_.send(m, zmq::send_flags::dontwait)) break;
            } catch (const zmq::error_t&) {
                break;
            }
        }
        out_.clear();
        shutdown(close_linger_ms);
    }

    bool busy() const override { return false; }  // libzmq owns the linger

    void set_reading(bool reading) override {
        reading_ = reading;
        if (reading_) schedule_drain();
    }

    void abort() override {
        if (closed_) return;
        out_.clear();
        shutdown();
        fail_later({}, {});
    }

private:
    void fail_later(errc reason, std::string detail) {
        if (closed_) return;
        closed_ = true;
        asio::post(io_, [self = shared_from_this(), reason, detail = std::move(detail)] {
            self->shutdown();
            if (self->callbacks_.closed && !self->owner_closed_) self->callbacks_.closed(reason, detail);
        });
    }

    // Lost or failed: no more traffic, tell the host once.
    void lost(errc reason = {}, const std::string& detail = {}) {
        if (closed_) return;
        closed_ = true;
        shutdown();
        if (callbacks_.closed) callbacks_.closed(reason, detail);
    }

    void shutdown(int linger = 0) {
        if (released_) return;
        released_ = true;
        // release() cancels the waits without closing: the descriptors belong to libzmq.
        if (data_fd_.is_open()) (void)data_fd_.release();
        if (monitor_fd_.is_open()) (void)monitor_fd_.release();
        try {
            (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
            monitor_.close();
            socket_.set(zmq::sockopt::linger, linger);
            socket_.close();
        } catch (const zmq::error_t&) {
        }
    }

    void schedule_drain() {
        if (drain_posted_) return;
        drain_posted_ = true;
        asio::post(io_, [self = shared_from_this()] {
            self->drain_posted_ = false;
            self->drain();
        });
    }

    void wait_data() {
        data_fd_.async_wait(asio::posix::descriptor_base::wait_read,
                            [self = shared_from_this()](const boost::system::error_code& ec) {
                                if (ec || self->closed_) return;
                                self->wait_data();  // armed first, then drained: see the top
                                self->drain();
                            });
    }

    void wait_monitor() {
        monitor_fd_.async_wait(asio::posix::descriptor_base::wait_read,
                               [self = shared_from_this()](const boost::system::error_code& ec) {
                                   if (ec || self->closed_) return;
                                   self->wait_monitor();
                                   self->read_monitor();
                               });
    }

    void drain() {
        while (!closed_) {
            int events = 0;
            try {
                events = socket_.get(zmq::sockopt::events);
            } catch (const zmq::error_t&) {
                return lost();
            }
            bool progress = false;
            if ((events & ZMQ_POLLOUT) != 0 && !out_.empty()) {
                try {
                    if (socket_.send(out_.front(), zmq::send_flags::dontwait)) {
                        out_.pop_front();
                        progress = true;
                    }
                } catch (const zmq::error_t&) {
                    return lost();
                }
            }
            if ((events & ZMQ_POLLIN) != 0 && reading_) {
                zmq::message_t message;
                zmq::recv_result_t got;
                try {
                    got = socket_.recv(message, zmq::recv_flags::dontwait);
                } catch (const zmq::error_t&) {
                    return lost();
                }
                if (got) {
                    progress = true;
                    if (callbacks_.received)
                        callbacks_.received(bytes_view(static_cast<const std::uint8_t*>(message.data()),
                                                       message.size()));
                }
            }
            if (!progress) return;
        }
    }

    void read_monitor() {
        while (!closed_) {
            zmq::message_t event;
            zmq::recv_result_t got;
            try {
                got = monitor_.recv(event, zmq::recv_flags::dontwait);
            } catch (const zmq::error_t&) {
                return;
            }
            if (!got) return;
            std::uint16_t kind = 0;
            if (event.size() >= sizeof kind) std::memcpy(&kind, event.data(), sizeof kind);
            // The second part names the endpoint; nothing here needs it.
            while (event.more()) {
                zmq::message_t rest;
                try {
                    if (!monitor_.recv(rest, zmq::recv_flags::dontwait)) break;
                } catch (const zmq::error_t&) {
                    break;
                }
                event.swap(rest);
            }
            if (kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                if (!opened_) {
                    opened_ = true;
                    if (callbacks_.opened) callbacks_.opened();
                    drain();
                }
            } else if (opened_) {
                return lost();
            } else {
                // Refused, or a handshake libzmq would retry forever (not a
                // ZeroMQ peer, wrong security mechanism).
                return lost_before_open(kind);
            }
        }
    }

    void lost_before_open(std::uint16_t kind) {
        switch (kind) {
            case ZMQ_EVENT_CONNECT_RETRIED:
                return lost(errc::connection_refused, "nothing accepts connections at " + url_);
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                return lost(errc::transport_handshake_failed,
                            "the router at " + url_ + " refused this backend's CURVE key");
            default:
                return lost(errc::transport_handshake_failed,
                            "no ZMTP handshake with " + url_ + ": not a ZeroMQ endpoint?");
        }
    }

    asio::io_context& io_;
    std::string url_;
    std::shared_ptr<zmq_context> context_;
    transport_callbacks callbacks_;
    zmq::socket_t socket_;
    zmq::socket_t monitor_;
    asio::posix::stream_descriptor data_fd_;
    asio::posix::stream_descriptor monitor_fd_;
    std::deque<zmq::message_t> out_;
    bool opened_ = false;
    bool closed_ = false;
    bool released_ = false;
    bool drain_posted_ = false;
    bool reading_ = true;
    bool owner_closed_ = false;  // close() was called: no callback runs any more
};

}  // namespace

std::shared_ptr<transport> open_zmq_transport(asio::io_context& io,
                                              const std::shared_ptr<zmq_context>& context,
                                              const std::string& url, const transport_options& options,
                                              transport_callbacks callbacks) {
    auto link = std::make_shared<zmq_link>(io, context, std::move(callbacks));
    link->start(url, options);
    return link;
}

}  // namespace hyperstreams::native
