// The client engine's calls against the real router core, with real backend
// engines answering: requests and their deadlines, client streams and their
// credit, cancels, direct messages and broadcasts, discovery, the backend
// role, and calls in flight through a drain. Real engines and a real core in
// memory, on a fake clock (support/paired.hpp).
#include <gtest/gtest.h>

#include <span>
#include <string>

#include "paired.hpp"

namespace hyperstreams::testing {
namespace {

using router::transport_kind;

client_config backend_config() {
    client_config c = test_config();
    c.url = "tcp://router";
    c.name = "backend";
    c.token = "backend-token";
    c.role = client_role::backend;
    return c;
}

const method_info inventory_methods[] = {{"get", method_kind::unary}, {"watch", method_kind::stream}};
const method_info unary_m[] = {{"m", method_kind::unary}};
const method_info stream_feed[] = {{"feed", method_kind::stream}};
const method_info slow_op[] = {{"op", method_kind::unary}};
const method_info ticker_watch[] = {{"watch", method_kind::stream}};

// A backend engine over ZeroMQ serving `service`, registered, its records cleared.
peer& serving(paired& p, std::string_view service, std::span<const method_info> methods) {
    peer& b = p.add(backend_config(), transport_kind::zeromq);
    b.connect();
    EXPECT_FALSE(b.engine.register_service(service, methods).error);
    p.pump();
    EXPECT_EQ(b.count(event_kind::ack), 1u) << service;
    b.forget_records();
    return b;
}

// The calls a backend was given (requests and streams), in order.
std::vector<seen_event> incoming(const peer& b) {
    std::vector<seen_event> out;
    for (const seen_event& e : b.events)
        if (e.kind == event_kind::incoming_request || e.kind == event_kind::incoming_stream) out.push_back(e);
    return out;
}

// --- requests ----------------------------------------------------------------------

TEST(ClientRequest, FrameCarriesServiceMethodAndDeadline) {
    paired p;
    peer& backend = serving(p, "inventory", inventory_methods);
    peer& r = p.add(test_config());
    r.connect();
    const call_result q = r.engine.request("inventory", "get", bytes("sku-1"), 5000, p.now,
                                           frame_flags::json);
    ASSERT_FALSE(q.error);
    p.pump();
    const auto frames = r.sent(frame_kind::request);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].id, q.id);
    EXPECT_EQ(frames[0].name, "inventory/get");
    EXPECT_EQ(frames[0].deadline_ms, 5000u);
    EXPECT_EQ(frames[0].flags, frame_flags::json);
    EXPECT_EQ(frames[0].payload, "sku-1");

    ASSERT_EQ(incoming(backend).size(), 1u);
    ASSERT_FALSE(backend.engine.respond(incoming(backend)[0].id, bytes("42")));
    p.pump();
    const auto responses = r.of(event_kind::response);
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].id, q.id);
    EXPECT_EQ(responses[0].payload, "42");
    p.advance(10000);
    EXPECT_TRUE(r.of(event_kind::error).empty()) << "an answered request does not time out";
}

// The backend's error and the router's own reach the caller alike.
TEST(ClientRequest, RouterErrorsNameTheRequest) {
    paired p;
    peer& backend = serving(p, "svc", unary_m);
    peer& r = p.add(test_config());
    r.connect();
    const call_result a = r.engine.request("svc", "m", {}, 1000, p.now);
    p.pump();
    ASSERT_FALSE(backend.engine.respond_error(incoming(backend).at(0).id, errc::deadline_exceeded, "backend too slow"));
    const call_result b = r.engine.request("nosvc", "m", {}, 1000, p.now);
    p.pump();
    const auto errors = r.errors(operation::request);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].id, a.id);
    EXPECT_EQ(errors[0].code, code(errc::deadline_exceeded));
    EXPECT_EQ(errors[0].text, "backend too slow");
    EXPECT_EQ(errors[1].id, b.id);
    EXPECT_EQ(errors[1].code, code(errc::no_such_service));
    p.advance(2000);
    EXPECT_EQ(r.errors(operation::request).size(), 2u) << "no second failure at the deadline";
}

