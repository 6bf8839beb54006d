#include "test_client.hpp"

#include <gtest/gtest.h>

#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <zmq.hpp>

namespace hyperstreams::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

struct url_parts {
    bool websocket = false;
    bool tls = false;
    std::string host;
    std::string port;
    std::string path = "/";
};

bool parse_url(std::string_view url, url_parts& out) {
    std::string_view rest;
    if (url.rfind("ws://", 0) == 0) {
        out.websocket = true;
        rest = url.substr(5);
    } else if (url.rfind("wss://", 0) == 0) {
        out.websocket = true;
        out.tls = true;
        rest = url.substr(6);
    } else if (url.rfind("tcp://", 0) == 0) {
        rest = url.substr(6);
    } else {
        return false;
    }
    const std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) out.path = std::string(rest.substr(slash));
    const std::size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) return false;
    out.host = std::string(authority.substr(0, colon));
    out.port = std::string(authority.substr(colon + 1));
    return true;
}

recorded_event copy_event(const client_event& e) {
    recorded_event r;
    r.kind = e.kind;
    r.op = e.op;
    r.state = e.state;
    r.previous = e.previous;
    r.flags = e.flags;
    r.code = e.code;
    r.id = e.id;
    r.subscription = e.subscription;
    r.epoch = e.epoch;
    r.seq = e.seq;
    r.count = e.count;
    r.name = std::string(e.name);
    r.method = std::string(e.method);
    r.text = std::string(e.text);
    r.payload.assign(e.payload.begin(), e.payload.end());
    if (e.services) {
        for (const service_info& s : e.services->services) {
            recorded_event::service out;
            out.name = std::string(s.name);
            out.instances = s.instances;
            for (const method_info& m : s.methods) out.methods.emplace_back(std::string(m.name), m.kind);
            r.services.push_back(std::move(out));
        }
    }
    return r;
}

}  // namespace

// One transport the engine asked for. Lives as long as an operation on it is pending.
class transport : public std::enable_shared_from_this<transport> {
public:
    virtual ~transport() = default;
    virtual void open() = 0;
    virtual void send(std::vector<std::uint8_t> bytes) = 0;
    virtual void close_after_flush() = 0;
    virtual void drop() = 0;
    virtual void set_paused(bool) {}
    virtual bool is_open() const = 0;
};

struct test_client::impl : std::enable_shared_from_this<test_client::impl> {
    impl(client_config cfg, host_options o)
        : engine(std::move(cfg)), options(o), timer(ioc), work(asio::make_work_guard(ioc)) {}

    // Reports from transports, on the io thread.
    void opened(std::uint32_t id) {
        if (stopping) return;
        engine.transport_opened(id, now());
        pump();
    }
    void closed(std::uint32_t id) {
        if (stopping) return;
        if (id == transport_id) current.reset();
        engine.transport_closed(id, now());
        pump();
    }
    void received(std::uint32_t id, bytes_view bytes) {
        if (stopping || id != transport_id) return;
        const std::error_code ec = engine.receive(bytes, now());
        EXPECT_FALSE(ec) << "engine refused bytes: " << ec.message();
        pump();
    }

    void pump();
    void open_transport(std::uint32_t id, std::string_view url);
    void arm_timer();
    static time_ms now() { return test_client::now(); }

    void record(const client_event& e) {
        recorded_event copy = copy_event(e);
        {
            std::lock_guard lock(mu);
            recorded.push_back(copy);
        }
        cv.notify_all();
        if (handler) handler(engine, copy, now());
    }

    client_engine engine;
    host_options options;
    asio::io_context ioc{1};
    asio::steady_timer timer;
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::thread thread;
    std::shared_ptr<transport> current;
    // Every transport opened, current or still closing: dropped on shutdown.
    std::vector<std::weak_ptr<transport>> transports;
    // Set on shutdown: reports from transports are ignored and nothing new
    // starts, so the io_context runs out of work and the transports' handlers
    // (each holding the impl) are released.
    bool stopping = false;
    std::uint32_t transport_id = 0;
    bool paused = false;
    event_handler handler;
    zmq::context_t zmq_context{1};
    std::optional<asio::ssl::context> tls;  // made by the first wss transport
    std::string tls_error;                  // the last TLS handshake failure

    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<recorded_event> recorded;
};

