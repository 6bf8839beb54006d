#include "channel_store.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <vector>

namespace hyperstreams::router {

channel_state& channel_store::get(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) {
        while (limits_.max_channels != 0 && channels_.size() >= limits_.max_channels) forget_least_recent();
        const std::uint32_t epoch = epoch_of(channel);
        it = channels_.emplace(std::string(channel), channel_state{}).first;
        channel_state& c = it->second;
        c.name = it->first;
        c.epoch = epoch;
        c.max_messages = limits_.max_messages;
        c.recency = recency_.insert(recency_.end(), &c);
        return c;
    }
    channel_state& c = it->second;
    touch(c);
    return c;
}

const channel_state* channel_store::find(std::string_view channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? nullptr : &it->second;
}

std::uint32_t channel_store::epoch_of(std::string_view channel) const {
    if (const channel_state* c = find(channel)) return c->epoch;
    return epoch_ + static_cast<std::uint32_t>(forgotten_);
}

void channel_store::clear_history(channel_state& c) {
    if (c.history.empty()) return;
    total_bytes_ -= c.history_bytes;
    c.history.clear();
    c.history_bytes = 0;
    keeping_.erase(c.keeping);
}

void channel_store::forget_least_recent() {
    channel_state* victim = recency_.front();
    recency_.pop_front();
    clear_history(*victim);
    channels_.erase(channels_.find(victim->name));
    ++forgotten_;
}

namespace {

// A message frame's bytes besides its channel and payload.
const std::uint64_t message_overhead = header_size + ext_size(frame_kind::message);

// What delivering `p` costs: its message frame.
std::uint64_t size_of(std::string_view channel, const publication& p) noexcept {
    return message_overhead + channel.size() + p.payload.size();
}

}  // namespace

void channel_store::remember(channel_state& c, publication&& p) {
    ++c.published;
    if (!keeps_history(c)) return;
    const std::uint64_t size = size_of(c.name, p);
    if (size > limits_.max_bytes) {
        // Keeping it would evict everything: the history restarts after it.
        clear_history(c);
        return;
    }
    if (c.history.empty())
        c.keeping = keeping_.insert(keeping_.end(), &c);
    else
        keeping_.splice(keeping_.end(), keeping_, c.keeping);
    c.history.push_back(std::move(p));
    c.history_bytes += size;
    total_bytes_ += size;
    while (c.history.size() > c.max_messages || c.history_bytes > limits_.max_bytes) {
        const std::uint64_t dropped = size_of(c.name, c.history.front());
        c.history_bytes -= dropped;
        total_bytes_ -= dropped;
        c.history.pop_front();
    }
    // Over the budget of all channels: the least recently published lose
    // theirs (`c`, the most recent, last).
    while (limits_.max_total_bytes != 0 && total_bytes_ > limits_.max_total_bytes && !keeping_.empty())
        clear_history(*keeping_.front());
}

history channel_store::plan_resume(std::string_view channel, std::uint32_t epoch, std::uint64_t seq,
                                   time_point now) const {
    const channel_state* c = find(channel);
    const position at{epoch_of(channel), c ? c->last_seq : 0};
    if (c == nullptr) return resume_from(position{epoch, seq}, at, std::deque<publication>{});
    const auto expired = [now](const publication& p) { return !alive_at(p, now); };
    if (std::none_of(c->history.begin(), c->history.end(), expired))
        return resume_from(position{epoch, seq}, at, c->history);
    std::vector<publication> alive;
    std::remove_copy_if(c->history.begin(), c->history.end(), std::back_inserter(alive), expired);
    return resume_from(position{epoch, seq}, at, alive);
}

}  // namespace hyperstreams::router
