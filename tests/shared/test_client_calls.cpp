// The client engine's calls against the fake router: what the real router
// core never sends (answers to ids it did not route, items beyond the
// credit, a grant of any size, malformed or oddly paged service lists, calls
// for methods nobody registered, cancel reasons that are not one) and what
// the engine decides alone (its own deadline when the router is silent, the
// outbox, argument checks). Calls as the real router core routes them, with
// real backends: tests/native/test_paired_calls.cpp.
#include <gtest/gtest.h>

#include "fake_router.hpp"

namespace hyperstreams::testing {
namespace {

client_config backend_config() {
    client_config c = test_config();
    c.role = client_role::backend;
    return c;
}

wire_frame incoming(frame_kind kind, std::uint32_t id, std::string name, std::string payload = "in",
                    std::uint32_t deadline_ms = 0, std::uint32_t credit = 0) {
    wire_frame w = simple_frame(kind, id, std::move(payload), std::move(name));
    w.deadline_ms = deadline_ms;
    w.credit = credit;
    return w;
}

wire_frame credit_frame(std::uint32_t id, std::uint32_t credit) {
    wire_frame w = simple_frame(frame_kind::stream_credit, id);
    w.credit = credit;
    return w;
}

// --- requests ----------------------------------------------------------------------

TEST(ClientRequest, LocalDeadlineFailsItWithoutTheRouter) {
    rig r;
    r.connect();
    const call_result q = r.engine.request("slow", "op", {}, 3000, r.now);
    r.pump();
    r.advance(2999);
    EXPECT_TRUE(r.errors(operation::request).empty());
    r.advance(1);
    const auto errors = r.errors(operation::request);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, q.id);
    EXPECT_EQ(errors[0].code, code(errc::deadline_exceeded));
    EXPECT_EQ(r.sent(frame_kind::cancel).at(0).id, q.id) << "the backend may stop working";
    // The late answer is dropped.
    r.deliver({simple_frame(frame_kind::response, q.id, "late")});
    EXPECT_EQ(r.count(event_kind::response), 0u);
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

TEST(ClientRequest, QueuedRequestSendsTheTimeLeft) {
    rig r;
    r.open = open_mode::manual;
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    const call_result q = r.engine.request("svc", "m", {}, 5000, r.now);
    r.advance(1500);
    r.open = open_mode::accept;
    r.router.connection_opened();
    r.transport_up = true;
    r.engine.transport_opened(r.transport, r.now);
    r.pump();
    const auto frames = r.sent(frame_kind::request);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, q.id);
    EXPECT_EQ(frames[0].deadline_ms, 3500u);
}

TEST(ClientRequest, DeadlinePassingInTheOutboxFailsItUnsent) {
    rig r;
    r.open = open_mode::refuse;
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    const call_result q = r.engine.request("svc", "m", {}, 1000, r.now);
    r.advance(1000);
    const auto errors = r.errors(operation::request);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, q.id);
    EXPECT_EQ(errors[0].code, code(errc::deadline_exceeded));
    r.open = open_mode::accept;
    r.advance(20000);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.sent(frame_kind::request).empty());
    EXPECT_TRUE(r.sent(frame_kind::cancel).empty());
}

TEST(ClientRequest, InFlightWhenTheTransportDropsFailsWithConnectionLost) {
    rig r;
    r.connect();
    const call_result q = r.engine.request("svc", "m", {}, 0, r.now);
    r.pump();
    r.drop_transport();
    const auto errors = r.errors(operation::request);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, q.id);
    EXPECT_EQ(errors[0].code, code(errc::connection_lost));
    r.advance(2000);
    EXPECT_EQ(r.sent(frame_kind::request).size(), 1u) << "at most once: never re-sent";
}

TEST(ClientRequest, CancelWhileQueuedNeverSendsIt) {
    rig r;
    const call_result q = r.engine.request("svc", "m", {}, 0, r.now);
    ASSERT_FALSE(r.engine.cancel(q.id));
    ASSERT_FALSE(r.engine.start(r.now));
    r.pump();
    ASSERT_EQ(r.engine.state(), client_state::ready);
    EXPECT_TRUE(r.sent(frame_kind::request).empty());
    EXPECT_TRUE(r.sent(frame_kind::cancel).empty());
    EXPECT_TRUE(r.of(event_kind::error).empty());
}

