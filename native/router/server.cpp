#include "server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include "token_authorizer.hpp"
#include "core_runner.hpp"
#include "http_context.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "cluster_node.hpp"
#include "zmq_transport.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// Time the goodbyes get to leave once the core is drained.
constexpr auto flush_bound = std::chrono::seconds(2);
// How long a drain waits for the other routers of the cluster to answer the
// ping that tells which of them is there to take its clients.
constexpr auto drain_probe_bound = std::chrono::milliseconds(1000);

std::string generated_router_id(std::uint32_t random) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "r%08x", random);
    return buf;
}

// Writes all of `text` even when a signal interrupts the write: a supervisor
// that reads the ready line late keeps the router blocked in a full pipe,
// and a SIGTERM then must not lose the line.
void write_stdout(std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

// The bearer token of admin.token_file: "" with `error` set when it cannot be
// used. It travels in an HTTP header: visible ASCII only, and long enough not
// to be guessed.
std::string load_admin_token(const std::string& path, std::string& error) {
    std::string token;
    if (!read_secret_file(path, token)) {
        error = "admin.token_file: cannot read '" + path + "'";
        return {};
    }
    const bool visible = std::all_of(token.begin(), token.end(), [](char c) { return c > ' ' && c < 0x7f; });
    if (token.size() < 16 || !visible) {
        error = "admin.token_file: the token must be at least 16 visible ASCII characters (no spaces)";
        return {};
    }
    return token;
}

// An io_context whose pending operations can be destroyed before it is.
class closable_io_context : public asio::io_context {
public:
    using asio::io_context::io_context;
    using asio::io_context::shutdown;
};

class worker_pool {
public:
    explicit worker_pool(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            contexts_.push_back(std::make_unique<closable_io_context>(1));
            guards_.emplace_back(asio::make_work_guard(*contexts_.back()));
        }
    }
    ~worker_pool() { stop(); }

    std::vector<asio::io_context*> contexts() const {
        std::vector<asio::io_context*> out;
        for (const auto& c : contexts_) out.push_back(c.get());
        return out;
    }
    void start() {
        for (auto& c : contexts_) {
            threads_.emplace_back([ioc = c.get()] {
                for (;;) {
                    try {
                        ioc->run();
                        return;
                    } catch (const std::exception& e) {
                        // A handler threw: log and keep serving the others.
                        HS_LOG(error, "worker.exception").kv("what", e.what());
                    }
                }
            });
        }
    }
    void stop() {
        guards_.clear();
        for (auto& c : contexts_) c->stop();
        for (auto& t : threads_) t.join();
        threads_.clear();
    }
    // Stops, then destroys every operation still pending, and with them the
    // sessions they keep alive (whose ends reach the core), while the
    // contexts themselves and the sockets made on them stay valid.
    void shutdown() {
        stop();
        for (auto& c : contexts_) c->shutdown();
    }

private:
    std::vector<std::unique_ptr<closable_io_context>> contexts_;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
    std::vector<std::thread> threads_;
};

}  // namespace

