// UTF-8 as the protocol's strings need it: every `str` of a control body is
// UTF-8 (PROTOCOL.md section 2), checked when it is decoded, and a text cut
// to a byte limit is cut between two characters, never inside one.
#pragma once

#include <cstddef>
#include <string_view>

namespace hyperstreams {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF, no truncated sequence.
bool is_valid_utf8(std::string_view text) noexcept;

// The longest prefix of `text` (valid UTF-8) of at most `max_bytes` bytes
// that ends on a character boundary.
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) noexcept;

}  // namespace hyperstreams
