// Runs the routing core on its own thread and io_context, and is the only
// way in: every method here is thread-safe and posts to that thread.
// One timer, armed at the core's next deadline, drives tick().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "router_core.hpp"

namespace hyperstreams::router {

class core_runner {
public:
    core_runner(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch,
                std::string router_id);
    ~core_runner();
    core_runner(const core_runner&) = delete;
    core_runner& operator=(const core_runner&) = delete;

    void start();
    // Stops the thread; what is still posted is dropped.
    void stop();

    void open(connection_init init);
    // `gate` is released by the size of `bytes` once the core has handled them.
    void receive(connection_id id, std::vector<std::uint8_t> bytes, std::shared_ptr<inbound_gate> gate);
    void closed(connection_id id);
    void reject(connection_id id, errc code, std::string text);

    // Starts the drain; `on_drained` runs on the core's thread once every
    // connection was told and closed. A second call cuts the wait for calls
    // in flight short.
    void drain(std::function<void()> on_drained);

    // The admin view; `done` runs on the core's thread.
    void status(std::function<void(std::string)> done);

    const std::string& router_id() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace hyperstreams::router
