#include "calls.hpp"

#include <algorithm>

#include "hyperstreams/names.hpp"
#include "log.hpp"

namespace hyperstreams::router {
namespace {

constexpr std::uint32_t backend_id_bit = 0x80000000u;

double seconds_between(time_point from, time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

void send_cancel(connection_table& table, connection& backend, std::uint32_t id, bytes_view reason = {}) {
    frame cancel;
    cancel.kind = frame_kind::cancel;
    cancel.id = id;
    cancel.payload = reason;
    table.send(backend, cancel);
}

}  // namespace

calls::calls(const router_config& cfg, authorizer& auth, metrics& m, connection_table& table)
    : cfg_(cfg),
      auth_(auth),
      metrics_(m),
      table_(table),
      services_(cfg.balance, service_registry::limits{cfg.max_services, cfg.max_methods_per_service,
                                                      std::chrono::milliseconds(cfg.service_grace_ms)}) {}

void calls::count_services() {
    metrics_.services.store(static_cast<std::int64_t>(services_.instance_count()), std::memory_order_relaxed);
}

// ---------------------------------------------------------------- calls

void calls::start(connection& c, const frame& f, time_point now) {
    const bool stream = f.kind == frame_kind::stream_open;
    service_method sm;
    if (!split_service_method(f.name, sm)) {
        table_.send_error(c, f.id, errc::invalid_name, "the name must be service/method");
        return;
    }
    if (refusing_) {
        table_.send_error(c, f.id, errc::going_away, "router is draining");
        return;
    }
    if (std::error_code ec = auth_.can_call(who(c), sm.service, sm.method)) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to call this service");
        return;
    }
    if (calls_.by_caller(c.id, f.id) != nullptr) {
        table_.send_error(c, f.id, errc::duplicate_id, "a call with this id is in flight");
        return;
    }
    if (calls_.count_for_caller(c.id) >= cfg_.max_pending_requests) {
        table_.send_error(c, f.id, errc::too_many_pending_requests, "too many calls in flight");
        return;
    }
    connection_id backend_id = 0;
    if (std::error_code ec = services_.choose(sm.service, sm.method,
                                              stream ? method_kind::stream : method_kind::unary, backend_id)) {
        const auto code = static_cast<errc>(ec.value());
        std::string text = code == errc::no_instance_available
                               ? "no instance of " + std::string(sm.service) + " is available"
                               : "no " + std::string(stream ? "stream" : "unary") + " method " +
                                     std::string(f.name);
        table_.send_error(c, f.id, code, text);
        return;
    }
    connection* b = table_.find(backend_id);
    if (b == nullptr || b->state == connection_state::closing) {
        table_.send_error(c, f.id, errc::no_instance_available, "no instance is available");
        return;
    }

    call k;
    k.caller = c.id;
    k.caller_id = f.id;
    k.backend = b->id;
    do {
        k.backend_id = backend_id_bit | (++b->next_backend_id & ~backend_id_bit);
    } while (calls_.backend_id_in_use(b->id, k.backend_id));
    k.stream = stream;
    k.service = std::string(sm.service);
    k.method = std::string(sm.method);
    k.started = now;
    k.credit = stream ? f.credit : 0;
    std::uint32_t deadline_ms = f.deadline_ms;
    if (deadline_ms == 0 && !stream) deadline_ms = cfg_.default_deadline_ms;
    if (deadline_ms != 0) {
        deadline_ms = std::min(deadline_ms, cfg_.max_deadline_ms);
        k.deadline = now + std::chrono::milliseconds(deadline_ms);
    }

