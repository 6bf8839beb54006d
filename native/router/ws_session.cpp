#include "ws_session.hpp"

#include <boost/asio/any_completion_handler.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>
#include <typeinfo>
#include <utility>

#include "io_lane.hpp"
#include "log.hpp"
#include "outbox.hpp"
#include "tls_socket.hpp"
#include "ws_frame_tracker.hpp"
#include "ws_gather.hpp"

namespace hyperstreams::router {
namespace {

// The WebSocket close code for the goodbye that ended a connection.
websocket::close_code close_code_for(std::uint16_t code) noexcept {
    const auto e = static_cast<errc>(code);
    if (code == 0) return websocket::close_code::normal;
    if (e == errc::going_away) return websocket::close_code::going_away;
    if (e == errc::frame_too_large) return websocket::close_code::too_big;
    if (is_peer_fault(e)) return websocket::close_code::protocol_error;
    return websocket::close_code::policy_error;
}

// The close frame's reason: the goodbye code's name, and for code 0 (a
// normal close, which has no name among the error codes) what it is.
std::string_view close_reason_for(std::uint16_t code) noexcept {
    return code == 0 ? std::string_view("normal") : errc_name(code);
}

// The socket of a plain WebSocket session, bound to its I/O thread's
// io_context executor rather than to any_io_executor: the socket is 32 bytes
// smaller, and so is every operation pending on it (its work guard holds a
// copy of the executor), which for an idle connection is the readiness wait.
using plain_socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

// Asio's async_write, with no cap on what one write_some passes: Asio's
// own completion conditions pass at most 64 KiB (default_max_transfer_size),
// which cut a 100 KiB message into two system calls where one does.
struct transfer_all_at_once {
    std::size_t operator()(const error_code& ec, std::size_t) const noexcept {
        return ec ? 0 : std::numeric_limits<std::size_t>::max();
    }
};

// A buffer sequence over buffers the caller keeps: Asio's write operation
// copies the sequence it is given, and a vector's copy allocates.
struct buffer_run {
    using value_type = asio::const_buffer;
    using const_iterator = const asio::const_buffer*;
    const asio::const_buffer* first;
    const asio::const_buffer* last;
    const_iterator begin() const noexcept { return first; }
    const_iterator end() const noexcept { return last; }
};

// The TCP socket under a plain WebSocket stream.
//
// It passes every byte it reads through a ws_frame_tracker, so that the
// session knows when the WebSocket stream holds no unread bytes and waiting
// for the socket to be readable is enough (see ws_frame_tracker.hpp).
//
// And it lets the session write its data messages past Beast
// (async_write_message): Beast writes a message with Asio's async_write,
// which passes the socket at most 64 KiB per call, so a subscriber's 100 KiB
// of held publications took two sendmsg calls (docs/BENCHMARKS.md, "Data
// messages written past Beast"). Beast still writes through
// async_write_some below what it writes on its own: the handshake's
// response, pongs and close frames, from its read and close operations.
// The two never interleave: a write of Beast's that starts while a message
// is being written waits for the message's end, and a message that is to
// start while Beast writes waits for that write's end (Beast writes a
// control frame, at most 127 bytes, in one async_write: when a write_some
// wrote all it was given, or failed, the frame is over).
class tracked_socket {
public:
    using executor_type = plain_socket::executor_type;

    explicit tracked_socket(plain_socket&& socket) : socket_(std::move(socket)) {}

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    plain_socket& next_layer() noexcept { return socket_; }
    const ws_frame_tracker& tracker() const noexcept { return tracker_; }

    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        return asio::async_compose<Handler, void(error_code, std::size_t)>(
            [this, buffers, started = false](auto& self, error_code ec = {}, std::size_t n = 0) mutable {
                if (!started) {
                    started = true;
                    socket_.async_read_some(buffers, std::move(self));
                    return;
                }
                const auto read = beast::buffers_prefix(n, buffers);
                for (const auto b : beast::buffers_range_ref(read))
                    tracker_.add(static_cast<const std::uint8_t*>(b.data()), b.size());
                self.complete(ec, n);
            },
            handler, socket_);
    }

