#include "pubsub.hpp"

#include <algorithm>

#include "hyperstreams/body.hpp"
#include "hyperstreams/names.hpp"
#include "log.hpp"

namespace hyperstreams::router {
namespace {

double seconds_between(time_point from, time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

}  // namespace

pubsub::pubsub(const router_config& cfg, authorizer& auth, metrics& m, connection_table& table, channel_log& log,
               presence_cluster* presence)
    : cfg_(cfg),
      auth_(auth),
      metrics_(m),
      table_(table),
      log_(log),
      namespaces_(cfg),
      any_presence_(std::any_of(cfg.namespaces.begin(), cfg.namespaces.end(),
                                [](const namespace_config& ns) { return ns.presence; })),
      presence_(auth, table, presence) {
    log_.bind(*this);
}

// ---------------------------------------------------------------- subscriptions

void pubsub::subscribe(connection& c, const frame& f, time_point now) {
    if (!is_valid_pattern(f.name)) {
        table_.send_error(c, f.id, errc::invalid_name, "not a valid channel pattern");
        return;
    }
    const bool wildcard = !is_valid_channel(f.name);
    const bool resume = f.has(frame_flags::since);
    if (resume && wildcard) {
        table_.send_error(c, f.id, errc::protocol_violation, "since needs a channel name, not a pattern");
        return;
    }
    const bool wants_events = f.has(frame_flags::join_leave);
    if (wants_events && wildcard) {
        table_.send_error(c, f.id, errc::protocol_violation, "join_leave needs a channel name, not a pattern");
        return;
    }
    const bool known = c.subscriptions.count(f.name) != 0;
    if (!known && c.subscriptions.size() >= cfg_.max_subscriptions) {
        table_.send_error(c, f.id, errc::too_many_subscriptions, "subscription limit reached");
        return;
    }
    if (std::error_code ec = auth_.can_subscribe(who(c), f.name)) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to subscribe");
        return;
    }
    // Asked with since, a resume: the history holds the last publication.
    const bool latest = f.has(frame_flags::latest) && !resume;
    const channel_options& options = namespaces_.of_pattern(f.name);
    if (latest && !options.latest) {
        const std::string_view ns = namespaces_.pattern_of(options);
        table_.send_error(c, f.id, errc::not_enabled,
                          ns.empty() ? "latest needs a namespace with \"latest\": true that holds '" +
                                           std::string(f.name) + "'"
                                     : "latest is not enabled in the namespace '" + std::string(ns) + "'");
        return;
    }
    // Members are made by exact subscriptions only (presence.hpp).
    const channel_options* counted = wildcard ? nullptr : &namespaces_.of_channel(f.name);
    if (wants_events && !counted->join_leave) {
        table_.send_error(c, f.id, errc::not_enabled, not_enabled_text(*counted, "join_leave"));
        return;
    }
    // A subscribe that leaves the policy to the router gets its namespace's.
    const slow_policy asked = policy_of(f.flags);
    const slow_policy policy = asked == slow_policy::router_default ? options.policy : asked;
    c.subscriptions.insert_or_assign(std::string(f.name), subscription{policy, f.id});
    changed_interest(f.name, topics_.subscribe(c.id, f.name, static_cast<std::uint8_t>(policy)),
                     interest_change::first_subscriber);
    if (counted != nullptr && counted->presence) presence_.join(c, f.name, wants_events, counted->join_leave);

