// A minimal stand-in for Google Benchmark, used only by the wasm build of the
// benchmarks (tests/bench/*.cpp) so that the same source runs natively and
// under Node.
//
// Why it exists: Debian ships Google Benchmark only as a native library
// (libbenchmark-dev), with no sources to compile with Emscripten, and the
// project downloads nothing but apt and npm packages. The native build always
// uses the real library.
//
// What it does: the subset of the API HyperStreams benchmarks use
// (range-for over State, range(0), SetItemsProcessed, SetBytesProcessed,
// PauseTiming/ResumeTiming, BENCHMARK(fn)->Arg(x), BENCHMARK_MAIN,
// DoNotOptimize, ClobberMemory) and the flags --benchmark_filter=<regex> and
// --benchmark_min_time=<seconds>. Like Google Benchmark it grows the
// iteration count until a run lasts at least the minimum time, then reports
// that run. Unlike it, it measures wall time only (std::chrono::steady_clock,
// performance.now() under Node): no CPU time, no repetitions, no statistics.
// Figures from the wasm build must say they came from this shim.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iterator>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace benchmark {

using IterationCount = std::int64_t;

class State {
public:
    State(IterationCount max_iterations, std::vector<std::int64_t> args)
        : max_iterations_(max_iterations), args_(std::move(args)) {}

    // `for (auto _ : state)` runs the body max_iterations_ times; the clock
    // runs from the first begin() to the end of the loop, minus pauses.
    struct __attribute__((unused)) Value {};  // `_` in the loop is never read
    class Iterator {
    public:
        explicit Iterator(State* state) : state_(state), remaining_(state ? state->max_iterations_ : 0) {}
        Value operator*() const { return {}; }
        Iterator& operator++() {
            --remaining_;
            return *this;
        }
        bool operator!=(const Iterator&) {
            if (remaining_ > 0) return true;
            state_->stop();
            return false;
        }

    private:
        State* state_;
        IterationCount remaining_;
    };
    Iterator begin() {
        start();
        return Iterator(this);
    }
    Iterator end() { return Iterator(nullptr); }

    bool KeepRunning() {
        if (!started_) start();
        if (kept_running_ < max_iterations_) {
            ++kept_running_;
            return true;
        }
        stop();
        return false;
    }

    std::int64_t range(std::size_t i = 0) const { return args_.at(i); }
    IterationCount iterations() const { return max_iterations_; }
    void SetItemsProcessed(std::int64_t items) { items_ = items; }
    void SetBytesProcessed(std::int64_t bytes) { bytes_ = bytes; }
    void SetLabel(std::string label) { label_ = std::move(label); }
    void PauseTiming() { paused_at_ = clock::now(); }
    void ResumeTiming() { paused_ += clock::now() - paused_at_; }

    double seconds() const { return std::chrono::duration<double>(stopped_at_ - started_at_ - paused_).count(); }
    std::int64_t items_processed() const { return items_; }
    std::int64_t bytes_processed() const { return bytes_; }
    const std::string& label() const { return label_; }

private:
    using clock = std::chrono::steady_clock;
    void start() {
        started_ = true;
        started_at_ = clock::now();
    }
    void stop() { stopped_at_ = clock::now(); }

    IterationCount max_iterations_;
    IterationCount kept_running_ = 0;
    std::vector<std::int64_t> args_;
    bool started_ = false;
    clock::time_point started_at_{};
    clock::time_point stopped_at_{};
    clock::time_point paused_at_{};
    clock::duration paused_{};
    std::int64_t items_ = 0;
    std::int64_t bytes_ = 0;
    std::string label_;
};

class Benchmark {
public:
    Benchmark(std::string name, std::function<void(State&)> fn) : name_(std::move(name)), fn_(std::move(fn)) {}
    Benchmark* Arg(std::int64_t x) {
        args_.push_back({x});
        return this;
    }
    Benchmark* Args(std::vector<std::int64_t> xs) {
        args_.push_back(std::move(xs));
        return this;
    }

    const std::string& name() const { return name_; }
    const std::function<void(State&)>& fn() const { return fn_; }
    const std::vector<std::vector<std::int64_t>>& args() const { return args_; }

private:
    std::string name_;
    std::function<void(State&)> fn_;
    std::vector<std::vector<std::int64_t>> args_;
};

