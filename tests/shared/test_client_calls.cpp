// The client engine's calls: requests with deadlines, client streams with
// credit, direct messages, discovery, and the backend role (registration,
// incoming requests and streams answered through the engine).
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

TEST(ClientRequest, FrameCarriesServiceMethodAndDeadline) {
    rig r;
    r.connect();
    const call_result q = r.engine.request("inventory", "get", bytes("sku-1"), 5000, r.now,
                                           frame_flags::json);
    ASSERT_FALSE(q.error);
    r.pump();
    const auto frames = r.sent(frame_kind::request);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, q.id);
    EXPECT_EQ(frames[0].name, "inventory/get");
    EXPECT_EQ(frames[0].deadline_ms, 5000u);
    EXPECT_EQ(frames[0].flags, frame_flags::json);
    EXPECT_EQ(frames[0].payload, "sku-1");

    r.deliver({simple_frame(frame_kind::response, q.id, "42")});
    const auto responses = r.of(event_kind::response);
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].id, q.id);
    EXPECT_EQ(responses[0].payload, "42");
    r.advance(10000);
    EXPECT_TRUE(r.of(event_kind::error).empty()) << "an answered request does not time out";
}

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

TEST(ClientRequest, RouterErrorsNameTheRequest) {
    rig r;
    r.connect();
    const call_result a = r.engine.request("svc", "m", {}, 1000, r.now);
    const call_result b = r.engine.request("nosvc", "m", {}, 1000, r.now);
    r.pump();
    r.deliver({error_frame(a.id, errc::deadline_exceeded, "backend too slow"),
               error_frame(b.id, errc::no_such_service, "unknown")});
    const auto errors = r.errors(operation::request);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].id, a.id);
    EXPECT_EQ(errors[0].code, code(errc::deadline_exceeded));
    EXPECT_EQ(errors[0].text, "backend too slow");
    EXPECT_EQ(errors[1].id, b.id);
    EXPECT_EQ(errors[1].code, code(errc::no_such_service));
    r.advance(2000);
    EXPECT_EQ(r.errors(operation::request).size(), 2u) << "no second failure at the deadline";
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

TEST(ClientRequest, CancelSendsCancelAndDropsTheAnswer) {
    rig r;
    r.connect();
    const call_result q = r.engine.request("svc", "m", {}, 0, r.now);
    r.pump();
    ASSERT_FALSE(r.engine.cancel(q.id));
    r.pump();
    EXPECT_EQ(r.sent(frame_kind::cancel).at(0).id, q.id);
    r.deliver({simple_frame(frame_kind::response, q.id, "late")});
    EXPECT_EQ(r.count(event_kind::response), 0u);
    EXPECT_TRUE(r.of(event_kind::error).empty());
    EXPECT_EQ(r.engine.cancel(q.id), errc::invalid_argument);
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

TEST(ClientStream, OpensWithCreditAndDeliversItems) {
    rig r;
    r.connect();
    const call_result s = r.engine.open_stream("ticker", "watch", bytes("AAPL"), 4, 0, r.now);
    ASSERT_FALSE(s.error);
    r.pump();
    const auto opens = r.sent(frame_kind::stream_open);
    ASSERT_EQ(opens.size(), 1u);
    EXPECT_EQ(opens[0].id, s.id);
    EXPECT_EQ(opens[0].name, "ticker/watch");
    EXPECT_EQ(opens[0].credit, 4u);
    EXPECT_EQ(opens[0].payload, "AAPL");

    r.deliver({simple_frame(frame_kind::stream_item, s.id, "1"),
               simple_frame(frame_kind::stream_item, s.id, "2"),
               simple_frame(frame_kind::stream_end, s.id)});
    const auto items = r.of(event_kind::stream_item);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].id, s.id);
    EXPECT_EQ(items[1].payload, "2");
    ASSERT_EQ(r.count(event_kind::stream_end), 1u);
    EXPECT_EQ(r.of(event_kind::stream_end)[0].id, s.id);
    EXPECT_EQ(r.engine.stream_consumed(s.id, 1), errc::invalid_argument) << "ended";
}

