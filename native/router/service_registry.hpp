// Services registered by backends: which connections serve which service and
// methods, and the choice of an instance for a call. Socket-free; used only
// by the routing core, one call at a time.
//
// A service stays known for a grace period after its last instance leaves,
// so that a call to it fails with no_instance_available (it exists, nobody
// serves it now) rather than no_such_service (nobody registered it); then
// it is forgotten. The names known at once, and the methods of one service
// over all its instances, are bounded: a registry that only grows would
// cost every discover more, and one listing must stay pageable.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {

struct service_limits {
    std::size_t max_services = 10000;
    std::size_t max_methods_per_service = 256;
    std::chrono::milliseconds grace{60000};
};

class service_registry {
public:
    using connection_id = std::uint64_t;
    using time_point = std::chrono::steady_clock::time_point;

    using limits = service_limits;
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
        std::size_t next = 0;   // round-robin cursor
        time_point idle_since{};  // when the last instance left (instances empty)
    };

    explicit service_registry(balance_policy policy, limits l = {}) : policy_(policy), limits_(l) {}

    // Adds or replaces `conn`'s registration of `name`. too_many_services
    // when `name` is new and the registry is full of served names, or when
    // the service's methods over all its instances would pass the bound.
    [[nodiscard]] std::error_code add(std::string_view name, connection_id conn, std::vector<method> methods);
    // False when `conn` did not serve `name`.
    [[nodiscard]] bool remove(std::string_view name, connection_id conn, time_point now);
    // Every registration of `conn`, which serves `names`.
    template <typename Names>
    void remove_all(connection_id conn, const Names& names, time_point now) {
        for (const auto& name : names) (void)remove(name, conn, now);
    }
    // Forgets the services nobody has served for the grace period.
    void forget_idle(time_point now);

    // Picks the instance for a call of `method` of the given kind. Errors:
    // no_such_service (not known, or no instance has the method),
    // no_instance_available (known, nobody serves it now).
    [[nodiscard]] std::error_code choose(std::string_view name, std::string_view method, method_kind kind,
                                         connection_id& out);

    // Book-keeping of calls in flight, for least_pending.
    void call_started(std::string_view name, connection_id conn);
    void call_finished(std::string_view name, connection_id conn);

    const std::map<std::string, service, std::less<>>& all() const noexcept { return services_; }
    // Registrations over all services: the services gauge.
    std::size_t instance_count() const noexcept { return instances_; }

    // The listing of a discover: the services after `after` (by name; empty:
    // from the first), as many as fit in `max_bytes` of service_list body.
    // `more` tells whether services remain. Views into the registry: valid
    // until it changes. too large: one service alone does not fit.
    struct page {
        std::vector<service_info> services;
        bool more = false;
    };
    [[nodiscard]] std::error_code list(std::string_view after, std::size_t max_bytes, page& out) const;

private:
    instance* find_instance(std::string_view name, connection_id conn);
    // Forgets the service idle longest; false when every service is served.
    bool forget_oldest_idle();

    balance_policy policy_;
    limits limits_;
    std::map<std::string, service, std::less<>> services_;
    std::size_t instances_ = 0;
    // Names in the order they went idle (a name may be served again, and go
    // idle again, before its entry comes up: the entry is checked then).
    std::deque<std::pair<time_point, std::string>> idle_;
};

}  // namespace hyperstreams::router
