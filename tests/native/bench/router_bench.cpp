// Router benchmarks (not tests): the real binary on loopback, driven by
// codec-level clients so that the figures are the router's, not a client
// library's. Results and the commands that produce them: docs/BENCHMARKS.md,
// section Router.
//
//   hyperstreams_router_bench fanout SUBSCRIBERS MESSAGES PAYLOAD [BATCH]
//       one WebSocket publisher sends MESSAGES publishes (PAYLOAD bytes, BATCH
//       frames per WebSocket message); every subscriber counts what arrives.
//       Prints messages delivered per second and drops (gaps).
//   hyperstreams_router_bench request COUNT PAYLOAD [IN_FLIGHT]
//       a WebSocket frontend calls a ZeroMQ backend that answers at once,
//       with IN_FLIGHT requests outstanding. Prints calls per second and
//       round-trip percentiles.
//
// Extra router flags go after "--", e.g. "-- --threads 2".
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "hyperstreams/body.hpp"
#include "raw_clients.hpp"
#include "router_process.hpp"

using namespace hyperstreams;
using namespace hyperstreams::testing;
using clock_type = std::chrono::steady_clock;

namespace {

frame make(frame_kind kind, std::uint32_t id, std::string_view name, bytes_view payload = {}) {
    frame f;
    f.kind = kind;
    f.id = id;
    f.name = name;
    f.payload = payload;
    return f;
}

bool handshake(raw_ws& ws, client_role role) {
    return ws.connected() && ws.send(hello_bytes(role)) && ws.read_until(frame_kind::welcome).has_value();
}

int fanout(router_process& router, int subscribers, int messages, int payload_size, int batch) {
    std::vector<std::unique_ptr<raw_ws>> subs;
    for (int i = 0; i < subscribers; ++i) {
        subs.push_back(std::make_unique<raw_ws>(router.http_address()));
        if (!handshake(*subs.back(), client_role::frontend)) return 1;
        subs.back()->send(encode_batch({make(frame_kind::subscribe, 1, "bench.fanout")}));
        if (!subs.back()->read_until(frame_kind::ack)) return 1;
    }
    raw_ws pub(router.http_address());
    if (!handshake(pub, client_role::frontend)) return 1;

    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> gaps{0};
    std::atomic<int> done{0};
    std::vector<std::thread> readers;
    decode_limits limits;
    limits.max_payload = 1u << 30;
    for (auto& s : subs) {
        readers.emplace_back([&, ws = s.get()] {
            std::uint64_t got = 0;
            std::uint64_t lost = 0;
            while (got + lost < static_cast<std::uint64_t>(messages)) {
                auto msg = ws->read(std::chrono::seconds(30));
                if (!msg) break;
                batch_reader reader(*msg, limits);
                frame f;
                while (reader.next(f)) {
                    if (f.kind == frame_kind::message) ++got;
                    if (f.kind == frame_kind::gap) lost += f.count;
                }
            }
            delivered += got;
            gaps += lost;
            ++done;
        });
    }

    const std::string payload(static_cast<std::size_t>(payload_size), 'x');
    const bytes_view body(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
    std::vector<frame> frames(static_cast<std::size_t>(batch), make(frame_kind::publish, 0, "bench.fanout", body));
    const auto message = encode_batch(frames);
    const auto start = clock_type::now();
    for (int sent = 0; sent < messages; sent += batch) {
        if (messages - sent < batch) {
            frames.resize(static_cast<std::size_t>(messages - sent));
            pub.send(encode_batch(frames));
        } else {
            pub.send(message);
        }
    }
    for (auto& t : readers) t.join();
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    std::printf("fanout subscribers=%d messages=%d payload=%d batch=%d: %.3f s, %.0f msg/s published, "
                "%.0f msg/s delivered, %.1f MB/s delivered, dropped=%llu\n",
                subscribers, messages, payload_size, batch, seconds, messages / seconds,
                static_cast<double>(delivered.load()) / seconds,
                static_cast<double>(delivered.load()) * payload_size / seconds / 1e6,
                static_cast<unsigned long long>(gaps.load()));
    return 0;
}

int requests(router_process& router, int count, int payload_size, int in_flight) {
    // The backend: a raw DEALER that answers every request at once, on its own thread.
    raw_dealer backend(router.backend_url());
    backend.send(hello_bytes(client_role::backend));
    if (!backend.read_until(frame_kind::welcome)) return 1;
    register_body reg;
    reg.methods = {{"echo", method_kind::unary}};
    std::vector<std::uint8_t> reg_body;
    (void)encode_body(reg, reg_body);
    backend.send(encode_batch({make(frame_kind::register_service, 1, "bench", reg_body)}));
    if (!backend.read_until(frame_kind::ack)) return 1;
    std::atomic<bool> stop{false};
    std::thread server([&] {
        while (!stop) {
            auto msg = backend.read(std::chrono::milliseconds(100));
            if (!msg) continue;
            std::vector<frame> replies;
            const auto frames = decode_batch(*msg);
            for (const owned_frame& f : frames) {
                if (f.kind != frame_kind::request) continue;
                frame r = make(frame_kind::response, f.id, {},
                               bytes_view(reinterpret_cast<const std::uint8_t*>(f.payload.data()), f.payload.size()));
                replies.push_back(r);
            }
            if (!replies.empty()) backend.send(encode_batch(replies));
        }
    });

    raw_ws caller(router.http_address());
    if (!handshake(caller, client_role::frontend)) return 1;
    const std::string payload(static_cast<std::size_t>(payload_size), 'r');
    const bytes_view body(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
    std::vector<clock_type::time_point> sent_at(static_cast<std::size_t>(count) + 1);
    std::vector<double> rtt_us;
    rtt_us.reserve(static_cast<std::size_t>(count));
    int next = 1;
    int outstanding = 0;
    const auto start = clock_type::now();
    while (static_cast<int>(rtt_us.size()) < count) {
        std::vector<frame> batch;
        while (outstanding < in_flight && next <= count) {
            frame f = make(frame_kind::request, static_cast<std::uint32_t>(next), "bench/echo", body);
            f.deadline_ms = 10000;
            batch.push_back(f);
            sent_at[static_cast<std::size_t>(next)] = clock_type::now();
            ++next;
            ++outstanding;
        }
        if (!batch.empty()) caller.send(encode_batch(batch));
        auto msg = caller.read(std::chrono::seconds(10));
        if (!msg) break;
        const auto now = clock_type::now();
        for (const owned_frame& f : decode_batch(*msg)) {
            if (f.kind != frame_kind::response && f.kind != frame_kind::error) continue;
            --outstanding;
            rtt_us.push_back(std::chrono::duration<double, std::micro>(now - sent_at[f.id]).count());
        }
    }
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    stop = true;
    server.join();
    std::sort(rtt_us.begin(), rtt_us.end());
    const auto pct = [&](double p) {
        return rtt_us.empty() ? 0.0 : rtt_us[std::min(rtt_us.size() - 1, static_cast<std::size_t>(p * rtt_us.size()))];
    };
    std::printf("request count=%zu payload=%d in_flight=%d: %.3f s, %.0f calls/s, rtt p50=%.0f us p99=%.0f us "
                "max=%.0f us\n",
                rtt_us.size(), payload_size, in_flight, seconds, static_cast<double>(rtt_us.size()) / seconds,
                pct(0.50), pct(0.99), rtt_us.empty() ? 0.0 : rtt_us.back());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::vector<std::string> router_flags = {"--log-level", "warn"};
    if (auto dash = std::find(args.begin(), args.end(), "--"); dash != args.end()) {
        router_flags.insert(router_flags.end(), dash + 1, args.end());
        args.erase(dash, args.end());
    }
    const auto arg = [&](std::size_t i, int fallback) {
        return i < args.size() ? std::atoi(args[i].c_str()) : fallback;
    };
    if (args.empty() || (args[0] != "fanout" && args[0] != "request")) {
        std::fprintf(stderr,
                     "usage: %s fanout SUBSCRIBERS MESSAGES PAYLOAD [BATCH] [-- ROUTER FLAGS]\n"
                     "       %s request COUNT PAYLOAD [IN_FLIGHT] [-- ROUTER FLAGS]\n",
                     argv[0], argv[0]);
        return 2;
    }
    router_process router(router_flags);
    if (!router.ready()) return 1;
    if (args[0] == "fanout") return fanout(router, arg(1, 10), arg(2, 100000), arg(3, 100), arg(4, 64));
    return requests(router, arg(1, 20000), arg(2, 100), arg(3, 1));
}