TEST(ClientRequest, CancelSendsCancelAndDropsTheAnswer) {
    paired p;
    peer& backend = serving(p, "svc", unary_m);
    peer& r = p.add(test_config());
    r.connect();
    const call_result q = r.engine.request("svc", "m", {}, 0, p.now);
    p.pump();
    ASSERT_FALSE(r.engine.cancel(q.id));
    // The backend answers before the cancel reaches the router: the answer
    // crosses it and comes late.
    ASSERT_FALSE(backend.engine.respond(incoming(backend).at(0).id, bytes("late")));
    p.pump();
    EXPECT_EQ(r.sent(frame_kind::cancel).at(0).id, q.id);
    EXPECT_EQ(r.received(frame_kind::response).size(), 1u);
    EXPECT_EQ(r.count(event_kind::response), 0u);
    EXPECT_TRUE(r.of(event_kind::error).empty());
    EXPECT_EQ(r.engine.cancel(q.id), errc::invalid_argument);
}

// Both ends enforce the deadline (PROTOCOL.md, request): the caller's engine
// and the router fail the request at the same moment, and the host hears of
// it once; the backend's engine stops at the deadline the request carried,
// the router's cancel says the same, and a late answer goes nowhere.
TEST(ClientRequest, ADeadlineEndsTheCallOnceOnEachSide) {
    paired p;
    peer& backend = serving(p, "slow", slow_op);
    peer& r = p.add(test_config());
    r.connect();
    const call_result q = r.engine.request("slow", "op", {}, 3000, p.now);
    p.pump();
    ASSERT_EQ(incoming(backend).size(), 1u);
    const std::uint32_t call = incoming(backend)[0].id;
    EXPECT_EQ(backend.received(frame_kind::request).at(0).deadline_ms, 3000u);
    p.advance(2999);
    EXPECT_TRUE(r.errors(operation::request).empty());
    EXPECT_EQ(backend.count(event_kind::cancelled), 0u);
    p.advance(1);
    const auto errors = r.errors(operation::request);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, q.id);
    EXPECT_EQ(errors[0].code, code(errc::deadline_exceeded));
    EXPECT_EQ(r.received(frame_kind::error).size(), 1u) << "the router failed it too";
    const auto cancelled = backend.of(event_kind::cancelled);
    ASSERT_EQ(cancelled.size(), 1u);
    EXPECT_EQ(cancelled[0].id, call);
    EXPECT_EQ(cancelled[0].code, code(errc::deadline_exceeded));
    const auto cancels = backend.received(frame_kind::cancel);
    ASSERT_EQ(cancels.size(), 1u) << "the router told the backend too";
    EXPECT_EQ(cancels[0].id, call);
    EXPECT_EQ(backend.engine.respond(call, bytes("late")), errc::invalid_argument);
    p.advance(10000);
    EXPECT_EQ(r.errors(operation::request).size(), 1u);
    EXPECT_EQ(r.count(event_kind::response), 0u);
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(backend.engine.state(), client_state::ready);
}

// --- client streams ------------------------------------------------------------------

TEST(ClientStream, OpensWithCreditAndDeliversItems) {
    paired p;
    peer& backend = serving(p, "ticker", ticker_watch);
    peer& r = p.add(test_config());
    r.connect();
    const call_result s = r.engine.open_stream("ticker", "watch", bytes("AAPL"), 4, 0, p.now);
    ASSERT_FALSE(s.error);
    p.pump();
    const auto opens = r.sent(frame_kind::stream_open);
    ASSERT_EQ(opens.size(), 1u);
    EXPECT_EQ(opens[0].id, s.id);
    EXPECT_EQ(opens[0].name, "ticker/watch");
    EXPECT_EQ(opens[0].credit, 4u);
    EXPECT_EQ(opens[0].payload, "AAPL");

    const std::uint32_t call = incoming(backend).at(0).id;
    ASSERT_EQ(backend.engine.stream_send(call, bytes("1")), stream_send_status::ok);
    ASSERT_EQ(backend.engine.stream_send(call, bytes("2")), stream_send_status::ok);
    ASSERT_FALSE(backend.engine.stream_end(call));
    p.pump();
    const auto items = r.of(event_kind::stream_item);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].id, s.id);
    EXPECT_EQ(items[1].payload, "2");
    ASSERT_EQ(r.count(event_kind::stream_end), 1u);
    EXPECT_EQ(r.of(event_kind::stream_end)[0].id, s.id);
    EXPECT_EQ(r.engine.stream_consumed(s.id, 1), errc::invalid_argument) << "ended";
}

