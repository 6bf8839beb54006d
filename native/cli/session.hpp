// The CLI's connection: an engine_host whose events are copied into a queue
// the command's thread waits on, with a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hyperstreams/native/engine_host.hpp"

namespace hyperstreams::cli {

struct service_entry {
    std::string name;
    std::uint16_t instances = 0;
    std::vector<std::pair<std::string, bool>> methods;  // name, is stream
};

// An event with its views copied.
struct event {
    event_kind kind{};
    operation op = operation::connection;
    client_state state = client_state::idle;
    std::uint8_t flags = 0;
    std::uint16_t code = 0;
    std::uint32_t id = 0;
    std::uint32_t subscription = 0;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t count = 0;
    std::string name;
    std::string text;
    std::vector<std::uint8_t> payload;
    std::vector<service_entry> services;
};

class session {
public:
    explicit session(client_config config);
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
