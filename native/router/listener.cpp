#include "listener.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>

#include "http_session.hpp"
#include "log.hpp"

namespace hyperstreams::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

struct listener::impl : std::enable_shared_from_this<listener::impl> {
    impl(std::vector<asio::io_context*> w, std::shared_ptr<http_context> c, http_routes r)
        : workers(std::move(w)), ctx(std::move(c)), routes(r), acceptor(*workers.front()) {}

    void do_accept() {
        asio::io_context& target = *workers[next++ % workers.size()];
        acceptor.async_accept(target, [self = shared_from_this()](error_code ec, tcp::socket socket) {
            self->on_accept(ec, std::move(socket));
        });
    }

    void on_accept(error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (ec) {
            // Out of descriptors and the like: keep accepting, the condition may pass.
            HS_LOG(warn, "http.accept_failed").kv("error", ec.message());
        } else {
            error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            run_http_session(std::move(socket), ctx, routes);
        }
        do_accept();
    }

    std::vector<asio::io_context*> workers;
    std::shared_ptr<http_context> ctx;
    const http_routes routes;
    tcp::acceptor acceptor;
    std::size_t next = 0;
};

listener::listener(std::vector<asio::io_context*> workers, std::shared_ptr<http_context> ctx, http_routes routes)
    : impl_(std::make_shared<impl>(std::move(workers), std::move(ctx), routes)) {}

listener::~listener() = default;

std::string listener::bind(const std::string& host, std::uint16_t port) {
    const std::string setting = impl_->routes == http_routes::admin ? "admin.listen" : "listen";
    error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) throw std::runtime_error(setting + ": '" + host + "' is not an IP address");
    const tcp::endpoint endpoint(address, port);
    tcp::acceptor& a = impl_->acceptor;
    auto check = [&](const char* what) {
        if (ec) throw std::runtime_error(setting + ": " + what + " " + host + ":" + std::to_string(port) + ": " +
                                         ec.message());
    };
    a.open(endpoint.protocol(), ec);
    check("cannot open");
    a.set_option(asio::socket_base::reuse_address(true), ec);
    check("cannot configure");
    a.bind(endpoint, ec);
    check("cannot bind");
    a.listen(asio::socket_base::max_listen_connections, ec);
    check("cannot listen on");
    const tcp::endpoint bound = a.local_endpoint(ec);
    check("cannot read the address of");
    const std::string h = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                   : bound.address().to_string();
    return h + ":" + std::to_string(bound.port());
}

void listener::start() {
    asio::post(impl_->acceptor.get_executor(), [self = impl_] { self->do_accept(); });
}

}  // namespace hyperstreams::router
