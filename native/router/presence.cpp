#include "presence.hpp"

#include <algorithm>

namespace hyperstreams::router {

presence_room::presence_room(authorizer& auth, connection_table& table, presence_cluster* cluster)
    : auth_(auth), table_(table), cluster_(cluster) {
    if (cluster_ != nullptr) cluster_->bind(*this);
}

bytes_view presence_room::encoded_member(const connection& c) {
    scratch_.clear();
    // A name over 65535 bytes fails, and none is: names and addresses are short.
    (void)encode_body(presence_member{c.address, auth_.subject(who(c)), c.name}, scratch_);
    return scratch_;
}

void presence_room::join(connection& c, std::string_view channel, bool wants_events, bool announce_it) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) it = channels_.emplace(std::string(channel), members{}).first;
    const bool fresh = it->second.insert_or_assign(c.id, wants_events).second;
    if (!fresh) return;
    const bytes_view member = encoded_member(c);
    if (cluster_ != nullptr) {
        cluster_->joined(channel, c.address, member, announce_it);
    } else if (announce_it) {
        announce(frame_kind::join, channel, member, c.address);
    }
}

void presence_room::leave(connection& c, std::string_view channel, bool announce_it) {
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.erase(c.id) == 0) return;
    if (it->second.empty()) channels_.erase(it);
    const bytes_view member = encoded_member(c);
    if (cluster_ != nullptr) {
        cluster_->left(channel, c.address, member, announce_it);
    } else if (announce_it) {
        announce(frame_kind::leave, channel, member, c.address);
    }
}

// One frame, encoded once, for every member that asked.
void presence_room::announce(frame_kind kind, std::string_view channel, bytes_view member, std::string_view about) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    shared_bytes encoded;
    for (const auto& [id, wants_events] : it->second) {
        if (!wants_events) continue;
        connection* m = table_.find(id);
        if (m == nullptr || m->state != connection_state::open || m->address == about) continue;
        if (!encoded) {
            frame f;
            f.kind = kind;
            f.name = channel;
            f.payload = member;
            encoded = encode_shared(f);
            if (!encoded) return;
            // After the messages of this batch already on their way to the members.
            table_.flush_run();
        }
        table_.deliver(*m, encoded, frame_class::control, slow_policy::router_default);
    }
}

void presence_room::presence_event(frame_kind kind, std::string_view channel, bytes_view member) {
    presence_member m;
    if (decode_body(member, m)) return;  // written by a router of the cluster: not from a client
    announce(kind, channel, member, m.address);
}

void presence_room::send_list(connection& c, std::uint32_t id, std::uint32_t count,
                              const std::vector<presence_member>& all, std::uint32_t max_payload) {
    presence_list_body list;
    list.count = count;
    std::size_t size = presence_list_header_size;
    for (const presence_member& m : all) {
        size += encoded_size(m);
        if (size > max_payload || list.members.size() == 0xFFFF) break;
        list.members.push_back(m);
    }
    scratch_.clear();
    (void)encode_body(list, scratch_);  // fits: bounded above
    frame f;
    f.kind = frame_kind::presence_list;
    f.id = id;
    f.payload = scratch_;
    table_.send(c, f);
}

void presence_room::answer(connection& c, std::uint32_t id, std::string_view channel, std::uint32_t max_payload) {
    if (cluster_ != nullptr) {
        const std::uint64_t ticket = ++next_ticket_;
        reads_.emplace(ticket, pending_read{c.id, id, max_payload});
        cluster_->read(ticket, channel);
        return;
    }
    std::vector<presence_member> all;
    // The subjects view the authorizer's storage only until its next call:
    // the list keeps its own copies.
    std::vector<std::string> subjects;
    if (auto it = channels_.find(channel); it != channels_.end()) {
        all.reserve(it->second.size());
        subjects.reserve(it->second.size());
        for (const auto& [member_id, wants_events] : it->second) {
            const connection* m = table_.find(member_id);
            if (m == nullptr) continue;
            subjects.emplace_back(auth_.subject(who(*m)));
            all.push_back(presence_member{m->address, subjects.back(), m->name});
        }
    }
    send_list(c, id, static_cast<std::uint32_t>(all.size()), all, max_payload);
}

void presence_room::presence_read(std::uint64_t ticket, std::vector<std::string> bodies) {
    auto r = reads_.find(ticket);
    if (r == reads_.end()) return;
    const pending_read read = r->second;
    reads_.erase(r);
    connection* c = table_.find(read.connection);
    if (c == nullptr || c->state != connection_state::open) return;
    std::vector<presence_member> all;
    all.reserve(bodies.size());
    for (const std::string& b : bodies) {
        presence_member m;
        if (!decode_body({reinterpret_cast<const std::uint8_t*>(b.data()), b.size()}, m)) all.push_back(m);
    }
    send_list(*c, read.id, static_cast<std::uint32_t>(all.size()), all, read.max_payload);
}

void presence_room::presence_failed(std::uint64_t ticket, errc code, std::string_view text) {
    auto r = reads_.find(ticket);
    if (r == reads_.end()) return;
    const pending_read read = r->second;
    reads_.erase(r);
    if (connection* c = table_.find(read.connection); c != nullptr && c->state == connection_state::open)
        table_.send_error(*c, read.id, code, text);
}

}  // namespace hyperstreams::router
