#include "publication_batch.hpp"

#include <limits>

#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {
namespace {

constexpr std::size_t header_bytes = 2 + 4 + 8 + 4;
constexpr std::size_t entry_header_bytes = 1 + 4;

std::uint64_t load_le(const char* p, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return v;
}

}  // namespace

bool is_publication_batch(std::string_view message) noexcept {
    return message.size() >= 2 && static_cast<unsigned char>(message[0]) == publication_batch_marker[0] &&
           static_cast<unsigned char>(message[1]) == publication_batch_marker[1];
}

std::error_code read_publication_batch(std::string_view message, publication_batch& out) noexcept {
    const std::error_code malformed = make_error_code(errc::malformed_body);
    if (!is_publication_batch(message) || message.size() < header_bytes) return malformed;
    publication_batch b;
    b.epoch = static_cast<std::uint32_t>(load_le(message.data() + 2, 4));
    b.first_seq = load_le(message.data() + 6, 8);
    b.count = static_cast<std::uint32_t>(load_le(message.data() + 14, 4));
    if (b.epoch == 0 || b.first_seq == 0 || b.count == 0) return malformed;
    if (b.first_seq - 1 > std::numeric_limits<std::uint64_t>::max() - b.count) return malformed;
    b.entries = message.substr(header_bytes);
    // Each entry takes at least its header: a count the bytes cannot hold
    // is refused before walking them.
    if (b.count > b.entries.size() / entry_header_bytes) return malformed;
    std::string_view rest = b.entries;
    for (std::uint32_t i = 0; i < b.count; ++i) {
        if (rest.size() < entry_header_bytes) return malformed;
        const std::uint64_t length = load_le(rest.data() + 1, 4);
        if (rest.size() - entry_header_bytes < length) return malformed;
        rest.remove_prefix(entry_header_bytes + static_cast<std::size_t>(length));
    }
    if (!rest.empty()) return malformed;
    out = b;
    return {};
}

batched_publication take_batch_entry(std::string_view& entries) noexcept {
    batched_publication p;
    p.flags = static_cast<std::uint8_t>(entries[0]);
    const auto length = static_cast<std::size_t>(load_le(entries.data() + 1, 4));
    p.payload = entries.substr(entry_header_bytes, length);
    entries.remove_prefix(entry_header_bytes + length);
    return p;
}

std::uint32_t delivered_already(std::uint32_t last_epoch, std::uint64_t last_seq,
                                const publication_batch& batch) noexcept {
    if (last_epoch != batch.epoch || last_seq < batch.first_seq) return 0;
    const std::uint64_t up_to_last = last_seq - batch.first_seq + 1;
    return up_to_last >= batch.count ? batch.count : static_cast<std::uint32_t>(up_to_last);
}

}  // namespace hyperstreams::router
