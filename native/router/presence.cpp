#include "presence.hpp"

#include <algorithm>
#include <vector>

namespace hyperstreams::router {

presence_member presence_room::member_of(const connection& c) {
    return presence_member{c.address, auth_.subject(who(c)), c.name};
}

void presence_room::join(connection& c, std::string_view channel, bool wants_events, bool announce_it) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), members{}).first;
    const auto [at, fresh] = it->second.insert_or_assign(c.id, wants_events);
    (void)at;
    if (fresh && announce_it) announce(frame_kind::join, c, channel, it->second);
}

void presence_room::leave(connection& c, std::string_view channel, bool announce_it) {
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.erase(c.id) == 0) return;
    if (announce_it) announce(frame_kind::leave, c, channel, it->second);
    if (it->second.empty()) channels_.erase(it);
}

// One frame, encoded once, for every member that asked; never for `who`.
void presence_room::announce(frame_kind kind, const connection& who, std::string_view channel, const members& to) {
    shared_bytes encoded;
    for (const auto& [id, wants_events] : to) {
        if (!wants_events || id == who.id) continue;
        connection* m = table_.find(id);
        if (m == nullptr || m->state != connection_state::open) continue;
        if (!encoded) {
            scratch_.clear();
            if (encode_body(member_of(who), scratch_)) return;  // a name over 65535 bytes: none is
            frame f;
            f.kind = kind;
            f.name = channel;
            f.payload = scratch_;
            encoded = encode_shared(f);
            if (!encoded) return;
            // After the messages of this batch already on their way to the members.
            table_.flush_run();
        }
        table_.deliver(*m, encoded, frame_class::control, slow_policy::router_default);
    }
}

void presence_room::answer(connection& c, std::uint32_t id, std::string_view channel, std::uint32_t max_payload) {
    presence_list_body list;
    std::size_t size = presence_list_header_size;
    if (auto it = channels_.find(channel); it != channels_.end()) {
        list.count = static_cast<std::uint32_t>(it->second.size());
        list.members.reserve(std::min<std::size_t>(it->second.size(), 0xFFFF));
        // The subjects view the authorizer's storage only until its next
        // call: the list keeps its own copies.
        std::vector<std::string> subjects;
        subjects.reserve(list.members.capacity());
        for (const auto& [member_id, wants_events] : it->second) {
            // Within the reservation: the views of `subjects` stay where they are.
            if (list.members.size() == 0xFFFF) break;
            const connection* m = table_.find(member_id);
            if (m == nullptr) continue;
            subjects.emplace_back(auth_.subject(who(*m)));
            const presence_member entry{m->address, subjects.back(), m->name};
            size += encoded_size(entry);
            if (size > max_payload) break;
            list.members.push_back(entry);
        }
    }
    scratch_.clear();
    (void)encode_body(list, scratch_);  // fits: names and addresses are short, the list was bounded above
    frame f;
    f.kind = frame_kind::presence_list;
    f.id = id;
    f.payload = scratch_;
    table_.send(c, f);
}

}  // namespace hyperstreams::router
