// The factory model behind hyperstreams-factory: production lines of machines
// with a little physics (speed ramps, temperature follows speed, output
// counts up) and alarms. No I/O: main.cpp publishes and serves it. Seeded,
// so a run is reproducible for a given seed and sequence of ticks.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace hyperstreams::factory {

struct machine {
    std::string line;     // "L1"
    std::string id;       // "M1"
    std::string state = "running";  // running, stopped, fault
    double speed = 0;         // rpm now
    double target_speed = 0;  // rpm asked for (kept while stopped)
    double temperature = 25;  // degrees Celsius
    double output_parts = 0;  // parts made since start (fractional)
    bool overheat_raised = false;
};

struct alarm_event {
    std::uint64_t id = 0;
    std::string line;
    std::string machine;
    std::string kind;      // overheat, jam, fault
    std::string severity;  // warning, critical
    std::string message;
    double temperature = 0;
    std::int64_t ts = 0;  // ms since the Unix epoch

    nlohmann::json to_json() const;
};

// A command's outcome: the machine's new view, or why it was refused.
struct outcome {
    std::optional<nlohmann::json> result;
    std::string error;  // set when result is empty: says what is wrong with the input
};

class factory {
public:
    static constexpr double max_speed = 3000;
    static constexpr double default_speed = 1200;
    static constexpr double overheat_at = 85;   // warning
    static constexpr double trip_at = 95;       // critical: the machine stops with a fault

    // `jam_every_s`: mean seconds between random jams of one running machine (0: never).
    factory(int lines, int machines_per_line, std::uint64_t seed, double jam_every_s);

    // Advances the simulation by `dt` seconds; returns the alarms raised.
    std::vector<alarm_event> tick(double dt, std::int64_t now_ms);

    const std::vector<machine>& machines() const noexcept { return machines_; }
    nlohmann::json telemetry(const machine& m, std::int64_t now_ms) const;
    nlohmann::json list() const;
    std::string channel_of(const machine& m) const;

    // Commands; `request` is the parsed request payload.
    outcome start(const nlohmann::json& request);
    outcome stop(const nlohmann::json& request);
    outcome set_speed(const nlohmann::json& request);
    // Injects a fault (a demo and test hook): the machine stops and an alarm is raised.
    outcome inject_fault(const nlohmann::json& request, std::int64_t now_ms, std::vector<alarm_event>& raised);

private:
    machine* find(const nlohmann::json& request, std::string& error);
    nlohmann::json view(const machine& m) const;
    alarm_event make_alarm(const machine& m, std::string kind, std::string severity, std::string message,
                     std::int64_t now_ms);

    std::vector<machine> machines_;
    std::mt19937_64 rng_;
    double jam_every_s_;
    std::uint64_t next_alarm_ = 1;
};

}  // namespace hyperstreams::factory