namespace {

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// Stream: beast::tcp_stream (ws://) or tls_stream (wss://, trusting host_options.tls_ca_pem).
template <class Stream>
class ws_transport final : public transport {
    static constexpr bool tls = std::is_same_v<Stream, tls_stream>;

public:
    ws_transport(std::shared_ptr<test_client::impl> owner, std::uint32_t id, url_parts url)
        : owner_(std::move(owner)), id_(id), url_(std::move(url)), ws_(make_stream(*owner_)) {}

    void open() override {
        error_code ec;
        const auto address = asio::ip::make_address(url_.host, ec);
        if (ec) return fail();
        const tcp::endpoint ep(address, static_cast<std::uint16_t>(std::stoi(url_.port)));
        auto& sock = beast::get_lowest_layer(ws_).socket();
        sock.open(ep.protocol(), ec);
        if (owner_->options.receive_buffer_bytes > 0)
            sock.set_option(asio::socket_base::receive_buffer_size(owner_->options.receive_buffer_bytes), ec);
        beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(5));
        beast::get_lowest_layer(ws_).async_connect(ep, [self = shared()](error_code e) {
            if (e) return self->fail();
            error_code ignored;
            beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true), ignored);
            if constexpr (tls) {
                self->ws_.next_layer().set_verify_mode(asio::ssl::verify_peer);
                // The certificate must name the host (an IP address or a DNS name).
                SSL* ssl = self->ws_.next_layer().native_handle();
                error_code not_ip;
                asio::ip::make_address(self->url_.host, not_ip);
                if (not_ip)
                    SSL_set1_host(ssl, self->url_.host.c_str());
                else
                    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), self->url_.host.c_str());
                self->ws_.next_layer().async_handshake(asio::ssl::stream_base::client, [self](error_code e3) {
                    if (e3) {
                        self->owner_->tls_error = e3.message();
                        return self->fail();
                    }
                    self->upgrade();
                });
            } else {
                self->upgrade();
            }
        });
    }

    void upgrade() {
        auto self = shared();
        beast::get_lowest_layer(self->ws_).expires_never();
        self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        self->ws_.read_message_max(64u << 20);
        self->ws_.binary(true);
        self->ws_.async_handshake(self->url_.host + ":" + self->url_.port, self->url_.path,
                                  [self](error_code e2) {
                                      if (e2) return self->fail();
                                      self->open_ = true;
                                      self->owner_->opened(self->id_);
                                      self->do_read();
                                      self->do_write();
                                  });
    }

    void send(std::vector<std::uint8_t> bytes) override {
        queue_.push_back(std::move(bytes));
        do_write();
    }

    void close_after_flush() override {
        closing_ = true;
        do_write();
    }

    void drop() override {
        open_ = false;
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
    }

    void set_paused(bool paused) override {
        paused_ = paused;
        if (!paused_) do_read();
    }

    bool is_open() const override { return open_; }

private:
    std::shared_ptr<ws_transport> shared() { return std::static_pointer_cast<ws_transport>(shared_from_this()); }

    static websocket::stream<Stream> make_stream(test_client::impl& owner) {
        if constexpr (tls) {
            if (!owner.tls) {
                owner.tls.emplace(asio::ssl::context::tls_client);
                owner.tls->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
                if (!owner.options.tls_ca_pem.empty())
                    owner.tls->add_certificate_authority(asio::buffer(owner.options.tls_ca_pem));
            }
            return websocket::stream<Stream>(owner.ioc, *owner.tls);
        } else {
            return websocket::stream<Stream>(owner.ioc);
        }
    }

    void do_read() {
        if (reading_ || paused_ || !open_) return;
        reading_ = true;
        ws_.async_read(buffer_, [self = shared()](error_code ec, std::size_t) {
            self->reading_ = false;
            if (ec) return self->fail();
            const auto data = self->buffer_.cdata();
            const bytes_view bytes(static_cast<const std::uint8_t*>(data.data()), data.size());
            self->owner_->received(self->id_, bytes);
            self->buffer_.consume(self->buffer_.size());
            self->do_read();
        });
    }

    void do_write() {
        if (writing_ || !open_) return;
        if (queue_.empty()) {
            if (closing_ && !close_sent_) {
                close_sent_ = true;
                ws_.async_close(websocket::close_code::normal, [self = shared()](error_code) { self->fail(); });
            }
            return;
        }
        writing_ = true;
        ws_.async_write(asio::buffer(queue_.front()), [self = shared()](error_code ec, std::size_t) {
            self->writing_ = false;
            self->queue_.pop_front();
            if (ec) return self->fail();
            self->do_write();
        });
    }

    void fail() {
        if (reported_) return;
        reported_ = true;
        open_ = false;
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        owner_->closed(id_);
    }

    std::shared_ptr<test_client::impl> owner_;
    const std::uint32_t id_;
    const url_parts url_;
    websocket::stream<Stream> ws_;
    beast::flat_buffer buffer_;
    std::deque<std::vector<std::uint8_t>> queue_;
    bool open_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool closing_ = false;
    bool close_sent_ = false;
    bool paused_ = false;
    bool reported_ = false;
};