TEST(ClientStream, CreditIsGrantedBackAsTheHostConsumes) {
    paired p;
    peer& backend = serving(p, "svc", stream_feed);
    peer& r = p.add(test_config());
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 8, 0, p.now);
    p.pump();
    const std::uint32_t call = incoming(backend).at(0).id;
    for (int i = 0; i < 8; ++i) ASSERT_EQ(backend.engine.stream_send(call, {}), stream_send_status::ok);
    p.pump();
    EXPECT_EQ(r.count(event_kind::stream_item), 8u);

    ASSERT_FALSE(r.engine.stream_consumed(s.id, 3));
    p.pump();
    EXPECT_TRUE(r.sent(frame_kind::stream_credit).empty()) << "less than half the window";
    ASSERT_FALSE(r.engine.stream_consumed(s.id, 1));
    p.pump();
    auto grants = r.sent(frame_kind::stream_credit);
    ASSERT_EQ(grants.size(), 1u);
    EXPECT_EQ(grants[0].id, s.id);
    EXPECT_EQ(grants[0].credit, 4u);

    EXPECT_EQ(r.engine.stream_consumed(s.id, 5), errc::invalid_argument) << "only 4 delivered";
    ASSERT_FALSE(r.engine.stream_consumed(s.id, 4));
    p.pump();
    grants = r.sent(frame_kind::stream_credit);
    ASSERT_EQ(grants.size(), 2u);
    EXPECT_EQ(grants[1].credit, 4u);

    // The backend may now send 8 more, and not one beyond.
    for (int i = 0; i < 8; ++i) ASSERT_EQ(backend.engine.stream_send(call, {}), stream_send_status::ok);
    EXPECT_EQ(backend.engine.stream_send(call, {}), stream_send_status::no_credit);
    p.pump();
    EXPECT_EQ(r.count(event_kind::stream_item), 16u);
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

// Credit end to end: the backend's engine stops at the window, hears the
// credit the caller's engine grants as its host consumes, and goes on; every
// item arrives, in order, and neither side sees a violation.
TEST(ClientStream, ABackendWaitsForTheCreditTheCallerGrants) {
    paired p;
    peer& backend = serving(p, "svc", stream_feed);
    peer& r = p.add(test_config());
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 4, 0, p.now);
    p.pump();
    const std::uint32_t call = incoming(backend).at(0).id;
    EXPECT_EQ(incoming(backend)[0].count, 4u);

    int sent = 0;
    std::size_t consumed = 0;
    for (int round = 0; round < 40 && sent < 10; ++round) {
        while (sent < 10 && backend.engine.stream_send(call, bytes(std::to_string(sent))) == stream_send_status::ok)
            ++sent;
        EXPECT_LE(static_cast<std::size_t>(sent) - consumed, 4u) << "never more than the window unconsumed";
        p.pump();
        // The host reads one item at a time.
        if (r.count(event_kind::stream_item) > consumed) {
            ASSERT_FALSE(r.engine.stream_consumed(s.id, 1));
            ++consumed;
            p.pump();
        }
    }
    ASSERT_EQ(sent, 10);
    ASSERT_FALSE(backend.engine.stream_end(call));
    p.pump();
    EXPECT_FALSE(backend.of(event_kind::stream_credit).empty()) << "the backend heard the credit granted";
    std::vector<std::string> items;
    for (const seen_event& e : r.of(event_kind::stream_item)) items.push_back(e.payload);
    EXPECT_EQ(items, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
    EXPECT_EQ(r.count(event_kind::stream_end), 1u);
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(backend.engine.state(), client_state::ready);
    EXPECT_TRUE(r.of(event_kind::error).empty());
    EXPECT_TRUE(backend.of(event_kind::error).empty());
}

