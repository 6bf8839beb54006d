// The in-memory store of channels behind memory_log: per channel the epoch,
// the last sequence number given out and a bounded history of publications
// for resume. Socket-free, one call at a time.
//
// Resume rules: a subscriber sends the last position it saw, (epoch, seq).
//   - same epoch, everything after seq still in history: the router replays
//     seq+1..last with the `replayed` flag;
//   - same epoch, some of it evicted: a gap {epoch, seq+1, count} for what is
//     gone, then the replay of what is left;
//   - another epoch (the router restarted, the client comes from another
//     router, or the channel was forgotten and created again): the replay of
//     the whole history, no gap: the first message carries the new epoch,
//     which tells the client that continuity broke and that how many
//     messages it missed is unknown.
// A gap always has count >= 1. The router never answers a resume with
// history_gone.
//
// Memory is bounded three ways: history per channel (messages and bytes),
// history over all channels (max_total_bytes: the least recently published
// channels lose their history first), and the number of channels
// (max_channels: the least recently published channel is forgotten). A
// channel created after any channel was forgotten gets a new epoch (the
// router's epoch plus the number of channels forgotten so far), so that its
// sequence numbers, which start again at 1, can never be mistaken for the
// ones its earlier incarnation gave out.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "channel_log.hpp"
#include "hyperstreams/names.hpp"
#include "idempotency.hpp"

namespace hyperstreams::router {

struct history_limits {
    std::uint32_t max_messages = 0;     // per channel, unless its namespace says otherwise
    std::uint64_t max_bytes = 0;        // per channel
    std::uint64_t max_total_bytes = 0;  // over all channels
    std::uint32_t max_channels = 100000;
};

struct channel_state {
    std::string_view name;  // the store's key
    std::uint32_t epoch = 0;
    std::uint64_t last_seq = 0;  // 0: nothing published yet
    std::deque<publication> history;  // each with `hold` set
    std::uint64_t history_bytes = 0;
    std::uint32_t max_messages = 0;  // history_limits::max_messages, or its namespace's history_size
    std::uint64_t published = 0;
    std::list<channel_state*>::iterator recency;  // in channel_store::recency_
    std::list<channel_state*>::iterator keeping;  // in channel_store::keeping_, when history is not empty
    std::unique_ptr<idempotency_keys> keys;  // made by the channel's first publish with a key
};

class channel_store {
public:
    channel_store(std::uint32_t epoch, history_limits limits) : epoch_(epoch), limits_(limits) {}
    channel_store(const channel_store&) = delete;
    channel_store& operator=(const channel_store&) = delete;

    // The state of `channel` for a publish, created on first use (which may
    // forget the least recently published channel); now the most recent.
    channel_state& get(std::string_view channel);
    const channel_state* find(std::string_view channel) const;
    // Makes `c` the most recently published channel, as get() does: for a
    // caller that kept `c` from get() while version() stayed the same.
    void touch(channel_state& c) { recency_.splice(recency_.end(), recency_, c.recency); }
    // Changes whenever a channel is forgotten: a channel_state reference
    // from get() stays valid for as long as this stays the same.
    std::uint64_t version() const noexcept { return forgotten_; }
    // The epoch of `channel`: its own, or the one it would be created with.
    [[nodiscard]] std::uint32_t epoch_of(std::string_view channel) const;

    // Gives out the next sequence number of `c` and keeps `p` (which
    // carries it, and whose `hold` keeps its payload) in the history within
    // the limits. A publication counts as the bytes of its message frame.
    [[nodiscard]] std::uint64_t next_seq(channel_state& c) { return ++c.last_seq; }
    void remember(channel_state& c, publication&& p);
    // False when `c` keeps no history.
    bool keeps_history(const channel_state& c) const noexcept { return c.max_messages != 0 && limits_.max_bytes != 0; }

    // Calls f(name, last publication) for every channel `pattern` matches
    // whose last publication is still in its history and alive at `now`, in
    // name order. Walks only the channels that share the pattern's literal start.
    template <typename F>
    void each_last(std::string_view pattern, time_point now, F&& f) const {
        const std::string_view prefix = literal_prefix(pattern);
        for (auto it = channels_.lower_bound(prefix); it != channels_.end(); ++it) {
            const std::string_view name = it->first;
            if (name.substr(0, prefix.size()) != prefix) break;
            const channel_state& c = it->second;
            if (!c.history.empty() && c.history.back().seq == c.last_seq && alive_at(c.history.back(), now) &&
                pattern_matches(pattern, name))
                f(name, c.history.back());
        }
    }

    // What a subscriber resuming from (epoch, seq) on `channel` at `now`
    // must get: publications expired by then are gone, as evicted ones are
    // (the default `now` comes before any expiry).
    [[nodiscard]] history plan_resume(std::string_view channel, std::uint32_t epoch, std::uint64_t seq,
                                      time_point now = {}) const;

    std::uint32_t epoch() const noexcept { return epoch_; }
    std::size_t size() const noexcept { return channels_.size(); }
    std::uint64_t history_bytes() const noexcept { return total_bytes_; }
    std::uint64_t forgotten() const noexcept { return forgotten_; }
    const std::map<std::string, channel_state, std::less<>>& all() const noexcept { return channels_; }

private:
    void clear_history(channel_state& c);
    void forget_least_recent();

    std::uint32_t epoch_;
    history_limits limits_;
    std::map<std::string, channel_state, std::less<>> channels_;
    // Least recently published first. Map nodes never move, so the pointers hold.
    std::list<channel_state*> recency_;
    // The channels with history, least recently published first.
    std::list<channel_state*> keeping_;
    std::uint64_t total_bytes_ = 0;
    std::uint64_t forgotten_ = 0;
};

}  // namespace hyperstreams::router
