// Real redis-server processes for the tests of the Redis engine and what
// builds on it: each on free loopback ports, in a temporary directory of its
// own (its log, and a cluster node's nodes.conf), stopped by its pid. A
// blocking one-shot client for the tests' own checks and set-up, and the
// redis-cli runs that make a cluster.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "redis_engine.hpp"

namespace hyperstreams::testing {

// TLS on a port of its own beside the plain one, which the tests' own calls
// keep using: the server's certificate and key, and the CAs it verifies
// clients' certificates against (`auth_clients`: it asks for one, as Redis
// does by default). A cluster node also speaks TLS on its bus
// (tls-cluster), and then gives TLS clients its nodes' TLS ports (CLUSTER
// SLOTS, MOVED, ASK).
struct redis_tls_setup {
    std::string cert_file;
    std::string key_file;
    std::string ca_file;
    bool auth_clients = false;
};

class redis_server {
public:
    // Starts redis-server (no persistence) and waits until it answers PING;
    // fails the test (ADD_FAILURE) when it does not. `cluster`: a cluster
    // node (its bus on a free port too) with no slots yet. `extra`: more
    // options, after (and so over) the others ("--cluster-node-timeout", ...).
    explicit redis_server(bool cluster = false, std::optional<redis_tls_setup> tls = std::nullopt,
                          std::vector<std::string> extra = {});
    ~redis_server();
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    bool ready() const noexcept { return ready_; }
    std::uint16_t port() const noexcept { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    // With TLS: its port, and the address a client gives for it.
    std::uint16_t tls_port() const noexcept { return tls_port_; }
    std::string tls_address() const { return "rediss://127.0.0.1:" + std::to_string(tls_port_); }
    pid_t pid() const noexcept { return pid_; }

    // SIGKILL, reaped: a crash, no shutdown.
    void kill();
    // SIGTERM: Redis closes its clients and exits (saving nothing); reaped,
    // and killed if it has not exited within a bound.
    void stop();
    // Sends `signal` (SIGSTOP, SIGCONT) and leaves it running.
    void signal(int signal);
    // Starts it again on the same ports in the same directory (a cluster
    // node reads its nodes.conf back) and waits until it answers PING.
    bool restart();
    std::string log() const;

private:
    bool launch();

    bool cluster_;
    std::optional<redis_tls_setup> tls_;
    std::vector<std::string> extra_;
    std::uint16_t port_ = 0;
    std::uint16_t bus_port_ = 0;
    std::uint16_t tls_port_ = 0;
    std::string dir_;
    pid_t pid_ = -1;
    bool ready_ = false;
};

// One command to 127.0.0.1:`port` on a connection of its own; null when it
// gets no answer within `timeout`.
router::redis_reply redis_call(std::uint16_t port, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout = std::chrono::seconds(2));
// Several, in order, on one connection (ASKING then a command).
std::vector<router::redis_reply> redis_calls(std::uint16_t port, const std::vector<std::vector<std::string>>& commands,
                                             std::chrono::milliseconds timeout = std::chrono::seconds(2));
// A reply's text ("" for none), an integer's digits, for assertions.
std::string reply_text(const router::redis_reply& r);

// How many subscribers the node at `port` counts for `channel`: a classic
// channel (PUBSUB NUMSUB), or a sharded one (PUBSUB SHARDNUMSUB); -1 when
// it did not answer.
long long numsub(std::uint16_t port, const std::string& channel);
long long shardnumsub(std::uint16_t port, const std::string& channel);

// Makes the server at `port` want credentials: the ACL user "router" with
// the password "router-pass", and "default-pass" for the default user
// (requirepass; the tests' own calls then AUTH first). False when it refused.
bool require_credentials(std::uint16_t port);

// A connection of its own subscribed to `channel` (a router that takes what
// is published to it and never answers); unsubscribed when destroyed.
class redis_subscription {
public:
    redis_subscription(std::uint16_t port, const std::string& channel,
                       std::chrono::milliseconds timeout = std::chrono::seconds(2));
    ~redis_subscription();
    redis_subscription(const redis_subscription&) = delete;
    redis_subscription& operator=(const redis_subscription&) = delete;
    // Redis confirmed the subscription.
    bool ready() const noexcept { return ready_; }

private:
    int fd_ = -1;
    bool ready_ = false;
};

// Runs `program` to its end, bounded by `timeout` (then killed): its exit
// status (-1 when killed) and what it wrote on stdout and stderr.
struct program_result {
    int status = -1;
    std::string output;
};
program_result run_program(const std::string& program, const std::vector<std::string>& args,
                           std::chrono::milliseconds timeout);

// A Redis Cluster made with redis-cli --cluster create: `masters` masters,
// each with `replicas_each` replicas, `extra` options on every node; once
// every node says the cluster is ok and every replica is in sync with its
// master. Empty (the test failed: ADD_FAILURE) when it could not be made.
std::vector<std::unique_ptr<redis_server>> make_redis_cluster(std::size_t masters, std::size_t replicas_each,
                                                              const std::vector<std::string>& extra = {});

// A field of the server at `port`'s INFO replication ("role",
// "master_port", ...); empty when it has none.
std::string replication_field(std::uint16_t port, const std::string& name);

// Waits until the replica at `replica_port` has processed everything the
// master at `master_port` had written when called (its replication offset
// at least the master's); whether it did within `timeout`. (WAIT would not
// do: it waits for the calling connection's own writes only.)
bool wait_replicated(std::uint16_t master_port, std::uint16_t replica_port, std::chrono::milliseconds timeout);

// Whether every thread of process `pid` is stopped (SIGSTOP taken).
bool all_threads_stopped(pid_t pid);

// Polls `condition` until it holds or `timeout` passes; whether it held.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace hyperstreams::testing