TEST(ClientRequest, ResponseToAPublishIdIsAViolation) {
    rig r;
    r.connect();
    r.router.auto_ack = false;
    r.router.silent = true;
    const call_result p = r.engine.publish("a.b", bytes("x"), true);
    r.pump();
    r.router.silent = false;
    r.deliver({simple_frame(frame_kind::response, p.id, "?")});
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::unexpected_frame));
}

// --- client streams ------------------------------------------------------------------

TEST(ClientStream, ItemBeyondTheCreditIsAViolation) {
    rig r;
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 2, 0, r.now);
    r.pump();
    r.deliver({simple_frame(frame_kind::stream_item, s.id), simple_frame(frame_kind::stream_item, s.id),
               simple_frame(frame_kind::stream_item, s.id)});
    EXPECT_EQ(r.count(event_kind::stream_item), 2u);
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::protocol_violation));
}

// --- discovery ---------------------------------------------------------------------------

// A listing larger than the router's payload limit comes in pages: the
// engine asks for the next page after the last name it got, under the same
// id, and the host sees one service_list event with every service.
TEST(ClientDiscover, APagedListingIsCollectedIntoOneEvent) {
    rig r;
    r.connect();
    const call_result q = r.engine.discover();
    r.pump();
    const auto page = [](std::initializer_list<const char*> names) {
        service_list_body list;
        for (const char* name : names) {
            service_info svc;
            svc.name = name;
            svc.instances = 1;
            svc.methods = {{"get", method_kind::unary}};
            list.services.push_back(svc);
        }
        std::vector<std::uint8_t> body;
        EXPECT_FALSE(encode_body(list, body));
        return text(body);
    };
    wire_frame first = simple_frame(frame_kind::service_list, q.id, page({"a", "b"}));
    first.flags = frame_flags::more;
    r.deliver({first});
    EXPECT_TRUE(r.of(event_kind::service_list).empty()) << "no event before the last page";
    r.pump();
    const auto asks = r.sent(frame_kind::discover);
    ASSERT_EQ(asks.size(), 2u);
    EXPECT_EQ(asks[1].id, q.id);
    EXPECT_EQ(asks[1].name, "b") << "the next page starts after the last name";

    r.deliver({simple_frame(frame_kind::service_list, q.id, page({"c"}))});
    const auto lists = r.of(event_kind::service_list);
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_EQ(lists[0].id, q.id);
    EXPECT_EQ(lists[0].services, (std::vector<std::string>{"a/get", "b/get", "c/get"}));

    // A page with more after it must end with a service to continue from.
    const call_result again = r.engine.discover();
    r.pump();
    wire_frame empty = simple_frame(frame_kind::service_list, again.id, page({}));
    empty.flags = frame_flags::more;
    r.deliver({empty});
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::protocol_violation));
}

TEST(ClientDiscover, MalformedListIsAViolation) {
    rig r;
    r.connect();
    const call_result q = r.engine.discover();
    r.pump();
    r.deliver({simple_frame(frame_kind::service_list, q.id, "\x05")});
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::malformed_body));
}

// --- backend role ----------------------------------------------------------------------------

const method_info inventory_methods[] = {{"get", method_kind::unary}, {"watch", method_kind::stream}};

TEST(ClientBackend, RegistrationArgumentsAreChecked) {
    rig r(backend_config());
    const method_info bad_name[] = {{"a/b", method_kind::unary}};
    const method_info twice[] = {{"get", method_kind::unary}, {"get", method_kind::stream}};
    EXPECT_EQ(r.engine.register_service("inventory", bad_name).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.register_service("inventory", twice).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.register_service("", inventory_methods).error, errc::invalid_argument);
    EXPECT_EQ(r.engine.register_service("inventory", {}).error, errc::invalid_argument);
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    EXPECT_EQ(r.engine.register_service("inventory", inventory_methods).error,
              errc::invalid_argument);
}

TEST(ClientBackend, UnknownMethodsAreRefusedByTheEngine) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::request, 1, "inventory/delete"),
               incoming(frame_kind::request, 2, "billing/get"),
               incoming(frame_kind::stream_open, 3, "inventory/get", "", 0, 4),  // unary method
               incoming(frame_kind::request, 4, "inventory/watch")});            // stream method
    EXPECT_EQ(r.count(event_kind::incoming_request), 0u);
    EXPECT_EQ(r.count(event_kind::incoming_stream), 0u);
    const auto errors = r.sent(frame_kind::error);
    ASSERT_EQ(errors.size(), 4u);
    for (const wire_frame& e : errors) EXPECT_EQ(e.code, code(errc::no_such_service));
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

