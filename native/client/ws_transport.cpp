// The WebSocket transport (Beast): one client connection, binary messages,
// one write in flight at a time (Beast allows no more), reads in a loop.
// ws:// runs over a plain TCP stream, wss:// over an OpenSSL stream that
// verifies the router's certificate (tls_options). The only file of the host
// that includes Beast or OpenSSL.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdio>
#include <deque>
#include <type_traits>
#include <vector>

#include "hyperstreams/native/engine_host.hpp"
#include "tls_peer.hpp"
#include "tls_socket.hpp"
#include "transport.hpp"

namespace hyperstreams::native {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

class tls_context {
public:
    explicit tls_context(const tls_options& options) : options_(options) {
        // The router speaks TLS 1.2 and later only; so does this client.
        SSL_CTX_set_min_proto_version(context_.native_handle(), TLS1_2_VERSION);
        if (options_.insecure_skip_verify) {
            context_.set_verify_mode(ssl::verify_none);
            return;
        }
        context_.set_verify_mode(ssl::verify_peer);
        beast::error_code ec;
        if (!options_.ca_file.empty()) {
            context_.load_verify_file(options_.ca_file, ec);
            if (ec) load_error_ = "cannot load the CA file " + options_.ca_file + ": " + ec.message();
        } else {
            context_.set_default_verify_paths(ec);
            if (ec) load_error_ = "cannot load the system's trusted CAs: " + ec.message();
        }
    }

    ssl::context& context() { return context_; }
    const tls_options& options() const { return options_; }
    // Why no connection can be verified (an unreadable CA file); empty when one can.
    const std::string& load_error() const { return load_error_; }

private:
    ssl::context context_{ssl::context::tls_client};
    const tls_options options_;
    std::string load_error_;
};

std::shared_ptr<tls_context> make_tls_context(const tls_options& options) {
    return std::make_shared<tls_context>(options);
}

namespace {

// The engine's handshake timeout bounds connecting as a whole; these only
// keep a stuck socket from outliving its transport.
constexpr auto connect_timeout = std::chrono::seconds(30);
constexpr auto close_timeout = std::chrono::milliseconds(500);

struct ws_url {
    std::string host;
    std::string port;
    std::string target = "/";
};

bool parse_ws_url(std::string_view url, ws_url& out) {
    if (url.starts_with("ws://")) {
        url.remove_prefix(5);
        out.port = "80";
    } else if (url.starts_with("wss://")) {
        url.remove_prefix(6);
        out.port = "443";
    } else {
        return false;
    }
    const std::size_t slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    if (slash != std::string_view::npos) out.target = std::string(url.substr(slash));
    if (authority.starts_with('[')) {  // [IPv6]:port
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return false;
        out.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (authority.starts_with(':')) out.port = std::string(authority.substr(1));
    } else {
        const std::size_t colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
    }
    return !out.host.empty() && !out.port.empty();
}

using plain_stream = beast::tcp_stream;
using tls_stream = hyperstreams::tls_socket;

template <class Stream>
class ws_link final : public transport, public std::enable_shared_from_this<ws_link<Stream>> {
    static constexpr bool secure = std::is_same_v<Stream, tls_stream>;

public:
    ws_link(asio::io_context& io, const transport_options& options, std::shared_ptr<tls_context> tls,
            transport_callbacks cb)
        : io_(io),
          receive_buffer_bytes_(options.receive_buffer_bytes),
          tls_(std::move(tls)),
          callbacks_(std::move(cb)),
          resolver_(io),
          ws_(make_stream(io, tls_.get())) {}

    void start(const std::string& url) {
        if (!parse_ws_url(url, url_))
            return fail_later(errc::connection_failed, "not a ws:// or wss://HOST:PORT/PATH URL");
        if constexpr (secure) {
            if (!tls_->load_error().empty()) return fail_later(errc::connection_failed, tls_->load_error());
            if (tls_->options().insecure_skip_verify) warn_unverified(url);
        }
        resolver_.async_resolve(url_.host, url_.port,
                                [self = this->shared_from_this()](beast::error_code ec,
                                                                  tcp::resolver::results_type results) {
                                    if (ec)
                                        return self->fail(errc::connection_failed,
                                                          "cannot resolve " + self->url_.host + ": " + ec.message());
                                    self->endpoints_ = std::move(results);
                                    self->next_endpoint_ = self->endpoints_.begin();
                                    self->connect_next({});
                                });
    }

    void send(bytes_view message) override {
        if (closed_ || closing_) return;
        queue_.emplace_back(message.begin(), message.end());
        if (open_ && !writing_) do_write();
    }

