// A batch of publications as one Redis pub/sub message (redis_log.hpp):
// the publications one script placed on a channel together, consecutive
// seqs of one epoch, which every router enters into its core together.
// Socket-free: the router reads what its subscriber connection got, the
// fuzz target (tests/fuzz/fuzz_publication_batch.cpp) anything at all.
//
//   [0x80][0x13][epoch u32 LE][first seq u64 LE][count u32 LE]
//   count x [flags u8][payload length u32 LE][payload]
//
// The first byte has the bit a publication's flags never have (0x80), as a
// presence event's does; the second, 0x13 (a message frame's kind), is
// neither of a presence event's kinds (join, leave): a router that knows
// only single publications and presence events drops it.
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

namespace hyperstreams::router {

inline constexpr unsigned char publication_batch_marker[2] = {0x80, 0x13};

// Whether `message` says it is a batch (its first two bytes); read it with
// read_publication_batch.
[[nodiscard]] bool is_publication_batch(std::string_view message) noexcept;

struct publication_batch {
    std::uint32_t epoch = 0;
    std::uint64_t first_seq = 0;  // the i-th publication's seq is first_seq + i
    std::uint32_t count = 0;
    std::string_view entries;  // the count entries, checked: take_batch_entry reads them
};

// One publication of a batch: a view of the message's bytes.
struct batched_publication {
    std::uint8_t flags = 0;
    std::string_view payload;
};

// Reads and checks a whole batch message. errc::malformed_body when it is
// not one: shorter than its header, a count of 0, an epoch or first seq of
// 0, seqs past 2^64, an entry cut short, or bytes after the last entry.
[[nodiscard]] std::error_code read_publication_batch(std::string_view message, publication_batch& out) noexcept;

// The first entry of `entries`, taken off it. Only for what
// read_publication_batch checked, count times.
[[nodiscard]] batched_publication take_batch_entry(std::string_view& entries) noexcept;

// How many of `batch`'s publications, from its first, a router delivered
// already when the last one it delivered of the channel was at
// (`last_epoch`, `last_seq`): those of the same epoch at or before it. A
// router gets a batch twice when Redis matches its channel by name and by
// a pattern, both subscribed: the second copy is all delivered already.
[[nodiscard]] std::uint32_t delivered_already(std::uint32_t last_epoch, std::uint64_t last_seq,
                                              const publication_batch& batch) noexcept;

}  // namespace hyperstreams::router
