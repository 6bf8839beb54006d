// client_engine: publish, requests, streams, direct messages, discovery,
// token refresh, service registration and the backend's answers; and the
// router frames that complete them (ack, error, response, stream frames).
#include <algorithm>
#include <iterator>

#include "client_internal.hpp"
#include "hyperstreams/names.hpp"

namespace hyperstreams {
namespace {

constexpr std::uint16_t code_of(errc e) noexcept { return static_cast<std::uint16_t>(e); }

// The operation a router reply of kind `k` completes.
operation completed_by(frame_kind k) noexcept {
    switch (k) {
        case frame_kind::response: return operation::request;
        case frame_kind::service_list: return operation::discover;
        case frame_kind::presence_list: return operation::presence;
        default: return operation::stream;  // stream_item, stream_end
    }
}

}  // namespace

// --- calls -------------------------------------------------------------------

call_result client_engine::publish(std::string_view channel, bytes_view payload, bool ack,
                                   std::uint8_t flags, const publish_options& options) {
    if (std::error_code ec = usable()) return {0, ec};
    if (channel.size() > max_name_size || !is_valid_channel(channel))
        return {0, errc::invalid_argument};
    const std::uint8_t option_flags = publish_option_flags(options);
    if (option_flags != 0) {
        // Only publishes with options pay for the copy behind their block.
        if (std::error_code ec = encode_publish_payload(options, payload, publish_scratch_)) return {0, ec};
        payload = publish_scratch_;
    }
    if (std::error_code ec = check_payload(payload, flags)) return {0, ec};
    frame f;
    f.kind = frame_kind::publish;
    f.flags = static_cast<std::uint8_t>(flags | option_flags | (ack ? frame_flags::ack_requested : 0));
    f.id = ack ? next_id() : 0;
    f.name = channel;
    f.payload = payload;
    return submit(f, operation::publish, no_deadline);
}

call_result client_engine::request(std::string_view service, std::string_view method,
                                   bytes_view payload, std::uint32_t timeout_ms, time_ms now,
                                   std::uint8_t flags) {
    return open_call(frame_kind::request, service, method, payload, 0, timeout_ms, now, flags);
}

call_result client_engine::open_stream(std::string_view service, std::string_view method,
                                       bytes_view payload, std::uint32_t credit,
                                       std::uint32_t timeout_ms, time_ms now, std::uint8_t flags) {
    if (credit == 0) return {0, errc::invalid_argument};
    return open_call(frame_kind::stream_open, service, method, payload, credit, timeout_ms, now,
                     flags);
}

call_result client_engine::open_call(frame_kind kind, std::string_view service,
                                     std::string_view method, bytes_view payload,
                                     std::uint32_t credit, std::uint32_t timeout_ms, time_ms now,
                                     std::uint8_t flags) {
    if (std::error_code ec = usable()) return {0, ec};
    name_scratch_.assign(service).append(1, '/').append(method);
    service_method parts;
    if (name_scratch_.size() > max_name_size || !split_service_method(name_scratch_, parts) ||
        parts.service.size() != service.size())
        return {0, errc::invalid_argument};
    if (std::error_code ec = check_payload(payload, flags)) return {0, ec};
    frame f;
    f.kind = kind;
    f.flags = flags;
    f.id = next_id();
    f.name = name_scratch_;
    f.payload = payload;
    f.deadline_ms = timeout_ms;
    f.credit = credit;
    const time_ms deadline =
        timeout_ms == 0 ? no_deadline : now + static_cast<time_ms>(timeout_ms);
    const bool stream = kind == frame_kind::stream_open;
    call_result r = submit(f, stream ? operation::stream : operation::request, deadline);
    if (!r.error && stream) {
        pending_op& op = pending_[r.id];
        op.window = credit;
        op.credit = credit;
    }
    return r;
}

std::error_code client_engine::stream_consumed(std::uint32_t stream, std::uint32_t items) {
    auto it = pending_.find(stream);
    if (it == pending_.end() || it->second.op != operation::stream) return errc::invalid_argument;
    pending_op& s = it->second;
    if (items > s.delivered) return errc::invalid_argument;
    s.delivered -= items;
    s.consumed += items;
    // Grant in batches of half the window: one frame per window/2 items.
    if (s.consumed >= std::max(1u, s.window / 2)) {
        frame f;
        f.kind = frame_kind::stream_credit;
        f.id = stream;
        f.credit = s.consumed;
        write(f);
        s.credit += s.consumed;
        s.consumed = 0;
    }
    return {};
}

std::error_code client_engine::cancel(std::uint32_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end() ||
        (it->second.op != operation::request && it->second.op != operation::stream))
        return errc::invalid_argument;
    if (it->second.queued) {
        drop_outbox_item(id);
    } else {
        frame f;
        f.kind = frame_kind::cancel;
        f.id = id;
        write(f);
    }
    pending_.erase(it);
    return {};
}

