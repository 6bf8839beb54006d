// hyperstreams-bench: the router measured the way users compare messaging
// systems, side by side with nats-server and with no-routing baselines on
// the same machine in the same run. See --help and docs/BENCHMARKS.md.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../simulator/factory.hpp"
#include "bench.hpp"
#include "hyperstreams/errc.hpp"

namespace hyperstreams::bench {

const char* target_name(target_kind t) noexcept {
    switch (t) {
        case target_kind::router: return "router";
        case target_kind::nats: return "nats";
        case target_kind::baseline: return "baseline";
        case target_kind::uws: return "uws";
        case target_kind::zmq: return "zmq";
    }
    return "?";
}

namespace {

constexpr const char* usage_text =
    "Usage: hyperstreams-bench COMMAND [OPTION VALUE]...\n"
    "\n"
    "Commands:\n"
    "  suite        every scenario below but cluster, then the tables with the ratios (Markdown)\n"
    "  fanout       one publisher, N WebSocket subscribers: messages delivered per second and\n"
    "               publish-to-delivery latency; router, nats-server and the baseline\n"
    "  request      WebSocket frontends call a ZeroMQ backend through the router, one call\n"
    "               outstanding per frontend; beside it the baseline's WebSocket echo and a raw\n"
    "               ZeroMQ DEALER/ROUTER round trip\n"
    "  connections  idle WebSocket connections (hello/welcome done) on one router: connect rate\n"
    "               and router memory (VmRSS) per connection\n"
    "  deflate      the factory simulator's JSON telemetry to N WebSocket subscribers that offer\n"
    "               permessage-deflate, from a router with it off and one with it on, in turn:\n"
    "               TCP bytes received per delivery, router CPU per delivery, msg/s; with a\n"
    "               batch of --batch and one message at a time\n"
    "  presence     N WebSocket members of one channel (a namespace with presence): the latency of\n"
    "               a presence call listing them, and router memory (VmRSS) per member\n"
    "  core         the shared codec and client engine on one thread\n"
    "  latest       a latest-value subscribe to a pattern matching --channels channels, each\n"
    "               published once: time to the ack and to the last latest value, router memory\n"
    "               per channel kept; on one router, then on one router over Redis (redis-server)\n"
    "  cluster      three routers over one Redis (redis-server, started by the tool): the publisher\n"
    "               on the first, the subscribers spread over the three, beside the same load on one\n"
    "               router without Redis: as fast as the window allows, then (CPU per delivery at\n"
    "               equal loads) paced at the publishes per second the cluster reached, same batch;\n"
    "               then calls from the backend's router and from another.\n"
    "               Not in suite: it needs redis-server and takes about a minute\n"
    "  serve-baseline  (internal) the no-routing Beast server the others start\n"
    "\n"
    "Options (lists are comma-separated):\n"
    "  --targets LIST        fanout: router,nats,baseline,uws; request: router,baseline,zmq (default:\n"
    "                        all; uws only with --uws)\n"
    "  --subscribers LIST    fanout subscriber counts (default 1,100,1000); cluster: counts over the\n"
    "                        three routers, >= 3 (default 3,99)\n"
    "  --payloads LIST       fanout payload sizes in bytes, >= 8 (default 64,1024)\n"
    "  --batch N             messages per publisher WebSocket message (default 100)\n"
    "  --window N            messages published but not yet delivered to every subscriber (default 2000)\n"
    "  --inflight-bytes N    and at most N payload bytes on their way over all subscribers (default\n"
    "                        32 MiB): the window shrinks for large fan-outs, the batch with it\n"
    "  --client-threads N    fanout, cluster: threads of this tool the publisher and the subscribers\n"
    "                        are spread over, each its own Asio loop; the publisher on the first\n"
    "                        (default 2: on a busy 2-core machine, more msg/s than 1 in 19 of 24\n"
    "                        paired runs, median 1.3x; docs/BENCHMARKS.md, issue 20)\n"
    "  --concurrency LIST    request, cluster: frontends, one call outstanding each (default 1,64)\n"
    "  --payload N           request, cluster: call payload bytes (default 64)\n"
    "  --connections LIST    connections scenario counts (default 10000)\n"
    "  --channels N          latest: channels (default 10000)\n"
    "  --members LIST        presence scenario member counts (default 10000)\n"
    "  --calls N             presence calls per run, one after the other (default 200)\n"
    "  --over-redis          presence: two routers on one Redis (cluster.redis), the members on the\n"
    "                        first, the one that calls on the second\n"
    "  --sources N           source addresses 127.0.0.2.. for connections (default: one per 10,000)\n"
    "  --parallel N          connection attempts in flight (default 256)\n"
    "  --hold S              seconds the connections stay idle before memory is read (default 2)\n"
    "  --offer-deflate       connections: the clients offer permessage-deflate (the router accepts it\n"
    "                        with --router-flag --ws-permessage-deflate-enabled --router-flag true)\n"
    "  --rounds N            deflate: runs of off and on, alternating (default 1)\n"
    "  --seconds S           publishing / calling time per run (default 3)\n"
    "  --core-seconds S      time per core figure (default 0.5)\n"
    "  --no-latency          fanout, cluster: skip the one-message-at-a-time latency runs\n"
    "  --big                 suite: add 10,000 subscribers and 50,000 connections\n"
    "  --router PATH         hyperstreams-router binary (default: beside this tool, or ../router/)\n"
    "  --nats PATH           nats-server binary (default: nats-server on PATH)\n"
    "  --redis PATH          redis-server binary for cluster (default: redis-server on PATH)\n"
    "  --redis-delay-us D    cluster: the routers and the probe reach Redis through a forwarder of the\n"
    "                        tool's that holds every chunk D us each way: Redis across a network\n"
    "                        (default 0: no forwarder)\n"
    "  --redis-tls           cluster: the routers reach Redis over TLS (rediss://, a certificate made\n"
    "                        with the openssl program); the tool's own probe on its plain port\n"
    "  --redis-replicas N    cluster: N replicas of the tool's Redis (0 to 4, default 0), started on free\n"
    "                        ports and online before the runs; with --router-flag\n"
    "                        --cluster-redis-wait-replicas --router-flag N, publishes are acked once\n"
    "                        they have them\n"
    "  --uws PATH            fanout: uWebSockets' pub/sub server speaking the baseline's protocol\n"
    "                        (hyperstreams-bench-uws, built with -DHYPERSTREAMS_UWS_DIR; default: beside\n"
    "                        this tool when it was built)\n"
    "  --router-flag ARG     passed to the router (repeat: --router-flag --threads --router-flag 1)\n";

struct options {
    std::string command;
    std::vector<std::string> targets;
    std::vector<int> subscribers{1, 100, 1000};
    bool subscribers_given = false;
    std::vector<int> payloads{64, 1024};
    std::vector<int> concurrency{1, 64};
    std::vector<int> connections{10000};
    int channels = 10000;
    std::vector<int> members{10000};
    int calls = 200;
    int batch = 100;
    int window = 2000;
    double inflight_bytes = 32 << 20;
    int client_threads = 2;
    int payload = 64;
    int sources = 0;
    int parallel = 256;
    double hold = 2.0;
    double seconds = 3.0;
    double core_seconds = 0.5;
    bool big = false;
    bool latency = true;
    bool offer_deflate = false;
    int rounds = 1;
    bool over_redis = false;
    std::string router;
    std::string nats = "nats-server";
    std::string redis = "redis-server";
    int redis_delay_us = 0;
    bool redis_tls = false;
    int redis_replicas = 0;
    std::string uws;
    std::vector<std::string> router_flags;
};

std::vector<int> int_list(const std::string& s) {
    std::vector<int> out;
    std::stringstream in(s);
    std::string item;
    // Empty items are skipped: "," is an empty list where "" cannot be
    // passed (CMake drops empty arguments).
    while (std::getline(in, item, ','))
        if (!item.empty()) out.push_back(std::atoi(item.c_str()));
    return out;
}

std::vector<std::string> word_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) out.push_back(item);
    return out;
}

