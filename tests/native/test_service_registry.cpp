// service_registry: registrations, errors and load balancing.
#include <gtest/gtest.h>

#include <map>

#include "service_registry.hpp"

namespace hyperstreams::router {
namespace {

std::vector<service_registry::method> methods(std::initializer_list<std::pair<const char*, method_kind>> list) {
    std::vector<service_registry::method> out;
    for (auto [name, kind] : list) out.push_back({name, kind});
    return out;
}

TEST(ServiceRegistry, NamedErrorsForUnknownAndUnservedServices) {
    service_registry r(balance_policy::least_pending);
    std::uint64_t conn = 0;
    EXPECT_EQ(r.choose("nope", "m", method_kind::unary, conn), errc::no_such_service);
    EXPECT_FALSE(r.add("svc", 1, methods({{"get", method_kind::unary}, {"watch", method_kind::stream}})));
    EXPECT_FALSE(r.choose("svc", "get", method_kind::unary, conn));
    EXPECT_EQ(conn, 1u);
    EXPECT_EQ(r.choose("svc", "other", method_kind::unary, conn), errc::no_such_service);
    EXPECT_EQ(r.choose("svc", "get", method_kind::stream, conn), errc::no_such_service)
        << "a unary method is not a stream";
    r.remove_all(1, std::vector<std::string>{"svc"}, {});
    EXPECT_EQ(r.choose("svc", "get", method_kind::unary, conn), errc::no_instance_available)
        << "known service, nobody serves it now";
}

TEST(ServiceRegistry, RoundRobinRotatesOverInstances) {
    service_registry r(balance_policy::round_robin);
    for (std::uint64_t c = 1; c <= 3; ++c) EXPECT_FALSE(r.add("svc", c, methods({{"get", method_kind::unary}})));
    std::map<std::uint64_t, int> hits;
    for (int i = 0; i < 9; ++i) {
        std::uint64_t conn = 0;
        ASSERT_FALSE(r.choose("svc", "get", method_kind::unary, conn));
        ++hits[conn];
    }
    EXPECT_EQ(hits, (std::map<std::uint64_t, int>{{1, 3}, {2, 3}, {3, 3}}));
}

TEST(ServiceRegistry, LeastPendingPrefersTheIdlestInstance) {
    service_registry r(balance_policy::least_pending);
    for (std::uint64_t c = 1; c <= 3; ++c) EXPECT_FALSE(r.add("svc", c, methods({{"get", method_kind::unary}})));
    r.call_started("svc", 1);
    r.call_started("svc", 1);
    r.call_started("svc", 3);
    std::uint64_t conn = 0;
    ASSERT_FALSE(r.choose("svc", "get", method_kind::unary, conn));
    EXPECT_EQ(conn, 2u);
    r.call_started("svc", 2);
    r.call_started("svc", 2);
    r.call_finished("svc", 1);
    r.call_finished("svc", 1);
    ASSERT_FALSE(r.choose("svc", "get", method_kind::unary, conn));
    EXPECT_EQ(conn, 1u);
}

TEST(ServiceRegistry, OnlyInstancesWithTheMethodAreChosen) {
    service_registry r(balance_policy::round_robin);
    EXPECT_FALSE(r.add("svc", 1, methods({{"a", method_kind::unary}})));
    EXPECT_FALSE(r.add("svc", 2, methods({{"b", method_kind::unary}})));
    for (int i = 0; i < 4; ++i) {
        std::uint64_t conn = 0;
        ASSERT_FALSE(r.choose("svc", "b", method_kind::unary, conn));
        EXPECT_EQ(conn, 2u);
    }
}

TEST(ServiceRegistry, ReRegisteringReplacesTheMethods) {
    service_registry r(balance_policy::round_robin);
    EXPECT_FALSE(r.add("svc", 1, methods({{"a", method_kind::unary}})));
    EXPECT_FALSE(r.add("svc", 1, methods({{"b", method_kind::unary}})));
    EXPECT_EQ(r.all().at("svc").instances.size(), 1u);
    std::uint64_t conn = 0;
    EXPECT_EQ(r.choose("svc", "a", method_kind::unary, conn), errc::no_such_service);
    EXPECT_FALSE(r.choose("svc", "b", method_kind::unary, conn));
    EXPECT_TRUE(r.remove("svc", 1, {}));
    EXPECT_FALSE(r.remove("svc", 1, {}));
}

// The registry is bounded and forgets: one backend registering 70,000 names
// once made every register slower and every discover fail, still after the
// backend had left.
TEST(ServiceRegistry, AServiceNobodyServesIsForgottenAfterTheGrace) {
    using namespace std::chrono_literals;
    service_registry r(balance_policy::round_robin, service_limits{10, 8, 1000ms});
    const service_registry::time_point t0{};
    EXPECT_FALSE(r.add("svc", 1, methods({{"get", method_kind::unary}})));
    EXPECT_EQ(r.instance_count(), 1u);
    EXPECT_TRUE(r.remove("svc", 1, t0));
    EXPECT_EQ(r.instance_count(), 0u);
    std::uint64_t conn = 0;
    r.forget_idle(t0 + 999ms);
    EXPECT_EQ(r.choose("svc", "get", method_kind::unary, conn), errc::no_instance_available);
    r.forget_idle(t0 + 1000ms);
    EXPECT_EQ(r.choose("svc", "get", method_kind::unary, conn), errc::no_such_service);
    EXPECT_TRUE(r.all().empty());

    // Served again within the grace: kept, and its old idle entry forgets nothing.
    EXPECT_FALSE(r.add("svc", 1, methods({{"get", method_kind::unary}})));
    EXPECT_TRUE(r.remove("svc", 1, t0 + 2000ms));
    EXPECT_FALSE(r.add("svc", 2, methods({{"get", method_kind::unary}})));
    r.forget_idle(t0 + 5000ms);
    EXPECT_FALSE(r.choose("svc", "get", method_kind::unary, conn));
    EXPECT_EQ(conn, 2u);
}

TEST(ServiceRegistry, NamesAndMethodsAreBounded) {
    using namespace std::chrono_literals;
    service_registry r(balance_policy::round_robin, service_limits{3, 2, 60000ms});
    EXPECT_FALSE(r.add("a", 1, methods({{"m", method_kind::unary}})));
    EXPECT_FALSE(r.add("b", 1, methods({{"m", method_kind::unary}})));
    EXPECT_FALSE(r.add("c", 1, methods({{"m", method_kind::unary}})));
    EXPECT_EQ(r.add("d", 1, methods({{"m", method_kind::unary}})), errc::too_many_services);
    EXPECT_FALSE(r.add("c", 2, methods({{"m", method_kind::unary}}))) << "a known name takes no room";

    // A name nobody serves gives its room to a new one before its grace ends.
    EXPECT_TRUE(r.remove("a", 1, {}));
    EXPECT_FALSE(r.add("d", 1, methods({{"m", method_kind::unary}})));
    std::uint64_t conn = 0;
    EXPECT_EQ(r.choose("a", "m", method_kind::unary, conn), errc::no_such_service);
    EXPECT_EQ(r.all().size(), 3u);

    // Methods count over all instances of a service.
    EXPECT_FALSE(r.add("b", 2, methods({{"m", method_kind::unary}, {"n", method_kind::unary}})));
    EXPECT_EQ(r.add("b", 3, methods({{"o", method_kind::unary}})), errc::too_many_services);
    EXPECT_FALSE(r.add("b", 1, methods({{"n", method_kind::unary}}))) << "replacing its own methods";
    EXPECT_EQ(r.instance_count(), 5u);
}

TEST(ServiceRegistry, AListingComesInPagesThatFitTheLimit) {
    service_registry r(balance_policy::round_robin);
    for (const char* name : {"alpha", "beta", "gamma", "delta", "epsilon"})
        EXPECT_FALSE(r.add(name, 1, methods({{"get", method_kind::unary}})));
    // Each entry: str name (2 + n), u16 instances, u16 count, method (2 + 3 + 1).
    const auto size = [](std::string_view name) { return 2 + name.size() + 4 + 6; };
    service_registry::page page;
    ASSERT_FALSE(r.list("", service_list_header_size + size("alpha") + size("beta"), page));
    ASSERT_EQ(page.services.size(), 2u);
    EXPECT_EQ(page.services[0].name, "alpha");
    EXPECT_EQ(page.services[1].name, "beta");
    EXPECT_TRUE(page.more);

    std::vector<std::string> all;
    std::string after;
    for (int round = 0; round < 10; ++round) {
        ASSERT_FALSE(r.list(after, 40, page));
        for (const auto& s : page.services) all.emplace_back(s.name);
        if (!page.more) break;
        after = all.back();
    }
    EXPECT_EQ(all, (std::vector<std::string>{"alpha", "beta", "delta", "epsilon", "gamma"}));

    EXPECT_EQ(r.list("", service_list_header_size + size("alpha") - 1, page), errc::frame_too_large)
        << "not even one service fits";
}

}  // namespace
}  // namespace hyperstreams::router