TEST(ClientStream, CreditIsGrantedBackAsTheHostConsumes) {
    rig r;
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 8, 0, r.now);
    r.pump();
    std::vector<wire_frame> items;
    for (int i = 0; i < 8; ++i) items.push_back(simple_frame(frame_kind::stream_item, s.id));
    r.deliver(items);
    EXPECT_EQ(r.count(event_kind::stream_item), 8u);

    ASSERT_FALSE(r.engine.stream_consumed(s.id, 3));
    r.pump();
    EXPECT_TRUE(r.sent(frame_kind::stream_credit).empty()) << "less than half the window";
    ASSERT_FALSE(r.engine.stream_consumed(s.id, 1));
    r.pump();
    auto grants = r.sent(frame_kind::stream_credit);
    ASSERT_EQ(grants.size(), 1u);
    EXPECT_EQ(grants[0].id, s.id);
    EXPECT_EQ(grants[0].credit, 4u);

    EXPECT_EQ(r.engine.stream_consumed(s.id, 5), errc::invalid_argument) << "only 4 delivered";
    ASSERT_FALSE(r.engine.stream_consumed(s.id, 4));
    r.pump();
    grants = r.sent(frame_kind::stream_credit);
    ASSERT_EQ(grants.size(), 2u);
    EXPECT_EQ(grants[1].credit, 4u);

    // The router may now send 8 more, and not one beyond.
    items.clear();
    for (int i = 0; i < 8; ++i) items.push_back(simple_frame(frame_kind::stream_item, s.id));
    r.deliver(items);
    EXPECT_EQ(r.count(event_kind::stream_item), 16u);
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

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

TEST(ClientStream, WindowOfOneGrantsEveryItem) {
    rig r;
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 1, 0, r.now);
    r.pump();
    for (int i = 0; i < 3; ++i) {
        r.deliver({simple_frame(frame_kind::stream_item, s.id)});
        ASSERT_FALSE(r.engine.stream_consumed(s.id, 1));
        r.pump();
    }
    EXPECT_EQ(r.sent(frame_kind::stream_credit).size(), 3u);
    EXPECT_EQ(r.count(event_kind::stream_item), 3u);
}

TEST(ClientStream, CancelStopsIt) {
    rig r;
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 4, 0, r.now);
    r.pump();
    ASSERT_FALSE(r.engine.cancel(s.id));
    r.pump();
    EXPECT_EQ(r.sent(frame_kind::cancel).at(0).id, s.id);
    r.deliver({simple_frame(frame_kind::stream_item, s.id), simple_frame(frame_kind::stream_end, s.id)});
    EXPECT_EQ(r.count(event_kind::stream_item), 0u);
    EXPECT_EQ(r.count(event_kind::stream_end), 0u);
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

TEST(ClientStream, FailureAndDeadline) {
    rig r;
    r.connect();
    const call_result failing = r.engine.open_stream("svc", "feed", {}, 4, 0, r.now);
    const call_result slow = r.engine.open_stream("svc", "feed", {}, 4, 2000, r.now);
    r.pump();
    EXPECT_EQ(r.sent(frame_kind::stream_open).at(1).deadline_ms, 2000u);
    r.deliver({error_frame(failing.id, errc::backend_gone, "backend died")});
    r.advance(2000);
    const auto errors = r.errors(operation::stream);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].id, failing.id);
    EXPECT_EQ(errors[0].code, code(errc::backend_gone));
    EXPECT_EQ(errors[1].id, slow.id);
    EXPECT_EQ(errors[1].code, code(errc::deadline_exceeded));
}

TEST(ClientStream, AFlowingStreamTheRouterEndsIsAnErrorAndItsLaterItemsAreDropped) {
    rig r;
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 8, 0, r.now);
    r.pump();
    r.deliver({simple_frame(frame_kind::stream_item, s.id, "1")});
    r.deliver({error_frame(s.id, errc::forbidden, "the refreshed token no longer allows this call"),
               simple_frame(frame_kind::stream_item, s.id, "2")});
    const auto errors = r.errors(operation::stream);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, s.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));
    EXPECT_EQ(r.count(event_kind::stream_item), 1u);
    EXPECT_EQ(r.engine.stream_consumed(s.id, 1), errc::invalid_argument) << "ended";
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

