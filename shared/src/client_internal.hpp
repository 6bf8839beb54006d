// Helpers shared by the client engine's sources. Private to shared/src.
#pragma once

#include <string_view>

#include "hyperstreams/client.hpp"

namespace hyperstreams {

inline std::string_view as_text(bytes_view b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline bytes_view as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace hyperstreams
