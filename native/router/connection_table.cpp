#include "connection_table.hpp"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <limits>
#include <utility>

#include "log.hpp"

namespace hyperstreams::router {
namespace {

std::uint16_t code_of(errc e) noexcept { return static_cast<std::uint16_t>(e); }

bytes_view text_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

connection_id next_connection_id() noexcept {
    static std::atomic<connection_id> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

connection& connection_table::add(connection_init init, time_point now) {
    connection& ref = connections_.try_emplace(init.id).first->second;
    ref.id = init.id;
    ref.transport = init.transport;
    ref.remote = std::move(init.remote);
    if (!init.curve_key.empty()) ref.extras_for_writing().curve_key = std::move(init.curve_key);
    ref.session = std::move(init.session);
    ref.out = std::move(init.out);
    ref.served_by = std::move(init.served_by);
    ref.opened = ref.last_received = ref.last_queued = now;
    metrics_.of(ref.transport).connections_opened.fetch_add(1, std::memory_order_relaxed);
    metrics_.of(ref.transport).connections.fetch_add(1, std::memory_order_relaxed);
    return ref;
}

void connection_table::erase(connection_id id) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    metrics_.of(it->second.transport).connections.fetch_sub(1, std::memory_order_relaxed);
    connections_.erase(it);
    // The slices may hold its outbox: sliced again at the next run.
    slices_.clear();
    sliced_ = nullptr;
}

std::vector<connection_id> connection_table::ids() const {
    std::vector<connection_id> out;
    out.reserve(connections_.size());
    for (const auto& [id, c] : connections_) out.push_back(id);
    return out;
}

// ---------------------------------------------------------------- outgoing

lane_target connection_table::target_of(const connection& c, slow_policy policy) const {
    return lane_target{c.out, c.session, c.id, c.transport, policy};
}

void connection_table::append(const std::shared_ptr<lane>& l, lane_op op) {
    if (l) {
        if (l->append(std::move(op))) lanes_due_.push_back(l);
        return;
    }
    // The core's own lane is drained at once, as the core ran on its thread:
    // what it queues is in the outbox when the call returns. Closing a
    // connection that overflowed queues its close here again, which the
    // loop drains.
    (void)own_lane_->append(std::move(op));
    if (draining_own_) return;
    draining_own_ = true;
    for (;;) {
        own_outcome_.clear();
        own_lane_->drain(metrics_, own_outcome_);
        wakes_.insert(wakes_.end(), own_outcome_.wakes.begin(), own_outcome_.wakes.end());
        if (own_outcome_.overflowed.empty()) break;
        for (const connection_id id : own_outcome_.overflowed) overflowed(id);
    }
    draining_own_ = false;
}

void connection_table::append(connection& c, lane_op op) { append(c.served_by, std::move(op)); }

void connection_table::take_lanes(std::vector<std::shared_ptr<lane>>& out) {
    out.insert(out.end(), std::make_move_iterator(lanes_due_.begin()), std::make_move_iterator(lanes_due_.end()));
    lanes_due_.clear();
}

void connection_table::take_wakes(wake_list& out) {
    out.insert(out.end(), std::make_move_iterator(wakes_.begin()), std::make_move_iterator(wakes_.end()));
    wakes_.clear();
}

void connection_table::overflowed(connection_id id) {
    connection* c = find(id);
    if (c == nullptr || c->state == connection_state::closing) return;
    metrics_.of(c->transport).slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    close(*c, errc::slow_consumer, "outgoing queue full", queued_data::discard);
}

void connection_table::deliver(connection& c, const shared_bytes& bytes, frame_class cls, slow_policy policy) {
    if (!bytes || c.state == connection_state::closing) return;
    flush_run();  // every connection gets its frames in the order the core made them
    ++c.frames_queued;
    lane_op op;
    op.what = lane_op::kind::frame;
    op.cls = cls;
    op.policy = policy;
    op.bytes = bytes;
    op.target = target_of(c, policy);
    append(c, std::move(op));
}

void connection_table::add_to_run(const std::vector<delivery_target>& targets, std::uint64_t generation,
                                  shared_bytes message) {
    if (run_targets_ != &targets || run_generation_ != generation || !run_sizes_.empty()) {
        flush_run();
        run_targets_ = &targets;
        run_generation_ = generation;
    }
    run_.push_back(std::move(message));
}

bool connection_table::add_encoded_to_run(const std::vector<delivery_target>& targets, std::uint64_t generation,
                                          const frame& m) {
    const std::size_t size = encoded_size(m);
    if (size > std::numeric_limits<std::uint32_t>::max()) return false;
    // A run in place is handed over by the block: the buffer stays small.
    if (run_targets_ != &targets || run_generation_ != generation || !run_.empty() ||
        (!run_sizes_.empty() && run_encoded_.size() + size > run_block_bytes)) {
        flush_run();
        run_targets_ = &targets;
        run_generation_ = generation;
    }
    const std::size_t at = run_encoded_.size();
    run_encoded_.resize(at + size);
    if (encode_to(m, std::span<std::uint8_t>(run_encoded_).subspan(at))) {
        run_encoded_.resize(at);
        return false;
    }
    run_sizes_.push_back(static_cast<std::uint32_t>(size));
    return true;
}

void connection_table::slice_run_targets() {
    if (sliced_ == run_targets_ && sliced_generation_ == run_generation_) return;
    std::vector<std::pair<lane*, std::vector<lane_target>>> by_lane;  // a route reaches few lanes
    std::vector<std::shared_ptr<lane>> lanes;
    for (const auto& [target, policy] : *run_targets_) {
        const connection& c = *target;
        auto it = std::find_if(by_lane.begin(), by_lane.end(),
                               [&](const auto& s) { return s.first == c.served_by.get(); });
        if (it == by_lane.end()) {
            by_lane.emplace_back(c.served_by.get(), std::vector<lane_target>());
            lanes.push_back(c.served_by);
            it = by_lane.end() - 1;
        }
        it->second.push_back(target_of(c, policy));
    }
    slices_.clear();
    for (std::size_t i = 0; i < by_lane.size(); ++i)
        slices_.push_back(lane_slice{std::move(lanes[i]),
                                     std::make_shared<const std::vector<lane_target>>(std::move(by_lane[i].second))});
    sliced_ = run_targets_;
    sliced_generation_ = run_generation_;
}

void connection_table::flush_run() {
    if (published_ != 0) {
        metrics_.published.fetch_add(std::exchange(published_, 0), std::memory_order_relaxed);
    }
    if (run_.empty() && run_sizes_.empty()) return;
    // One run of the frames, shared by every lane it reaches.
    const frame_run_ptr run = run_.empty() ? frame_run::in_place(run_encoded_, run_sizes_, run_block_bytes)
                                           : frame_run::laid_out(std::move(run_), run_block_bytes);
    run_.clear();
    run_encoded_.clear();
    run_sizes_.clear();
    std::size_t reached = 0;
    for (const auto& [target, policy] : *run_targets_) {
        if (target->state == connection_state::closing) continue;
        target->frames_queued += run->count;
        ++reached;
    }
    metrics_.delivered.fetch_add(reached * run->count, std::memory_order_relaxed);
    slice_run_targets();
    // Copied: the core's own lane pushes at once, and a slow consumer it
    // closes comes back here.
    const std::vector<lane_slice> slices = slices_;
    for (const lane_slice& s : slices) {
        lane_op op;
        op.what = lane_op::kind::run;
        op.run = run;
        op.run_targets = s.targets;
        append(s.to, std::move(op));
    }
}

void connection_table::send(connection& c, const frame& f) {
    deliver(c, encode_shared(f), frame_class::control, slow_policy::drop_oldest);
}

void connection_table::send_error(connection& c, std::uint32_t id, errc code, std::string_view text) {
    frame e;
    e.kind = frame_kind::error;
    e.id = id;
    e.code = code_of(code);
    e.payload = text_bytes(text);
    metrics_.error_sent(e.code);
    HS_LOG(debug, "conn.error_sent").kv("conn", c.id).kv("id", id).kv("code", errc_name(e.code)).kv("text", text);
    send(c, e);
}

void connection_table::send_ack(connection& c, std::uint32_t id, position at) {
    frame a;
    a.kind = frame_kind::ack;
    a.id = id;
    a.epoch = at.epoch;
    a.seq = at.seq;
    send(c, a);
}

// ---------------------------------------------------------------- closing

void connection_table::close(connection& c, errc code, std::string_view reason, queued_data data) {
    shared_bytes farewell;
    if (code_of(code) != 0) {
        frame g;
        g.kind = frame_kind::goodbye;
        g.code = code_of(code);
        g.payload = text_bytes(reason);
        farewell = encode_shared(g);
    }
    close_with(c, std::move(farewell), code, reason, data);
}

void connection_table::close_with(connection& c, shared_bytes farewell, errc code, std::string_view reason,
                                  queued_data data) {
    if (c.state == connection_state::closing) return;
    flush_run();  // what was routed to it before goes before the farewell
    c.state = connection_state::closing;
    metrics_.connection_closed(code_of(code));
    if (code == errc::going_away || code_of(code) == 0) {
        HS_LOG(info, "conn.close").kv("conn", c.id)
            .kv("code", code_of(code) == 0 ? std::string_view("closed") : errc_name(code_of(code)));
    } else {
        HS_LOG(warn, "conn.close").kv("conn", c.id).kv("code", errc_name(code_of(code)))
            .kv("reason", reason);
    }
    lane_op op;
    op.what = lane_op::kind::close;
    op.data = data;
    op.bytes = std::move(farewell);
    op.target = target_of(c, slow_policy::drop_oldest);
    append(c, std::move(op));
    doomed_.push_back(c.id);
}

void connection_table::lost(connection& c) {
    if (c.state == connection_state::closing) return;
    HS_LOG(info, "conn.closed").kv("conn", c.id).kv("by", "peer");
    metrics_.connection_closed(0);
    c.state = connection_state::closing;
    (void)c.out->close(nullptr, queued_data::discard);  // nobody is left to wake
    doomed_.push_back(c.id);
}

bool connection_table::take_doomed(connection_id& id) {
    if (doomed_.empty()) return false;
    id = doomed_.back();
    doomed_.pop_back();
    return true;
}

}  // namespace hyperstreams::router
