// The router's routing core on one thread, no sockets: what a publish costs
// the router's own code, from the publisher's WebSocket message to the bytes
// a subscriber's session would write.
//
// Each iteration hands the core one message of 100 publish frames (64 B or
// 1 KiB payloads, one channel, the in-memory log with its default history,
// or with none: then the path is the one a router over Redis takes for the
// publications it receives, whose history is in Redis), as
// router_core::receive gets it from a session, and then takes every
// subscriber's outbox empty, as its session would before a write. With one
// subscriber every delivery is a publish, so this is the publish path that
// `hyperstreams-bench fanout --subscribers 1` measures with the kernel's
// share around it. The figures (and the A/B of a change to the path) are in
// docs/BENCHMARKS.md; wall time here is the path's CPU, with no system
// calls, so it is steadier than a network run on a noisy machine.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"
#include "router_core.hpp"

namespace hyperstreams::router {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view channel = "factory.line1.m3.telemetry";
constexpr int publishes_per_message = 100;

struct idle_link final : link {
    void wake() override {}
};

struct endpoint {
    connection_id id = 0;
    std::shared_ptr<outbox> out;
    std::shared_ptr<idle_link> session = std::make_shared<idle_link>();
};

class bench_core {
public:
    bench_core(std::size_t subscribers, std::size_t payload, bool history) {
        if (!history) cfg_.history_max_messages = 0;
        core_ = std::make_unique<router_core>(cfg_, auth_, stats_, 7, "bench");
        publisher_ = join();
        for (std::size_t i = 0; i < subscribers; ++i) {
            endpoint s = join();
            frame sub;
            sub.kind = frame_kind::subscribe;
            sub.id = 1;
            sub.name = channel;
            receive(s, encode_all({sub}));
            drain(s);
            subscribers_.push_back(std::move(s));
        }
        const std::vector<std::uint8_t> body(payload, 0x5a);
        std::vector<frame> publishes(publishes_per_message);
        for (frame& f : publishes) {
            f.kind = frame_kind::publish;
            f.name = channel;
            f.payload = body;
        }
        message_ = encode_all(publishes);
    }

    // One publisher message in, every outbox taken empty.
    void round() {
        receive(publisher_, message_);
        for (endpoint& s : subscribers_) drain(s);
    }

    std::uint64_t delivered() const { return stats_.delivered.load(); }

private:
    static std::vector<std::uint8_t> encode_all(const std::vector<frame>& frames) {
        std::vector<std::uint8_t> bytes;
        for (const frame& f : frames)
            if (append(bytes, f)) std::abort();
        return bytes;
    }

    endpoint join() {
        endpoint e;
        e.id = next_connection_id();
        e.out = std::make_shared<outbox>(outbox_limits_of(cfg_));
        connection_init init;
        init.id = e.id;
        init.remote = "bench";
        init.session = e.session;
        init.out = e.out;
        core_->open(std::move(init), now_);
        hello_body h;
        h.role = client_role::frontend;
        h.name = "bench";
        std::vector<std::uint8_t> body;
        if (encode_body(h, body)) std::abort();
        frame f;
        f.kind = frame_kind::hello;
        f.payload = body;
        receive(e, encode_all({f}));
        drain(e);
        return e;
    }

    void receive(endpoint& e, bytes_view message) {
        core_->receive(e.id, message, now_);
        router_core::wake_list wakes;
        core_->take_wakes(wakes);
    }

    void drain(endpoint& e) {
        do e.out->take(batch_);
        while (!batch_.spans.empty());
    }

    router_config cfg_;
    allow_all auth_;
    metrics stats_;
    time_point now_ = time_point{} + 100s;
    std::unique_ptr<router_core> core_;
    endpoint publisher_;
    std::vector<endpoint> subscribers_;
    std::vector<std::uint8_t> message_;
    outbox_batch batch_;
};

// Args: subscribers, payload bytes, history (1: the default, 0: none).
void publish_path(benchmark::State& state) {
    bench_core core(static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)),
                    state.range(2) != 0);
    const std::uint64_t delivered_before = core.delivered();
    for (auto _ : state) core.round();
    const auto publishes = static_cast<double>(state.iterations()) * publishes_per_message;
    state.counters["publishes"] = benchmark::Counter(publishes, benchmark::Counter::kIsRate);
    state.counters["deliveries"] =
        benchmark::Counter(static_cast<double>(core.delivered() - delivered_before), benchmark::Counter::kIsRate);
    state.counters["per_publish"] = benchmark::Counter(publishes, benchmark::Counter::kIsRate |
                                                                         benchmark::Counter::kInvert);
}
BENCHMARK(publish_path)
    ->ArgNames({"subscribers", "payload", "history"})
    ->Args({1, 64, 1})
    ->Args({1, 1024, 1})
    ->Args({100, 64, 1})
    ->Args({100, 1024, 1})
    ->Args({1, 64, 0})
    ->Args({1, 1024, 0})
    ->Args({100, 64, 0})
    ->Args({100, 1024, 0})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace hyperstreams::router

BENCHMARK_MAIN();