    frame out;
    out.kind = f.kind;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.id = k.backend_id;
    out.name = f.name;
    out.payload = f.payload;
    out.deadline_ms = deadline_ms;
    out.credit = k.credit;
    const std::string service = k.service;
    if (!calls_.add(std::move(k))) {  // the checks above leave no reason; kept as a named refusal
        table_.send_error(c, f.id, errc::duplicate_id, "a call with this id is in flight");
        return;
    }
    services_.call_started(service, b->id);
    metrics_.calls_started.fetch_add(1, std::memory_order_relaxed);
    table_.send(*b, out);
}

void calls::finish(const call& k, time_point now) {
    services_.call_finished(k.service, k.backend);
    metrics_.observe_call(seconds_between(k.started, now));
}

void calls::fail(const call& k, errc code, std::string_view text, call_end_notice notice, time_point now) {
    if (connection* caller = table_.find(k.caller)) table_.send_error(*caller, k.caller_id, code, text);
    if (notice == call_end_notice::caller_and_backend) {
        if (connection* b = table_.find(k.backend)) {
            // The backend learns why: a cancel from the router carries the
            // code (PROTOCOL.md, cancel); the caller's own cancel has none.
            std::uint8_t why[cancel_reason_size];
            write_cancel_reason(static_cast<std::uint16_t>(code), why);
            send_cancel(table_, *b, k.backend_id,
                        code != errc::cancelled ? bytes_view(why, sizeof why) : bytes_view());
        }
    }
    finish(k, now);
}

void calls::reply(connection& c, const frame& f, time_point now) {
    call* k = calls_.by_backend(c.id, f.id);
    if (k == nullptr) {
        // Late (after a deadline or cancel) or unknown: nobody waits for it.
        HS_LOG(debug, "call.late_reply").kv("conn", c.id).kv("id", f.id).kv("kind", kind_name(f.kind));
        return;
    }
    connection* caller = table_.find(k->caller);
    frame out;
    out.flags = static_cast<std::uint8_t>(f.flags & frame_flags::json);
    out.id = k->caller_id;
    out.payload = f.payload;

    switch (f.kind) {
        case frame_kind::response:
        case frame_kind::stream_end:
            if ((f.kind == frame_kind::response) == k->stream) {
                table_.send_error(c, f.id, errc::unexpected_frame,
                                  k->stream ? "this call is a stream" : "this call is a request");
                return;
            }
            out.kind = f.kind;
            if (caller) table_.send(*caller, out);
            finish(calls_.remove(*k), now);
            return;
        case frame_kind::error:
            out.kind = frame_kind::error;
            out.code = f.code;
            metrics_.error_sent(f.code);
            if (caller) table_.send(*caller, out);
            finish(calls_.remove(*k), now);
            return;
        case frame_kind::stream_item:
            if (!k->stream) {
                table_.send_error(c, f.id, errc::unexpected_frame, "this call is a request");
                return;
            }
            if (k->credit == 0) {
                table_.send_error(c, f.id, errc::protocol_violation, "stream item without credit");
                const call gone = calls_.remove(*k);
                fail(gone, errc::handler_failed, "the backend exceeded the stream's credit",
                     call_end_notice::caller_and_backend, now);
                return;
            }
            --k->credit;
            out.kind = frame_kind::stream_item;
            if (caller) table_.send(*caller, out);
            return;
        default:
            return;
    }
}

void calls::credit(connection& c, const frame& f) {
    call* k = calls_.by_caller(c.id, f.id);
    if (k == nullptr || !k->stream) {
        table_.send_error(c, f.id, errc::no_such_stream, "no such stream");
        return;
    }
    k->credit = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{k->credit} + f.credit, 0xFFFFFFFFu));
    if (connection* b = table_.find(k->backend)) {
        frame out;
        out.kind = frame_kind::stream_credit;
        out.id = k->backend_id;
        out.credit = f.credit;
        table_.send(*b, out);
    }
}

void calls::cancel(connection& c, const frame& f, time_point now) {
    if (c.role == client_role::backend) {
        if (call* k = calls_.by_backend(c.id, f.id)) {
            const call gone = calls_.remove(*k);
            if (connection* caller = table_.find(gone.caller))
                table_.send_error(*caller, gone.caller_id, errc::cancelled, "cancelled by the service");
            finish(gone, now);
            return;
        }
    }
    call* k = calls_.by_caller(c.id, f.id);
    if (k == nullptr) return;  // already finished: cancel races with the reply
    const call gone = calls_.remove(*k);
    if (connection* b = table_.find(gone.backend)) send_cancel(table_, *b, gone.backend_id);
    finish(gone, now);
}

void calls::drop(connection& c, time_point now) {
    if (c.has_services()) {
        services_.remove_all(c.id, c.extras->services, now);
        count_services();
    }
    for (const call& k : calls_.take_by_backend(c.id))
        fail(k, errc::backend_gone, "the backend serving this call went away", call_end_notice::caller, now);
    for (const call& k : calls_.take_by_caller(c.id)) {
        if (connection* b = table_.find(k.backend)) send_cancel(table_, *b, k.backend_id);
        finish(k, now);
    }
}