std::string self_path() {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

// hyperstreams-bench-uws beside this tool, or "" (no uws target).
std::string default_uws() {
    const std::filesystem::path p = std::filesystem::path(self_path()).parent_path() / "hyperstreams-bench-uws";
    return std::filesystem::exists(p) ? p.string() : std::string();
}

std::string default_router() {
    const std::filesystem::path dir = std::filesystem::path(self_path()).parent_path();
    for (const auto& p : {dir / "hyperstreams-router", dir / ".." / "router" / "hyperstreams-router"})
        if (std::filesystem::exists(p)) return p.lexically_normal().string();
    return "hyperstreams-router";
}

bool parse(int argc, char** argv, options& o) {
    if (argc < 2) return false;
    o.command = argv[1];
    const std::map<std::string, std::function<void(const std::string&)>> flags = {
        {"--targets", [&](const std::string& v) { o.targets = word_list(v); }},
        {"--subscribers",
         [&](const std::string& v) {
             o.subscribers = int_list(v);
             o.subscribers_given = true;
         }},
        {"--payloads", [&](const std::string& v) { o.payloads = int_list(v); }},
        {"--batch", [&](const std::string& v) { o.batch = std::atoi(v.c_str()); }},
        {"--window", [&](const std::string& v) { o.window = std::atoi(v.c_str()); }},
        {"--inflight-bytes", [&](const std::string& v) { o.inflight_bytes = std::atof(v.c_str()); }},
        {"--client-threads", [&](const std::string& v) { o.client_threads = std::atoi(v.c_str()); }},
        {"--concurrency", [&](const std::string& v) { o.concurrency = int_list(v); }},
        {"--payload", [&](const std::string& v) { o.payload = std::atoi(v.c_str()); }},
        {"--connections", [&](const std::string& v) { o.connections = int_list(v); }},
        {"--channels", [&](const std::string& v) { o.channels = std::atoi(v.c_str()); }},
        {"--members", [&](const std::string& v) { o.members = int_list(v); }},
        {"--calls", [&](const std::string& v) { o.calls = std::atoi(v.c_str()); }},
        {"--rounds", [&](const std::string& v) { o.rounds = std::atoi(v.c_str()); }},
        {"--sources", [&](const std::string& v) { o.sources = std::atoi(v.c_str()); }},
        {"--parallel", [&](const std::string& v) { o.parallel = std::atoi(v.c_str()); }},
        {"--hold", [&](const std::string& v) { o.hold = std::atof(v.c_str()); }},
        {"--seconds", [&](const std::string& v) { o.seconds = std::atof(v.c_str()); }},
        {"--core-seconds", [&](const std::string& v) { o.core_seconds = std::atof(v.c_str()); }},
        {"--router", [&](const std::string& v) { o.router = v; }},
        {"--nats", [&](const std::string& v) { o.nats = v; }},
        {"--redis", [&](const std::string& v) { o.redis = v; }},
        {"--redis-delay-us", [&](const std::string& v) { o.redis_delay_us = std::atoi(v.c_str()); }},
        {"--redis-replicas", [&](const std::string& v) { o.redis_replicas = std::atoi(v.c_str()); }},
        {"--uws", [&](const std::string& v) { o.uws = v; }},
        {"--router-flag", [&](const std::string& v) { o.router_flags.push_back(v); }},
    };
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--big") {
            o.big = true;
            continue;
        }
        if (arg == "--no-latency") {
            o.latency = false;
            continue;
        }
        if (arg == "--offer-deflate") {
            o.offer_deflate = true;
            continue;
        }
        if (arg == "--over-redis") {
            o.over_redis = true;
            continue;
        }
        if (arg == "--redis-tls") {
            o.redis_tls = true;
            continue;
        }
        const auto f = flags.find(arg);
        if (f == flags.end() || i + 1 >= argc) {
            std::fprintf(stderr, "hyperstreams-bench: unknown option or missing value: %s\n", arg.c_str());
            return false;
        }
        f->second(argv[++i]);
    }
    if (o.router.empty()) o.router = default_router();
    if (o.uws.empty()) o.uws = default_uws();
    if (o.uws.empty() && std::find(o.targets.begin(), o.targets.end(), "uws") != o.targets.end()) {
        std::fprintf(stderr,
                     "hyperstreams-bench: --targets uws needs --uws PATH, a hyperstreams-bench-uws built with "
                     "-DHYPERSTREAMS_UWS_DIR (docs/BENCHMARKS.md)\n");
        return false;
    }
    for (int p : o.payloads)
        if (p < 8) {
            std::fprintf(stderr, "hyperstreams-bench: payloads carry an 8-byte timestamp: >= 8 bytes\n");
            return false;
        }
    if (o.redis_delay_us < 0 || o.redis_delay_us > 1000000) {
        std::fprintf(stderr, "hyperstreams-bench: --redis-delay-us takes 0 to 1000000\n");
        return false;
    }
    if (o.redis_replicas < 0 || o.redis_replicas > 4) {
        std::fprintf(stderr, "hyperstreams-bench: --redis-replicas takes 0 to 4\n");
        return false;
    }
    if (o.redis_tls && o.redis_delay_us > 0) {
        std::fprintf(stderr, "hyperstreams-bench: --redis-tls and --redis-delay-us do not go together\n");
        return false;
    }
    return o.batch > 0 && o.window > 0 && o.payload >= 0 && o.seconds > 0 && o.client_threads > 0;
}

bool wants(const options& o, const char* target) {
    if (o.targets.empty()) return std::string_view(target) != "uws" || !o.uws.empty();
    for (const auto& t : o.targets)
        if (t == target) return true;
    return false;
}

std::string temp_file(const std::string& what) {
    return (std::filesystem::temp_directory_path() /
            ("hyperstreams-bench-" + std::to_string(::getpid()) + "-" + what))
        .string();
}

std::string field(const std::string& line, const std::string& key) {
    const std::size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) return {};
    const std::size_t start = at + key.size() + 2;
    return line.substr(start, line.find(' ', start) - start);
}

// ------------------------------------------------------------------ servers

struct server {
    child process;
    endpoint_info at;
    std::string name;
    std::string log;
};

bool start_router(server& s, const options& o, std::vector<std::string> extra) {
    static int started = 0;  // several at once in a cluster, each its own log
    s.name = "hyperstreams-router";
    s.log = temp_file("router-" + std::to_string(started++) + ".log");
    std::vector<std::string> args = {"--listen",       "127.0.0.1:0", "--backend",   "tcp://127.0.0.1:0",
                                     "--admin-listen", "127.0.0.1:0", "--log-level", "warn"};
    args.insert(args.end(), o.router_flags.begin(), o.router_flags.end());
    args.insert(args.end(), extra.begin(), extra.end());
    if (!s.process.start(o.router, args, s.log)) return false;
    const auto line = s.process.read_line(std::chrono::seconds(10));
    if (!line || line->rfind("hyperstreams-router ready", 0) != 0) {
        std::fprintf(stderr, "hyperstreams-bench: %s did not start (log: %s)\n", o.router.c_str(), s.log.c_str());
        return false;
    }
    const std::string http = field(*line, "http");
    s.at.host = http.substr(0, http.rfind(':'));
    s.at.port = static_cast<unsigned short>(std::atoi(http.substr(http.rfind(':') + 1).c_str()));
    s.at.backend = field(*line, "backend");
    s.at.pid = s.process.pid();
    return true;
}

bool start_nats(server& s, const options& o) {
    s.name = "nats-server";
    s.log = temp_file("nats.log");
    const std::string config = temp_file("nats.conf");
    s.at.port = free_port();
    s.at.path = "/";
    {
        std::ofstream out(config);
        out << "listen: \"127.0.0.1:" << free_port() << "\"\n"
            << "max_payload: 1048576\n"
            << "websocket {\n  listen: \"127.0.0.1:" << s.at.port << "\"\n  no_tls: true\n}\n";
    }
    const bool ok = s.process.start(o.nats, {"-c", config}, s.log) && wait_listening(s.at.port, std::chrono::seconds(10));
    s.at.pid = s.process.pid();
    std::filesystem::remove(config);
    if (!ok) std::fprintf(stderr, "hyperstreams-bench: %s did not start (log: %s)\n", o.nats.c_str(), s.log.c_str());
    return ok;
}

