// hyperstreams-factory as a process against the real router: telemetry on
// its channels, the factory service (commands change the telemetry, bad
// input is a named error) and the alarms stream with credit.
#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hyperstreams/backend.hpp"
#include "test_backend_support.hpp"

namespace {

using namespace std::chrono_literals;
namespace hs = hyperstreams::backend;
using hyperstreams::errc;
using hyperstreams::backend_testing::eventually;
using hyperstreams::backend_testing::process;
using hyperstreams::backend_testing::router_process;
using hyperstreams::backend_testing::stream_caller;
using json = nlohmann::json;

class Simulator : public ::testing::Test {
protected:
    void SetUp() override {
        factory_ = process({HYPERSTREAMS_FACTORY_BIN, "--router", router_.backend_url(), "--lines", "2",
                            "--machines", "2", "--rate", "20", "--jam-every", "0", "--seed", "7"},
                           (hyperstreams::backend_testing::temp_dir() / "factory.log").string());
        hs::options o;
        o.url = router_.ws_url();
        o.name = "dashboard";
        web_ = std::make_unique<hs::client>(o);
        web_->start();
        ASSERT_TRUE(web_->wait_ready(10s));
        // The simulator registers asynchronously: wait until it answers.
        ASSERT_TRUE(eventually([&] { return !call("machines", "{}").error; }, 15s));
    }

    // The client's handler thread writes the members below: stop it before
    // they are destroyed.
    void TearDown() override { web_.reset(); }

    hs::response call(const std::string& method, const std::string& body) {
        return web_->request("factory", method, hs::json(body), 5s).get();
    }

    // The latest telemetry of one machine, once one arrives.
    json latest(const std::string& line, const std::string& machine) {
        std::lock_guard lock(mu_);
        auto it = telemetry_.find(line + "." + machine);
        return it == telemetry_.end() ? json::object() : it->second;
    }

    void watch_telemetry() {
        sub_ = web_->subscribe("factory.*.*.telemetry", [this](const hs::message& m) {
            const json j = json::parse(m.data.text(), nullptr, false);
            std::lock_guard lock(mu_);
            channels_.insert(m.channel);
            if (!j.is_discarded()) telemetry_[j.value("line", "") + "." + j.value("machine", "")] = j;
        });
    }

    router_process router_;
    process factory_;
    std::unique_ptr<hs::client> web_;
    hs::subscription sub_;
    std::mutex mu_;
    std::map<std::string, json> telemetry_;
    std::set<std::string> channels_;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(SimulatorStartup, AWebSocketUrlIsRefusedAtOnceWithTheEndpointToUse) {
    router_process router;
    const std::string log = (hyperstreams::backend_testing::temp_dir() / "factory-ws.err").string();
    process factory({HYPERSTREAMS_FACTORY_BIN, "--router", router.ws_url()}, log);
    EXPECT_EQ(factory.wait(10s).value_or(-1), 1);
    const std::string err = read_file(log);
    EXPECT_NE(err.find("the factory is a backend; give the router's backend (ZeroMQ) endpoint, tcp://HOST:PORT"),
              std::string::npos)
        << err;
    EXPECT_EQ(err.find("wrong_role"), std::string::npos) << err;
    EXPECT_EQ(err.find("connection ready"), std::string::npos) << err;
}

TEST(SimulatorStartup, WithoutATokenItSaysTheRouterRefusedItAndExits) {
    const std::string secret = (hyperstreams::backend_testing::temp_dir() / "factory-secret").string();
    std::ofstream(secret) << "a-secret-of-at-least-thirty-two-bytes";
    router_process router({"--auth-mode", "tokens", "--auth-hs256-secret-file", secret});
    const std::string log = (hyperstreams::backend_testing::temp_dir() / "factory-token.err").string();
    process factory({HYPERSTREAMS_FACTORY_BIN, "--router", router.backend_url()}, log);
    EXPECT_EQ(factory.wait(15s).value_or(-1), 2) << read_file(log);
    const std::string err = read_file(log);
    EXPECT_NE(err.find("unauthorized"), std::string::npos) << err;
    EXPECT_NE(err.find("a token is required"), std::string::npos) << err;
    EXPECT_NE(err.find("refused this backend"), std::string::npos) << err;
    EXPECT_NE(err.find("--token"), std::string::npos) << err;
}

TEST_F(Simulator, PublishesTelemetryForEveryMachine) {
    watch_telemetry();
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mu_);
        return channels_.size() == 4;
    }));
    const json t = latest("L2", "M2");
    EXPECT_EQ(t["state"], "running");
    EXPECT_TRUE(t["temperature"].is_number());
    EXPECT_TRUE(t["speed"].is_number());
    EXPECT_TRUE(t["output"].is_number());
    EXPECT_TRUE(t["ts"].is_number());
    std::lock_guard lock(mu_);
    EXPECT_EQ(channels_.count("factory.L1.M2.telemetry"), 1u);
}