call_result client_engine::send_direct(std::string_view to, bytes_view payload, bool ack,
                                       std::uint8_t flags) {
    if (to.empty() || to.size() > max_name_size) return {0, errc::invalid_argument};
    return send_addressed(frame_kind::direct, to, payload, ack, flags);
}

call_result client_engine::broadcast(bytes_view payload, bool ack, std::uint8_t flags) {
    return send_addressed(frame_kind::broadcast, {}, payload, ack, flags);
}

call_result client_engine::send_addressed(frame_kind kind, std::string_view to,
                                          bytes_view payload, bool ack, std::uint8_t flags) {
    if (std::error_code ec = usable()) return {0, ec};
    if (std::error_code ec = check_payload(payload, flags)) return {0, ec};
    frame f;
    f.kind = kind;
    f.flags = static_cast<std::uint8_t>(flags | (ack ? frame_flags::ack_requested : 0));
    f.id = ack ? next_id() : 0;
    f.name = to;
    f.payload = payload;
    return submit(f, kind == frame_kind::direct ? operation::direct : operation::broadcast,
                  no_deadline);
}

call_result client_engine::subscribe_client(std::string_view address, std::string_view pattern,
                                            slow_policy policy) {
    return client_subscription(frame_kind::subscribe_client, address, pattern, policy);
}

call_result client_engine::unsubscribe_client(std::string_view address, std::string_view pattern) {
    return client_subscription(frame_kind::unsubscribe_client, address, pattern, slow_policy::router_default);
}

call_result client_engine::client_subscription(frame_kind kind, std::string_view address, std::string_view pattern,
                                               slow_policy policy) {
    if (std::error_code ec = usable()) return {0, ec};
    if (config_.role != client_role::backend) return {0, errc::wrong_role};
    if (address.empty() || address.size() > max_name_size || pattern.size() > max_name_size ||
        !is_valid_pattern(pattern))
        return {0, errc::invalid_argument};
    frame f;
    f.kind = kind;
    f.flags = policy_flags(policy);
    f.id = next_id();
    f.name = pattern;
    f.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(address.data()), address.size());
    return submit(f, kind == frame_kind::subscribe_client ? operation::subscribe_client : operation::unsubscribe_client,
                  no_deadline);
}

call_result client_engine::discover() {
    if (std::error_code ec = usable()) return {0, ec};
    frame f;
    f.kind = frame_kind::discover;
    f.id = next_id();
    return submit(f, operation::discover, no_deadline);
}

// The list's body is the owner's to decode (decode_body), as a routers
// body is: the browser's module carries no decoder for it.
call_result client_engine::presence(std::string_view channel) {
    if (std::error_code ec = usable()) return {0, ec};
    if (channel.size() > max_name_size || !is_valid_channel(channel)) return {0, errc::invalid_argument};
    frame f;
    f.kind = frame_kind::presence;
    f.id = next_id();
    f.name = channel;
    return submit(f, operation::presence, no_deadline);
}