    // Beast's writes.
    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        enum class step { start, resume, written };
        return asio::async_compose<Handler, void(error_code, std::size_t)>(
            [this, buffers, at = step::start](auto& self, error_code ec = {}, std::size_t n = 0) mutable {
                switch (at) {
                    case step::start:
                        if (writing_message_) {
                            // Resumed by the message's end (message_written).
                            at = step::resume;
                            asio::any_completion_handler<void()>(std::move(self)).swap(parking().beast);
                            return;
                        }
                        [[fallthrough]];
                    case step::resume:
                        at = step::written;
                        beast_writing_ = true;
                        socket_.async_write_some(buffers, std::move(self));
                        return;
                    case step::written:
                        beast_writing_ = false;
                        // A message waiting for this frame's end starts before
                        // Beast's handler runs, which may end the session (the
                        // waiting message's session is alive: this write's
                        // operation holds it).
                        if (parked_ && parked_->message && (ec || n == asio::buffer_size(buffers))) {
                            const auto start = std::exchange(parked_->message, nullptr);
                            void* const session = parked_->session;
                            unpark_if_empty();
                            start(session);
                        }
                        self.complete(ec, n);
                        return;
                }
            },
            handler, socket_);
    }

    // Whether a write of Beast's is under way: a message must wait for it.
    bool beast_writing() const noexcept { return beast_writing_; }
    // Calls `start(session)` once Beast's write is over. `session` must stay
    // alive until then (it does: Beast's operation holds it).
    void wait_for_beast(void (*start)(void*), void* session) {
        parked& p = parking();
        p.message = start;
        p.session = session;
    }

    // Writes all of `buffers` (one whole WebSocket frame, which they must
    // keep alive), then calls `handler(ec, bytes)`. Not while beast_writing().
    template <class Handler>
    void async_write_message(buffer_run buffers, Handler&& handler) {
        writing_message_ = true;
        asio::async_write(socket_, buffers, transfer_all_at_once{},
                          message_written<std::decay_t<Handler>>{std::forward<Handler>(handler), unpark{this}});
    }

private:
    // What waits for the other writer: rare (a ping or a close that comes
    // while a message is written), so on the heap only then, and no memory
    // of an idle connection's.
    struct parked {
        // Beast's write, waiting for a message's end. Moved with swap only:
        // Boost 1.81's move assignment of any_completion_handler wraps the
        // handler in itself, recursively, until the stack overflows.
        asio::any_completion_handler<void()> beast;
        // A message, waiting for Beast's write's end.
        void (*message)(void*) = nullptr;
        void* session = nullptr;
    };

    parked& parking() {
        if (!parked_) parked_ = std::make_unique<parked>();
        return *parked_;
    }

    void unpark_if_empty() noexcept {
        if (!parked_->beast && !parked_->message) parked_.reset();
    }

    // Drops a write of Beast's parked behind a message whose operation is
    // destroyed without completing (its io_context destroyed with it): the
    // parked operation holds the session that holds this socket.
    struct unpark {
        tracked_socket* socket;
        explicit unpark(tracked_socket* s) noexcept : socket(s) {}
        unpark(unpark&& other) noexcept : socket(std::exchange(other.socket, nullptr)) {}
        unpark& operator=(unpark&&) = delete;
        ~unpark() {
            if (socket) {
                auto dropped = std::move(socket->parked_);  // may end the session, and this socket
            }
        }
    };

    template <class Handler>
    struct message_written {
        Handler handler;  // holds the session, so the socket, until it has run
        unpark guard;     // declared last: destroyed first
        void operator()(error_code ec, std::size_t n) {
            tracked_socket* s = std::exchange(guard.socket, nullptr);
            s->writing_message_ = false;
            // Beast's write waited for this message: it goes first.
            if (s->parked_ && s->parked_->beast) {
                asio::any_completion_handler<void()> resumed;
                resumed.swap(s->parked_->beast);
                s->unpark_if_empty();
                std::move(resumed)();
            }
            handler(ec, n);
        }
    };

    plain_socket socket_;
    ws_frame_tracker tracker_;
    std::unique_ptr<parked> parked_;
    bool writing_message_ = false;
    bool beast_writing_ = false;
};

