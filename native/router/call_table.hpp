// Requests and streams in flight through the router. Socket-free; used only
// by the routing core, one call at a time, driven by the time the core is given.
//
// The router gives every call its own id towards the backend (bit 31 set, so
// that a backend that also makes calls can tell the two apart) and maps it
// back to the caller's connection and id; a response travels back with the
// caller's id. Each call has a deadline (streams may have none); the core
// asks for the expired ones when its timer fires.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "router_types.hpp"

namespace hyperstreams::router {

struct call {
    std::uint64_t key = 0;  // set by call_table::add
    std::uint64_t caller = 0;
    std::uint32_t caller_id = 0;
    std::uint64_t backend = 0;
    std::uint32_t backend_id = 0;
    bool stream = false;
    std::string service;  // for the registry's pending counts
    std::string method;   // with service: what a token refresh judges again
    time_point started{};
    time_point deadline = time_point::max();  // max: none
    std::uint32_t credit = 0;                 // stream: items the backend may still send
};

class call_table {
public:
    using connection_id = std::uint64_t;

    // Stores `c`; false when the caller already has a call with this id or
    // the backend id is taken.
    [[nodiscard]] bool add(call c);

    call* by_caller(connection_id conn, std::uint32_t id);
    call* by_backend(connection_id conn, std::uint32_t id);
    bool backend_id_in_use(connection_id conn, std::uint32_t id) const;

    // Removes the call and returns it.
    call remove(const call& c);

    // Calls whose deadline is at or before `now`, removed, earliest first.
    std::vector<call> take_expired(time_point now);
    // Every call served by / made by `conn`, removed.
    std::vector<call> take_by_backend(connection_id conn);
    std::vector<call> take_by_caller(connection_id conn);
    // The calls made by `conn` for which `ends` is true, removed.
    std::vector<call> take_by_caller_if(connection_id conn, const std::function<bool(const call&)>& ends);
    std::vector<call> take_all();

    time_point next_deadline() const;
    std::size_t size() const noexcept { return calls_.size(); }
    std::uint32_t count_for_caller(connection_id conn) const;
    const std::map<std::uint64_t, call>& all() const noexcept { return calls_; }

private:
    using id_key = std::pair<connection_id, std::uint32_t>;
    std::vector<call> take_range(const std::map<id_key, std::uint64_t>& index, connection_id conn,
                                 const std::function<bool(const call&)>& ends = {});

    std::uint64_t next_key_ = 1;
    std::map<std::uint64_t, call> calls_;
    std::map<id_key, std::uint64_t> by_caller_;
    std::map<id_key, std::uint64_t> by_backend_;
    std::set<std::pair<time_point, std::uint64_t>> deadlines_;
    std::map<connection_id, std::uint32_t> per_caller_;
};

}  // namespace hyperstreams::router
