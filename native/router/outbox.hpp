// A connection's outgoing queue, bounded in bytes, shared between the routing
// core (the producer) and the connection's transport (the consumer), with the
// slow-consumer policy applied when it is full. Socket-free; a small mutex
// guards it and nothing blocks or does I/O while holding it.
//
// Two kinds of entries:
//   - control frames (acks, errors, responses, stream items, direct messages,
//     broadcasts, ...) are never dropped: they may fill the queue up to hard_max_bytes; past
//     that the connection is beyond saving (push says overflow and the core
//     closes it with slow_consumer);
//   - channel messages are subject to max_bytes and the subscription's policy:
//       drop_oldest  drop the oldest queued messages until the new one fits;
//       keep_latest  first drop the queued message of the same channel, then
//                    as drop_oldest;
//       disconnect   push says overflow: the core closes the connection with
//                    slow_consumer. A queued frame whose policy is disconnect
//                    is never dropped either: reaching it also means overflow.
//     Every dropped channel message is counted per channel, and the next
//     batch the consumer takes starts with one gap frame per channel
//     {epoch, first missed seq, count}.
//
// Wake protocol: push and close return wake = true when the consumer is idle
// and must be told (the core posts to the transport's executor then). The
// consumer calls take() until it returns an empty batch; from then on the
// next push wakes it again. So at most one wake-up is in flight and a busy
// consumer is never woken.
//
// Memory bound per connection: hard_max_bytes in total, plus the batch being written (at most batch_bytes or one frame).
// A queued message may be a slice of the block that holds its run's frames
// (shared_bytes.hpp): it is counted at its own size and keeps that block,
// at most 64 KiB or the frame itself (connection_table::run_block_bytes), alive.
// keep_latest outboxes are given frames in blocks of their own (lane.hpp).
//
// A run of messages that fits whole under drop_oldest or disconnect is
// queued as one entry per block it lies in (a piece: its frames as one
// slice of the block), not one per frame, and taken as that slice: a
// subscriber's share of a run costs a few entries and references however
// many frames it holds. A piece drops and is taken frame by frame when it
// must be (the bound, batch_bytes), so the policies and gaps are exactly
// those of its frames pushed one by one; like a frame, it keeps only its
// block alive.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hyperstreams/frame.hpp"
#include "shared_bytes.hpp"

namespace hyperstreams::router {

enum class frame_class : std::uint8_t {
    control,  // never dropped
    message,  // a channel message: dropped with a per-channel gap
};

// What closing does with the data frames still queued.
enum class queued_data : std::uint8_t {
    send,     // sent before the close
    discard,  // dropped (a slow consumer is not flushed)
};

enum class push_status : std::uint8_t {
    queued,          // accepted, nothing dropped
    queued_dropped,  // accepted after older messages were dropped
    dropped,         // this frame was dropped (and counted in a gap)
    overflow,        // the connection must be closed with slow_consumer
    closed,          // the outbox is closing: nothing more is accepted
};

struct push_result {
    push_status status = push_status::queued;
    bool wake = false;
    std::uint32_t dropped = 0;  // messages dropped by this push, this one included
    std::uint32_t queued = 0;   // push_messages: how many were taken (queued or counted in a gap)
};

struct outbox_limits {
    std::uint64_t max_bytes = 4u << 20;
    std::uint64_t hard_max_bytes = 8u << 20;
    std::uint64_t batch_bytes = 256u << 10;
};

struct router_config;
// The bounds the configuration gives every connection's outbox.
outbox_limits outbox_limits_of(const router_config& cfg) noexcept;

// Encoded message frames handed to every subscriber of a run as they are:
// the frames in order, and the same bytes as pieces: frames that follow one
// another in one block, each piece one slice of its block. An outbox that
// takes the run whole queues its pieces (written from their blocks as one
// buffer each: ws_gather.hpp); one that drops, or keeps the latest per
// channel, takes the frames one by one, so what it keeps pins no more than
// the frames it counts. A run encoded in place (connection_table) has no
// frames of its own: such an outbox then takes each frame as its slice of
// its piece, which pins the piece's block (at most run_block_bytes) while it
// is queued. The core encodes in place only runs none of whose subscribers
// keeps the latest per channel (that one may keep a frame for long), and
// the first-in-first-out outboxes pin at most the rest of the block at the
// head of their queue.
struct frame_run {
    struct piece {
        shared_bytes bytes;  // its frames, as one slice of their block
        std::uint32_t frames = 0;
    };
    std::vector<shared_bytes> frames;  // each in its own block; empty for a run encoded in place
    std::vector<piece> pieces;
    std::uint64_t bytes = 0;
    std::uint32_t count = 0;  // its frames