call_result client_engine::refresh_token(std::string_view token, time_ms now) {
    if (std::error_code ec = usable()) return {0, ec};
    if (token.size() > 0xFFFF) return {0, errc::invalid_argument};
    frame f;
    f.kind = frame_kind::token_refresh;
    f.id = next_id();
    f.payload = as_bytes(token);
    call_result r = submit(f, operation::token_refresh, no_deadline);
    if (r.error) return r;
    config_.token.assign(token);
    ++token_changes_;
    apply(client_input::token_refreshed, now);  // moves only out of awaiting_token
    return r;
}

// --- services ----------------------------------------------------------------

client_engine::registration* client_engine::find_registration(std::uint32_t id) noexcept {
    auto it = std::find_if(registrations_.begin(), registrations_.end(),
                           [id](const registration& r) { return r.id == id; });
    return it == registrations_.end() ? nullptr : &*it;
}

call_result client_engine::register_service(std::string_view service,
                                            std::span<const method_info> methods) {
    if (state_ == client_state::closed) return {0, errc::closed};
    if (config_.role != client_role::backend) return {0, errc::wrong_role};
    if (service.size() > max_name_size || !is_valid_channel(service) || methods.empty())
        return {0, errc::invalid_argument};
    if (std::any_of(registrations_.begin(), registrations_.end(),
                    [service](const registration& r) { return r.service == service; }))
        return {0, errc::invalid_argument};
    for (std::size_t i = 0; i < methods.size(); ++i) {
        name_scratch_.assign(service).append(1, '/').append(methods[i].name);
        service_method parts;
        if (!split_service_method(name_scratch_, parts) ||
            parts.service.size() != service.size() ||
            (methods[i].kind != method_kind::unary && methods[i].kind != method_kind::stream))
            return {0, errc::invalid_argument};
        for (std::size_t j = 0; j < i; ++j)
            if (methods[j].name == methods[i].name) return {0, errc::invalid_argument};
    }
    register_body body;
    body.methods.assign(methods.begin(), methods.end());
    std::vector<std::uint8_t> encoded;
    if (encode_body(body, encoded)) return {0, errc::invalid_argument};

    registration& r = registrations_.emplace_back();
    r.id = next_id();
    r.service.assign(service);
    for (const method_info& m : methods) r.methods.emplace_back(m.name, m.kind);
    r.body = std::move(encoded);
    if (state_ == client_state::ready) {
        frame f;
        f.kind = frame_kind::register_service;
        f.id = r.id;
        f.name = r.service;
        f.payload = r.body;
        write(f);
        r.in_flight = true;
    }
    return {r.id, {}};
}

call_result client_engine::unregister_service(std::string_view service) {
    if (state_ == client_state::closed) return {0, errc::closed};
    if (config_.role != client_role::backend) return {0, errc::wrong_role};
    auto it = std::find_if(registrations_.begin(), registrations_.end(),
                           [service](const registration& r) { return r.service == service; });
    if (it == registrations_.end()) return {0, errc::invalid_argument};
    const std::string name = std::move(it->service);
    registrations_.erase(it);

    const std::uint32_t id = next_id();
    if (state_ == client_state::ready) {
        frame f;
        f.kind = frame_kind::unregister_service;
        f.id = id;
        f.name = name;
        write(f);
        pending_[id].op = operation::unregister_service;
    } else {
        client_event& e = emit(event_kind::ack);
        e.op = operation::unregister_service;
        e.id = id;
    }
    return {id, {}};
}

// --- backend answers -----------------------------------------------------------

