#include "topic_tree.hpp"

#include <algorithm>

namespace hyperstreams::router {

struct topic_tree::node {
    // Ordered so that children iterate deterministically; std::less<> lets a
    // string_view find a key without building a string.
    std::map<std::string, std::unique_ptr<node>, std::less<>> children;
    // Sorted by subscriber id: matching merges sorted lists.
    std::vector<match> subscribers;

    bool empty() const noexcept { return children.empty() && subscribers.empty(); }
};

namespace {

std::string_view next_token(std::string_view& rest, bool& more) noexcept {
    const std::size_t dot = rest.find('.');
    std::string_view token = rest.substr(0, dot);
    more = dot != std::string_view::npos;
    rest = more ? rest.substr(dot + 1) : std::string_view{};
    return token;
}

bool less_id(const topic_tree::match& m, topic_tree::subscriber_id id) noexcept {
    return m.subscriber < id;
}

// Walks the trie; `specificity` orders the lists found so that the most
// specific pattern's tag wins when a subscriber appears in several.
template <typename Node, typename Fn>
void walk(const Node& n, std::string_view rest, bool has_rest, Fn& on_list) {
    if (!has_rest) {
        if (!n.subscribers.empty()) on_list(n.subscribers);
        return;
    }
    bool more = false;
    std::string_view token = next_token(rest, more);
    if (auto it = n.children.find(token); it != n.children.end()) walk(*it->second, rest, more, on_list);
    if (auto it = n.children.find(std::string_view("*")); it != n.children.end())
        walk(*it->second, rest, more, on_list);
    if (auto it = n.children.find(std::string_view(">")); it != n.children.end() &&
                                                         !it->second->subscribers.empty())
        on_list(it->second->subscribers);
}

}  // namespace

topic_tree::topic_tree() : root_(std::make_unique<node>()) {}
topic_tree::~topic_tree() = default;

topic_tree::change topic_tree::subscribe(subscriber_id who, std::string_view pattern, std::uint8_t tag) {
    node* n = root_.get();
    bool more = true;
    while (more) {
        std::string_view token = next_token(pattern, more);
        auto it = n->children.find(token);
        if (it == n->children.end())
            it = n->children.emplace(std::string(token), std::make_unique<node>()).first;
        n = it->second.get();
    }
    auto pos = std::lower_bound(n->subscribers.begin(), n->subscribers.end(), who, less_id);
    ++version_;
    if (pos != n->subscribers.end() && pos->subscriber == who) {
        pos->tag = tag;
        return {};
    }
    const bool first = n->subscribers.empty();
    n->subscribers.insert(pos, match{who, tag});
    ++subscriptions_;
    return {true, first};
}

topic_tree::node* topic_tree::find_node(std::string_view pattern) const {
    node* n = root_.get();
    bool more = true;
    while (more) {
        std::string_view token = next_token(pattern, more);
        auto it = n->children.find(token);
        if (it == n->children.end()) return nullptr;
        n = it->second.get();
    }
    return n;
}

topic_tree::change topic_tree::unsubscribe(subscriber_id who, std::string_view pattern) {
    node* n = find_node(pattern);
    if (n == nullptr) return {};
    auto pos = std::lower_bound(n->subscribers.begin(), n->subscribers.end(), who, less_id);
    if (pos == n->subscribers.end() || pos->subscriber != who) return {};
    n->subscribers.erase(pos);
    --subscriptions_;
    ++version_;
    const bool last = n->subscribers.empty();
    if (n->empty()) prune(pattern);
    return {true, last};
}

// Removes the empty nodes along `pattern`, deepest first.
void topic_tree::prune(std::string_view pattern) {
    std::vector<std::pair<node*, std::string_view>> path;  // parent, token
    node* n = root_.get();
    bool more = true;
    while (more) {
        std::string_view token = next_token(pattern, more);
        auto it = n->children.find(token);
        if (it == n->children.end()) return;
        path.emplace_back(n, token);
        n = it->second.get();
    }
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
        auto child = it->first->children.find(it->second);
        if (!child->second->empty()) break;
        it->first->children.erase(child);
    }
}

void topic_tree::collect(std::string_view channel, std::vector<match>& out) const {
    out.clear();
    std::size_t lists = 0;
    const std::vector<match>* first = nullptr;
    auto on_list = [&](const std::vector<match>& subs) {
        if (lists++ == 0) {
            first = &subs;
            return;
        }
        if (lists == 2) out.assign(first->begin(), first->end());
        // Merge keeping the entry already present: lists come most specific first.
        std::vector<match> merged;
        merged.reserve(out.size() + subs.size());
        auto a = out.begin();
        auto b = subs.begin();
        while (a != out.end() || b != subs.end()) {
            if (b == subs.end() || (a != out.end() && a->subscriber < b->subscriber)) {
                merged.push_back(*a++);
            } else if (a == out.end() || b->subscriber < a->subscriber) {
                merged.push_back(*b++);
            } else {
                merged.push_back(*a++);
                ++b;
            }
        }
        out.swap(merged);
    };
    walk(*root_, channel, true, on_list);
    if (lists == 1) out.assign(first->begin(), first->end());
}

}  // namespace hyperstreams::router