TEST(ClientBackend, IncomingIdZeroIsAViolation) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::request, 0, "inventory/get")});
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::protocol_violation));
}

TEST(ClientBackend, DuplicateIncomingIdIsAViolation) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::request, 1, "inventory/get"),
               incoming(frame_kind::request, 1, "inventory/get")});
    EXPECT_EQ(r.engine.state(), client_state::failed);
    EXPECT_EQ(r.errors(operation::connection).at(0).code, code(errc::duplicate_id));
}

TEST(ClientBackend, StreamSendRespectsTheReceiversCredit) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::stream_open, 40, "inventory/watch", "sku-1", 0, 2)});
    const auto opened = r.of(event_kind::incoming_stream);
    ASSERT_EQ(opened.size(), 1u);
    EXPECT_EQ(opened[0].id, 40u);
    EXPECT_EQ(opened[0].method, "watch");
    EXPECT_EQ(opened[0].count, 2u);

    EXPECT_EQ(r.engine.stream_send(40, bytes("a")), stream_send_status::ok);
    EXPECT_EQ(r.engine.stream_send(40, bytes("b")), stream_send_status::ok);
    EXPECT_EQ(r.engine.stream_send(40, bytes("c")), stream_send_status::no_credit);
    EXPECT_EQ(r.engine.stream_send(40, bytes("c"), frame_flags::since), stream_send_status::invalid);
    r.pump();
    EXPECT_EQ(r.sent(frame_kind::stream_item).size(), 2u);

    r.deliver({credit_frame(40, 3)});
    const auto credits = r.of(event_kind::stream_credit);
    ASSERT_EQ(credits.size(), 1u);
    EXPECT_EQ(credits[0].id, 40u);
    EXPECT_EQ(credits[0].count, 3u);
    EXPECT_EQ(r.engine.stream_send(40, bytes("c")), stream_send_status::ok);
    ASSERT_FALSE(r.engine.stream_end(40));
    r.pump();
    EXPECT_EQ(r.sent(frame_kind::stream_item).size(), 3u);
    EXPECT_EQ(r.sent(frame_kind::stream_end).at(0).id, 40u);
    EXPECT_EQ(r.engine.stream_send(40, bytes("d")), stream_send_status::unknown_stream);
}

// The router's cancel says why it ended a call (drain, a withdrawn right):
// the host sees that code, not a bare `cancelled`.
TEST(ClientBackend, ARouterCancelCarriesItsReason) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::request, 1, "inventory/get"), incoming(frame_kind::request, 2, "inventory/get")});
    std::uint8_t why[cancel_reason_size];
    write_cancel_reason(code(errc::going_away), why);
    r.deliver({simple_frame(frame_kind::cancel, 1, std::string(reinterpret_cast<const char*>(why), sizeof why)),
               simple_frame(frame_kind::cancel, 2, "odd")});
    const auto cancelled = r.of(event_kind::cancelled);
    ASSERT_EQ(cancelled.size(), 2u);
    EXPECT_EQ(cancelled[0].code, code(errc::going_away));
    EXPECT_EQ(cancelled[1].code, code(errc::cancelled)) << "a payload that is not a reason: the caller's cancel";
}

TEST(ClientBackend, UnregisterStopsTheService) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    const call_result un = r.engine.unregister_service("inventory");
    ASSERT_FALSE(un.error);
    r.pump();
    EXPECT_EQ(r.sent(frame_kind::unregister_service).at(0).name, "inventory");
    EXPECT_EQ(r.of(event_kind::ack).back().op, operation::unregister_service);
    EXPECT_EQ(r.of(event_kind::ack).back().id, un.id);
    r.deliver({incoming(frame_kind::request, 1, "inventory/get")});
    EXPECT_EQ(r.count(event_kind::incoming_request), 0u);
    EXPECT_EQ(r.sent(frame_kind::error).at(0).code, code(errc::no_such_service));
}

}  // namespace
}  // namespace hyperstreams::testing
