#include "call_table.hpp"

namespace hyperstreams::router {

bool call_table::add(call c) {
    const id_key caller_key{c.caller, c.caller_id};
    const id_key backend_key{c.backend, c.backend_id};
    if (by_caller_.count(caller_key) || by_backend_.count(backend_key)) return false;
    c.key = next_key_++;
    by_caller_.emplace(caller_key, c.key);
    by_backend_.emplace(backend_key, c.key);
    if (c.deadline != time_point::max()) deadlines_.emplace(c.deadline, c.key);
    ++per_caller_[c.caller];
    calls_.emplace(c.key, std::move(c));
    return true;
}

call* call_table::by_caller(connection_id conn, std::uint32_t id) {
    auto it = by_caller_.find({conn, id});
    return it == by_caller_.end() ? nullptr : &calls_.at(it->second);
}

call* call_table::by_backend(connection_id conn, std::uint32_t id) {
    auto it = by_backend_.find({conn, id});
    return it == by_backend_.end() ? nullptr : &calls_.at(it->second);
}

bool call_table::backend_id_in_use(connection_id conn, std::uint32_t id) const {
    return by_backend_.count({conn, id}) != 0;
}

call call_table::remove(const call& c) {
    auto it = calls_.find(c.key);
    call out = std::move(it->second);
    calls_.erase(it);
    by_caller_.erase({out.caller, out.caller_id});
    by_backend_.erase({out.backend, out.backend_id});
    if (out.deadline != time_point::max()) deadlines_.erase({out.deadline, out.key});
    if (auto n = per_caller_.find(out.caller); n != per_caller_.end() && --n->second == 0)
        per_caller_.erase(n);
    return out;
}

std::vector<call> call_table::take_expired(time_point now) {
    std::vector<call> out;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now)
        out.push_back(remove(calls_.at(deadlines_.begin()->second)));
    return out;
}

std::vector<call> call_table::take_range(const std::map<id_key, std::uint64_t>& index, connection_id conn,
                                         const std::function<bool(const call&)>& ends) {
    std::vector<std::uint64_t> keys;
    for (auto it = index.lower_bound({conn, 0}); it != index.end() && it->first.first == conn; ++it)
        if (!ends || ends(calls_.at(it->second))) keys.push_back(it->second);
    std::vector<call> out;
    out.reserve(keys.size());
    for (std::uint64_t k : keys) out.push_back(remove(calls_.at(k)));
    return out;
}

std::vector<call> call_table::take_by_backend(connection_id conn) { return take_range(by_backend_, conn); }
std::vector<call> call_table::take_by_caller(connection_id conn) { return take_range(by_caller_, conn); }
std::vector<call> call_table::take_by_caller_if(connection_id conn, const std::function<bool(const call&)>& ends) {
    return take_range(by_caller_, conn, ends);
}

std::vector<call> call_table::take_all() {
    std::vector<call> out;
    while (!calls_.empty()) out.push_back(remove(calls_.begin()->second));
    return out;
}

time_point call_table::next_deadline() const {
    return deadlines_.empty() ? time_point::max() : deadlines_.begin()->first;
}

std::uint32_t call_table::count_for_caller(connection_id conn) const {
    auto it = per_caller_.find(conn);
    return it == per_caller_.end() ? 0 : it->second;
}

}  // namespace hyperstreams::router
