// client_engine: subscriptions, per-channel sequence tracking, delivery.
#include <algorithm>
#include <cstring>

#include "client_internal.hpp"
#include "hyperstreams/names.hpp"

namespace hyperstreams {
namespace {

// Channels of one application share long prefixes ("factory.line1.m3.temp",
// "factory.line1.m4.temp"): look at the end first, where they differ.
bool same_name(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = a.size();
    if (n != b.size()) return false;
    if (n >= 8) {
        std::uint64_t x, y;
        std::memcpy(&x, a.data() + n - 8, 8);
        std::memcpy(&y, b.data() + n - 8, 8);
        if (x != y) return false;
    }
    return std::memcmp(a.data(), b.data(), n) == 0;
}

}  // namespace

client_engine::subscription_state* client_engine::find_subscription(std::uint32_t id) noexcept {
    auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                           [id](const subscription_state& s) { return s.id == id; });
    return it == subscriptions_.end() ? nullptr : &*it;
}

const client_engine::channel_state* client_engine::resume_position(
    const subscription_state& sub) const {
    if (!sub.exact) return nullptr;
    auto it = channels_.find(std::string_view(sub.pattern));
    return it != channels_.end() && it->second.seen ? &it->second : nullptr;
}

void client_engine::send_subscribe(subscription_state& sub, bool resume) {
    frame f;
    f.kind = frame_kind::subscribe;
    f.id = sub.id;
    f.name = sub.pattern;
    f.flags = static_cast<std::uint8_t>(policy_flags(sub.policy) | (sub.join_leave ? frame_flags::join_leave : 0));
    const channel_state* position = resume ? resume_position(sub) : nullptr;
    if (position) {
        f.flags |= frame_flags::since;
        f.epoch = position->epoch;
        f.seq = position->seq;
    } else if (sub.latest) {
        f.flags |= frame_flags::latest;
    }
    write(f);
    sub.in_flight = true;
    sub.resuming = position != nullptr;
}

call_result client_engine::subscribe(std::string_view pattern, const subscribe_options& options) {
    if (state_ == client_state::closed) return {0, errc::closed};
    if (pattern.size() > max_name_size || !is_valid_pattern(pattern))
        return {0, errc::invalid_argument};
    if (std::any_of(subscriptions_.begin(), subscriptions_.end(),
                    [pattern](const subscription_state& s) { return s.pattern == pattern; }))
        return {0, errc::already_subscribed};
    if (max_subscriptions_ != 0 && subscriptions_.size() >= max_subscriptions_)
        return {0, errc::too_many_subscriptions};
    const bool exact = pattern.find_first_of("*>") == std::string_view::npos;
    if ((options.since || options.join_leave) && !exact) return {0, errc::invalid_argument};

    subscription_state& sub = subscriptions_.emplace_back();
    sub.id = next_id();
    sub.pattern.assign(pattern);
    sub.policy = options.policy;
    sub.exact = exact;
    sub.latest = options.latest;
    sub.join_leave = options.join_leave;
    ++subscriptions_generation_;
    if (const std::optional<channel_position>& since = options.since) {
        // The owner's position replaces whatever this engine saw on the channel.
        channel_state& ch = channels_[std::string(pattern)];
        ch.seen = true;
        ch.epoch = since->epoch;
        ch.seq = since->seq;
        last_channel_ = nullptr;
    }
    // Without `since` a new subscription starts live, even on a channel seen before.
    if (state_ == client_state::ready) send_subscribe(sub, options.since.has_value());
    return {sub.id, {}};
}

call_result client_engine::unsubscribe(std::uint32_t subscription) {
    if (state_ == client_state::closed) return {0, errc::closed};
    auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                           [subscription](const subscription_state& s) { return s.id == subscription; });
    if (it == subscriptions_.end()) return {0, errc::invalid_argument};
    const std::string pattern = std::move(it->pattern);
    forget_subscription(subscription);

    const std::uint32_t id = next_id();
    if (state_ == client_state::ready) {
        frame f;
        f.kind = frame_kind::unsubscribe;
        f.id = id;
        f.name = pattern;
        write(f);
        pending_op& op = pending_[id];
        op.op = operation::unsubscribe;
        op.subscription = subscription;
    } else {
        // No router holds it: the next welcome simply does not restore it.
        client_event& e = emit(event_kind::ack);
        e.op = operation::unsubscribe;
        e.id = id;
        e.subscription = subscription;
    }
    return {id, {}};
}

// Drops the subscription and the positions of channels nothing else covers.
void client_engine::forget_subscription(std::uint32_t id) {
    std::erase_if(subscriptions_, [id](const subscription_state& s) { return s.id == id; });
    ++subscriptions_generation_;
    std::erase_if(channels_, [this](const channel_map::value_type& entry) {
        return std::none_of(subscriptions_.begin(), subscriptions_.end(),
                            [&entry](const subscription_state& s) {
                                return pattern_matches(s.pattern, entry.first);
                            });
    });
    last_channel_ = nullptr;
}

