#include "listener.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <utility>

#include "http_session.hpp"
#include "log.hpp"

namespace hyperstreams::router {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// After a failed accept the listener waits before it tries again, from
// first_retry doubling up to last_retry (as nats-server does): out of
// descriptors, the socket stays readable and an immediate retry would spin.
constexpr auto first_retry = std::chrono::milliseconds(10);
constexpr auto last_retry = std::chrono::milliseconds(1000);

// Lets one log line through per interval and counts the ones it holds
// back, so that a condition repeating thousands of times a second costs a
// line a second. One thread only (the acceptor's).
class log_throttle {
public:
    // True when a line may be written now; `held_back` is then how many
    // were not since the last one.
    bool allow(std::chrono::steady_clock::time_point now, std::uint64_t& held_back) noexcept {
        if (now < next_) {
            ++held_;
            return false;
        }
        next_ = now + std::chrono::seconds(1);
        held_back = std::exchange(held_, 0);
        return true;
    }

private:
    std::chrono::steady_clock::time_point next_{};
    std::uint64_t held_ = 0;
};

}  // namespace

struct listener::impl : std::enable_shared_from_this<listener::impl> {
    impl(std::vector<asio::io_context*> w, std::shared_ptr<http_context> c, http_routes r)
        : workers(std::move(w)),
          ctx(std::move(c)),
          routes(r),
          kind(r == http_routes::admin ? listener_kind::admin : listener_kind::main),
          stats(ctx->stats.of(kind)),
          acceptor(*workers.front()),
          retry_timer(*workers.front()) {}

    void do_accept() {
        asio::io_context& target = *workers[next++ % workers.size()];
        acceptor.async_accept(target, [self = shared_from_this()](error_code ec, tcp::socket socket) {
            self->on_accept(ec, std::move(socket));
        });
    }

    void on_accept(error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (ec) return on_accept_failed(ec);
        if (failures_in_a_row > 0) {
            HS_LOG(info, "http.accept_recovered").kv("listener", listener_name(kind)).kv("failures", failures_in_a_row);
            failures_in_a_row = 0;
            retry_delay = {};
        }
        admit(std::move(socket));
        do_accept();
    }

    void on_accept_failed(error_code ec) {
        stats.accept_failures.fetch_add(1, std::memory_order_relaxed);
        ++failures_in_a_row;
        retry_delay = retry_delay == std::chrono::milliseconds{} ? first_retry : std::min(retry_delay * 2, last_retry);
        std::uint64_t held_back = 0;
        if (failure_log.allow(std::chrono::steady_clock::now(), held_back)) {
            HS_LOG(warn, "http.accept_failed").kv("listener", listener_name(kind)).kv("error", ec.message())
                .kv("retry_ms", static_cast<std::int64_t>(retry_delay.count())).kv("not_logged", held_back);
        }
        retry_timer.expires_after(retry_delay);
        retry_timer.async_wait([self = shared_from_this()](error_code e) {
            if (!e) self->do_accept();
        });
    }

    // Takes one of the listener's places for connections not upgraded yet,
    // or closes the connection at once when there is none.
    void admit(tcp::socket socket) {
        if (stats.http_connections.fetch_add(1, std::memory_order_relaxed) >=
            static_cast<std::int64_t>(ctx->cfg.max_http_connections)) {
            stats.http_connections.fetch_sub(1, std::memory_order_relaxed);
            stats.http_refused.fetch_add(1, std::memory_order_relaxed);
            std::uint64_t held_back = 0;
            if (refusal_log.allow(std::chrono::steady_clock::now(), held_back)) {
                HS_LOG(warn, "http.connection_refused").kv("listener", listener_name(kind))
                    .kv("limit", std::uint64_t{ctx->cfg.max_http_connections}).kv("not_logged", held_back);
            }
            error_code ignored;
            socket.close(ignored);
            return;
        }
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        run_http_session(std::move(socket), ctx, routes, http_slot(stats.http_connections));
    }

    std::vector<asio::io_context*> workers;
    std::shared_ptr<http_context> ctx;
    const http_routes routes;
    const listener_kind kind;
    metrics::per_listener& stats;
    tcp::acceptor acceptor;
    asio::steady_timer retry_timer;
    std::size_t next = 0;
    std::chrono::milliseconds retry_delay{};
    std::uint64_t failures_in_a_row = 0;
    log_throttle failure_log;
    log_throttle refusal_log;
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
    // Appended piece by piece: GCC 12 warns falsely (-Wrestrict, its bug
    // 105329) on `"[" + address + "]"` once Asio 1.81 inlines to_string.
    std::string h;
    if (bound.address().is_v6()) h += '[';
    h += bound.address().to_string();
    if (bound.address().is_v6()) h += ']';
    h += ':';
    h += std::to_string(bound.port());
    return h;
}

void listener::start() {
    asio::post(impl_->acceptor.get_executor(), [self = impl_] { self->do_accept(); });
}

}  // namespace hyperstreams::router
