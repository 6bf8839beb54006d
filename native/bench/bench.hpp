// hyperstreams-bench: the scenarios, their parameters and their results.
// Light on purpose: main.cpp and processes.cpp include it; only drivers.cpp
// and baseline.cpp bring in Beast and ZeroMQ.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace hyperstreams::bench {

using clock_type = std::chrono::steady_clock;

// Latencies in nanoseconds, log-linear buckets (64 per power of two: under
// 1.6% error), so that millions of samples cost a few KiB and no sorting.
class histogram {
public:
    void add(std::int64_t ns) noexcept;
    void merge(const histogram& other) noexcept;
    std::uint64_t count() const noexcept { return count_; }
    // The value at quantile q (0..1) in microseconds; 0 when empty.
    double quantile_us(double q) const noexcept;

private:
    static constexpr int sub_bits = 6;
    static constexpr int buckets = 64 << sub_bits;
    std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(buckets, 0);
    std::uint64_t count_ = 0;
};

// What a scenario talks to.
enum class target_kind {
    router,    // hyperstreams-router: WebSocket frontends, ZeroMQ backends
    nats,      // nats-server over its WebSocket listener, NATS text protocol
    baseline,  // hyperstreams-bench serve-baseline: Beast broadcast/echo, no routing
    uws,       // --uws: uWebSockets' pub/sub (hyperstreams-bench-uws), the baseline's protocol
    zmq,       // a raw ZeroMQ DEALER/ROUTER round trip, in process
};
const char* target_name(target_kind t) noexcept;

struct endpoint_info {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    std::string path = "/ws";
    std::string backend;  // router: its ZeroMQ endpoint
    pid_t pid = -1;       // the server process, whose CPU time is read
};

struct fanout_params {
    int subscribers = 100;
    int payload = 64;        // bytes, >= 8 (a send timestamp leads each payload)
    int batch = 100;         // messages per WebSocket message from the publisher
    int window = 2000;       // messages published but not yet delivered everywhere
    double seconds = 3.0;    // publishing time
    // > 0: messages published per second at most, the batches spread
    // evenly over the run (the window still applies): one server given the
    // rate another reached, so that their CPU per delivery compares equal
    // loads.
    double rate = 0;
    int client_threads = 1;  // threads of the tool the subscribers are spread over
    // Set: the payloads published, one after the other (each behind the
    // send timestamp), instead of `payload` bytes of 'x' every time.
    std::vector<std::string> payloads;
    bool deflate = false;  // every connection offers permessage-deflate
    // Called on the tool's thread when publishing starts (every subscriber
    // subscribed) and when the run ends: what else is read over the same
    // window as the servers' CPU (the cluster's Redis).
    std::function<void()> on_window_start;
    std::function<void()> on_window_end;
};

struct fanout_result {
    double seconds = 0;              // first publish to last delivery
    std::uint64_t published = 0;
    std::uint64_t delivered = 0;     // sum over subscribers
    std::uint64_t lost = 0;          // gaps announced (router) or missing at the end
    std::uint64_t delivering_reads = 0;  // reads that carried messages: WebSocket messages (NATS: reads)
    histogram latency;               // publish to delivery, subscribers on the publisher's server
    histogram cross_latency;         // the same, subscribers on the other servers (a cluster)
    double connect_seconds = 0;      // all subscribers connected and subscribed
    double client_cpu = 0;           // CPU seconds the tool used (every thread), first publish to the end
    double client_busiest_cpu = 0;   // the same, of its busiest thread
    int client_threads = 1;          // threads the connections were spread over
    double server_cpu = 0;           // CPU seconds the servers used, first publish to last delivery
    std::uint64_t wire_bytes = 0;    // TCP bytes the subscribers received from their subscribe's ack to the end
    int deflated = 0;                // subscribers whose handshake negotiated permessage-deflate
    bool ok = false;
    std::string error;
};

struct request_params {
    int concurrency = 1;  // frontend connections, one call outstanding each
    int payload = 64;
    double seconds = 3.0;
    // > 0: before measuring, call once at a time while the router answers
    // no_such_service, up to this long (the service reaching that router).
    double reach_seconds = 0;
};

struct request_result {
    double seconds = 0;
    std::uint64_t calls = 0;
    histogram latency;
    bool ok = false;
    std::string error;
    std::uint16_t refused = 0;  // the router's error code, when it refused a call
};

struct connections_params {
    int count = 10000;
    int sources = 0;      // source addresses 127.0.0.2..; 0: one per 10,000 connections
    int parallel = 256;   // connection attempts in flight
    double hold_seconds = 1.0;
    bool deflate = false;  // the connections offer permessage-deflate
};

struct connections_result {
    int connected = 0;
    double connect_seconds = 0;
    long rss_before_kib = 0;
    long rss_after_kib = 0;
    bool ok = false;
    std::string error;
};

struct latest_params {
    int channels = 10000;   // one publication each, then a subscribe with latest to all of them
    int payload = 64;
    int subscribes = 3;     // each on a new connection
};

struct latest_result {
    long rss_before_kib = 0;              // before the channels were published
    long rss_after_kib = 0;               // after
    double publish_seconds = 0;           // every channel published, the last one acked
    std::vector<double> ack_seconds;      // per subscribe: subscribe sent to its ack
    std::vector<double> last_seconds;     // per subscribe: subscribe sent to the last latest value
    bool ok = false;
    std::string error;
};

struct presence_params {
    int members = 10000;  // WebSocket connections subscribed to one channel
    int sources = 0;      // as for connections
    int parallel = 256;
    int calls = 200;      // presence calls, one after the other
    // Where the member that calls is (another router of the cluster);
    // empty: with the others.
    std::optional<endpoint_info> caller_at;
};

