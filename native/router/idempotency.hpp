// The idempotency keys of one channel on a router on its own (memory_log):
// key -> the first publication's position, a digest of what it published,
// and when the key's window ends. Socket-free; time is passed in.
//
// Bounded two ways: by age (a key is forgotten when its window ends, and
// the windows of one channel all have the same length, so the oldest key
// always ends first) and by count (past max_keys the oldest key is
// forgotten early: a repeat of it is then published again, as after its
// window). The channel's own bound (limits.max_channels, the least recently
// published channel is forgotten) takes its keys with it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "channel_log.hpp"

namespace hyperstreams::router {

class idempotency_keys {
public:
    // SHA-256 of the flags byte and the message: a payload under a key is
    // told from another without keeping it.
    using digest = std::array<std::uint8_t, 32>;
    static digest digest_of(std::uint8_t flags, bytes_view message);

    enum class outcome : std::uint8_t {
        fresh,   // not seen within its window: publish, then remember()
        repeat,  // the same payload: `first` is where it was placed
        reused,  // another payload under the key: key_reused
    };

    explicit idempotency_keys(std::size_t max_keys) : max_keys_(max_keys) {}

    [[nodiscard]] outcome check(std::string_view key, const digest& d, time_point now, position& first);
    // Remembers a key check() found fresh.
    void remember(std::string_view key, const digest& d, position at, time_point window_end);

    [[nodiscard]] std::size_t size() const noexcept { return by_key_.size(); }

private:
    struct entry {
        position at;
        digest d{};
        time_point window_end{};
    };
    void forget_ended(time_point now);
    void forget_oldest();

    std::size_t max_keys_;
    std::unordered_map<std::string, entry> by_key_;
    std::deque<std::string> order_;  // keys, oldest first
};

}  // namespace hyperstreams::router