int run_server(const router_config& cfg) {
    log::configure(cfg.log_level, cfg.log_format);
    // Caught from the start: a signal that comes while the router starts
    // (or while its ready line is written) is held until main_ioc runs, and
    // then drains the router like any other.
    asio::io_context main_ioc(1);
    asio::signal_set signals(main_ioc, SIGINT, SIGTERM);
    std::random_device rd;
    std::uint32_t epoch = 0;
    while (epoch == 0) epoch = rd();
    const std::string router_id = cfg.router_id.empty() ? generated_router_id(rd()) : cfg.router_id;

    metrics stats;
    std::string auth_error;
    const std::unique_ptr<authorizer> auth = make_authorizer(cfg, auth_error);
    if (!auth) {
        HS_LOG(error, "router.bad_auth").kv("what", auth_error);
        std::fprintf(stderr, "hyperstreams-router: %s\n", auth_error.c_str());
        return 1;
    }
    // By default one I/O thread per core but one, which libzmq's I/O thread
    // and the core's timer share: a message handed from one I/O thread to another costs a wake-up and a
    // context switch, so an I/O thread that must share its core loses more
    // than it adds (docs/BENCHMARKS.md, "I/O threads").
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t threads = cfg.threads != 0 ? cfg.threads : std::max(1u, cores - 1);
    worker_pool workers(threads);
    // The Redis engine of a router that is one of several runs on the first
    // I/O thread (cluster_node.hpp): the pool is made first so that it
    // outlives the node.
    std::optional<cluster_node> cluster;
    if (!cfg.cluster_redis.empty()) {
        router_config with_password = cfg;
        if (!cfg.cluster_redis_password_file.empty() &&
            !read_secret_file(cfg.cluster_redis_password_file, with_password.cluster_redis_password)) {
            HS_LOG(error, "router.bad_redis_password_file").kv("file", cfg.cluster_redis_password_file);
            std::fprintf(stderr, "hyperstreams-router: cluster.redis_password_file: cannot read '%s'\n",
                         cfg.cluster_redis_password_file.c_str());
            return 1;
        }
        cluster.emplace(*workers.contexts().front(), with_password, router_id);
        if (const std::string& why = cluster->setup_error(); !why.empty()) {
            HS_LOG(error, "router.bad_cluster").kv("what", why);
            std::fprintf(stderr, "hyperstreams-router: cluster.redis: %s\n", why.c_str());
            return 1;
        }
    }
    // Each channel's epoch: in Redis when the router is one of several,
    // else made in memory from this process's.
    const std::unique_ptr<core_runner> runner =
        cluster ? std::make_unique<core_runner>(cfg, *auth, stats, cluster->log(), cluster->bus(), cluster->presence(),
                                                router_id)
                : std::make_unique<core_runner>(cfg, *auth, stats, epoch, router_id);
    core_runner& core = *runner;
    // Declared after the core, so that on every way out, before the core
    // goes: the Redis engine, whose answers enter the core, is stopped, and
    // then the I/O threads' pending operations are destroyed, with the
    // sessions they hold, which tell the core they ended. The pool itself
    // outlives the cluster node, whose sockets were made on its first
    // context.
    const struct io_closer {
        std::optional<cluster_node>& side;
        worker_pool& workers;
        ~io_closer() {
            workers.stop();
            if (side) side->stop();
            workers.shutdown();
        }
    } close_io{cluster, workers};

    auto ctx = std::make_shared<http_context>(cfg, stats, core);
    if (!cfg.web.empty()) {
        std::error_code ec;
        ctx->web_root = std::filesystem::canonical(cfg.web, ec);
        if (ec || !std::filesystem::is_directory(ctx->web_root)) {
            HS_LOG(error, "router.bad_web_dir").kv("web", cfg.web);
            std::fprintf(stderr, "hyperstreams-router: web: '%s' is not a directory\n", cfg.web.c_str());
            return 1;
        }
    }

    std::optional<asio::ssl::context> tls;
    if (!cfg.tls_cert_file.empty()) {
        try {
            tls.emplace(asio::ssl::context::tls_server);
            tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                             asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                             asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
            tls->use_certificate_chain_file(cfg.tls_cert_file);
            tls->use_private_key_file(cfg.tls_key_file, asio::ssl::context::pem);
        } catch (const std::exception& e) {
            HS_LOG(error, "router.bad_tls").kv("what", e.what());
            std::fprintf(stderr, "hyperstreams-router: tls: cannot load %s / %s: %s\n", cfg.tls_cert_file.c_str(),
                         cfg.tls_key_file.c_str(), e.what());
            return 1;
        }
        ctx->tls = &*tls;
    }
    if (!cfg.admin_token_file.empty()) {
        std::string error;
        ctx->admin_token = load_admin_token(cfg.admin_token_file, error);
        if (ctx->admin_token.empty()) {
            HS_LOG(error, "router.bad_admin_token").kv("what", error);
            std::fprintf(stderr, "hyperstreams-router: %s\n", error.c_str());
            return 1;
        }
    }

    // The admin endpoints have a listener of their own unless admin.listen
    // is "same" (they join --listen) or "off" (nowhere).
    const bool admin_apart = cfg.admin_listen != "same" && cfg.admin_listen != "off";
    listener http(workers.contexts(), ctx, cfg.admin_listen == "same" ? http_routes::both : http_routes::app);
    std::optional<listener> admin;
    if (admin_apart) admin.emplace(workers.contexts(), ctx, http_routes::admin);
    // The first I/O thread also serves the ZeroMQ socket.
    zmq_transport backends(cfg, stats, core, *workers.contexts().front());
    std::string http_address;
    std::string backend_endpoint;
    std::string admin_address = cfg.admin_listen;
    try {
        std::string host;
        std::uint16_t port = 0;
        split_host_port(cfg.listen, host, port);
        http_address = http.bind(host, port);
        if (admin) {
            split_host_port(cfg.admin_listen, host, port);
            admin_address = admin->bind(host, port);
        } else if (cfg.admin_listen == "same") {
            admin_address = http_address;
        }
        backend_endpoint = backends.bind(cfg.backend);
    } catch (const std::exception& e) {
        HS_LOG(error, "router.bind_failed").kv("what", e.what());
        std::fprintf(stderr, "hyperstreams-router: %s\n", e.what());
        return 1;
    }

    std::string advertise_ws = cfg.cluster_advertise_ws;
    std::string advertise_backend = cfg.cluster_advertise_backend;
    if (cluster) {
        // Other routers hand these to their clients: an address only this
        // machine understands would send them nowhere.
        if (advertise_ws.empty()) advertise_ws = std::string(tls ? "wss" : "ws") + "://" + http_address + cfg.ws_path;
        if (advertise_backend.empty()) advertise_backend = backend_endpoint;
        for (const auto& [value, option] : {std::pair{&advertise_ws, "cluster.advertise_ws"},
                                            std::pair{&advertise_backend, "cluster.advertise_backend"}}) {
            if (value->find("://0.0.0.0:") == std::string::npos && value->find("://[::]:") == std::string::npos &&
                value->find("://*:") == std::string::npos)
                continue;
            const std::string error = std::string(option) + " is needed: " + *value +
                                      " is a wildcard address, which the other routers' clients cannot connect to";
            HS_LOG(error, "router.bad_config").kv("what", error);
            std::fprintf(stderr, "hyperstreams-router: %s\n", error.c_str());
            return 1;
        }
    }

    core.start();
    if (cluster) {
        cluster->start(core, advertise_ws, advertise_backend);
        ctx->cluster = &*cluster;
    }
    backends.start();
    workers.start();
    http.start();
    if (admin) admin->start();

    HS_LOG(info, "router.ready").kv("router_id", router_id).kv("epoch", cluster ? 0 : std::uint64_t{epoch})
        .kv("cluster", cluster ? "redis" : "off")
        .kv("http", http_address).kv("backend", backend_endpoint).kv("admin", admin_address)
        .kv("admin_token", !ctx->admin_token.empty()).kv("threads", threads)
        .kv("auth", cfg.auth == auth_mode::tokens ? "tokens" : "open").kv("tls", tls.has_value())
        .kv("curve", !cfg.curve_secret_key.empty());
    write_stdout("hyperstreams-router ready http=" + http_address + " ws=" + (tls ? "wss" : "ws") + "://" +
                 http_address + cfg.ws_path + " backend=" + backend_endpoint + " admin=" + admin_address + "\n");

    asio::steady_timer flush_timer(main_ioc);
    time_point flush_until{};

    std::function<void()> wait_for_flush = [&] {
        const bool flushed = ctx->ws_sessions.load() == 0 && backends.peer_count() == 0;
        if (flushed || steady_clock::now() >= flush_until) {
            HS_LOG(info, "router.stopped").kv("flushed", flushed);
            main_ioc.stop();
            return;
        }
        flush_timer.expires_after(std::chrono::milliseconds(20));
        flush_timer.async_wait([&](error_code) { wait_for_flush(); });
    };
    auto on_drained = [&] {
        asio::post(main_ioc, [&] {
            flush_until = steady_clock::now() + flush_bound;
            wait_for_flush();
        });
    };
    bool drain_begun = false;  // main_ioc's thread only
    auto begin_drain = [&] {
        drain_begun = true;
        core.drain(on_drained);
    };
    std::function<void(error_code, int)> on_signal = [&](error_code ec, int signo) {
        if (ec) return;
        if (!ctx->draining.exchange(true)) {
            // The listener keeps accepting until the process exits: load
            // balancers polling /healthz see 503, and upgrades are refused.
            HS_LOG(info, "router.signal").kv("signal", signo).kv("action", "drain");
            // One of several: its clients go to another router that answers
            // (unless the configuration says where), once the others were
            // asked, for drain_probe_bound at most.
            if (cluster) {
                // Out of the membership first: a router that drains fast
                // (no other router to ask) would otherwise exit before its
                // removal reached Redis, and stay listed, alive to the
                // others, until its heartbeat expired.
                cluster->leave([&] {
                    cluster->find_live_router(drain_probe_bound, [&](std::optional<cluster_node::peer_router> other) {
                        asio::post(main_ioc, [&, other = std::move(other)] {
                            if (drain_begun) return;  // a second signal did not wait
                            if (other) {
                                HS_LOG(info, "cluster.drain_to").kv("router", other->id).kv("ws",
                                                                                         other->websocket_url);
                                core.redirect_drain_to(other->websocket_url, other->backend);
                            } else {
                                HS_LOG(warn, "cluster.drain_to_none").kv("why", "no other router answered");
                            }
                            begin_drain();
                        });
                    });
                });
            } else {
                begin_drain();
            }
        } else if (!drain_begun) {
            HS_LOG(info, "router.signal").kv("signal", signo).kv("action", "drain_now");
            begin_drain();
        } else {
            HS_LOG(info, "router.signal").kv("signal", signo).kv("action", "hurry");
            core.drain({});
        }
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    main_ioc.run();

    workers.stop();
    backends.stop(std::chrono::milliseconds(500));
    if (cluster) cluster->stop();
    core.stop();
    return 0;
}

}  // namespace hyperstreams::router
