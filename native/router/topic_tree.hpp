// Subscription matching, socket-free (uWebSockets' TopicTree idea): a trie of
// pattern tokens in which "*" and ">" are children like any other token.
// Matching a channel walks the exact token, "*" and ">" branches, so its cost
// grows with the channel's depth and the matching subscriptions, not with the
// number of patterns.
//
// Subscribers are opaque 64-bit ids; every subscription carries a small tag
// (the router keeps the slow-consumer policy in it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hyperstreams::router {

class topic_tree {
public:
    using subscriber_id = std::uint64_t;

    struct match {
        subscriber_id subscriber;
        std::uint8_t tag;
    };

    topic_tree();
    ~topic_tree();
    topic_tree(const topic_tree&) = delete;
    topic_tree& operator=(const topic_tree&) = delete;

    // What a subscribe or unsubscribe changed; false when nothing did.
    struct change {
        bool changed = false;  // the subscription was added / removed
        // The pattern got its first subscriber / lost its last: interest
        // in what it matches begins / ends.
        bool interest = false;
        explicit operator bool() const noexcept { return changed; }
    };

    // `pattern` must be valid (names.hpp). Nothing changed when the
    // subscriber already had this pattern; its tag is updated then.
    change subscribe(subscriber_id who, std::string_view pattern, std::uint8_t tag);
    // Nothing changed when the subscriber did not have this pattern.
    change unsubscribe(subscriber_id who, std::string_view pattern);

    // Every subscriber with at least one pattern matching `channel` (a valid
    // channel), once, in ascending id order. When several of its patterns
    // match, the tag is that of the most specific one (exact tokens before
    // "*" before ">", left to right).
    void collect(std::string_view channel, std::vector<match>& out) const;

    std::size_t subscription_count() const noexcept { return subscriptions_; }
    // Changes whenever what collect() returns may have changed (a pattern
    // or a tag added, changed or removed): a caller may keep collect()'s
    // answer for as long as this stays the same.
    std::uint64_t version() const noexcept { return version_; }

private:
    struct node;
    node* find_node(std::string_view pattern) const;
    void prune(std::string_view pattern);

    std::unique_ptr<node> root_;
    std::size_t subscriptions_ = 0;
    std::uint64_t version_ = 0;
};

}  // namespace hyperstreams::router