TEST_F(Simulator, ListsItsMachines) {
    const hs::response r = call("machines", "{}");
    ASSERT_FALSE(r.error) << r.error_text;
    const json j = json::parse(r.data.text());
    ASSERT_EQ(j["machines"].size(), 4u);
    EXPECT_EQ(j["machines"][0]["line"], "L1");
    EXPECT_EQ(j["machines"][0]["machine"], "M1");
}

TEST_F(Simulator, CommandsChangeTheTelemetry) {
    watch_telemetry();
    const hs::response speed = call("set_speed", R"({"line":"L1","machine":"M2","speed":2000})");
    ASSERT_FALSE(speed.error) << speed.error_text;
    EXPECT_EQ(json::parse(speed.data.text())["target_speed"], 2000);
    EXPECT_TRUE(eventually([&] { return latest("L1", "M2").value("speed", 0) == 2000; }));

    const hs::response stop = call("stop", R"({"line":"L2","machine":"M1"})");
    ASSERT_FALSE(stop.error) << stop.error_text;
    EXPECT_EQ(json::parse(stop.data.text())["state"], "stopped");
    EXPECT_TRUE(eventually([&] {
        const json t = latest("L2", "M1");
        return t.value("state", "") == "stopped" && t.value("speed", -1) == 0;
    }));
    const std::uint64_t frozen = latest("L2", "M1").value("output", 0u);

    ASSERT_FALSE(call("start", R"({"line":"L2","machine":"M1"})").error);
    EXPECT_TRUE(eventually([&] {
        const json t = latest("L2", "M1");
        return t.value("state", "") == "running" && t.value("output", 0u) > frozen;
    }));
}

TEST_F(Simulator, BadInputIsANamedError) {
    for (const char* body : {R"({"line":"L9","machine":"M1","speed":100})",
                             R"({"line":"L1","machine":"M1","speed":99999})",
                             R"({"line":"L1","machine":"M1"})", "not json"}) {
        const hs::response r = web_->request("factory", "set_speed", body, 5s).get();
        EXPECT_EQ(r.error, errc::invalid_argument) << body;
        EXPECT_FALSE(r.error_text.empty()) << body;
    }
    const hs::response unknown = call("start", R"({"line":"L1","machine":"M7"})");
    EXPECT_EQ(unknown.error, errc::invalid_argument);
    EXPECT_NE(unknown.error_text.find("L1/M7"), std::string::npos) << unknown.error_text;
}

TEST_F(Simulator, StreamsAlarmsWithinTheCallersCredit) {
    std::mutex published_mu;
    std::vector<json> published;
    auto sub = web_->subscribe("factory.alarms", [&](const hs::message& m) {
        std::lock_guard lock(published_mu);
        published.push_back(json::parse(m.data.text()));
    });
    stream_caller alarms(router_.ws_url());
    ASSERT_TRUE(eventually([&] { return alarms.ready(); }));
    alarms.open("factory", "alarms", 1, R"({"line":"L2"})");
    ASSERT_TRUE(eventually([&] {
        const hs::response r = call("machines", "{}");
        return !r.error && json::parse(r.data.text()).value("alarm_streams", 0) == 1;
    }));

    // Alarms on L1 are filtered out; two on L2 exceed the credit of one.
    ASSERT_FALSE(call("fault", R"({"line":"L1","machine":"M1","kind":"jam"})").error);
    ASSERT_FALSE(call("fault", R"({"line":"L2","machine":"M1","kind":"jam"})").error);
    ASSERT_FALSE(call("fault", R"({"line":"L2","machine":"M2","kind":"smoke"})").error);
    ASSERT_TRUE(eventually([&] { return alarms.items().size() == 1; }));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(alarms.items().size(), 1u) << "an item beyond the credit";
    const json first = json::parse(alarms.items()[0]);
    EXPECT_EQ(first["line"], "L2");
    EXPECT_EQ(first["machine"], "M1");
    EXPECT_EQ(first["kind"], "jam");
    EXPECT_EQ(first["severity"], "critical");

    alarms.consume_all();
    ASSERT_TRUE(eventually([&] { return alarms.items().size() == 2; }));
    EXPECT_EQ(json::parse(alarms.items()[1])["kind"], "smoke");
    alarms.cancel();

    EXPECT_TRUE(eventually([&] {
        std::lock_guard lock(published_mu);
        return published.size() >= 3;
    }));
}

}  // namespace
