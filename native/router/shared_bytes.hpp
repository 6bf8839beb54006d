// An encoded frame shared, immutable, between every queue it is in: fan-out
// encodes a message once and each recipient holds a reference.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "hyperstreams/frame.hpp"

namespace hyperstreams::router {

using shared_bytes = std::shared_ptr<const std::vector<std::uint8_t>>;

// Encodes one frame into a new shared buffer; null when the frame cannot be
// encoded (a name over 255 bytes).
shared_bytes encode_shared(const frame& f);

}  // namespace hyperstreams::router
