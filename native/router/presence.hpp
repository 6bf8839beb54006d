// Presence: who is subscribed to each channel of a namespace with
// `presence`, and the join and leave events of namespaces with `join_leave`
// (docs/PROTOCOL.md section 11, Presence).
//
// A member is a connection whose subscription names the channel exactly. A
// wildcard subscription makes its connection a member of nothing: the
// channels a pattern matches are unbounded, and a member is someone who
// named the channel. Pub/sub tells this room when a subscription that
// counts begins and ends; the room keeps the members by channel and sends
// the events to the members that asked for them (subscribe flag
// join_leave), never to the member that joined or left.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "authorizer.hpp"
#include "connection_table.hpp"

namespace hyperstreams::router {

class presence_room {
public:
    presence_room(authorizer& auth, connection_table& table) : auth_(auth), table_(table) {}

    // `c` subscribed to `channel` (or subscribed again: only `wants_events`
    // changes). `announce`: the channel's namespace has join_leave.
    void join(connection& c, std::string_view channel, bool wants_events, bool announce);
    // `c`'s subscription to `channel` ended (unsubscribe, withdrawn, gone).
    void leave(connection& c, std::string_view channel, bool announce);
    // The presence_list that answers presence frame `id` on `channel`: at
    // most as many members as fit in `max_payload` bytes.
    void answer(connection& c, std::uint32_t id, std::string_view channel, std::uint32_t max_payload);

    [[nodiscard]] std::size_t channel_count() const noexcept { return channels_.size(); }

private:
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    // Connection -> whether it wants the channel's joins and leaves.
    using members = std::map<connection_id, bool>;

    presence_member member_of(const connection& c);
    void announce(frame_kind kind, const connection& who, std::string_view channel, const members& to);

    authorizer& auth_;
    connection_table& table_;
    std::unordered_map<std::string, members, name_hash, std::equal_to<>> channels_;
    std::vector<std::uint8_t> scratch_;
};

}  // namespace hyperstreams::router
