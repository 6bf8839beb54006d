// hyperstreams-factory: a simulated factory served over HyperStreams.
//
//   telemetry  factory.<line>.<machine>.telemetry  JSON, --rate times per second per machine
//   alarms     factory.alarms                       JSON, as they happen
//   service    factory: start, stop, set_speed, fault, machines (JSON in, JSON out)
//              alarms: a server stream of the alarms (optional filter {"line":"L1"})
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "factory.hpp"
#include "hyperstreams/backend.hpp"

namespace {

namespace hs = hyperstreams::backend;
using hyperstreams::errc;
using hyperstreams::factory::alarm_event;
using hyperstreams::factory::factory;
using hyperstreams::factory::outcome;
using json = nlohmann::json;

std::atomic<bool> stopping{false};
// Set when the router refused this backend for good: the exit code says so.
std::atomic<bool> refused{false};

void on_signal(int) { stopping.store(true); }

constexpr const char* usage = R"(usage: hyperstreams-factory [options]

A simulated factory on HyperStreams: production lines of machines that
publish telemetry, a `factory` service to drive them and a stream of alarms.

options:
  --router URL       the router's backend (ZeroMQ) endpoint, tcp://HOST:PORT or
                     ipc://PATH (default tcp://127.0.0.1:7071)
  --lines N          production lines L1..LN (default 3)
  --machines N       machines per line M1..MN (default 4)
  --rate HZ          telemetry messages per second per machine (default 5)
  --jam-every S      mean seconds between random jams of a machine, 0 = never (default 600)
  --seed N           seed of the simulation's randomness (default 1)
  --name NAME        client name shown by the router (default factory)
  --token TOKEN      token sent to the router
  --help             this text

published:
  factory.<line>.<machine>.telemetry  {"line","machine","state","temperature","speed",
                                       "target_speed","output","ts"}
  factory.alarms                      {"id","line","machine","kind","severity","message",
                                       "temperature","ts"}
service factory (JSON requests):
  machines   {}                          -> {"machines":[...],"alarm_streams":N}
  start      {"line":"L1","machine":"M1"}            -> the machine's new state
  stop       {"line":"L1","machine":"M1"}
  set_speed  {"line":"L1","machine":"M1","speed":1500}  (0..3000 rpm)
  fault      {"line":"L1","machine":"M1","kind":"jam"}  raises an alarm
  alarms     stream; {} or {"line":"L1"}: one item per alarm
bad input fails with invalid_argument and a message.

exit codes: 0 stopped (SIGINT/SIGTERM), 1 usage error, 2 the router refused
this backend (e.g. a token missing or not accepted under auth.mode tokens).
)";

struct settings {
    std::string router = "tcp://127.0.0.1:7071";
    int lines = 3;
    int machines = 4;
    double rate = 5;
    double jam_every = 600;
    std::uint64_t seed = 1;
    std::string name = "factory";
    std::string token;
};

