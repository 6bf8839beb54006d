#include "grants.hpp"

#include <nlohmann/json.hpp>

#include "hyperstreams/names.hpp"

namespace hyperstreams::router {
namespace {

using json = nlohmann::json;

// Splits off the first dot-separated token.
std::string_view next_token(std::string_view& rest) noexcept {
    const std::size_t dot = rest.find('.');
    std::string_view token = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    return token;
}

// "SERVICE_PATTERN" or "SERVICE_PATTERN/METHOD" (METHOD may be "*").
bool split_call_rule(std::string_view rule, std::string_view& service, std::string_view& method) noexcept {
    const std::size_t slash = rule.find('/');
    service = rule.substr(0, slash);
    method = slash == std::string_view::npos ? std::string_view("*") : rule.substr(slash + 1);
    return is_valid_pattern(service) && !method.empty() && method.find('/') == std::string_view::npos;
}

bool call_rule_matches(std::string_view rule, std::string_view service, std::string_view method) noexcept {
    std::string_view rs, rm;
    if (!split_call_rule(rule, rs, rm)) return false;
    return pattern_matches(rs, service) && (rm == "*" || rm == method);
}

bool address_rule_matches(std::string_view rule, std::string_view address) noexcept {
    if (!rule.empty() && rule.back() == '*') return address.substr(0, rule.size() - 1) == rule.substr(0, rule.size() - 1);
    return rule == address;
}

template <typename Pred>
bool any_of(const std::vector<std::string>& rules, Pred pred) {
    for (const std::string& r : rules)
        if (pred(r)) return true;
    return false;
}

std::string parse_list(const json& value, std::string_view key, bool (*valid)(std::string_view) noexcept,
                       std::vector<std::string>& out) {
    if (!value.is_array()) return std::string(key) + ": expected an array of strings";
    for (const json& item : value) {
        if (!item.is_string()) return std::string(key) + ": expected an array of strings";
        std::string s = item.get<std::string>();
        if (!valid(s)) return std::string(key) + ": '" + s + "' is not a valid rule";
        out.push_back(std::move(s));
    }
    return {};
}

bool valid_pattern(std::string_view s) noexcept { return is_valid_pattern(s); }
bool valid_call_rule(std::string_view s) noexcept {
    std::string_view a, b;
    return split_call_rule(s, a, b);
}
bool valid_address_rule(std::string_view s) noexcept { return !s.empty() && s.size() <= 256; }

std::string parse_rules(const json& obj, rule_set& out, bool allow_deny, grants* owner) {
    if (!obj.is_object()) return "expected an object";
    for (const auto& [key, value] : obj.items()) {
        std::string err;
        if (key == "subscribe") err = parse_list(value, key, valid_pattern, out.subscribe);
        else if (key == "publish") err = parse_list(value, key, valid_pattern, out.publish);
        else if (key == "call") err = parse_list(value, key, valid_call_rule, out.call);
        else if (key == "send") err = parse_list(value, key, valid_address_rule, out.send);
        else if (key == "register") err = parse_list(value, key, valid_pattern, out.register_service);
        else if (key == "broadcast") {
            if (!value.is_boolean()) err = "broadcast: expected true or false";
            else out.broadcast = value.get<bool>();
        } else if (key == "deny" && allow_deny) {
            err = parse_rules(value, owner->deny, false, nullptr);
            if (!err.empty()) err = "deny: " + err;
        } else {
            err = "unknown key '" + key + "'";
        }
        if (!err.empty()) return err;
    }
    return {};
}

}  // namespace

bool pattern_covers(std::string_view allowed, std::string_view pattern) noexcept {
    for (;;) {
        if (allowed.empty() && pattern.empty()) return true;
        if (allowed.empty() || pattern.empty()) return false;
        const std::string_view a = next_token(allowed);
        const std::string_view p = next_token(pattern);
        if (a == ">") return true;  // p is at least one token
        if (p == ">") return false;  // p reaches channels of any length, a does not
        if (a == "*") continue;       // p's token is one token, literal or *
        if (p == "*" || a != p) return false;
    }
}

bool patterns_overlap(std::string_view a, std::string_view b) noexcept {
    for (;;) {
        if (a.empty() && b.empty()) return true;
        if (a.empty() || b.empty()) return false;
        const std::string_view ta = next_token(a);
        const std::string_view tb = next_token(b);
        if (ta == ">" || tb == ">") return true;
        if (ta == "*" || tb == "*" || ta == tb) continue;
        return false;
    }
}

bool grants::may_subscribe(std::string_view pattern) const {
    return any_of(allow.subscribe, [&](const std::string& r) { return pattern_covers(r, pattern); }) &&
           !any_of(deny.subscribe, [&](const std::string& r) { return patterns_overlap(r, pattern); });
}

bool grants::may_publish(std::string_view channel) const {
    return any_of(allow.publish, [&](const std::string& r) { return pattern_matches(r, channel); }) &&
           !any_of(deny.publish, [&](const std::string& r) { return pattern_matches(r, channel); });
}

bool grants::may_call(std::string_view service, std::string_view method) const {
    return any_of(allow.call, [&](const std::string& r) { return call_rule_matches(r, service, method); }) &&
           !any_of(deny.call, [&](const std::string& r) { return call_rule_matches(r, service, method); });
}

bool grants::may_send(std::string_view address) const {
    return any_of(allow.send, [&](const std::string& r) { return address_rule_matches(r, address); }) &&
           !any_of(deny.send, [&](const std::string& r) { return address_rule_matches(r, address); });
}

bool grants::may_register(std::string_view service) const {
    return any_of(allow.register_service, [&](const std::string& r) { return pattern_matches(r, service); }) &&
           !any_of(deny.register_service, [&](const std::string& r) { return pattern_matches(r, service); });
}

std::string parse_grants(const nlohmann::json& claim, grants& out) {
    out = grants{};
    return parse_rules(claim, out.allow, true, &out);
}

}  // namespace hyperstreams::router