    // A log that does not know the channel's position here reads it, as a
    // resume reads history: the ack says where the subscription starts.
    const bool read_position = !resume && !latest && !wildcard && !log_.positions_known();
    if (!resume && !latest && !read_position) {
        table_.send_ack(c, f.id, wildcard ? position{log_.epoch(), 0} : log_.last_position(f.name));
        return;
    }
    // Held from now on: live publications wait for what the log reads.
    hold(c, f.name, policy);
    const std::uint64_t ticket = ++next_ticket_;
    reads_.emplace(ticket, resume_read{c.id, f.id, position{f.epoch, f.seq}, resume});
    if (latest)
        log_.read_latest(ticket, f.name, now);
    else
        log_.read_since(ticket, f.name, position{f.epoch, f.seq},
                        read_position ? read_kind::position_only : read_kind::history, now);
}

verdict pubsub::subscribe_for(connection& c, std::string_view pattern, slow_policy asked) {
    if (!is_valid_pattern(pattern)) return verdict::refuse(errc::invalid_name, "not a valid channel pattern");
    if (c.subscriptions.count(pattern) != 0)
        return verdict::refuse(errc::already_subscribed,
                               "the connection is subscribed to '" + std::string(pattern) + "' already");
    if (c.subscriptions.size() >= cfg_.max_subscriptions)
        return verdict::refuse(errc::too_many_subscriptions, "the connection reached its subscription limit");
    if (std::error_code ec = auth_.can_subscribe(who(c), pattern))
        return verdict::refuse(static_cast<errc>(ec.value()),
                               "the connection may not subscribe to '" + std::string(pattern) + "'");
    const channel_options& options = namespaces_.of_pattern(pattern);
    const slow_policy policy = asked == slow_policy::router_default ? options.policy : asked;
    c.subscriptions.insert_or_assign(std::string(pattern), subscription{policy, 0});
    frame f;
    f.kind = frame_kind::subscribed;
    f.flags = policy_flags(policy);
    f.name = pattern;
    table_.send(c, f);
    changed_interest(pattern, topics_.subscribe(c.id, pattern, static_cast<std::uint8_t>(policy)),
                     interest_change::first_subscriber);
    if (is_valid_channel(pattern))
        if (const channel_options& counted = namespaces_.of_channel(pattern); counted.presence)
            presence_.join(c, pattern, false, counted.join_leave);
    return {};
}

verdict pubsub::unsubscribe_for(connection& c, std::string_view pattern, errc why) {
    auto it = c.subscriptions.find(pattern);
    if (it == c.subscriptions.end())
        return verdict::refuse(errc::not_subscribed,
                               "the connection is not subscribed to '" + std::string(pattern) + "'");
    const std::string name = it->first;
    c.subscriptions.erase(it);
    changed_interest(name, topics_.unsubscribe(c.id, name), interest_change::last_left);
    subscription_ended(c, name);
    send_unsubscribed(c, name, why);
    return {};
}

void pubsub::send_unsubscribed(connection& c, std::string_view pattern, errc why) {
    frame f;
    f.kind = frame_kind::unsubscribed;
    f.name = pattern;
    f.code = static_cast<std::uint16_t>(why);
    table_.send(c, f);
}

pubsub::held& pubsub::hold(const connection& c, std::string_view name, slow_policy policy) {
    auto [it, made] = held_.try_emplace(held_key{c.id, std::string(name)});
    if (made && !is_valid_channel(name)) ++pattern_holds_;
    it->second.policy = policy;
    ++it->second.reads;
    ++held_version_;
    return it->second;
}

pubsub::held* pubsub::holding(connection_id subscriber, std::string_view channel) {
    auto it = held_.find(std::pair<connection_id, std::string_view>(subscriber, channel));
    if (it != held_.end()) return &it->second;
    if (pattern_holds_ == 0) return nullptr;
    for (it = held_.lower_bound(std::pair<connection_id, std::string_view>(subscriber, {}));
         it != held_.end() && it->first.first == subscriber; ++it)
        if (pattern_matches(it->first.second, channel)) return &it->second;
    return nullptr;
}

std::pair<connection*, pubsub::held*> pubsub::take_read(std::uint64_t ticket, std::string_view channel,
                                                         resume_read& read) {
    auto r = reads_.find(ticket);
    if (r == reads_.end()) return {nullptr, nullptr};
    read = r->second;
    reads_.erase(r);
    auto it = held_.find(std::pair<connection_id, std::string_view>(read.connection, channel));
    connection* c = table_.find(read.connection);
    if (c == nullptr || c->state == connection_state::closing || it == held_.end()) return {nullptr, nullptr};
    return {c, &it->second};
}

void pubsub::release(connection_id conn, std::string_view channel) {
    held_.erase(held_.find(std::pair<connection_id, std::string_view>(conn, channel)));
    if (!is_valid_channel(channel)) --pattern_holds_;
    ++held_version_;
}

void pubsub::send_gap(connection& c, std::string_view channel, std::uint32_t epoch, std::uint64_t from,
                      std::uint64_t to) {
    frame g;
    g.kind = frame_kind::gap;
    g.name = channel;
    g.epoch = epoch;
    g.seq = from;
    const std::uint64_t missed = to - from + 1;
    g.count = missed > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(missed);
    table_.send(c, g);
    metrics_.local(c.transport).gaps.add(1);
}

void pubsub::history_read(std::uint64_t ticket, std::string_view channel, history h) {
    resume_read read;
    auto [c, hold] = take_read(ticket, channel, read);
    if (c == nullptr) return;

    table_.send_ack(*c, read.subscribe_id, h.now);
    if (h.gap) send_gap(*c, channel, h.gap_epoch, h.gap_seq, h.gap_seq + h.gap_count - 1);
    // A subscription ended meanwhile (unsubscribe, a refresh that withdrew
    // it) gets the ack its subscribe was owed, and nothing more.
    const bool subscribed = c->subscriptions.count(channel) != 0;
    // The history holds no expired publication: each run of them among what
    // the subscriber asked for, between two replayed ones or after the last,
    // gets a gap, so that it knows they are gone. `expected` is the seq the
    // subscriber holds everything before (0: unknown, another epoch).
    std::uint64_t expected = 0;
    if (read.resume && read.since.epoch == h.now.epoch)
        expected = h.gap ? h.gap_seq + h.gap_count : read.since.seq + 1;
    // Held publications at or before the channel's position when read are
    // in the history (or before where the subscription starts).
    position last = h.now;
    for (const publication& p : h.replay) {
        if (!subscribed || c->state == connection_state::closing) break;
        if (expected != 0 && p.epoch == h.now.epoch && p.seq > expected)
            send_gap(*c, channel, p.epoch, expected, p.seq - 1);
        send_publication(*c, channel, p, hold->policy);
        last = position{p.epoch, p.seq};
        if (p.epoch == h.now.epoch) expected = p.seq + 1;
    }
    if (subscribed && read.resume && expected != 0 && expected <= h.now.seq && c->state != connection_state::closing) {
        send_gap(*c, channel, h.now.epoch, expected, h.now.seq);
        last = h.now;
    }
    if (--hold->reads != 0) return;
    // What went live while the history was read, without what the history
    // held already.
    for (const publication& p : hold->live) {
        if (!subscribed || c->state == connection_state::closing) break;
        if (p.epoch == last.epoch && p.seq <= last.seq) continue;
        table_.deliver(*c, p.hold, frame_class::message, hold->policy);
    }
    release(c->id, channel);
}

// The resume cannot be made: the subscribe fails by name and its
// subscription ends, as if it had been refused (the client may subscribe
// again).
void pubsub::history_failed(std::uint64_t ticket, std::string_view channel, errc code, std::string_view text) {
    resume_read read;
    auto [c, hold] = take_read(ticket, channel, read);
    const std::uint32_t subscribe_id = read.subscribe_id;
    if (c == nullptr) return;
    table_.send_error(*c, subscribe_id, code, text);
    if (auto it = c->subscriptions.find(channel); it != c->subscriptions.end() && it->second.id == subscribe_id) {
        c->subscriptions.erase(it);
        changed_interest(channel, topics_.unsubscribe(c->id, channel), interest_change::last_left);
        subscription_ended(*c, channel);
    }
    if (--hold->reads == 0) release(c->id, channel);
}

namespace {

// The channel of a held publication: the name of the message frame it holds.
std::string_view channel_of(const publication& p) {
    frame m;
    std::size_t consumed = 0;
    return decode(*p.hold, m, consumed) ? std::string_view() : m.name;
}

}  // namespace

void pubsub::latest_read(std::uint64_t ticket, std::string_view pattern, position now,
                         std::span<const latest_value> values) {
    resume_read read;
    auto [c, hold] = take_read(ticket, pattern, read);
    if (c == nullptr) return;
    const bool wildcard = !is_valid_channel(pattern);
    table_.send_ack(*c, read.subscribe_id, wildcard ? position{log_.epoch(), 0} : now);
    // A channel whose own namespace (a more specific one inside the
    // pattern's) keeps no latest value gives none.
    auto replayed = [this](const latest_value& v) { return namespaces_.of_channel(v.channel).latest; };
    const bool subscribed = c->subscriptions.count(pattern) != 0;
    for (const latest_value& v : values) {
        if (!subscribed || c->state == connection_state::closing) break;
        if (replayed(v)) send_publication(*c, v.channel, v.last, hold->policy);
    }
    if (--hold->reads != 0) return;
    // What went live while the log was read, without what was just replayed.
    for (const publication& p : hold->live) {
        if (!subscribed || c->state == connection_state::closing) break;
        const std::string_view channel = wildcard ? channel_of(p) : pattern;
        auto v = std::lower_bound(values.begin(), values.end(), channel,
                                  [](const latest_value& a, std::string_view b) { return a.channel < b; });
        if (v != values.end() && v->channel == channel && replayed(*v) && p.epoch == v->last.epoch &&
            p.seq <= v->last.seq)
            continue;
        table_.deliver(*c, p.hold, frame_class::message, hold->policy);
    }
    release(c->id, pattern);
}

void pubsub::send_publication(connection& c, std::string_view channel, const publication& p, slow_policy policy) {
    frame m;
    m.kind = frame_kind::message;
    m.flags = static_cast<std::uint8_t>(p.flags | frame_flags::replayed);
    m.name = channel;
    m.payload = p.payload;
    m.epoch = p.epoch;
    m.seq = p.seq;
    table_.deliver(c, encode_shared(m), frame_class::message, policy);
}

void pubsub::unsubscribe(connection& c, const frame& f) {
    auto it = c.subscriptions.find(f.name);
    if (it == c.subscriptions.end()) {
        table_.send_error(c, f.id, errc::not_subscribed, "no such subscription");
        return;
    }
    c.subscriptions.erase(it);
    changed_interest(f.name, topics_.unsubscribe(c.id, f.name), interest_change::last_left);
    subscription_ended(c, f.name);
    table_.send_ack(c, f.id);
}

void pubsub::changed_interest(std::string_view pattern, topic_tree::change ch, interest_change what) {
    if (ch.interest) log_.interest(pattern, what);
}

std::string pubsub::not_enabled_text(const channel_options& options, std::string_view feature) const {
    const std::string_view ns = namespaces_.pattern_of(options);
    if (ns.empty()) return "no namespace with " + std::string(feature) + " holds this channel";
    return "the namespace '" + std::string(ns) + "' has no " + std::string(feature);
}

void pubsub::subscription_ended(connection& c, std::string_view pattern) {
    if (!any_presence_ || !is_valid_channel(pattern)) return;
    const channel_options& options = namespaces_.of_channel(pattern);
    if (options.presence) presence_.leave(c, pattern, options.join_leave);
}

// Reading who is subscribed to a channel takes the right to subscribe to
// it: presence shows no more than a subscription would.
void pubsub::presence(connection& c, const frame& f) {
    if (!is_valid_channel(f.name)) {
        table_.send_error(c, f.id, errc::invalid_name, "presence needs a channel name, not a pattern");
        return;
    }
    if (std::error_code ec = auth_.can_subscribe(who(c), f.name)) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to read the presence of this channel");
        return;
    }
    const channel_options& options = namespaces_.of_channel(f.name);
    if (!options.presence) {
        table_.send_error(c, f.id, errc::not_enabled, not_enabled_text(options, "presence"));
        return;
    }
    presence_.answer(c, f.id, f.name, cfg_.max_payload);
}