bool parse(int argc, char** argv, settings& s, std::string& error) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                error = arg + " needs a value";
                return nullptr;
            }
            return argv[++i];
        };
        try {
            if (arg == "--router") {
                const char* v = value();
                if (!v) return false;
                s.router = v;
            } else if (arg == "--lines") {
                const char* v = value();
                if (!v) return false;
                s.lines = std::stoi(v);
            } else if (arg == "--machines") {
                const char* v = value();
                if (!v) return false;
                s.machines = std::stoi(v);
            } else if (arg == "--rate") {
                const char* v = value();
                if (!v) return false;
                s.rate = std::stod(v);
            } else if (arg == "--jam-every") {
                const char* v = value();
                if (!v) return false;
                s.jam_every = std::stod(v);
            } else if (arg == "--seed") {
                const char* v = value();
                if (!v) return false;
                s.seed = std::stoull(v);
            } else if (arg == "--name") {
                const char* v = value();
                if (!v) return false;
                s.name = v;
            } else if (arg == "--token") {
                const char* v = value();
                if (!v) return false;
                s.token = v;
            } else {
                error = "unknown option '" + arg + "'";
                return false;
            }
        } catch (const std::exception&) {
            error = arg + ": not a number";
            return false;
        }
    }
    if (s.lines < 1 || s.lines > 99 || s.machines < 1 || s.machines > 99) {
        error = "--lines and --machines must be within 1..99";
        return false;
    }
    if (!(s.rate > 0 && s.rate <= 1000)) {
        error = "--rate must be within (0, 1000]";
        return false;
    }
    // A ws:// URL would connect as a frontend, which cannot serve `factory`.
    if (!s.router.starts_with("tcp://") && !s.router.starts_with("ipc://")) {
        error = "--router " + s.router +
                ": the factory is a backend; give the router's backend (ZeroMQ) endpoint, "
                "tcp://HOST:PORT or ipc://PATH (default tcp://127.0.0.1:7071), not its WebSocket URL";
        return false;
    }
    return true;
}

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Open alarm streams: each keeps what it could not send yet (its caller's
// credit ran out), bounded, dropping the oldest.
class alarm_streams {
public:
    static constexpr std::size_t max_backlog = 256;

    void add(hs::stream_writer w, std::string line) {
        std::lock_guard lock(mu_);
        streams_.push_back({std::move(w), std::move(line), {}});
    }

    void offer(const alarm_event& a) {
        const std::string item = a.to_json().dump();
        std::lock_guard lock(mu_);
        for (stream& s : streams_) {
            if (!s.line.empty() && s.line != a.line) continue;
            if (s.backlog.size() == max_backlog) s.backlog.pop_front();
            s.backlog.push_back(item);
        }
    }

    // Sends what credit allows, never waiting; forgets cancelled streams.
    void flush() {
        std::lock_guard lock(mu_);
        for (auto it = streams_.begin(); it != streams_.end();) {
            bool drop = false;
            while (!it->backlog.empty()) {
                const hs::write_status st = it->writer.write(hs::json(it->backlog.front()), std::chrono::milliseconds(0));
                if (st == hs::write_status::ok) {
                    it->backlog.pop_front();
                    continue;
                }
                drop = st == hs::write_status::cancelled || st == hs::write_status::closed;
                break;
            }
            if (drop || it->writer.cancelled())
                it = streams_.erase(it);
            else
                ++it;
        }
    }

    std::size_t count() {
        std::lock_guard lock(mu_);
        return streams_.size();
    }

    void end_all() {
        std::lock_guard lock(mu_);
        for (stream& s : streams_) s.writer.end();
        streams_.clear();
    }

private:
    struct stream {
        hs::stream_writer writer;
        std::string line;
        std::deque<std::string> backlog;
    };
    std::mutex mu_;
    std::list<stream> streams_;
};

json parse_request(const hs::request& req, bool& ok) {
    ok = true;
    if (req.bytes().empty()) return json::object();
    json j = json::parse(req.text(), nullptr, false);
    if (j.is_discarded()) ok = false;
    return j;
}

}  // namespace

