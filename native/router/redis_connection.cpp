#include "redis_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <utility>

#include "tls_peer.hpp"

namespace hyperstreams::router {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using error_code = boost::system::error_code;

std::shared_ptr<ssl::context> make_redis_tls_context(const redis_tls_options& o, std::string& error) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (!o.ca_file.empty()) {
        if (context->load_verify_file(o.ca_file, ec), ec)
            error = "cannot load the CA file " + o.ca_file + ": " + ec.message();
    } else if (context->set_default_verify_paths(ec), ec) {
        error = "cannot load the system's trusted CAs: " + ec.message();
    }
    if (error.empty() && !o.cert_file.empty() && (context->use_certificate_chain_file(o.cert_file, ec), ec))
        error = "cannot load the certificate file " + o.cert_file + ": " + ec.message();
    if (error.empty() && !o.key_file.empty() &&
        (context->use_private_key_file(o.key_file, ssl::context::pem, ec), ec))
        error = "cannot load the key file " + o.key_file + ": " + ec.message();
    if (!error.empty()) return nullptr;
    return context;
}

struct redis_connection::tls_stream {
    tls_stream(tcp::socket& socket, ssl::context& context) : stream(socket, context) {}
    ssl::stream<tcp::socket&> stream;
};

// A zero backoff would reconnect in a busy loop.
redis_backoff::redis_backoff(const redis_options& options)
    : min_(std::max(options.backoff_min, std::chrono::milliseconds(1))),
      max_(std::max(options.backoff_max, min_)),
      current_(min_),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds redis_backoff::next() {
    std::uniform_int_distribution<long long> spread(current_.count() / 2, current_.count());
    const std::chrono::milliseconds delay(spread(rng_));
    current_ = std::min(current_ * 2, max_);
    return delay;
}

namespace {

std::string greeting_of(const redis_options& options, std::string_view role) {
    std::string g = !options.password.empty() ? options.user.empty()
                                                    ? redis_format({"AUTH", options.password})
                                                    : redis_format({"AUTH", options.user, options.password})
                                              : redis_format({"PING"});
    if (options.client_name.empty()) return g;
    std::string name = options.client_name + ":" + std::string(role);
    for (char& c : name)
        if (c <= ' ' || c > '~') c = '_';
    return g + redis_format({"CLIENT", "SETNAME", name});
}

}  // namespace

redis_connection::redis_connection(asio::io_context& io, redis_address address, const redis_options& options,
                                   std::shared_ptr<ssl::context> tls, bool subscriber, std::string_view role,
                                   events e)
    : address_(std::move(address)),
      connect_timeout_(options.connect_timeout),
      command_timeout_(options.command_timeout),
      subscriber_(subscriber),
      // A connection is up once Redis answered, not once the kernel
      // accepted it: a Redis that hangs (a long script, a pause, a stopped
      // process) accepts connections it does not serve.
      greeting_(greeting_of(options, role)),
      greeting_is_auth_(!options.password.empty()),
      greeting_replies_(options.client_name.empty() ? 1 : 2),
      events_(std::move(e)),
      resolver_(io),
      socket_(io),
      tls_context_(std::move(tls)),
      connect_timer_(io),
      command_timer_(io) {
    if (tls_context_) tls_ = std::make_unique<tls_stream>(socket_, *tls_context_);
}

redis_connection::~redis_connection() = default;

