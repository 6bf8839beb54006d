// Frame codec throughput: the hot path of every connection.
//
// publish is what clients send, message what the router fans out; both are
// encoded into a reused buffer and decoded from one, as the router and the
// clients do. The batch benchmarks are one transport message of 100 publish
// frames with 64-byte payloads. Results and the commands that produced them
// are in docs/BENCHMARKS.md ("Codec").
//
// Only the subset of Google Benchmark that the wasm shim
// (tests/bench/wasm_benchmark_shim) implements is used here.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/frame.hpp"

namespace hs = hyperstreams;

namespace {

constexpr std::string_view channel = "factory.line1.m3.telemetry";
constexpr std::size_t batch_payload_size = 64;

std::vector<std::uint8_t> payload_of_size(std::int64_t size) {
    std::vector<std::uint8_t> payload(static_cast<std::size_t>(size));
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i);
    return payload;
}

hs::frame publish_frame(const std::vector<std::uint8_t>& payload) {
    hs::frame f;
    f.kind = hs::frame_kind::publish;
    f.flags = hs::frame_flags::json;
    f.name = channel;
    f.payload = payload;
    return f;
}

hs::frame message_frame(const std::vector<std::uint8_t>& payload) {
    hs::frame f;
    f.kind = hs::frame_kind::message;
    f.flags = hs::frame_flags::json;
    f.name = channel;
    f.payload = payload;
    f.epoch = 3;
    f.seq = 1'000'000;
    return f;
}

void encode_one(benchmark::State& state, hs::frame f) {
    std::vector<std::uint8_t> buffer(hs::encoded_size(f));
    std::int64_t frames = 0;
    for (auto _ : state) {
        const std::error_code ec = hs::encode_to(f, buffer);
        benchmark::DoNotOptimize(ec);
        benchmark::ClobberMemory();
        ++f.seq;  // a new message each time, as in fan-out
        ++frames;
    }
    state.SetItemsProcessed(frames);
    state.SetBytesProcessed(frames * static_cast<std::int64_t>(buffer.size()));
}

void decode_one(benchmark::State& state, const hs::frame& f) {
    std::vector<std::uint8_t> bytes;
    hs::append(bytes, f);
    hs::frame out;
    std::int64_t frames = 0;
    for (auto _ : state) {
        std::size_t consumed = 0;
        const std::error_code ec = hs::decode(bytes, out, consumed);
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(out);
        ++frames;
    }
    state.SetItemsProcessed(frames);
    state.SetBytesProcessed(frames * static_cast<std::int64_t>(bytes.size()));
}

void BM_EncodePublish(benchmark::State& state) {
    const std::vector<std::uint8_t> payload = payload_of_size(state.range(0));
    encode_one(state, publish_frame(payload));
}

void BM_DecodePublish(benchmark::State& state) {
    const std::vector<std::uint8_t> payload = payload_of_size(state.range(0));
    decode_one(state, publish_frame(payload));
}

void BM_EncodeMessage(benchmark::State& state) {
    const std::vector<std::uint8_t> payload = payload_of_size(state.range(0));
    encode_one(state, message_frame(payload));
}

void BM_DecodeMessage(benchmark::State& state) {
    const std::vector<std::uint8_t> payload = payload_of_size(state.range(0));
    decode_one(state, message_frame(payload));
}

// state.range(0) frames of publish with 64-byte payloads, appended to a buffer
// that keeps its capacity from one batch to the next.
void BM_EncodeBatch(benchmark::State& state) {
    const std::vector<std::uint8_t> payload = payload_of_size(batch_payload_size);
    hs::frame f = publish_frame(payload);
    const auto count = static_cast<std::uint32_t>(state.range(0));
    std::vector<std::uint8_t> batch;
    batch.reserve(count * hs::encoded_size(f));
    std::int64_t batches = 0;
    for (auto _ : state) {
        batch.clear();
        for (std::uint32_t i = 0; i < count; ++i) {
            f.id = i;
            hs::append(batch, f);
        }
        benchmark::DoNotOptimize(batch.data());
        benchmark::ClobberMemory();
        ++batches;
    }
    state.SetItemsProcessed(batches * state.range(0));
    state.SetBytesProcessed(batches * static_cast<std::int64_t>(batch.size()));
}

void BM_DecodeBatch(benchmark::State& state) {
    const std::vector<std::uint8_t> payload = payload_of_size(batch_payload_size);
    hs::frame f = publish_frame(payload);
    std::vector<std::uint8_t> batch;
    for (std::int64_t i = 0; i < state.range(0); ++i) {
        f.id = static_cast<std::uint32_t>(i);
        hs::append(batch, f);
    }
    std::int64_t batches = 0;
    for (auto _ : state) {
        hs::batch_reader reader{batch};
        hs::frame out;
        while (reader.next(out)) benchmark::DoNotOptimize(out);
        benchmark::DoNotOptimize(reader.error());
        ++batches;
    }
    state.SetItemsProcessed(batches * state.range(0));
    state.SetBytesProcessed(batches * static_cast<std::int64_t>(batch.size()));
}

}  // namespace

BENCHMARK(BM_EncodePublish)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_DecodePublish)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_EncodeMessage)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_DecodeMessage)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_EncodeBatch)->Arg(100);
BENCHMARK(BM_DecodeBatch)->Arg(100);

BENCHMARK_MAIN();
