// The routing core's pub/sub room: subscriptions (the topic tree), publish
// (accepted here, positioned by the channel log, delivered here), resume,
// and the route cache that makes a run of publishes to one channel cheap.
//
// Publish is two-phase (channel_log.hpp): publish() accepts (name, rate,
// rights) and appends to the log; the log says where it placed it
// (placed(): the ack) and hands the publication back to deliver(), at once
// (in memory) or when its answer arrives; deliver() adds the message frame,
// encoded once, to the run of its subscribers (connection_table).
//
// Presence (presence.hpp) hears here of the subscriptions that make members.
//
// A resuming subscribe (since) is subscribed at once, so live publications
// keep coming, but they are held back for that subscriber until the
// history it asked for arrives; then it gets its ack, the gap if any, the
// history, and the held publications the history did not already hold
// (merged by seq).
//
// A latest-value subscribe (frame_flags::latest, without since) takes the
// same path: subscribed at once, held (for a pattern, every channel it
// matches), and once the log read the last publication of each matching
// channel, it gets its ack, those publications (flag replayed, at their
// positions), and the held ones that are newer.
//
// A server-side subscription (the token's channels at hello, a backend's
// subscribe_client) is made here too, for the connection and under its own
// rights: the connection hears of it by a subscribed frame, queued before
// any message of it, and it starts live. unsubscribe_client ends one with an
// unsubscribed frame; so does a token refresh that withdraws one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "channel_log.hpp"
#include "config.hpp"
#include "connection_table.hpp"
#include "namespaces.hpp"
#include "presence.hpp"
#include "topic_tree.hpp"

namespace hyperstreams::router {

class pubsub final : private channel_log::sink {
public:
    // `presence`: where a cluster keeps presence; null for a router on its own.
    pubsub(const router_config& cfg, authorizer& auth, metrics& m, connection_table& table, channel_log& log,
           presence_cluster* presence = nullptr);
    pubsub(const pubsub&) = delete;
    pubsub& operator=(const pubsub&) = delete;

    void subscribe(connection& c, const frame& f, time_point now);
    void unsubscribe(connection& c, const frame& f);
    void publish(connection& c, const frame& f, time_point now);
    // Who is subscribed to a channel: answered with presence_list or error.
    void presence(connection& c, const frame& f);

    // The router subscribes `c` to `pattern` itself (subscribed frame), or
    // says why not: invalid_name, already_subscribed, too_many_subscriptions,
    // forbidden (`c` may not subscribe to it).
    verdict subscribe_for(connection& c, std::string_view pattern, slow_policy asked);
    // Ends `c`'s subscription to `pattern` (unsubscribed frame with `why`),
    // or not_subscribed.
    verdict unsubscribe_for(connection& c, std::string_view pattern, errc why);

    // The connection is going: its subscriptions end.
    void drop(connection& c);
    // Ends the subscriptions `c`'s rights no longer allow (after a token
    // refresh): an error forbidden with each one's id (a server-side one's:
    // an unsubscribed frame with forbidden). Returns how many.
    std::size_t withdraw(connection& c);

    std::size_t subscription_count() const noexcept { return topics_.subscription_count(); }
    const channel_log& log() const noexcept { return log_; }

private:
    // channel_log::sink
    void placed(const publisher& from, position at) override;
    shared_bytes deliver(std::string_view channel, const publication& p, bool keep) override;
    void append_failed(const publisher& from, errc code, std::string_view text) override;
    void history_read(std::uint64_t ticket, std::string_view channel, history h) override;
    void history_failed(std::uint64_t ticket, std::string_view channel, errc code, std::string_view text) override;
    void latest_read(std::uint64_t ticket, std::string_view pattern, position now,
                     std::span<const latest_value> values) override;

    // Live publications held back for a subscriber whose resume of a
    // channel, or latest-value read of a pattern, waits for the log.
    struct held {
        slow_policy policy = slow_policy::drop_oldest;
        std::uint32_t reads = 0;  // history reads in flight
        std::vector<publication> live;
    };
    using held_key = std::pair<connection_id, std::string>;
    struct held_less {
        using is_transparent = void;
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const noexcept {
            return a.first != b.first ? a.first < b.first
                                      : std::string_view(a.second) < std::string_view(b.second);
        }
    };
    struct resume_read {
        connection_id connection = 0;
        std::uint32_t subscribe_id = 0;
        position since;    // the position resumed from
        bool resume = false;  // a resume (history), not only the position
    };

    // The resume of `ticket` is answered: its connection, and what was held
    // for it (null when the connection or the hold is gone).
    std::pair<connection*, held*> take_read(std::uint64_t ticket, std::string_view channel, resume_read& read);
    void send_unsubscribed(connection& c, std::string_view pattern, errc why);
    void send_gap(connection& c, std::string_view channel, std::uint32_t epoch, std::uint64_t from, std::uint64_t to);
    void release(connection_id conn, std::string_view channel);
    // Holds `c`'s deliveries of what `name` (a channel or a pattern) matches.
    held& hold(const connection& c, std::string_view name, slow_policy policy);
    // The hold of `subscriber` that takes publications of `channel`, if any.
    held* holding(connection_id subscriber, std::string_view channel);
    void changed_interest(std::string_view pattern, topic_tree::change ch, interest_change what);
    // `c`'s subscription to `pattern` ended: a member leaves its channel.
    void subscription_ended(connection& c, std::string_view pattern);
    // Why `feature` (presence, join_leave) is not_enabled for a channel with `options`.
    std::string not_enabled_text(const channel_options& options, std::string_view feature) const;
    [[nodiscard]] bool take_publish_allowance(connection& c, time_point now);
    void send_publication(connection& c, std::string_view channel, const publication& p, slow_policy policy);

    // Where the last channel published to goes, kept while the topic tree
    // and the held resumes stay the same (publishers mostly send runs to
    // one channel, so a publish usually skips the name check and the topic
    // walk). A connection that matches is in the topic tree until it is
    // removed, and removing it changes the tree, so the pointers hold.
    struct publish_route {
        std::string channel;
        bool valid = false;
        std::uint64_t topics_version = 0;
        std::uint64_t held_version = 0;
        std::vector<delivery_target> targets;
        bool keeps_latest = false;     // a target's policy is keep_latest
        std::uint64_t generation = 0;  // changes with targets (connection_table slices them by lane)
        std::vector<held*> holding;  // subscribers resuming this channel
        const channel_options* options = nullptr;  // the channel's namespace's
    };
    [[nodiscard]] bool route_kept(std::string_view channel) const noexcept;
    const publish_route& route_to(std::string_view channel);

    const router_config& cfg_;
    authorizer& auth_;
    metrics& metrics_;
    connection_table& table_;
    channel_log& log_;
    const namespace_table namespaces_;
    const bool any_presence_;  // a namespace has presence: subscriptions may make members
    presence_room presence_;
    topic_tree topics_;
    std::vector<topic_tree::match> match_scratch_;
    publish_route route_;
    std::map<held_key, held, held_less> held_;
    std::uint64_t held_version_ = 0;
    std::size_t pattern_holds_ = 0;  // holds of held_ keyed by a pattern
    std::map<std::uint64_t, resume_read> reads_;  // by ticket
    std::uint64_t next_ticket_ = 0;
};

}  // namespace hyperstreams::router
