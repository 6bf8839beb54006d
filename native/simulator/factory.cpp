#include "factory.hpp"

#include <algorithm>
#include <cmath>

namespace hyperstreams::factory {

namespace {

constexpr double ramp_rpm_per_s = 600;
constexpr double ambient = 25;
constexpr double parts_per_rev = 1.0 / 1200;  // 1200 rpm: one part per second

double round1(double v) { return std::round(v * 10) / 10; }

// "L1", "M12": appended, not `"L" + std::to_string(n)`, whose insertion at the
// front g++ 12 at -O3 misreads as an overlapping copy of 2^63 bytes
// (-Wrestrict, or -Wstringop-overflow depending on inlining).
std::string numbered(char prefix, int n) {
    std::string s(1, prefix);
    s += std::to_string(n);
    return s;
}

}  // namespace

nlohmann::json alarm_event::to_json() const {
    return {{"id", id},           {"line", line},         {"machine", machine},
            {"kind", kind},       {"severity", severity}, {"message", message},
            {"temperature", round1(temperature)},        {"ts", ts}};
}

factory::factory(int lines, int machines_per_line, std::uint64_t seed, double jam_every_s)
    : rng_(seed), jam_every_s_(jam_every_s) {
    std::uniform_real_distribution<double> spread(-100, 100);
    for (int l = 1; l <= lines; ++l) {
        for (int m = 1; m <= machines_per_line; ++m) {
            machine x;
            x.line = numbered('L', l);
            x.id = numbered('M', m);
            x.target_speed = default_speed + std::round(spread(rng_) / 10) * 10;
            x.speed = x.target_speed;
            x.temperature = 30 + x.speed * 0.025;
            machines_.push_back(std::move(x));
        }
    }
}

std::string factory::channel_of(const machine& m) const {
    return "factory." + m.line + "." + m.id + ".telemetry";
}

std::vector<alarm_event> factory::tick(double dt, std::int64_t now_ms) {
    std::vector<alarm_event> raised;
    std::normal_distribution<double> noise(0, 0.15);
    std::uniform_real_distribution<double> chance(0, 1);
    for (machine& m : machines_) {
        const double want = m.state == "running" ? m.target_speed : 0;
        const double step = ramp_rpm_per_s * dt;
        m.speed = m.speed < want ? std::min(want, m.speed + step) : std::max(want, m.speed - step);
        const double hot = m.state == "running" ? 30 + m.speed * 0.025 : ambient;
        m.temperature += (hot - m.temperature) * std::min(1.0, dt * 0.5) + noise(rng_);
        m.output_parts += m.speed * parts_per_rev * dt;

        if (m.state != "running") continue;
        if (m.temperature >= trip_at) {
            m.state = "fault";
            raised.push_back(make_alarm(m, "overheat", "critical", "temperature over the trip point: stopped",
                                        now_ms));
        } else if (m.temperature >= overheat_at && !m.overheat_raised) {
            m.overheat_raised = true;
            raised.push_back(make_alarm(m, "overheat", "warning", "temperature high", now_ms));
        } else if (m.temperature < overheat_at - 5) {
            m.overheat_raised = false;
        }
        if (m.state == "running" && jam_every_s_ > 0 && chance(rng_) < dt / jam_every_s_) {
            m.state = "fault";
            raised.push_back(make_alarm(m, "jam", "critical", "material jam: stopped", now_ms));
        }
    }
    return raised;
}

nlohmann::json factory::telemetry(const machine& m, std::int64_t now_ms) const {
    return {{"line", m.line},
            {"machine", m.id},
            {"state", m.state},
            {"temperature", round1(m.temperature)},
            {"speed", std::lround(m.speed)},
            {"target_speed", std::lround(m.target_speed)},
            {"output", static_cast<std::uint64_t>(m.output_parts)},
            {"ts", now_ms}};
}

nlohmann::json factory::view(const machine& m) const {
    return {{"line", m.line},
            {"machine", m.id},
            {"state", m.state},
            {"speed", std::lround(m.speed)},
            {"target_speed", std::lround(m.target_speed)}};
}

nlohmann::json factory::list() const {
    nlohmann::json out = nlohmann::json::array();
    for (const machine& m : machines_) out.push_back(view(m));
    return {{"machines", out}};
}

machine* factory::find(const nlohmann::json& request, std::string& error) {
    if (!request.is_object() || !request.contains("line") || !request.contains("machine") ||
        !request["line"].is_string() || !request["machine"].is_string()) {
        error = R"(expected a JSON object with "line" and "machine" strings)";
        return nullptr;
    }
    const std::string line = request["line"];
    const std::string id = request["machine"];
    for (machine& m : machines_)
        if (m.line == line && m.id == id) return &m;
    error = "no machine " + line + "/" + id;
    return nullptr;
}

outcome factory::start(const nlohmann::json& request) {
    outcome o;
    machine* m = find(request, o.error);
    if (m == nullptr) return o;
    m->state = "running";
    m->overheat_raised = false;
    o.result = view(*m);
    return o;
}

outcome factory::stop(const nlohmann::json& request) {
    outcome o;
    machine* m = find(request, o.error);
    if (m == nullptr) return o;
    m->state = "stopped";
    o.result = view(*m);
    return o;
}

outcome factory::set_speed(const nlohmann::json& request) {
    outcome o;
    machine* m = find(request, o.error);
    if (m == nullptr) return o;
    if (!request.contains("speed") || !request["speed"].is_number()) {
        o.error = R"(expected a number "speed" in rpm)";
        return o;
    }
    const double speed = request["speed"];
    if (!(speed >= 0 && speed <= max_speed)) {
        o.error = "speed must be within 0.." + std::to_string(static_cast<int>(max_speed)) + " rpm";
        return o;
    }
    m->target_speed = speed;
    o.result = view(*m);
    return o;
}

outcome factory::inject_fault(const nlohmann::json& request, std::int64_t now_ms, std::vector<alarm_event>& raised) {
    outcome o;
    machine* m = find(request, o.error);
    if (m == nullptr) return o;
    const std::string kind = request.value("kind", std::string("fault"));
    m->state = "fault";
    raised.push_back(make_alarm(*m, kind, "critical", "fault injected: " + kind, now_ms));
    o.result = view(*m);
    return o;
}

alarm_event factory::make_alarm(const machine& m, std::string kind, std::string severity, std::string message,
                          std::int64_t now_ms) {
    alarm_event a;
    a.id = next_alarm_++;
    a.line = m.line;
    a.machine = m.id;
    a.kind = std::move(kind);
    a.severity = std::move(severity);
    a.message = std::move(message);
    a.temperature = m.temperature;
    a.ts = now_ms;
    return a;
}

}  // namespace hyperstreams::factory
