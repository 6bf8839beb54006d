#include "namespaces.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "config.hpp"
#include "hyperstreams/names.hpp"

namespace hyperstreams::router {
namespace {

using json = nlohmann::json;

constexpr std::string_view known_keys[] = {"pattern", "history_size", "history_ttl_s", "policy",
                                           "max_message_bytes", "publish", "message_ttl_s",
                                           "idempotency_window_s", "latest", "presence", "join_leave"};

std::string read_count(const json& v, std::string_view key, std::uint64_t min, std::uint64_t max,
                       std::optional<std::uint32_t>& out) {
    if (!v.is_number_unsigned()) return std::string(key) + ": expected a non-negative integer";
    const auto n = v.get<std::uint64_t>();
    if (n < min || n > max)
        return std::string(key) + ": must be between " + std::to_string(min) + " and " + std::to_string(max);
    out = static_cast<std::uint32_t>(n);
    return {};
}

std::string read_bool(const json& v, std::string_view key, bool& out) {
    if (!v.is_boolean()) return std::string(key) + ": expected true or false";
    out = v.get<bool>();
    return {};
}

std::string read_entry(const json& item, namespace_config& ns) {
    if (!item.is_object()) return "expected an object";
    const auto pattern = item.find("pattern");
    if (pattern == item.end()) return "pattern: missing";
    if (!pattern->is_string()) return "pattern: expected a string";
    const std::string written = pattern->get<std::string>();
    if (std::string_view problem = pattern_problem(written); !problem.empty())
        return "pattern: '" + written + "' " + std::string(problem);
    ns.pattern = written;
    for (const auto& [key, v] : item.items()) {
        if (std::find(std::begin(known_keys), std::end(known_keys), key) == std::end(known_keys))
            return "unknown key '" + key + "'";
        std::string err;
        if (key == "history_size") {
            err = read_count(v, key, 0, 1u << 20, ns.history_size);
        } else if (key == "history_ttl_s") {
            err = read_count(v, key, 1, 0xFFFFFFFFu, ns.history_ttl_s);
        } else if (key == "message_ttl_s") {
            err = read_count(v, key, 0, 0xFFFFFFFFu, ns.message_ttl_s);
        } else if (key == "idempotency_window_s") {
            err = read_count(v, key, 1, 0xFFFFFFFFu, ns.idempotency_window_s);
        } else if (key == "max_message_bytes") {
            err = read_count(v, key, 1, 1u << 30, ns.max_message_bytes);
        } else if (key == "policy") {
            const std::string text = v.is_string() ? v.get<std::string>() : std::string();
            if (text == "drop_oldest") ns.policy = slow_policy::drop_oldest;
            else if (text == "keep_latest") ns.policy = slow_policy::keep_latest;
            else if (text == "disconnect") ns.policy = slow_policy::disconnect;
            else err = "policy: " + v.dump() + " is not one of drop_oldest|keep_latest|disconnect";
        } else if (key == "publish") {
            const std::string text = v.is_string() ? v.get<std::string>() : std::string();
            if (text == "anyone") ns.publish = publish_rule::anyone;
            else if (text == "backends") ns.publish = publish_rule::backends;
            else err = "publish: " + v.dump() + " is not one of anyone|backends";
        } else if (key == "latest") {
            err = read_bool(v, key, ns.latest);
        } else if (key == "presence") {
            err = read_bool(v, key, ns.presence);
        } else if (key == "join_leave") {
            err = read_bool(v, key, ns.join_leave);
        }
        if (!err.empty()) return err;
    }
    return {};
}

channel_options effective(const router_config& cfg, const namespace_config& ns) {
    channel_options o = default_channel_options(cfg);
    o.history_size = ns.history_size.value_or(o.history_size);
    o.history_ttl_s = ns.history_ttl_s.value_or(o.history_ttl_s);
    o.policy = ns.policy.value_or(o.policy);
    o.max_message_bytes = ns.max_message_bytes.value_or(o.max_message_bytes);
    o.publish = ns.publish.value_or(o.publish);
    o.message_ttl_s = ns.message_ttl_s.value_or(o.message_ttl_s);
    o.idempotency_window_s = ns.idempotency_window_s.value_or(o.idempotency_window_s);
    o.latest = ns.latest;
    o.presence = ns.presence;
    o.join_leave = ns.join_leave;
    return o;
}

// A token's rank in the overlap rule: a literal beats "*", "*" beats ">".
int rank(std::string_view token) noexcept { return token == ">" ? 0 : token == "*" ? 1 : 2; }

// True when `a` is more specific than `b` (namespaces.hpp, Overlaps).
bool more_specific(std::string_view a, std::string_view b) noexcept {
    while (!a.empty() && !b.empty()) {
        const std::string_view ta = a.substr(0, a.find('.'));
        const std::string_view tb = b.substr(0, b.find('.'));
        if (rank(ta) != rank(tb)) return rank(ta) > rank(tb);
        a = ta.size() == a.size() ? std::string_view() : a.substr(ta.size() + 1);
        b = tb.size() == b.size() ? std::string_view() : b.substr(tb.size() + 1);
    }
    return !a.empty() && b.empty();
}

// True when every channel `pattern` matches, `holder` matches too.
bool holds(std::string_view holder, std::string_view pattern) noexcept {
    while (!holder.empty() && !pattern.empty()) {
        const std::string_view th = holder.substr(0, holder.find('.'));
        const std::string_view tp = pattern.substr(0, pattern.find('.'));
        if (th == ">") return true;
        if (tp == ">" || (th != "*" && (tp == "*" || th != tp))) return false;
        holder = th.size() == holder.size() ? std::string_view() : holder.substr(th.size() + 1);
        pattern = tp.size() == pattern.size() ? std::string_view() : pattern.substr(tp.size() + 1);
    }
    return holder.empty() && pattern.empty();
}

}  // namespace

std::string_view publish_rule_name(publish_rule r) noexcept {
    return r == publish_rule::backends ? "backends" : "anyone";
}

std::string parse_namespaces(const json& v, std::vector<namespace_config>& out) {
    if (!v.is_array()) return "expected an array of objects";
    std::vector<namespace_config> parsed;
    for (std::size_t i = 0; i < v.size(); ++i) {
        namespace_config ns;
        if (std::string err = read_entry(v[i], ns); !err.empty()) {
            const std::string named = ns.pattern.empty() ? std::string() : " ('" + ns.pattern + "')";
            return "entry " + std::to_string(i + 1) + named + ": " + err;
        }
        for (const namespace_config& before : parsed)
            if (before.pattern == ns.pattern)
                return "entry " + std::to_string(i + 1) + ": the pattern '" + ns.pattern + "' is listed twice";
        parsed.push_back(std::move(ns));
    }
    out = std::move(parsed);
    return {};
}

json namespaces_json(const router_config& cfg) {
    json list = json::array();
    for (const namespace_config& ns : cfg.namespaces) {
        const channel_options o = effective(cfg, ns);
        list.push_back(json{{"pattern", ns.pattern},
                            {"history_size", o.history_size},
                            {"history_ttl_s", o.history_ttl_s},
                            {"policy", policy_name(o.policy)},
                            {"max_message_bytes", o.max_message_bytes},
                            {"publish", publish_rule_name(o.publish)},
                            {"message_ttl_s", o.message_ttl_s},
                            {"idempotency_window_s", o.idempotency_window_s},
                            {"latest", o.latest},
                            {"presence", o.presence},
                            {"join_leave", o.join_leave}});
    }
    return list;
}

std::string check_namespaces(const router_config& cfg) {
    for (const namespace_config& ns : cfg.namespaces) {
        const channel_options o = effective(cfg, ns);
        const std::string name = "channels.namespaces '" + ns.pattern + "': ";
        // A larger payload never arrives: the transport refuses it first.
        if (o.max_message_bytes > cfg.max_payload)
            return name + "max_message_bytes must not exceed limits.max_payload (" +
                   std::to_string(cfg.max_payload) + ")";
        if (o.join_leave && !o.presence) return name + "join_leave needs presence (its events are presence's changes)";
        if (o.history_ttl_s > cfg.history_meta_ttl_s)
            return name + "history_ttl_s must not exceed history.meta_ttl_s (a channel's position outlives "
                          "its history)";
    }
    return {};
}

channel_options default_channel_options(const router_config& cfg) {
    channel_options o;
    o.history_size = cfg.history_max_messages;
    o.history_ttl_s = cfg.history_ttl_s;
    o.policy = cfg.outbox_policy;
    o.max_message_bytes = cfg.max_payload;
    o.idempotency_window_s = cfg.idempotency_window_s;
    return o;
}

namespace_table::namespace_table(const router_config& cfg) : defaults_(default_channel_options(cfg)) {
    for (const namespace_config& ns : cfg.namespaces) entries_.push_back(entry{ns.pattern, effective(cfg, ns)});
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const entry& a, const entry& b) { return more_specific(a.pattern, b.pattern); });
}

const channel_options& namespace_table::of_channel(std::string_view channel) const noexcept {
    for (const entry& e : entries_)
        if (pattern_matches(e.pattern, channel)) return e.options;
    return defaults_;
}

const channel_options& namespace_table::of_pattern(std::string_view pattern) const noexcept {
    for (const entry& e : entries_)
        if (holds(e.pattern, pattern)) return e.options;
    return defaults_;
}

std::string_view namespace_table::pattern_of(const channel_options& options) const noexcept {
    for (const entry& e : entries_)
        if (&e.options == &options) return e.pattern;
    return {};
}

}  // namespace hyperstreams::router
