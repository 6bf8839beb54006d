#include "shared_bytes.hpp"

#include <cstring>
#include <new>

namespace hyperstreams::router {

boost::intrusive_ptr<frame_bytes> frame_bytes::make(std::size_t size) {
    void* block = ::operator new(sizeof(frame_bytes) + size);
    return boost::intrusive_ptr<frame_bytes>(new (block) frame_bytes(size));
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
    auto buf = frame_bytes::make(encoded_size(f));
    if (encode_to(f, {buf->data(), buf->size()})) return nullptr;
    return buf;
}

}  // namespace hyperstreams::router