void redis_connection::connect() {
    if (state_ != state::idle) return;
    state_ = state::connecting;
    auto self = shared_from_this();
    connect_timer_.expires_after(connect_timeout_);
    connect_timer_.async_wait([self](const error_code& ec) {
        if (ec) return;
        if (self->state_ == state::connecting)
            self->fail(redis_status::unreachable,
                       "no connection within " + std::to_string(self->connect_timeout_.count()) + " ms");
        else if (self->state_ == state::handshaking)
            self->fail(redis_status::unreachable, "no TLS handshake within " +
                                                      std::to_string(self->connect_timeout_.count()) +
                                                      " ms: not a TLS port (redis://)?");
        else if (self->state_ == state::greeting)
            self->fail(redis_status::unreachable, std::string("no answer to ") +
                                                      (self->greeting_is_auth_ ? "AUTH" : "PING") + " within " +
                                                      std::to_string(self->connect_timeout_.count()) + " ms");
    });
    error_code parse_ec;
    const auto ip = asio::ip::make_address(address_.host, parse_ec);
    if (!parse_ec) {
        socket_.async_connect(tcp::endpoint(ip, address_.port),
                              [self](const error_code& ec) { self->on_connected(ec); });
        return;
    }
    resolver_.async_resolve(address_.host, std::to_string(address_.port),
                            [self](const error_code& ec, const tcp::resolver::results_type& results) {
                                if (self->state_ != state::connecting) return;
                                if (ec) {
                                    self->fail(redis_status::unreachable, "cannot resolve: " + ec.message());
                                    return;
                                }
                                asio::async_connect(self->socket_, results,
                                                    [self](const error_code& e, const tcp::endpoint&) {
                                                        self->on_connected(e);
                                                    });
                            });
}

template <typename Handler>
void redis_connection::write_all(std::string_view bytes, Handler&& handler) {
    if (tls_)
        asio::async_write(tls_->stream, asio::buffer(bytes), std::forward<Handler>(handler));
    else
        asio::async_write(socket_, asio::buffer(bytes), std::forward<Handler>(handler));
}

void redis_connection::on_connected(const error_code& ec) {
    if (state_ != state::connecting) return;
    if (ec) {
        fail(redis_status::unreachable, "cannot connect: " + ec.message());
        return;
    }
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    if (!tls_) {
        greet();
        return;
    }
    state_ = state::handshaking;
    if (!tls_expect_host(tls_->stream.native_handle(), address_.host, true)) {
        fail(redis_status::unreachable, "TLS: cannot check a certificate for " + address_.host);
        return;
    }
    tls_->stream.async_handshake(ssl::stream_base::client,
                                 [self = shared_from_this()](const error_code& e) { self->on_handshake(e); });
}

// A certificate that does not verify says why. (A plain Redis port reads
// the handshake as the start of a command and waits for its end: the
// connect timeout says so.)
void redis_connection::on_handshake(const error_code& ec) {
    if (state_ != state::handshaking) return;
    if (ec) {
        const std::string refusal = tls_certificate_refusal(tls_->stream.native_handle());
        fail(redis_status::unreachable, refusal.empty() ? "TLS handshake failed: " + ec.message()
                                                        : "TLS: the certificate is not trusted: " + refusal);
        return;
    }
    greet();
}

void redis_connection::greet() {
    // The greeting alone, then its answer (do_read), then what was queued.
    // A write that fails is left to the read to tell why (the server's
    // words, a TLS alert, or the reset), within the connect timeout.
    state_ = state::greeting;
    greeting_answered_ = 0;
    do_read();
    write_all(greeting_, [self = shared_from_this()](const error_code&, std::size_t) {});
}

void redis_connection::become_up() {
    connect_timer_.cancel();
    state_ = state::up;
    do_write();
    events_.up();
}

void redis_connection::send(redis_request_ptr r) {
    if (state_ == state::dead) {
        if (!detached_) events_.failed(std::move(r), redis_status::unreachable, address_.text() + ": closed");
        return;
    }
    next_ += r->wire;
    requests_.push_back(std::move(r));
    ++unwritten_;
    if (state_ == state::up) do_write();
}

void redis_connection::send_raw(std::string_view wire) {
    if (state_ == state::dead) return;
    next_ += wire;
    if (state_ == state::up) do_write();
}

