// A lane: the connections served by one I/O thread, and the queue of what
// the routing core sent them that this thread has not yet pushed into their
// outboxes.
//
// The core appends under its mutex, in the order it makes the frames: a run
// of messages is one op holding the run's frames (shared by every lane the
// run reaches) and the lane's slice of its subscribers (shared by every run
// along the same route); any other frame, or a close, is an op of one
// connection. Once the core's mutex is released
// the lane is drained on its own thread: inline when the core ran there,
// otherwise by one post, however many ops and subscribers it holds (the
// posted flag). So a publish crosses to each other I/O thread once per
// batch, not once per subscriber, and the pushes, the outboxes' locks and
// lines stay with the thread that writes to the sockets. Every frame to a
// connection goes through its lane, so none overtakes a queued run.
//
// What the core needed from a push comes back from drain(): the sessions
// to wake and the connections that overflowed, whose outbox the lane has
// already closed with the slow_consumer goodbye (nothing queued after the
// overflow reaches the peer); the core then closes them (connection_table::
// overflowed). Drop counts go to the metrics and stay in the outbox.
//
// The base class is a lane with no thread of its own: whoever owns it
// drains it (the core's own lane, for connections without a transport
// thread, as in the core's unit tests). io_lane (io_lane.hpp) gives a lane
// an I/O thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "outbox.hpp"
#include "router_types.hpp"
#include "shared_bytes.hpp"

namespace hyperstreams::router {

class metrics;

// One connection an op reaches.
struct lane_target {
    std::shared_ptr<outbox> out;
    std::weak_ptr<link> session;
    connection_id id = 0;
    transport_kind transport = transport_kind::websocket;
    slow_policy policy = slow_policy::drop_oldest;  // a run's messages
};

struct lane_op {
    enum class kind : std::uint8_t {
        run,    // `run` to every target, as message frames under each target's policy
        frame,  // `bytes` to the one target, of class `cls` under `policy`
        close,  // the one target's outbox closed with `bytes` as farewell (may be null)
    };
    kind what = kind::frame;
    frame_class cls = frame_class::control;
    slow_policy policy = slow_policy::drop_oldest;
    queued_data data = queued_data::send;
    frame_run_ptr run;
    // A run's: the lane's slice of the route, shared by every run along it.
    std::shared_ptr<const std::vector<lane_target>> run_targets;
    shared_bytes bytes;
    lane_target target;  // frame, close
};

struct lane_outcome {
    std::vector<std::weak_ptr<link>> wakes;  // outboxes that asked for their consumer
    std::vector<connection_id> overflowed;   // closed as slow consumers: the core must close them
    void clear() {
        wakes.clear();
        overflowed.clear();
    }
};

class lane {
public:
    lane() = default;
    virtual ~lane() = default;
    lane(const lane&) = delete;
    lane& operator=(const lane&) = delete;

    // Any thread (the core's, under its mutex). True when the lane was idle:
    // the caller must then have it drained, by drain() on the lane's thread
    // or schedule() elsewhere; until then further appends return false.
    [[nodiscard]] bool append(lane_op op);

    // The lane's thread: pushes every op queued so far into its outboxes,
    // in order, and adds to `out` what the core and the transports must
    // hear of. Ops appended meanwhile wait for the next drain.
    void drain(metrics& m, lane_outcome& out);

    // True on the lane's own thread; never for a lane without one.
    virtual bool here() const noexcept { return false; }
    // Runs `drain` on the lane's thread once; counted in posts().
    void schedule(std::function<void()> drain);
    std::uint64_t posts() const noexcept { return posts_.load(std::memory_order_relaxed); }

protected:
    // Hands `fn` to the lane's thread; a lane without one runs nothing.
    virtual void post(std::function<void()> fn) { (void)fn; }
    // The lane's thread is gone: ops are refused from now on.
    void stop();

private:
    void push(const lane_op& op, metrics& m, lane_outcome& out);
    // Counts what a push dropped, notes a wake-up, and closes the outbox of
    // a connection that overflowed.
    void settle(const lane_target& t, const push_result& r, metrics& m, lane_outcome& out);

    std::mutex mu_;
    std::vector<lane_op> pending_;  // guarded by mu_
    std::vector<lane_op> running_;  // the draining thread's
    bool scheduled_ = false;        // guarded by mu_: a drain is due
    bool stopped_ = false;          // guarded by mu_
    std::atomic<std::uint64_t> posts_{0};
};

}  // namespace hyperstreams::router
