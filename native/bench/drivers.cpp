// The clients of every scenario: thousands of WebSocket connections on one
// Asio thread (fan-out's on several), speaking the HyperStreams protocol with
// the shared codec (no client engine per connection), the NATS text protocol,
// or the baseline server's bare messages; and ZeroMQ DEALERs for backends.
#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <string_view>
#include <thread>

#include <netinet/in.h>
#include <pthread.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <zmq.hpp>

#include "bench.hpp"
#include "hyperstreams/backend.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"

namespace hyperstreams::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using bytes = std::vector<std::uint8_t>;

constexpr std::string_view fanout_channel = "bench.fanout";
constexpr std::string_view echo_method = "bench/echo";
constexpr std::size_t stamp_size = sizeof(std::int64_t);

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

void put_stamp(std::uint8_t* at, std::int64_t ns) { std::memcpy(at, &ns, stamp_size); }

std::int64_t stamp_of(const std::uint8_t* at) {
    std::int64_t ns = 0;
    std::memcpy(&ns, at, stamp_size);
    return ns;
}

frame make_frame(frame_kind kind, std::uint32_t id, std::string_view name, bytes_view payload = {}) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    f.payload = payload;
    return f;
}

bytes encode_one(const frame& f) {
    bytes out;
    (void)append(out, f);
    return out;
}

bytes hello_message(client_role role) {
    hello_body h;
    h.role = role;
    h.name = "hyperstreams-bench";
    bytes body;
    (void)encode_body(h, body);
    return encode_one(make_frame(frame_kind::hello, 0, {}, body));
}

bytes text_bytes(std::string_view s) { return bytes(s.begin(), s.end()); }

decode_limits generous_limits() {
    decode_limits l;
    l.max_payload = 1u << 30;
    return l;
}

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

// ---------------------------------------------------------------- connections

class connection;

class connection_events {
public:
    virtual void opened(connection& c) = 0;
    // Returns how many bytes of `data` were used; the rest stays buffered
    // and comes back, followed by the next message (NATS is a byte stream).
    virtual std::size_t received(connection& c, bytes_view data) = 0;
    virtual void failed(connection& c, const error_code& ec, const char* what) = 0;
    virtual void written(connection&) {}

protected:
    ~connection_events() = default;
};

class connection : public std::enable_shared_from_this<connection> {
public:
    connection(asio::io_context& ioc, connection_events& events, int index)
        : ws_(ioc), events_(events), index_(index) {}

    int index() const noexcept { return index_; }
    std::size_t queued() const noexcept { return queue_.size(); }
    // Before start(): offer permessage-deflate in the handshake.
    void offer_deflate() {
        websocket::permessage_deflate pmd;
        pmd.client_enable = true;
        ws_.set_option(pmd);
    }
    // After opened(): whether the server accepted permessage-deflate.
    bool deflated() const noexcept { return deflated_; }
    int native_handle() { return beast::get_lowest_layer(ws_).socket().native_handle(); }

    void start(const tcp::endpoint& server, const asio::ip::address* source, std::string path) {
        path_ = std::move(path);
        auto& socket = beast::get_lowest_layer(ws_).socket();
        error_code ec;
        socket.open(tcp::v4(), ec);
        if (!ec && source != nullptr) {
            // The port is chosen at connect() by the whole 4-tuple, and ports
            // in TIME_WAIT from an earlier run do not count against bind().
            const int one = 1;
            ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            socket.set_option(asio::socket_base::reuse_address(true), ec);
            if (!ec) socket.bind(tcp::endpoint(*source, 0), ec);
        }
        if (ec) {
            // Reported from the loop, not from here: a run of failures must not recurse.
            asio::post(ws_.get_executor(), [self = shared_from_this(), ec] { self->events_.failed(*self, ec, "bind"); });
            return;
        }
        beast::get_lowest_layer(ws_).async_connect(
            server, beast::bind_front_handler(&connection::on_connect, shared_from_this()));
    }

    void send(bytes message) {
        queue_.push_back(std::move(message));
        if (queue_.size() == 1) do_write();
    }

    void close() {
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
    }

private:
    void on_connect(error_code ec) {
        if (ec) return events_.failed(*this, ec, "connect");
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        ws_.binary(true);
        ws_.auto_fragment(false);
        handshake_ = std::make_unique<websocket::response_type>();
        ws_.async_handshake(*handshake_, "127.0.0.1", path_,
                            beast::bind_front_handler(&connection::on_handshake, shared_from_this()));
    }

    void on_handshake(error_code ec) {
        if (ec) return events_.failed(*this, ec, "handshake");
        const auto extensions = (*handshake_)[beast::http::field::sec_websocket_extensions];
        deflated_ = extensions.find("permessage-deflate") != beast::string_view::npos;
        handshake_.reset();
        events_.opened(*this);
        do_read();
    }