TEST(ClientStream, WindowOfOneGrantsEveryItem) {
    paired p;
    peer& backend = serving(p, "svc", stream_feed);
    peer& r = p.add(test_config());
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 1, 0, p.now);
    p.pump();
    const std::uint32_t call = incoming(backend).at(0).id;
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(backend.engine.stream_send(call, {}), stream_send_status::ok);
        p.pump();
        ASSERT_FALSE(r.engine.stream_consumed(s.id, 1));
        p.pump();
    }
    EXPECT_EQ(r.sent(frame_kind::stream_credit).size(), 3u);
    EXPECT_EQ(r.count(event_kind::stream_item), 3u);
}

TEST(ClientStream, CancelStopsIt) {
    paired p;
    peer& backend = serving(p, "svc", stream_feed);
    peer& r = p.add(test_config());
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 4, 0, p.now);
    p.pump();
    const std::uint32_t call = incoming(backend).at(0).id;
    ASSERT_FALSE(r.engine.cancel(s.id));
    // What the backend sends before the cancel reaches the router still comes.
    ASSERT_EQ(backend.engine.stream_send(call, {}), stream_send_status::ok);
    ASSERT_FALSE(backend.engine.stream_end(call));
    p.pump();
    EXPECT_EQ(r.sent(frame_kind::cancel).at(0).id, s.id);
    EXPECT_EQ(r.received(frame_kind::stream_item).size(), 1u);
    EXPECT_EQ(r.count(event_kind::stream_item), 0u);
    EXPECT_EQ(r.count(event_kind::stream_end), 0u);
    EXPECT_EQ(r.engine.state(), client_state::ready);
}

// One backend dies with a stream open; another is too slow for the deadline.
TEST(ClientStream, FailureAndDeadline) {
    paired p;
    peer& doomed = serving(p, "svc", stream_feed);
    serving(p, "slow", stream_feed);
    peer& r = p.add(test_config());
    r.connect();
    const call_result failing = r.engine.open_stream("svc", "feed", {}, 4, 0, p.now);
    const call_result slow = r.engine.open_stream("slow", "feed", {}, 4, 2000, p.now);
    p.pump();
    EXPECT_EQ(r.sent(frame_kind::stream_open).at(1).deadline_ms, 2000u);
    doomed.drop_transport();
    p.advance(2000);
    const auto errors = r.errors(operation::stream);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0].id, failing.id);
    EXPECT_EQ(errors[0].code, code(errc::backend_gone));
    EXPECT_EQ(errors[1].id, slow.id);
    EXPECT_EQ(errors[1].code, code(errc::deadline_exceeded));
}

// A token refresh withdrew the right to call: the router ends the stream,
// tells the backend, and what the backend still sends goes nowhere.
TEST(ClientStream, AFlowingStreamTheRouterEndsIsAnErrorAndItsLaterItemsAreDropped) {
    paired p;
    p.auth.grant("token-1", R"({"call":["svc"]})");
    p.auth.grant("token-2", R"({"call":["other"]})");
    peer& backend = serving(p, "svc", stream_feed);
    peer& r = p.add(test_config());
    r.connect();
    const call_result s = r.engine.open_stream("svc", "feed", {}, 8, 0, p.now);
    p.pump();
    const std::uint32_t call = incoming(backend).at(0).id;
    ASSERT_EQ(backend.engine.stream_send(call, bytes("1")), stream_send_status::ok);
    p.pump();
    ASSERT_FALSE(r.engine.refresh_token("token-2", p.now).error);
    p.transmit(r);
    ASSERT_EQ(backend.engine.stream_send(call, bytes("2")), stream_send_status::ok);
    p.pump();
    const auto errors = r.errors(operation::stream);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, s.id);
    EXPECT_EQ(errors[0].code, code(errc::forbidden));
    EXPECT_EQ(r.count(event_kind::stream_item), 1u);
    EXPECT_EQ(r.engine.stream_consumed(s.id, 1), errc::invalid_argument) << "ended";
    EXPECT_EQ(r.engine.state(), client_state::ready);
    EXPECT_EQ(backend.of(event_kind::cancelled).at(0).code, code(errc::forbidden)) << "the backend learns why";
}

