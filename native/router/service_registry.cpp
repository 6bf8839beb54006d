#include "service_registry.hpp"

#include <algorithm>

namespace hyperstreams::router {

void service_registry::add(std::string_view name, connection_id conn, std::vector<method> methods) {
    service& s = services_.try_emplace(std::string(name)).first->second;
    for (instance& i : s.instances) {
        if (i.conn == conn) {
            i.methods = std::move(methods);
            return;
        }
    }
    s.instances.push_back(instance{conn, std::move(methods), 0, 0});
}

bool service_registry::remove(std::string_view name, connection_id conn) {
    auto it = services_.find(name);
    if (it == services_.end()) return false;
    auto& v = it->second.instances;
    auto pos = std::find_if(v.begin(), v.end(), [conn](const instance& i) { return i.conn == conn; });
    if (pos == v.end()) return false;
    v.erase(pos);
    return true;
}

void service_registry::remove_all(connection_id conn) {
    for (auto& [name, s] : services_)
        std::erase_if(s.instances, [conn](const instance& i) { return i.conn == conn; });
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