    void do_read() {
        ws_.async_read(buffer_, beast::bind_front_handler(&connection::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        if (ec) return events_.failed(*this, ec, "read");
        const auto data = buffer_.cdata();
        const std::size_t used =
            events_.received(*this, bytes_view(static_cast<const std::uint8_t*>(data.data()), data.size()));
        buffer_.consume(used);
        do_read();
    }

    void do_write() {
        ws_.async_write(asio::buffer(queue_.front()),
                        beast::bind_front_handler(&connection::on_write, shared_from_this()));
    }

    void on_write(error_code ec, std::size_t) {
        if (ec) return events_.failed(*this, ec, "write");
        queue_.pop_front();
        // The next write first: what written() sends starts a write of its
        // own only when none is in flight.
        if (!queue_.empty()) do_write();
        events_.written(*this);
    }

    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    std::deque<bytes> queue_;
    std::string path_;
    std::unique_ptr<websocket::response_type> handshake_;  // while the handshake is under way
    connection_events& events_;
    const int index_;
    bool deflated_ = false;
};

// Opens connections, at most `parallel` attempts at a time, from source
// addresses 127.0.0.2.. when `sources` > 0.
class connector {
public:
    connector(asio::io_context& ioc, connection_events& events, int parallel, int sources)
        : ioc_(ioc), events_(events), parallel_(parallel) {
        for (int i = 0; i < sources; ++i)
            sources_.push_back(asio::ip::make_address_v4(0x7F000002u + static_cast<std::uint32_t>(i)));
    }

    // Queues a connection to `at` on `path`; returns it.
    std::shared_ptr<connection> add(const endpoint_info& at, const std::string& path) {
        auto c = std::make_shared<connection>(ioc_, events_, static_cast<int>(all_.size()));
        if (deflate_) c->offer_deflate();
        all_.push_back(c);
        servers_.emplace_back(asio::ip::make_address(at.host), at.port);
        paths_.push_back(path);
        return c;
    }

    void start() {
        while (started_ < all_.size() && in_flight_ < parallel_) start_next();
    }
    // The caller reports each connection's end of connecting (ready or failed).
    void settled() {
        --in_flight_;
        start();
    }

    std::vector<std::shared_ptr<connection>>& all() { return all_; }
    // Connections added from now on offer permessage-deflate.
    void offer_deflate(bool on) { deflate_ = on; }

    void close_all() {
        for (auto& c : all_) c->close();
    }

private:
    void start_next() {
        const std::size_t i = started_++;
        ++in_flight_;
        const asio::ip::address* source = sources_.empty() ? nullptr : &sources_[i % sources_.size()];
        all_[i]->start(servers_[i], source, paths_[i]);
    }

    asio::io_context& ioc_;
    connection_events& events_;
    int parallel_;
    std::vector<asio::ip::address> sources_;
    std::vector<std::shared_ptr<connection>> all_;
    std::vector<tcp::endpoint> servers_;
    std::vector<std::string> paths_;
    std::size_t started_ = 0;
    int in_flight_ = 0;
    bool deflate_ = false;
};

// ------------------------------------------------------------ protocol parts

// What a client makes of one incoming piece of data.
struct incoming {
    bool ready = false;       // handshake finished (welcome/ack, PONG, the baseline's marker)
    std::uint64_t lost = 0;   // router: messages a gap announced
    std::string error;        // the server refused something
    std::uint16_t code = 0;   // router: the code of its error or goodbye
};

// HyperStreams frames: calls `on_payload(frame)` for message/response frames,
// answers pings, reports welcome and acks.
template <typename OnFrame>
std::size_t read_hs(connection& c, bytes_view data, incoming& in, bool subscriber, OnFrame&& on_frame) {
    static const decode_limits limits = generous_limits();
    batch_reader reader(data, limits);
    frame f;
    while (reader.next(f)) {
        switch (f.kind) {
            case frame_kind::welcome:
                if (subscriber) {
                    c.send(encode_one(make_frame(frame_kind::subscribe, 1, fanout_channel)));
                } else {
                    in.ready = true;
                }
                break;
            case frame_kind::ack:
                if (f.id == 1) in.ready = true;
                break;
            case frame_kind::ping:
                c.send(encode_one(make_frame(frame_kind::pong, f.id, {})));
                break;
            case frame_kind::gap:
                in.lost += f.count;
                break;
            case frame_kind::error:
            case frame_kind::goodbye:
                in.code = f.code;
                in.error = "router sent " + std::string(f.kind == frame_kind::error ? "error" : "goodbye") +
                           " code " + std::to_string(f.code) + " (" + std::string(errc_name(f.code)) + "): " +
                           std::string(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
                break;
            default:
                on_frame(f);
        }
    }
    return data.size();
}

// The NATS text protocol: MSG lines with their payloads, PING, PONG, -ERR.
template <typename OnPayload>
std::size_t read_nats(connection& c, bytes_view data, incoming& in, OnPayload&& on_payload) {
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    std::size_t pos = 0;
    for (;;) {
        const std::size_t eol = text.find("\r\n", pos);
        if (eol == std::string_view::npos) break;
        const std::string_view line = text.substr(pos, eol - pos);
        if (line.rfind("MSG ", 0) == 0) {
            const std::size_t space = line.rfind(' ');
            std::size_t size = 0;
            for (char ch : line.substr(space + 1)) size = size * 10 + static_cast<std::size_t>(ch - '0');
            if (eol + 2 + size + 2 > text.size()) break;
            on_payload(bytes_view(data.data() + eol + 2, size));
            pos = eol + 2 + size + 2;
            continue;
        }
        if (line == "PING") c.send(text_bytes("PONG\r\n"));
        if (line == "PONG") in.ready = true;
        if (line.rfind("-ERR", 0) == 0) in.error = "nats-server: " + std::string(line);
        pos = eol + 2;
    }
    return pos;
}

// ------------------------------------------------------------------ fan-out

// Subscriber i connects to servers[i % servers.size()], the publisher to
// servers[0]. The connections are spread over lanes, one io_context and
// thread each, so that the tool is not the one thing measured on a small
// machine: the publisher on lane 0, which runs on the caller's thread, and
// subscriber i on lane (i + 1) % lanes, so that a lone subscriber has a
// thread of its own beside the publisher's. Threads rather than processes: the
// publisher's window reads every lane's count of settled messages from
// shared memory as the one-thread tool read its own, one getrusage covers
// the whole client, and the client's hot path (parsing what the server
// sends) allocates nothing for separate heaps to spare.
class fanout_run {
public:
    fanout_run(target_kind target, const std::vector<endpoint_info>& servers, const fanout_params& p)
        : target_(target),
          p_(p),
          servers_(servers),
          payload_(static_cast<std::size_t>(std::max<int>(p.payload, static_cast<int>(stamp_size))), 'x') {
        const int lanes = std::clamp(p.client_threads, 1, std::max(p.subscribers, 0) + 1);
        // Connection attempts in flight over all lanes as with one: 256.
        const int parallel = std::max(1, 256 / lanes);
        for (int i = 0; i < lanes; ++i) {
            lanes_.push_back(std::make_unique<lane>(*this, parallel));
            lanes_.back()->conn.offer_deflate(p.deflate);
        }
        const auto add = [&](lane& l, const endpoint_info& at, bool on_first) {
            l.first_server.push_back(on_first);
            l.ready.push_back(false);
            ++connections_;
            const bool bare = target == target_kind::baseline || target == target_kind::uws;
            return l.conn.add(at, bare ? "/broadcast" : at.path);
        };
        for (int i = 0; i < p.subscribers; ++i) {
            const std::size_t s = static_cast<std::size_t>(i) % servers_.size();
            add(*lanes_[static_cast<std::size_t>(i + 1) % lanes_.size()], servers_[s], s == 0);
        }
        publisher_ = add(*lanes_.front(), servers_.front(), true);
    }

    fanout_result run() {
        lane& first = *lanes_.front();
        deadline_.emplace(first.ioc);
        pacer_.emplace(first.ioc);
        start_ = clock_type::now();
        deadline_->expires_after(std::chrono::seconds(120));  // connecting, bounded
        deadline_->async_wait([this](error_code ec) {
            if (!ec) finish("timed out connecting");
        });
        pthread_getcpuclockid(pthread_self(), &first.cpu_clock);
        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < lanes_.size(); ++i) {
            lane& l = *lanes_[i];
            threads.emplace_back([&l] {
                l.conn.start();
                l.ioc.run();
            });
            pthread_getcpuclockid(threads.back().native_handle(), &l.cpu_clock);
        }
        first.conn.start();
        first.ioc.run();
        for (std::thread& t : threads) t.join();
        // The lanes' own figures, now that their threads are done.
        clock_type::time_point last_delivery = start_;
        for (const auto& l : lanes_) {
            for (const auto& c : l->conn.all())
                if (!is_publisher(*l, *c)) result_.wire_bytes += tcp_bytes_received(c->native_handle());
            result_.wire_bytes -= l->wire_before;
            result_.deflated += l->deflated;
            result_.delivered += l->delivered;
            result_.lost += l->lost;
            result_.delivering_reads += l->delivering_reads;
            result_.latency.merge(l->latency);
            result_.cross_latency.merge(l->cross_latency);
            last_delivery = std::max(last_delivery, l->last_delivery);
        }
        for (auto& l : lanes_) l->conn.close_all();
        if (timed_out_) result_.lost = result_.published * fan() - result_.delivered;
        result_.seconds = std::chrono::duration<double>(last_delivery - start_).count();
        result_.client_threads = static_cast<int>(lanes_.size());
        return std::move(result_);
    }

private:
    // One thread's share of the connections; what it counts is written by
    // its thread only.
    struct lane final : connection_events {
        lane(fanout_run& r, int parallel) : run(r), conn(ioc, *this, parallel, 0) {}

        void opened(connection& c) override { run.opened(*this, c); }
        std::size_t received(connection& c, bytes_view data) override { return run.received(*this, c, data); }
        void failed(connection& c, const error_code& ec, const char* what) override { run.failed(*this, c, ec, what); }
        void written(connection& c) override { run.written(*this, c); }

        fanout_run& run;
        asio::io_context ioc{1};
        // Kept running until finish() stops it, whatever its connections do.
        asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
        connector conn;
        std::vector<bool> first_server;  // by connection index: on the publisher's server
        std::vector<bool> ready;
        clockid_t cpu_clock{};
        double cpu_start = 0;
        // Delivered + lost, read by the publisher's window: a line of its own.
        alignas(64) std::atomic<std::uint64_t> settled{0};
        alignas(64) std::uint64_t delivered = 0;
        std::uint64_t lost = 0;
        std::uint64_t delivering_reads = 0;
        std::uint64_t wire_before = 0;  // subscribers' TCP bytes received when they became ready
        int deflated = 0;
        clock_type::time_point last_delivery;
        histogram latency;
        histogram cross_latency;
    };

    bool is_first(const lane& l) const { return &l == lanes_.front().get(); }
    bool is_publisher(const lane& l, const connection& c) const {
        return is_first(l) && c.index() + 1 == static_cast<int>(l.first_server.size());
    }
    std::uint64_t fan() const { return static_cast<std::uint64_t>(p_.subscribers); }
    double servers_cpu() const {
        double sum = 0;
        for (const endpoint_info& s : servers_)
            if (s.pid > 0) sum += process_cpu_seconds(s.pid);
        return sum;
    }
    std::uint64_t settled_sum() const {
        std::uint64_t sum = 0;
        for (const auto& l : lanes_) sum += l->settled.load();
        return sum;
    }
    // Runs `f` on lane 0, at once when called there.
    template <typename F>
    void on_first(F&& f) {
        asio::dispatch(lanes_.front()->ioc, std::forward<F>(f));
    }

    void opened(lane& l, connection& c) {
        switch (target_) {
            case target_kind::router:
                c.send(hello_message(client_role::frontend));
                break;
            case target_kind::nats:
                c.send(text_bytes(
                    is_publisher(l, c)
                        ? "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nPING\r\n"
                        : "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nSUB bench.fanout 1\r\nPING\r\n"));
                break;
            default:
                break;  // the baseline server says when it has registered us
        }
    }

    std::size_t received(lane& l, connection& c, bytes_view data) {
        if (done_) return data.size();
        incoming in;
        const std::int64_t now = now_ns();
        std::uint64_t got = 0;
        const auto i = static_cast<std::size_t>(c.index());
        histogram& latency = l.first_server[i] ? l.latency : l.cross_latency;
        const auto on_payload = [&](bytes_view payload) {
            if (payload.size() >= stamp_size) latency.add(now - stamp_of(payload.data()));
            ++got;
        };
        std::size_t used = data.size();
        const bool is_ready = l.ready[i];
        switch (target_) {
            case target_kind::router:
                used = read_hs(c, data, in, !is_publisher(l, c), [&](const frame& f) {
                    if (f.kind == frame_kind::message) on_payload(f.payload);
                });
                break;
            case target_kind::nats:
                used = read_nats(c, data, in, on_payload);
                break;
            default:
                if (!is_ready) {
                    in.ready = true;
                } else {
                    static const decode_limits limits = generous_limits();
                    batch_reader reader(data, limits);
                    frame f;
                    while (reader.next(f))
                        if (f.kind == frame_kind::publish) on_payload(f.payload);
                }
        }
        if (!in.error.empty()) {
            on_first([this, e = std::move(in.error)]() mutable { finish(std::move(e)); });
            return used;
        }
        if (in.ready && !is_ready) became_ready(l, c);
        if (got != 0 || in.lost != 0) {
            l.delivered += got;
            l.lost += in.lost;
            l.delivering_reads += got != 0 ? 1 : 0;
            l.last_delivery = clock_type::now();
            l.settled.fetch_add(got + in.lost);
            // Pairs with settled_at_least(): either it sees this count, or
            // this sees it waiting.
            if (waiting_.load() && settled_sum() >= wake_at_.load() && waiting_.exchange(false))
                on_first([this] { wake(); });
        }
        return used;
    }

    void failed(lane& l, connection& c, const error_code& ec, const char* what) {
        if (done_) return;
        on_first([this, e = std::string(is_publisher(l, c) ? "publisher " : "subscriber ") + what + ": " + ec.message()]()
                     mutable { finish(std::move(e)); });
    }

    void written(lane& l, connection& c) {
        // The publisher's test first: publishing_ is lane 0's.
        if (is_publisher(l, c) && publishing_) pump();
    }

    void became_ready(lane& l, connection& c) {
        l.ready[static_cast<std::size_t>(c.index())] = true;
        if (!is_publisher(l, c)) {
            l.wire_before += tcp_bytes_received(c.native_handle());
            l.deflated += c.deflated() ? 1 : 0;
        }
        l.conn.settled();
        if (++ready_count_ == connections_) on_first([this] { start_publishing(); });
    }

    // ---- lane 0 only, from here on

    void start_publishing() {
        result_.connect_seconds = seconds_since(start_);
        publishing_ = true;
        cpu_start_ = process_cpu_seconds();
        for (auto& l : lanes_) l->cpu_start = thread_cpu_seconds(l->cpu_clock);
        server_cpu_start_ = servers_cpu();
        if (p_.on_window_start) p_.on_window_start();
        start_ = clock_type::now();
        deadline_->cancel();
        deadline_->expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(p_.seconds)));
        deadline_->async_wait([this](error_code ec) {
            if (!ec) stop_publishing();
        });
        pump();
    }

