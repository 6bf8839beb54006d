// Services registered by backends: which connections serve which service and
// methods, and the choice of an instance for a call. Socket-free; used only
// by the routing core, one call at a time.
//
// A service stays known after its last instance leaves, so that a call to it
// fails with no_instance_available (it exists, nobody serves it now) rather
// than no_such_service (nobody ever registered it).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {

class service_registry {
public:
    using connection_id = std::uint64_t;

    struct method {
        std::string name;
        method_kind kind = method_kind::unary;
    };
    struct instance {
        connection_id conn = 0;
        std::vector<method> methods;
        std::uint32_t pending = 0;
        std::uint64_t served = 0;
    };
    struct service {
        std::vector<instance> instances;
        std::size_t next = 0;  // round-robin cursor
    };

    explicit service_registry(balance_policy policy) : policy_(policy) {}

    // Adds or replaces `conn`'s registration of `name`.
    void add(std::string_view name, connection_id conn, std::vector<method> methods);
    // False when `conn` did not serve `name`.
    bool remove(std::string_view name, connection_id conn);
    // Every registration of `conn`.
    void remove_all(connection_id conn);

    // Picks the instance for a call of `method` of the given kind. Errors:
    // no_such_service (never registered, or no instance has the method),
    // no_instance_available (registered, nobody serves it now).
    std::error_code choose(std::string_view name, std::string_view method, method_kind kind,
                           connection_id& out);

    // Book-keeping of calls in flight, for least_pending.
    void call_started(std::string_view name, connection_id conn);
    void call_finished(std::string_view name, connection_id conn);

    const std::map<std::string, service, std::less<>>& all() const noexcept { return services_; }

private:
    instance* find_instance(std::string_view name, connection_id conn);

    balance_policy policy_;
    std::map<std::string, service, std::less<>> services_;
};

}  // namespace hyperstreams::router
