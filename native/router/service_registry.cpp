#include "service_registry.hpp"

#include <algorithm>

namespace hyperstreams::router {
namespace {

// The methods of every instance, each name once (the first kind wins).
std::vector<method_info> method_union(const service_registry::service& s) {
    std::vector<method_info> out;
    for (const auto& inst : s.instances)
        for (const auto& m : inst.methods)
            if (std::none_of(out.begin(), out.end(), [&](const method_info& u) { return u.name == m.name; }))
                out.push_back(method_info{m.name, m.kind});
    return out;
}

}  // namespace

std::error_code service_registry::add(std::string_view name, connection_id conn, std::vector<method> methods) {
    auto it = services_.find(name);
    if (it == services_.end()) {
        if (services_.size() >= limits_.max_services && !forget_oldest_idle()) return errc::too_many_services;
        it = services_.try_emplace(std::string(name)).first;
    }
    service& s = it->second;
    // The union the listing would show once this registration is in.
    std::vector<std::string_view> names;
    for (const auto& inst : s.instances)
        if (inst.conn != conn)
            for (const auto& m : inst.methods) names.push_back(m.name);
    for (const auto& m : methods) names.push_back(m.name);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    if (names.size() > limits_.max_methods_per_service) {
        if (s.instances.empty()) services_.erase(it);
        return errc::too_many_services;
    }
    for (instance& i : s.instances) {
        if (i.conn == conn) {
            i.methods = std::move(methods);
            return {};
        }
    }
    s.instances.push_back(instance{conn, std::move(methods), 0, 0});
    ++instances_;
    return {};
}

bool service_registry::remove(std::string_view name, connection_id conn, time_point now) {
    auto it = services_.find(name);
    if (it == services_.end()) return false;
    auto& v = it->second.instances;
    auto pos = std::find_if(v.begin(), v.end(), [conn](const instance& i) { return i.conn == conn; });
    if (pos == v.end()) return false;
    v.erase(pos);
    --instances_;
    if (v.empty()) {
        it->second.idle_since = now;
        idle_.emplace_back(now, it->first);
    }
    return true;
}

void service_registry::forget_idle(time_point now) {
    while (!idle_.empty() && now - idle_.front().first >= limits_.grace) {
        auto it = services_.find(idle_.front().second);
        // Served again since, or gone idle again later (a later entry decides).
        if (it != services_.end() && it->second.instances.empty() &&
            it->second.idle_since == idle_.front().first)
            services_.erase(it);
        idle_.pop_front();
    }
}

bool service_registry::forget_oldest_idle() {
    while (!idle_.empty()) {
        auto [since, name] = std::move(idle_.front());
        idle_.pop_front();
        auto it = services_.find(name);
        if (it != services_.end() && it->second.instances.empty() && it->second.idle_since == since) {
            services_.erase(it);
            return true;
        }
    }
    return false;
}

std::error_code service_registry::choose(std::string_view name, std::string_view method_name,
                                         method_kind kind, connection_id& out) {
    auto it = services_.find(name);
    if (it == services_.end()) return errc::no_such_service;
    service& s = it->second;
    if (s.instances.empty()) return errc::no_instance_available;

    const auto serves = [&](const instance& i) {
        return std::any_of(i.methods.begin(), i.methods.end(),
                           [&](const method& m) { return m.name == method_name && m.kind == kind; });
    };
    const std::size_t n = s.instances.size();
    instance* best = nullptr;
    std::size_t best_index = 0;
    // Start after the last choice, so that ties rotate.
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t idx = (s.next + k) % n;
        instance& i = s.instances[idx];
        if (!serves(i)) continue;
        if (best == nullptr || (policy_ == balance_policy::least_pending && i.pending < best->pending)) {
            best = &i;
            best_index = idx;
            if (policy_ == balance_policy::round_robin) break;
        }
    }
    if (best == nullptr) return errc::no_such_service;
    s.next = best_index + 1;
    out = best->conn;
    return {};
}

std::error_code service_registry::list(std::string_view after, std::size_t max_bytes, page& out) const {
    out.services.clear();
    out.more = false;
    std::size_t bytes = service_list_header_size;
    for (auto it = after.empty() ? services_.begin() : services_.upper_bound(after); it != services_.end(); ++it) {
        service_info info;
        info.name = it->first;
        info.instances = static_cast<std::uint16_t>(std::min<std::size_t>(it->second.instances.size(), 0xFFFF));
        info.methods = method_union(it->second);
        const std::size_t size = encoded_size(info);
        if (bytes + size > max_bytes || out.services.size() == 0xFFFF) {
            if (out.services.empty()) return errc::frame_too_large;
            out.more = true;
            break;
        }
        bytes += size;
        out.services.push_back(std::move(info));
    }
    return {};
}

service_registry::instance* service_registry::find_instance(std::string_view name, connection_id conn) {
    auto it = services_.find(name);
    if (it == services_.end()) return nullptr;
    for (instance& i : it->second.instances)
        if (i.conn == conn) return &i;
    return nullptr;
}

void service_registry::call_started(std::string_view name, connection_id conn) {
    if (instance* i = find_instance(name, conn)) {
        ++i->pending;
        ++i->served;
    }
}

void service_registry::call_finished(std::string_view name, connection_id conn) {
    if (instance* i = find_instance(name, conn); i && i->pending > 0) --i->pending;
}

}  // namespace hyperstreams::router
