// Presence: who is subscribed to each channel of a namespace with
// `presence`, and the join and leave events of namespaces with `join_leave`
// (docs/PROTOCOL.md section 11, Presence).
//
// A member is a connection whose subscription names the channel exactly. A
// wildcard subscription makes its connection a member of nothing: the
// channels a pattern matches are unbounded, and a member is someone who
// named the channel. Pub/sub tells this room when a subscription that
// counts begins and ends; the room keeps this router's members by channel
// and sends the events to the members that asked for them (subscribe flag
// join_leave), never to the member that joined or left.
//
// Routers that are one (cluster.redis) keep presence in a presence_cluster
// too: the room writes its members there, reads a channel's presence from
// there (every router's members), and sends the events that come from
// there, its own among them (one path for all).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authorizer.hpp"
#include "connection_table.hpp"

namespace hyperstreams::router {

// Where routers that are one keep presence. Called under the core's lock;
// answers come through the sink, under it too.
class presence_cluster {
public:
    class sink {
    public:
        // The members of the channel of read(ticket, ...): encoded member bodies.
        virtual void presence_read(std::uint64_t ticket, std::vector<std::string> members) = 0;
        virtual void presence_failed(std::uint64_t ticket, errc code, std::string_view text) = 0;
        // A join or leave on a router of the cluster (this one too): an
        // encoded member body, lent for the call.
        virtual void presence_event(frame_kind kind, std::string_view channel, bytes_view member) = 0;

    protected:
        ~sink() = default;
    };

    virtual ~presence_cluster() = default;
    void bind(sink& s) noexcept { sink_ = &s; }

    // The member `address` (its body `member`, lent) joined or left
    // `channel`; `announce`: every router sends the event (join_leave).
    virtual void joined(std::string_view channel, std::string_view address, bytes_view member, bool announce) = 0;
    virtual void left(std::string_view channel, std::string_view address, bytes_view member, bool announce) = 0;
    // The channel's members on every router alive, by sink::presence_read.
    virtual void read(std::uint64_t ticket, std::string_view channel) = 0;

protected:
    sink* sink_ = nullptr;
};

class presence_room final : private presence_cluster::sink {
public:
    // `cluster`: null for a router on its own.
    presence_room(authorizer& auth, connection_table& table, presence_cluster* cluster);

    // `c` subscribed to `channel` (or subscribed again: only `wants_events`
    // changes). `announce`: the channel's namespace has join_leave.
    void join(connection& c, std::string_view channel, bool wants_events, bool announce);
    // `c`'s subscription to `channel` ended (unsubscribe, withdrawn, gone).
    void leave(connection& c, std::string_view channel, bool announce);
    // The presence_list that answers presence frame `id` on `channel`: at
    // most as many members as fit in `max_payload` bytes.
    void answer(connection& c, std::uint32_t id, std::string_view channel, std::uint32_t max_payload);

private:
    // presence_cluster::sink
    void presence_read(std::uint64_t ticket, std::vector<std::string> members) override;
    void presence_failed(std::uint64_t ticket, errc code, std::string_view text) override;
    void presence_event(frame_kind kind, std::string_view channel, bytes_view member) override;

    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    // Connection -> whether it wants the channel's joins and leaves.
    using members = std::map<connection_id, bool>;
    struct pending_read {
        connection_id connection = 0;
        std::uint32_t id = 0;
        std::uint32_t max_payload = 0;
    };

    // The member body of `c`, in scratch_ (valid until the next call).
    bytes_view encoded_member(const connection& c);
    // Sends the encoded event to the members of `channel` that asked,
    // except the one it is about.
    void announce(frame_kind kind, std::string_view channel, bytes_view member, std::string_view about);
    void send_list(connection& c, std::uint32_t id, std::uint32_t count, const std::vector<presence_member>& all,
                   std::uint32_t max_payload);

    authorizer& auth_;
    connection_table& table_;
    presence_cluster* cluster_;
    std::unordered_map<std::string, members, name_hash, std::equal_to<>> channels_;
    std::map<std::uint64_t, pending_read> reads_;  // by ticket
    std::uint64_t next_ticket_ = 0;
    std::vector<std::uint8_t> scratch_;
};

}  // namespace hyperstreams::router
