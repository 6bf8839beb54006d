// The channel log of routers that are one (cluster.redis): channels,
// positions and history in Redis, shared by every router, the way
// Centrifugo's Redis engine keeps them.
//
// Keys (P = cluster.prefix; {channel} is the hash tag, so a channel's keys
// share a Redis Cluster slot):
//   P:{channel}:m   hash: e = the channel's epoch, s = its last seq, r, o, n = where
//                   Redis stood at the last write (redis_log.cpp, rolled_back_lua)
//   P:{channel}:s   stream of the history: ID "seq-0", fields f (flags), d (payload),
//                   x (when it expires, ms on Redis's clock; only with a time to live)
//   P:{channel}:i:K the publication of idempotency key K: "epoch:seq:sha1(flags:payload)",
//                   expiring with the channel's idempotency window
//   P:p:channel     the pub/sub channel every publication of the channel goes to,
//                   and its presence events (redis_presence.hpp)
//   P:latest        hash: every channel of a namespace with latest -> "" (the
//                   channels a latest-value subscribe to a pattern reads)
//
// A publish is one script on the channel's node (EVALSHA: every connection
// to a node loads the log's scripts first; see redis_engine::run_script): it makes the epoch
// if the channel has none (a random one this router proposes), gives the
// next seq, appends to the stream (trimmed to the channel's history size,
// expiring its history TTL after the last publication: its namespace's, or
// history.max_messages and history.ttl_s) and publishes
// [flags u8][epoch u32 LE][seq u64 LE][payload] on P:p:channel. The
// script's answer is the publisher's ack; every router, this one too,
// delivers what arrives on P:p:..., so a channel's publications reach each
// router in seq order, from one stream. The epoch changes only when Redis
// lost the channel's meta hash (history.meta_ttl_s after the last
// publication, or a server that lost its data).
//
// Publications go to Redis in batches. append() queues them, and the first
// of a turn posts the flush to the engine's thread (the turn: until that
// thread runs the flush; on a router with one I/O thread, the core's whole
// call, such as the routing of a WebSocket message of 100 publishes). The
// flush gives each channel's publications, in order, to one script: the
// batch script (publish_batch_script in redis_log.cpp) when there are
// several, which places them at consecutive seqs, applies the idempotency
// rules to each, and publishes them all as ONE message
// (publication_batch.hpp), which every router enters into its core
// together; the publish script above for one alone, whose message routers
// of every version read. A batch holds at most max_batch_publications
// publications and max_batch_bytes of payloads and keys: the script blocks
// Redis while it runs, and its message goes whole to every router.
//
// Interest: a router subscribes (P:p:channel) or pattern-subscribes (the
// pattern's * and > become Redis's *, which also spans dots: coarser, and
// filtered by the topic tree) when a pattern gets its first local
// subscriber, and unsubscribes after its last.
//
// Holes: a router's pub/sub misses what Redis published while its
// subscriber connection was down (a Redis Cluster node that carried it
// failed over, a network blip), though the streams hold it. So a
// publication that comes after a seq this router did not get, in the same
// epoch, waits, with what follows it on its channel, while the missing ones
// are read from the channel's stream; then all go to the local subscribers
// in seq order, as if they had come live (a hole the stream no longer holds
// stays one: the clients see the gap). And when Redis is up again after
// being down, every channel this router delivered from and still has
// interest in is read from its last position (at most 64 reads at a time),
// so that a publication made meanwhile arrives even if nothing follows it.
// A channel's last position is forgotten once no local subscription
// matches it: interest in it later starts afresh.
//
// Threads: the engine runs on an I/O thread (cluster_node's); its answers
// enter the core through `enter` (core_runner::log_answer: under the core's
// lock, with what they routed handed over after), those of one read of the
// sockets together. Calls from the core run under that lock too, on any
// thread, so the log's state needs no lock of its own, but for append()'s
// queue, which the flush takes on the engine's thread without the core's lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "channel_log.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "redis_engine.hpp"

