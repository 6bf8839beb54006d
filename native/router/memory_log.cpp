#include "memory_log.hpp"

#include "hyperstreams/names.hpp"

namespace hyperstreams::router {

void memory_log::append(std::string_view channel, std::uint8_t flags, bytes_view payload, const publisher& from,
                        const channel_options& options, const publish_extras& extras) {
    channel_state* state = last_;
    if (state != nullptr && last_version_ == store_.version() && state->name == channel) {
        store_.touch(*state);
    } else {
        state = &store_.get(channel);  // may forget another channel: the version is read after
        last_ = state;
        last_version_ = store_.version();
        state->max_messages = options.messages_kept();
        metrics_.channels.store(static_cast<std::int64_t>(store_.size()), std::memory_order_relaxed);
        metrics_.channels_forgotten.store(static_cast<std::int64_t>(store_.forgotten()), std::memory_order_relaxed);
    }
    idempotency_keys::digest digest{};
    if (!extras.key.empty()) {
        if (!state->keys) state->keys = std::make_unique<idempotency_keys>(max_keys_);
        digest = idempotency_keys::digest_of(flags, payload);
        position first;
        switch (state->keys->check(extras.key, digest, extras.now, first)) {
            case idempotency_keys::outcome::fresh: break;
            case idempotency_keys::outcome::repeat:
                if (from.wants_ack) sink_->placed(from, first);
                return;
            case idempotency_keys::outcome::reused:
                sink_->append_failed(from, errc::key_reused,
                                     "the idempotency key was used for another payload on this channel");
                return;
        }
    }
    publication p;
    p.epoch = state->epoch;
    p.seq = store_.next_seq(*state);
    p.flags = flags;
    p.payload = payload;
    if (extras.ttl_s != 0) p.expires = extras.now + std::chrono::seconds(extras.ttl_s);
    if (!extras.key.empty())
        state->keys->remember(extras.key, digest, position{p.epoch, p.seq},
                              extras.now + std::chrono::seconds(options.idempotency_window_s));
    if (from.wants_ack) sink_->placed(from, position{p.epoch, p.seq});
    if (!store_.keeps_history(*state)) {
        (void)sink_->deliver(channel, p, false);
        store_.remember(*state, {});  // counted
        return;
    }
    shared_bytes encoded = sink_->deliver(channel, p, true);
    if (encoded) {
        p.payload = encoded_payload(*encoded);
        p.hold = std::move(encoded);
    } else {
        p.hold = frame_bytes::copy(payload);
        p.payload = *p.hold;
    }
    store_.remember(*state, std::move(p));
    metrics_.history_bytes.store(static_cast<std::int64_t>(store_.history_bytes()), std::memory_order_relaxed);
}

void memory_log::read_since(std::uint64_t ticket, std::string_view channel, position since, read_kind kind,
                            time_point now) {
    if (kind == read_kind::position_only) {
        history h;
        h.now = last_position(channel);
        sink_->history_read(ticket, channel, std::move(h));
        return;
    }
    sink_->history_read(ticket, channel, store_.plan_resume(channel, since.epoch, since.seq, now));
}

void memory_log::read_latest(std::uint64_t ticket, std::string_view pattern, time_point now) {
    latest_scratch_.clear();
    store_.each_last(pattern, now, [this](std::string_view name, const publication& last) {
        latest_scratch_.push_back(latest_value{name, last});
    });
    const position at = is_valid_channel(pattern) ? last_position(pattern) : position{};
    sink_->latest_read(ticket, pattern, at, latest_scratch_);
    latest_scratch_.clear();  // releases the holds
}

position memory_log::last_position(std::string_view channel) const {
    const channel_state* state = store_.find(channel);
    return position{store_.epoch_of(channel), state ? state->last_seq : 0};
}

void memory_log::describe(std::vector<channel_view>& out) const {
    for (const auto& [name, ch] : store_.all())
        out.push_back(channel_view{name, ch.epoch, ch.last_seq, ch.published, ch.history.size(), ch.history_bytes});
}

}  // namespace hyperstreams::router