// A server that prints "ready PORT" once it listens on 127.0.0.1:PORT.
bool start_ready_server(server& s, const std::string& name, const std::string& program,
                        const std::vector<std::string>& args) {
    s.name = name;
    if (!s.process.start(program, args)) {
        std::fprintf(stderr, "hyperstreams-bench: cannot start %s\n", program.c_str());
        return false;
    }
    const auto line = s.process.read_line(std::chrono::seconds(10));
    if (!line || line->rfind("ready ", 0) != 0) {
        std::fprintf(stderr, "hyperstreams-bench: %s did not say it was ready\n", program.c_str());
        return false;
    }
    s.at.port = static_cast<unsigned short>(std::atoi(line->c_str() + 6));
    s.at.pid = s.process.pid();
    return true;
}

bool start_baseline(server& s) { return start_ready_server(s, "baseline", self_path(), {"serve-baseline"}); }

// `extra`: more options of redis-server's (its TLS port).
bool start_redis(server& s, const options& o, const std::vector<std::string>& extra = {}) {
    s.name = "redis-server";
    s.log = temp_file("redis.log");
    s.at.port = free_port();
    std::vector<std::string> args = {"--port", std::to_string(s.at.port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--logfile", s.log, "--dir",
                                     std::filesystem::temp_directory_path().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const bool ok = s.process.start(o.redis, args, s.log) && wait_listening(s.at.port, std::chrono::seconds(10));
    s.at.pid = s.process.pid();
    if (!ok) std::fprintf(stderr, "hyperstreams-bench: %s did not start (log: %s)\n", o.redis.c_str(), s.log.c_str());
    return ok;
}

// --redis-tls: a self-signed certificate for 127.0.0.1 and its key, which
// Redis shows and the routers trust, made with the openssl program (Debian's
// openssl, which ca-certificates brings). Redis's TLS port, the options that
// give it to redis-server, and the routers' flags; empty `error` when made.
struct redis_tls_setup {
    std::string cert = temp_file("redis-tls.crt");
    std::string key = temp_file("redis-tls.key");
    unsigned short port = 0;
    std::vector<std::string> server_options;
    std::vector<std::string> router_flags;
    std::string error;

    redis_tls_setup() {
        child openssl;
        const std::string log = temp_file("openssl.log");
        if (!openssl.start("openssl",
                           {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
                            "1", "-subj", "/CN=hyperstreams-bench", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", cert},
                           log) ||
            openssl.finish(std::chrono::seconds(30)) != 0) {
            error = "openssl req could not make a certificate (log: " + log + ")";
            return;
        }
        std::filesystem::remove(log);
        port = free_port();
        server_options = {"--tls-port", std::to_string(port), "--tls-cert-file", cert, "--tls-key-file", key,
                          "--tls-ca-cert-file", cert, "--tls-auth-clients", "no"};
        router_flags = {"--cluster-redis-tls-ca-file", cert};
    }
    ~redis_tls_setup() {
        std::error_code ignored;
        std::filesystem::remove(cert, ignored);
        std::filesystem::remove(key, ignored);
    }
};

void remove_log(server& s) {
    s.process.stop();
    if (!s.log.empty()) std::filesystem::remove(s.log);
}

// ------------------------------------------------------------------ reports

struct fanout_row {
    int subscribers;
    int payload;
    std::map<std::string, fanout_result> by_target;
};
struct request_row {
    int concurrency;
    std::map<std::string, request_result> by_target;
};
struct connections_row {
    int count;
    connections_result result;
};

struct deflate_row {
    int subscribers;
    int batch;
    bool on;  // the router accepts permessage-deflate
    double payload_bytes;  // mean telemetry payload published (the timestamp included)
    fanout_result result;
};

struct presence_row {
    int members;
    presence_result result;
};

// What the cluster's Redis did over a run's publishing window.
struct redis_use {
    double cpu = 0;  // seconds
    std::map<std::string, std::uint64_t> commands;  // calls per command, the tool's INFO left out

    std::uint64_t total() const {
        std::uint64_t sum = 0;
        for (const auto& [name, calls] : commands) sum += calls;
        return sum;
    }
};

struct cluster_row {
    int subscribers;
    int payload;
    fanout_result cluster;  // the routers over Redis
    fanout_result single;   // one router on its own, the same window and batch
    // The same router paced at the publishes per second the cluster reached
    // (throughput rows only): the same load, where `single` runs the window
    // at its own, far higher, rate.
    fanout_result single_paced;
    redis_use redis;  // over the cluster's run
};

struct cluster_request_row {
    int concurrency;
    request_result local;  // callers on the router the backend connected to
    request_result cross;  // callers on another router of the cluster
};

struct report {
    bool presence_over_redis = false;
    std::vector<fanout_row> fanout;
    std::vector<fanout_row> fanout_latency;
    std::vector<request_row> request;
    std::vector<connections_row> connections;
    std::vector<deflate_row> deflate;
    std::vector<presence_row> presence;
    std::vector<core_figure> core;
    histogram redis_round_trip;
    int redis_delay_us = 0;  // --redis-delay-us: each way, on every Redis connection
    bool redis_tls = false;  // --redis-tls: the routers' Redis connections
    histogram redis_publish;  // PUBLISH written to read by the first of one subscriber per router
    std::vector<cluster_row> cluster;
    std::vector<cluster_row> cluster_latency;
    std::vector<cluster_request_row> cluster_request;
    int failures = 0;
};

std::string latencies(const histogram& h) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "p50 %.0f us p99 %.0f us p99.9 %.0f us", h.quantile_us(0.5), h.quantile_us(0.99),
                  h.quantile_us(0.999));
    return buf;
}

double rate(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

double cpu_per_delivery_ns(const fanout_result& r, double cpu) {
    return r.ok && r.delivered > 0 ? 1e9 * cpu / static_cast<double>(r.delivered) : 0.0;
}

void print_fanout(const char* target, const fanout_params& p, const fanout_result& r) {
    std::printf("fanout target=%s subscribers=%d payload=%d batch=%d window=%d", target, p.subscribers, p.payload,
                p.batch, p.window);
    if (p.rate > 0) std::printf(" rate=%.0f", p.rate);
    std::printf(": ");
    if (!r.ok) {
        std::printf("FAILED: %s\n", r.error.c_str());
    } else {
        const std::string latency = r.cross_latency.count() == 0
                                        ? latencies(r.latency)
                                        : "on the publisher's router " + latencies(r.latency) + ", on the others " +
                                              latencies(r.cross_latency);
        std::printf("%.2f s, published %.0f msg/s, delivered %.0f msg/s, lost %llu, latency %s, "
                    "server CPU %.0f ns per delivery (%.0f%% of a core), subscribed in %.2f s, "
                    "client CPU %.0f ns per delivery (%.0f%% of a core over %d thread%s, the busiest %.0f%%), "
                    "%.1f deliveries per message received\n",
                    r.seconds, rate(r.published, r.seconds), rate(r.delivered, r.seconds),
                    static_cast<unsigned long long>(r.lost), latency.c_str(), cpu_per_delivery_ns(r, r.server_cpu),
                    r.seconds > 0 ? 100.0 * r.server_cpu / r.seconds : 0.0, r.connect_seconds,
                    cpu_per_delivery_ns(r, r.client_cpu), r.seconds > 0 ? 100.0 * r.client_cpu / r.seconds : 0.0,
                    r.client_threads, r.client_threads == 1 ? "" : "s",
                    r.seconds > 0 ? 100.0 * r.client_busiest_cpu / r.seconds : 0.0,
                    r.delivering_reads > 0 ? static_cast<double>(r.delivered) / static_cast<double>(r.delivering_reads)
                                           : 0.0);
    }
    std::fflush(stdout);
}

void print_request(const char* target, const request_params& p, const request_result& r) {
    std::printf("request target=%s concurrency=%d payload=%d: ", target, p.concurrency, p.payload);
    if (r.refused == static_cast<std::uint16_t>(errc::no_such_service)) {
        std::printf("not reachable: %s\n", r.error.c_str());
    } else if (!r.ok) {
        std::printf("FAILED: %s\n", r.error.c_str());
    } else {
        std::printf("%.2f s, %.0f calls/s, latency %s\n", r.seconds, rate(r.calls, r.seconds),
                    latencies(r.latency).c_str());
    }
    std::fflush(stdout);
}

// ---------------------------------------------------------------- scenarios

// Raises the limit of open files for the largest of `counts` subscribers;
// returns that count.
int raise_open_files_for(const std::vector<int>& counts) {
    int most = 0;
    for (int n : counts) most = std::max(most, n);
    raise_open_files(most + 1024);
    return most;
}

// The window of a throughput run: --window, shrunk so that at most
// --inflight-bytes of `payload`-byte messages are on their way to
// `subscribers`.
int throughput_window(const options& o, int subscribers, double payload) {
    const double per_message = static_cast<double>(std::max(subscribers, 1)) * payload;
    return std::clamp(static_cast<int>(o.inflight_bytes / per_message), 1, o.window);
}

// A fan-out run of the options' length and client threads.
fanout_params fanout_params_of(const options& o, int subscribers, int payload, int batch, int window) {
    fanout_params p;
    p.subscribers = subscribers;
    p.payload = payload;
    p.batch = batch;
    p.window = window;
    p.seconds = o.seconds;
    p.client_threads = o.client_threads;
    return p;
}

void fanout_scenario(const options& o, report& rep) {
    server router, nats, baseline, uws;
    const bool use_router = wants(o, "router"), use_nats = wants(o, "nats"), use_baseline = wants(o, "baseline"),
               use_uws = wants(o, "uws");
    const int most = raise_open_files_for(o.subscribers);
    if ((use_router && !start_router(router, o, {"--limits-max-connections", std::to_string(most + 64)})) ||
        (use_nats && !start_nats(nats, o)) || (use_baseline && !start_baseline(baseline)) ||
        (use_uws && !start_ready_server(uws, "uws", o.uws, {}))) {
        ++rep.failures;
        return;
    }
    const auto row_of = [&](int n, int size, int batch, int window) {
        const fanout_params p = fanout_params_of(o, n, size, batch, window);
        fanout_row row{n, size, {}};
        const auto one = [&](bool use, target_kind t, const server& s) {
            if (!use) return;
            fanout_result r = run_fanout(t, {s.at}, p);
            print_fanout(target_name(t), p, r);
            if (!r.ok) ++rep.failures;
            row.by_target.emplace(target_name(t), std::move(r));
        };
        one(use_router, target_kind::router, router);
        one(use_nats, target_kind::nats, nats);
        one(use_baseline, target_kind::baseline, baseline);
        one(use_uws, target_kind::uws, uws);
        return row;
    };
    // Throughput: publishing as fast as `window` allows.
    // The payload bytes in flight over all subscribers are bounded too, or
    // 10,000 subscribers would queue gigabytes (and latency would only
    // measure the queue): the window shrinks for large N, and the batch with it.
    for (int n : o.subscribers) {
        for (int size : o.payloads) {
            const int window = throughput_window(o, n, size);
            rep.fanout.push_back(row_of(n, size, std::min(o.batch, window), window));
        }
    }
    // Latency: one message at a time, published when every subscriber has the previous one.
    if (o.latency)
        for (int n : o.subscribers) rep.fanout_latency.push_back(row_of(n, o.payloads.front(), 1, 1));
    remove_log(router);
    remove_log(nats);
}

void request_scenario(const options& o, report& rep) {
    server router, baseline;
    const bool use_router = wants(o, "router"), use_baseline = wants(o, "baseline"), use_zmq = wants(o, "zmq");
    if ((use_router && !start_router(router, o, {})) || (use_baseline && !start_baseline(baseline))) {
        ++rep.failures;
        return;
    }
    for (int c : o.concurrency) {
        request_params p;
        p.concurrency = c;
        p.payload = o.payload;
        p.seconds = o.seconds;
        request_row row{c, {}};
        const auto one = [&](bool use, target_kind t, const std::function<request_result()>& run) {
            if (!use) return;
            request_result r = run();
            print_request(target_name(t), p, r);
            if (!r.ok) ++rep.failures;
            row.by_target.emplace(target_name(t), std::move(r));
        };
        one(use_router, target_kind::router, [&] { return run_request(target_kind::router, router.at, p); });
        one(use_baseline, target_kind::baseline, [&] { return run_request(target_kind::baseline, baseline.at, p); });
        one(use_zmq, target_kind::zmq, [&] { return run_zmq_round_trip(p); });
        rep.request.push_back(std::move(row));
    }
    remove_log(router);
}

// Raises the limit of open files for `count` connections (the tool and the
// router, which inherits the limit, each hold one descriptor per
// connection); false, the run printed as FAILED under `head`, when it
// cannot. `why`: what stands after the limit.
bool open_files_for(int count, const std::string& head, const char* why, report& rep) {
    const long wanted = count + 1024;
    const long limit = raise_open_files(wanted);
    if (limit >= wanted) return true;
    std::printf("%s: FAILED: needs %ld open files per process, the limit is %ld%s\n", head.c_str(), wanted, limit, why);
    std::fflush(stdout);
    ++rep.failures;
    return false;
}

// A run's line after its head: `print_figures()`, or FAILED (`how_far`:
// what stands before the error) and counted.
template <typename Result, typename PrintFigures>
void print_outcome(const Result& r, const std::string& how_far, report& rep, PrintFigures&& print_figures) {
    if (!r.ok) {
        ++rep.failures;
        std::printf("FAILED%s: %s\n", how_far.c_str(), r.error.c_str());
    } else {
        print_figures();
    }
    std::fflush(stdout);
}

void presence_scenario(const options& o, report& rep) {
    for (int members : o.members) {
        if (!open_files_for(members, "presence members=" + std::to_string(members), "", rep)) {
            rep.presence.push_back({members, {}});
            continue;
        }
        // Over Redis: the members on `router`, the caller on `caller`, each
        // call a read of the channel's hash and of the routers' membership.
        server redis, router, caller;
        std::vector<std::string> flags = {"--limits-max-connections", std::to_string(members + 64),
                                          "--channels-namespaces", R"([{"pattern": "bench.>", "presence": true}])"};
        if (o.over_redis) {
            if (!start_redis(redis, o)) {
                ++rep.failures;
                return;
            }
            flags.insert(flags.end(), {"--cluster-redis", "redis://127.0.0.1:" + std::to_string(redis.at.port)});
        }
        if (!start_router(router, o, flags) || (o.over_redis && !start_router(caller, o, flags))) {
            ++rep.failures;
            return;
        }
        presence_params p;
        p.members = members;
        p.sources = o.sources;
        p.parallel = o.parallel;
        p.calls = o.calls;
        if (o.over_redis) p.caller_at = caller.at;
        presence_result r = run_presence(router.at, router.process.pid(), p);
        std::printf("presence members=%d: ", members);
        print_outcome(r, " after " + std::to_string(r.members) + " subscribed", rep, [&] {
            std::printf("a call p50 %.0f us p99 %.0f us (%zu of %u listed, %zu bytes), router RSS %ld KiB -> %ld KiB\n",
                        r.latency.quantile_us(0.5), r.latency.quantile_us(0.99), r.listed, r.count, r.list_bytes,
                        r.rss_before_kib, r.rss_after_kib);
        });
        rep.presence.push_back({members, std::move(r)});
        remove_log(router);
        if (o.over_redis) {
            remove_log(caller);
            remove_log(redis);
        }
    }
}

void connections_scenario(const options& o, report& rep) {
    for (int count : o.connections) {
        if (!open_files_for(count, "connections count=" + std::to_string(count),
                            " (raising the hard limit needs CAP_SYS_RESOURCE)", rep)) {
            rep.connections.push_back({count, {}});
            continue;
        }
        server router;
        // Heartbeats as in production; the handshake bound covers a slow connect storm.
        if (!start_router(router, o, {"--limits-max-connections", std::to_string(count + 64)})) {
            ++rep.failures;
            return;
        }
        connections_params p;
        p.count = count;
        p.sources = o.sources;
        p.parallel = o.parallel;
        p.hold_seconds = o.hold;
        p.deflate = o.offer_deflate;
        connections_result r = run_connections(router.at, router.process.pid(), p);
        std::printf("connections count=%d parallel=%d: ", count, p.parallel);
        print_outcome(r, " after " + std::to_string(r.connected) + " connected", rep, [&] {
            std::printf("connected in %.2f s (%.0f/s), router RSS %ld KiB -> %ld KiB, %.2f KiB per connection\n",
                        r.connect_seconds, r.connect_seconds > 0 ? count / r.connect_seconds : 0.0, r.rss_before_kib,
                        r.rss_after_kib, static_cast<double>(r.rss_after_kib - r.rss_before_kib) / count);
        });
        rep.connections.push_back({count, std::move(r)});
        remove_log(router);
    }
}

// The server's log holds `text` within 10 s.
bool log_shows(const server& s, const std::string& text) {
    const auto until = clock_type::now() + std::chrono::seconds(10);
    for (;;) {
        std::stringstream log;
        log << std::ifstream(s.log).rdbuf();
        if (log.str().find(text) != std::string::npos) return true;
        if (clock_type::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// "12.3 / 12.9 / 13.4": a figure of each run, in milliseconds.
std::string runs_ms(const std::vector<double>& seconds) {
    std::string out;
    char buf[32];
    for (double v : seconds) {
        std::snprintf(buf, sizeof buf, "%s%.1f", out.empty() ? "" : " / ", v * 1e3);
        out += buf;
    }
    return out;
}

// The simulator's telemetry as hyperstreams-factory publishes it: every
// machine of 4 lines of 8, ticked every 100 ms for 128 ticks, in order.
std::vector<std::string> factory_telemetry() {
    factory::factory plant(4, 8, 1, 0);
    std::vector<std::string> out;
    std::int64_t now_ms = 1764892800000;  // 2025-12-05, a fixed start: the same bytes every run
    for (int tick = 0; tick < 128; ++tick) {
        now_ms += 100;
        (void)plant.tick(0.1, now_ms);
        for (const factory::machine& m : plant.machines()) out.push_back(plant.telemetry(m, now_ms).dump());
    }
    return out;
}

void deflate_scenario(const options& o, report& rep) {
    const std::vector<int> subscribers = o.subscribers_given ? o.subscribers : std::vector<int>{100};
    const int most = raise_open_files_for(subscribers);
    server off, on;
    const std::vector<std::string> limits = {"--limits-max-connections", std::to_string(most + 64)};
    std::vector<std::string> on_flags = limits;
    on_flags.insert(on_flags.end(), {"--ws-permessage-deflate-enabled", "true"});
    if (!start_router(off, o, limits) || !start_router(on, o, on_flags)) {
        ++rep.failures;
        return;
    }
    fanout_params p;
    p.payloads = factory_telemetry();
    p.deflate = true;
    p.seconds = o.seconds;
    p.client_threads = o.client_threads;
    double payload_bytes = 0;
    for (const std::string& t : p.payloads) payload_bytes += static_cast<double>(t.size() + 8);
    payload_bytes /= static_cast<double>(p.payloads.size());
    p.payload = static_cast<int>(payload_bytes);
    for (int round = 0; round < std::max(o.rounds, 1); ++round) {
        for (int n : subscribers) {
            // Throughput with the publisher's batches (the window bounded
            // by --inflight-bytes as in fanout), then one message at a time.
            const int most_window = throughput_window(o, n, payload_bytes);
            for (const auto& [batch, window] :
                 {std::pair{std::min(o.batch, most_window), most_window}, std::pair{1, 1}}) {
                p.subscribers = n;
                p.batch = batch;
                p.window = window;
                for (server* s : {&off, &on}) {
                    fanout_result r = run_fanout(target_kind::router, {s->at}, p);
                    const bool is_on = s == &on;
                    std::printf("deflate %s ", is_on ? "on " : "off");
                    print_fanout("router", p, r);
                    if (r.ok)
                        std::printf("  negotiated by %d of %d subscribers, %.1f TCP bytes received per delivery "
                                    "(payload %.1f)\n",
                                    r.deflated, n,
                                    r.delivered > 0 ? static_cast<double>(r.wire_bytes) / static_cast<double>(r.delivered)
                                                    : 0.0,
                                    payload_bytes);
                    if (!r.ok || r.deflated != (is_on ? n : 0)) ++rep.failures;
                    std::fflush(stdout);
                    rep.deflate.push_back({n, batch, is_on, payload_bytes, std::move(r)});
                }
            }
        }
    }
    remove_log(off);
    remove_log(on);
}

void latest_scenario(const options& o, report& rep) {
    server redis;
    const bool with_redis = start_redis(redis, o);
    if (!with_redis) std::printf("latest over Redis: FAILED: %s did not start\n", o.redis.c_str());
    for (const bool over_redis : {false, true}) {
        if (over_redis && !with_redis) {
            ++rep.failures;
            break;
        }
        std::vector<std::string> extra = {"--channels-namespaces",
                                          R"([{"pattern": "bench.latest.>", "latest": true, "history_size": 0}])",
                                          "--limits-max-channels", std::to_string(o.channels + 1000)};
        // Info: the log says when the router's Redis side is up, before which a publish is refused.
        if (over_redis)
            extra.insert(extra.end(), {"--cluster-redis", "redis://127.0.0.1:" + std::to_string(redis.at.port),
                                       "--log-level", "info"});
        server router;
        if (!start_router(router, o, extra) || (over_redis && !log_shows(router, "event=cluster.redis_up"))) {
            std::printf("latest: FAILED: the router did not start%s (log: %s)\n",
                        over_redis ? " or reach Redis" : "", router.log.c_str());
            ++rep.failures;
            continue;
        }
        latest_params p;
        p.channels = o.channels;
        p.payload = o.payload;
        const latest_result r = run_latest(router.at, router.process.pid(), p);
        std::printf("latest channels=%d payload=%d %s: ", p.channels, p.payload,
                    over_redis ? "(one router over Redis)" : "(one router)");
        print_outcome(r, "", rep, [&] {
            std::printf("published in %.2f s; router RSS %ld KiB -> %ld KiB, %.0f bytes per channel kept; "
                        "subscribe to its ack %s ms, to the last latest value %s ms\n",
                        r.publish_seconds, r.rss_before_kib, r.rss_after_kib,
                        static_cast<double>(r.rss_after_kib - r.rss_before_kib) * 1024.0 / p.channels,
                        runs_ms(r.ack_seconds).c_str(), runs_ms(r.last_seconds).c_str());
        });
        remove_log(router);
    }
}

void core_scenario(const options& o, report& rep) {
    rep.core = run_core(o.core_seconds);
    for (const core_figure& f : rep.core) std::printf("core %s: %.1f ns\n", f.name.c_str(), f.ns_per_item);
    std::fflush(stdout);
}

constexpr int cluster_routers = 3;

std::map<std::string, std::uint64_t> calls_since(std::map<std::string, std::uint64_t> now,
                                                 const std::map<std::string, std::uint64_t>& before) {
    now.erase("info");  // the tool's own
    for (auto it = now.begin(); it != now.end();) {
        const auto was = before.find(it->first);
        it->second -= was == before.end() ? 0 : was->second;
        it = it->second == 0 ? now.erase(it) : std::next(it);
    }
    return now;
}

// "7.00 (eval 1.00, publish 1.00, ...)": commands per published message, the
// most frequent first; those under 0.005 (heartbeats, subscriptions) only
// in the total.
std::string commands_per_message(const redis_use& u, std::uint64_t published) {
    if (published == 0) return "-";
    std::vector<std::pair<std::uint64_t, std::string>> by_count;
    for (const auto& [name, calls] : u.commands) by_count.emplace_back(calls, name);
    std::sort(by_count.rbegin(), by_count.rend());
    const auto per = [&](std::uint64_t n) { return static_cast<double>(n) / static_cast<double>(published); };
    char buf[64];
    std::string parts;
    for (const auto& [calls, name] : by_count) {
        if (per(calls) < 0.005) break;
        std::snprintf(buf, sizeof buf, "%s%s %.2f", parts.empty() ? "" : ", ", name.c_str(), per(calls));
        parts += buf;
    }
    std::snprintf(buf, sizeof buf, "%.2f", per(u.total()));
    return parts.empty() ? buf : buf + (" (" + parts + ")");
}

void cluster_scenario(const options& o, report& rep) {
    const std::vector<int> counts = o.subscribers_given ? o.subscribers : std::vector<int>{3, 99};
    const int most = raise_open_files_for(counts);
    server redis, single;
    std::array<server, cluster_routers> routers;
    redis_probe probe;
    std::optional<redis_tls_setup> tls;
    if (o.redis_tls) {
        tls.emplace();
        if (!tls->error.empty()) {
            std::printf("cluster: FAILED: %s\n", tls->error.c_str());
            ++rep.failures;
            return;
        }
        rep.redis_tls = true;
    }
    std::vector<std::string> master_options = tls ? tls->server_options : std::vector<std::string>{};
    if (o.redis_replicas > 0)
        master_options.insert(master_options.end(), {"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"});
    if (!start_redis(redis, o, master_options)) {
        std::printf("cluster: FAILED: %s did not start\n", o.redis.c_str());
        ++rep.failures;
        return;
    }
    // --redis-replicas: each replicates the master's plain port, loading
    // what it is sent without writing it to disk; stopped by pid at the end
    // like the master.
    std::vector<server> replicas(static_cast<std::size_t>(o.redis_replicas));
    for (server& replica : replicas) {
        if (!start_redis(replica, o, {"--replicaof", "127.0.0.1", std::to_string(redis.at.port),
                                      "--repl-diskless-load", "swapdb"})) {
            std::printf("cluster: FAILED: a replica of Redis did not start\n");
            ++rep.failures;
            return;
        }
    }
    // Everything the routers and the probe say to Redis goes through the
    // forwarder when there is one, so that its round trip is the unit.
    std::unique_ptr<delay_proxy> distance;
    unsigned short redis_port = redis.at.port;
    if (o.redis_delay_us > 0) {
        distance = std::make_unique<delay_proxy>(redis.at.port, std::chrono::microseconds(o.redis_delay_us));
        redis_port = distance->port();
        rep.redis_delay_us = o.redis_delay_us;
        std::printf("cluster: Redis reached through a forwarder that holds every chunk %d us each way\n",
                    o.redis_delay_us);
    }
    if (!probe.connect(redis_port, std::chrono::seconds(5))) {
        std::printf("cluster: FAILED: %s did not answer\n", o.redis.c_str());
        ++rep.failures;
        return;
    }
    if (!replicas.empty()) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (probe.replicas_online() < o.redis_replicas && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const int online = probe.replicas_online();
        if (online < o.redis_replicas) {
            std::printf("cluster: FAILED: %d of %d replicas of Redis online after 10 s\n", std::max(online, 0),
                        o.redis_replicas);
            ++rep.failures;
            return;
        }
        std::printf("cluster: %d replica%s of Redis online (--redis-replicas)\n", online, online == 1 ? "" : "s");
    }
    const std::vector<std::string> limits = {"--limits-max-connections", std::to_string(most + 64)};
    std::vector<std::string> in_cluster = limits;
    if (tls) {
        std::printf("cluster: the routers reach Redis over TLS (rediss://127.0.0.1:%u); the probe on its plain port\n",
                    tls->port);
        in_cluster.insert(in_cluster.end(), {"--cluster-redis", "rediss://127.0.0.1:" + std::to_string(tls->port)});
        in_cluster.insert(in_cluster.end(), tls->router_flags.begin(), tls->router_flags.end());
    } else {
        in_cluster.insert(in_cluster.end(), {"--cluster-redis", "redis://127.0.0.1:" + std::to_string(redis_port)});
    }
    std::vector<endpoint_info> cluster_at;
    for (server& r : routers) {
        if (!start_router(r, o, in_cluster)) {
            ++rep.failures;
            return;
        }
        cluster_at.push_back(r.at);
    }
    if (!start_router(single, o, limits)) {
        ++rep.failures;
        return;
    }
    rep.redis_round_trip = probe.ping(1000);
    std::printf("cluster: Redis round trip (PING, 1000 one after the other): %s\n",
                latencies(rep.redis_round_trip).c_str());
    // Redis's own leg of a message between routers, the floor under the
    // latency aim's: a publish needs more than a PING's round trip.
    rep.redis_publish = probe.publish_to_subscribers(cluster_routers, 1000);
    if (rep.redis_publish.count() == 0) {
        std::printf("cluster: FAILED: a PUBLISH to %d subscribers of the probe was not read\n", cluster_routers);
        ++rep.failures;
    } else {
        std::printf("cluster: Redis PUBLISH of 64 B to %d subscriber connections (1000 one after the other), "
                    "written to read by the first: %s\n",
                    cluster_routers, latencies(rep.redis_publish).c_str());
    }

    const auto row_of = [&](int n, int size, int batch, int window, bool paced) {
        cluster_row row{n, size, {}, {}, {}, {}};
        fanout_params p = fanout_params_of(o, n, size, batch, window);
        if (n < cluster_routers) {
            row.cluster.error = row.single.error = "needs a subscriber on each router: at least 3";
            std::printf("cluster subscribers=%d: FAILED: %s\n", n, row.cluster.error.c_str());
            ++rep.failures;
            return row;
        }
        double cpu_before = 0;
        std::map<std::string, std::uint64_t> calls_before;
        p.on_window_start = [&] {
            cpu_before = process_cpu_seconds(redis.at.pid);
            calls_before = probe.command_calls();
        };
        p.on_window_end = [&] {
            row.redis.cpu = process_cpu_seconds(redis.at.pid) - cpu_before;
            row.redis.commands = calls_since(probe.command_calls(), calls_before);
        };
        row.cluster = run_fanout(target_kind::router, cluster_at, p);
        print_fanout("cluster", p, row.cluster);
        if (row.cluster.ok)
            std::printf("  Redis over that run: CPU %.0f ns per delivery, commands per published message %s\n",
                        row.cluster.delivered > 0 ? 1e9 * row.redis.cpu / static_cast<double>(row.cluster.delivered)
                                                  : 0.0,
                        commands_per_message(row.redis, row.cluster.published).c_str());
        p.on_window_start = p.on_window_end = nullptr;
        row.single = run_fanout(target_kind::router, {single.at}, p);
        print_fanout("single", p, row.single);
        rep.failures += (row.cluster.ok ? 0 : 1) + (row.single.ok ? 0 : 1);
        if (paced && row.cluster.ok && row.cluster.published > 0) {
            fanout_params at_rate = p;
            at_rate.rate = rate(row.cluster.published, row.cluster.seconds);
            row.single_paced = run_fanout(target_kind::router, {single.at}, at_rate);
            print_fanout("single-paced", at_rate, row.single_paced);
            rep.failures += row.single_paced.ok ? 0 : 1;
        }
        return row;
    };
    // As in fanout: as fast as the window allows, then one message at a time.
    for (int n : counts) {
        for (int size : o.payloads) {
            const int window = throughput_window(o, n, size);
            rep.cluster.push_back(row_of(n, size, std::min(o.batch, window), window, true));
        }
    }
    if (o.latency)
        for (int n : counts) rep.cluster_latency.push_back(row_of(n, o.payloads.front(), 1, 1, false));

    for (int c : o.concurrency) {
        request_params p;
        p.concurrency = c;
        p.payload = o.payload;
        p.seconds = o.seconds;
        // The backend joins the other routers once its router knows them,
        // which a router learns at its heartbeat (every 5 s by default).
        p.reach_seconds = 12;
        std::vector<request_result> r = run_request_across({routers[0].at, routers[1].at}, p);
        print_request("cluster-local", p, r[0]);
        print_request("cluster-cross", p, r[1]);
        rep.failures += (r[0].ok ? 0 : 1) + (r[1].ok ? 0 : 1);
        rep.cluster_request.push_back({c, std::move(r[0]), std::move(r[1])});
    }
    for (server& r : routers) remove_log(r);
    remove_log(single);
    remove_log(redis);
}

// --------------------------------------------------------------- the tables

std::string cell_rate(const std::map<std::string, fanout_result>& m, const char* t) {
    const auto it = m.find(t);
    if (it == m.end() || !it->second.ok) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", rate(it->second.delivered, it->second.seconds));
    return buf;
}

template <typename Result>
std::string cell_latency(const std::map<std::string, Result>& m, const char* t) {
    const auto it = m.find(t);
    if (it == m.end() || !it->second.ok) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f / %.0f / %.0f", it->second.latency.quantile_us(0.5),
                  it->second.latency.quantile_us(0.99), it->second.latency.quantile_us(0.999));
    return buf;
}

std::string ratio(double a, double b) {
    if (a <= 0 || b <= 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fx", a / b);
    return buf;
}

double fanout_rate(const std::map<std::string, fanout_result>& m, const char* t) {
    const auto it = m.find(t);
    return it == m.end() || !it->second.ok ? 0 : rate(it->second.delivered, it->second.seconds);
}

std::string cell_p50_p99(const fanout_result& r, const histogram& h) {
    if (!r.ok || h.count() == 0) return "-";
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.0f / %.0f", h.quantile_us(0.5), h.quantile_us(0.99));
    return buf;
}

std::string cell_number(double v) {
    if (v <= 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

std::string cell_request(const request_result& r) {
    if (r.refused == static_cast<std::uint16_t>(errc::no_such_service)) return "not reachable (no_such_service)";
    if (!r.ok) return "failed";
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.0f / %.0f / %.0f (%.0f calls/s)", r.latency.quantile_us(0.5),
                  r.latency.quantile_us(0.99), r.latency.quantile_us(0.999), rate(r.calls, r.seconds));
    return buf;
}

void print_cluster_tables(const report& rep) {
    if (!rep.cluster.empty()) {
        std::printf("\n### Several routers over Redis: %d routers (the publisher on the first, the subscribers "
                    "spread over all) against one router, the same window and batch, then the one router paced at "
                    "the cluster's rate; CPU in ns per delivery\n\n"
                    "| subscribers | payload | cluster msg/s | single msg/s | cluster / single | routers' CPU "
                    "| single's CPU | CPU cluster / single | single at the cluster's rate: msg/s | its CPU "
                    "| CPU cluster / single at the same rate (aim <= 1.5x) | Redis CPU | Redis commands per publish "
                    "| lost |\n"
                    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n",
                    cluster_routers);
        for (const cluster_row& r : rep.cluster) {
            const double cluster_rate = r.cluster.ok ? rate(r.cluster.delivered, r.cluster.seconds) : 0;
            const double single_rate = r.single.ok ? rate(r.single.delivered, r.single.seconds) : 0;
            const double paced_rate = r.single_paced.ok ? rate(r.single_paced.delivered, r.single_paced.seconds) : 0;
            const double redis_cpu =
                r.cluster.ok && r.cluster.delivered > 0 ? 1e9 * r.redis.cpu / static_cast<double>(r.cluster.delivered) : 0;
            const double cluster_cpu = cpu_per_delivery_ns(r.cluster, r.cluster.server_cpu);
            const double single_cpu = cpu_per_delivery_ns(r.single, r.single.server_cpu);
            const double paced_cpu = cpu_per_delivery_ns(r.single_paced, r.single_paced.server_cpu);
            std::printf("| %d | %d B | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %llu / %llu / %llu |\n",
                        r.subscribers, r.payload, cell_number(cluster_rate).c_str(), cell_number(single_rate).c_str(),
                        ratio(cluster_rate, single_rate).c_str(), cell_number(cluster_cpu).c_str(),
                        cell_number(single_cpu).c_str(), ratio(cluster_cpu, single_cpu).c_str(),
                        cell_number(paced_rate).c_str(), cell_number(paced_cpu).c_str(),
                        ratio(cluster_cpu, paced_cpu).c_str(), cell_number(redis_cpu).c_str(),
                        r.cluster.ok ? commands_per_message(r.redis, r.cluster.published).c_str() : "-",
                        static_cast<unsigned long long>(r.cluster.lost), static_cast<unsigned long long>(r.single.lost),
                        static_cast<unsigned long long>(r.single_paced.lost));
        }
        std::printf("\n### Several routers over Redis, latency under that load: publish to delivery, p50 / p99 in us\n\n"
                    "| subscribers | payload | cluster, the publisher's router | cluster, the other routers "
                    "| single router |\n"
                    "| ---: | ---: | ---: | ---: | ---: |\n");
        for (const cluster_row& r : rep.cluster)
            std::printf("| %d | %d B | %s | %s | %s |\n", r.subscribers, r.payload,
                        cell_p50_p99(r.cluster, r.cluster.latency).c_str(),
                        cell_p50_p99(r.cluster, r.cluster.cross_latency).c_str(),
                        cell_p50_p99(r.single, r.single.latency).c_str());
    }
    if (!rep.cluster_latency.empty()) {
        const double round_trip = rep.redis_round_trip.quantile_us(0.5);
        std::printf("\n### Several routers over Redis, one message in flight (%d B): publish to delivery, p50 / p99 "
                    "in us; Redis round trip (PING) p50 %.0f us, p99 %.0f us; a PUBLISH to %d subscribers, written to "
                    "read by the first, p50 %.0f us%s\n\n"
                    "| subscribers | single router | cluster, the publisher's router | cluster, the other routers "
                    "| other routers' p50 - single's p50 | in Redis round trips (aim <= 2) | Redis commands per publish |\n"
                    "| ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
                    rep.cluster_latency.front().payload, round_trip, rep.redis_round_trip.quantile_us(0.99),
                    cluster_routers, rep.redis_publish.quantile_us(0.5),
                    rep.redis_delay_us > 0
                        ? ("; Redis " + std::to_string(rep.redis_delay_us) + " us away each way (--redis-delay-us)")
                              .c_str()
                    : rep.redis_tls ? "; the routers reach Redis over TLS (--redis-tls), the PING over plain TCP"
                                    : "");
        for (const cluster_row& r : rep.cluster_latency) {
            const bool both = r.cluster.ok && r.single.ok && r.cluster.cross_latency.count() > 0;
            const double extra =
                both ? r.cluster.cross_latency.quantile_us(0.5) - r.single.latency.quantile_us(0.5) : 0;
            char extra_cell[32] = "-", trips_cell[32] = "-";
            if (both) std::snprintf(extra_cell, sizeof extra_cell, "%.0f us", extra);
            if (both && round_trip > 0) std::snprintf(trips_cell, sizeof trips_cell, "%.1f", extra / round_trip);
            std::printf("| %d | %s | %s | %s | %s | %s | %s |\n", r.subscribers,
                        cell_p50_p99(r.single, r.single.latency).c_str(),
                        cell_p50_p99(r.cluster, r.cluster.latency).c_str(),
                        cell_p50_p99(r.cluster, r.cluster.cross_latency).c_str(), extra_cell, trips_cell,
                        r.cluster.ok ? commands_per_message(r.redis, r.cluster.published).c_str() : "-");
        }
    }
    if (!rep.cluster_request.empty()) {
        std::printf("\n### Several routers over Redis, request/response: the backend on the first router, "
                    "callers on it or on another; p50 / p99 / p99.9 in us\n\n"
                    "| concurrency | caller on the backend's router | caller on another router "
                    "| other / backend's p50 (aim <= 1.3x) |\n"
                    "| ---: | ---: | ---: | ---: |\n");
        for (const cluster_request_row& r : rep.cluster_request)
            std::printf("| %d | %s | %s | %s |\n", r.concurrency, cell_request(r.local).c_str(),
                        cell_request(r.cross).c_str(),
                        ratio(r.cross.ok ? r.cross.latency.quantile_us(0.5) : 0,
                              r.local.ok ? r.local.latency.quantile_us(0.5) : 0)
                            .c_str());
    }
}

void print_tables(const report& rep) {
    std::string load;
    std::getline(std::ifstream("/proc/loadavg"), load);
    std::printf("\n## Results (load average at the end: %s)\n", load.c_str());
    if (!rep.fanout.empty()) {
        std::printf("\n### Fan-out: messages delivered per second (sum over subscribers), latency p50 / p99 / p99.9 in us\n\n"
                    "| subscribers | payload | router msg/s | nats msg/s | baseline msg/s | router / nats | router / baseline "
                    "| router latency | nats latency | baseline latency |\n"
                    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (const fanout_row& r : rep.fanout) {
            const double hs = fanout_rate(r.by_target, "router");
            std::printf("| %d | %d B | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.subscribers, r.payload,
                        cell_rate(r.by_target, "router").c_str(), cell_rate(r.by_target, "nats").c_str(),
                        cell_rate(r.by_target, "baseline").c_str(), ratio(hs, fanout_rate(r.by_target, "nats")).c_str(),
                        ratio(hs, fanout_rate(r.by_target, "baseline")).c_str(),
                        cell_latency(r.by_target, "router").c_str(), cell_latency(r.by_target, "nats").c_str(),
                        cell_latency(r.by_target, "baseline").c_str());
        }
    }
    if (!rep.fanout.empty()) {
        std::printf("\n### Fan-out CPU: the server's and this tool's per delivery (ns), and the tool's share of "
                    "the cores it ran on (CPU time / (wall time x its threads); near 100%% the client was the "
                    "bottleneck)\n\n"
                    "| subscribers | payload | target | msg/s | server CPU | client CPU | client threads "
                    "| client CPU %% | busiest client thread %% |\n"
                    "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (const fanout_row& row : rep.fanout)
            for (const auto& [target, r] : row.by_target) {
                if (!r.ok || r.seconds <= 0) continue;
                std::printf("| %d | %d B | %s | %.0f | %.0f | %.0f | %d | %.0f%% | %.0f%% |\n", row.subscribers,
                            row.payload, target.c_str(), rate(r.delivered, r.seconds),
                            cpu_per_delivery_ns(r, r.server_cpu), cpu_per_delivery_ns(r, r.client_cpu),
                            r.client_threads, 100.0 * r.client_cpu / (r.seconds * r.client_threads),
                            100.0 * r.client_busiest_cpu / r.seconds);
            }
    }
    if (!rep.fanout_latency.empty()) {
        std::printf("\n### Fan-out latency, one message in flight (%d B): publish to delivery, p50 / p99 / p99.9 in us\n\n"
                    "| subscribers | router | nats | baseline | router / nats (p50) | router / baseline (p50) |\n"
                    "| ---: | ---: | ---: | ---: | ---: | ---: |\n",
                    rep.fanout_latency.front().payload);
        for (const fanout_row& r : rep.fanout_latency) {
            const auto p50 = [&](const char* t) {
                const auto it = r.by_target.find(t);
                return it == r.by_target.end() || !it->second.ok ? 0.0 : it->second.latency.quantile_us(0.5);
            };
            std::printf("| %d | %s | %s | %s | %s | %s |\n", r.subscribers, cell_latency(r.by_target, "router").c_str(),
                        cell_latency(r.by_target, "nats").c_str(), cell_latency(r.by_target, "baseline").c_str(),
                        ratio(p50("router"), p50("nats")).c_str(), ratio(p50("router"), p50("baseline")).c_str());
        }
    }
    if (!rep.request.empty()) {
        std::printf("\n### Request/response: calls per second, latency p50 / p99 / p99.9 in us\n\n"
                    "| concurrency | router calls/s | router latency | WebSocket echo latency | ZeroMQ round trip latency "
                    "| router p50 / (WebSocket + ZeroMQ p50) |\n"
                    "| ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (const request_row& r : rep.request) {
            const auto p50 = [&](const char* t) {
                const auto it = r.by_target.find(t);
                return it == r.by_target.end() || !it->second.ok ? 0.0 : it->second.latency.quantile_us(0.5);
            };
            const auto it = r.by_target.find("router");
            char calls[32] = "-";
            if (it != r.by_target.end() && it->second.ok)
                std::snprintf(calls, sizeof calls, "%.0f", rate(it->second.calls, it->second.seconds));
            const double raw = p50("baseline") > 0 && p50("zmq") > 0 ? p50("baseline") + p50("zmq") : 0.0;
            std::printf("| %d | %s | %s | %s | %s | %s |\n", r.concurrency, calls,
                        cell_latency(r.by_target, "router").c_str(), cell_latency(r.by_target, "baseline").c_str(),
                        cell_latency(r.by_target, "zmq").c_str(), ratio(p50("router"), raw).c_str());
        }
    }
    if (!rep.connections.empty()) {
        std::printf("\n### Idle WebSocket connections on one router\n\n"
                    "| connections | connected | connect rate | router RSS before | router RSS after | KiB per connection |\n"
                    "| ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (const connections_row& c : rep.connections) {
            const connections_result& r = c.result;
            std::printf("| %d | %d%s | %.0f/s | %ld KiB | %ld KiB | %.2f |\n", c.count, r.connected,
                        r.ok ? "" : " (failed)", r.connect_seconds > 0 ? r.connected / r.connect_seconds : 0.0,
                        r.rss_before_kib, r.rss_after_kib,
                        r.connected > 0 ? static_cast<double>(r.rss_after_kib - r.rss_before_kib) / r.connected : 0.0);
        }
    }
    if (!rep.deflate.empty()) {
        std::printf("\n### permessage-deflate: the simulator's JSON telemetry\n\n"
                    "| subscribers | batch | deflate | negotiated | delivered msg/s | TCP bytes per delivery "
                    "| payload bytes | router CPU ns per delivery |\n"
                    "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (const deflate_row& d : rep.deflate) {
            const fanout_result& r = d.result;
            std::printf("| %d | %d | %s | %d%s | %.0f | %.1f | %.1f | %.0f |\n", d.subscribers, d.batch,
                        d.on ? "on" : "off", r.deflated, r.ok ? "" : " (failed)", rate(r.delivered, r.seconds),
                        r.delivered > 0 ? static_cast<double>(r.wire_bytes) / static_cast<double>(r.delivered) : 0.0,
                        d.payload_bytes, cpu_per_delivery_ns(r, r.server_cpu));
        }
    }
    if (!rep.presence.empty()) {
        std::printf(rep.presence_over_redis
                        ? "\n### Presence of one channel, its members on one router and the caller on another, over Redis\n\n"
                        : "\n### Presence of one channel on one router\n\n");
        std::printf("| members | calls | call p50 | call p99 | listed | answer bytes | router RSS before | router RSS after | KiB per member |\n"
                    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (const presence_row& row : rep.presence) {
            const presence_result& r = row.result;
            std::printf("| %d%s | %llu | %.0f us | %.0f us | %zu | %zu | %ld KiB | %ld KiB | %.2f |\n", row.members,
                        r.ok ? "" : " (failed)", static_cast<unsigned long long>(r.latency.count()),
                        r.latency.quantile_us(0.5), r.latency.quantile_us(0.99), r.listed, r.list_bytes,
                        r.rss_before_kib, r.rss_after_kib,
                        r.members > 0 ? static_cast<double>(r.rss_after_kib - r.rss_before_kib) / r.members : 0.0);
        }
    }
    if (!rep.core.empty()) {
        std::printf("\n### Shared core, one thread (wall time)\n\n| operation | ns | per second |\n| --- | ---: | ---: |\n");
        for (const core_figure& f : rep.core)
            std::printf("| %s | %.1f | %.1f M |\n", f.name.c_str(), f.ns_per_item, 1e3 / f.ns_per_item);
    }
    print_cluster_tables(rep);
}

}  // namespace
}  // namespace hyperstreams::bench

int main(int argc, char** argv) {
    using namespace hyperstreams::bench;
    options o;
    if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
        std::fputs(usage_text, stdout);
        return 0;
    }
    if (!parse(argc, argv, o)) {
        std::fputs(usage_text, stderr);
        return 2;
    }
    if (o.command == "serve-baseline") return serve_baseline();

    std::string load;
    std::getline(std::ifstream("/proc/loadavg"), load);
    std::printf("hyperstreams-bench %s: %ld CPUs online, load average %s, router %s\n", o.command.c_str(),
                ::sysconf(_SC_NPROCESSORS_ONLN), load.c_str(), o.router.c_str());
    report rep;
    if (o.command == "fanout") {
        fanout_scenario(o, rep);
    } else if (o.command == "request") {
        request_scenario(o, rep);
    } else if (o.command == "connections") {
        connections_scenario(o, rep);
    } else if (o.command == "deflate") {
        deflate_scenario(o, rep);
    } else if (o.command == "presence") {
        rep.presence_over_redis = o.over_redis;
        presence_scenario(o, rep);
    } else if (o.command == "core") {
        core_scenario(o, rep);
    } else if (o.command == "latest") {
        latest_scenario(o, rep);
    } else if (o.command == "cluster") {
        cluster_scenario(o, rep);
    } else if (o.command == "suite") {
        if (o.big) {
            o.subscribers.push_back(10000);
            o.connections = {10000, 50000};
        }
        fanout_scenario(o, rep);
        request_scenario(o, rep);
        connections_scenario(o, rep);
        core_scenario(o, rep);
    } else {
        std::fputs(usage_text, stderr);
        return 2;
    }
    print_tables(rep);
    if (rep.failures != 0) std::printf("\n%d run(s) FAILED\n", rep.failures);
    return rep.failures == 0 ? 0 : 1;
}
