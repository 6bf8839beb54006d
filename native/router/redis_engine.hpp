// Redis as the router sees it: one server or a Redis Cluster, spoken over
// Boost.Asio with hiredis's socket-free reply reader and a RESP formatter
// (the way the ZeroMQ transport pumps libzmq). Commands go to the node that
// serves their key's slot (one pipelined connection per node); one more
// connection, in subscribe mode, receives pub/sub messages, and on a Redis
// Cluster each sharded channel (subscribe_sharded) has one of its own, to
// the node serving its slot; a node that runs writes with a redis_wait has
// a second one, for the WAITs. The engine
// follows the cluster (MOVED, ASK, TRYAGAIN, a node restarted), reconnects with
// backoff, and re-makes its subscriptions after a reconnect.
//
// Threads: the engine runs on the io_context it is given (one thread).
// command(), subscribe() and the other requests may be called from any
// thread: they are posted to it. Every callback (a command's completion,
// on_message, on_state) runs on that thread, in the order the bytes came.
// Commands to one node are written, and answered, in the order they were
// requested, so scripts run in the order the router asked for them (a
// script the node had lost is answered after those behind it, having run
// in its place: see run_script).
#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace boost::asio {
class io_context;
}
struct redisReply;

namespace hyperstreams::router {

// How many hash slots a Redis Cluster has; a key's is redis_key_slot.
inline constexpr std::size_t redis_slots = 16384;

// A reply, owned (hiredis's tree, freed with it).
struct redis_reply_deleter {
    void operator()(redisReply* r) const noexcept;
};
using redis_reply = std::unique_ptr<redisReply, redis_reply_deleter>;

// How a command ended.
enum class redis_status : std::uint8_t {
    ok,            // `reply` holds the answer, which may be a Redis error reply (an error string)
    unreachable,   // no connection to the node that serves the key (down, refused, timed out)
    lost,          // sent, but the connection died before the answer: it may or may not have run
    timed_out,     // no answer within options::command_timeout
    stopped,       // the engine was stopped
};
std::string_view redis_status_name(redis_status s) noexcept;

struct redis_result {
    redis_status status = redis_status::ok;
    redis_reply reply;     // set when status is ok
    std::string detail;    // why, for logs and error texts, when not ok
    // With a redis_wait: how many replicas acknowledged the write (WAIT's
    // answer); -1 when none was asked for, or WAIT did not answer.
    long long replicas = -1;
};
// Why `r` failed, for logs and error texts: "Redis: " and the status and
// its detail, or Redis's error reply (or that the answer had an
// unexpected shape, for a result whose reply is neither).
std::string redis_failure(const redis_result& r);

// A write made durable: once it answered, a WAIT for `replicas` replicas of
// the node that ran it to acknowledge it, for at most `timeout`; the
// command's completion comes once WAIT answered, with how many did
// (redis_result::replicas; -1 when the WAIT could not be asked, and at once
// for an error reply). The WAIT goes on a connection of its own to that
// node, after a write of `fence` (SET, expiring in 10 s), so the node's
// other commands go on while it waits: WAIT counts what its own connection
// wrote, and the fence, run after the write answered, covers it.
struct redis_wait {
    std::uint32_t replicas = 0;  // 0: no WAIT
    std::chrono::milliseconds timeout{1000};
    // A key in the write's slot (so on the node that ran it) that the
    // engine may overwrite. Required with replicas > 0.
    std::string fence;
};

// A Lua script the engine runs by its SHA1 (EVALSHA), made by load_script.
struct redis_script {
    std::string body;
    std::string sha1;  // hex, lower case
};
using redis_script_ref = std::shared_ptr<const redis_script>;

// TLS to Redis, on every connection to every node when the addresses are
// "rediss://". Redis's certificate must verify against ca_file's CAs (empty:
// the system's) and name the host or IP address connected to (a Redis
// Cluster's nodes as CLUSTER SLOTS and its redirects give them). cert_file
// and key_file (PEM, both or neither): the certificate the router shows
// Redis, which asks for one unless told `tls-auth-clients no`.
struct redis_tls_options {
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
};

struct redis_options {
    // "redis://host:port", "rediss://host:port" (TLS) or "host:port". One
    // address: a single server, unless it says it is part of a cluster
    // (CLUSTER SLOTS answers); then the addresses are the cluster's seeds.
    // All TLS or none.
    std::vector<std::string> addresses;
    // Credentials, sent (AUTH) on every connection to every node before
    // anything else: a password alone is the default user's (requirepass);
    // with a user, an ACL user's. Empty: none.
    std::string user;
    std::string password;
    // Given to every connection (CLIENT SETNAME, after the credentials),
    // with its role after a ':': "NAME:commands", "NAME:waits",
    // "NAME:subscriber" or "NAME:sharded", so that CLIENT LIST, SLOWLOG and
    // Redis's own log (a subscriber closed past its output buffer limit)
    // tell whose it is. Characters Redis does not take in a name (spaces,
    // controls) become '_'; a server that refuses the command (an ACL
    // without CLIENT|SETNAME) still serves the connection. Empty: none.
    std::string client_name{};
    redis_tls_options tls{};  // with "rediss://" addresses
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds command_timeout{2000};
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
};

// What the engine reports about itself.
struct redis_stats {
    bool up = false;                   // every slot has a connected node and the subscriber is connected
    std::string down_reason;           // when not up
    std::uint64_t commands = 0;        // asked for (once each, however often redirected)
    std::uint64_t replies = 0;         // answered (error replies too)
    std::uint64_t errors = 0;          // unreachable, lost, timed out, stopped, or an error reply
    std::uint64_t messages = 0;        // pub/sub messages received
    std::uint64_t reconnects = 0;      // connections made again after one failed or was lost
    std::uint64_t redirects = 0;       // MOVED and ASK followed
    std::uint64_t retries = 0;         // TRYAGAIN answers (a command sent again, or waited for, while its slot moved)
    double rtt_ewma_ms = 0;            // round trip of commands, smoothed
    std::size_t nodes = 0;             // known nodes (1 for a single server)
    bool listens_sharded = false;      // listens_sharded(), for other threads
};

class redis_engine {
public:
    using completion = std::function<void(redis_result)>;
    struct handlers {
        // A message on a channel this engine subscribed to (`pattern`
        // empty) or on one a pattern matched.
        std::function<void(std::string_view pattern, std::string_view channel, std::string_view payload)> on_message;
        // Up (every slot served and the subscriber connected) or down, with
        // why. Transitions only; the first call comes once the engine is up
        // or once something failed (not while it is still connecting).
        std::function<void(bool up, std::string_view reason)> on_state;
        // A subscription of subscribe_sharded is in force for the first
        // time: listens_sharded() is true from now on.
        std::function<void()> on_listening_sharded;
    };