void pubsub::drop(connection& c) {
    for (const auto& [pattern, sub] : c.subscriptions) {
        changed_interest(pattern, topics_.unsubscribe(c.id, pattern), interest_change::last_left);
        subscription_ended(c, pattern);
    }
    c.subscriptions.clear();
    auto first = held_.lower_bound(std::pair<connection_id, std::string_view>(c.id, {}));
    auto last = first;
    while (last != held_.end() && last->first.first == c.id) ++last;
    if (first != last) {
        for (auto it = first; it != last; ++it)
            if (!is_valid_channel(it->first.second)) --pattern_holds_;
        held_.erase(first, last);
        ++held_version_;
    }
}

// A refreshed token may grant less than the one before. What the connection
// holds open and may no longer have ends now, as if it were refused at this
// moment: an error forbidden with the id the client knows it by (NATS ends
// subscriptions on a permission reload likewise).
std::size_t pubsub::withdraw(connection& c) {
    const principal p = who(c);
    std::size_t ended = 0;
    for (auto it = c.subscriptions.begin(); it != c.subscriptions.end();) {
        if (!auth_.can_subscribe(p, it->first)) {
            ++it;
            continue;
        }
        changed_interest(it->first, topics_.unsubscribe(c.id, it->first), interest_change::last_left);
        subscription_ended(c, it->first);
        if (it->second.id == 0)
            send_unsubscribed(c, it->first, errc::forbidden);
        else
            table_.send_error(c, it->second.id, errc::forbidden, "the refreshed token no longer allows this subscription");
        it = c.subscriptions.erase(it);
        ++ended;
    }
    return ended;
}

