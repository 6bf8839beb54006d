// The channel log of a router on its own: channels, positions and history
// in this process (channel_store), answered at once, from inside each call.
// A publish is delivered before append() returns, so the path costs what it
// did before the log was an interface; the payload of a publication kept in
// history is the message frame the deliverer encoded, not a copy.
//
// The epoch of a channel is made with it: the epoch given at construction
// (random per process: a restart starts every channel anew) plus the number
// of channels forgotten so far (channel_store).
#pragma once

#include "channel_log.hpp"
#include "channel_store.hpp"
#include "metrics.hpp"

namespace hyperstreams::router {

class memory_log final : public channel_log {
public:
    // `max_keys`: idempotency keys remembered per channel (idempotency.hpp).
    memory_log(std::uint32_t epoch, history_limits limits, std::size_t max_keys, metrics& m)
        : store_(epoch, limits), max_keys_(max_keys), metrics_(m) {}

    void append(std::string_view channel, std::uint8_t flags, bytes_view payload, const publisher& from,
                const channel_options& options, const publish_extras& extras) override;
    void read_since(std::uint64_t ticket, std::string_view channel, position since, read_kind kind,
                    time_point now) override;
    void read_latest(std::uint64_t ticket, std::string_view pattern, time_point now) override;
    [[nodiscard]] bool positions_known() const noexcept override { return true; }
    [[nodiscard]] position last_position(std::string_view channel) const override;
    void interest(std::string_view, interest_change) override {}  // every publication is here already

    [[nodiscard]] std::uint32_t epoch() const noexcept override { return store_.epoch(); }
    void describe(std::vector<channel_view>& out) const override;

private:
    channel_store store_;
    std::size_t max_keys_;
    metrics& metrics_;
    // The channel appended to last, while the store forgot no channel:
    // publishers mostly send runs to one channel, so the next append skips
    // the lookup.
    channel_state* last_ = nullptr;
    std::uint64_t last_version_ = 0;
    std::vector<latest_value> latest_scratch_;  // read_latest's, kept to reuse its memory
};

}  // namespace hyperstreams::router
