// An encoded frame shared, immutable, between every queue it is in: fan-out
// encodes a message once and each recipient holds a reference.
//
// One heap block holds the reference count, the size and the bytes, so a
// frame costs one allocation and one atomic count, not the two allocations
// of a std::shared_ptr<std::vector>.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <boost/smart_ptr/intrusive_ptr.hpp>

#include "hyperstreams/frame.hpp"

namespace hyperstreams::router {

class frame_bytes {
public:
    // A block of `size` bytes, not initialised.
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
    explicit frame_bytes(std::size_t size) noexcept : size_(size) {}
    ~frame_bytes() = default;

    friend void intrusive_ptr_add_ref(const frame_bytes* p) noexcept {
        p->refs_.fetch_add(1, std::memory_order_relaxed);
    }
    friend void intrusive_ptr_release(const frame_bytes* p) noexcept {
        if (p->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(p);
    }
    static void destroy(const frame_bytes* p) noexcept;

    mutable std::atomic<std::uint32_t> refs_{0};
    // The bytes follow the object in the same block (alignof(frame_bytes) keeps them in step).
    std::size_t size_;
};

using shared_bytes = boost::intrusive_ptr<const frame_bytes>;

// Encodes one frame into a new shared buffer; null when the frame cannot be
// encoded (a name over 255 bytes).
shared_bytes encode_shared(const frame& f);

}  // namespace hyperstreams::router
