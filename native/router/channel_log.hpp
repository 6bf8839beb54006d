// Where pub/sub keeps its channels: the positions (epoch, seq) publications
// get, and the history a resuming subscriber reads. The in-memory log
// (memory_log.hpp) is the first implementation; a log kept elsewhere (a
// distributed engine shared by several routers) is another. The routing
// core calls a log one call at a time, under the core's lock, and a log
// answers through its sink, also under that lock: at once, from inside the
// call (in memory), or later, when its answer arrives (a remote log).
//
// The path of a publish: pub/sub accepts it (name, rate, rights), append()s
// it, and the log says where it placed it (placed(): the publisher's ack)
// and hands it to deliver(), which fans it out to the local subscribers.
// Publications that other routers appended take the same deliver() path,
// and a log delivers the publications of one channel in seq order.
//
// The path of a resume: read_since() asks for what followed a position;
// history_read() answers, maybe after live publications of the channel
// were delivered, which pub/sub holds back for that subscriber and merges
// by seq.
//
// The path of a latest-value subscribe: read_latest() asks for the last
// publication of every channel a pattern matches; latest_read() answers,
// held and merged the same way.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/errc.hpp"
#include "namespaces.hpp"
#include "router_types.hpp"
#include "shared_bytes.hpp"

namespace hyperstreams::router {

// A place in a channel. The epoch belongs to the channel: it is made with
// the channel's log, and changes only when that log was lost (its sequence
// numbers start again at 1 and must not be mistaken for the old ones).
struct position {
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;  // the last publication's; 0: none yet
};

// A payload at a position of a channel. `payload` views bytes `hold` keeps
// alive: any shared buffer, such as the message frame that carried it on the
// delivering router (its encoding, a cache). `hold` is null while the
// payload is only lent for the length of one call.
struct publication {
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint8_t flags = 0;  // frame_flags::json or 0
    bytes_view payload;
    shared_bytes hold;
    // From then on it is gone: neither replayed nor given as the channel's
    // latest value (its time to live, PROTOCOL.md). On this router's clock.
    time_point expires = time_point::max();
};

// True while `p` may still be replayed from history or given as its
// channel's latest value: what every reader of a log's publications asks.
[[nodiscard]] inline bool alive_at(const publication& p, time_point t) noexcept { return t < p.expires; }

// What a publish asks of the log besides its payload.
struct publish_extras {
    // An idempotency key: a repeat of it within the channel's window with
    // the same payload is acked with the first publication's position and
    // not delivered; with another payload it fails with key_reused. Empty:
    // none.
    std::string_view key;
    std::uint32_t ttl_s = 0;  // the message expires this long after it is placed; 0: never
    time_point now{};         // when the router took the publish
};

// Whom a publication's ack goes to.
struct publisher {
    connection_id connection = 0;
    std::uint32_t id = 0;    // the publish frame's id
    bool wants_ack = false;  // the publish had frame_flags::ack_requested
};

// What a subscriber resuming from (epoch, seq) gets. Rules (PROTOCOL.md,
// Resume): the same epoch with everything after seq kept: the rest
// (replay); the same epoch with some of it gone: a gap for what is gone,
// then the rest; another epoch: all there is, no gap (the new epoch on the
// messages tells the client continuity broke).
struct history {
    position now;  // the channel's position when read: the subscribe's ack
    bool gap = false;
    std::uint32_t gap_epoch = 0;
    std::uint64_t gap_seq = 0;
    std::uint32_t gap_count = 0;
    std::vector<publication> replay;  // oldest first, each with `hold` set
};

// The history a resume from `since` gets, from what a log keeps of the
// channel: its position `now`, and the publications still kept (oldest
// first, consecutive seqs, each with `hold` set).
template <typename Kept>
history resume_from(position since, position now, const Kept& kept) {
    history plan;
    plan.now = now;
    const std::uint64_t oldest = kept.empty() ? now.seq + 1 : kept.front().seq;
    std::uint64_t from = 0;  // first seq to replay
    if (since.epoch == now.epoch) {
        if (since.seq >= now.seq) return plan;
        from = since.seq + 1;
        if (from < oldest) {
            plan.gap = true;
            plan.gap_epoch = now.epoch;
            plan.gap_seq = from;
            const std::uint64_t missed = oldest - from;
            plan.gap_count = missed > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(missed);
            from = oldest;
        }
    }
    // Another epoch: the position means nothing here; replay all there is.
    for (const publication& p : kept)
        if (p.seq >= from) plan.replay.push_back(p);
    return plan;
}

// The last publication of a channel, as read_latest() finds it.
struct latest_value {
    std::string_view channel;  // valid for the length of the answer
    publication last;          // with `hold` set
};

// A pattern's literal start: its tokens before the first wildcard, with the
// dot after them ("factory." for "factory.*.temp"; all of a channel name).
// Every channel the pattern matches starts with it.
inline std::string_view literal_prefix(std::string_view pattern) noexcept {
    std::size_t start = 0;
    while (start < pattern.size()) {
        const std::size_t dot = pattern.find('.', start);
        const std::string_view token =
            pattern.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (token == "*" || token == ">") return pattern.substr(0, start);
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return pattern;
}

// What a read_since() wants: the history after a position (a resume), or
// only the channel's position (the ack of a subscribe, where the log does
// not know it locally).
enum class read_kind : std::uint8_t { history, position_only };

// A pattern's first local subscriber arrived, or its last left: a log that
// receives other routers' publications asks only for what matches.
enum class interest_change : std::uint8_t { first_subscriber, last_left };

// One channel as the admin view shows it.
struct channel_view {
    std::string name;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t published = 0;
    std::size_t history_messages = 0;
    std::uint64_t history_bytes = 0;
};

class channel_log {
public:
    // Pub/sub, which the log answers.
    class sink {
    public:
        // The publication of `from` is at `at`: its ack.
        virtual void placed(const publisher& from, position at) = 0;
        // `p` has its position. With `keep`, returns the message frame the
        // deliverer encoded for it (null when it made none), which the log
        // keeps as the storage of the payload instead of copying it. Without,
        // returns null: a log that keeps nothing leaves the frame to the
        // deliverer alone (a reference, and its atomic count, fewer).
        virtual shared_bytes deliver(std::string_view channel, const publication& p, bool keep) = 0;
        // The append could not be made: the publisher gets `code`, and
        // nobody gets the publication.
        virtual void append_failed(const publisher& from, errc code, std::string_view text) = 0;
        // The answer to read_since(ticket, ...).
        virtual void history_read(std::uint64_t ticket, std::string_view channel, history h) = 0;
        // read_since(ticket, ...) could not be answered: the resuming
        // subscribe fails with `code`.
        virtual void history_failed(std::uint64_t ticket, std::string_view channel, errc code,
                                    std::string_view text) = 0;
        // The answer to read_latest(ticket, pattern): `now` is the channel's
        // position when `pattern` is a channel name (else unset); `values`
        // are sorted by channel name, at most one per channel. A failure is
        // history_failed(ticket, pattern, ...).
        virtual void latest_read(std::uint64_t ticket, std::string_view pattern, position now,
                                 std::span<const latest_value> values) = 0;

    protected:
        ~sink() = default;
    };

    virtual ~channel_log() = default;

    // Once, before any other call.
    void bind(sink& s) noexcept { sink_ = &s; }

    // Gives `payload` (lent for this call) the channel's next position
    // (sink::placed) and delivers it (sink::deliver), or fails it
    // (sink::append_failed). `options` are the channel's (its namespace's):
    // the history it keeps, the idempotency window. A repeat of the key of
    // `extras` is only placed (the first publication's position), never
    // delivered again.
    virtual void append(std::string_view channel, std::uint8_t flags, bytes_view payload, const publisher& from,
                        const channel_options& options, const publish_extras& extras) = 0;
    // What followed `since` on `channel` (or, position_only, where the
    // channel is), answered by sink::history_read. The history holds only
    // publications alive at `now`: expired ones are gone, as evicted ones are.
    virtual void read_since(std::uint64_t ticket, std::string_view channel, position since, read_kind kind,
                            time_point now) = 0;
    // The last publication still kept, and alive at `now`, of each channel
    // `pattern` matches (those whose options kept one:
    // channel_options::messages_kept), answered by sink::latest_read. An
    // expired latest value is no value.
    virtual void read_latest(std::uint64_t ticket, std::string_view pattern, time_point now) = 0;
    // True when last_position() is the channel's position (a log whose
    // channels are all here); else a subscribe reads it (position_only).
    [[nodiscard]] virtual bool positions_known() const noexcept = 0;
    // The position a subscribe is acked with: for a channel nothing was
    // published to, the epoch it would get.
    [[nodiscard]] virtual position last_position(std::string_view channel) const = 0;
    virtual void interest(std::string_view pattern, interest_change change) = 0;

    // For the admin view.
    [[nodiscard]] virtual std::uint32_t epoch() const noexcept = 0;
    virtual void describe(std::vector<channel_view>& out) const = 0;

protected:
    sink* sink_ = nullptr;
};

}  // namespace hyperstreams::router