std::error_code client_engine::respond(std::uint32_t request_id, bytes_view payload,
                                       std::uint8_t flags) {
    auto it = incoming_.find(request_id);
    if (it == incoming_.end() || it->second.stream) return errc::invalid_argument;
    if (std::error_code ec = check_payload(payload, flags)) return ec;
    frame f;
    f.kind = frame_kind::response;
    f.id = request_id;
    f.flags = flags;
    f.payload = payload;
    write(f);
    incoming_.erase(it);
    return {};
}

std::error_code client_engine::respond_error(std::uint32_t id, errc code, std::string_view text) {
    auto it = incoming_.find(id);
    if (it == incoming_.end()) return errc::invalid_argument;
    if (code_of(code) == 0) return errc::invalid_argument;  // 0 is no error
    if (std::error_code ec = check_payload(as_bytes(text), 0)) return ec;
    frame f;
    f.kind = frame_kind::error;
    f.id = id;
    f.code = code_of(code);
    f.payload = as_bytes(text);
    write(f);
    incoming_.erase(it);
    return {};
}

stream_send_status client_engine::stream_send(std::uint32_t stream, bytes_view payload,
                                              std::uint8_t flags) {
    auto it = incoming_.find(stream);
    if (it == incoming_.end() || !it->second.stream) return stream_send_status::unknown_stream;
    if (check_payload(payload, flags)) return stream_send_status::invalid;
    if (it->second.credit == 0) return stream_send_status::no_credit;
    --it->second.credit;
    frame f;
    f.kind = frame_kind::stream_item;
    f.id = stream;
    f.flags = flags;
    f.payload = payload;
    write(f);
    return stream_send_status::ok;
}

std::error_code client_engine::stream_end(std::uint32_t stream) {
    auto it = incoming_.find(stream);
    if (it == incoming_.end() || !it->second.stream) return errc::invalid_argument;
    frame f;
    f.kind = frame_kind::stream_end;
    f.id = stream;
    write(f);
    incoming_.erase(it);
    return {};
}

// --- router frames ---------------------------------------------------------------

void client_engine::on_ack(const frame& f, time_ms now) {
    if (auto it = pending_.find(f.id); it != pending_.end()) {
        const pending_op op = it->second;
        switch (op.op) {
            case operation::publish:
            case operation::direct:
            case operation::broadcast:
            case operation::unsubscribe:
            case operation::unregister_service:
            case operation::subscribe_client:
            case operation::unsubscribe_client:
                if (op.queued) break;
                {
                    client_event& e = emit(event_kind::ack);
                    e.op = op.op;
                    e.id = f.id;
                    e.subscription = op.subscription;
                    e.epoch = f.epoch;
                    e.seq = f.seq;
                }
                pending_.erase(it);
                return;
            case operation::token_refresh:
                if (op.queued) break;
                emit(event_kind::token_refreshed).id = f.id;
                pending_.erase(it);
                return;
            default:
                break;
        }
        violation(errc::unexpected_frame, "ack for an operation that is not acknowledged", now);
        return;
    }
    if (subscription_state* s = find_subscription(f.id); s && s->in_flight) {
        s->in_flight = false;
        // The router serves again what it refused: the pause starts over,
        // once every subscription sent again with this one is served (an
        // ack of another subscription says nothing of those it refuses).
        if (std::exchange(s->resent, false) &&
            std::none_of(subscriptions_.begin(), subscriptions_.end(),
                         [](const subscription_state& x) { return x.retry || x.resent; }))
            resubscribe_failures_ = 0;
        // The ack holds the channel's last position. One behind what this
        // client holds in the same epoch (a since past the end) is the
        // router's truth: take it, or the next live messages would look like
        // duplicates and be dropped.
        if (s->exact) {
            if (auto it = channels_.find(s->pattern);
                it != channels_.end() && it->second.seen && it->second.epoch == f.epoch && f.seq < it->second.seq)
                it->second.seq = f.seq;
        }
        if (!s->confirmed) {
            s->confirmed = true;
            client_event& e = emit(event_kind::ack);
            e.op = operation::subscribe;
            e.id = f.id;
            e.subscription = f.id;
        }
        return;
    }
    if (registration* r = find_registration(f.id); r && r->in_flight) {
        r->in_flight = false;
        if (!r->confirmed) {
            r->confirmed = true;
            client_event& e = emit(event_kind::ack);
            e.op = operation::register_service;
            e.id = f.id;
        }
    }
    // Anything else answers an operation already finished here (cancelled,
    // timed out, unsubscribed): nothing left to tell.
}