// The tracking state of `channel`, created on first sight; nullptr (after a
// violation, for an invalid name) when no subscription covers it.
client_engine::channel_state* client_engine::channel_for(std::string_view channel, time_ms now) {
    if (last_channel_ == nullptr || !same_name(last_channel_->first, channel)) {
        auto it = channels_.find(channel);
        if (it == channels_.end()) {
            if (!is_valid_channel(channel)) {
                violation(errc::invalid_name, "channel name", now);
                return nullptr;
            }
            channel_state fresh;
            fresh.generation = subscriptions_generation_;
            for (const subscription_state& s : subscriptions_)
                if (pattern_matches(s.pattern, channel)) fresh.subscribers.push_back(s.id);
            if (fresh.subscribers.empty()) {
                ++stats_.unmatched_messages;
                return nullptr;
            }
            it = channels_.emplace(std::string(channel), std::move(fresh)).first;
        }
        last_channel_ = &*it;
    }
    channel_state& ch = last_channel_->second;
    if (ch.generation != subscriptions_generation_) {
        ch.generation = subscriptions_generation_;
        ch.subscribers.clear();
        for (const subscription_state& s : subscriptions_)
            if (pattern_matches(s.pattern, channel)) ch.subscribers.push_back(s.id);
    }
    return &ch;
}

void client_engine::on_message(const frame& f, time_ms now) {
    channel_state* ch = channel_for(f.name, now);
    if (ch == nullptr) return;
    if (ch->seen && ch->epoch == f.epoch) {
        if (f.seq <= ch->seq) {
            ++stats_.duplicates_dropped;
            return;
        }
        if (f.seq - ch->seq > 1) {
            for (std::uint32_t sub : ch->subscribers) {
                client_event& e = emit(event_kind::gap);
                e.subscription = sub;
                e.name = f.name;
                e.epoch = f.epoch;
                e.seq = ch->seq + 1;
                e.count = f.seq - ch->seq - 1;
            }
        }
    } else if (ch->seen) {
        for (std::uint32_t sub : ch->subscribers) {
            client_event& e = emit(event_kind::epoch_changed);
            e.subscription = sub;
            e.name = f.name;
            e.epoch = f.epoch;
            e.seq = f.seq;
        }
    }
    ch->seen = true;
    ch->epoch = f.epoch;
    ch->seq = f.seq;
    for (std::uint32_t sub : ch->subscribers) {
        client_event& e = emit(event_kind::message);
        e.subscription = sub;
        e.name = f.name;
        e.payload = f.payload;
        e.flags = f.flags;
        e.epoch = f.epoch;
        e.seq = f.seq;
    }
}

void client_engine::on_gap(const frame& f, time_ms now) {
    if (f.count == 0) {
        violation(errc::malformed_body, "gap", now);
        return;
    }
    channel_state* ch = channel_for(f.name, now);
    if (ch == nullptr) return;
    for (std::uint32_t sub : ch->subscribers) {
        client_event& e = emit(event_kind::gap);
        e.subscription = sub;
        e.name = f.name;
        e.epoch = f.epoch;
        e.seq = f.seq;
        e.count = f.count;
    }
    const std::uint64_t last_missed = f.seq + f.count - 1;
    if (!ch->seen || ch->epoch != f.epoch || last_missed > ch->seq) {
        ch->seen = true;
        ch->epoch = f.epoch;
        ch->seq = last_missed;
    }
}

// A join or leave belongs to the subscription that asked for it: the one
// naming the channel. One that arrives after its unsubscribe is dropped.
void client_engine::on_join_leave(const frame& f, time_ms now) {
    auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(), [&f](const subscription_state& s) {
        return s.join_leave && same_name(s.pattern, f.name);
    });
    if (it == subscriptions_.end()) return;
    // Checked here, so that an owner's decode cannot fail: a body that does
    // not decode is the router's fault, as for any other body.
    presence_member member;
    if (decode_body(f.payload, member)) {
        violation(errc::malformed_body, kind_name(f.kind), now);
        return;
    }
    client_event& e = emit(f.kind == frame_kind::join ? event_kind::join : event_kind::leave);
    e.subscription = it->id;
    e.name = f.name;
    e.payload = f.payload;
}

void client_engine::on_subscribed(const frame& f, time_ms now) {
    if (f.name.size() > max_name_size || !is_valid_pattern(f.name)) {
        violation(errc::invalid_name, "subscribed", now);
        return;
    }
    if (std::any_of(subscriptions_.begin(), subscriptions_.end(),
                    [&f](const subscription_state& s) { return same_name(s.pattern, f.name); }))
        return;
    subscription_state& sub = subscriptions_.emplace_back();
    sub.id = next_id();
    sub.pattern.assign(f.name);
    sub.policy = policy_of(f.flags);
    sub.exact = f.name.find_first_of("*>") == std::string_view::npos;
    sub.confirmed = true;
    sub.server = true;
    ++subscriptions_generation_;
    client_event& e = emit(event_kind::subscribed);
    e.subscription = sub.id;
    e.name = f.name;
    e.flags = policy_flags(sub.policy);
}

void client_engine::on_unsubscribed(const frame& f, time_ms) {
    auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                           [&f](const subscription_state& s) { return same_name(s.pattern, f.name); });
    if (it == subscriptions_.end()) return;  // the owner unsubscribed it meanwhile
    const std::uint32_t id = it->id;
    client_event& e = emit(event_kind::unsubscribed);
    e.subscription = id;
    e.name = f.name;
    e.code = f.code;
    e.ends_subscription = true;
    forget_subscription(id);
}

}  // namespace hyperstreams
