// The router bus over Redis pub/sub (router_bus.hpp). Each router
// subscribes to P:r:<its id> (direct messages for its clients) and P:b
// (broadcasts). A direct message is PUBLISHed to the router that gave the
// address; Redis's answer (how many subscribers got it) tells whether that
// router is there. Messages: [to len u8][to][from len u8][from][flags u8]
// [payload] on P:r:..., [origin len u8][origin router][from len u8][from]
// [flags u8][payload] on P:b.
#pragma once

#include <functional>
#include <string>

#include "redis_engine.hpp"
#include "router_bus.hpp"

namespace hyperstreams::router {

class redis_bus final : public router_bus {
public:
    using entry = std::function<void(std::function<void()>)>;

    redis_bus(redis_engine& engine, std::string prefix, std::string router_id);

    // Before the engine starts: how answers enter the core; the subscriptions.
    void start(entry e);

    void direct(std::string_view router_id, std::string_view to, std::string_view from, std::uint8_t flags,
                bytes_view payload, const publisher& ack) override;
    void broadcast(std::string_view from, std::uint8_t flags, bytes_view payload) override;

    // From the engine (its thread): true when `channel` is the bus's.
    bool on_message(std::string_view channel, std::string_view payload);

private:
    redis_engine& engine_;
    const std::string prefix_;
    const std::string router_id_;
    const std::string own_channel_;        // P:r:<id>
    const std::string broadcast_channel_;  // P:b
    entry enter_;
};

}  // namespace hyperstreams::router
