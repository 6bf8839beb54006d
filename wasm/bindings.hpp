// What bindings.cpp (the module the package ships) shares with
// codec_bindings.cpp (added in the test build only).
#pragma once

#include <cstdint>
#include <string_view>

#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"

extern "C" std::uint8_t* hs_buffer(std::uint32_t size);

namespace hyperstreams::wasm {

// Engines created and not yet destroyed. Only the test build exports it
// (the leak tests read it); the shipped module counts into nothing.
extern std::uint32_t live_clients;

// The names the JS API uses for these values (index.d.ts: MethodInfo.kind,
// SlowConsumerPolicy); "unknown" for anything else.
constexpr std::string_view method_kind_name(method_kind k) noexcept {
    switch (k) {
        case method_kind::unary: return "unary";
        case method_kind::stream: return "stream";
    }
    return "unknown";
}

// router_default is the API's 'default': the router decides.
constexpr std::string_view policy_name(slow_policy p) noexcept {
    switch (p) {
        case slow_policy::router_default: return "default";
        case slow_policy::drop_oldest: return "drop_oldest";
        case slow_policy::keep_latest: return "keep_latest";
        case slow_policy::disconnect: return "disconnect";
    }
    return "unknown";
}

}  // namespace hyperstreams::wasm
