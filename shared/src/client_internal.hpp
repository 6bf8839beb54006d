// Helpers shared by the client engine's sources. Private to shared/src.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "hyperstreams/client.hpp"

namespace hyperstreams {

// Sorts operation ids. A heap sort: O(n log n) as std::sort, and about 1 KiB
// less in the npm package's wasm module (std::sort brings introsort,
// insertion sorts and a heap sort of its own).
inline void sort_ids(std::vector<std::uint32_t>& ids) {
    std::make_heap(ids.begin(), ids.end());
    std::sort_heap(ids.begin(), ids.end());
}

inline std::string_view as_text(bytes_view b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline bytes_view as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace hyperstreams
