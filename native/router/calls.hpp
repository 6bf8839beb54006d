// The routing core's calls room: the service registry (register,
// unregister, discover), the calls in flight (requests and streams: the
// choice of an instance, deadlines, stream credit, cancels) and what ends
// them (a backend or caller gone, a token that no longer allows them, a
// drain).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "call_table.hpp"
#include "config.hpp"
#include "connection_table.hpp"
#include "service_registry.hpp"

namespace hyperstreams::router {

// Who learns that the router ended a call.
enum class call_end_notice : std::uint8_t {
    caller,              // the backend already knows (it answered, or went away)
    caller_and_backend,  // the backend gets a cancel carrying the reason
};

// One service as the admin view shows it.
struct service_view {
    struct instance {
        connection_id connection = 0;
        std::uint32_t pending = 0;
        std::uint64_t served = 0;
        std::vector<std::pair<std::string, method_kind>> methods;
    };
    std::string name;
    std::vector<instance> instances;
};

class calls {
public:
    calls(const router_config& cfg, authorizer& auth, metrics& m, connection_table& table);
    calls(const calls&) = delete;
    calls& operator=(const calls&) = delete;

    // A request or stream_open from a client.
    void start(connection& c, const frame& f, time_point now);
    // A response, stream item, stream end or error from a backend.
    void reply(connection& c, const frame& f, time_point now);
    void credit(connection& c, const frame& f);
    void cancel(connection& c, const frame& f, time_point now);

    void register_service(connection& c, const frame& f);
    void unregister_service(connection& c, const frame& f, time_point now);
    void discover(connection& c, const frame& f);

    // The connection is going: its registrations end, the calls it served
    // fail, the calls it made are cancelled.
    void drop(connection& c, time_point now);
    // Fails the calls `c`'s rights no longer allow (after a token
    // refresh). Returns how many.
    std::size_t withdraw(connection& c, time_point now);
    // While draining no call is accepted.
    void refuse_new(bool refuse) noexcept { refusing_ = refuse; }
    // Fails every call in flight with `code`.
    void fail_all(errc code, std::string_view text, time_point now);

    // Deadlines, and services idle past their grace.
    void tick(time_point now);
    [[nodiscard]] time_point next_deadline() const { return calls_.next_deadline(); }
    std::size_t in_flight() const noexcept { return calls_.size(); }

    void describe(std::vector<service_view>& out) const;

private:
    void finish(const call& k, time_point now);
    void fail(const call& k, errc code, std::string_view text, call_end_notice notice, time_point now);
    // The services gauge, after every change of the registry.
    void count_services();

    const router_config& cfg_;
    authorizer& auth_;
    metrics& metrics_;
    connection_table& table_;
    service_registry services_;
    call_table calls_;
    bool refusing_ = false;
};

}  // namespace hyperstreams::router
