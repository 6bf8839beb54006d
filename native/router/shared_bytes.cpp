#include "shared_bytes.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

namespace hyperstreams::router {

boost::intrusive_ptr<frame_bytes> frame_bytes::make(std::size_t size) {
    if (size > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("frame_bytes over 4 GiB");
    void* block = ::operator new(sizeof(frame_bytes) + size);
    // Born with the one reference it is returned with: no atomic add.
    return boost::intrusive_ptr<frame_bytes>(new (block) frame_bytes(static_cast<std::uint32_t>(size)), false);
}

boost::intrusive_ptr<frame_bytes> frame_bytes::copy(bytes_view bytes) {
    auto b = make(bytes.size());
    if (!bytes.empty()) std::memcpy(b->data(), bytes.data(), bytes.size());
    return b;
}

void frame_bytes::destroy(const frame_bytes* p) noexcept {
    p->~frame_bytes();
    ::operator delete(const_cast<frame_bytes*>(p));
}

shared_bytes encode_shared(const frame& f) {
    const std::size_t size = encoded_size(f);
    if (size > std::numeric_limits<std::uint32_t>::max()) return nullptr;
    auto buf = frame_bytes::make(size);
    if (encode_to(f, {buf->data(), buf->size()})) return nullptr;
    return buf;
}

void lay_out(std::span<shared_bytes> frames) {
    std::size_t total = 0;
    for (const shared_bytes& f : frames) total += f.size();
    const auto block = frame_bytes::make(total);
    const shared_bytes::block_ptr shared = block;
    std::uint32_t at = 0;
    for (shared_bytes& f : frames) {
        const auto size = static_cast<std::uint32_t>(f.size());
        if (size > 0) std::memcpy(block->data() + at, f.data(), size);
        f = shared_bytes(shared, at, size);
        at += size;
    }
}

}  // namespace hyperstreams::router
