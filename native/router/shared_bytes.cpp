#include "shared_bytes.hpp"

namespace hyperstreams::router {

shared_bytes encode_shared(const frame& f) {
    auto buf = std::make_shared<std::vector<std::uint8_t>>(encoded_size(f));
    if (encode_to(f, *buf)) return nullptr;
    return buf;
}

}  // namespace hyperstreams::router