// --- direct, broadcast, discovery ---------------------------------------------------------

TEST(ClientDirect, SendAndReceive) {
    paired p;
    peer& r = p.add(test_config());
    peer& other = p.add(test_config());
    r.connect();
    other.connect();
    const call_result d = r.engine.send_direct("s-77", bytes("hi"), true);
    ASSERT_FALSE(d.error);
    const call_result b = r.engine.broadcast(bytes("all"));
    ASSERT_FALSE(b.error);
    p.pump();
    const auto directs = r.sent(frame_kind::direct);
    ASSERT_EQ(directs.size(), 1u);
    EXPECT_EQ(directs[0].name, "s-77");
    EXPECT_TRUE(directs[0].flags & frame_flags::ack_requested);
    EXPECT_EQ(r.sent(frame_kind::broadcast).at(0).payload, "all");

    ASSERT_FALSE(other.engine.send_direct(r.engine.session_id(), bytes("psst")).error);
    ASSERT_FALSE(other.engine.broadcast(bytes("news")).error);
    p.pump();
    EXPECT_EQ(r.errors(operation::direct).at(0).code, code(errc::no_such_address));
    ASSERT_EQ(r.count(event_kind::direct), 1u);
    EXPECT_EQ(r.of(event_kind::direct)[0].name, other.engine.session_id());
    EXPECT_EQ(r.of(event_kind::direct)[0].payload, "psst");
    EXPECT_EQ(r.of(event_kind::broadcast).at(0).name, other.engine.session_id());
}

TEST(ClientDiscover, ServiceListIsDecoded) {
    paired p;
    serving(p, "inventory", inventory_methods);
    serving(p, "inventory", inventory_methods);  // two instances
    peer& r = p.add(test_config());
    r.connect();
    const call_result q = r.engine.discover();
    p.pump();
    ASSERT_EQ(r.sent(frame_kind::discover).at(0).id, q.id);
    const auto lists = r.of(event_kind::service_list);
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_EQ(lists[0].id, q.id);
    EXPECT_EQ(lists[0].services, (std::vector<std::string>{"inventory/get", "inventory/watch"}));
}

// A listing larger than the router's payload limit comes in pages, which the
// engine asks for one after the other and gives its host as one event.
TEST(ClientDiscover, AListingOfManyPagesIsOneEvent) {
    router::router_config cfg = paired_config();
    cfg.max_payload = 256;
    paired p(cfg);
    peer& backend = p.add(backend_config(), transport_kind::zeromq);
    backend.connect();
    std::vector<std::string> expected;
    for (int i = 0; i < 30; ++i) {
        const std::string service = "service" + std::to_string(100 + i);
        ASSERT_FALSE(backend.engine.register_service(service, unary_m).error);
        expected.push_back(service + "/m");
    }
    p.pump();
    ASSERT_EQ(backend.count(event_kind::ack), 30u);
    peer& r = p.add(test_config());
    r.connect();
    const call_result q = r.engine.discover();
    p.pump();
    const auto asks = r.sent(frame_kind::discover);
    ASSERT_GT(asks.size(), 2u) << "one page cannot hold 30 services in 256 bytes";
    for (const wire_frame& ask : asks) EXPECT_EQ(ask.id, q.id);
    EXPECT_EQ(r.received(frame_kind::service_list).size(), asks.size());
    const auto lists = r.of(event_kind::service_list);
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_EQ(lists[0].id, q.id);
    EXPECT_EQ(lists[0].services, expected);
}

// --- backend role ----------------------------------------------------------------------------