namespace hyperstreams::router {

// A batch's bounds (see above): about a millisecond of script, and a
// message every subscribed router can take at once.
inline constexpr std::size_t max_batch_publications = 256;
inline constexpr std::size_t max_batch_bytes = std::size_t{1} << 20;

struct redis_log_options {
    std::string prefix = "hs";
    std::uint32_t meta_ttl_s = 30 * 24 * 3600;
    std::size_t max_known_channels = 100000;  // positions remembered for acks and duplicates
    // A publish is acked once this many replicas of its master acknowledged
    // it (WAIT after its script), within wait_timeout; else it fails with
    // cluster_outcome_unknown (it was published, and a failover may lose
    // it). 0: acked once the master has it.
    std::uint32_t wait_replicas = 0;
    std::chrono::milliseconds wait_timeout{1000};
};

class redis_log final : public channel_log {
public:
    // Runs an answer under the core's lock (core_runner::log_answer).
    using entry = std::function<void(std::function<void()>)>;

    redis_log(redis_engine& engine, redis_log_options options);
    ~redis_log() override;

    // Before the engine starts.
    void set_entry(entry e) { enter_ = std::move(e); }
    // Before the engine starts: who takes the presence events found on a
    // channel's pub/sub (redis_presence.hpp), under the core's lock, in
    // order with the channel's publications.
    void set_presence_events(std::function<void(std::string_view channel, std::string_view event)> f) {
        presence_events_ = std::move(f);
    }
    // Engine's thread: `call` enters the core in order with the log's answers.
    void enter_call(std::function<void()> call);
    // From the engine (its thread): a message on P:p:..., and Redis up or down.
    void on_message(std::string_view channel, std::string_view payload);
    void on_state(bool up, std::string_view reason);

    void append(std::string_view channel, std::uint8_t flags, bytes_view payload, const publisher& from,
                const channel_options& options, const publish_extras& extras) override;
    void read_since(std::uint64_t ticket, std::string_view channel, position since, read_kind kind,
                    time_point now) override;
    void read_latest(std::uint64_t ticket, std::string_view pattern, time_point now) override;
    [[nodiscard]] bool positions_known() const noexcept override { return false; }
    [[nodiscard]] position last_position(std::string_view channel) const override;
    void interest(std::string_view pattern, interest_change change) override;

    [[nodiscard]] std::uint32_t epoch() const noexcept override { return 0; }  // each channel's is in Redis
    void describe(std::vector<channel_view>& out) const override;

    // Thread-safe.
    [[nodiscard]] bool up() const noexcept { return up_.load(std::memory_order_acquire); }
    // Publications read from the streams to fill holes (see above).
    [[nodiscard]] std::uint64_t recovered() const noexcept { return recovered_.load(std::memory_order_relaxed); }
    // Publications refused for want of Redis or failed there
    // (cluster_unavailable, or cluster_outcome_unknown for an answer lost).
    [[nodiscard]] std::uint64_t publish_failures() const noexcept {
        return publish_failures_.load(std::memory_order_relaxed);
    }
    // Publications made but answered cluster_outcome_unknown because fewer
    // replicas than wait_replicas acknowledged them.
    [[nodiscard]] std::uint64_t unreplicated() const noexcept { return unreplicated_.load(std::memory_order_relaxed); }
    // Messages on the channels it listens to that it dropped as malformed
    // (cluster.bad_message, cluster.bad_batch).
    [[nodiscard]] std::uint64_t bad_messages() const noexcept { return bad_log_.occurrences(); }
    [[nodiscard]] std::string down_reason() const;

    // Names, for tests and the admin view.
    std::string meta_key(std::string_view channel) const;
    std::string stream_key(std::string_view channel) const;
    std::string pubsub_channel(std::string_view channel) const;
    std::string latest_index_key() const;
    // The Redis subscription a pattern takes: (glob, is a pattern).
    std::pair<std::string, bool> redis_interest(std::string_view pattern) const;

private:
    // The channel's meta and stream keys, pub/sub channel and the key of
    // `idempotency_key` (empty without one), as views of names_ (valid
    // until the next call). Engine's thread.
    struct key_names {
        std::string_view meta, stream, pubsub, idempotency;
    };
    key_names names_of(std::string_view channel, std::string_view idempotency_key);
    // Looked up by view: a delivery allocates no key.
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    // The last position seen of each channel.
    using known_map = std::unordered_map<std::string, position, name_hash, std::equal_to<>>;
    // Remembers the last position seen of `channel`, of `count` consecutive
    // seqs of one epoch from `first`; returns how many of them, from the
    // first, were seen already (the rest are after the last seen). `it`:
    // the channel's entry in known_, found already (or end()).
    std::uint32_t advance(std::string_view channel, position first, std::uint32_t count);
    std::uint32_t advance(known_map::iterator it, std::string_view channel, position first, std::uint32_t count);