    // True when `target` messages are settled over all lanes; otherwise
    // false, and the lane that settles the last of them calls wake().
    bool settled_at_least(std::uint64_t target) {
        if (settled_sum() >= target) return true;
        wake_at_.store(target);
        waiting_.store(true);
        // A lane that counted before it saw waiting_: caught here. If a lane
        // took waiting_ back first, its wake() is on its way.
        return settled_sum() >= target && waiting_.exchange(false);
    }

    void wake() {
        if (publishing_) {
            pump();
        } else if (stopped_publishing_ && settled_at_least(result_.published * fan())) {
            finish({});
        }
    }

    // Publishes while fewer than `window` messages are on their way: the
    // next batch when published + batch - window messages have reached
    // every subscriber (been delivered or announced lost), and, paced, once
    // it is due.
    void pump() {
        const std::uint64_t window = static_cast<std::uint64_t>(std::max(p_.window, p_.batch));
        const auto batch = static_cast<std::uint64_t>(p_.batch);
        while (publishing_ && publisher_->queued() < 2) {
            if (result_.published + batch > window && !settled_at_least((result_.published + batch - window) * fan()))
                break;
            if (p_.rate > 0 && !next_batch_due()) break;
            publisher_->send(publish_batch());
            result_.published += batch;
        }
    }