TEST(ClientBackend, RegistrationIsSentAcknowledgedAndRestored) {
    // Heartbeats slower than the test: no ping crosses the restore's messages.
    router::router_config cfg = paired_config();
    cfg.heartbeat_interval_ms = 5000;
    cfg.heartbeat_timeout_ms = 15000;
    paired p(cfg);
    peer& r = p.add(backend_config(), transport_kind::zeromq);
    r.connect();
    const call_result reg = r.engine.register_service("inventory", inventory_methods);
    ASSERT_FALSE(reg.error);
    p.pump();
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
    p.pump();
    r.drop_transport();
    ASSERT_FALSE(r.engine.publish("a.b", bytes("x")).error);
    r.sent_messages.clear();
    p.advance(2000);
    ASSERT_EQ(r.sent_messages.size(), 2u);
    const auto& restore = r.sent_messages[1];
    ASSERT_EQ(restore.size(), 3u);
    EXPECT_EQ(restore[0].kind, frame_kind::register_service);
    EXPECT_EQ(restore[1].kind, frame_kind::subscribe);
    EXPECT_EQ(restore[2].kind, frame_kind::publish);
    EXPECT_EQ(r.count(event_kind::ack), 2u) << "the restore's ack is not an event again";
}

TEST(ClientBackend, RefusedRegistrationIsAnErrorAndForgotten) {
    paired p;
    p.auth.grant("backend-token", R"({"register":["billing"]})");
    peer& r = p.add(backend_config(), transport_kind::zeromq);
    peer& caller = p.add(test_config());
    r.connect();
    caller.connect();
    const call_result reg = r.engine.register_service("inventory", inventory_methods);
    p.pump();
    EXPECT_EQ(r.errors(operation::register_service).at(0).id, reg.id);
    ASSERT_FALSE(caller.engine.request("inventory", "get", {}, 0, p.now).error);
    p.pump();
    EXPECT_EQ(r.count(event_kind::incoming_request), 0u);
    EXPECT_EQ(caller.errors(operation::request).at(0).code, code(errc::no_such_service));
}

TEST(ClientBackend, IncomingRequestIsAnsweredThroughTheEngine) {
    paired p;
    peer& r = serving(p, "inventory", inventory_methods);
    peer& caller = p.add(test_config());
    caller.connect();
    const call_result first = caller.engine.request("inventory", "get", bytes("sku-1"), 5000, p.now);
    const call_result second = caller.engine.request("inventory", "get", bytes("sku-2"), 5000, p.now);
    p.pump();
    const auto requests = r.of(event_kind::incoming_request);
    ASSERT_EQ(requests.size(), 2u);
    const auto routed = r.received(frame_kind::request);  // ids the router chose
    ASSERT_EQ(routed.size(), 2u);
    EXPECT_EQ(requests[0].id, routed[0].id);
    EXPECT_EQ(requests[0].name, "inventory");
    EXPECT_EQ(requests[0].method, "get");
    EXPECT_EQ(requests[0].payload, "sku-1");

    ASSERT_FALSE(r.engine.respond(routed[0].id, bytes("7 left"), frame_flags::json));
    EXPECT_EQ(r.engine.respond_error(routed[1].id, errc{}, "no code"), errc::invalid_argument);
    ASSERT_FALSE(r.engine.respond_error(routed[1].id, errc::handler_failed, "db down"));
    p.pump();
    const auto responses = r.sent(frame_kind::response);
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].id, routed[0].id);
    EXPECT_EQ(responses[0].payload, "7 left");
    EXPECT_EQ(responses[0].flags, frame_flags::json);
    const auto errors = r.sent(frame_kind::error);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].id, routed[1].id);
    EXPECT_EQ(errors[0].code, code(errc::handler_failed));
    EXPECT_EQ(errors[0].payload, "db down");
    EXPECT_EQ(r.engine.respond(routed[0].id, bytes("twice")), errc::invalid_argument);

    // The caller gets each answer under its own id.
    const auto answered = caller.of(event_kind::response);
    ASSERT_EQ(answered.size(), 1u);
    EXPECT_EQ(answered[0].id, first.id);
    EXPECT_EQ(answered[0].payload, "7 left");
    EXPECT_EQ(answered[0].flags, frame_flags::json);
    const auto failed = caller.errors(operation::request);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].id, second.id);
    EXPECT_EQ(failed[0].code, code(errc::handler_failed));
    EXPECT_EQ(failed[0].text, "db down");
}