// --- direct, broadcast, discovery ---------------------------------------------------------

TEST(ClientDirect, SendAndReceive) {
    rig r;
    r.connect();
    const call_result d = r.engine.send_direct("s-77", bytes("hi"), true);
    ASSERT_FALSE(d.error);
    const call_result b = r.engine.broadcast(bytes("all"));
    ASSERT_FALSE(b.error);
    r.pump();
    const auto directs = r.sent(frame_kind::direct);
    ASSERT_EQ(directs.size(), 1u);
    EXPECT_EQ(directs[0].name, "s-77");
    EXPECT_TRUE(directs[0].flags & frame_flags::ack_requested);
    EXPECT_EQ(r.sent(frame_kind::broadcast).at(0).payload, "all");

    r.deliver({error_frame(d.id, errc::no_such_address, "gone"),
               simple_frame(frame_kind::direct, 0, "psst", "s-5"),
               simple_frame(frame_kind::broadcast, 0, "news", "s-6")});
    EXPECT_EQ(r.errors(operation::direct).at(0).code, code(errc::no_such_address));
    ASSERT_EQ(r.count(event_kind::direct), 1u);
    EXPECT_EQ(r.of(event_kind::direct)[0].name, "s-5");
    EXPECT_EQ(r.of(event_kind::direct)[0].payload, "psst");
    EXPECT_EQ(r.of(event_kind::broadcast).at(0).name, "s-6");
}

TEST(ClientDiscover, ServiceListIsDecoded) {
    rig r;
    r.connect();
    const call_result q = r.engine.discover();
    r.pump();
    ASSERT_EQ(r.sent(frame_kind::discover).at(0).id, q.id);
    service_list_body list;
    service_info svc;
    svc.name = "inventory";
    svc.instances = 2;
    svc.methods = {{"get", method_kind::unary}, {"watch", method_kind::stream}};
    list.services.push_back(svc);
    std::vector<std::uint8_t> body;
    ASSERT_FALSE(encode_body(list, body));
    r.deliver({simple_frame(frame_kind::service_list, q.id, text(body))});
    const auto lists = r.of(event_kind::service_list);
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_EQ(lists[0].id, q.id);
    EXPECT_EQ(lists[0].services, (std::vector<std::string>{"inventory/get", "inventory/watch"}));
}

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

TEST(ClientBackend, RegistrationIsSentAcknowledgedAndRestored) {
    rig r(backend_config());
    r.connect();
    const call_result reg = r.engine.register_service("inventory", inventory_methods);
    ASSERT_FALSE(reg.error);
    r.pump();
    const auto frames = r.sent(frame_kind::register_service);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, reg.id);
    EXPECT_EQ(frames[0].name, "inventory");
    register_body body;
    ASSERT_FALSE(decode_body(bytes(frames[0].payload), body));
    ASSERT_EQ(body.methods.size(), 2u);
    EXPECT_EQ(body.methods[1].name, "watch");
    EXPECT_EQ(body.methods[1].kind, method_kind::stream);
    const auto acks = r.of(event_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].op, operation::register_service);
    EXPECT_EQ(acks[0].id, reg.id);

    // Restored first after a reconnect, before subscriptions and the outbox.
    ASSERT_FALSE(r.engine.subscribe("a.b").error);
    r.pump();
    r.drop_transport();
    ASSERT_FALSE(r.engine.publish("a.b", bytes("x")).error);
    r.router.forget_received();
    r.advance(2000);
    ASSERT_EQ(r.router.messages.size(), 2u);
    const auto& restore = r.router.messages[1];
    ASSERT_EQ(restore.size(), 3u);
    EXPECT_EQ(restore[0].kind, frame_kind::register_service);
    EXPECT_EQ(restore[1].kind, frame_kind::subscribe);
    EXPECT_EQ(restore[2].kind, frame_kind::publish);
    EXPECT_EQ(r.count(event_kind::ack), 2u) << "the restore's ack is not an event again";
}