    // Paced: true when the batch that starts at message `published` is due
    // (at published / rate seconds into the run); otherwise false, and the
    // pacer calls pump() when it is.
    bool next_batch_due() {
        const auto at = start_ + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(static_cast<double>(result_.published) / p_.rate));
        if (clock_type::now() >= at) return true;
        if (!pacer_armed_) {
            pacer_armed_ = true;
            pacer_->expires_at(at);
            pacer_->async_wait([this](error_code ec) {
                pacer_armed_ = false;
                if (!ec) pump();
            });
        }
        return false;
    }

    bytes publish_batch() {
        if (!p_.payloads.empty()) return publish_payloads();
        put_stamp(reinterpret_cast<std::uint8_t*>(payload_.data()), now_ns());
        const bytes_view body(reinterpret_cast<const std::uint8_t*>(payload_.data()), payload_.size());
        bytes out;
        if (target_ == target_kind::nats) {
            const std::string head = "PUB bench.fanout " + std::to_string(payload_.size()) + "\r\n";
            out.reserve(static_cast<std::size_t>(p_.batch) * (head.size() + payload_.size() + 2));
            for (int i = 0; i < p_.batch; ++i) {
                out.insert(out.end(), head.begin(), head.end());
                out.insert(out.end(), body.begin(), body.end());
                out.push_back('\r');
                out.push_back('\n');
            }
            return out;
        }
        const frame f = make_frame(frame_kind::publish, 0, fanout_channel, body);
        out.reserve(static_cast<std::size_t>(p_.batch) * encoded_size(f));
        for (int i = 0; i < p_.batch; ++i) (void)append(out, f);
        return out;
    }

    // A batch of the next p_.payloads, each behind the send timestamp.
    bytes publish_payloads() {
        const std::int64_t now = now_ns();
        bytes out;
        std::string body;
        for (int i = 0; i < p_.batch; ++i) {
            const std::string& next = p_.payloads[next_payload_++ % p_.payloads.size()];
            body.assign(stamp_size, '\0');
            put_stamp(reinterpret_cast<std::uint8_t*>(body.data()), now);
            body += next;
            if (target_ == target_kind::nats) {
                const std::string head = "PUB bench.fanout " + std::to_string(body.size()) + "\r\n";
                out.insert(out.end(), head.begin(), head.end());
                out.insert(out.end(), body.begin(), body.end());
                out.push_back('\r');
                out.push_back('\n');
                continue;
            }
            (void)append(out, make_frame(frame_kind::publish, 0, fanout_channel,
                                         bytes_view(reinterpret_cast<const std::uint8_t*>(body.data()), body.size())));
        }
        return out;
    }

    void stop_publishing() {
        publishing_ = false;
        stopped_publishing_ = true;
        if (settled_at_least(result_.published * fan())) return finish({});
        deadline_->expires_after(std::chrono::seconds(10));  // the last messages' way, bounded
        deadline_->async_wait([this](error_code ec) {
            if (ec) return;
            timed_out_ = true;
            finish({});
        });
    }

    void finish(std::string error) {
        if (done_) return;
        done_ = true;
        result_.ok = error.empty();
        result_.error = std::move(error);
        if (publishing_ || stopped_publishing_) {
            // The window of the servers' CPU: first publish to the end.
            result_.server_cpu = servers_cpu() - server_cpu_start_;
            result_.client_cpu = process_cpu_seconds() - cpu_start_;
            for (auto& l : lanes_)
                result_.client_busiest_cpu =
                    std::max(result_.client_busiest_cpu, thread_cpu_seconds(l->cpu_clock) - l->cpu_start);
            if (p_.on_window_end) p_.on_window_end();
        }
        publishing_ = false;
        deadline_->cancel();
        pacer_->cancel();
        for (auto& l : lanes_) l->ioc.stop();
    }

    target_kind target_;
    fanout_params p_;
    std::vector<endpoint_info> servers_;
    std::vector<std::unique_ptr<lane>> lanes_;
    std::size_t connections_ = 0;
    std::atomic<std::size_t> ready_count_{0};
    // The publisher's wait for its window (or, at the end, for the last
    // deliveries): wake lane 0 when settled_sum() reaches wake_at_.
    std::atomic<bool> waiting_{false};
    std::atomic<std::uint64_t> wake_at_{0};
    std::atomic<bool> done_{false};
    // Lane 0's.
    std::optional<asio::steady_timer> deadline_;
    std::optional<asio::steady_timer> pacer_;  // paced: the next batch's time
    bool pacer_armed_ = false;
    std::shared_ptr<connection> publisher_;
    std::string payload_;
    std::size_t next_payload_ = 0;
    clock_type::time_point start_;
    double cpu_start_ = 0;
    double server_cpu_start_ = 0;
    bool publishing_ = false;
    bool stopped_publishing_ = false;
    bool timed_out_ = false;
    fanout_result result_;
};