std::size_t calls::withdraw(connection& c, time_point now) {
    const principal p = who(c);
    const std::vector<call> ended = calls_.take_by_caller_if(
        c.id, [&](const call& k) { return static_cast<bool>(auth_.can_call(p, k.service, k.method)); });
    for (const call& k : ended)
        fail(k, errc::forbidden, "the refreshed token no longer allows this call", call_end_notice::caller_and_backend,
             now);
    return ended.size();
}

void calls::fail_all(errc code, std::string_view text, time_point now) {
    for (const call& k : calls_.take_all()) fail(k, code, text, call_end_notice::caller_and_backend, now);
}

void calls::tick(time_point now) {
    for (const call& k : calls_.take_expired(now))
        fail(k, errc::deadline_exceeded, "the deadline passed", call_end_notice::caller_and_backend, now);
    services_.forget_idle(now);
}

// ---------------------------------------------------------------- services

void calls::discover(connection& c, const frame& f) {
    // A listing comes in pages that fit the payload limit: a discover names
    // the last service of the page before (empty: from the first), and a
    // page with more after it has the flag `more`.
    if (!f.name.empty() && !is_valid_channel(f.name)) {
        table_.send_error(c, f.id, errc::invalid_name, "a discover names the last service of the page before");
        return;
    }
    service_registry::page page;
    if (services_.list(f.name, cfg_.max_payload, page)) {
        table_.send_error(c, f.id, errc::frame_too_large, "one service's listing does not fit in a frame");
        return;
    }
    service_list_body list;
    list.services = std::move(page.services);
    std::vector<std::uint8_t> body;
    if (encode_body(list, body)) {
        table_.send_error(c, f.id, errc::frame_too_large, "the service list is too large");
        return;
    }
    frame out;
    out.kind = frame_kind::service_list;
    out.id = f.id;
    if (page.more) out.flags = frame_flags::more;
    out.payload = body;
    table_.send(c, out);
}

void calls::register_service(connection& c, const frame& f) {
    register_body body;
    if (!is_valid_channel(f.name)) {
        table_.send_error(c, f.id, errc::invalid_name, "not a valid service name");
        return;
    }
    if (decode_body(f.payload, body)) {
        table_.send_error(c, f.id, errc::malformed_body, "register body does not parse");
        return;
    }
    std::vector<service_registry::method> methods;
    for (const method_info& m : body.methods) {
        service_method sm;
        const std::string full = std::string(f.name) + "/" + std::string(m.name);
        if (!split_service_method(full, sm)) {
            table_.send_error(c, f.id, errc::invalid_name, "not a valid method name: " + std::string(m.name));
            return;
        }
        methods.push_back(service_registry::method{std::string(m.name), m.kind});
    }
    if (std::error_code ec = auth_.can_register(who(c), f.name)) {
        table_.send_error(c, f.id, static_cast<errc>(ec.value()), "not allowed to register this service");
        return;
    }
    if (c.extras && c.extras->services.size() >= cfg_.max_services_per_backend &&
        !c.extras->services.contains(f.name)) {
        table_.send_error(c, f.id, errc::too_many_services,
                          "this connection serves limits.max_services_per_backend services already");
        return;
    }
    if (services_.add(f.name, c.id, std::move(methods))) {
        table_.send_error(c, f.id, errc::too_many_services,
                          "the router knows limits.max_services services, or this service would have more "
                          "than limits.max_methods_per_service methods");
        return;
    }
    c.extras_for_writing().services.emplace(f.name);
    count_services();
    HS_LOG(info, "service.register").kv("conn", c.id).kv("service", f.name).kv("methods", body.methods.size());
    table_.send_ack(c, f.id);
}

void calls::unregister_service(connection& c, const frame& f, time_point now) {
    if (!services_.remove(f.name, c.id, now)) {
        table_.send_error(c, f.id, errc::no_such_service, "this connection does not serve it");
        return;
    }
    if (c.extras) {
        if (auto it = c.extras->services.find(f.name); it != c.extras->services.end()) c.extras->services.erase(it);
    }
    count_services();
    HS_LOG(info, "service.unregister").kv("conn", c.id).kv("service", f.name);
    table_.send_ack(c, f.id);
}

void calls::describe(std::vector<service_view>& out) const {
    for (const auto& [name, s] : services_.all()) {
        service_view v;
        v.name = name;
        for (const auto& inst : s.instances) {
            service_view::instance i{inst.conn, inst.pending, inst.served, {}};
            for (const auto& m : inst.methods) i.methods.emplace_back(m.name, m.kind);
            v.instances.push_back(std::move(i));
        }
        out.push_back(std::move(v));
    }
}

}  // namespace hyperstreams::router