// Memory from the global heap, exactly the size asked. Asio otherwise hands
// an operation the block of the operation that ended last on the thread when
// it is large enough: the wait of an idle connection would keep the block of
// the read that just finished, several times its own size, while it idles.
template <class T>
struct exact_allocator {
    using value_type = T;
    exact_allocator() = default;
    template <class U>
    exact_allocator(const exact_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
    friend bool operator==(const exact_allocator&, const exact_allocator&) noexcept { return true; }
    friend bool operator!=(const exact_allocator&, const exact_allocator&) noexcept { return false; }
};

// The closing handshake's TCP part, found by Beast through ADL.
template <class Handler>
void async_teardown(beast::role_type role, tracked_socket& socket, Handler&& handler) {
    websocket::async_teardown(role, socket.next_layer(), std::forward<Handler>(handler));
}

// The TCP socket at the bottom of a stream (beast::get_lowest_layer): the
// socket itself under plain WebSocket, the tcp_stream's socket under wss.
plain_socket& socket_of(plain_socket& socket) noexcept { return socket; }
tcp::socket& socket_of(beast::tcp_stream& stream) noexcept { return stream.socket(); }

bool normal_end(const error_code& ec) {
    return ec == websocket::error::closed || ec == asio::error::operation_aborted ||
           ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == beast::error::timeout;
}

// The io_context of a session's executor: every listener accepts on one
// (see run_ws_session).
template <class Executor>
asio::io_context& io_context_of(const Executor& ex) {
    return static_cast<asio::io_context&>(asio::query(ex, asio::execution::context));
}

// A session the wake queue below can wake on its own thread.
class wakeable {
public:
    virtual void on_wake() = 0;

protected:
    ~wakeable() = default;
};

// The sessions of one io_context that the routing core asked to wake, woken
// by one handler: a batch that reaches a thousand subscribers costs one post
// per I/O thread (and at most one wake-up of it), not one per subscriber.
//
// On the io_context's own thread a woken session writes at once, unless a
// hold is on: while a session reads messages that are already here, one
// after the other (a publisher's burst), the sessions its messages wake on
// this thread are held and woken together once it has caught up, or once
// it has read 64 KiB since the hold began.
// Each subscriber then writes the frames of several messages in one write,
// where it wrote once per message: at 100 subscribers and 64-byte payloads
// that write is most of a delivery's cost (one system call, one wake-up of
// the reader, per subscriber and message). uWebSockets does the same by
// reading up to 512 KiB at a time and draining its topics once per event
// loop iteration. Nothing waits for the network: a hold lasts only while
// the holder's next read finds its input here, and the handler that ends
// it is posted, so it runs after what the thread has queued already.
class wake_queue final : public asio::execution_context::service {
public:
    using key_type = wake_queue;
    static inline asio::execution_context::id id;