// ---------------------------------------------------------- request/response

// A backend on its own thread: a raw DEALER that registers "bench" with
// method "echo" and answers every request at once with its payload.
class echo_backend {
public:
    explicit echo_backend(const std::string& endpoint) : socket_(ctx_, zmq::socket_type::dealer) {
        socket_.set(zmq::sockopt::linger, 0);
        socket_.connect(endpoint);
        thread_ = std::thread([this] { serve(); });
    }
    ~echo_backend() {
        stop_ = true;
        thread_.join();
    }
    echo_backend(const echo_backend&) = delete;
    echo_backend& operator=(const echo_backend&) = delete;

    // Waits until the router acknowledged the registration.
    bool wait_registered(std::chrono::milliseconds timeout) {
        const auto deadline = clock_type::now() + timeout;
        while (!registered_ && clock_type::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return registered_;
    }

private:
    void send(const bytes& b) { (void)socket_.send(zmq::buffer(b), zmq::send_flags::none); }

    void serve() {
        send(hello_message(client_role::backend));
        bytes out;
        while (!stop_) {
            zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
            if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) <= 0) continue;
            zmq::message_t msg;
            while (socket_.recv(msg, zmq::recv_flags::dontwait)) {
                out.clear();
                batch_reader reader(bytes_view(static_cast<const std::uint8_t*>(msg.data()), msg.size()));
                frame f;
                while (reader.next(f)) {
                    if (f.kind == frame_kind::welcome) {
                        register_body reg;
                        reg.methods = {{"echo", method_kind::unary}};
                        bytes body;
                        (void)encode_body(reg, body);
                        (void)append(out, make_frame(frame_kind::register_service, 1, "bench", body));
                    } else if (f.kind == frame_kind::ack && f.id == 1) {
                        registered_ = true;
                    } else if (f.kind == frame_kind::request) {
                        (void)append(out, make_frame(frame_kind::response, f.id, {}, f.payload));
                    } else if (f.kind == frame_kind::ping) {
                        (void)append(out, make_frame(frame_kind::pong, f.id, {}));
                    }
                }
                if (!out.empty()) send(out);
            }
        }
        // Said, not left to the heartbeat: the next run's backend registers
        // the same service, and calls must not go to this one meanwhile.
        frame bye = make_frame(frame_kind::goodbye, 0, {});
        send(encode_one(bye));
        // linger 0 would drop it unsent: give it a moment to leave.
        socket_.set(zmq::sockopt::linger, 1000);
    }

    zmq::context_t ctx_{1};
    zmq::socket_t socket_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> registered_{false};
};

class request_run final : public connection_events {
public:
    request_run(target_kind target, const endpoint_info& at, const request_params& p)
        : target_(target), p_(p), connector_(ioc_, *this, 256, 0), deadline_(ioc_), retry_(ioc_),
          payload_(static_cast<std::size_t>(p.payload), 'r'), sent_at_(static_cast<std::size_t>(p.concurrency), 0) {
        const std::string path = target == target_kind::baseline ? "/echo" : at.path;
        for (int i = 0; i < p.concurrency; ++i) connector_.add(at, path);
    }

    request_result run() {
        start_ = clock_type::now();
        connector_.start();
        deadline_.expires_after(std::chrono::seconds(60));
        deadline_.async_wait([this](error_code ec) {
            if (!ec) finish("timed out connecting");
        });
        ioc_.run();
        connector_.close_all();
        return std::move(result_);
    }

private:
    void opened(connection& c) override {
        if (target_ == target_kind::router) c.send(hello_message(client_role::frontend));
    }

