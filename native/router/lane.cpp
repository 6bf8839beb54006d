#include "lane.hpp"

#include <string_view>
#include <utility>

#include "metrics.hpp"

namespace hyperstreams::router {
namespace {

// The goodbye of a connection whose outbox overflowed, as connection_table's
// close() makes it.
shared_bytes slow_consumer_goodbye() {
    static constexpr std::string_view reason = "outgoing queue full";
    frame g;
    g.kind = frame_kind::goodbye;
    g.code = static_cast<std::uint16_t>(errc::slow_consumer);
    g.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size());
    return encode_shared(g);
}

}  // namespace

bool lane::append(lane_op op) {
    std::lock_guard lock(mu_);
    if (stopped_) return false;
    pending_.push_back(std::move(op));
    return !std::exchange(scheduled_, true);
}

void lane::schedule(std::function<void()> drain) {
    posts_.fetch_add(1, std::memory_order_relaxed);
    post(std::move(drain));
}

void lane::stop() {
    std::vector<lane_op> dropped;
    std::lock_guard lock(mu_);
    stopped_ = true;
    dropped.swap(pending_);
}

void lane::drain(metrics& m, lane_outcome& out) {
    {
        std::lock_guard lock(mu_);
        running_.swap(pending_);
        scheduled_ = false;
    }
    for (const lane_op& op : running_) push(op, m, out);
    running_.clear();
}

void lane::push(const lane_op& op, metrics& m, lane_outcome& out) {
    switch (op.what) {
        case lane_op::kind::run:
            // A connection closed since the route was sliced has its outbox
            // closed by an earlier op: the push is refused.
            for (const lane_target& t : *op.run_targets) settle(t, t.out->push_messages(op.run, t.policy), m, out);
            return;
        case lane_op::kind::frame:
            settle(op.target, op.target.out->push(op.bytes, op.cls, op.policy), m, out);
            return;
        case lane_op::kind::close:
            if (op.target.out->close(op.bytes, op.data)) out.wakes.push_back(op.target.session);
            return;
    }
}

void lane::settle(const lane_target& t, const push_result& r, metrics& m, lane_outcome& out) {
    if (r.dropped > 0) m.local(t.transport).dropped.add(r.dropped);
    if (r.wake) out.wakes.push_back(t.session);
    if (r.status == push_status::overflow) {
        if (t.out->close(slow_consumer_goodbye(), queued_data::discard)) out.wakes.push_back(t.session);
        out.overflowed.push_back(t.id);
    }
}

}  // namespace hyperstreams::router