    explicit wake_queue(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

    // The queue of `ctx` (a session's io_context): Asio's service lookup,
    // about 4 ns, once per message read and per wake.
    static wake_queue& here(asio::execution_context& ctx) { return asio::use_service<wake_queue>(ctx); }

    // The io_context's thread only, from here on.
    bool holding() const noexcept { return holding_; }
    void hold() noexcept { holding_ = true; }
    void defer(std::shared_ptr<wakeable> session) { held_.push_back(std::move(session)); }
    // A read starts with its input here: its handler is queued, or will be
    // by the handlers before it (the message's header, Beast's read).
    void read_ahead() noexcept { ++reads_ahead_; }
    // Such a read ended (read_arrived is called once for each read_ahead).
    void read_arrived() noexcept {
        if (reads_ahead_ > 0) --reads_ahead_;
        ++arrivals_;
    }
    // A session read a message of `bytes` while holding; `ahead`: its next
    // read started with input here. Wakes the held sessions now, or posts
    // the handler that will.
    template <class Executor>
    void release(std::size_t bytes, bool ahead, const Executor& ex) {
        held_bytes_ += bytes;
        if (ahead && held_bytes_ < hold_budget_bytes) {
            if (!std::exchange(flush_posted_, true)) asio::post(ex, [this, ex] { on_flush(ex); });
            return;
        }
        if (!flush_posted_ || held_bytes_ >= hold_budget_bytes) flush();
    }

    // Any thread; `ex` is the session's executor, on this queue's io_context.
    template <class Executor>
    void add(std::shared_ptr<wakeable> session, const Executor& ex) {
        {
            std::lock_guard lock(mu_);
            pending_.push_back(std::move(session));
            if (posted_) return;
            posted_ = true;
        }
        asio::post(ex, [this] { run(); });
    }

private:
    // A hold ends once the messages read under it reach 64 KiB: the
    // subscribers' writes then carry about as much (the largest segment
    // loopback TCP sends at once), and a larger one costs per byte, not per
    // write. Holding twice as much made 100 subscribers of 1 KiB payloads
    // slower (docs/BENCHMARKS.md, "Writes held while a publisher's burst is
    // read").
    static constexpr std::size_t hold_budget_bytes = 64u << 10;
    // At most this many times the flush goes back behind the handlers a
    // holder's reads queued, and at most four times in a row with no read
    // arriving: a read whose input was only part of its message waits for
    // the network, and the held sessions do not wait with it. A message
    // whose input is here takes three handlers to read (its header, Beast's
    // read, its completion): with two the hold ended before the next read
    // arrived and held nothing (docs/BENCHMARKS.md, "Writes held while a
    // publisher's burst is read").
    static constexpr int max_reposts = 32;
    static constexpr int max_reposts_without_a_read = 4;

    template <class Executor>
    void on_flush(const Executor& ex) {
        flush_posted_ = false;
        if (arrivals_ != arrivals_seen_) {
            arrivals_seen_ = arrivals_;
            reposts_without_a_read_ = 0;
        }
        if (holding_ && reads_ahead_ > 0 && reposts_ < max_reposts &&
            reposts_without_a_read_ < max_reposts_without_a_read) {
            ++reposts_;
            ++reposts_without_a_read_;
            flush_posted_ = true;
            asio::post(ex, [this, ex] { on_flush(ex); });
            return;
        }
        flush();
    }

    void flush() {
        holding_ = false;
        held_bytes_ = 0;
        reposts_ = 0;
        reposts_without_a_read_ = 0;
        std::vector<std::shared_ptr<wakeable>> woken = std::move(spare_);
        woken.swap(held_);
        for (const std::shared_ptr<wakeable>& s : woken) s->on_wake();
        woken.clear();  // may end sessions
        if (spare_.capacity() < woken.capacity()) spare_ = std::move(woken);
    }

    void run() {
        {
            std::lock_guard lock(mu_);
            running_.swap(pending_);
            posted_ = false;
        }
        for (const std::shared_ptr<wakeable>& s : running_) s->on_wake();
        running_.clear();  // may end sessions, which may add here: not under mu_
    }

    void shutdown() override {
        std::vector<std::shared_ptr<wakeable>> dropped;
        {
            std::lock_guard lock(mu_);
            dropped.swap(pending_);
        }
        held_.clear();
    }

    std::mutex mu_;
    std::vector<std::shared_ptr<wakeable>> pending_;
    std::vector<std::shared_ptr<wakeable>> running_;  // on the io_context's thread only
    bool posted_ = false;
    // The hold: the io_context's thread only.
    std::vector<std::shared_ptr<wakeable>> held_;
    std::vector<std::shared_ptr<wakeable>> spare_;
    std::size_t held_bytes_ = 0;
    int reads_ahead_ = 0;
    int reposts_ = 0;
    int reposts_without_a_read_ = 0;
    std::uint64_t arrivals_ = 0;  // reads that started ahead and completed
    std::uint64_t arrivals_seen_ = 0;
    bool holding_ = false;
    bool flush_posted_ = false;
};

// The header of a final, unmasked binary frame of `payload` bytes
// (RFC 6455 §5.2), written to `out` (max_websocket_header bytes); returns
// its size.
constexpr std::size_t max_websocket_header = 10;
std::size_t websocket_header(std::uint64_t payload, std::uint8_t* out) noexcept {
    out[0] = 0x82;  // FIN, binary
    if (payload < 126) {
        out[1] = static_cast<std::uint8_t>(payload);
        return 2;
    }
    if (payload <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<std::uint8_t>(payload >> 8);
        out[3] = static_cast<std::uint8_t>(payload);
        return 4;
    }
    out[1] = 127;
    for (std::size_t i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(payload >> (56 - 8 * i));
    return 10;
}

// The router's permessage-deflate settings in Beast's terms.
websocket::permessage_deflate deflate_option(const router_config& cfg) {
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    pmd.server_max_window_bits = static_cast<int>(cfg.ws_deflate_server_max_window_bits);
    pmd.client_max_window_bits = static_cast<int>(cfg.ws_deflate_client_max_window_bits);
    pmd.server_no_context_takeover = cfg.ws_deflate_server_no_context_takeover;
    pmd.client_no_context_takeover = cfg.ws_deflate_client_no_context_takeover;
    pmd.compLevel = static_cast<int>(cfg.ws_deflate_level);
    pmd.memLevel = static_cast<int>(cfg.ws_deflate_mem_level);
    pmd.msg_size_threshold = cfg.ws_deflate_threshold_bytes;
    return pmd;
}

// `Deflate`: Beast's permessage-deflate support is compiled into the stream.
// Without it the stream keeps no deflate state: an idle connection's stream
// block is 56 bytes smaller (2,472 bytes instead of 2,528 with Boost 1.81,
// 64 bytes of heap with glibc's rounding), so the plain listener uses a
// session with it only when ws.permessage_deflate.enabled is set.
//
// Without either (TLS or deflate), the session frames its data messages
// itself and writes them past Beast (tracked_socket::async_write_message).
template <class Stream, bool Deflate>
inline constexpr bool writes_past_beast = std::is_same_v<Stream, tracked_socket> && !Deflate;

template <class Stream, bool Deflate>
class ws_session final
    : public link,
      public wakeable,
      public std::enable_shared_from_this<ws_session<Stream, Deflate>> {
    using std::enable_shared_from_this<ws_session<Stream, Deflate>>::shared_from_this;

public:
    ws_session(Stream&& stream, std::shared_ptr<http_context> ctx)
        : ws_(std::move(stream)), ctx_(std::move(ctx)), id_(next_connection_id()) {
        ctx_->ws_sessions.fetch_add(1);
    }

    ~ws_session() override {
        ctx_->ws_sessions.fetch_sub(1);
        report_closed();
    }

    void run(http::request<http::string_body> upgrade) {
        // Beast's idle timeout (300 s without a byte received) would keep a
        // timer operation pending on every idle connection. The routing core
        // already closes a connection that sends nothing within its heartbeat
        // timeout (or no hello within its handshake timeout), and the closing
        // handshake keeps Beast's handshake timeout. What only the idle timer
        // also ended is a connection whose last write never completes because
        // the peer stopped reading: TCP_USER_TIMEOUT makes the kernel abort
        // that one after the same 300 s without progress, at no memory cost.
        auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
        const auto stalled_write_limit = std::chrono::duration_cast<std::chrono::milliseconds>(timeouts.idle_timeout);
        timeouts.idle_timeout = websocket::stream_base::none();
        ws_.set_option(timeouts);
        const int limit_ms = static_cast<int>(stalled_write_limit.count());
        (void)::setsockopt(socket_of(beast::get_lowest_layer(ws_)).native_handle(), IPPROTO_TCP,
                           TCP_USER_TIMEOUT, &limit_ms, sizeof limit_ms);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, "hyperstreams-router"); }));
        ws_.read_message_max(ctx_->cfg.max_message_bytes);
        if constexpr (Deflate) {
            if (ctx_->cfg.ws_deflate_enabled) ws_.set_option(deflate_option(ctx_->cfg));
        }
        ws_.binary(true);
        ws_.auto_fragment(false);
        ws_.async_accept(upgrade, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
    }

