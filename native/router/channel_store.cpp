#include "channel_store.hpp"

#include <algorithm>
#include <limits>

namespace hyperstreams::router {

channel_state& channel_store::get(std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) {
        it = channels_.emplace(std::string(channel), channel_state{}).first;
        it->second.epoch = epoch_;
    }
    return it->second;
}

const channel_state* channel_store::find(std::string_view channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? nullptr : &it->second;
}

void channel_store::remember(channel_state& c, std::uint64_t seq, shared_bytes encoded) {
    ++c.published;
    if (limits_.max_messages == 0 || limits_.max_bytes == 0) return;
    const std::uint64_t size = encoded->size();
    if (size > limits_.max_bytes) {
        // Keeping it would evict everything: the history restarts after it.
        c.history.clear();
        c.history_bytes = 0;
        return;
    }
    c.history.emplace_back(seq, std::move(encoded));
    c.history_bytes += size;
    while (c.history.size() > limits_.max_messages || c.history_bytes > limits_.max_bytes) {
        c.history_bytes -= c.history.front().second->size();
        c.history.pop_front();
    }
}

resume_plan channel_store::plan_resume(std::string_view channel, std::uint32_t epoch,
                                       std::uint64_t seq) const {
    resume_plan plan;
    const channel_state* c = find(channel);
    const std::uint64_t last = c ? c->last_seq : 0;
    // First sequence number still in history (last + 1 when the history is empty).
    const std::uint64_t oldest = c && !c->history.empty() ? c->history.front().first : last + 1;
    const auto clamp = [](std::uint64_t n) {
        return static_cast<std::uint32_t>(std::min<std::uint64_t>(n, std::numeric_limits<std::uint32_t>::max()));
    };

    std::uint64_t from = 0;  // first seq to replay
    if (epoch != epoch_) {
        // The position means nothing in this epoch: replay all there is; the
        // new epoch on the first message tells the client continuity broke.
        from = 0;
    } else {
        if (seq >= last) return plan;
        from = seq + 1;
        if (from < oldest) {
            plan.gap = true;
            plan.gap_epoch = epoch_;
            plan.gap_seq = from;
            plan.gap_count = clamp(oldest - from);
            from = oldest;
        }
    }
    if (c == nullptr) return plan;
    for (const auto& [s, bytes] : c->history)
        if (s >= from) plan.replay.push_back(bytes);
    return plan;
}

}  // namespace hyperstreams::router
