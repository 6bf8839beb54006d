// Channel namespaces (channels.namespaces): options for the channels a
// pattern matches, on top of the router-wide settings that every other
// channel takes.
//
// A namespace as written names only what it changes; what it leaves out is
// the router-wide setting (history.max_messages, history.ttl_s,
// outbox.policy, limits.max_payload, channels.idempotency_window_s; no
// message expiry), resolved when the configuration is
// complete, so a flag given after the file still reaches it.
//
// Overlaps: the most specific pattern wins. Of two patterns that match one
// channel, the first token where they differ decides: a literal token beats
// "*", and "*" beats ">" ("factory.line1.>" over "factory.*.>" over
// "factory.>"). That order has no ties between two different patterns that
// match one channel, so the order of the list does not matter; the same
// pattern twice is refused at start.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "hyperstreams/frame.hpp"

namespace hyperstreams::router {

struct router_config;

// Who may publish to a namespace's channels: anyone the rights allow, or
// backends only (frontends get forbidden, whatever their token grants).
enum class publish_rule : std::uint8_t { anyone, backends };

// What a channel's namespace (or the router-wide settings) gives it.
struct channel_options {
    std::uint32_t history_size = 64;  // messages kept for resume; 0: none
    std::uint32_t history_ttl_s = 3600;  // with cluster.redis: the history expires this long after the last publish
    slow_policy policy = slow_policy::drop_oldest;  // for subscribes that leave it to the router
    std::uint32_t max_message_bytes = 1u << 20;     // payload bytes of one publish
    publish_rule publish = publish_rule::anyone;
    // A publish without a ttl of its own expires this long after it was
    // placed; 0 (the default): it does not expire. (A publish's own ttl
    // cannot be 0: it says "expire", not "never".)
    std::uint32_t message_ttl_s = 0;
    std::uint32_t idempotency_window_s = 300;  // channels.idempotency_window_s
    // A subscribe may ask for the last message of each channel it matches
    // (frame_flags::latest), which the channel then keeps even without history.
    bool latest = false;
    bool presence = false;    // who is subscribed (presence.hpp)
    bool join_leave = false;  // join and leave events; needs presence

    // The publications a channel keeps: its history, and at least the last
    // one where a subscribe may ask for it.
    [[nodiscard]] std::uint32_t messages_kept() const noexcept {
        return latest && history_size == 0 ? 1 : history_size;
    }
};

// One entry of channels.namespaces as written: what it leaves out is nullopt.
struct namespace_config {
    std::string pattern;
    std::optional<std::uint32_t> history_size;
    std::optional<std::uint32_t> history_ttl_s;
    std::optional<slow_policy> policy;
    std::optional<std::uint32_t> max_message_bytes;
    std::optional<publish_rule> publish;
    std::optional<std::uint32_t> message_ttl_s;
    std::optional<std::uint32_t> idempotency_window_s;
    bool latest = false;
    bool presence = false;
    bool join_leave = false;
};

// Checks channels.namespaces (a JSON array of objects) and stores it in
// `out`; returns "" or what is wrong, naming the entry and the key.
std::string parse_namespaces(const nlohmann::json& v, std::vector<namespace_config>& out);
// Every namespace with all its options, as --print-config shows them.
nlohmann::json namespaces_json(const router_config& cfg);
// Checks the namespaces against the router-wide settings; "" or the problem.
std::string check_namespaces(const router_config& cfg);

std::string_view publish_rule_name(publish_rule r) noexcept;

// The options of the channels no namespace names.
channel_options default_channel_options(const router_config& cfg);

// Channel name -> its options. Built once from the configuration; the
// options it hands out live as long as it does.
class namespace_table {
public:
    explicit namespace_table(const router_config& cfg);

    // The options of `channel` (a valid channel name).
    [[nodiscard]] const channel_options& of_channel(std::string_view channel) const noexcept;
    // The options shared by every channel `pattern` (a valid pattern)
    // matches: the most specific namespace whose pattern holds all of
    // them, else the router-wide ones.
    [[nodiscard]] const channel_options& of_pattern(std::string_view pattern) const noexcept;
    // The pattern of the namespace `options` came from; empty for the
    // router-wide options.
    [[nodiscard]] std::string_view pattern_of(const channel_options& options) const noexcept;

private:
    struct entry {
        std::string pattern;
        channel_options options;
    };
    std::vector<entry> entries_;  // most specific first
    channel_options defaults_;
};

}  // namespace hyperstreams::router