    std::size_t received(connection& c, bytes_view data) override {
        const auto i = static_cast<std::size_t>(c.index());
        if (target_ == target_kind::baseline && !ready_marker_seen(i)) {
            became_ready();
            return data.size();
        }
        incoming in;
        std::uint64_t answers = 0;
        static const decode_limits limits = generous_limits();
        if (target_ == target_kind::router) {
            read_hs(c, data, in, false, [&](const frame& f) {
                if (f.kind == frame_kind::response) ++answers;
            });
        } else {
            batch_reader reader(data, limits);
            frame f;
            while (reader.next(f))
                if (f.kind == frame_kind::request) ++answers;
        }
        if (!in.error.empty()) {
            if (probing_ && in.code == static_cast<std::uint16_t>(errc::no_such_service) &&
                clock_type::now() < reach_until_) {
                --outstanding_;
                retry_.expires_after(std::chrono::milliseconds(10));
                retry_.async_wait([this](error_code ec) {
                    if (!ec) call(*connector_.all().front());
                });
                return data.size();
            }
            result_.refused = in.code;
            finish(in.error);
            return data.size();
        }
        if (in.ready) became_ready();
        if (answers != 0 && probing_) {
            --outstanding_;
            probing_ = false;
            start_calling();
        } else if (answers != 0) {
            result_.latency.add(now_ns() - sent_at_[i]);
            ++result_.calls;
            --outstanding_;
            if (calling_) {
                call(c);
            } else if (outstanding_ == 0) {
                finish({});
            }
        }
        return data.size();
    }

    void failed(connection&, const error_code& ec, const char* what) override {
        finish(std::string("frontend ") + what + ": " + ec.message());
    }

    bool ready_marker_seen(std::size_t i) {
        if (marker_.size() <= i) marker_.resize(connector_.all().size(), false);
        const bool seen = marker_[i];
        marker_[i] = true;
        return seen;
    }

    void became_ready() {
        connector_.settled();
        if (++ready_count_ < connector_.all().size()) return;
        if (p_.reach_seconds <= 0) return start_calling();
        // The service may reach this router some time after it registered
        // elsewhere (a cluster's backend joins the other routers): one call
        // at a time, not measured, until one is answered.
        probing_ = true;
        const auto reach = std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(p_.reach_seconds));
        reach_until_ = clock_type::now() + reach;
        deadline_.expires_after(reach + std::chrono::seconds(10));
        deadline_.async_wait([this](error_code ec) {
            if (!ec) finish("the first call was not answered");
        });
        call(*connector_.all().front());
    }

    void start_calling() {
        calling_ = true;
        start_ = clock_type::now();
        deadline_.cancel();
        deadline_.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(p_.seconds)));
        deadline_.async_wait([this](error_code ec) {
            if (ec) return;
            calling_ = false;
            deadline_.expires_after(std::chrono::seconds(10));
            deadline_.async_wait([this](error_code ec2) {
                if (!ec2) finish("calls still unanswered 10 s after the end");
            });
        });
        for (auto& c : connector_.all()) call(*c);
    }

    void call(connection& c) {
        frame f = make_frame(frame_kind::request, ++next_id_, echo_method,
                             bytes_view(reinterpret_cast<const std::uint8_t*>(payload_.data()), payload_.size()));
        f.deadline_ms = 10000;
        sent_at_[static_cast<std::size_t>(c.index())] = now_ns();
        ++outstanding_;
        c.send(encode_one(f));
    }

    void finish(std::string error) {
        if (done_) return;
        done_ = true;
        result_.ok = error.empty();
        result_.error = std::move(error);
        result_.seconds = seconds_since(start_);
        deadline_.cancel();
        retry_.cancel();
        ioc_.stop();
    }

    target_kind target_;
    request_params p_;
    asio::io_context ioc_{1};
    connector connector_;
    asio::steady_timer deadline_;
    asio::steady_timer retry_;
    std::string payload_;
    std::vector<std::int64_t> sent_at_;
    std::vector<bool> marker_;
    std::size_t ready_count_ = 0;
    std::uint32_t next_id_ = 0;
    std::uint64_t outstanding_ = 0;
    clock_type::time_point start_;
    clock_type::time_point reach_until_;
    bool probing_ = false;
    bool calling_ = false;
    bool done_ = false;
    request_result result_;
};

// A run on one thread, bounded by `deadline_`: the first finish() says how it
// ended (no error: ok), cancels the deadline and stops the loop.
template <typename Result>
class ending_run : public connection_events {
protected:
    ending_run() : deadline_(ioc_) {}
    ~ending_run() = default;

    void finish(std::string error) {
        if (done_) return;
        done_ = true;
        result_.ok = error.empty();
        result_.error = std::move(error);
        deadline_.cancel();
        ioc_.stop();
    }

    asio::io_context ioc_{1};
    asio::steady_timer deadline_;
    bool done_ = false;
    Result result_;
};

// -------------------------------------------------------------- latest

constexpr std::string_view latest_prefix = "bench.latest.c";

class latest_run final : public ending_run<latest_result> {
public:
    latest_run(const endpoint_info& at, pid_t pid, const latest_params& p)
        : server_(asio::ip::make_address(at.host), at.port), path_(at.path), pid_(pid), p_(p) {}

    latest_result run() {
        result_.rss_before_kib = rss_kib(pid_);
        deadline_.expires_after(std::chrono::seconds(120));
        deadline_.async_wait([this](error_code ec) {
            if (!ec) finish("timed out");
        });
        open();
        ioc_.run();
        for (auto& c : connections_) c->close();
        return std::move(result_);
    }

private:
    // Connection 0 publishes; each one after it subscribes once.
    void open() {
        auto c = std::make_shared<connection>(ioc_, *this, static_cast<int>(connections_.size()));
        connections_.push_back(c);
        c->start(server_, nullptr, path_);
    }

    void opened(connection& c) override { c.send(hello_message(client_role::frontend)); }

    std::size_t received(connection& c, bytes_view data) override {
        static const decode_limits limits = generous_limits();
        batch_reader reader(data, limits);
        frame f;
        while (reader.next(f)) {
            if (f.kind == frame_kind::welcome) {
                if (c.index() == 0)
                    publish_all(c);
                else
                    subscribe(c);
            } else if (f.kind == frame_kind::ack && c.index() == 0) {
                result_.publish_seconds = seconds_since(start_);
                result_.rss_after_kib = rss_kib(pid_);
                open();
            } else if (f.kind == frame_kind::ack) {
                result_.ack_seconds.push_back(seconds_since(start_));
            } else if (f.kind == frame_kind::message && (f.flags & frame_flags::replayed) != 0) {
                if (++replayed_ == p_.channels) subscribed_all(c);
            } else if (f.kind == frame_kind::ping) {
                c.send(encode_one(make_frame(frame_kind::pong, f.id, {})));
            } else if (f.kind == frame_kind::error || f.kind == frame_kind::goodbye) {
                finish("router sent code " + std::to_string(f.code) + " (" + std::string(errc_name(f.code)) + ")");
            }
        }
        if (reader.error()) finish("undecodable frames from the router");
        return data.size();
    }