TEST(ClientBackend, IncomingDeadlineCancelAndLostTransport) {
    paired p;
    peer& r = serving(p, "inventory", inventory_methods);
    peer& caller = p.add(test_config());
    caller.connect();
    ASSERT_FALSE(caller.engine.request("inventory", "get", {}, 1000, p.now).error);
    const call_result cancelled_by_caller = caller.engine.request("inventory", "get", {}, 0, p.now);
    ASSERT_FALSE(caller.engine.request("inventory", "get", {}, 0, p.now).error);
    p.pump();
    const auto routed = r.received(frame_kind::request);  // ids the router chose
    ASSERT_EQ(routed.size(), 3u);
    p.advance(1000);
    ASSERT_FALSE(caller.engine.cancel(cancelled_by_caller.id));
    p.pump();
    auto cancelled = r.of(event_kind::cancelled);
    ASSERT_EQ(cancelled.size(), 2u);
    EXPECT_EQ(cancelled[0].id, routed[0].id);
    EXPECT_EQ(cancelled[0].code, code(errc::deadline_exceeded));
    EXPECT_EQ(cancelled[1].id, routed[1].id);
    EXPECT_EQ(cancelled[1].code, code(errc::cancelled));
    EXPECT_EQ(r.engine.respond(routed[0].id, bytes("late")), errc::invalid_argument);
    r.drop_transport();
    cancelled = r.of(event_kind::cancelled);
    ASSERT_EQ(cancelled.size(), 3u);
    EXPECT_EQ(cancelled[2].id, routed[2].id);
    EXPECT_EQ(cancelled[2].code, code(errc::connection_lost));
}

TEST(ClientBackend, CancelledStreamAndFailedStream) {
    paired p;
    peer& r = serving(p, "inventory", inventory_methods);
    peer& caller = p.add(test_config());
    caller.connect();
    const call_result first = caller.engine.open_stream("inventory", "watch", {}, 5, 0, p.now);
    const call_result second = caller.engine.open_stream("inventory", "watch", {}, 5, 0, p.now);
    p.pump();
    const auto routed = r.received(frame_kind::stream_open);  // ids the router chose
    ASSERT_EQ(routed.size(), 2u);
    ASSERT_FALSE(caller.engine.cancel(first.id));
    p.pump();
    EXPECT_EQ(r.of(event_kind::cancelled).at(0).id, routed[0].id);
    EXPECT_EQ(r.engine.stream_send(routed[0].id, bytes("x")), stream_send_status::unknown_stream);
    ASSERT_FALSE(r.engine.respond_error(routed[1].id, errc::handler_failed, "broke"));
    p.pump();
    EXPECT_EQ(r.sent(frame_kind::error).at(0).id, routed[1].id);
    EXPECT_EQ(r.engine.stream_send(routed[1].id, bytes("x")), stream_send_status::unknown_stream);
    EXPECT_EQ(caller.errors(operation::stream).at(0).id, second.id);
}

// --- drain -------------------------------------------------------------------------------------

