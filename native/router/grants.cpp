#include "grants.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "hyperstreams/names.hpp"

namespace hyperstreams::router {
namespace {

using json = nlohmann::json;

// Splits off the first dot-separated token; `more` says whether one follows.
std::string_view next_token(std::string_view& rest, bool& more) noexcept {
    const std::size_t dot = rest.find('.');
    std::string_view token = rest.substr(0, dot);
    more = dot != std::string_view::npos;
    rest = more ? rest.substr(dot + 1) : std::string_view{};
    return token;
}

// "SERVICE_PATTERN" or "SERVICE_PATTERN/METHOD" (METHOD may be "*").
bool split_call_rule(std::string_view rule, std::string_view& service, std::string_view& method) noexcept {
    const std::size_t slash = rule.find('/');
    service = rule.substr(0, slash);
    method = slash == std::string_view::npos ? std::string_view("*") : rule.substr(slash + 1);
    return is_valid_pattern(service) && !method.empty() && method.find('/') == std::string_view::npos;
}

bool valid_pattern(std::string_view s) noexcept { return is_valid_pattern(s); }
bool valid_call_rule(std::string_view s) noexcept {
    std::string_view a, b;
    return split_call_rule(s, a, b);
}
bool valid_address_rule(std::string_view s) noexcept { return !s.empty() && s.size() <= 256; }

// The rules of one claim, counted against the limit while they are parsed.
struct rule_count {
    std::size_t limit;
    std::size_t seen = 0;
};

template <typename Add>
std::string parse_list(const json& value, std::string_view key, bool (*valid)(std::string_view) noexcept,
                       rule_count& count, Add add) {
    if (!value.is_array()) return std::string(key) + ": expected an array of strings";
    for (const json& item : value) {
        if (!item.is_string()) return std::string(key) + ": expected an array of strings";
        const std::string& s = item.get_ref<const std::string&>();
        if (!valid(s)) return std::string(key) + ": '" + s + "' is not a valid rule";
        if (++count.seen > count.limit) return "more than " + std::to_string(count.limit) + " rules";
        add(s);
    }
    return {};
}

std::string parse_rules(const json& obj, rule_set& out, bool allow_deny, grants* owner, rule_count& count) {
    if (!obj.is_object()) return "expected an object";
    for (const auto& [key, value] : obj.items()) {
        std::string err;
        if (key == "subscribe") {
            err = parse_list(value, key, valid_pattern, count,
                             [&](std::string_view r) { out.subscribe.add(r); });
        } else if (key == "publish") {
            err = parse_list(value, key, valid_pattern, count,
                             [&](std::string_view r) { out.publish.add(r); });
        } else if (key == "call") {
            err = parse_list(value, key, valid_call_rule, count, [&](std::string_view r) {
                std::string_view service, method;
                split_call_rule(r, service, method);
                out.call.add(service, method);
            });
        } else if (key == "send") {
            err = parse_list(value, key, valid_address_rule, count,
                             [&](std::string_view r) { out.send.add(r); });
        } else if (key == "register") {
            err = parse_list(value, key, valid_pattern, count,
                             [&](std::string_view r) { out.register_service.add(r); });
        } else if (key == "subscribe_clients") {
            err = parse_list(value, key, valid_pattern, count,
                             [&](std::string_view r) { out.subscribe_clients.add(r); });
        } else if (key == "channels" && allow_deny) {
            err = parse_list(value, key, valid_pattern, count,
                             [&](std::string_view r) { owner->channels.emplace_back(r); });
        } else if (key == "broadcast") {
            if (!value.is_boolean()) err = "broadcast: expected true or false";
            else out.broadcast = value.get<bool>();
        } else if (key == "deny" && allow_deny) {
            err = parse_rules(value, owner->deny, false, nullptr, count);
            if (!err.empty()) err = "deny: " + err;
        } else {
            err = "unknown key '" + key + "'";
        }
        if (!err.empty()) return err;
    }
    return {};
}

}  // namespace

// ---------------------------------------------------------------- pattern_set

pattern_set::pattern_set() : nodes_(1) {}

void pattern_set::add(std::string_view pattern) {
    std::uint32_t at = 0;
    bool more = true;
    while (more) {
        const std::string_view token = next_token(pattern, more);
        auto it = nodes_[at].children.find(token);
        if (it == nodes_[at].children.end()) {
            const auto fresh = static_cast<std::uint32_t>(nodes_.size());
            nodes_.emplace_back();  // may move nodes_: look the parent up again
            it = nodes_[at].children.emplace(std::string(token), fresh).first;
        }
        at = it->second;
    }
    nodes_[at].ends_pattern = true;
}

const pattern_set::node* pattern_set::child(const node& n, std::string_view token) const {
    const auto it = n.children.find(token);
    return it == n.children.end() ? nullptr : &nodes_[it->second];
}

bool pattern_set::matches(std::string_view channel) const { return matches_below(nodes_[0], channel, true); }
bool pattern_set::covers(std::string_view pattern) const { return covers_below(nodes_[0], pattern, true); }
bool pattern_set::overlaps(std::string_view pattern) const { return overlaps_below(nodes_[0], pattern, true); }

// Each walk: `n` is where the patterns stand after the tokens already taken;
// `rest` holds the asked name's tokens still to take (`more`: at least one).
// A ">" node always ends a pattern (">" is a pattern's last token).

bool pattern_set::matches_below(const node& n, std::string_view rest, bool more) const {
    if (!more) return n.ends_pattern;
    const std::string_view token = next_token(rest, more);
    if (child(n, ">") != nullptr) return true;  // ">" matches this token and any after it
    if (const node* exact = child(n, token); exact && matches_below(*exact, rest, more)) return true;
    const node* any = child(n, "*");
    return any != nullptr && matches_below(*any, rest, more);
}

bool pattern_set::covers_below(const node& n, std::string_view rest, bool more) const {
    if (!more) return n.ends_pattern;
    const std::string_view token = next_token(rest, more);
    if (child(n, ">") != nullptr) return true;  // covers one or more tokens, whatever they are
    if (token == ">") return false;             // channels of any length: only ">" covers them
    if (const node* any = child(n, "*"); any && covers_below(*any, rest, more)) return true;
    if (token == "*") return false;  // a literal covers no "*"
    const node* exact = child(n, token);
    return exact != nullptr && covers_below(*exact, rest, more);
}

bool pattern_set::overlaps_below(const node& n, std::string_view rest, bool more) const {
    if (!more) return n.ends_pattern;
    const std::string_view token = next_token(rest, more);
    if (child(n, ">") != nullptr) return true;
    // Every node leads to the end of a pattern, so any child is a pattern
    // with one more token or more, which ">" overlaps.
    if (token == ">") return !n.children.empty();
    if (token == "*") {
        for (const auto& [t, index] : n.children)
            if (overlaps_below(nodes_[index], rest, more)) return true;
        return false;
    }
    if (const node* exact = child(n, token); exact && overlaps_below(*exact, rest, more)) return true;
    const node* any = child(n, "*");
    return any != nullptr && overlaps_below(*any, rest, more);
}

// ---------------------------------------------------------------- call_rules

void call_rules::add(std::string_view service_pattern, std::string_view method) {
    if (method == "*") {
        every_method_.add(service_pattern);
        return;
    }
    auto it = by_method_.find(method);
    if (it == by_method_.end()) it = by_method_.emplace(std::string(method), pattern_set{}).first;
    it->second.add(service_pattern);
}

bool call_rules::matches(std::string_view service, std::string_view method) const {
    if (every_method_.matches(service)) return true;
    const auto it = by_method_.find(method);
    return it != by_method_.end() && it->second.matches(service);
}

// ---------------------------------------------------------------- address_rules

void address_rules::add(std::string_view rule) {
    if (rule.back() != '*') {
        exact_.emplace(rule);
        return;
    }
    const std::string_view prefix = rule.substr(0, rule.size() - 1);
    prefixes_.emplace(prefix);
    const auto at = std::lower_bound(prefix_lengths_.begin(), prefix_lengths_.end(), prefix.size());
    if (at == prefix_lengths_.end() || *at != prefix.size()) prefix_lengths_.insert(at, prefix.size());
}

bool address_rules::matches(std::string_view address) const {
    if (exact_.find(address) != exact_.end()) return true;
    for (const std::size_t length : prefix_lengths_) {
        if (length > address.size()) return false;
        if (prefixes_.find(address.substr(0, length)) != prefixes_.end()) return true;
    }
    return false;
}

// ---------------------------------------------------------------- grants

bool grants::may_subscribe(std::string_view pattern) const {
    return allow.subscribe.covers(pattern) && !deny.subscribe.overlaps(pattern);
}

bool grants::may_publish(std::string_view channel) const {
    return allow.publish.matches(channel) && !deny.publish.matches(channel);
}

bool grants::may_call(std::string_view service, std::string_view method) const {
    return allow.call.matches(service, method) && !deny.call.matches(service, method);
}

bool grants::may_send(std::string_view address) const {
    return allow.send.matches(address) && !deny.send.matches(address);
}

bool grants::may_subscribe_clients(std::string_view pattern) const {
    return allow.subscribe_clients.covers(pattern) && !deny.subscribe_clients.overlaps(pattern);
}

bool grants::may_register(std::string_view service) const {
    return allow.register_service.matches(service) && !deny.register_service.matches(service);
}

std::string parse_grants(const nlohmann::json& claim, grants& out, std::size_t max_rules) {
    out = grants{};
    rule_count count{max_rules};
    if (std::string err = parse_rules(claim, out.allow, true, &out, count); !err.empty()) return err;
    // Checked once the whole claim is read: a deny may come after the channels.
    for (const std::string& pattern : out.channels)
        if (!out.may_subscribe(pattern))
            return "channels: '" + pattern + "' is not one this claim may subscribe to";
    return {};
}

}  // namespace hyperstreams::router
