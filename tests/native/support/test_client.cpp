#include "test_client.hpp"

#include <limits>
#include <gtest/gtest.h>

#include <condition_variable>
#include <limits>
#include <mutex>
#include <sstream>

namespace hyperstreams::testing {

struct test_client::record {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::vector<recorded_event> events;
    event_handler handler;  // used on the host's thread only

    void on_event(client_engine& engine, const client_event& e) {
        // The host performs the transport actions; the tests never look at them.
        if (e.kind == event_kind::open_transport || e.kind == event_kind::close_transport) return;
        recorded_event copy(e);
        {
            std::lock_guard lock(mu);
            events.push_back(copy);
        }
        cv.notify_all();
        if (handler) handler(engine, copy, now());
    }
};

test_client::test_client(client_config config, host_options options)
    : record_(std::make_shared<record>()) {
    host_ = std::make_unique<native::engine_host>(
        std::move(config),
        [rec = record_](client_engine& engine, const client_event& e) { rec->on_event(engine, e); },
        std::move(options));
    host_->start();
}

test_client::~test_client() {
    // A handler may hold what the test is destroying: it sees nothing of the goodbye.
    run([rec = record_](client_engine&, time_ms) { rec->handler = nullptr; });
    host_->close();
}

native::engine_host& test_client::host() { return *host_; }

time_ms test_client::now() { return native::engine_host::now(); }

std::optional<recorded_event> test_client::wait_for(const event_filter& filter,
                                                    std::chrono::milliseconds timeout) {
    std::unique_lock lock(record_->mu);
    std::size_t scanned = 0;
    std::optional<recorded_event> found;
    record_->cv.wait_for(lock, timeout, [&] {
        for (; scanned < record_->events.size(); ++scanned) {
            if (filter(record_->events[scanned])) {
                found = record_->events[scanned];
                return true;
            }
        }
        return false;
    });
    return found;
}

std::vector<recorded_event> test_client::wait_count(const event_filter& filter, std::size_t n,
                                                    std::chrono::milliseconds timeout) {
    std::unique_lock lock(record_->mu);
    // Counts incrementally: events are only appended, so those seen stay seen.
    std::size_t scanned = 0;
    std::size_t matched = 0;
    record_->cv.wait_for(lock, timeout, [&] {
        for (; scanned < record_->events.size(); ++scanned)
            if (filter(record_->events[scanned])) ++matched;
        return matched >= n;
    });
    std::vector<recorded_event> found;
    for (const recorded_event& e : record_->events)
        if (filter(e)) found.push_back(e);
    return found;
}

std::vector<recorded_event> test_client::events(const event_filter& filter) const {
    std::lock_guard lock(record_->mu);
    std::vector<recorded_event> out;
    for (const recorded_event& e : record_->events)
        if (!filter || filter(e)) out.push_back(e);
    return out;
}

std::size_t test_client::count(const event_filter& filter) const { return events(filter).size(); }

void test_client::set_handler(event_handler handler) {
    run([this, h = std::move(handler)](client_engine&, time_ms) mutable { record_->handler = std::move(h); });
}

void test_client::after(std::chrono::milliseconds delay, std::function<void(client_engine&, time_ms)> fn) {
    host_->post_after(delay, std::move(fn));
}

bool test_client::wait_ready(std::chrono::milliseconds timeout) {
    return wait_for([](const recorded_event& e) { return e.kind == event_kind::welcome; }, timeout).has_value();
}

std::string test_client::session_id() {
    return run([](client_engine& e, time_ms) { return std::string(e.session_id()); });
}

client_state test_client::state() {
    return run([](client_engine& e, time_ms) { return e.state(); });
}

// Each returns once the host did it: its tasks run in posting order, and
// the empty call() waits for the last.
void test_client::pause_reading() {
    host_->pause_reading();
    run([](client_engine&, time_ms) {});
}

void test_client::resume_reading() {
    host_->resume_reading();
    run([](client_engine&, time_ms) {});
}

void test_client::drop_transport() {
    host_->drop_connection();
    run([](client_engine&, time_ms) {});
}

void test_client::connect_now() {
    ASSERT_TRUE(wait_for([](const recorded_event& e) {
        return e.kind == event_kind::state_changed && e.state == client_state::backoff;
    }));
    const std::error_code refused = run([](client_engine& e, time_ms now) { return e.connect_now(now); });
    EXPECT_FALSE(refused) << "connect_now: " << refused.message();
}

std::string test_client::tls_error() {
    std::lock_guard lock(record_->mu);
    for (auto e = record_->events.rbegin(); e != record_->events.rend(); ++e)
        if (e->error() == errc::transport_handshake_failed) return e->text;
    return {};
}

std::uint32_t test_client::subscribe(const std::string& pattern, slow_policy policy, bool latest) {
    const call_result r =
        run([&](client_engine& e, time_ms) { return e.subscribe(pattern, {.policy = policy, .latest = latest}); });
    EXPECT_FALSE(r.error) << "subscribe " << pattern << ": " << r.error.message();
    return r.id;
}

std::uint32_t test_client::publish(const std::string& channel, const std::string& payload, bool ack) {
    const call_result r = run([&](client_engine& e, time_ms) {
        const auto bytes = bytes_of(payload);
        return e.publish(channel, bytes, ack);
    });
    EXPECT_FALSE(r.error) << "publish " << channel << ": " << r.error.message();
    return r.id;
}

std::uint32_t test_client::request(const std::string& service, const std::string& method,
                                   const std::string& payload, std::uint32_t timeout_ms) {
    const call_result r = run([&](client_engine& e, time_ms now) {
        const auto bytes = bytes_of(payload);
        return e.request(service, method, bytes, timeout_ms, now);
    });
    EXPECT_FALSE(r.error) << "request " << service << "/" << method << ": " << r.error.message();
    return r.id;
}

std::uint32_t test_client::register_service(const std::string& service, std::vector<method_info> methods) {
    const call_result r = run([&](client_engine& e, time_ms) { return e.register_service(service, methods); });
    EXPECT_FALSE(r.error) << "register " << service << ": " << r.error.message();
    return r.id;
}

std::string describe(const recorded_event& e) {
    std::ostringstream out;
    out << event_name(e.kind) << " op=" << operation_name(e.op) << " id=" << e.id << " code=" << e.code
        << "(" << errc_name(e.code) << ") sub=" << e.subscription << " name=" << e.name
        << " epoch=" << e.epoch << " seq=" << e.seq << " count=" << e.count << " text=" << e.text;
    return out.str();
}

event_filter is(event_kind kind, std::uint32_t id) {
    return [kind, id](const recorded_event& e) { return e.kind == kind && (id == 0 || e.id == id); };
}

event_filter is_error(std::uint32_t id) {
    return [id](const recorded_event& e) { return e.kind == event_kind::error && e.id == id; };
}

// The backoff is full jitter, uniform in [0, cap]: with a cap of a minute
// a dropped client came back by itself within the test's second in about
// one run of fifty (CI saw it). With the largest cap, 49 days, that is
// under one in a million per second the test waits.
client_config reconnect_on_demand(client_config config) {
    config.backoff_base_ms = std::numeric_limits<std::uint32_t>::max();
    config.backoff_max_ms = std::numeric_limits<std::uint32_t>::max();
    return config;
}

client_config frontend_config(std::string url, std::string name) {
    client_config c;
    c.url = std::move(url);
    c.name = std::move(name);
    c.role = client_role::frontend;
    c.backoff_base_ms = 50;
    c.backoff_max_ms = 500;
    // Routers refuse transport messages over limits.max_message_bytes; the
    // smallest the tests configure is 4096 (a larger frame still goes alone).
    c.max_batch_bytes = 4096;
    c.seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return c;
}

client_config backend_config(std::string url, std::string name) {
    client_config c = frontend_config(std::move(url), std::move(name));
    c.role = client_role::backend;
    return c;
}

std::vector<std::uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

event_filter message_on(std::string channel) {
    return [channel](const recorded_event& e) { return e.kind == event_kind::message && e.name == channel; };
}

event_filter gap_on(std::string channel) {
    return [channel](const recorded_event& e) { return e.kind == event_kind::gap && e.name == channel; };
}

event_filter answer_to(std::uint32_t id) {
    return [id](const recorded_event& e) {
        return (e.kind == event_kind::ack || e.kind == event_kind::error) && e.id == id;
    };
}

std::uint32_t publish_with(test_client& c, const std::string& channel, const std::string& payload,
                           const std::string& key, std::optional<std::uint32_t> ttl_s) {
    const call_result r = c.run([&](client_engine& e, time_ms) {
        const auto bytes = bytes_of(payload);
        publish_options o;
        o.key = key;
        o.ttl_s = ttl_s;
        return e.publish(channel, bytes, true, 0, o);
    });
    EXPECT_FALSE(r.error) << "publish " << channel << ": " << r.error.message();
    return r.id;
}

std::vector<recorded_event> publish_numbers(test_client& pub, const std::string& channel, int first, int last) {
    std::vector<std::uint32_t> ids;
    for (int i = first; i <= last; ++i) ids.push_back(pub.publish(channel, std::to_string(i), true));
    std::vector<recorded_event> acks;
    for (std::uint32_t id : ids) {
        const auto a = pub.wait_for(answer_to(id), 10s);
        if (!a || a->kind != event_kind::ack) {
            ADD_FAILURE() << "publish " << id << " on " << channel << ": " << (a ? describe(*a) : "no answer");
            break;
        }
        acks.push_back(*a);
    }
    return acks;
}

std::uint32_t subscribe_since(test_client& c, const std::string& channel, channel_position since) {
    const call_result r = c.run([&](client_engine& e, time_ms) {
        return e.subscribe(channel, {.since = since});
    });
    EXPECT_FALSE(r.error) << r.error.message();
    return r.id;
}

}  // namespace hyperstreams::testing