int main(int argc, char** argv) {
    settings cfg;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::fputs(usage, stdout);
            return 0;
        }
    std::string error;
    if (!parse(argc, argv, cfg, error)) {
        std::fprintf(stderr, "hyperstreams-factory: %s (see --help)\n", error.c_str());
        return 1;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    factory plant(cfg.lines, cfg.machines, cfg.seed, cfg.jam_every);
    std::mutex plant_mu;
    alarm_streams streams;

    hs::options opts;
    opts.url = cfg.router;
    opts.name = cfg.name;
    opts.token = cfg.token;
    opts.on_state = [](std::string_view state) {
        std::fprintf(stderr, "hyperstreams-factory: connection %.*s\n", static_cast<int>(state.size()),
                     state.data());
        // The engine waits for a token or a restart that this program will
        // never give: say so and end, rather than wait forever.
        if (state == "awaiting_token" || state == "failed") {
            refused.store(true);
            stopping.store(true);
        }
    };
    opts.on_error = [](std::error_code ec, std::string_view text) {
        std::fprintf(stderr, "hyperstreams-factory: %s: %.*s\n", ec.message().c_str(),
                     static_cast<int>(text.size()), text.data());
    };
    hs::client client(opts);

    std::vector<alarm_event> raised_by_commands;
    auto command = [&](outcome (factory::*op)(const json&)) {
        return [&, op](hs::request req, hs::reply reply) {
            bool ok = false;
            const json body = parse_request(req, ok);
            if (!ok) return (void)reply.fail(errc::invalid_argument, "the request is not JSON");
            outcome o;
            {
                std::lock_guard lock(plant_mu);
                o = (plant.*op)(body);
            }
            if (!o.result) return (void)reply.fail(errc::invalid_argument, o.error);
            reply.send_json(o.result->dump());
        };
    };
    client.provide("factory", "start", command(&factory::start));
    client.provide("factory", "stop", command(&factory::stop));
    client.provide("factory", "set_speed", command(&factory::set_speed));
    client.provide("factory", "machines", [&](hs::request, hs::reply reply) {
        json list;
        {
            std::lock_guard lock(plant_mu);
            list = plant.list();
        }
        list["alarm_streams"] = streams.count();
        reply.send_json(list.dump());
    });
    client.provide("factory", "fault", [&](hs::request req, hs::reply reply) {
        bool ok = false;
        const json body = parse_request(req, ok);
        if (!ok) return (void)reply.fail(errc::invalid_argument, "the request is not JSON");
        outcome o;
        {
            std::lock_guard lock(plant_mu);
            o = plant.inject_fault(body, wall_ms(), raised_by_commands);
        }
        if (!o.result) return (void)reply.fail(errc::invalid_argument, o.error);
        reply.send_json(o.result->dump());
    });
    client.provide_stream("factory", "alarms", [&](hs::request req, hs::stream_writer out) {
        bool ok = false;
        const json body = parse_request(req, ok);
        if (!ok || !body.is_object() || (body.contains("line") && !body["line"].is_string()))
            return (void)out.fail(errc::invalid_argument, R"(expected {} or {"line":"L1"})");
        streams.add(std::move(out), body.value("line", std::string()));
    });
    client.start();
    std::printf("hyperstreams-factory running: %d lines x %d machines, %g Hz, router %s\n", cfg.lines,
                cfg.machines, cfg.rate, cfg.router.c_str());
    std::fflush(stdout);

    const auto period = std::chrono::duration<double>(1.0 / cfg.rate);
    auto next = std::chrono::steady_clock::now();
    while (!stopping.load()) {
        next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
        const std::int64_t now = wall_ms();
        std::vector<std::pair<std::string, std::string>> telemetry;
        std::vector<alarm_event> alarms;
        {
            std::lock_guard lock(plant_mu);
            alarms = plant.tick(period.count(), now);
            alarms.insert(alarms.end(), raised_by_commands.begin(), raised_by_commands.end());
            raised_by_commands.clear();
            for (const auto& m : plant.machines())
                telemetry.emplace_back(plant.channel_of(m), plant.telemetry(m, now).dump());
        }
        for (const auto& [channel, body] : telemetry) client.publish(channel, hs::json(body));
        for (const alarm_event& a : alarms) {
            const std::string body = a.to_json().dump();
            client.publish("factory.alarms", hs::json(body));
            streams.offer(a);
        }
        streams.flush();
        std::this_thread::sleep_until(next);
        if (std::chrono::steady_clock::now() > next + std::chrono::seconds(1))
            next = std::chrono::steady_clock::now();  // fell behind (suspended): do not catch up in a burst
    }
    streams.end_all();
    client.close();
    if (refused.load()) {
        std::fprintf(stderr, "hyperstreams-factory: the router at %s refused this backend (its reason is above)%s\n",
                     cfg.router.c_str(), cfg.token.empty() ? "; it may want a token: --token" : "");
        return 2;
    }
    return 0;
}
