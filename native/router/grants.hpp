// What a connection may do, as granted by its token's claims (or by the
// configuration for anonymous connections), and the decisions over it.
// Socket-free and crypto-free: tested on its own.
//
// The claim (docs/PROTOCOL.md, "Access control"):
//   "hs": { "subscribe": [PATTERN...], "publish": [PATTERN...],
//           "call": ["SERVICE_PATTERN" | "SERVICE_PATTERN/METHOD" | ".../*"...],
//           "send": ["*" | "PREFIX*" | "ADDRESS"...], "broadcast": BOOL,
//           "register": [SERVICE_PATTERN...],
//           "subscribe_clients": [PATTERN...],
//           "channels": [PATTERN...],
//           "deny": { the same keys but channels } }
// Patterns are channel patterns (`*` one token, `>` the rest). A deny rule
// wins over every allow rule: a subscription is refused when any channel it
// could receive is denied, even if the pattern is also allowed.
// "subscribe_clients" lets a backend subscribe other connections
// (subscribe_client) to what these patterns cover; the connection must
// itself be allowed to subscribe too. "channels" are the patterns the
// connection is subscribed to at hello; each must be one it may subscribe
// to, or the claim is invalid (a typo never grants, and never subscribes).
//
// The rules are compiled once, when the claim is parsed, so that a decision
// (made for every publish) costs the same with ten rules or ten thousand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hyperstreams::router {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Channel patterns compiled into a trie of tokens in which "*" and ">" are
// children like any other token (topic_tree's shape). matches() walks the
// channel's token, "*" and ">" branches: its cost grows with the channel's
// depth, not with the number of patterns. covers() and overlaps() take a
// pattern; a "*" in it makes overlaps() visit every branch at its depth, so
// their cost is bounded by the trie's size (the rules' tokens: a token's
// rules are capped by auth.max_rules) and each node is visited at most once.
class pattern_set {
public:
    pattern_set();

    // `pattern` must be valid (names.hpp).
    void add(std::string_view pattern);
    bool empty() const noexcept { return nodes_.size() == 1; }

    // Some pattern matches `channel` (a valid channel).
    bool matches(std::string_view channel) const;
    // Some pattern matches every channel `pattern` matches.
    bool covers(std::string_view pattern) const;
    // Some pattern matches a channel `pattern` matches too.
    bool overlaps(std::string_view pattern) const;

private:
    struct node {
        std::unordered_map<std::string, std::uint32_t, string_hash, std::equal_to<>> children;  // into nodes_
        bool ends_pattern = false;
    };
    const node* child(const node& n, std::string_view token) const;
    bool matches_below(const node& n, std::string_view rest, bool more) const;
    bool covers_below(const node& n, std::string_view rest, bool more) const;
    bool overlaps_below(const node& n, std::string_view rest, bool more) const;

    std::vector<node> nodes_;  // nodes_[0] is the root; a node is never removed
};

// "SERVICE_PATTERN", "SERVICE_PATTERN/*" (every method) and
// "SERVICE_PATTERN/METHOD": one pattern_set for every method and one per
// method named, so a decision is one hash lookup and two trie walks.
class call_rules {
public:
    // `method` "*": every method.
    void add(std::string_view service_pattern, std::string_view method);
    bool empty() const noexcept { return every_method_.empty() && by_method_.empty(); }
    bool matches(std::string_view service, std::string_view method) const;

private:
    pattern_set every_method_;
    std::unordered_map<std::string, pattern_set, string_hash, std::equal_to<>> by_method_;
};

// "*" (any), "PREFIX*" and exact addresses: one hash lookup for the exact
// ones and one per distinct prefix length (addresses are at most 256 bytes).
class address_rules {
public:
    void add(std::string_view rule);
    bool empty() const noexcept { return exact_.empty() && prefix_lengths_.empty(); }
    bool matches(std::string_view address) const;

private:
    std::unordered_set<std::string, string_hash, std::equal_to<>> exact_;
    std::unordered_set<std::string, string_hash, std::equal_to<>> prefixes_;
    std::vector<std::size_t> prefix_lengths_;  // ascending, each once
};

struct rule_set {
    pattern_set subscribe;
    pattern_set publish;
    call_rules call;
    address_rules send;
    pattern_set register_service;
    pattern_set subscribe_clients;
    bool broadcast = false;

    bool empty() const noexcept {
        return subscribe.empty() && publish.empty() && call.empty() && send.empty() &&
               register_service.empty() && subscribe_clients.empty() && !broadcast;
    }
};

struct grants {
    rule_set allow;
    rule_set deny;
    std::vector<std::string> channels;  // subscribed at hello

    bool empty() const noexcept { return allow.empty(); }

    bool may_subscribe(std::string_view pattern) const;
    bool may_publish(std::string_view channel) const;
    bool may_call(std::string_view service, std::string_view method) const;
    bool may_send(std::string_view address) const;
    bool may_broadcast() const noexcept { return allow.broadcast && !deny.broadcast; }
    bool may_register(std::string_view service) const;
    bool may_subscribe_clients(std::string_view pattern) const;
};

// Parses and compiles the "hs" object. Unknown keys, wrong types and invalid
// patterns are errors (a typo must not silently grant or withhold a right),
// and so are more than `max_rules` rules (allow and deny together). Returns
// "" on success.
std::string parse_grants(const nlohmann::json& claim, grants& out,
                         std::size_t max_rules = std::numeric_limits<std::size_t>::max());

}  // namespace hyperstreams::router