// Keeps the compiler from discarding `value` and the computation behind it:
// its address escapes into an empty asm statement that may read memory.
// (Google Benchmark's "r,m" constraint crashes LLVM 14's wasm backend.)
template <typename T>
inline __attribute__((always_inline)) void DoNotOptimize(const T& value) {
    asm volatile("" : : "r"(&value) : "memory");
}

// Forces pending writes to memory to be considered observable.
inline __attribute__((always_inline)) void ClobberMemory() { asm volatile("" : : : "memory"); }

namespace internal {

// A deque: BENCHMARK(fn)->Arg(x) keeps a pointer to its element.
inline std::deque<Benchmark>& registry() {
    static std::deque<Benchmark> benchmarks;
    return benchmarks;
}

inline Benchmark* Register(const char* name, void (*fn)(State&)) {
    return &registry().emplace_back(name, fn);
}

// "1.474G/s"; like Google Benchmark, bytes count in powers of 1024, items in 1000.
inline std::string human(double value, double base) {
    const char* prefixes[] = {"", "k", "M", "G", "T"};
    std::size_t i = 0;
    while (value >= base && i + 1 < std::size(prefixes)) {
        value /= base;
        ++i;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g%s/s", value, prefixes[i]);
    return buf;
}

inline State run_once(const Benchmark& b, const std::vector<std::int64_t>& args, IterationCount n) {
    State state(n, args);
    b.fn()(state);
    return state;
}

inline int RunAll(int argc, char** argv) {
    std::string filter = ".";
    double min_time = 0.5;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg.rfind("--benchmark_filter=", 0) == 0) {
            filter = std::string(arg.substr(19));
        } else if (arg.rfind("--benchmark_min_time=", 0) == 0) {
            min_time = std::strtod(std::string(arg.substr(21)).c_str(), nullptr);  // "0.5" or "0.5s"
        } else {
            std::fprintf(stderr, "benchmark shim: unsupported flag %s\n", argv[i]);
            return 2;
        }
    }
    const std::regex wanted(filter);

    std::printf("Benchmark shim (wasm build): wall time per iteration, see benchmark/benchmark.h\n");
    std::printf("%-44s %14s %12s %s\n", "Benchmark", "Time", "Iterations", "UserCounters...");
    std::printf("%s\n", std::string(96, '-').c_str());
    for (const Benchmark& b : registry()) {
        std::vector<std::vector<std::int64_t>> arg_sets = b.args();
        if (arg_sets.empty()) arg_sets.push_back({});
        for (const auto& args : arg_sets) {
            std::string name = b.name();
            for (std::int64_t a : args) name += "/" + std::to_string(a);
            if (!std::regex_search(name, wanted)) continue;

            IterationCount n = 1;
            State state = run_once(b, args, n);
            // Google Benchmark's growth rule: aim 40 % past the minimum time,
            // at most 10x per step.
            while (state.seconds() < min_time && n < 1'000'000'000) {
                const double seconds = std::max(state.seconds(), 1e-9);
                const double multiplier = seconds / min_time > 0.1 ? min_time * 1.4 / seconds : 10.0;
                n = std::max(static_cast<IterationCount>(static_cast<double>(n) * multiplier), n + 1);
                n = std::min<IterationCount>(n, 1'000'000'000);
                state = run_once(b, args, n);
            }

            const double ns = state.seconds() * 1e9 / static_cast<double>(n);
            std::string counters;
            if (state.bytes_processed() > 0)
                counters += " bytes_per_second=" +
                            human(static_cast<double>(state.bytes_processed()) / state.seconds(), 1024.0);
            if (state.items_processed() > 0)
                counters += " items_per_second=" +
                            human(static_cast<double>(state.items_processed()) / state.seconds(), 1000.0);
            if (!state.label().empty()) counters += " " + state.label();
            std::printf("%-44s %11.1f ns %12lld%s\n", name.c_str(), ns, static_cast<long long>(n),
                        counters.c_str());
        }
    }
    return 0;
}

}  // namespace internal
}  // namespace benchmark

#define BENCHMARK_PRIVATE_CONCAT2(a, b) a##b
#define BENCHMARK_PRIVATE_CONCAT(a, b) BENCHMARK_PRIVATE_CONCAT2(a, b)
#define BENCHMARK(fn)                                                                     \
    [[maybe_unused]] static ::benchmark::Benchmark* BENCHMARK_PRIVATE_CONCAT(             \
        benchmark_registration_, __COUNTER__) = ::benchmark::internal::Register(#fn, fn)
#define BENCHMARK_MAIN() \
    int main(int argc, char** argv) { return ::benchmark::internal::RunAll(argc, argv); }