    redis_engine(boost::asio::io_context& ioc, redis_options options, handlers h);
    ~redis_engine();
    redis_engine(const redis_engine&) = delete;
    redis_engine& operator=(const redis_engine&) = delete;

    // What makes the options unusable (addresses that mix redis:// and
    // rediss://, a TLS file that cannot be loaded), in words; empty when
    // they are usable. The engine with such options never connects: its
    // state is down with this reason.
    const std::string& setup_error() const noexcept;

    // Connects (and keeps reconnecting); returns at once.
    void start();
    // Fails what is pending with `stopped`; no callback runs after it returns.
    // Call from the engine's thread or once that thread has stopped.
    // Requests made after it are dropped (their completions are not called).
    void stop();

    // Runs `args` (a command and its arguments, binary-safe) on the node
    // serving `key`'s slot (any node when `key` is empty) and calls `done`
    // with the result. Follows MOVED and ASK. A command answered TRYAGAIN
    // (its slot migrates, some of its keys moved and some not) is sent
    // again after a pause, for at most the command timeout; meanwhile the
    // commands of the same `key` wait behind it and go one at a time, in
    // the order asked for, so a migration does not reorder them (one that
    // was on the wire already and ran first makes the waiting ones before
    // it answer TRYAGAIN instead). Empty `args` are not sent:
    // they complete ok with the error reply "ERR empty command".
    // While the topology is first learned, and while a node's first
    // connection is being made, commands wait (a bounded number); to a node
    // that is down they fail at once (unreachable).
    void command(std::string key, std::vector<std::string> args, completion done);