    // Every channel once, 1,000 publishes per WebSocket message; the last acked.
    void publish_all(connection& c) {
        start_ = clock_type::now();
        const bytes payload(static_cast<std::size_t>(p_.payload), 'x');
        bytes batch;
        char name[32];
        for (int i = 0; i < p_.channels; ++i) {
            const int n = std::snprintf(name, sizeof name, "%.*s%05d", static_cast<int>(latest_prefix.size()),
                                        latest_prefix.data(), i);
            frame f = make_frame(frame_kind::publish, i + 1 == p_.channels ? 1 : 0,
                                 std::string_view(name, static_cast<std::size_t>(n)), payload);
            if (i + 1 == p_.channels) f.flags = frame_flags::ack_requested;
            (void)append(batch, f);
            if ((i + 1) % 1000 == 0 || i + 1 == p_.channels) c.send(std::exchange(batch, {}));
        }
    }

    void subscribe(connection& c) {
        replayed_ = 0;
        frame f = make_frame(frame_kind::subscribe, 1, "bench.latest.*");
        f.flags = frame_flags::latest;
        start_ = clock_type::now();
        c.send(encode_one(f));
    }

    void subscribed_all(connection& c) {
        result_.last_seconds.push_back(seconds_since(start_));
        c.close();
        if (static_cast<int>(result_.last_seconds.size()) == p_.subscribes)
            finish({});
        else
            open();
    }

    void failed(connection& c, const error_code& ec, const char* what) override {
        if (done_ || ec == asio::error::operation_aborted || ec == websocket::error::closed) return;
        if (c.index() != 0 && static_cast<int>(result_.last_seconds.size()) == c.index()) return;  // closed after its run
        finish(std::string(what) + ": " + ec.message());
    }

    tcp::endpoint server_;
    std::string path_;
    pid_t pid_;
    latest_params p_;
    std::vector<std::shared_ptr<connection>> connections_;
    clock_type::time_point start_;
    int replayed_ = 0;
};

// -------------------------------------------------------------- connections

// `count` frontends opened by a connector (from 127.0.0.2.., one source
// address per 10,000 connections unless told), measured against the memory
// of the server `pid`, within 300 s: what connections_run and presence_run
// share. The scenario adds the connections in its constructor and counts
// each one ready or failed back to the connector.
template <typename Result>
class crowd_run : public ending_run<Result> {
public:
    Result run() {
        result_.rss_before_kib = rss_kib(pid_);
        start_ = clock_type::now();
        connector_.start();
        deadline_.expires_after(std::chrono::seconds(300));
        deadline_.async_wait([this](error_code ec) {
            if (!ec) finish(timed_out_);
        });
        ioc_.run();
        connector_.close_all();
        return std::move(result_);
    }

protected:
    // `timed_out`: the error when the 300 s are over.
    crowd_run(pid_t pid, int count, int parallel, int sources, const char* timed_out)
        : pid_(pid), connector_(ioc_, *this, parallel, sources > 0 ? sources : (count + 9999) / 10000),
          timed_out_(timed_out) {}
    ~crowd_run() = default;

    void opened(connection& c) override { c.send(hello_message(client_role::frontend)); }

    using ending_run<Result>::finish;
    using ending_run<Result>::ioc_;
    using ending_run<Result>::deadline_;
    using ending_run<Result>::done_;
    using ending_run<Result>::result_;

    pid_t pid_;
    connector connector_;
    const char* timed_out_;
    clock_type::time_point start_;
};

class connections_run final : public crowd_run<connections_result> {
public:
    connections_run(const endpoint_info& at, pid_t pid, const connections_params& p)
        : crowd_run(pid, p.count, p.parallel, p.sources, "timed out connecting"), p_(p) {
        connector_.offer_deflate(p.deflate);
        for (int i = 0; i < p.count; ++i) connector_.add(at, at.path);
    }

private:
    std::size_t received(connection& c, bytes_view data) override {
        incoming in;
        read_hs(c, data, in, false, [](const frame&) {});
        if (!in.error.empty()) finish(in.error);
        if (in.ready) {
            connector_.settled();
            if (++result_.connected == p_.count) all_connected();
        }
        return data.size();
    }

    void failed(connection&, const error_code& ec, const char* what) override {
        if (holding_ || done_) return finish(std::string("a connection ended while idle: ") + what + ": " + ec.message());
        ++failures_;
        if (failures_ == 1) first_failure_ = std::string(what) + ": " + ec.message();
        connector_.settled();
        if (result_.connected + failures_ == p_.count) all_connected();
    }

    void all_connected() {
        result_.connect_seconds = seconds_since(start_);
        holding_ = true;
        deadline_.cancel();
        deadline_.expires_after(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(p_.hold_seconds)));
        deadline_.async_wait([this](error_code ec) {
            if (ec) return;
            result_.rss_after_kib = rss_kib(pid_);
            finish(failures_ == 0 ? std::string()
                                  : std::to_string(failures_) + " connections failed, the first: " + first_failure_);
        });
    }

    connections_params p_;
    int failures_ = 0;
    std::string first_failure_;
    bool holding_ = false;
};

// Members subscribe to fanout_channel; once all are, the last one asks for
// the channel's presence, one call after the other.
class presence_run final : public crowd_run<presence_result> {
public:
    presence_run(const endpoint_info& at, pid_t pid, const presence_params& p)
        : crowd_run(pid, p.members, p.parallel, p.sources, "timed out"), p_(p) {
        for (int i = 0; i + 1 < p.members; ++i) connector_.add(at, at.path);
        const endpoint_info& caller_at = p.caller_at ? *p.caller_at : at;
        if (p.members > 0) asker_ = connector_.add(caller_at, caller_at.path).get();
    }

private:
    std::size_t received(connection& c, bytes_view data) override {
        incoming in;
        read_hs(c, data, in, true, [&](const frame& f) {
            if (f.kind == frame_kind::presence_list && &c == asker_) answered(f);
        });
        if (!in.error.empty()) finish(in.error);
        if (in.ready) {
            connector_.settled();
            if (++result_.members == p_.members) all_subscribed();
        }
        return data.size();
    }

