#include "http_session.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "cluster_node.hpp"
#include "log.hpp"
#include "net.hpp"
#include "static_files.hpp"
#include "tls_socket.hpp"
#include "ws_session.hpp"

namespace hyperstreams::router {
namespace {

constexpr auto request_timeout = std::chrono::seconds(30);
constexpr std::uint32_t header_limit = 8 * 1024;
constexpr std::uint64_t body_limit = 16 * 1024;

// A browser always sends Origin on a WebSocket upgrade; a request without
// one is not from a page (and a non-browser client could send any Origin).
bool origin_allowed(const router_config& cfg, const http::request<http::string_body>& req) {
    if (cfg.allowed_origins.empty()) return true;
    const auto it = req.find(http::field::origin);
    if (it == req.end()) return true;
    const std::string_view origin(it->value().data(), it->value().size());
    return std::find(cfg.allowed_origins.begin(), cfg.allowed_origins.end(), origin) != cfg.allowed_origins.end();
}

constexpr auto handshake_timeout = std::chrono::seconds(10);

// With admin.token_file, /metrics and /status want "Authorization: Bearer
// TOKEN". The comparison takes the same time wherever the first difference is.
bool admin_authorized(const http_context& ctx, const http::request<http::string_body>& req) {
    if (ctx.admin_token.empty()) return true;
    const auto it = req.find(http::field::authorization);
    if (it == req.end()) return false;
    std::string_view value(it->value().data(), it->value().size());
    constexpr std::string_view scheme = "bearer ";
    if (value.size() < scheme.size() || !beast::iequals(value.substr(0, scheme.size()), scheme)) return false;
    value.remove_prefix(scheme.size());
    return value.size() == ctx.admin_token.size() &&
           CRYPTO_memcmp(value.data(), ctx.admin_token.data(), value.size()) == 0;
}

using tls_stream = tls_socket;

// Stream: beast::tcp_stream (http, ws) or tls_socket (https, wss).
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
    using std::enable_shared_from_this<http_session<Stream>>::shared_from_this;
    static constexpr bool tls = std::is_same_v<Stream, tls_stream>;

public:
    http_session(tcp::socket&& socket, std::shared_ptr<http_context> ctx, http_routes routes, http_slot slot)
        : stream_(make_stream(std::move(socket), *ctx)), ctx_(std::move(ctx)), routes_(routes), slot_(std::move(slot)) {}

    void run() {
        asio::dispatch(stream_.get_executor(),
                       beast::bind_front_handler(&http_session::start, shared_from_this()));
    }

private:
    static Stream make_stream(tcp::socket&& socket, http_context& ctx) {
        if constexpr (tls)
            return Stream(tls_socket::stream_type(std::move(socket), *ctx.tls));
        else
            return Stream(std::move(socket));
    }

    void start() {
        if constexpr (tls) {
            beast::get_lowest_layer(stream_).expires_after(handshake_timeout);
            stream_.async_handshake(asio::ssl::stream_base::server,
                                    beast::bind_front_handler(&http_session::on_handshake, shared_from_this()));
        } else {
            do_read();
        }
    }

    void on_handshake(error_code ec) {
        if (ec) {
            ctx_->stats.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
            HS_LOG(debug, "tls.handshake_failed").kv("error", ec.message());
            return;
        }
        do_read();
    }