    // Outside the core (core_runner wakes after releasing it): on the
    // session's own thread, where its lane pushed, it writes at once;
    // elsewhere the wake queue hands it over.
    void wake() override {
        const auto ex = ws_.get_executor();
        asio::io_context& io = io_context_of(ex);
        if (!io.get_executor().running_in_this_thread())
            return asio::use_service<wake_queue>(io).add(shared_from_this(), ex);
        wake_queue& q = wake_queue::here(io);
        if (q.holding()) return q.defer(shared_from_this());
        on_wake();
    }

private:
    void on_accept(error_code ec) {
        if (ec) {
            HS_LOG(debug, "ws.accept_failed").kv("error", ec.message());
            return;
        }
        out_ = std::make_shared<outbox>(outbox_limits_of(ctx_->cfg));
        std::weak_ptr<ws_session> weak = shared_from_this();
        error_code ignored;
        const auto remote = socket_of(beast::get_lowest_layer(ws_)).remote_endpoint(ignored);
        connection_init init;
        init.id = id_;
        init.transport = transport_kind::websocket;
        init.remote = remote.address().to_string() + ":" + std::to_string(remote.port());
        init.session = weak;
        init.out = out_;
        init.served_by = io_lane::of(io_context_of(ws_.get_executor()));
        ctx_->core.open(std::move(init));
        opened_ = true;
        do_read();
    }

