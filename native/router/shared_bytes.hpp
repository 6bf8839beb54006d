// An encoded frame shared, immutable, between every queue it is in: fan-out
// encodes a message once and each recipient holds a reference.
//
// One heap block holds the reference count, the size and the bytes, so a
// frame costs one allocation and one atomic count, not the two allocations
// of a std::shared_ptr<std::vector>. A reference is a slice of its block:
// the whole block for a frame encoded on its own, or a piece of a run of
// messages: frames copied side by side into one block (frame_run::laid_out),
// so that a subscriber's batch holds the run's frames side by side and is
// written from the shared block without a copy (ws_gather.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include <boost/smart_ptr/intrusive_ptr.hpp>

#include "hyperstreams/frame.hpp"

namespace hyperstreams::router {

class frame_bytes {
public:
    // A block of `size` bytes, not initialised. Frames are bounded by
    // limits.max_message_bytes, a 32-bit count: a larger block is
    // std::length_error.
    static boost::intrusive_ptr<frame_bytes> make(std::size_t size);
    // A block holding a copy of `bytes`.
    static boost::intrusive_ptr<frame_bytes> copy(bytes_view bytes);

    frame_bytes(const frame_bytes&) = delete;
    frame_bytes& operator=(const frame_bytes&) = delete;

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const std::uint8_t* data() const noexcept { return reinterpret_cast<const std::uint8_t*>(this + 1); }
    std::uint8_t* data() noexcept { return reinterpret_cast<std::uint8_t*>(this + 1); }
    const std::uint8_t* begin() const noexcept { return data(); }
    const std::uint8_t* end() const noexcept { return data() + size_; }
    std::uint8_t* begin() noexcept { return data(); }
    std::uint8_t* end() noexcept { return data() + size_; }
    std::uint8_t operator[](std::size_t i) const noexcept { return data()[i]; }
    std::uint8_t& operator[](std::size_t i) noexcept { return data()[i]; }
    operator bytes_view() const noexcept { return {data(), size_}; }

private:
    explicit frame_bytes(std::uint32_t size) noexcept : refs_(1), size_(size) {}
    ~frame_bytes() = default;

    friend void intrusive_ptr_add_ref(const frame_bytes* p) noexcept {
        p->refs_.fetch_add(1, std::memory_order_relaxed);
    }
    // The last reference skips the atomic subtraction: a count of 1 read by
    // its holder cannot change under it (nobody else holds a reference to
    // copy), and the acquire sees every other holder's writes, which their
    // release-subtractions published.
    friend void intrusive_ptr_release(const frame_bytes* p) noexcept {
        if (p->refs_.load(std::memory_order_acquire) == 1 || p->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy(p);
    }
    static void destroy(const frame_bytes* p) noexcept;

    mutable std::atomic<std::uint32_t> refs_;
    // The bytes follow the object in the same block.
    std::uint32_t size_;
};

// A reference to a frame's bytes: 16 bytes, a pointer to the block and the
// frame's offset and size in it. Used as the pointer it was before slices
// (`f->size()`, `*f` for the bytes, null for none).
class shared_bytes {
public:
    using block_ptr = boost::intrusive_ptr<const frame_bytes>;

    shared_bytes() noexcept = default;
    shared_bytes(std::nullptr_t) noexcept {}
    // The whole block.
    shared_bytes(block_ptr block) noexcept
        : block_(std::move(block)), size_(block_ ? static_cast<std::uint32_t>(block_->size()) : 0) {}
    shared_bytes(boost::intrusive_ptr<frame_bytes> block) noexcept : shared_bytes(block_ptr(std::move(block))) {}
    // `size` bytes of `block` from `offset`, which must lie within it.
    shared_bytes(block_ptr block, std::uint32_t offset, std::uint32_t size) noexcept
        : block_(std::move(block)), offset_(offset), size_(size) {}

    explicit operator bool() const noexcept { return static_cast<bool>(block_); }
    friend bool operator==(const shared_bytes& a, std::nullptr_t) noexcept { return !a.block_; }
    // The same bytes of the same block.
    friend bool operator==(const shared_bytes&, const shared_bytes&) noexcept = default;
    void reset() noexcept { *this = shared_bytes(); }

    // The block the bytes are in, and where.
    const block_ptr& block() const noexcept { return block_; }
    std::uint32_t offset() const noexcept { return offset_; }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const std::uint8_t* data() const noexcept { return block_->data() + offset_; }
    const std::uint8_t* begin() const noexcept { return data(); }
    const std::uint8_t* end() const noexcept { return data() + size_; }
    std::uint8_t operator[](std::size_t i) const noexcept { return data()[i]; }

    // Pointer-like access, as when this was an intrusive_ptr to the bytes:
    // get() is where they are, null for none.
    const std::uint8_t* get() const noexcept { return block_ ? data() : nullptr; }
    const shared_bytes* operator->() const noexcept { return this; }
    bytes_view operator*() const noexcept { return {data(), size_}; }
    operator bytes_view() const noexcept { return {data(), size_}; }

    // `next` follows this in the same block.
    bool followed_by(const shared_bytes& next) const noexcept {
        return block_ == next.block_ && offset_ + size_ == next.offset_;
    }
    // When `next` follows this in the same block, becomes the slice of both.
    bool join(const shared_bytes& next) noexcept {
        if (!followed_by(next)) return false;
        size_ += next.size_;
        return true;
    }
    // `size` bytes of this from `from`, which must lie within it.
    shared_bytes part(std::uint32_t from, std::uint32_t size) const noexcept {
        return shared_bytes(block_, offset_ + from, size);
    }
    // Without its first `n` bytes (at most size()).
    void remove_prefix(std::uint32_t n) noexcept {
        offset_ += n;
        size_ -= n;
    }

private:
    block_ptr block_;
    std::uint32_t offset_ = 0;
    std::uint32_t size_ = 0;
};

// Encodes one frame into a new shared buffer; null when the frame cannot be
// encoded (a name over 255 bytes, or over 4 GiB in all).
shared_bytes encode_shared(const frame& f);

// The frames of `frames` laid out one after the other in one new block,
// each returned as its slice of it (in place, in order): one copy of each
// frame, made once for all its recipients.
void lay_out(std::span<shared_bytes> frames);

}  // namespace hyperstreams::router
