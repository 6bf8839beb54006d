#include "ws_session.hpp"

#include <boost/beast/ssl.hpp>
#include <vector>

#include "log.hpp"

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

// Frames under this size are copied into one block; larger ones are written
// from the buffer they share with their other recipients.
constexpr std::size_t copy_below = 1024;

// The buffers of one WebSocket message holding every frame of `batch`. Runs
// of small frames are copied into `scratch`, so that a batch of a thousand
// small messages is a few large writes rather than a thousand iovecs (the
// kernel takes 64 per writev, and Beast walks the sequence on every write).
void gather(const outbox_batch& batch, std::vector<std::uint8_t>& scratch,
            std::vector<asio::const_buffer>& out) {
    out.clear();
    scratch.clear();
    std::size_t small = 0;
    for (const shared_bytes& f : batch.frames)
        if (f->size() < copy_below) small += f->size();
    scratch.reserve(small);  // never reallocates below: `out` views it
    std::size_t run = 0;
    for (const shared_bytes& f : batch.frames) {
        if (f->size() < copy_below) {
            scratch.insert(scratch.end(), f->begin(), f->end());
            continue;
        }
        if (scratch.size() > run) out.emplace_back(scratch.data() + run, scratch.size() - run);
        run = scratch.size();
        out.emplace_back(f->data(), f->size());
    }
    if (scratch.size() > run) out.emplace_back(scratch.data() + run, scratch.size() - run);
}

// The TCP socket under a stream: plain WebSocket sits on the socket itself,
// wss on a beast::tcp_stream.
tcp::socket& socket_of(tcp::socket& socket) noexcept { return socket; }
tcp::socket& socket_of(beast::tcp_stream& stream) noexcept { return stream.socket(); }

// A read buffer up to this size stays with its connection between messages.
constexpr std::size_t keep_read_buffer_bytes = 1024;

bool normal_end(const error_code& ec) {
    return ec == websocket::error::closed || ec == asio::error::operation_aborted ||
           ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == beast::error::timeout;
}

template <class Stream>
class ws_session final : public link, public std::enable_shared_from_this<ws_session<Stream>> {
    using std::enable_shared_from_this<ws_session<Stream>>::shared_from_this;

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
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, "hyperstreams-router"); }));
        ws_.read_message_max(ctx_->cfg.max_message_bytes);
        ws_.binary(true);
        ws_.auto_fragment(false);
        ws_.async_accept(upgrade, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
    }

    // Called on the core's thread.
    void wake() override {
        asio::post(ws_.get_executor(), [self = shared_from_this()] { self->on_wake(); });
    }