    // A publication append() queued for the flush: its channel, payload
    // and idempotency key in the queue's bytes, and the channel's options
    // that the scripts take.
    struct queued_publish {
        std::size_t channel_at = 0, channel_size = 0;
        std::size_t payload_at = 0, payload_size = 0;
        std::size_t key_at = 0, key_size = 0;
        std::uint8_t flags = 0;
        std::uint32_t ttl_s = 0;
        std::uint32_t messages_kept = 0;
        std::uint32_t history_ttl_s = 0;
        std::uint32_t idempotency_window_s = 0;
        publisher from;
    };
    // Engine's thread: sends what was queued, channel by channel, in batches.
    void flush();
    std::string_view queued_text(std::size_t at, std::size_t size) const {
        return std::string_view(flushing_bytes_).substr(at, size);
    }
    void publish_one(const queued_publish& q);
    void publish_batch(std::span<const std::size_t> members);
    // The answers of a batch's publications (in its order), or their failure.
    void batch_answered(const std::string& channel, const std::vector<publisher>& from, const redis_result& r);
    // Engine's thread: a batch message of P:p:`name`.
    void on_batch(std::string_view name, std::string_view message);

    void read_since_subscribed(std::uint64_t ticket, const std::string& channel, position since, read_kind kind,
                               time_point now);

    // Latest value: the index of channels (written once per channel, and
    // again after Redis was down), and a read of it.
    void index_latest(std::string_view channel);
    struct latest_job;
    void scan_latest_index(std::shared_ptr<latest_job> job);
    void read_last_entries(std::shared_ptr<latest_job> job);
    void finish_latest(const std::shared_ptr<latest_job>& job, std::string why);

    // Answers wait in `waiting_` until the engine's thread is done with
    // what it read (redis_engine::after_reads), then enter the core
    // together: one hold of the core's lock, and one wake of each
    // transport, for all the messages and acks of a read. The hot ones are
    // kept as data, their bytes in one reused buffer; the others as calls.
    // A batch stays one answer, its entries copied whole: what a router
    // does per publication it receives is only the core's delivery.
    // All keep their order. Engine's thread only.
    struct answer {
        enum class kind : std::uint8_t { deliver, deliver_batch, placed, call };
        kind what = kind::call;
        publication p;            // deliver: without its payload; deliver_batch: its epoch and first seq
        std::uint32_t count = 0;  // deliver_batch: its publications
        // In bytes_: the channel, and the payload (deliver) or the batch's
        // entries as on_batch checked them (deliver_batch).
        std::size_t name_at = 0;
        std::size_t name_size = 0;
        std::size_t payload_at = 0;
        std::size_t payload_size = 0;
        publisher from;  // placed
        position at;     // placed
        std::function<void()> call;
    };
    void enter(answer a);
    // Under the core's lock.
    void run_waiting();
    // `a` (its name and payload in `bytes`) to the local subscribers; with
    // `fill`, a publication after a hole in its channel's seqs starts a fill,
    // and one of a channel being filled waits for it.
    void deliver_answer(const answer& a, std::string_view bytes, bool fill);
    void deliver_batch(const answer& a, std::string_view bytes, std::uint32_t seen);