    // Calls f(frame) for each frame in order, as a shared_bytes (its own, or
    // its slice of its piece); stops when f returns false.
    template <typename F>
    void each_frame(F&& f) const;

    // The run of `frames` (as they are), its pieces made by copying the
    // frames side by side into new blocks of at most `block_bytes` (a frame
    // alone in its block is its own piece): one copy of each frame, made
    // once for all the run's subscribers. No reference to a frame is taken
    // or dropped: a run costs one atomic count per block, not per frame.
    static std::shared_ptr<const frame_run> laid_out(std::vector<shared_bytes> frames, std::size_t block_bytes);
    // The run of the frames encoded side by side in `encoded`, whose sizes
    // are `sizes`: copied into pieces of at most `block_bytes` (a larger
    // frame alone in its block), with no frames of their own.
    static std::shared_ptr<const frame_run> in_place(bytes_view encoded, std::span<const std::uint32_t> sizes,
                                                     std::size_t block_bytes);
};

template <typename F>
void frame_run::each_frame(F&& f) const {
    if (!frames.empty()) {
        for (const shared_bytes& m : frames)
            if (!f(m)) return;
        return;
    }
    for (const piece& p : pieces) {
        std::uint32_t at = 0;
        for (std::uint32_t i = 0; i < p.frames; ++i) {
            const std::uint64_t size = encoded_frame_size(bytes_view(p.bytes).subspan(at));
            if (!f(p.bytes.part(at, static_cast<std::uint32_t>(size)))) return;
            at += static_cast<std::uint32_t>(size);
        }
    }
}
using frame_run_ptr = std::shared_ptr<const frame_run>;

// What the consumer writes next. A span is one frame, or frames that follow
// one another in one block (a run's piece, taken whole or in part), as one
// slice of it: the message to write is the spans' bytes one after the other.
struct outbox_batch {
    std::vector<shared_bytes> spans;
    std::uint64_t bytes = 0;
    std::uint32_t frames = 0;  // how many protocol frames the spans hold
    std::uint32_t gaps = 0;    // gap frames at the start of `spans`, one span each
    bool close = false;        // the outbox is closing and this was the last of it
    void clear() {
        spans.clear();
        bytes = 0;
        frames = 0;
        gaps = 0;
        close = false;
    }
};

// A FIFO on one vector: pop_front() moves a head index, and the taken
// prefix is erased once it is at least half of the vector and 1,024 long
// (so each element moves O(1) times, and a queue drained in one go, as
// outbox::take does, moves none). 32 bytes when empty, against 80 for
// boost::container::deque, and no memory once release() is called: the
// router keeps two per connection, idle or not. A queue that fills again
// after release() allocates, at once, room for as many as it held the last
// time it was drained. Random-access iterators over what is queued.
template <class T>
class fifo {
public:
    using iterator = typename std::vector<T>::iterator;
    using const_iterator = typename std::vector<T>::const_iterator;

    bool empty() const noexcept { return head_ == items_.size(); }
    std::size_t size() const noexcept { return items_.size() - head_; }
    T& front() noexcept { return items_[head_]; }
    const T& front() const noexcept { return items_[head_]; }
    iterator begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    iterator end() noexcept { return items_.end(); }
    const_iterator begin() const noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    const_iterator end() const noexcept { return items_.end(); }

