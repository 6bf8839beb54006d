// The routing core's connections and the one way out of the core: every
// frame a room of the core sends goes through here, into the lane of the
// connection's I/O thread (lane.hpp), in the order the core made it. The
// lanes push into the outboxes once the core's mutex is released.
//
// Fan-out comes in runs: the message frames of consecutive publishes that
// go to the same subscribers are held and handed to each lane as one op
// (the frames shared, and the lane's subscribers of the run) instead of one
// per message and subscriber. The run's frames are copied side by side into
// one block when it is handed over, once for all its subscribers, so that
// each writes them from there as one buffer (frame_run::laid_out and
// in_place, ws_gather.hpp). The run is handed over before any other frame
// is, so every connection still gets its frames in the order the core made
// them. The targets of a run belong to whoever started it
// (pub/sub's route), which must flush_run() before it changes them.
//
// Closing a connection only marks it: it leaves the core's tables when the
// core reaps it (take_doomed), so a room may close connections while it
// walks its own tables.
#pragma once

#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "authorizer.hpp"
#include "channel_log.hpp"
#include "connection.hpp"
#include "hyperstreams/errc.hpp"
#include "lane.hpp"
#include "metrics.hpp"

namespace hyperstreams::router {

// A subscriber of a run and its slow-consumer policy.
using delivery_target = std::pair<connection*, slow_policy>;

// What the authorizer knows of a connection.
inline principal who(const connection& c) {
    return principal{c.id, c.transport, c.role, c.name, c.address, c.curve_key()};
}

class connection_table {
public:
    // Transports to wake; a few fit without an allocation.
    using wake_list = boost::container::small_vector<std::weak_ptr<link>, 8>;

    explicit connection_table(metrics& m) : metrics_(m) {}
    connection_table(const connection_table&) = delete;
    connection_table& operator=(const connection_table&) = delete;

    connection& add(connection_init init, time_point now);
    [[nodiscard]] connection* find(connection_id id) {
        auto it = connections_.find(id);
        return it == connections_.end() ? nullptr : &it->second;
    }
    [[nodiscard]] const connection* find(connection_id id) const {
        auto it = connections_.find(id);
        return it == connections_.end() ? nullptr : &it->second;
    }
    // Gone from every table: the last step of removing a connection.
    void erase(connection_id id);
    std::size_t size() const noexcept { return connections_.size(); }
    bool empty() const noexcept { return connections_.empty(); }
    const std::unordered_map<connection_id, connection>& all() const noexcept { return connections_; }
    // The ids of every connection, for a walk that may close some.
    std::vector<connection_id> ids() const;

    // Outgoing, in order. Nothing reaches a connection that is closing.
    void send(connection& c, const frame& f);
    void send_error(connection& c, std::uint32_t id, errc code, std::string_view text);
    void send_ack(connection& c, std::uint32_t id, position at = {});
    void deliver(connection& c, const shared_bytes& bytes, frame_class cls, slow_policy policy);
    // Adds `message` to the run to `targets`, handing over the run before
    // when it went elsewhere. `targets` must stay as it is until the run is
    // flushed; `generation` changes whenever its content does (the table
    // keeps it sliced by lane until then).
    void add_to_run(const std::vector<delivery_target>& targets, std::uint64_t generation, shared_bytes message);
    // The same with the message frame `m` encoded in place, beside the
    // run's other frames, with no block of its own (frame_run::in_place):
    // for a run none of whose subscribers keeps the latest per channel, of
    // a message nobody else keeps (no history here, no resume held). False
    // when `m` cannot be encoded: it reaches nobody.
    bool add_encoded_to_run(const std::vector<delivery_target>& targets, std::uint64_t generation, const frame& m);
    void flush_run();
    // A publication was delivered (to a run, or to nobody): counted in the
    // metrics when the run is flushed, once per run rather than once per
    // publication (an atomic add each).
    void count_published() noexcept { ++published_; }

    // Ends a connection: a goodbye with `code` (none when 0), the outbox
    // closed, and the connection doomed.
    void close(connection& c, errc code, std::string_view reason, queued_data data);
    // The same with another farewell frame (a redirect).
    void close_with(connection& c, shared_bytes farewell, errc code, std::string_view reason, queued_data data);
    // The transport lost it: nothing more is sent.
    void lost(connection& c);
    // The next doomed connection, to be removed; false when none is.
    [[nodiscard]] bool take_doomed(connection_id& id);

    // A lane found connection `id`'s outbox full and closed it: the
    // connection is closed as a slow consumer.
    void overflowed(connection_id id);

    // The I/O threads' lanes that were idle and now hold ops: each must be
    // drained on its thread, once the core's mutex is released.
    void take_lanes(std::vector<std::shared_ptr<lane>>& out);
    // The transports to wake of connections with no lane of their own
    // (served by the core's own lane).
    void take_wakes(wake_list& out);

private:
    // Queues `op` to `c`'s lane.
    void append(connection& c, lane_op op);
    void append(const std::shared_ptr<lane>& l, lane_op op);
    lane_target target_of(const connection& c, slow_policy policy) const;
    // Slices the run's targets by lane, unless they are sliced already.
    void slice_run_targets();

    // The blocks a run's frames are copied into (frame_run::laid_out,
    // frame_run::in_place). A queued piece keeps its whole block alive,
    // while its outbox counts only the piece. Outboxes that keep the latest
    // per channel (and so drop from the middle of their queue) take a run's
    // frames one by one, each in its own block: a run with such a subscriber
    // is never encoded in place. The others queue and drop first in, first
    // out, so beyond what they count they pin at most the rest of the block
    // at their queue's head (a block holds at most what one write_some
    // carries).
    static constexpr std::size_t run_block_bytes = 64u << 10;

    metrics& metrics_;
    // Connections in place (the map's nodes do not move): one heap block each.
    std::unordered_map<connection_id, connection> connections_;
    std::vector<connection_id> doomed_;
    // The run's frames: in blocks of their own (add_to_run), or encoded side
    // by side in run_encoded_ with their sizes (add_encoded_to_run). A run
    // is one or the other: adding the other kind flushes it first.
    std::vector<shared_bytes> run_;
    std::vector<std::uint8_t> run_encoded_;
    std::vector<std::uint32_t> run_sizes_;
    std::uint64_t published_ = 0;  // count_published() since the last flush_run()
    const std::vector<delivery_target>* run_targets_ = nullptr;
    std::uint64_t run_generation_ = 0;
    // The targets of the last route a run took, by lane: one shared list
    // per lane, which every run along the route hands over as it is.
    struct lane_slice {
        std::shared_ptr<lane> to;  // null: the core's own lane
        std::shared_ptr<const std::vector<lane_target>> targets;
    };
    std::vector<lane_slice> slices_;
    const std::vector<delivery_target>* sliced_ = nullptr;
    std::uint64_t sliced_generation_ = 0;
    // Connections with no lane of their own: drained as the core appends.
    std::shared_ptr<lane> own_lane_ = std::make_shared<lane>();
    lane_outcome own_outcome_;  // its drains', kept for its capacity
    bool draining_own_ = false;
    std::vector<std::weak_ptr<link>> wakes_;        // until take_wakes()
    std::vector<std::shared_ptr<lane>> lanes_due_;  // until take_lanes()
};

}  // namespace hyperstreams::router