TEST(ClientBackend, RefusedRegistrationIsAnErrorAndForgotten) {
    rig r(backend_config());
    r.connect();
    r.router.auto_ack = false;
    const call_result reg = r.engine.register_service("inventory", inventory_methods);
    r.pump();
    r.deliver({error_frame(reg.id, errc::forbidden, "not allowed")});
    EXPECT_EQ(r.errors(operation::register_service).at(0).id, reg.id);
    r.deliver({incoming(frame_kind::request, 5, "inventory/get")});
    EXPECT_EQ(r.count(event_kind::incoming_request), 0u);
}

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

TEST(ClientBackend, IncomingRequestIsAnsweredThroughTheEngine) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::request, 900, "inventory/get", "sku-1", 5000),
               incoming(frame_kind::request, 901, "inventory/get", "sku-2", 5000)});
    const auto requests = r.of(event_kind::incoming_request);
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].id, 900u);
    EXPECT_EQ(requests[0].name, "inventory");
    EXPECT_EQ(requests[0].method, "get");
    EXPECT_EQ(requests[0].payload, "sku-1");

    ASSERT_FALSE(r.engine.respond(900, bytes("7 left"), frame_flags::json));
    EXPECT_EQ(r.engine.respond_error(901, errc{}, "no code"), errc::invalid_argument);
    ASSERT_FALSE(r.engine.respond_error(901, errc::handler_failed, "db down"));
    r.pump();
    const auto responses = r.sent(frame_kind::response);
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].id, 900u);
    EXPECT_EQ(responses[0].payload, "7 left");
    EXPECT_EQ(responses[0].flags, frame_flags::json);
    const auto errors = r.sent(frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, 901u);
    EXPECT_EQ(errors[0].code, code(errc::handler_failed));
    EXPECT_EQ(errors[0].payload, "db down");
    EXPECT_EQ(r.engine.respond(900, bytes("twice")), errc::invalid_argument);
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

TEST(ClientBackend, IncomingDeadlineCancelAndLostTransport) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::request, 1, "inventory/get", "", 1000),
               incoming(frame_kind::request, 2, "inventory/get"),
               incoming(frame_kind::request, 3, "inventory/get")});
    r.advance(1000);
    r.deliver({simple_frame(frame_kind::cancel, 2)});
    auto cancelled = r.of(event_kind::cancelled);
    ASSERT_EQ(cancelled.size(), 2u);
    EXPECT_EQ(cancelled[0].id, 1u);
    EXPECT_EQ(cancelled[0].code, code(errc::deadline_exceeded));
    EXPECT_EQ(cancelled[1].id, 2u);
    EXPECT_EQ(cancelled[1].code, code(errc::cancelled));
    EXPECT_EQ(r.engine.respond(1, bytes("late")), errc::invalid_argument);
    r.drop_transport();
    cancelled = r.of(event_kind::cancelled);
    ASSERT_EQ(cancelled.size(), 3u);
    EXPECT_EQ(cancelled[2].id, 3u);
    EXPECT_EQ(cancelled[2].code, code(errc::connection_lost));
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

TEST(ClientBackend, CancelledStreamAndFailedStream) {
    rig r(backend_config());
    r.connect();
    ASSERT_FALSE(r.engine.register_service("inventory", inventory_methods).error);
    r.pump();
    r.deliver({incoming(frame_kind::stream_open, 1, "inventory/watch", "", 0, 5),
               incoming(frame_kind::stream_open, 2, "inventory/watch", "", 0, 5)});
    r.deliver({simple_frame(frame_kind::cancel, 1)});
    EXPECT_EQ(r.of(event_kind::cancelled).at(0).id, 1u);
    EXPECT_EQ(r.engine.stream_send(1, bytes("x")), stream_send_status::unknown_stream);
    ASSERT_FALSE(r.engine.respond_error(2, errc::handler_failed, "broke"));
    r.pump();
    EXPECT_EQ(r.sent(frame_kind::error).at(0).id, 2u);
    EXPECT_EQ(r.engine.stream_send(2, bytes("x")), stream_send_status::unknown_stream);
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