    void close() override {
        owner_closed_ = true;
        if (closed_ || closing_) return;
        if (!open_) {
            closed_ = true;
            resolver_.cancel();
            beast::get_lowest_layer(ws_).close();
            return;
        }
        closing_ = true;
        if (!writing_) do_close();
    }

    bool busy() const override { return closing_ && !finished_; }

    void set_reading(bool reading) override {
        reading_wanted_ = reading;
        if (reading && open_) do_read();
    }

    void abort() override {
        if (closed_ || closing_) return;
        resolver_.cancel();
        beast::get_lowest_layer(ws_).close();
        fail_later({}, {});
    }

private:
    static websocket::stream<Stream> make_stream(asio::io_context& io, tls_context* tls) {
        if constexpr (secure)
            return websocket::stream<Stream>(tls_socket::stream_type(io, tls->context()));
        else
            return websocket::stream<Stream>(io);
    }

    // Loud on every attempt: an unverified connection must never go unnoticed.
    void warn_unverified(const std::string& url) const {
        const std::string warning = "hyperstreams: WARNING: connecting to " + url +
                                    " WITHOUT verifying the router's TLS certificate "
                                    "(tls_options::insecure_skip_verify): anyone on the path can read and "
                                    "change this connection, tokens included. For tests only.";
        if (tls_->options().warn)
            tls_->options().warn(warning);
        else
            std::fprintf(stderr, "%s\n", warning.c_str());
    }

    // Each resolved address in turn, on a socket opened here so that its
    // options are set before the SYN (the receive buffer sizes the window).
    void connect_next(beast::error_code last) {
        if (closed_) return;
        if (next_endpoint_ == endpoints_.end()) {
            if (last == asio::error::connection_refused)
                return fail(errc::connection_refused, "nothing accepts connections on " + authority());
            return fail(errc::connection_failed, "cannot connect to " + authority() + ": " + last.message());
        }
        const tcp::endpoint endpoint = *next_endpoint_++;
        auto& socket = beast::get_lowest_layer(ws_).socket();
        beast::error_code ec;
        socket.close(ec);
        socket.open(endpoint.protocol(), ec);
        if (ec) return connect_next(ec);
        if (receive_buffer_bytes_ > 0)
            socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer_bytes_), ec);
        beast::get_lowest_layer(ws_).expires_after(connect_timeout);
        beast::get_lowest_layer(ws_).async_connect(endpoint,
                                                   [self = this->shared_from_this()](beast::error_code e) {
                                                       if (e) return self->connect_next(e);
                                                       self->on_connect();
                                                   });
    }

    void on_connect() {
        if (closed_) return;
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
        if constexpr (secure)
            tls_handshake();
        else
            ws_handshake();
    }

    void tls_handshake() {
        if (!tls_expect_host(ws_.next_layer().native_handle(), url_.host, !tls_->options().insecure_skip_verify))
            return fail(errc::connection_failed, "cannot check a certificate for " + url_.host);
        ws_.next_layer().async_handshake(ssl::stream_base::client,
                                         [self = this->shared_from_this()](beast::error_code ec) {
                                             if (ec) return self->fail_tls(ec);
                                             self->ws_handshake();
                                         });
    }

    // A certificate that does not verify says why (OpenSSL's words: "self-
    // signed certificate", "hostname mismatch", ...); anything else is most
    // likely not a TLS endpoint at all.
    void fail_tls(beast::error_code ec) {
        const std::string refusal = tls_certificate_refusal(ws_.next_layer().native_handle());
        if (!refusal.empty()) {
            const std::string& ca_file = tls_->options().ca_file;
            return fail(errc::transport_handshake_failed,
                        "TLS: the certificate of " + authority() + " is not trusted: " + refusal + " (trusting " +
                            (ca_file.empty() ? std::string("the system's CAs") : ca_file) + ")");
        }
        fail(errc::transport_handshake_failed,
             "no TLS handshake with " + authority() + " (" + ec.message() + "): not a TLS endpoint (ws://)?");
    }