void client_engine::on_error(const frame& f, time_ms now) {
    const std::string_view text = as_text(f.payload);
    if (f.id == 0) {
        // A notice about the connection; if the router ends it, a goodbye follows.
        emit_error(operation::connection, 0, f.code, text);
        return;
    }
    if (auto it = pending_.find(f.id); it != pending_.end()) {
        if (it->second.queued) {
            violation(errc::unexpected_frame, "error for an operation not sent yet", now);
            return;
        }
        emit_error(it->second.op, f.id, f.code, text, it->second.subscription);
        pending_.erase(it);
        return;
    }
    if (subscription_state* s = find_subscription(f.id)) {
        // The subscribe was refused, or the router ended a confirmed
        // subscription (a token refresh withdrew the right): either way it is
        // over, except a resume the history cannot serve, which goes on live.
        const bool resume_gone =
            s->in_flight && s->resuming && static_cast<errc>(f.code) == errc::history_gone;
        // A subscription this client held, which a router of a cluster
        // cannot serve while its Redis fails over: kept, and sent again.
        const bool for_now =
            s->in_flight && s->confirmed && static_cast<errc>(f.code) == errc::cluster_unavailable;
        s->in_flight = false;
        s->resent = false;
        client_event& e = emit_error(operation::subscribe, f.id, f.code, text, f.id);
        if (resume_gone) {
            e.ends_operation = false;  // the live subscribe's ack ends it
            send_subscribe(*s, false);
            return;
        }
        if (for_now) {
            e.ends_operation = false;  // it ended with its first ack
            s->retry = true;
            schedule_resubscribe(now);
            return;
        }
        e.ends_subscription = true;
        forget_subscription(f.id);
        return;
    }
    if (registration* r = find_registration(f.id); r && r->in_flight) {
        emit_error(operation::register_service, f.id, f.code, text);
        std::erase_if(registrations_, [id = f.id](const registration& x) { return x.id == id; });
    }
}

void client_engine::on_reply(const frame& f, time_ms now) {
    auto it = pending_.find(f.id);
    if (it == pending_.end()) return;  // finished here already (cancelled, timed out)
    pending_op& op = it->second;
    if (op.op != completed_by(f.kind) || op.queued) {
        violation(errc::unexpected_frame, kind_name(f.kind), now);
        return;
    }
    switch (f.kind) {
        case frame_kind::response: {
            client_event& e = emit(event_kind::response);
            e.id = f.id;
            e.payload = f.payload;
            e.flags = f.flags;
            pending_.erase(it);
            return;
        }
        case frame_kind::stream_item: {
            if (op.credit == 0) {
                violation(errc::protocol_violation, "stream item beyond the granted credit", now);
                return;
            }
            --op.credit;
            ++op.delivered;
            client_event& e = emit(event_kind::stream_item);
            e.id = f.id;
            e.payload = f.payload;
            e.flags = f.flags;
            return;
        }
        case frame_kind::stream_end:
            emit(event_kind::stream_end).id = f.id;
            pending_.erase(it);
            return;
        case frame_kind::presence_list: {
            presence_list_body list;  // checked here, so that an owner's decode cannot fail
            if (decode_body(f.payload, list)) {
                violation(errc::malformed_body, "presence_list", now);
                return;
            }
            client_event& e = emit(event_kind::presence);
            e.id = f.id;
            e.payload = f.payload;
            pending_.erase(it);
            return;
        }
        default: {  // service_list: one page of the listing
            std::vector<std::vector<std::uint8_t>>& pages = op.pages;
            pages.emplace_back(f.payload.begin(), f.payload.end());
            service_list_body page;
            if (decode_body(pages.back(), page)) {
                violation(errc::malformed_body, "service_list", now);
                return;
            }
            if (f.has(frame_flags::more)) {
                if (page.services.empty() || !is_valid_channel(page.services.back().name)) {
                    violation(errc::protocol_violation, "a service_list page with more after it must end with a service name", now);
                    return;
                }
                // The next page, under the same id: the router answered this one.
                frame next;
                next.kind = frame_kind::discover;
                next.id = f.id;
                next.name = page.services.back().name;
                write(next);
                return;
            }
            // The whole listing: its pages stay until the next one is complete,
            // so that the event's views hold while the host reads them.
            listing_ = std::move(pages);
            services_.services.clear();
            for (const auto& bytes : listing_) {
                (void)decode_body(bytes, page);  // decoded once above
                std::move(page.services.begin(), page.services.end(), std::back_inserter(services_.services));
            }
            client_event& e = emit(event_kind::service_list);
            e.id = f.id;
            e.services = &services_;
            pending_.erase(it);
            return;
        }
    }
}

