// What a connection may do, as granted by its token's claims (or by the
// configuration for anonymous connections), and the decisions over it.
// Socket-free and crypto-free: tested on its own.
//
// The claim (docs/PROTOCOL.md, "Access control"):
//   "hs": { "subscribe": [PATTERN...], "publish": [PATTERN...],
//           "call": ["SERVICE_PATTERN" | "SERVICE_PATTERN/METHOD" | ".../*"...],
//           "send": ["*" | "PREFIX*" | "ADDRESS"...], "broadcast": BOOL,
//           "register": [SERVICE_PATTERN...],
//           "deny": { the same keys } }
// Patterns are channel patterns (`*` one token, `>` the rest). A deny rule
// wins over every allow rule: a subscription is refused when any channel it
// could receive is denied, even if the pattern is also allowed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hyperstreams::router {

struct rule_set {
    std::vector<std::string> subscribe;
    std::vector<std::string> publish;
    std::vector<std::string> call;
    std::vector<std::string> send;
    std::vector<std::string> register_service;
    bool broadcast = false;

    bool empty() const noexcept {
        return subscribe.empty() && publish.empty() && call.empty() && send.empty() &&
               register_service.empty() && !broadcast;
    }
};

struct grants {
    rule_set allow;
    rule_set deny;

    bool empty() const noexcept { return allow.empty(); }

    bool may_subscribe(std::string_view pattern) const;
    bool may_publish(std::string_view channel) const;
    bool may_call(std::string_view service, std::string_view method) const;
    bool may_send(std::string_view address) const;
    bool may_broadcast() const noexcept { return allow.broadcast && !deny.broadcast; }
    bool may_register(std::string_view service) const;
};

// Parses the "hs" object. Unknown keys, wrong types and invalid patterns are
// errors (a typo must not silently grant or withhold a right). Returns "" on
// success.
std::string parse_grants(const nlohmann::json& claim, grants& out);

// Every channel `pattern` matches is also matched by `allowed`.
bool pattern_covers(std::string_view allowed, std::string_view pattern) noexcept;
// Some channel is matched by both patterns.
bool patterns_overlap(std::string_view a, std::string_view b) noexcept;

}  // namespace hyperstreams::router