    void do_read() {
        if (reading_ || closing_) return;
        reading_ = true;
        // A busy connection reads at once, with its buffer; only one going
        // idle gives memory back.
        if (input_waiting()) {
            read_ahead_ = true;
            wake_queue::here(io_context_of(ws_.get_executor())).read_ahead();
            return read_message_start();
        }
        release_read_buffer();
        if constexpr (std::is_same_v<Stream, tracked_socket>) {
            // Nothing read is left above the socket: an idle connection
            // holds no read operation at all, only this wait.
            beast::get_lowest_layer(ws_).async_wait(tcp::socket::wait_read, readable_handler{shared_from_this()});
        } else {
            read_message_start();
        }
    }

    // Input for the next message is already here: in the WebSocket stream's
    // own buffer (known without a system call on the plain path) or in the
    // socket.
    bool input_waiting() {
        if constexpr (std::is_same_v<Stream, tracked_socket>) {
            if (!ws_.next_layer().tracker().drained_after(messages_begun_)) return true;
        }
        error_code ec;
        return socket_of(beast::get_lowest_layer(ws_)).available(ec) > 0;
    }

    struct readable_handler {
        std::shared_ptr<ws_session> self;
        using allocator_type = exact_allocator<void>;
        allocator_type get_allocator() const noexcept { return {}; }
        void operator()(error_code ec) { self->on_readable(ec); }
    };

    void on_readable(error_code ec) {
        if (ec) {
            reading_ = false;
            return fail(ec, "read");
        }
        if (closing_) {
            reading_ = false;  // the closing handshake reads from here on
            return;
        }
        read_message_start();
    }

    // Reading into an empty buffer waits in the WebSocket stream's own frame
    // buffer until the header of the next message's first frame has arrived
    // (pings are answered on the way); buffer_ is prepared only then, to the
    // size that header announces.
    //
    // The empty buffer points into header_probe, not at null: Beast 1.74
    // checks the UTF-8 of a text frame's payload even when reading into an
    // empty buffer, and computes `data - 3` and `data - 7` on the way, which
    // from a null pointer wraps and reads through it (one text message
    // crashed the router). From the end of an 8-byte array those pointers
    // stay inside it and nothing is read.
    void read_message_start() {
        static std::uint8_t header_probe[8];
        ws_.async_read_some(asio::mutable_buffer(header_probe + sizeof header_probe, 0),
                            beast::bind_front_handler(&ws_session::on_message_begins, shared_from_this()));
    }

    void on_message_begins(error_code ec, std::size_t) {
        if (!ec) ++messages_begun_;
        if (!ec && ws_.got_text()) return refuse_text();
        if (ec || ws_.is_message_done()) return on_read(ec, 0);  // failed, or an empty message
        ws_.async_read(buffer_, beast::bind_front_handler(&ws_session::on_read, shared_from_this()));
    }

    // The protocol is binary frames in binary messages (PROTOCOL.md §2): a
    // text message is refused with an error and a goodbye, then a close
    // with 1003 (unsupported data). Nothing more is read: the closing
    // handshake discards the rest of the message.
    void refuse_text() {
        reading_ = false;
        read_ended(wake_queue::here(io_context_of(ws_.get_executor())));
        text_refused_ = true;
        ctx_->core.reject(id_, errc::protocol_violation,
                          "text messages are not part of the protocol: send binary messages");
    }

    // Gives the last message's memory back when the connection goes idle
    // (a connection with input waiting keeps it: see do_read). Even a small
    // one: an idle connection's last message is usually its hello or a pong,
    // and keeping its block costs every idle connection more than allocating
    // again costs a connection that wakes up.
    void release_read_buffer() {
        if (buffer_.capacity() > 0) buffer_.shrink_to_fit();  // empty here: frees it
    }

    // A read ended, however: the hold stops waiting for it.
    void read_ended(wake_queue& q) {
        if (std::exchange(read_ahead_, false)) q.read_arrived();
    }