// A drain refuses new calls, lets those in flight finish, then says goodbye;
// every client comes back once the router does.
TEST(ClientDrain, CallsInFlightFinishBeforeTheGoodbye) {
    paired p;
    peer& backend = serving(p, "inventory", inventory_methods);
    peer& r = p.add(test_config());
    r.connect();
    const call_result q = r.engine.request("inventory", "get", {}, 0, p.now);
    p.pump();
    ASSERT_EQ(incoming(backend).size(), 1u);

    p.begin_drain();
    EXPECT_EQ(r.engine.state(), client_state::ready) << "a call is in flight";
    const call_result refused = r.engine.request("inventory", "get", {}, 0, p.now);
    p.pump();
    EXPECT_EQ(r.errors(operation::request).at(0).id, refused.id);
    EXPECT_EQ(r.errors(operation::request).at(0).code, code(errc::going_away));

    ASSERT_FALSE(backend.engine.respond(incoming(backend)[0].id, bytes("done")));
    p.pump();
    ASSERT_EQ(r.count(event_kind::response), 1u);
    EXPECT_EQ(r.of(event_kind::response)[0].id, q.id);
    for (peer* e : {&backend, &r}) {
        EXPECT_EQ(e->engine.state(), client_state::backoff);
        EXPECT_EQ(e->of(event_kind::state_changed).back().code, code(errc::going_away));
        EXPECT_TRUE(e->errors(operation::connection).empty()) << "a drain is not an error";
    }

    p.restart_router(2);
    p.advance(1000);
    ASSERT_EQ(backend.engine.state(), client_state::ready);
    ASSERT_EQ(r.engine.state(), client_state::ready);
    const call_result again = r.engine.request("inventory", "get", {}, 0, p.now);
    p.pump();
    ASSERT_EQ(incoming(backend).size(), 2u) << "the backend registered again";
    ASSERT_FALSE(backend.engine.respond(incoming(backend)[1].id, bytes("again")));
    p.pump();
    EXPECT_EQ(r.of(event_kind::response).back().id, again.id);
}

// What is still in flight at the drain's timeout fails with going_away on
// both sides: the backend's cancel carries the reason.
TEST(ClientDrain, CallsStillInFlightAtTheTimeoutFailWithGoingAway) {
    router::router_config cfg = paired_config();
    cfg.drain_timeout_ms = 5000;
    paired p(cfg);
    peer& backend = serving(p, "inventory", inventory_methods);
    peer& r = p.add(test_config());
    r.connect();
    const call_result q = r.engine.request("inventory", "get", {}, 0, p.now);
    const call_result s = r.engine.open_stream("inventory", "watch", {}, 4, 0, p.now);
    p.pump();
    ASSERT_EQ(incoming(backend).size(), 2u);

    p.begin_drain();
    p.advance(4999);
    EXPECT_TRUE(r.of(event_kind::error).empty());
    EXPECT_EQ(r.engine.state(), client_state::ready);
    p.advance(1);
    const auto failed = r.of(event_kind::error);
    ASSERT_EQ(failed.size(), 2u);
    EXPECT_EQ(failed[0].id, q.id);
    EXPECT_EQ(failed[0].op, operation::request);
    EXPECT_EQ(failed[0].code, code(errc::going_away));
    EXPECT_EQ(failed[1].id, s.id);
    EXPECT_EQ(failed[1].op, operation::stream);
    EXPECT_EQ(failed[1].code, code(errc::going_away));
    const auto cancelled = backend.of(event_kind::cancelled);
    ASSERT_EQ(cancelled.size(), 2u);
    for (const seen_event& c : cancelled) EXPECT_EQ(c.code, code(errc::going_away));
    for (peer* e : {&backend, &r}) {
        EXPECT_EQ(e->engine.state(), client_state::backoff);
        EXPECT_EQ(e->of(event_kind::state_changed).back().code, code(errc::going_away));
    }
}

// With redirect targets configured, each client follows at once to the one
// its transport can reach.
TEST(ClientDrain, EachClientFollowsTheRedirectForItsTransport) {
    router::router_config cfg = paired_config();
    cfg.drain_redirect_url = "ws://next";
    cfg.drain_redirect_backend = "tcp://next:7071";
    paired p(cfg);
    peer& backend = serving(p, "inventory", inventory_methods);
    peer& r = p.add(test_config());
    r.connect();
    p.begin_drain();
    EXPECT_EQ(r.of(event_kind::redirected).at(0).name, "ws://next");
    EXPECT_EQ(backend.of(event_kind::redirected).at(0).name, "tcp://next:7071");
    EXPECT_EQ(r.opened_urls.back(), "ws://next");
    EXPECT_EQ(backend.opened_urls.back(), "tcp://next:7071");
    for (peer* e : {&backend, &r}) {
        // Without waiting: the only router here is the draining one, which
        // refuses the new connection at once.
        EXPECT_EQ(e->count(event_kind::open_transport), 1u);
        EXPECT_TRUE(e->errors(operation::connection).empty());
    }
}

}  // namespace
}  // namespace hyperstreams::testing