// A DEALER whose file descriptor is watched by Asio. ZMQ_FD is edge
// triggered: after every wake-up and every send, read while ZMQ_EVENTS says so.
class zmq_transport_client final : public transport {
public:
    zmq_transport_client(std::shared_ptr<test_client::impl> owner, std::uint32_t id, std::string url)
        : owner_(std::move(owner)),
          id_(id),
          url_(std::move(url)),
          socket_(owner_->zmq_context, zmq::socket_type::dealer),
          fd_(owner_->ioc),
          poll_timer_(owner_->ioc) {}

    ~zmq_transport_client() override { release_fd(); }

    void open() override {
        const host_options& o = owner_->options;
        if (!o.curve_server_key.empty()) {
            socket_.set(zmq::sockopt::curve_serverkey, o.curve_server_key);
            socket_.set(zmq::sockopt::curve_publickey, o.curve_public_key);
            socket_.set(zmq::sockopt::curve_secretkey, o.curve_secret_key);
        }
        socket_.set(zmq::sockopt::linger, 500);
        socket_.set(zmq::sockopt::heartbeat_ivl, 1000);
        socket_.set(zmq::sockopt::heartbeat_timeout, 3000);
        socket_.connect(url_);
        fd_.assign(socket_.get(zmq::sockopt::fd));
        open_ = true;
        asio::post(owner_->ioc, [self = shared()] {
            if (!self->open_) return;
            self->owner_->opened(self->id_);
            self->drain();
            self->wait();
            self->tick();
        });
    }

    void send(std::vector<std::uint8_t> bytes) override {
        if (!open_) return;
        zmq::message_t msg(bytes.data(), bytes.size());
        (void)socket_.send(msg, zmq::send_flags::none);
        asio::post(owner_->ioc, [self = shared()] { self->drain(); });
    }

    void close_after_flush() override {
        // Sends already went to libzmq; linger lets them out.
        shutdown();
    }

    void drop() override {
        if (!open_) return;  // closed already: the socket is gone
        socket_.set(zmq::sockopt::linger, 0);
        shutdown();
    }

    bool is_open() const override { return open_; }

private:
    std::shared_ptr<zmq_transport_client> shared() {
        return std::static_pointer_cast<zmq_transport_client>(shared_from_this());
    }

    void wait() {
        if (!open_) return;
        fd_.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared()](error_code ec) {
            if (ec || !self->open_) return;
            self->drain();
            self->wait();
        });
    }

    // A safety net for the edge-triggered descriptor.
    void tick() {
        if (!open_) return;
        poll_timer_.expires_after(std::chrono::milliseconds(20));
        poll_timer_.async_wait([self = shared()](error_code ec) {
            if (ec || !self->open_) return;
            self->drain();
            self->tick();
        });
    }

    void drain() {
        while (open_ && (socket_.get(zmq::sockopt::events) & ZMQ_POLLIN)) {
            zmq::message_t msg;
            if (!socket_.recv(msg, zmq::recv_flags::dontwait)) break;
            const bytes_view bytes(static_cast<const std::uint8_t*>(msg.data()), msg.size());
            owner_->received(id_, bytes);
        }
    }

    void release_fd() {
        if (fd_.is_open()) fd_.release();
    }

    void shutdown() {
        if (!open_) return;
        open_ = false;
        poll_timer_.cancel();
        error_code ignored;
        fd_.cancel(ignored);
        release_fd();
        socket_.close();
    }

    std::shared_ptr<test_client::impl> owner_;
    const std::uint32_t id_;
    const std::string url_;
    zmq::socket_t socket_;
    asio::posix::stream_descriptor fd_;
    asio::steady_timer poll_timer_;
    bool open_ = false;
};

}  // namespace