    void push_back(T&& item) {
        if (items_.capacity() == 0) items_.reserve(std::clamp<std::size_t>(last_drained_, 16, 4096));
        items_.push_back(std::move(item));
    }
    void pop_front() {
        items_[head_] = T{};  // lets go of what it holds now
        if (++head_ == items_.size()) {
            last_drained_ = static_cast<std::uint32_t>(std::min<std::size_t>(head_, UINT32_MAX));
            clear();
        } else if (head_ >= 1024 && head_ * 2 >= items_.size()) {
            items_.erase(items_.begin(), begin());
            head_ = 0;
        }
    }
    // [first, last) within [begin(), end()).
    void erase(iterator first, iterator last) {
        items_.erase(first, last);
        if (empty()) clear();
    }
    void clear() noexcept {
        items_.clear();
        head_ = 0;
    }
    // Empty: gives the memory back.
    void release() noexcept {
        if (empty()) {
            std::vector<T>().swap(items_);
            head_ = 0;
        }
    }

private:
    std::vector<T> items_;
    std::uint32_t head_ = 0;
    std::uint32_t last_drained_ = 0;  // how many the vector held when last drained
};

class outbox {
public:
    explicit outbox(outbox_limits limits) : limits_(limits) {}

    // `policy` must not be router_default (the core resolves it). Frames of
    // class message must be encoded message frames.
    [[nodiscard]] push_result push(shared_bytes bytes, frame_class cls = frame_class::control,
                     slow_policy policy = slow_policy::drop_oldest);
    // Pushes a run's message frames in order, under one lock, with the
    // outcome of push() of each. Stops at the first overflow or once closed
    // (`status` says which, `queued` how many went before); otherwise
    // `status` is queued, or queued_dropped when anything was dropped
    // (`dropped` in all). A run that fits whole, under any policy but
    // keep_latest, is queued as its pieces.
    [[nodiscard]] push_result push_messages(const frame_run_ptr& run, slow_policy policy);

    // Queues `farewell` (may be null) past every limit and asks the consumer
    // to close once it has sent what is queued (the control frames, and the
    // data frames unless `data` says discard).
    // Returns true when the consumer must be woken.
    [[nodiscard]] bool close(shared_bytes farewell, queued_data data);

    // Consumer side: replaces `out` with the next batch: pending gap frames,
    // then queued frames in order, up to batch_bytes (at least one frame),
    // frames that follow one another in a block joined into one span.
    // An empty batch without `close` means the queue is empty and idle.
    void take(outbox_batch& out);

    // The code of the farewell given to close(): goodbye or redirect code, 0 if none.
    std::uint16_t close_code() const;

    std::uint64_t queued_bytes() const;
    std::uint64_t dropped_total() const;
    bool closing() const;

private:
    struct entry {
        std::uint64_t order = 0;
        // A frame, or (a piece of a run) `frames` frames side by side in one
        // block. Null: a dropped entry still in the queue (keep_latest).
        shared_bytes bytes;
        std::uint32_t frames = 1;
        frame_class cls = frame_class::control;
        slow_policy policy = slow_policy::drop_oldest;
    };
    struct gap_info {
        std::uint32_t epoch = 0;
        std::uint64_t first_seq = 0;
        std::uint32_t count = 0;
    };

    push_result push_locked(shared_bytes bytes, frame_class cls, slow_policy policy);
    bool fits(std::uint64_t size) const noexcept { return bytes_ + size <= limits_.max_bytes; }
    void count_drop(const shared_bytes& bytes);
    void forget_latest(const entry& e);
    bool drop_same_channel(std::string_view channel);
    // Drops the oldest queued message, counted in its channel's gap.
    void drop_front();
    void pop_dead_front();
    void compact();
    bool wake_consumer();

    // What only dropped messages and keep_latest need, allocated on the
    // first drop or keep_latest message and freed when the queue is empty
    // and no gap is pending: an idle connection's outbox holds a pointer
    // instead of two maps.
    struct drop_state {
        std::unordered_map<std::string_view, std::uint64_t> latest;  // keep_latest: channel -> order
        std::map<std::string, gap_info, std::less<>> gaps;
    };

    drop_state& drops();

    const outbox_limits limits_;
    mutable std::mutex mu_;
    // Not std::deque (libstdc++'s allocates a map and a 512-byte block up
    // front) nor boost::container::deque (80 bytes empty): see fifo.
    using queue = fifo<entry>;
    queue control_;
    queue data_;
    std::uint64_t next_order_ = 0;
    std::uint64_t bytes_ = 0;
    std::size_t dead_ = 0;  // dropped entries still in data_
    std::unique_ptr<drop_state> drops_;  // null: no keep_latest entry queued, no gap pending
    std::uint64_t dropped_total_ = 0;
    bool scheduled_ = false;
    bool closing_ = false;
    std::uint16_t close_code_ = 0;
};

}  // namespace hyperstreams::router