// ---------------------------------------------------------------- publish

bool pubsub::take_publish_allowance(connection& c, time_point now) {
    if (cfg_.publish_rate == 0) return true;
    const double burst = cfg_.publish_burst != 0 ? cfg_.publish_burst : cfg_.publish_rate;
    c.publish_allowance = std::min(burst, c.publish_allowance + seconds_between(c.publish_refilled, now) *
                                                                    static_cast<double>(cfg_.publish_rate));
    c.publish_refilled = now;
    if (c.publish_allowance < 1.0) return false;
    c.publish_allowance -= 1.0;
    return true;
}

void pubsub::publish(connection& c, const frame& f, time_point now) {
    // A kept route's name was checked, and its namespace found, when it was built.
    const bool kept = route_kept(f.name);
    if (!kept && !is_valid_channel(f.name)) {
        table_.send_error(c, f.id, errc::invalid_name, "not a valid channel name");
        return;
    }
    if (!take_publish_allowance(c, now)) {
        table_.send_error(c, f.id, errc::rate_limited, "publish rate limit reached");
        return;
    }
    if (std::error_code ec = auth_.can_publish(who(c), f.name)) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to publish");
        return;
    }
    const channel_options& options = kept ? *route_.options : namespaces_.of_channel(f.name);
    if (options.publish == publish_rule::backends && c.role != client_role::backend) {
        table_.send_error(c, f.id, errc::forbidden,
                          "only backends publish to the namespace '" +
                              std::string(namespaces_.pattern_of(options)) + "'");
        return;
    }
    publish_options asked;
    bytes_view message = f.payload;
    if (std::error_code ec = decode_publish_options(f.flags, f.payload, asked, message)) {
        table_.send_error(c, f.id, errc::malformed_body,
                          "the publish options (idempotency key, ttl) before the message do not parse");
        return;
    }
    // Only a namespace's can be lower than limits.max_payload, which the decoder enforces.
    if (message.size() > options.max_message_bytes) {
        table_.send_error(c, f.id, errc::payload_too_large,
                          "a payload of " + std::to_string(message.size()) + " bytes is over the " +
                              std::to_string(options.max_message_bytes) + " of the namespace '" +
                              std::string(namespaces_.pattern_of(options)) + "'");
        return;
    }
    log_.append(f.name, static_cast<std::uint8_t>(f.flags & frame_flags::json), message,
                publisher{c.id, f.id, f.has(frame_flags::ack_requested)}, options,
                publish_extras{asked.key, asked.ttl_s.value_or(options.message_ttl_s), now});
}