    // Registers a script, before start(): every connection to a node loads
    // it (SCRIPT LOAD) before it carries anything else, so only a node
    // whose scripts were flushed (SCRIPT FLUSH) while connected lacks it.
    redis_script_ref load_script(std::string body);
    // Runs `script` (EVALSHA) on the node serving `key`'s slot; `args` are
    // EVALSHA's after the SHA: numkeys, the keys, the arguments. A node
    // that lacks the script (NOSCRIPT) runs it from its text (EVAL) in the
    // same place among the commands sent to it: the commands sent after it
    // (on the wire already) are answered first, then it runs, before any
    // command sent later. If one of those on the wire was for the same key
    // and ran, running the script now would put it after that one: it is
    // not run, and answered with the NOSCRIPT error.
    void run_script(std::string key, const redis_script_ref& script, std::span<const std::string_view> args,
                    completion done, redis_wait wait = {});

    // Runs `fn` on the engine's thread after the callbacks of what the
    // engine has read so far: answers gathered by those callbacks can then
    // go on together. Not run once the engine stopped.
    void after_reads(std::function<void()> fn);

    // Runs `fn` on the engine's thread once `delay` has passed. Not run once
    // the engine stopped.
    void after(std::chrono::milliseconds delay, std::function<void()> fn);

    // Subscriptions of the subscriber connection; kept across reconnects.
    // Counted: a channel subscribed twice is unsubscribed after the second
    // unsubscribe.
    void subscribe(std::string channel);
    void unsubscribe(std::string channel);
    void psubscribe(std::string pattern);
    void punsubscribe(std::string pattern);

    // A channel that one subscriber listens on, and that others publish
    // to with publish_sharded (a router's own channel). On a Redis Cluster
    // it is a sharded channel (Redis 7's SSUBSCRIBE and SPUBLISH): only the
    // node serving its slot carries it, on a connection of its own that
    // follows the slot when it moves, and a publish's count is of every
    // subscriber. On a single server, or when Redis refuses sharded pub/sub
    // (before 7.0, or an ACL user without the commands: logged
    // redis.sharded_pubsub_refused), it is a channel of subscribe(). Kept
    // for the engine's life; not part of its up state (a connection that
    // follows a moved slot is not the engine down).
    void subscribe_sharded(std::string channel);
    // Publishes `message` on a channel of subscribe_sharded (SPUBLISH on a
    // Redis Cluster that takes it, else PUBLISH): the reply is the count of
    // subscribers that received it, of every node with SPUBLISH.
    void publish_sharded(std::string channel, std::string message, completion done);
    // On the engine's thread: the servers are a Redis Cluster that takes
    // sharded pub/sub (none of its nodes refused it so far).
    bool sharded_pubsub() const noexcept;
    // On the engine's thread: sharded_pubsub(), and Redis confirmed a
    // subscription of subscribe_sharded (it may be following its slot to
    // another node just now).
    bool listens_sharded() const noexcept;

    // Runs `fn` on the engine's thread once the subscriptions asked for
    // before it are in force in Redis (redis_subscriber::after_subscribed):
    // a read that follows misses no message published after it. Not run
    // once the engine stopped.
    void after_subscribed(std::function<void()> fn);

    // Thread-safe.
    redis_stats stats() const;

    // On the engine's thread: the servers are a Redis Cluster's. PUBLISH
    // then counts only the subscribers of the node that took it: a count of
    // 0 does not say that nobody else received the message.
    bool is_cluster() const noexcept;

    // On the engine's thread: the slots whose pub/sub messages may have
    // been lost since the last call, and forgets them. A node that went
    // down took with it what it had published and not yet passed to the
    // other nodes (a Redis Cluster's bus): its slots. A subscriber
    // connection that dropped missed everything: every slot (so does a
    // single server that went down).
    std::bitset<redis_slots> take_missed_slots();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

// The hash slot of a key (CRC16 of the key, or of its {hash tag}), 0..16383.
std::uint16_t redis_key_slot(std::string_view key) noexcept;


}  // namespace hyperstreams::router
