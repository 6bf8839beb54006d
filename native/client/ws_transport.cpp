// The WebSocket transport (Beast): one client connection, binary messages,
// one write in flight at a time (Beast allows no more), reads in a loop.
// The only file of the host that includes Beast.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <vector>

#include "transport.hpp"

namespace hyperstreams::native {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

// The engine's handshake timeout bounds connecting as a whole; these only
// keep a stuck socket from outliving its transport.
constexpr auto connect_timeout = std::chrono::seconds(30);
constexpr auto close_timeout = std::chrono::milliseconds(500);

struct ws_url {
    std::string host;
    std::string port = "80";
    std::string target = "/";
};

bool parse_ws_url(std::string_view url, ws_url& out) {
    constexpr std::string_view scheme = "ws://";
    if (!url.starts_with(scheme)) return false;
    url.remove_prefix(scheme.size());
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

class ws_link final : public transport, public std::enable_shared_from_this<ws_link> {
public:
    ws_link(asio::io_context& io, transport_callbacks cb)
        : io_(io), callbacks_(std::move(cb)), resolver_(io), ws_(io) {}

    void start(const std::string& url) {
        if (!parse_ws_url(url, url_)) return fail_later(errc::connection_failed, "not a ws://HOST:PORT/PATH URL");
        resolver_.async_resolve(url_.host, url_.port,
                                [self = shared_from_this()](beast::error_code ec,
                                                            tcp::resolver::results_type results) {
                                    if (ec)
                                        return self->fail(errc::connection_failed,
                                                          "cannot resolve " + self->url_.host + ": " + ec.message());
                                    self->on_resolve(results);
                                });
    }

    void send(bytes_view message) override {
        if (closed_ || closing_) return;
        queue_.emplace_back(message.begin(), message.end());
        if (open_ && !writing_) do_write();
    }

    void close() override {
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

private:
    void on_resolve(const tcp::resolver::results_type& results) {
        if (closed_) return;
        beast::get_lowest_layer(ws_).expires_after(connect_timeout);
        beast::get_lowest_layer(ws_).async_connect(
            results, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
                if (ec == asio::error::connection_refused)
                    return self->fail(errc::connection_refused,
                                      "nothing accepts connections on " + self->authority());
                if (ec) return self->fail(errc::connection_failed,
                                          "cannot connect to " + self->authority() + ": " + ec.message());
                self->on_connect();
            });
    }

    void on_connect() {
        if (closed_) return;
        beast::get_lowest_layer(ws_).expires_never();
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
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
                            [self = shared_from_this()](beast::error_code ec) {
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
             "no WebSocket handshake with " + authority() + " (" + ec.message() + "): not a WebSocket endpoint?");
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
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->fail({}, {});
            if (self->closed_ || self->closing_) return;
            const auto data = self->buffer_.cdata();
            if (self->callbacks_.received)
                self->callbacks_.received(
                    bytes_view(static_cast<const std::uint8_t*>(data.data()), data.size()));
            self->buffer_.consume(self->buffer_.size());
            if (!self->closed_ && !self->closing_) self->do_read();
        });
    }

    void do_write() {
        writing_ = true;
        ws_.async_write(asio::buffer(queue_.front()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            self->writing_ = false;
                            if (ec) return self->fail({}, {});
                            self->queue_.pop_front();
                            if (!self->queue_.empty()) return self->do_write();
                            if (self->closing_) self->do_close();
                        });
    }

    void do_close() {
        beast::get_lowest_layer(ws_).expires_after(close_timeout);
        ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {
            self->finished_ = true;
            self->closed_ = true;
            beast::get_lowest_layer(self->ws_).close();
        });
    }

    void fail_later(errc reason, std::string detail) {
        closed_ = true;
        asio::post(io_, [self = shared_from_this(), reason, detail = std::move(detail)] {
            if (self->callbacks_.closed) self->callbacks_.closed(reason, detail);
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
    transport_callbacks callbacks_;
    ws_url url_;
    tcp::resolver resolver_;
    websocket::stream<beast::tcp_stream> ws_;
    websocket::response_type upgrade_response_;
    beast::flat_buffer buffer_;
    std::deque<std::vector<std::uint8_t>> queue_;
    bool open_ = false;
    bool writing_ = false;
    bool closing_ = false;
    bool closed_ = false;
    bool finished_ = false;
};

}  // namespace

std::shared_ptr<transport> open_ws_transport(asio::io_context& io, const std::string& url,
                                             transport_callbacks callbacks) {
    auto link = std::make_shared<ws_link>(io, std::move(callbacks));
    link->start(url);
    return link;
}

}  // namespace hyperstreams::native