void redis_connection::do_write() {
    if (write_in_progress_ || next_.empty() || !lost_scripts_.empty()) return;
    std::swap(writing_, next_);
    next_.clear();
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t i = requests_.size() - unwritten_; i < requests_.size(); ++i) requests_[i]->written = now;
    unwritten_ = 0;
    arm_command_timer();
    write_in_progress_ = true;
    write_all(writing_, [self = shared_from_this()](const error_code& ec, std::size_t) {
        self->write_in_progress_ = false;
        if (self->state_ != state::up) return;
        if (ec) {
            self->fail(redis_status::lost, "write failed: " + ec.message());
            return;
        }
        self->writing_.clear();
        self->do_write();
    });
}

void redis_connection::do_read() {
    auto on_read = [self = shared_from_this()](const error_code& ec, std::size_t n) { self->on_read(ec, n); };
    if (tls_)
        tls_->stream.async_read_some(asio::buffer(read_buf_), std::move(on_read));
    else
        socket_.async_read_some(asio::buffer(read_buf_), std::move(on_read));
}

void redis_connection::on_read(const error_code& ec, std::size_t n) {
    if (state_ != state::up && state_ != state::greeting) return;
    if (ec) {
        // TLS: a server that closes without its close_notify (Redis does)
        // truncates the stream.
        const bool closed = ec == asio::error::eof || ec == ssl::error::stream_truncated;
        fail(state_ == state::up ? redis_status::lost : redis_status::unreachable,
             closed ? std::string("closed by the server") : "read failed: " + ec.message());
        return;
    }
    if (reader_.feed(std::string_view(read_buf_.data(), n))) {
        fail(redis_status::lost, "bad reply: " + std::string(reader_.error()));
        return;
    }
    for (;;) {
        std::error_code rec;
        redis_reply reply = reader_.next(rec);
        if (rec) {
            fail(redis_status::lost, "bad reply: " + std::string(reader_.error()));
            return;
        }
        if (!reply) break;
        if (state_ == state::greeting) {
            // The AUTH's or PING's answer, then the name's, whatever it
            // says: an ACL that refuses CLIENT SETNAME costs nothing.
            if (++greeting_answered_ == 1 && redis_is_error(*reply)) {
                const std::string text(redis_text(*reply));
                fail(redis_status::unreachable, greeting_is_auth_             ? "AUTH refused: " + text
                                                : text.starts_with("NOAUTH") ? "Redis wants credentials: " + text
                                                                              : "PING refused: " + text);
                return;
            }
            if (greeting_answered_ < greeting_replies_) continue;
            become_up();
            if (state_ != state::up) return;
            continue;
        }
        // Redis wants credentials the options do not have: nothing ran.
        if (redis_is_error(*reply) && redis_text(*reply).substr(0, 6) == "NOAUTH") {
            fail(redis_status::unreachable, "Redis wants credentials: " + std::string(redis_text(*reply)));
            return;
        }
        if (subscriber_) {
            events_.pushed(std::move(reply));
            if (state_ != state::up) return;  // the subscriber gave it up
        } else {
            if (requests_.size() == unwritten_) {
                fail(redis_status::lost, "a reply to no command");
                return;
            }
            redis_request_ptr r = std::move(requests_.front());
            requests_.pop_front();
            auto& lost = lost_scripts_;
            const bool behind_lost = !lost.empty();
            if (behind_lost) --awaited_;
            if (r->script && redis_is_noscript(*reply)) {
                if (!behind_lost) awaited_ = requests_.size() - unwritten_;
                lost.push_back({std::move(r), std::move(reply), false});
            } else {
                for (auto& l : lost)
                    if (l.request->key == r->key) l.overtaken = true;
                events_.answered(std::move(r), std::move(reply));
            }
            if (state_ == state::up && !lost.empty() && awaited_ == 0) rerun_scripts();
        }
        // An event may have closed the connection.
        if (state_ != state::up) return;
    }
    do_read();
}