void pubsub::append_failed(const publisher& from, errc code, std::string_view text) {
    connection* c = table_.find(from.connection);
    if (c != nullptr) table_.send_error(*c, from.id, code, text);
}

bool pubsub::route_kept(std::string_view channel) const noexcept {
    return route_.valid && route_.topics_version == topics_.version() && route_.held_version == held_version_ &&
           route_.channel == channel;
}

const pubsub::publish_route& pubsub::route_to(std::string_view channel) {
    if (route_kept(channel)) return route_;
    table_.flush_run();  // along the route it was made for
    route_.channel.assign(channel);
    topics_.collect(channel, match_scratch_);
    route_.targets.clear();
    route_.keeps_latest = false;
    route_.holding.clear();
    for (const topic_tree::match& t : match_scratch_) {
        connection* s = table_.find(t.subscriber);
        if (s == nullptr) continue;
        if (!held_.empty()) {
            if (held* h = holding(s->id, channel)) {
                route_.holding.push_back(h);
                continue;
            }
        }
        route_.targets.emplace_back(s, static_cast<slow_policy>(t.tag));
        route_.keeps_latest = route_.keeps_latest || static_cast<slow_policy>(t.tag) == slow_policy::keep_latest;
    }
    route_.options = &namespaces_.of_channel(channel);
    route_.topics_version = topics_.version();
    route_.held_version = held_version_;
    ++route_.generation;
    route_.valid = true;
    return route_;
}