    void failed(connection&, const error_code& ec, const char* what) override {
        finish(std::string("a member's connection ended: ") + what + ": " + ec.message());
    }

    void all_subscribed() {
        result_.subscribe_seconds = seconds_since(start_);
        result_.rss_after_kib = rss_kib(pid_);
        ask();
    }

    void ask() {
        asked_at_ = now_ns();
        asker_->send(encode_one(make_frame(frame_kind::presence, ++calls_, fanout_channel)));
    }

    void answered(const frame& f) {
        if (f.id != calls_) return;
        result_.latency.add(now_ns() - asked_at_);
        presence_list_body list;
        if (decode_body(f.payload, list)) return finish("a presence_list that does not decode");
        result_.count = list.count;
        result_.listed = list.members.size();
        result_.list_bytes = f.payload.size();
        if (calls_ < static_cast<std::uint32_t>(p_.calls)) return ask();
        finish(list.count == static_cast<std::uint32_t>(p_.members)
                   ? std::string()
                   : "presence counted " + std::to_string(list.count) + " members");
    }

    presence_params p_;
    connection* asker_ = nullptr;  // the last member (kept alive by the connector)
    std::uint32_t calls_ = 0;
    std::int64_t asked_at_ = 0;
};

}  // namespace

fanout_result run_fanout(target_kind target, const std::vector<endpoint_info>& servers, const fanout_params& p) {
    return fanout_run(target, servers, p).run();
}

request_result run_request(target_kind target, const endpoint_info& at, const request_params& p) {
    if (target != target_kind::router) return request_run(target, at, p).run();
    echo_backend backend(at.backend);
    if (!backend.wait_registered(std::chrono::seconds(10))) {
        request_result r;
        r.error = "the echo backend did not register";
        return r;
    }
    return request_run(target, at, p).run();
}

std::vector<request_result> run_request_across(const std::vector<endpoint_info>& servers, const request_params& p) {
    // The backend client library, as a user's service is: in a cluster it is
    // the library that reaches the routers beyond the one it is given.
    backend::options opts;
    opts.url = servers.front().backend;
    opts.name = "hyperstreams-bench";
    opts.handlers = backend::handler_threading::io_thread;
    backend::client echo(std::move(opts));
    echo.provide("bench", "echo", [](backend::request req, backend::reply reply) { reply.send(req.bytes()); });
    echo.start();
    std::vector<request_result> results;
    if (!echo.wait_ready(std::chrono::seconds(10))) {
        request_result r;
        r.error = "the echo backend did not register";
        results.assign(servers.size(), r);
        return results;
    }
    for (const endpoint_info& at : servers) results.push_back(request_run(target_kind::router, at, p).run());
    return results;
}

latest_result run_latest(const endpoint_info& at, pid_t pid, const latest_params& p) {
    return latest_run(at, pid, p).run();
}

connections_result run_connections(const endpoint_info& at, pid_t pid, const connections_params& p) {
    return connections_run(at, pid, p).run();
}

presence_result run_presence(const endpoint_info& at, pid_t pid, const presence_params& p) {
    return presence_run(at, pid, p).run();
}

request_result run_zmq_round_trip(const request_params& p) {
    request_result result;
    zmq::context_t ctx{1};
    zmq::socket_t server(ctx, zmq::socket_type::router);
    server.set(zmq::sockopt::linger, 0);
    server.bind("tcp://127.0.0.1:*");
    const std::string endpoint = server.get(zmq::sockopt::last_endpoint);
    std::atomic<bool> stop{false};
    std::thread echo([&] {
        while (!stop) {
            zmq::pollitem_t item{server.handle(), 0, ZMQ_POLLIN, 0};
            if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) <= 0) continue;
            zmq::message_t identity;
            zmq::message_t body;
            while (server.recv(identity, zmq::recv_flags::dontwait)) {
                if (!server.recv(body, zmq::recv_flags::none)) break;
                (void)server.send(identity, zmq::send_flags::sndmore);
                (void)server.send(body, zmq::send_flags::none);
            }
        }
    });

    // One DEALER with `concurrency` calls outstanding, as the router's link
    // to a backend carries them; the frame id tells the calls apart.
    const std::string payload(static_cast<std::size_t>(p.payload), 'r');
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    std::vector<std::int64_t> sent_at(static_cast<std::size_t>(p.concurrency) + 1, 0);
    const auto call = [&](std::uint32_t id) {
        frame f = make_frame(frame_kind::request, id, echo_method,
                             bytes_view(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
        f.deadline_ms = 10000;
        sent_at[id] = now_ns();
        (void)dealer.send(zmq::buffer(encode_one(f)), zmq::send_flags::none);
    };
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(p.seconds));
    for (int i = 1; i <= p.concurrency; ++i) call(static_cast<std::uint32_t>(i));
    std::size_t outstanding = static_cast<std::size_t>(p.concurrency);
    while (outstanding > 0 && clock_type::now() < end + std::chrono::seconds(10)) {
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
        zmq::message_t reply;
        while (dealer.recv(reply, zmq::recv_flags::dontwait)) {
            batch_reader reader(bytes_view(static_cast<const std::uint8_t*>(reply.data()), reply.size()));
            frame f;
            if (!reader.next(f) || f.id == 0 || f.id > static_cast<std::uint32_t>(p.concurrency)) continue;
            result.latency.add(now_ns() - sent_at[f.id]);
            ++result.calls;
            if (clock_type::now() < end) {
                call(f.id);
            } else {
                --outstanding;
            }
        }
    }
    result.seconds = seconds_since(start);
    result.ok = outstanding == 0;
    if (!result.ok) result.error = "replies missing";
    stop = true;
    echo.join();
    return result;
}

}  // namespace hyperstreams::bench