    // Holes (see above), under the core's lock but for fill_read.
    struct held_answer {
        answer a;           // offsets into `bytes`
        std::string bytes;  // its name, then its payload
    };
    struct fill_state {
        std::uint64_t id = 0;
        position from;                  // the last position delivered before the hole
        std::vector<held_answer> held;  // what came after it, in order
        std::size_t held_bytes = 0;
        std::chrono::steady_clock::time_point started;
        std::uint32_t failed_reads = 0;
    };
    static constexpr std::size_t max_fill_held_bytes = std::size_t{8} << 20;
    // A read that fails for want of Redis (the channel's node unreachable,
    // or failing over) is made again after a pause, 100 ms doubling up to
    // 1 s, until this long after the hole was seen.
    static constexpr std::chrono::milliseconds max_fill_time{10000};
    static constexpr std::size_t max_fills_in_flight = 64;
    void start_fill(std::string_view channel, position from);
    // Engine's thread: reads the stream after `from`.
    void fill_read(std::uint64_t id, std::string channel, position from);
    // The fill's read failed for want of Redis: read again, or give up.
    void fill_failed(std::uint64_t id, const std::string& channel, std::string why);
    // The fill's read answered (`entries` in `epoch`), or failed (no entries).
    void finish_fill(std::uint64_t id, const std::string& channel, std::uint32_t epoch,
                     std::vector<publication> entries, std::string_view why);
    // Channels read after Redis came back, a few at a time.
    void pump_catch_up();

    redis_engine& engine_;
    redis_log_options options_;
    const redis_script_ref publish_script_;
    const redis_script_ref publish_batch_script_;
    const redis_script_ref read_script_;
    // Script arguments that never change, written once.
    const std::string meta_ttl_text_;
    const redis_wait wait_;  // after each publish script
    // wait_ for a script of `channel`: its fence is the channel's `w` key.
    redis_wait wait_for(std::string_view channel) const;
    entry enter_;
    std::function<void(std::string_view, std::string_view)> presence_events_;
    // append()'s queue, under its own lock: appends come under the core's
    // lock, the flush runs on the engine's thread without it.
    std::mutex queue_mu_;
    std::vector<queued_publish> queued_;
    std::string queued_bytes_;
    // What flush() goes through, and the arguments it writes; engine's
    // thread, kept to reuse their memory.
    std::vector<queued_publish> flushing_;
    std::string flushing_bytes_;
    std::vector<std::size_t> flush_order_;
    std::string batch_text_;
    std::vector<std::pair<std::size_t, std::size_t>> batch_spans_;  // (offset, size) of each argument in batch_text_
    std::vector<std::string_view> batch_args_;
    std::string names_;  // names_of's
    std::vector<answer> waiting_;
    std::string bytes_;
    // What run_waiting() goes through; kept to reuse their memory.
    std::vector<answer> running_;
    std::string running_bytes_;
    std::mt19937 rng_;  // engine's thread
    known_map known_;  // under the core's lock
    std::unordered_map<std::string, fill_state, name_hash, std::equal_to<>> filling_;  // under the core's lock
    std::vector<std::string> catch_up_;  // under the core's lock: channels to read, last first
    // The patterns with local subscribers (interest()), under the core's
    // lock: a channel's last position is forgotten only when none is left
    // that matches it.
    std::unordered_set<std::string, name_hash, std::equal_to<>> exact_interest_;
    std::vector<std::string> wildcard_interest_;
    bool still_wanted(std::string_view channel) const;
    std::uint64_t fill_ids_ = 0;         // under the core's lock
    bool was_up_ = false;                // engine's thread: Redis was up once
    std::atomic<std::uint64_t> recovered_{0};
    std::atomic<std::uint64_t> publish_failures_{0};
    std::atomic<std::uint64_t> unreplicated_{0};
    // Warnings that can come once per publication or message.
    log::throttle failed_log_;
    log::throttle unreplicated_log_;
    log::throttle bad_log_;
    std::unordered_set<std::string, name_hash, std::equal_to<>> indexed_;  // under the core's lock
    std::uint64_t indexed_generation_ = 0;        // under the core's lock
    std::atomic<std::uint64_t> index_generation_{0};  // one more each time Redis is up again
    std::atomic<bool> up_{false};
    mutable std::mutex reason_mu_;
    std::string down_reason_ = "connecting to Redis";
};

}  // namespace hyperstreams::router