void pubsub::placed(const publisher& from, position at) {
    if (!from.wants_ack) return;
    if (connection* c = table_.find(from.connection)) table_.send_ack(*c, from.id, at);
}

shared_bytes pubsub::deliver(std::string_view channel, const publication& p, bool keep) {
    const publish_route& route = route_to(channel);
    table_.count_published();
    frame m;
    m.kind = frame_kind::message;
    m.flags = p.flags;
    m.name = channel;
    m.payload = p.payload;
    m.epoch = p.epoch;
    m.seq = p.seq;
    // A frame nobody but this run keeps is encoded beside the run's others,
    // in no block of its own (connection_table::add_encoded_to_run).
    if (!keep && route.holding.empty() && !route.keeps_latest) {
        if (!route.targets.empty()) (void)table_.add_encoded_to_run(route.targets, route.generation, m);
        return nullptr;
    }
    shared_bytes encoded = encode_shared(m);
    if (!encoded) return encoded;
    for (held* h : route.holding) {
        publication kept = p;
        kept.payload = encoded_payload(*encoded);
        kept.hold = encoded;
        h->live.push_back(std::move(kept));
    }
    // To the subscribers with the next publishes along the same route (one
    // op per lane for the run: connection_table). Delivering may close a connection
    // (a slow consumer), which only marks it: it leaves the topic tree, and
    // the route is built again, when the core reaps it.
    if (route.targets.empty()) return keep ? encoded : nullptr;
    if (!keep) {
        table_.add_to_run(route.targets, route.generation, std::move(encoded));
        return nullptr;
    }
    table_.add_to_run(route.targets, route.generation, encoded);
    return encoded;
}

}  // namespace hyperstreams::router