struct presence_result {
    int members = 0;  // subscribed
    double subscribe_seconds = 0;
    long rss_before_kib = 0;  // the router before the members connected
    long rss_after_kib = 0;   // with every member connected and subscribed
    std::uint32_t count = 0;  // the answer's
    std::size_t listed = 0;
    std::size_t list_bytes = 0;  // the presence_list body
    histogram latency;           // a presence call, sent to answered
    bool ok = false;
    std::string error;
};

// The network drivers (drivers.cpp). All clients of a run share one thread,
// but fan-out's, which spreads its subscribers over `client_threads`.
// Fan-out over several servers (a cluster): subscriber i on servers[i % n],
// the publisher on servers[0]; the servers' CPU is summed.
fanout_result run_fanout(target_kind target, const std::vector<endpoint_info>& servers, const fanout_params& p);
request_result run_request(target_kind target, const endpoint_info& at, const request_params& p);
// Routers of a cluster: an echo backend (the backend client library) on
// servers[0]'s backend endpoint, then one run of callers on each server in
// turn, in order.
std::vector<request_result> run_request_across(const std::vector<endpoint_info>& servers, const request_params& p);
// A latest-value subscribe to a pattern matching p.channels channels on
// `at` (whose namespace of bench.latest.> enables latest); `pid` is the
// router whose memory is measured.
latest_result run_latest(const endpoint_info& at, pid_t pid, const latest_params& p);
// `pid` is the server whose memory is measured.
connections_result run_connections(const endpoint_info& at, pid_t pid, const connections_params& p);
// `p.members` members of one channel of a namespace with presence on the
// router at `at` (process `pid`), then presence calls from one of them.
presence_result run_presence(const endpoint_info& at, pid_t pid, const presence_params& p);
// The raw ZeroMQ DEALER/ROUTER round trip: one DEALER with `concurrency`
// calls outstanding against an echoing ROUTER on another thread.
request_result run_zmq_round_trip(const request_params& p);

// A blocking connection to a Redis server (redis_probe.cpp, hiredis).
class redis_probe {
public:
    redis_probe() = default;
    ~redis_probe();
    redis_probe(const redis_probe&) = delete;
    redis_probe& operator=(const redis_probe&) = delete;

    bool connect(unsigned short port, std::chrono::milliseconds timeout);
    // `count` PINGs one after the other: Redis's round trip on loopback.
    histogram ping(int count);
    // `count` PUBLISHes of 64 B one after the other to a channel that
    // `subscribers` more connections of this probe subscribed to: written
    // to read by the first subscriber. Redis's own leg of a message
    // between routers, without a router or a script; empty on failure.
    histogram publish_to_subscribers(int subscribers, int count);
    // INFO commandstats: calls per command since Redis started (these INFO
    // calls included), commands run by scripts included; empty on failure.
    std::map<std::string, std::uint64_t> command_calls();
    // INFO replication: the replicas connected and in sync (state=online);
    // -1 on failure.
    int replicas_online();

private:
    redisContext* context_ = nullptr;
    unsigned short port_ = 0;
    std::chrono::milliseconds timeout_{0};
};

// A Redis some distance away (delay_proxy.cpp): a TCP forwarder on
// 127.0.0.1 to `target_port` that holds what it forwards, each way, for
// `delay` before it writes it on, in order; on a thread of its own until
// destroyed. A delay of d adds 2d to every round trip through it.
class delay_proxy {
public:
    delay_proxy(unsigned short target_port, std::chrono::microseconds delay);
    ~delay_proxy();
    delay_proxy(const delay_proxy&) = delete;
    delay_proxy& operator=(const delay_proxy&) = delete;
    unsigned short port() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The shared core on one thread (core.cpp): wall nanoseconds per item.
struct core_figure {
    std::string name;
    double ns_per_item = 0;
};
std::vector<core_figure> run_core(double seconds);

// The no-routing baseline server (baseline.cpp): WebSocket on 127.0.0.1:0;
// path /broadcast sends every message to every other connection, /echo
// sends it back. One thread. Prints "ready PORT" and serves until SIGTERM.
int serve_baseline();

// Child processes (processes.cpp), stopped by pid: SIGTERM, then SIGKILL.
class child {
public:
    child() = default;
    ~child();
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    // Starts `program` with stdout on a pipe, stderr to `log_path` (or /dev/null).
    bool start(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_path = {});
    // The first line of its stdout, within `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    // Waits for it to exit by itself within `timeout`: its exit status, or
    // -1 (signalled, or still running: then stopped).
    int finish(std::chrono::milliseconds timeout);
    void stop();
    pid_t pid() const noexcept { return pid_; }

private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    std::string pending_;
};

// The resident set of `pid` in KiB (VmRSS), 0 if unknown.
long rss_kib(pid_t pid);
// A TCP port on 127.0.0.1 that was free a moment ago.
unsigned short free_port();
// Waits until 127.0.0.1:port accepts a connection.
bool wait_listening(unsigned short port, std::chrono::milliseconds timeout);
// Raises the soft and hard limits of open files to at least `wanted`.
// Returns the soft limit in force.
long raise_open_files(long wanted);
// CPU seconds (user + system) this process has used.
double process_cpu_seconds();
// CPU seconds (user + system) process `pid` has used, from /proc; 0 if unknown.
double process_cpu_seconds(pid_t pid);
// CPU seconds a running thread of this process has used (pthread_getcpuclockid).
double thread_cpu_seconds(clockid_t clock);
// Bytes the kernel received on TCP socket `fd` (payload, not headers:
// TCP_INFO's tcpi_bytes_received); 0 if unknown.
std::uint64_t tcp_bytes_received(int fd);

}  // namespace hyperstreams::bench