void client_engine::on_incoming(const frame& f, time_ms now) {
    if (f.id == 0 || incoming_.count(f.id) != 0) {
        violation(f.id == 0 ? errc::protocol_violation : errc::duplicate_id, kind_name(f.kind), now);
        return;
    }
    service_method target;
    if (!split_service_method(f.name, target)) {
        violation(errc::invalid_name, kind_name(f.kind), now);
        return;
    }
    const bool stream = f.kind == frame_kind::stream_open;
    const method_kind wanted = stream ? method_kind::stream : method_kind::unary;
    const auto served = std::find_if(registrations_.begin(), registrations_.end(),
                                     [&target](const registration& r) {
                                         return r.service == target.service;
                                     });
    const bool known =
        served != registrations_.end() &&
        std::any_of(served->methods.begin(), served->methods.end(),
                    [&](const auto& m) { return m.first == target.method && m.second == wanted; });
    if (!known) {
        // Unregistered meanwhile, or never ours: answer without bothering the host.
        frame reply;
        reply.kind = frame_kind::error;
        reply.id = f.id;
        reply.code = code_of(errc::no_such_service);
        reply.payload = as_bytes("method not served by this client");
        write(reply);
        return;
    }
    incoming_call& call = incoming_[f.id];
    call.stream = stream;
    call.credit = f.credit;
    call.deadline = f.deadline_ms == 0 ? no_deadline : now + static_cast<time_ms>(f.deadline_ms);
    add_timer(call.deadline, f.id, true);

    client_event& e = emit(stream ? event_kind::incoming_stream : event_kind::incoming_request);
    e.id = f.id;
    e.name = target.service;
    e.method = target.method;
    e.payload = f.payload;
    e.flags = f.flags;
    e.count = f.credit;
}

void client_engine::on_stream_credit(const frame& f, time_ms now) {
    auto it = incoming_.find(f.id);
    if (it == incoming_.end()) return;  // ended or cancelled here already
    if (!it->second.stream) {
        violation(errc::unexpected_frame, "stream_credit for a request", now);
        return;
    }
    std::uint32_t& credit = it->second.credit;
    credit = f.credit > UINT32_MAX - credit ? UINT32_MAX : credit + f.credit;
    client_event& e = emit(event_kind::stream_credit);
    e.id = f.id;
    e.count = credit;
}

void client_engine::on_cancel(const frame& f) {
    if (incoming_.erase(f.id) == 0) return;  // answered already
    client_event& e = emit(event_kind::cancelled);
    e.id = f.id;
    e.code = cancel_reason(f);  // cancelled, or why the router ended the call
}

}  // namespace hyperstreams