void test_client::impl::open_transport(std::uint32_t id, std::string_view url) {
    transport_id = id;
    url_parts parts;
    if (!parse_url(url, parts)) {
        ADD_FAILURE() << "test_client: unsupported URL " << url;
        asio::post(ioc, [self = shared_from_this(), id] { self->closed(id); });
        return;
    }
    if (parts.websocket && parts.tls)
        current = std::make_shared<ws_transport<tls_stream>>(shared_from_this(), id, parts);
    else if (parts.websocket)
        current = std::make_shared<ws_transport<beast::tcp_stream>>(shared_from_this(), id, parts);
    else
        current = std::make_shared<zmq_transport_client>(shared_from_this(), id, std::string(url));
    std::erase_if(transports, [](const std::weak_ptr<transport>& t) { return t.expired(); });
    transports.push_back(current);
    if (paused) current->set_paused(true);
    current->open();
}

void test_client::impl::pump() {
    if (stopping) return;
    client_event e;
    while (engine.poll_event(e)) {
        switch (e.kind) {
            case event_kind::open_transport:
                open_transport(e.id, e.name);
                break;
            case event_kind::close_transport:
                if (current && e.id == transport_id) {
                    // The goodbye (if any) is in the output: send it first.
                    while (!engine.output().empty()) {
                        const bytes_view out = engine.output();
                        current->send({out.begin(), out.end()});
                        engine.consume_output();
                    }
                    current->close_after_flush();
                    current.reset();
                }
                break;
            default:
                record(e);
                break;
        }
    }
    while (current && current->is_open() && !engine.output().empty()) {
        const bytes_view out = engine.output();
        current->send({out.begin(), out.end()});
        engine.consume_output();
    }
    arm_timer();
}

void test_client::impl::arm_timer() {
    if (stopping) return;
    const time_ms next = engine.next_deadline();
    if (next == no_deadline) {
        timer.cancel();
        return;
    }
    const auto delay = std::chrono::milliseconds(std::max<time_ms>(0, next - now()));
    timer.expires_after(delay);
    timer.async_wait([self = shared_from_this()](error_code ec) {
        if (ec) return;
        self->engine.handle_timeout(now());
        self->pump();
    });
}

test_client::test_client(client_config config, host_options options)
    : impl_(std::make_shared<impl>(std::move(config), options)) {
    impl_->paused = options.paused;
    impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
    post([this] {
        const std::error_code ec = impl_->engine.start(now());
        EXPECT_FALSE(ec) << "engine.start: " << ec.message();
        impl_->pump();
    });
}

test_client::~test_client() {
    std::promise<void> done;
    post([this, &done] {
        impl_->stopping = true;
        impl_->handler = nullptr;
        impl_->timer.cancel();
        for (const auto& weak : impl_->transports)
            if (const auto t = weak.lock()) t->drop();
        impl_->transports.clear();
        impl_->current.reset();
        done.set_value();
    });
    done.get_future().wait_for(5s);
    // With every socket closed the pending handlers finish at once and run()
    // returns; stop() is only the bound if one does not.
    impl_->work.reset();
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (!impl_->ioc.stopped() && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(1ms);
    impl_->ioc.stop();
    impl_->thread.join();
}

void test_client::post(std::function<void()> fn) { asio::post(impl_->ioc, std::move(fn)); }

client_engine& test_client::engine() { return impl_->engine; }

void test_client::pump() { impl_->pump(); }

time_ms test_client::now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::optional<recorded_event> test_client::wait_for(const event_filter& filter,
                                                    std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mu);
    std::size_t scanned = 0;
    std::optional<recorded_event> found;
    impl_->cv.wait_for(lock, timeout, [&] {
        for (; scanned < impl_->recorded.size(); ++scanned) {
            if (filter(impl_->recorded[scanned])) {
                found = impl_->recorded[scanned];
                return true;
            }
        }
        return false;
    });
    return found;
}

std::vector<recorded_event> test_client::wait_count(const event_filter& filter, std::size_t n,
                                                    std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mu);
    // Counts incrementally: events are only appended, so those seen stay seen.
    std::size_t scanned = 0;
    std::size_t matched = 0;
    impl_->cv.wait_for(lock, timeout, [&] {
        for (; scanned < impl_->recorded.size(); ++scanned)
            if (filter(impl_->recorded[scanned])) ++matched;
        return matched >= n;
    });
    std::vector<recorded_event> found;
    for (const recorded_event& e : impl_->recorded)
        if (filter(e)) found.push_back(e);
    return found;
}

std::vector<recorded_event> test_client::events(const event_filter& filter) const {
    std::lock_guard lock(impl_->mu);
    std::vector<recorded_event> out;
    for (const recorded_event& e : impl_->recorded)
        if (!filter || filter(e)) out.push_back(e);
    return out;
}

std::size_t test_client::count(const event_filter& filter) const { return events(filter).size(); }