    void on_read(error_code ec, std::size_t bytes) {
        reading_ = false;
        const auto ex = ws_.get_executor();
        wake_queue& q = wake_queue::here(io_context_of(ex));
        read_ended(q);
        if (ec) return fail(ec, "read");
        auto& m = ctx_->stats.local(transport_kind::websocket);
        m.messages_in.add(1);
        m.bytes_in.add(bytes);
        // The core handles the message here, on this thread, before the next
        // one is read: a connection's input waits in its socket, never in
        // the router, and its batches reach the core in order. The sessions
        // it wakes on this thread write once this one has caught up with
        // its input (wake_queue: the hold).
        q.hold();
        const auto data = buffer_.cdata();
        ctx_->core.receive(id_, bytes_view(static_cast<const std::uint8_t*>(data.data()), data.size()));
        buffer_.consume(buffer_.size());
        do_read();
        q.release(bytes, read_ahead_, ex);
    }

    void on_wake() override {
        if (!writing_ && !closing_) do_write();
    }

    void do_write() {
        out_->take(batch_);
        if (batch_.spans.empty()) {
            if (batch_.close) return do_close();
            return release_write_memory();
        }
        closing_after_write_ = batch_.close;
        writing_ = true;
        if constexpr (writes_past_beast<Stream, Deflate>) return write_message();
        if (batch_.spans.size() == 1) {
            // One span (a welcome, an ack, a ping, a lone message, a run's
            // piece): written from its own buffer, with no copy and no
            // buffer list.
            const shared_bytes& f = batch_.spans.front();
            ws_.async_write(asio::const_buffer(f->data(), f->size()),
                            beast::bind_front_handler(&ws_session::on_write, shared_from_this()));
            return;
        }
        gather(batch_, scratch_, buffers_);
        ws_.async_write(buffers_, beast::bind_front_handler(&ws_session::on_write, shared_from_this()));
    }

    // The batch as one unfragmented binary message, framed here (a server's
    // frames are not masked) and written in one piece past Beast, once no
    // write of Beast's is under way.
    void write_message() {
        asio::const_buffer* head = nullptr;
        if (batch_.spans.size() == 1) {
            const shared_bytes& f = batch_.spans.front();
            single_[1] = asio::const_buffer(f->data(), f->size());
            head = &single_[0];
        } else {
            gather(batch_, scratch_, buffers_);
            head = &*buffers_.insert(buffers_.begin(), asio::const_buffer());
        }
        const buffer_run message = message_buffers();
        *head = asio::const_buffer(
            header_.data(), websocket_header(asio::buffer_size(buffer_run{message.first + 1, message.last}), header_.data()));
        if constexpr (writes_past_beast<Stream, Deflate>) {
            if (ws_.next_layer().beast_writing()) {
                return ws_.next_layer().wait_for_beast(
                    [](void* self) { static_cast<ws_session*>(self)->start_message(); }, this);
            }
        }
        start_message();
    }

    // The message write_message framed: the header's buffer, then the
    // batch's. A lone span's in single_, which costs an idle connection
    // nothing (the session's block has room to its allocator's size class
    // for it) where a vector's would be allocated for every lone message.
    buffer_run message_buffers() const noexcept {
        if (batch_.spans.size() == 1) return {single_.data(), single_.data() + single_.size()};
        return {buffers_.data(), buffers_.data() + buffers_.size()};
    }

    void start_message() {
        if (!ws_.is_open()) {
            // Beast answered a close or failed the connection: no data
            // message follows its close frame. As Beast's write would.
            asio::post(ws_.get_executor(), beast::bind_front_handler(&ws_session::on_write, shared_from_this(),
                                                                     websocket::error::closed, 0));
            return;
        }
        ws_.next_layer().async_write_message(message_buffers(),
                                             beast::bind_front_handler(&ws_session::on_message_written,
                                                                       shared_from_this()));
    }

    // Reported as Beast reports a message written: its payload's bytes.
    void on_message_written(error_code ec, std::size_t bytes) {
        const std::size_t header = message_buffers().first->size();
        on_write(ec, bytes > header ? bytes - header : 0);
    }

    // The outbox is empty: the connection keeps none of the write side's
    // vectors while it idles (the next batch allocates them again).
    void release_write_memory() {
        batch_.spans = {};
        buffers_ = {};
        scratch_ = {};
    }

    void on_write(error_code ec, std::size_t bytes) {
        writing_ = false;
        if (ec) return fail(ec, "write");
        auto& m = ctx_->stats.local(transport_kind::websocket);
        m.messages_out.add(1);
        m.frames_out.add(batch_.frames);
        m.gaps.add(batch_.gaps);
        m.bytes_out.add(bytes);
        batch_.clear();
        if (closing_after_write_) return do_close();
        do_write();
    }

