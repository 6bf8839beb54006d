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
    r.add("svc", 1, methods({{"get", method_kind::unary}, {"watch", method_kind::stream}}));
    EXPECT_FALSE(r.choose("svc", "get", method_kind::unary, conn));
    EXPECT_EQ(conn, 1u);
    EXPECT_EQ(r.choose("svc", "other", method_kind::unary, conn), errc::no_such_service);
    EXPECT_EQ(r.choose("svc", "get", method_kind::stream, conn), errc::no_such_service)
        << "a unary method is not a stream";
    r.remove_all(1);
    EXPECT_EQ(r.choose("svc", "get", method_kind::unary, conn), errc::no_instance_available)
        << "known service, nobody serves it now";
}

TEST(ServiceRegistry, RoundRobinRotatesOverInstances) {
    service_registry r(balance_policy::round_robin);
    for (std::uint64_t c = 1; c <= 3; ++c) r.add("svc", c, methods({{"get", method_kind::unary}}));
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
    for (std::uint64_t c = 1; c <= 3; ++c) r.add("svc", c, methods({{"get", method_kind::unary}}));
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
    r.add("svc", 1, methods({{"a", method_kind::unary}}));
    r.add("svc", 2, methods({{"b", method_kind::unary}}));
    for (int i = 0; i < 4; ++i) {
        std::uint64_t conn = 0;
        ASSERT_FALSE(r.choose("svc", "b", method_kind::unary, conn));
        EXPECT_EQ(conn, 2u);
    }
}

TEST(ServiceRegistry, ReRegisteringReplacesTheMethods) {
    service_registry r(balance_policy::round_robin);
    r.add("svc", 1, methods({{"a", method_kind::unary}}));
    r.add("svc", 1, methods({{"b", method_kind::unary}}));
    EXPECT_EQ(r.all().at("svc").instances.size(), 1u);
    std::uint64_t conn = 0;
    EXPECT_EQ(r.choose("svc", "a", method_kind::unary, conn), errc::no_such_service);
    EXPECT_FALSE(r.choose("svc", "b", method_kind::unary, conn));
    EXPECT_TRUE(r.remove("svc", 1));
    EXPECT_FALSE(r.remove("svc", 1));
}

}  // namespace
}  // namespace hyperstreams::router
