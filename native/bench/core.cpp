// Scenario "core": the shared sans-I/O core on one thread, no network. The
// same operations as tests/bench/codec_bench.cpp and client_bench.cpp
// (Google Benchmark, with repetitions: the figures of record), timed here
// with plain loops so that the suite reports them beside the network figures.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/client.hpp"
#include "hyperstreams/frame.hpp"

namespace hyperstreams::bench {
namespace {

constexpr std::string_view channel = "factory.line1.m3.telemetry";
constexpr std::size_t seq_offset = header_size + 4;  // message ext: epoch u32, seq u64

// Runs `body` (which handles `items` items per call) for about `seconds`;
// nanoseconds of wall time per item.
template <typename Body>
double time_per_item(double seconds, std::size_t items, Body&& body) {
    std::size_t rounds = 0;
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    auto now = start;
    while (now < end) {
        for (int i = 0; i < 64; ++i) body();
        rounds += 64;
        now = clock_type::now();
    }
    return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(rounds * items);
}

frame message_frame(bytes_view payload) {
    frame f;
    f.kind = frame_kind::message;
    f.name = channel;
    f.payload = payload;
    f.epoch = 1;
    f.seq = 1;
    return f;
}

void drain(client_engine& engine) {
    client_event e;
    while (engine.poll_event(e)) {
    }
}

void deliver(client_engine& engine, const frame& f) {
    std::vector<std::uint8_t> bytes;
    if (append(bytes, f) || engine.receive(bytes, 0)) std::abort();
    drain(engine);
}

// A ready engine subscribed to the channel (as client_bench.cpp sets it up).
client_engine ready_engine() {
    client_config config;
    config.url = "ws://bench";
    config.name = "bench";
    client_engine engine(config);
    if (engine.start(0)) std::abort();
    client_event e;
    std::uint32_t transport = 0;
    while (engine.poll_event(e))
        if (e.kind == event_kind::open_transport) transport = e.id;
    engine.transport_opened(transport, 0);
    drain(engine);
    engine.consume_output();
    welcome_body welcome;
    welcome.session_id = "s-bench";
    welcome.heartbeat_ms = 15000;
    std::vector<std::uint8_t> body;
    if (encode_body(welcome, body)) std::abort();
    frame w;
    w.kind = frame_kind::welcome;
    w.payload = body;
    deliver(engine, w);
    const call_result sub = engine.subscribe(channel);
    if (sub.error) std::abort();
    frame ack;
    ack.kind = frame_kind::ack;
    ack.id = sub.id;
    engine.consume_output();
    deliver(engine, ack);
    if (engine.state() != client_state::ready) std::abort();
    return engine;
}

void store_u64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

std::vector<core_figure> run_core(double seconds) {
    std::vector<core_figure> out;
    for (const std::size_t size : {std::size_t{64}, std::size_t{1024}}) {
        const std::vector<std::uint8_t> payload(size, 0x5A);
        const frame f = message_frame(payload);
        std::vector<std::uint8_t> buffer(encoded_size(f));
        out.push_back({"encode message, " + std::to_string(size) + " B payload",
                       time_per_item(seconds, 1, [&] {
                           if (encode_to(f, buffer)) std::abort();
                           asm volatile("" : : "r"(buffer.data()) : "memory");
                       })});
        frame decoded;
        out.push_back({"decode message, " + std::to_string(size) + " B payload",
                       time_per_item(seconds, 1, [&] {
                           batch_reader reader(buffer);
                           if (!reader.next(decoded)) std::abort();
                           asm volatile("" : : "r"(&decoded) : "memory");
                       })});
    }
    {
        const std::vector<std::uint8_t> payload(64, 0x5A);
        std::vector<std::uint8_t> batch;
        for (int i = 0; i < 100; ++i) (void)append(batch, message_frame(payload));
        frame decoded;
        out.push_back({"decode batch of 100 messages, 64 B, per frame", time_per_item(seconds, 100, [&] {
                           batch_reader reader(batch);
                           while (reader.next(decoded)) asm volatile("" : : "r"(&decoded) : "memory");
                       })});
    }
    for (const std::size_t count : {std::size_t{1}, std::size_t{100}}) {
        client_engine engine = ready_engine();
        const std::vector<std::uint8_t> payload(64, 0x5A);
        std::vector<std::uint8_t> batch;
        for (std::size_t i = 0; i < count; ++i) (void)append(batch, message_frame(payload));
        std::uint64_t seq = 0;
        std::uint64_t events = 0;
        client_event e;
        const double ns = time_per_item(seconds, count, [&] {
            for (std::size_t i = 0; i < count; ++i)
                store_u64(batch.data() + i * (batch.size() / count) + seq_offset, ++seq);
            if (engine.receive(batch, 0)) std::abort();
            while (engine.poll_event(e)) ++events;
        });
        if (events != seq) std::abort();  // every message became exactly one event
        out.push_back({"client engine: receive + poll_event, " + std::to_string(count) +
                           (count == 1 ? " message" : " messages") + " per transport message, per message",
                       ns});
    }
    return out;
}

}  // namespace hyperstreams::bench