    void do_read() {
        parser_.emplace();
        parser_->header_limit(header_limit);
        parser_->body_limit(body_limit);
        beast::get_lowest_layer(stream_).expires_after(request_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&http_session::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        if (ec == http::error::end_of_stream) return do_close();
        if (ec) {
            if (ec != asio::error::operation_aborted && ec != beast::error::timeout &&
                ec != asio::error::eof && ec != asio::error::connection_reset) {
                HS_LOG(debug, "http.read_failed").kv("error", ec.message());
            }
            return;
        }
        http::request<http::string_body>& req = parser_->get();
        const std::string_view target(req.target().data(), req.target().size());
        const std::string_view path = target.substr(0, target.find('?'));

        const bool app = routes_ != http_routes::admin;
        const bool admin = routes_ != http_routes::app;
        if (websocket::is_upgrade(req)) {
            if (!app || path != ctx_->cfg.ws_path)
                return respond(text(req, http::status::not_found, "no WebSocket here\n"));
            if (ctx_->draining.load())
                return respond(text(req, http::status::service_unavailable, "draining: connect to another router\n"));
            if (!origin_allowed(ctx_->cfg, req)) {
                ctx_->stats.origins_refused.fetch_add(1, std::memory_order_relaxed);
                const auto origin = req[http::field::origin];
                HS_LOG(warn, "ws.origin_refused").kv("origin", std::string_view(origin.data(), origin.size()));
                return respond(text(req, http::status::forbidden, "origin_not_allowed: this Origin may not connect\n"));
            }
            beast::get_lowest_layer(stream_).expires_never();
            slot_.release();  // a WebSocket session counts in limits.max_connections instead
            run_ws_session(std::move(stream_), parser_->release(), ctx_);
            return;
        }
        if (req.method() != http::verb::get && req.method() != http::verb::head)
            return respond(text(req, http::status::method_not_allowed, "GET or HEAD only\n"));

        if (path == "/healthz") {
            // Not ready: draining, or one of several routers that cannot reach Redis.
            if (ctx_->draining.load()) return respond(text(req, http::status::service_unavailable, "draining\n"));
            if (ctx_->cluster != nullptr) {
                if (std::string why = ctx_->cluster->not_ready(); !why.empty())
                    return respond(text(req, http::status::service_unavailable, "not ready: " + why + "\n"));
            }
            return respond(text(req, http::status::ok, "ok\n"));
        }
        if (admin && (path == "/metrics" || path == "/status") && !admin_authorized(*ctx_, req)) {
            ctx_->stats.admin_refused.fetch_add(1, std::memory_order_relaxed);
            auto res = text(req, http::status::unauthorized,
                            "unauthorized: " + std::string(path) + " needs Authorization: Bearer <admin token>\n");
            res.set(http::field::www_authenticate, "Bearer realm=\"hyperstreams-admin\"");
            return respond(std::move(res));
        }
        if (admin && path == "/metrics") {
            auto res = text(req, http::status::ok,
                            ctx_->stats.render() + (ctx_->cluster ? ctx_->cluster->render_metrics() : std::string()));
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            return respond(std::move(res));
        }
        if (admin && path == "/status") {
            http::response<http::string_body> res{http::status::ok, req.version()};
            res.set(http::field::server, "hyperstreams-router");
            res.set(http::field::content_type, "application/json");
            res.set(http::field::cache_control, "no-store");
            res.keep_alive(req.keep_alive());
            if (ctx_->cluster != nullptr) {
                const cluster_view view = ctx_->cluster->view();
                res.body() = ctx_->core.status(&view);
            } else {
                res.body() = ctx_->core.status();
            }
            res.prepare_payload();
            if (req.method() == http::verb::head) res.body().clear();
            return respond(std::move(res));
        }
        if (!app) return respond(text(req, http::status::not_found, "not found\n"));
        serve_file(req, path);
    }

    void serve_file(const http::request<http::string_body>& req, std::string_view path) {
        if (ctx_->web_root.empty()) {
            if (path == "/")
                return respond(text(req, http::status::ok,
                                    "HyperStreams router. WebSocket: " + ctx_->cfg.ws_path + ", /healthz" +
                                        (routes_ == http_routes::both ? ", /metrics, /status\n" : "\n")));
            return respond(text(req, http::status::not_found, "not found\n"));
        }
        const auto file = resolve_static(ctx_->web_root, req.target());
        if (!file) return respond(text(req, http::status::bad_request, "bad path\n"));

        http::file_body::value_type body;
        error_code ec;
        body.open(file->c_str(), beast::file_mode::scan, ec);
        if (ec == beast::errc::no_such_file_or_directory || ec == beast::errc::is_a_directory)
            return respond(text(req, http::status::not_found, "not found\n"));
        if (ec) return respond(text(req, http::status::internal_server_error, "cannot read the file\n"));

        const auto size = body.size();
        const std::string_view type = content_type(*file);
        if (req.method() == http::verb::head) {
            http::response<http::empty_body> res{http::status::ok, req.version()};
            res.set(http::field::server, "hyperstreams-router");
            res.set(http::field::content_type, type);
            res.content_length(size);
            res.keep_alive(req.keep_alive());
            return respond(std::move(res));
        }
        http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(body)),
                                            std::make_tuple(http::status::ok, req.version())};
        res.set(http::field::server, "hyperstreams-router");
        res.set(http::field::content_type, type);
        res.set("X-Content-Type-Options", "nosniff");
        res.content_length(size);
        res.keep_alive(req.keep_alive());
        respond(std::move(res));
    }

    static http::response<http::string_body> text(const http::request<http::string_body>& req,
                                                  http::status status, std::string body) {
        http::response<http::string_body> res{status, req.version()};
        res.set(http::field::server, "hyperstreams-router");
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.set(http::field::cache_control, "no-store");
        res.keep_alive(req.keep_alive());
        res.body() = std::move(body);
        res.prepare_payload();
        if (req.method() == http::verb::head) res.body().clear();
        return res;
    }

    template <bool IsRequest, typename Body, typename Fields>
    void respond(http::message<IsRequest, Body, Fields>&& msg) {
        auto sp = std::make_shared<http::message<IsRequest, Body, Fields>>(std::move(msg));
        response_ = sp;
        beast::get_lowest_layer(stream_).expires_after(request_timeout);
        http::async_write(stream_, *sp,
                          beast::bind_front_handler(&http_session::on_write, shared_from_this(), sp->need_eof()));
    }

    void on_write(bool close, error_code ec, std::size_t) {
        response_.reset();
        if (ec) return;
        if (close) return do_close();
        do_read();
    }

    void do_close() {
        if constexpr (tls) {
            beast::get_lowest_layer(stream_).expires_after(handshake_timeout);
            stream_.async_shutdown([self = shared_from_this()](error_code) {});
        } else {
            error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        }
    }

    Stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<http_context> ctx_;
    const http_routes routes_;
    http_slot slot_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<void> response_;
};

}  // namespace

void run_http_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<http_context> ctx, http_routes routes,
                      http_slot slot) {
    if (ctx->tls != nullptr)
        std::make_shared<http_session<tls_stream>>(std::move(socket), std::move(ctx), routes, std::move(slot))->run();
    else
        std::make_shared<http_session<beast::tcp_stream>>(std::move(socket), std::move(ctx), routes, std::move(slot))
            ->run();
}

}  // namespace hyperstreams::router
