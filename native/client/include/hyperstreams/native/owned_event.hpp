// owned_event: a client_event with everything it views copied, for an owner
// that keeps events past the handler call (the CLI's queue, the integration
// tests' record). The one owning copy of client_event in the native tools.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hyperstreams/client.hpp"

namespace hyperstreams::native {

struct owned_event {
    struct service {
        std::string name;
        std::uint16_t instances = 0;
        std::vector<std::pair<std::string, method_kind>> methods;
    };
    struct member {
        std::string address;
        std::string subject;
        std::string name;
    };

    owned_event() = default;
    explicit owned_event(const client_event& e);

    event_kind kind{};
    operation op = operation::connection;
    client_state state = client_state::idle;
    client_state previous = client_state::idle;
    std::uint8_t flags = 0;
    bool ends_operation = false;
    bool ends_subscription = false;
    std::uint16_t code = 0;
    std::uint32_t id = 0;
    std::uint32_t subscription = 0;
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t count = 0;
    std::string name;
    std::string method;
    std::string text;
    std::vector<std::uint8_t> payload;
    std::vector<service> services;
    std::uint32_t presence_count = 0;  // presence: every member; join, leave: 1
    std::vector<member> members;       // presence: those listed; join, leave: the one

    std::string payload_text() const { return {payload.begin(), payload.end()}; }
    errc error() const { return static_cast<errc>(code); }
};

}  // namespace hyperstreams::native
