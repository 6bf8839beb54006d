#include "outbox.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <span>
#include <utility>

#include "config.hpp"

namespace hyperstreams::router {

outbox_limits outbox_limits_of(const router_config& cfg) noexcept {
    outbox_limits l;
    l.max_bytes = cfg.outbox_max_bytes;
    l.hard_max_bytes = cfg.outbox_max_bytes * 2;
    l.batch_bytes = cfg.outbox_batch_bytes;
    return l;
}
namespace {

// The channel, epoch and seq of an encoded message frame.
bool parse_message(const shared_bytes& bytes, frame& out) {
    std::size_t consumed = 0;
    decode_limits limits;
    limits.max_payload = std::numeric_limits<std::uint32_t>::max();
    return !decode(*bytes, out, consumed, limits) && out.kind == frame_kind::message;
}

std::string_view channel_of(const shared_bytes& bytes) {
    frame f;
    return parse_message(bytes, f) ? f.name : std::string_view{};
}

// The size of the first of the frames side by side in `bytes` (all of
// them, should its header not describe a frame within them).
std::uint32_t first_frame_size(bytes_view bytes) {
    const std::uint64_t size = encoded_frame_size(bytes);
    return static_cast<std::uint32_t>(size == 0 || size > bytes.size() ? bytes.size() : size);
}

}  // namespace

namespace {

// The frames from `at` (of `count`, the size of frame i is size_of(i)) that
// go into one block of at most `block_bytes`: how many (at least one: a
// larger frame is alone) and their bytes.
template <typename SizeOf>
std::pair<std::size_t, std::size_t> next_block(std::size_t at, std::size_t count, std::size_t block_bytes,
                                               SizeOf&& size_of) {
    std::size_t n = 0;
    std::size_t size = 0;
    while (at + n < count && (n == 0 || size + size_of(at + n) <= block_bytes)) size += size_of(at + n++);
    return {n, size};
}

}  // namespace

std::shared_ptr<const frame_run> frame_run::laid_out(std::vector<shared_bytes> frames, std::size_t block_bytes) {
    auto run = std::make_shared<frame_run>();
    run->frames = std::move(frames);
    run->count = static_cast<std::uint32_t>(run->frames.size());
    const std::span<const shared_bytes> all(run->frames);
    for (std::size_t at = 0; at < all.size();) {
        const auto [n, size] = next_block(at, all.size(), block_bytes, [&](std::size_t i) { return all[i].size(); });
        if (n == 1) {
            run->pieces.push_back({all[at], 1});  // alone: its own block, not copied
        } else {
            auto block = frame_bytes::make(size);
            std::uint8_t* to = block->data();
            for (const shared_bytes& f : all.subspan(at, n)) {
                if (!f.empty()) std::memcpy(to, f.data(), f.size());
                to += f.size();
            }
            run->pieces.push_back({shared_bytes(std::move(block)), static_cast<std::uint32_t>(n)});
        }
        run->bytes += size;
        at += n;
    }
    return run;
}

std::shared_ptr<const frame_run> frame_run::in_place(bytes_view encoded, std::span<const std::uint32_t> sizes,
                                                     std::size_t block_bytes) {
    auto run = std::make_shared<frame_run>();
    run->count = static_cast<std::uint32_t>(sizes.size());
    run->bytes = encoded.size();
    for (std::size_t at = 0; at < sizes.size();) {
        const auto [n, size] = next_block(at, sizes.size(), block_bytes, [&](std::size_t i) { return sizes[i]; });
        run->pieces.push_back({shared_bytes(frame_bytes::copy(encoded.first(size))), static_cast<std::uint32_t>(n)});
        encoded = encoded.subspan(size);
        at += n;
    }
    return run;
}

outbox::drop_state& outbox::drops() {
    if (!drops_) drops_ = std::make_unique<drop_state>();
    return *drops_;
}

bool outbox::wake_consumer() {
    if (scheduled_) return false;
    scheduled_ = true;
    return true;
}

void outbox::count_drop(const shared_bytes& bytes) {
    ++dropped_total_;
    frame f;
    if (!parse_message(bytes, f)) return;
    auto& gaps = drops().gaps;
    auto it = gaps.find(f.name);
    if (it == gaps.end()) {
        gaps.emplace(std::string(f.name), gap_info{f.epoch, f.seq, 1});
        return;
    }
    gap_info& g = it->second;
    if (g.epoch != f.epoch) {
        // The channel restarted: report the newer run only.
        g = gap_info{f.epoch, f.seq, 1};
        return;
    }
    g.first_seq = std::min(g.first_seq, f.seq);
    if (g.count < std::numeric_limits<std::uint32_t>::max()) ++g.count;
}

void outbox::forget_latest(const entry& e) {
    if (e.policy != slow_policy::keep_latest || e.cls != frame_class::message || !drops_) return;
    auto& latest = drops_->latest;
    auto it = latest.find(channel_of(e.bytes));
    if (it != latest.end() && it->second == e.order) latest.erase(it);
}

bool outbox::drop_same_channel(std::string_view channel) {
    if (!drops_) return false;
    auto& latest = drops_->latest;
    auto it = latest.find(channel);
    if (it == latest.end()) return false;
    const std::uint64_t order = it->second;
    auto pos = std::lower_bound(data_.begin(), data_.end(), order,
                                [](const entry& e, std::uint64_t o) { return e.order < o; });
    if (pos == data_.end() || pos->order != order || !pos->bytes) {
        latest.erase(it);
        return false;
    }
    if (pos->policy == slow_policy::disconnect) return false;
    latest.erase(it);  // before the buffer its key views is released
    bytes_ -= pos->bytes->size();
    count_drop(pos->bytes);
    pos->bytes.reset();
    ++dead_;
    pop_dead_front();
    compact();
    return true;
}

void outbox::drop_front() {
    entry& victim = data_.front();
    if (victim.frames > 1) {
        const std::uint32_t size = first_frame_size(*victim.bytes);
        bytes_ -= size;
        count_drop(victim.bytes.part(0, size));
        victim.bytes.remove_prefix(size);
        --victim.frames;
        return;
    }
    bytes_ -= victim.bytes.size();
    count_drop(victim.bytes);
    forget_latest(victim);
    data_.pop_front();
}

void outbox::pop_dead_front() {
    while (!data_.empty() && !data_.front().bytes) {
        data_.pop_front();
        --dead_;
    }
}

void outbox::compact() {
    if (dead_ < 64 || dead_ * 2 < data_.size()) return;
    data_.erase(std::remove_if(data_.begin(), data_.end(), [](const entry& e) { return !e.bytes; }), data_.end());
    dead_ = 0;
}

push_result outbox::push(shared_bytes bytes, frame_class cls, slow_policy policy) {
    std::lock_guard lock(mu_);
    return push_locked(std::move(bytes), cls, policy);
}

push_result outbox::push_messages(const frame_run_ptr& run, slow_policy policy) {
    std::lock_guard lock(mu_);
    push_result all;
    if (run->count == 0) return all;
    if (!closing_ && policy != slow_policy::keep_latest && fits(run->bytes)) {
        // Nothing to drop: what pushing each frame would queue, in a piece
        // per block.
        for (const frame_run::piece& p : run->pieces)
            data_.push_back(entry{next_order_++, p.bytes, p.frames, frame_class::message, policy});
        bytes_ += run->bytes;
        all.queued = run->count;
        all.wake = wake_consumer();
        return all;
    }
    run->each_frame([&](const shared_bytes& m) {
        const push_result r = push_locked(m, frame_class::message, policy);
        all.dropped += r.dropped;
        all.wake = all.wake || r.wake;
        if (r.status == push_status::overflow || r.status == push_status::closed) {
            all.status = r.status;
            return false;
        }
        ++all.queued;
        return true;
    });
    if (all.status == push_status::overflow || all.status == push_status::closed) return all;
    all.status = all.dropped > 0 ? push_status::queued_dropped : push_status::queued;
    return all;
}

push_result outbox::push_locked(shared_bytes bytes, frame_class cls, slow_policy policy) {
    push_result r;
    if (closing_ || !bytes) {
        r.status = push_status::closed;
        return r;
    }
    const std::uint64_t size = bytes->size();

    if (cls == frame_class::control) {
        if (bytes_ + size > limits_.hard_max_bytes) {
            r.status = push_status::overflow;
            return r;
        }
        control_.push_back(entry{next_order_++, std::move(bytes), 1, cls, policy});
        bytes_ += size;
        r.wake = wake_consumer();
        return r;
    }

    if (!fits(size)) {
        if (policy == slow_policy::disconnect) {
            r.status = push_status::overflow;
            return r;
        }
        if (policy == slow_policy::keep_latest && drop_same_channel(channel_of(bytes)))
            ++r.dropped;
        while (!fits(size) && !data_.empty()) {
            if (data_.front().policy == slow_policy::disconnect) {
                r.status = push_status::overflow;
                return r;
            }
            drop_front();
            ++r.dropped;
            pop_dead_front();
        }
        if (!fits(size)) {
            // Control frames fill the queue: this message goes, counted in a gap.
            count_drop(bytes);
            ++r.dropped;
            r.status = push_status::dropped;
            r.wake = wake_consumer();
            return r;
        }
    }
    entry e{next_order_++, std::move(bytes), 1, cls, policy};
    if (policy == slow_policy::keep_latest) {
        std::string_view channel = channel_of(e.bytes);
        if (!channel.empty()) {
            // Re-insert so that the key views this entry's buffer, which
            // lives exactly as long as the mapping does.
            auto& latest = drops().latest;
            latest.erase(channel);
            latest.emplace(channel, e.order);
        }
    }
    bytes_ += size;
    data_.push_back(std::move(e));
    r.status = r.dropped > 0 ? push_status::queued_dropped : push_status::queued;
    r.wake = wake_consumer();
    return r;
}

bool outbox::close(shared_bytes farewell, queued_data data) {
    std::lock_guard lock(mu_);
    if (closing_) return false;
    closing_ = true;
    if (data == queued_data::discard) {
        drops_.reset();
        for (const entry& e : data_)
            if (e.bytes) bytes_ -= e.bytes->size();
        data_.clear();
        dead_ = 0;
    }
    if (farewell) {
        frame f;
        std::size_t consumed = 0;
        if (!decode(*farewell, f, consumed) &&
            (f.kind == frame_kind::goodbye || f.kind == frame_kind::redirect))
            close_code_ = f.code;
        bytes_ += farewell->size();
        control_.push_back(entry{next_order_++, std::move(farewell), 1, frame_class::control,
                                 slow_policy::drop_oldest});
    }
    return wake_consumer();
}

void outbox::take(outbox_batch& out) {
    out.clear();
    std::lock_guard lock(mu_);
    // The consumer frees its batch when it goes idle (ws_session): size it
    // once from what is queued rather than growing it frame by frame.
    constexpr std::size_t most_spans_reserved = 4096;
    out.spans.reserve(std::min(control_.size() + data_.size() + (drops_ ? drops_->gaps.size() : 0),
                               most_spans_reserved));
    // `frames` frames in `b`, joined to the span before when they follow it
    // in its block.
    auto add = [&out](shared_bytes b, std::uint32_t frames) {
        out.bytes += b.size();
        out.frames += frames;
        if (out.spans.empty() || !out.spans.back().join(b)) out.spans.push_back(std::move(b));
    };
    if (drops_) {
        for (const auto& [channel, g] : drops_->gaps) {
            frame f;
            f.kind = frame_kind::gap;
            f.name = channel;
            f.epoch = g.epoch;
            f.seq = g.first_seq;
            f.count = g.count;
            if (shared_bytes b = encode_shared(f)) {
                add(std::move(b), 1);
                ++out.gaps;
            }
        }
        drops_->gaps.clear();
    }

    while (out.bytes < limits_.batch_bytes || out.frames == 0) {
        pop_dead_front();
        const bool has_control = !control_.empty();
        const bool has_data = !data_.empty();
        if (!has_control && !has_data) break;
        const bool from_control = has_control && (!has_data || control_.front().order < data_.front().order);
        queue& q = from_control ? control_ : data_;
        entry& e = q.front();
        std::uint32_t size = static_cast<std::uint32_t>(e.bytes->size());
        std::uint32_t frames = e.frames;
        if (out.bytes + size > limits_.batch_bytes && (out.frames > 0 || frames > 1)) {
            // What of it fits: the first frames of a piece (at least one in
            // an empty batch), or nothing.
            size = 0;
            frames = 0;
            for (bytes_view rest = *e.bytes; frames < e.frames; ++frames) {
                const std::uint32_t next = first_frame_size(rest);
                if (out.bytes + size + next > limits_.batch_bytes && (out.frames > 0 || frames > 0)) break;
                size += next;
                rest = rest.subspan(next);
            }
            if (frames == 0) break;
        }
        bytes_ -= size;
        if (frames < e.frames) {
            add(e.bytes.part(0, size), frames);
            e.bytes.remove_prefix(size);
            e.frames -= frames;
            break;  // the batch is full
        }
        forget_latest(e);
        add(std::move(e.bytes), frames);
        q.pop_front();
    }
    pop_dead_front();
    // An idle connection keeps no queue memory (a busy one refills from
    // a few entries in a handful of allocations per batch).
    control_.release();
    data_.release();
    if (drops_ && drops_->latest.empty() && drops_->gaps.empty()) drops_.reset();

    const bool empty = control_.empty() && data_.empty();
    if (out.spans.empty() && !closing_) scheduled_ = false;
    out.close = closing_ && empty;
}

std::uint64_t outbox::queued_bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
}

std::uint64_t outbox::dropped_total() const {
    std::lock_guard lock(mu_);
    return dropped_total_;
}

std::uint16_t outbox::close_code() const {
    std::lock_guard lock(mu_);
    return close_code_;
}

bool outbox::closing() const {
    std::lock_guard lock(mu_);
    return closing_;
}

}  // namespace hyperstreams::router