// Nothing is on the wire: the scripts go first, in their order, then what
// was sent meanwhile. Answers to the overtaken ones go out last, as an
// answer may send (or close the connection).
void redis_connection::rerun_scripts() {
    std::deque<lost_script> lost = std::exchange(lost_scripts_, {});
    std::string wire;
    std::deque<lost_script> refused;
    std::size_t rerun = 0;
    for (auto it = lost.rbegin(); it != lost.rend(); ++it) {
        std::string eval = it->overtaken ? std::string() : redis_evalsha_as_eval(it->request->wire,
                                                                                   it->request->script->body);
        if (eval.empty()) {
            refused.push_front(std::move(*it));
            continue;
        }
        it->request->wire = std::move(eval);
        it->request->script.reset();
        wire.insert(0, it->request->wire);
        requests_.push_front(std::move(it->request));
        ++rerun;
    }
    next_.insert(0, wire);
    unwritten_ += rerun;
    for (auto& r : refused) {
        if (state_ == state::up)
            events_.answered(std::move(r.request), std::move(r.noscript));
        else if (!detached_)
            events_.failed(std::move(r.request), redis_status::unreachable, address_.text() + ": closed");
    }
    if (state_ == state::up) do_write();
}

// One timer for the oldest request on the wire: answers come in order, so
// when it is answered in time the next one's deadline is checked.
void redis_connection::arm_command_timer() {
    if (command_timer_armed_ || requests_.size() == unwritten_) return;
    command_timer_armed_ = true;
    command_timer_.expires_at(requests_.front()->written + command_timeout_);
    command_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
        self->command_timer_armed_ = false;
        if (ec || self->state_ != state::up) return;
        self->on_command_timer();
    });
}

void redis_connection::on_command_timer() {
    if (requests_.size() == unwritten_) return;
    if (std::chrono::steady_clock::now() >= requests_.front()->written + command_timeout_) {
        fail(redis_status::timed_out,
             "no answer within " + std::to_string(command_timeout_.count()) + " ms");
        return;
    }
    arm_command_timer();
}

// The first request gets `first_status` when it was on the wire (it timed
// out), the others on the wire are lost, the unwritten ones never left.
// One at a time: an event may close() the connection, which then hands the
// rest back.
void redis_connection::fail(redis_status first_status, std::string reason) {
    if (state_ == state::dead) return;
    auto self = shared_from_this();
    state_ = state::dead;
    stop_io();
    std::size_t on_wire = requests_.size() - std::exchange(unwritten_, 0);
    const std::string why = address_.text() + ": " + reason;
    // Answered NOSCRIPT: they did not run.
    awaited_ = 0;
    while (!lost_scripts_.empty() && !detached_) {
        redis_request_ptr r = std::move(lost_scripts_.front().request);
        lost_scripts_.pop_front();
        events_.failed(std::move(r), redis_status::unreachable, why);
    }
    bool first = true;
    while (!requests_.empty() && !detached_) {
        redis_request_ptr r = std::move(requests_.front());
        requests_.pop_front();
        const redis_status s = on_wire == 0 ? redis_status::unreachable
                               : first && first_status == redis_status::timed_out ? redis_status::timed_out
                                                                                  : redis_status::lost;
        if (on_wire > 0) --on_wire;
        first = false;
        events_.failed(std::move(r), s, why);
    }
    if (!detached_) events_.down(why);
}

void redis_connection::stop_io() {
    error_code ignored;
    socket_.close(ignored);
    resolver_.cancel();
    connect_timer_.cancel();
    command_timer_.cancel();
}

std::deque<redis_request_ptr> redis_connection::close() {
    detached_ = true;
    state_ = state::dead;
    stop_io();
    unwritten_ = 0;
    awaited_ = 0;
    std::deque<redis_request_ptr> held;
    for (auto& l : std::exchange(lost_scripts_, {})) held.push_back(std::move(l.request));
    for (auto& r : std::exchange(requests_, {})) held.push_back(std::move(r));
    return held;
}

}  // namespace hyperstreams::router
