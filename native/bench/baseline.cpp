// The no-routing baseline: a Beast WebSocket server on one thread that
// forwards each message as it came, with no decoding, no topic lookup and
// no per-connection queue bound. /broadcast sends every message to every
// other /broadcast connection (one shared buffer); /echo sends it back.
// What the router costs is the difference between this and the router.
#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange

#include <csignal>
#include <cstdio>
#include <deque>
#include <memory>
#include <unordered_set>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "bench.hpp"

namespace hyperstreams::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using shared_message = std::shared_ptr<const std::vector<std::uint8_t>>;

class session;

struct hub {
    std::unordered_set<session*> broadcast;
};

class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket socket, hub& h) : ws_(std::move(socket)), hub_(h) {}
    ~session() { hub_.broadcast.erase(this); }

    void run() {
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
        http::async_read(beast::get_lowest_layer(ws_), buffer_, request_,
                         beast::bind_front_handler(&session::on_request, shared_from_this()));
    }

    void send(shared_message m) {
        queue_.push_back(std::move(m));
        if (queue_.size() == 1) do_write();
    }

private:
    void on_request(error_code ec, std::size_t) {
        if (ec) return;
        echo_ = request_.target() == "/echo";
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.binary(true);
        ws_.auto_fragment(false);
        ws_.async_accept(request_, beast::bind_front_handler(&session::on_accept, shared_from_this()));
    }

    void on_accept(error_code ec) {
        if (ec) return;
        if (!echo_) hub_.broadcast.insert(this);
        send(std::make_shared<const std::vector<std::uint8_t>>(1, std::uint8_t{0}));  // "you are registered"
        do_read();
    }

    void do_read() {
        ws_.async_read(buffer_, beast::bind_front_handler(&session::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        if (ec) return;
        const auto data = buffer_.cdata();
        const auto* p = static_cast<const std::uint8_t*>(data.data());
        auto m = std::make_shared<const std::vector<std::uint8_t>>(p, p + data.size());
        buffer_.consume(buffer_.size());
        if (echo_) {
            send(std::move(m));
        } else {
            for (session* s : hub_.broadcast)
                if (s != this) s->send(m);
        }
        do_read();
    }

    void do_write() {
        ws_.async_write(asio::buffer(*queue_.front()),
                        beast::bind_front_handler(&session::on_write, shared_from_this()));
    }

    void on_write(error_code ec, std::size_t) {
        if (ec) return;
        queue_.pop_front();
        if (!queue_.empty()) do_write();
    }

    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    std::deque<shared_message> queue_;
    hub& hub_;
    bool echo_ = false;
};

void do_accept(tcp::acceptor& acceptor, hub& h) {
    acceptor.async_accept([&acceptor, &h](error_code ec, tcp::socket socket) {
        if (ec) return;
        std::make_shared<session>(std::move(socket), h)->run();
        do_accept(acceptor, h);
    });
}

}  // namespace

int serve_baseline() {
    asio::io_context ioc{1};
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    hub h;
    do_accept(acceptor, h);
    asio::signal_set signals(ioc, SIGTERM, SIGINT);
    signals.async_wait([&](error_code, int) { ioc.stop(); });
    std::printf("ready %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);
    ioc.run();
    return 0;
}

}  // namespace hyperstreams::bench
