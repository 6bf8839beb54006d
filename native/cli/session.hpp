// The CLI's connection: an engine_host whose events are copied into a queue
// the command's thread waits on, with a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "hyperstreams/native/engine_host.hpp"
#include "hyperstreams/native/owned_event.hpp"

namespace hyperstreams::cli {

using event = native::owned_event;

class session {
public:
    session(client_config config, native::transport_options transport);
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    native::engine_host& host() { return *host_; }

    // The next event, or nothing at `deadline`.
    std::optional<event> next(std::chrono::steady_clock::time_point deadline);

    std::string address() const;

private:
    void push(const client_event& e);

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<event> events_;
    std::string address_;
    std::unique_ptr<native::engine_host> host_;
};

}  // namespace hyperstreams::cli