void test_client::set_handler(event_handler handler) {
    run([this, h = std::move(handler)](client_engine&, time_ms) mutable {
        impl_->handler = std::move(h);
        return 0;
    });
}

void test_client::after(std::chrono::milliseconds delay, std::function<void(client_engine&, time_ms)> fn) {
    post([this, delay, fn = std::move(fn)] {
        auto timer = std::make_shared<asio::steady_timer>(impl_->ioc, delay);
        timer->async_wait([this, timer, fn](error_code ec) {
            if (ec) return;
            fn(impl_->engine, now());
            impl_->pump();
        });
    });
}

bool test_client::wait_ready(std::chrono::milliseconds timeout) {
    return wait_for([](const recorded_event& e) { return e.kind == event_kind::welcome; }, timeout).has_value();
}

std::string test_client::session_id() {
    return run([](client_engine& e, time_ms) { return std::string(e.session_id()); });
}

client_state test_client::state() {
    return run([](client_engine& e, time_ms) { return e.state(); });
}

void test_client::pause_reading() {
    run([this](client_engine&, time_ms) {
        impl_->paused = true;
        if (impl_->current) impl_->current->set_paused(true);
        return 0;
    });
}

void test_client::resume_reading() {
    run([this](client_engine&, time_ms) {
        impl_->paused = false;
        if (impl_->current) impl_->current->set_paused(false);
        return 0;
    });
}

void test_client::drop_transport() {
    run([this](client_engine&, time_ms) {
        if (impl_->current) impl_->current->drop();
        return 0;
    });
}

std::string test_client::tls_error() {
    return run([this](client_engine&, time_ms) { return impl_->tls_error; });
}

std::uint32_t test_client::subscribe(const std::string& pattern, slow_policy policy) {
    const call_result r = run([&](client_engine& e, time_ms) { return e.subscribe(pattern, policy); });
    EXPECT_FALSE(r.error) << "subscribe " << pattern << ": " << r.error.message();
    return r.id;
}

std::uint32_t test_client::publish(const std::string& channel, const std::string& payload, bool ack) {
    const call_result r = run([&](client_engine& e, time_ms) {
        const auto bytes = bytes_of(payload);
        return e.publish(channel, bytes, ack);
    });
    EXPECT_FALSE(r.error) << "publish " << channel << ": " << r.error.message();
    return r.id;
}

std::uint32_t test_client::request(const std::string& service, const std::string& method,
                                   const std::string& payload, std::uint32_t timeout_ms) {
    const call_result r = run([&](client_engine& e, time_ms now) {
        const auto bytes = bytes_of(payload);
        return e.request(service, method, bytes, timeout_ms, now);
    });
    EXPECT_FALSE(r.error) << "request " << service << "/" << method << ": " << r.error.message();
    return r.id;
}

std::uint32_t test_client::register_service(const std::string& service, std::vector<method_info> methods) {
    const call_result r = run([&](client_engine& e, time_ms) { return e.register_service(service, methods); });
    EXPECT_FALSE(r.error) << "register " << service << ": " << r.error.message();
    return r.id;
}

std::string describe(const recorded_event& e) {
    std::ostringstream out;
    out << event_name(e.kind) << " op=" << operation_name(e.op) << " id=" << e.id << " code=" << e.code
        << "(" << errc_name(e.code) << ") sub=" << e.subscription << " name=" << e.name
        << " epoch=" << e.epoch << " seq=" << e.seq << " count=" << e.count << " text=" << e.text;
    return out.str();
}

event_filter is(event_kind kind, std::uint32_t id) {
    return [kind, id](const recorded_event& e) { return e.kind == kind && (id == 0 || e.id == id); };
}

event_filter is_error(std::uint32_t id) {
    return [id](const recorded_event& e) { return e.kind == event_kind::error && e.id == id; };
}

client_config frontend_config(std::string url, std::string name) {
    client_config c;
    c.url = std::move(url);
    c.name = std::move(name);
    c.role = client_role::frontend;
    c.backoff_base_ms = 50;
    c.backoff_max_ms = 500;
    // Routers refuse transport messages over limits.max_message_bytes; the
    // smallest the tests configure is 4096 (a larger frame still goes alone).
    c.max_batch_bytes = 4096;
    c.seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return c;
}

client_config backend_config(std::string url, std::string name) {
    client_config c = frontend_config(std::move(url), std::move(name));
    c.role = client_role::backend;
    return c;
}

std::vector<std::uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

}  // namespace hyperstreams::testing