    void ws_handshake() {
        if (closed_) return;
        beast::get_lowest_layer(ws_).expires_never();
        websocket::stream_base::timeout timeouts =
            websocket::stream_base::timeout::suggested(beast::role_type::client);
        timeouts.handshake_timeout = connect_timeout;
        ws_.set_option(timeouts);
        ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
            req.set(beast::http::field::user_agent, "hyperstreams-native-client");
        }));
        ws_.binary(true);
        ws_.read_message_max(0);  // the engine's decoder bounds what it accepts
        ws_.async_handshake(upgrade_response_, authority(), url_.target,
                            [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->fail_handshake(ec);
                                self->on_handshake();
                            });
    }

    // A server that answered the upgrade with a status (a wrong path, a
    // forbidden origin) or not with HTTP at all (not a WebSocket endpoint).
    void fail_handshake(beast::error_code ec) {
        if (ec == websocket::error::upgrade_declined && upgrade_response_.result_int() != 0) {
            return fail(errc::upgrade_refused,
                        "HTTP " + std::to_string(upgrade_response_.result_int()) + " " +
                            std::string(upgrade_response_.reason()) + " from " + authority() +
                            url_.target + " instead of a WebSocket upgrade");
        }
        fail(errc::transport_handshake_failed,
             "no WebSocket handshake with " + authority() + " (" + ec.message() + "): not a WebSocket endpoint" +
                 (secure ? "?" : " (or a TLS one: wss://)?"));
    }

    std::string authority() const { return url_.host + ":" + url_.port; }

    void on_handshake() {
        if (closed_) return;
        open_ = true;
        if (callbacks_.opened) callbacks_.opened();
        if (closed_) return;
        do_read();
        if (!queue_.empty() && !writing_) do_write();
    }

    void do_read() {
        if (reading_ || !reading_wanted_ || closed_ || closing_) return;
        reading_ = true;
        ws_.async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
            self->reading_ = false;
            if (ec) return self->fail({}, {});
            if (self->closed_ || self->closing_) return;
            const auto data = self->buffer_.cdata();
            if (self->callbacks_.received)
                self->callbacks_.received(
                    bytes_view(static_cast<const std::uint8_t*>(data.data()), data.size()));
            self->buffer_.consume(self->buffer_.size());
            self->do_read();
        });
    }

    void do_write() {
        writing_ = true;
        ws_.async_write(asio::buffer(queue_.front()),
                        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                            self->writing_ = false;
                            if (ec) return self->fail({}, {});
                            if (self->closed_) return;
                            self->queue_.pop_front();
                            if (!self->queue_.empty()) return self->do_write();
                            if (self->closing_) self->do_close();
                        });
    }

    void do_close() {
        beast::get_lowest_layer(ws_).expires_after(close_timeout);
        ws_.async_close(websocket::close_code::normal, [self = this->shared_from_this()](beast::error_code) {
            self->finished_ = true;
            self->closed_ = true;
            beast::get_lowest_layer(self->ws_).close();
        });
    }

    void fail_later(errc reason, std::string detail) {
        closed_ = true;
        asio::post(io_, [self = this->shared_from_this(), reason, detail = std::move(detail)] {
            if (self->callbacks_.closed && !self->owner_closed_) self->callbacks_.closed(reason, detail);
        });
    }

    // The connection failed or was lost: report once (not after close()).
    void fail(errc reason, const std::string& detail) {
        if (closing_) {
            finished_ = true;
            closed_ = true;
            beast::get_lowest_layer(ws_).close();
            return;
        }
        if (closed_) return;
        closed_ = true;
        beast::get_lowest_layer(ws_).close();
        if (callbacks_.closed) callbacks_.closed(reason, detail);
    }

    asio::io_context& io_;
    const int receive_buffer_bytes_;
    std::shared_ptr<tls_context> tls_;
    transport_callbacks callbacks_;
    ws_url url_;
    tcp::resolver resolver_;
    tcp::resolver::results_type endpoints_;
    tcp::resolver::results_type::const_iterator next_endpoint_;
    websocket::stream<Stream> ws_;
    websocket::response_type upgrade_response_;
    beast::flat_buffer buffer_;
    std::deque<std::vector<std::uint8_t>> queue_;
    bool open_ = false;
    bool reading_ = false;         // a read is in flight
    bool reading_wanted_ = true;   // set_reading()
    bool writing_ = false;
    bool closing_ = false;
    bool closed_ = false;
    bool finished_ = false;
    bool owner_closed_ = false;  // close() was called: no callback runs any more
};

}  // namespace

std::shared_ptr<transport> open_ws_transport(asio::io_context& io, const std::string& url,
                                             const transport_options& options,
                                             const std::shared_ptr<tls_context>& tls,
                                             transport_callbacks callbacks) {
    if (url.starts_with("wss://")) {
        auto link = std::make_shared<ws_link<tls_stream>>(io, options, tls, std::move(callbacks));
        link->start(url);
        return link;
    }
    auto link = std::make_shared<ws_link<plain_stream>>(io, options, nullptr, std::move(callbacks));
    link->start(url);
    return link;
}

}  // namespace hyperstreams::native
