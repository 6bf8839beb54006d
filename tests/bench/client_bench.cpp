// Client engine: one incoming message from the bytes of a transport message
// to the event the host receives (receive + poll_event), the path every
// delivered message takes in the browser and in a backend. Results and the
// commands that produced them are in docs/BENCHMARKS.md ("Client engine").
//
// Messages carry 64-byte payloads on "factory.line1.m3.telemetry". Every
// iteration rewrites the seq fields so each message is new (the engine drops
// duplicates); those stores are part of the measured loop.
//
// Only the subset of Google Benchmark that the wasm shim
// (tests/bench/wasm_benchmark_shim) implements is used here.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/client.hpp"
#include "hyperstreams/frame.hpp"

namespace hs = hyperstreams;

namespace {

constexpr std::string_view channel = "factory.line1.m3.telemetry";
constexpr std::size_t payload_size = 64;
constexpr std::size_t seq_offset = hs::header_size + 4;  // message ext: epoch u32, seq u64

void drain(hs::client_engine& engine) {
    hs::client_event e;
    while (engine.poll_event(e)) {
    }
}

void deliver(hs::client_engine& engine, const hs::frame& f) {
    std::vector<std::uint8_t> bytes;
    if (hs::append(bytes, f) || engine.receive(bytes, 0)) std::abort();
    drain(engine);
}

// A ready engine, subscribed to `patterns` (the acks already received).
hs::client_engine connected_engine(const std::vector<std::string>& patterns) {
    hs::client_config config;
    config.url = "ws://bench";
    config.name = "bench";
    hs::client_engine engine(config);
    if (engine.start(0)) std::abort();
    hs::client_event e;
    std::uint32_t transport = 0;
    while (engine.poll_event(e))
        if (e.kind == hs::event_kind::open_transport) transport = e.id;
    engine.transport_opened(transport, 0);
    drain(engine);
    engine.consume_output();  // the hello

    hs::welcome_body welcome;
    welcome.session_id = "s-bench";
    welcome.heartbeat_ms = 15000;
    std::vector<std::uint8_t> body;
    if (hs::encode_body(welcome, body)) std::abort();
    hs::frame w;
    w.kind = hs::frame_kind::welcome;
    w.payload = body;
    deliver(engine, w);

    for (const std::string& p : patterns) {
        const hs::call_result sub = engine.subscribe(p);
        if (sub.error) std::abort();
        hs::frame ack;
        ack.kind = hs::frame_kind::ack;
        ack.id = sub.id;
        engine.consume_output();
        deliver(engine, ack);
    }
    if (engine.state() != hs::client_state::ready) std::abort();
    return engine;
}

void store_u64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// One transport message of `count` message frames on `channels` channels
// (round robin); returns the offsets of their seq fields.
std::vector<std::uint8_t> message_batch(std::size_t count, std::size_t channels,
                                        std::vector<std::size_t>& seq_offsets) {
    std::vector<std::uint8_t> payload(payload_size, 0x5A);
    std::vector<std::string> names(channels, std::string(channel));
    if (channels > 1)
        for (std::size_t c = 0; c < channels; ++c) names[c].append(".").append(std::to_string(c));
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i < count; ++i) {
        hs::frame f;
        f.kind = hs::frame_kind::message;
        f.flags = hs::frame_flags::json;
        f.name = names[i % channels];
        f.payload = payload;
        f.epoch = 1;
        seq_offsets.push_back(bytes.size() + seq_offset);
        if (hs::append(bytes, f)) std::abort();
    }
    return bytes;
}

// `patterns`: the subscriptions; every message matches exactly one of them.
void receive_messages(benchmark::State& state, const std::vector<std::string>& patterns,
                      std::size_t channels) {
    const auto count = static_cast<std::size_t>(state.range(0));
    hs::client_engine engine = connected_engine(patterns);
    std::vector<std::size_t> seq_offsets;
    std::vector<std::uint8_t> batch = message_batch(count, channels, seq_offsets);
    std::uint64_t seq = 0;
    std::int64_t delivered = 0;
    hs::client_event e;
    for (auto _ : state) {
        // Per channel, seq goes up by one per message.
        for (std::size_t i = 0; i < count; ++i)
            store_u64(batch.data() + seq_offsets[i], seq + 1 + i / channels);
        seq += count / channels;
        if (engine.receive(batch, 0)) std::abort();
        while (engine.poll_event(e)) {
            benchmark::DoNotOptimize(e.payload.data());
            ++delivered;
        }
    }
    if (delivered != static_cast<std::int64_t>(count) * static_cast<std::int64_t>(state.iterations()) ||
        engine.stats().duplicates_dropped != 0)
        std::abort();  // every message became exactly one event
    state.SetItemsProcessed(delivered);
    state.SetBytesProcessed(delivered * static_cast<std::int64_t>(payload_size));
}

// One subscription on the channel itself: the common case.
void BM_ClientReceive(benchmark::State& state) {
    receive_messages(state, {std::string(channel)}, 1);
}
BENCHMARK(BM_ClientReceive)->Arg(1)->Arg(100);

// Ten subscriptions, the matching one a wildcard, messages spread over ten
// channels: per-channel tracking and matching, no help from the last-channel cache.
void BM_ClientReceiveTenChannels(benchmark::State& state) {
    std::vector<std::string> patterns;
    for (int i = 0; i < 9; ++i) patterns.push_back("other.line" + std::to_string(i) + ".>");
    patterns.push_back(std::string(channel) + ".*");
    receive_messages(state, patterns, 10);
}
BENCHMARK(BM_ClientReceiveTenChannels)->Arg(100);

}  // namespace

BENCHMARK_MAIN();