    void do_close() {
        if (closing_) return;
        closing_ = true;
        const websocket::close_reason reason(
            text_refused_ ? websocket::close_code::unknown_data : close_code_for(out_->close_code()),
            close_reason_for(out_->close_code()));
        ws_.async_close(reason, beast::bind_front_handler(&ws_session::on_close, shared_from_this()));
    }

    void on_close(error_code ec) {
        if (ec && !normal_end(ec)) {
            HS_LOG(debug, "ws.close_failed").kv("conn", id_).kv("error", ec.message());
        }
        report_closed();
    }

    void fail(error_code ec, const char* what) {
        if (!normal_end(ec)) {
            HS_LOG(info, "ws.io_error").kv("conn", id_).kv("op", what).kv("error", ec.message());
        } else {
            HS_LOG(debug, "ws.ended").kv("conn", id_).kv("op", what).kv("error", ec.message());
        }
        report_closed();
    }

    void report_closed() {
        if (!opened_ || reported_) return;
        reported_ = true;
        ctx_->core.closed(id_);
    }

    websocket::stream<Stream, Deflate> ws_;
    beast::flat_buffer buffer_;
    std::shared_ptr<http_context> ctx_;
    const connection_id id_;
    std::shared_ptr<outbox> out_;
    outbox_batch batch_;
    std::vector<asio::const_buffer> buffers_;
    std::vector<std::uint8_t> scratch_;
    // write_message's frame header, and a lone span's buffers.
    std::array<std::uint8_t, max_websocket_header> header_{};
    std::array<asio::const_buffer, 2> single_{};
    std::uint64_t messages_begun_ = 0;
    bool opened_ = false;
    bool reported_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool closing_ = false;
    bool closing_after_write_ = false;
    bool text_refused_ = false;
    bool read_ahead_ = false;  // a read started with its input here (wake_queue::read_ahead)
};

}  // namespace

void run_ws_session(beast::tcp_stream stream, http::request<http::string_body> upgrade,
                    std::shared_ptr<http_context> ctx) {
    // The WebSocket stream keeps its own handshake and closing timeouts, so
    // the plain socket is enough below it: beast::tcp_stream would add a
    // second heap block with three timers of its own to every connection.
    tcp::socket accepted = stream.release_socket();
    // Every listener accepts on an io_context (one per I/O thread): the
    // session's socket is bound to that one's executor (see plain_socket).
    const auto accepted_on = accepted.get_executor();
    if (accepted_on.target_type() != typeid(asio::io_context::executor_type)) {
        HS_LOG(error, "ws.unexpected_executor");
        return;
    }
    error_code ec;
    const auto protocol = accepted.local_endpoint(ec).protocol();
    if (ec) {
        HS_LOG(debug, "ws.ended").kv("op", "upgrade").kv("error", ec.message());  // the peer is already gone
        return;
    }
    plain_socket socket(*accepted_on.target<asio::io_context::executor_type>());
    const auto fd = accepted.release(ec);
    if (ec) {
        HS_LOG(info, "ws.release_failed").kv("error", ec.message());
        return;
    }
    socket.assign(protocol, fd, ec);
    if (ec) {
        ::close(fd);
        HS_LOG(info, "ws.assign_failed").kv("error", ec.message());
        return;
    }
    if (ctx->cfg.ws_deflate_enabled) {
        std::make_shared<ws_session<tracked_socket, true>>(tracked_socket(std::move(socket)), std::move(ctx))
            ->run(std::move(upgrade));
        return;
    }
    std::make_shared<ws_session<tracked_socket, false>>(tracked_socket(std::move(socket)), std::move(ctx))
        ->run(std::move(upgrade));
}

void run_ws_session(tls_socket stream, http::request<http::string_body> upgrade, std::shared_ptr<http_context> ctx) {
    // One session type over TLS: a TLS connection holds OpenSSL's state,
    // tens of KiB, beside which the deflate support's 64 bytes do not count.
    std::make_shared<ws_session<tls_socket, true>>(std::move(stream), std::move(ctx))
        ->run(std::move(upgrade));
}

}  // namespace hyperstreams::router