private:
    void on_accept(error_code ec) {
        if (ec) {
            HS_LOG(debug, "ws.accept_failed").kv("error", ec.message());
            return;
        }
        out_ = std::make_shared<outbox>(outbox_limits_of(ctx_->cfg));
        std::weak_ptr<ws_session<Stream>> weak = shared_from_this();
        auto executor = ws_.get_executor();
        gate_ = std::make_shared<inbound_gate>(2 * std::size_t{ctx_->cfg.max_message_bytes}, [weak, executor] {
            asio::post(executor, [weak] {
                if (auto self = weak.lock()) {
                    self->paused_self_.reset();
                    self->do_read();
                }
            });
        });
        error_code ignored;
        const auto remote = socket_of(beast::get_lowest_layer(ws_)).remote_endpoint(ignored);
        connection_init init;
        init.id = id_;
        init.transport = transport_kind::websocket;
        init.remote = remote.address().to_string() + ":" + std::to_string(remote.port());
        init.session = weak;
        init.out = out_;
        ctx_->core.open(std::move(init));
        opened_ = true;
        do_read();
    }

    void do_read() {
        if (reading_ || closing_) return;
        if (!gate_->may_read()) {
            // No operation is pending now: hold ourselves until the gate resumes us.
            paused_self_ = shared_from_this();
            return;
        }
        reading_ = true;
        release_idle_buffer();
        // Reading into an empty buffer waits in the WebSocket stream's own
        // frame buffer until the header of the next message's first frame has
        // arrived; buffer_ is prepared only then, to the size that header
        // announces. An idle connection keeps no read buffer of its own.
        ws_.async_read_some(asio::mutable_buffer(),
                            beast::bind_front_handler(&ws_session::on_message_begins, shared_from_this()));
    }

    void on_message_begins(error_code ec, std::size_t) {
        if (ec || ws_.is_message_done()) return on_read(ec, 0);  // failed, or an empty message
        ws_.async_read(buffer_, beast::bind_front_handler(&ws_session::on_read, shared_from_this()));
    }

    // Gives a large message's memory back when the connection goes idle; a
    // busy connection keeps its buffer rather than allocating one per message.
    void release_idle_buffer() {
        if (buffer_.capacity() <= keep_read_buffer_bytes) return;
        error_code ec;
        if (socket_of(beast::get_lowest_layer(ws_)).available(ec) > 0) return;
        buffer_.shrink_to_fit();  // empty between messages: frees it
    }

    void on_read(error_code ec, std::size_t bytes) {
        reading_ = false;
        if (ec) return fail(ec, "read");
        auto& m = ctx_->stats.of(transport_kind::websocket);
        m.messages_in.fetch_add(1, std::memory_order_relaxed);
        m.bytes_in.fetch_add(bytes, std::memory_order_relaxed);
        const auto data = buffer_.cdata();
        const auto* p = static_cast<const std::uint8_t*>(data.data());
        std::vector<std::uint8_t> copy(p, p + data.size());
        buffer_.consume(buffer_.size());
        gate_->add(copy.size());
        ctx_->core.receive(id_, std::move(copy), gate_);
        do_read();
    }

    void on_wake() {
        if (!writing_ && !closing_) do_write();
    }

    void do_write() {
        out_->take(batch_);
        if (batch_.frames.empty()) {
            if (batch_.close) do_close();
            return;
        }
        closing_after_write_ = batch_.close;
        gather(batch_, scratch_, buffers_);
        writing_ = true;
        ws_.async_write(buffers_, beast::bind_front_handler(&ws_session::on_write, shared_from_this()));
    }

    void on_write(error_code ec, std::size_t bytes) {
        writing_ = false;
        if (ec) return fail(ec, "write");
        auto& m = ctx_->stats.of(transport_kind::websocket);
        m.messages_out.fetch_add(1, std::memory_order_relaxed);
        m.frames_out.fetch_add(batch_.frames.size(), std::memory_order_relaxed);
        m.gaps.fetch_add(batch_.gaps, std::memory_order_relaxed);
        m.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
        batch_.clear();
        if (closing_after_write_) return do_close();
        do_write();
    }

    void do_close() {
        if (closing_) return;
        closing_ = true;
        const websocket::close_reason reason(close_code_for(out_->close_code()),
                                             errc_name(out_->close_code()));
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

    websocket::stream<Stream> ws_;
    beast::flat_buffer buffer_;
    std::shared_ptr<http_context> ctx_;
    const connection_id id_;
    std::shared_ptr<outbox> out_;
    std::shared_ptr<inbound_gate> gate_;
    outbox_batch batch_;
    std::vector<asio::const_buffer> buffers_;
    std::vector<std::uint8_t> scratch_;
    std::shared_ptr<ws_session<Stream>> paused_self_;  // set while reading waits for the core
    bool opened_ = false;
    bool reported_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool closing_ = false;
    bool closing_after_write_ = false;
};

}  // namespace

void run_ws_session(beast::tcp_stream stream, http::request<http::string_body> upgrade,
                    std::shared_ptr<http_context> ctx) {
    // The WebSocket stream keeps its own handshake and idle timer, so the
    // plain socket is enough below it: beast::tcp_stream would add a second
    // heap block with three timers of its own to every connection.
    std::make_shared<ws_session<tcp::socket>>(stream.release_socket(), std::move(ctx))->run(std::move(upgrade));
}

void run_ws_session(beast::ssl_stream<beast::tcp_stream> stream, http::request<http::string_body> upgrade,
                    std::shared_ptr<http_context> ctx) {
    std::make_shared<ws_session<beast::ssl_stream<beast::tcp_stream>>>(std::move(stream), std::move(ctx))
        ->run(std::move(upgrade));
}

}  // namespace hyperstreams::router
