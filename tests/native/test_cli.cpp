// The hyperstreams CLI as a process against the real router: its outputs and
// exit codes (0 ok, 1 usage, 2 connection, 3 remote error, 4 timeout), as a
// frontend (ws://) and as a backend (tcp://).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "hyperstreams/backend.hpp"
#include "test_backend_support.hpp"
#include "token_maker.hpp"

namespace {

using namespace std::chrono_literals;
namespace hs = hyperstreams::backend;
using hyperstreams::backend_testing::eventually;
using hyperstreams::backend_testing::process;
using hyperstreams::backend_testing::router_process;
using hyperstreams::backend_testing::temp_dir;

struct run_result {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs the CLI to completion (bounded) and collects stdout, stderr and the exit code.
run_result cli(std::vector<std::string> args, const std::string& stdin_text = {}) {
    static int counter = 0;
    const std::string err_file = (temp_dir() / ("cli-" + std::to_string(++counter) + ".err")).string();
    std::string in_file;
    if (!stdin_text.empty()) {
        in_file = (temp_dir() / ("cli-" + std::to_string(counter) + ".in")).string();
        std::ofstream(in_file) << stdin_text;
    }
    args.insert(args.begin(), HYPERSTREAMS_CLI_BIN);
    process p(args, err_file, in_file);
    run_result r;
    r.out = p.read_all(30s);
    r.code = p.wait(10s).value_or(-1);
    std::ifstream e(err_file);
    std::stringstream ss;
    ss << e.rdbuf();
    r.err = ss.str();
    return r;
}

// A loopback port whose connections the kernel accepts (the listen
// backlog) and nobody answers: a router that hangs.
class silent_port {
public:
    silent_port() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0)
            ADD_FAILURE() << "no silent port";
        port_ = ntohs(address.sin_port);
    }
    ~silent_port() {
        if (fd_ >= 0) ::close(fd_);
    }
    silent_port(const silent_port&) = delete;
    silent_port& operator=(const silent_port&) = delete;

    std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws"; }

private:
    int fd_ = -1;
    unsigned short port_ = 0;
};

class Cli : public ::testing::Test {
protected:
    void SetUp() override {
        hs::options o;
        o.url = router_.backend_url();
        o.name = "cli-peer";
        backend_ = std::make_unique<hs::client>(o);
        backend_->provide("svc", "echo", [](hs::request req, hs::reply reply) {
            if (req.bytes().empty())
                reply.send("(empty)");
            else
                reply.send(req.bytes());
        });
        backend_->provide("svc", "json", [](hs::request, hs::reply reply) {
            reply.send_json(R"({"b":[1,2],"a":"x"})");
        });
        backend_->provide("svc", "fail", [](hs::request, hs::reply reply) {
            reply.fail(hyperstreams::errc::invalid_argument, "no good");
        });
        backend_->provide("svc", "slow", [this](hs::request, hs::reply reply) {
            std::lock_guard lock(mu_);
            parked_.push_back(std::move(reply));  // answered never (until the test ends)
        });
        backend_->provide_stream("svc", "count", [](hs::request, hs::stream_writer out) {
            std::thread([out = std::move(out)]() mutable {
                for (int i = 1; i <= 5; ++i)
                    if (out.write(R"({"n":)" + std::to_string(i) + "}", 5s) != hs::write_status::ok) return;
                out.end();
            }).detach();
        });
        backend_->subscribe("cli.in", [this](const hs::message& m) {
            std::lock_guard lock(mu_);
            received_.push_back(std::string(m.data.text()));
        });
        backend_->on_direct([this](const hs::direct_message& m) {
            std::lock_guard lock(mu_);
            received_.push_back("direct:" + std::string(m.data.text()));
        });
        backend_->start();
        ASSERT_TRUE(backend_->wait_ready(10s));
        ws_ = router_.ws_url();
    }

    // The client's handler thread writes the members below: stop it before
    // they are destroyed.
    void TearDown() override { backend_.reset(); }

    std::vector<std::string> received() {
        std::lock_guard lock(mu_);
        return received_;
    }

    router_process router_;
    std::unique_ptr<hs::client> backend_;
    std::string ws_;
    std::mutex mu_;
    std::vector<hs::reply> parked_;
    std::vector<std::string> received_;
};

TEST(CliUsage, EveryCommandHasHelpAndUsageErrorsExitWithOne) {
    const run_result top = cli({"--help"});
    EXPECT_EQ(top.code, 0);
    EXPECT_NE(top.out.find("exit codes"), std::string::npos);
    for (const char* command :
         {"sub", "pub", "request", "stream", "send", "broadcast", "listen", "services", "presence", "subscribe-client"}) {
        const run_result r = cli({command, "--help"});
        EXPECT_EQ(r.code, 0) << command;
        EXPECT_NE(r.out.find(std::string("usage: hyperstreams ") + command), std::string::npos) << r.out;
    }
    EXPECT_EQ(cli({"bogus"}).code, 1);
    EXPECT_EQ(cli({"pub"}).code, 1);
    EXPECT_EQ(cli({"sub", "a.b", "--nope"}).code, 1);
    const run_result bad_json = cli({"--url", "ws://127.0.0.1:1/ws", "pub", "a.b", "{oops", "--json"});
    EXPECT_EQ(bad_json.code, 1);
    EXPECT_NE(bad_json.err.find("JSON"), std::string::npos);
    const run_result two_roles = cli({"--url", "ws://127.0.0.1:1/ws", "--url", "tcp://127.0.0.1:1", "services"});
    EXPECT_EQ(two_roles.code, 1);
    EXPECT_NE(two_roles.err.find("--url: 'ws://127.0.0.1:1/ws' and 'tcp://127.0.0.1:1' connect in different roles"),
              std::string::npos)
        << two_roles.err;
}

TEST(CliUsage, AnUnreachableRouterExitsWithTwo) {
    const run_result r = cli({"--url", "ws://127.0.0.1:1/ws", "--connect-timeout", "1", "services"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
}

TEST(CliUsage, TheCommandsTimeoutBoundsTheWaitForAnUnreachableRouter) {
    // Below the 5 s --connect-timeout: the command's --timeout ends the wait.
    const auto request_started = std::chrono::steady_clock::now();
    const run_result request = cli({"--url", "ws://127.0.0.1:1/ws", "request", "svc", "echo", "--timeout", "1000"});
    const auto request_took = std::chrono::steady_clock::now() - request_started;
    EXPECT_EQ(request.code, 2) << request.err;
    EXPECT_NE(request.err.find("cannot connect"), std::string::npos) << request.err;
    EXPECT_LT(request_took, 3s);

    const auto services_started = std::chrono::steady_clock::now();
    const run_result services = cli({"--url", "ws://127.0.0.1:1/ws", "services", "--timeout", "1"});
    const auto services_took = std::chrono::steady_clock::now() - services_started;
    EXPECT_EQ(services.code, 2) << services.err;
    EXPECT_LT(services_took, 3s);
}

// A new user's usual mistakes, each named: nothing on that port, the wrong
// path, and each transport's URL given the other transport's port.
TEST_F(Cli, AConnectionThatFailsSaysWhy) {
    const std::string zmq_port = router_.backend_url().substr(router_.backend_url().rfind(':') + 1);
    struct attempt {
        std::string url;
        std::string reason;
    };
    const std::vector<attempt> attempts = {
        {"ws://127.0.0.1:1/ws", "connection_refused: nothing accepts connections on 127.0.0.1:1"},
        {"tcp://127.0.0.1:1", "connection_refused: nothing accepts connections at tcp://127.0.0.1:1"},
        {"ws://" + router_.http_address() + "/nope", "upgrade_refused: HTTP 404 Not Found"},
        {"tcp://" + router_.http_address(), "transport_handshake_failed: no ZMTP handshake"},
        {"ws://127.0.0.1:" + zmq_port + "/ws", "transport_handshake_failed: no WebSocket handshake"},
    };
    for (const attempt& a : attempts) {
        const run_result r = cli({"--url", a.url, "--connect-timeout", "2", "services"});
        EXPECT_EQ(r.code, 2) << a.url;
        EXPECT_NE(r.err.find("cannot connect to " + a.url), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(a.reason), std::string::npos) << a.url << ": " << r.err;
    }
}

// --url repeated: the routers of a cluster, tried in turn. A closed port
// first costs one refused attempt and a short pause, then the live router
// serves the command; the other way round the first one serves it. Every
// command takes the list, as a frontend and as a backend.
TEST_F(Cli, RepeatedUrlsAreTriedInTurn) {
    const std::string closed = "ws://127.0.0.1:1/ws";
    const auto started = std::chrono::steady_clock::now();
    const run_result down_first = cli({"--url", closed, "--url", ws_, "request", "svc", "echo", "first down"});
    EXPECT_EQ(down_first.code, 0) << down_first.err;
    EXPECT_EQ(down_first.out, "first down\n");
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "not the backoff schedule of one dead router";

    const run_result down_last = cli({"--url", ws_, "--url", closed, "request", "svc", "echo", "last down"});
    EXPECT_EQ(down_last.code, 0) << down_last.err;
    EXPECT_EQ(down_last.out, "last down\n");

    const run_result backend = cli({"--url", "tcp://127.0.0.1:1", "--url", router_.backend_url(), "services"});
    EXPECT_EQ(backend.code, 0) << backend.err;
    EXPECT_NE(backend.out.find("svc (1 instance): "), std::string::npos) << backend.out;

    const run_result published = cli({"--url", closed, "--url", ws_, "pub", "cli.in", "listed", "--ack"});
    EXPECT_EQ(published.code, 0) << published.err;
    EXPECT_TRUE(eventually([&] {
        const auto got = received();
        return std::find(got.begin(), got.end(), "listed") != got.end();
    }));

    const run_result none = cli({"--url", closed, "--url", "ws://127.0.0.1:2/ws", "--connect-timeout", "1", "services"});
    EXPECT_EQ(none.code, 2);
    EXPECT_NE(none.err.find("cannot connect to " + closed + " or ws://127.0.0.1:2/ws within 1s"), std::string::npos)
        << none.err;
}

// pub --key: a repeat is acked with the first EPOCH:SEQ and not delivered
// again, other DATA under the key fails by name; --key and --ttl are
// checked before connecting.
TEST_F(Cli, PubWithAKeyIsDeliveredOnceAndBadOptionsAreUsageErrors) {
    const run_result first = cli({"--url", ws_, "pub", "cli.in", "keyed", "--ack", "--key", "k-1", "--ttl", "60"});
    ASSERT_EQ(first.code, 0) << first.err;
    const run_result again = cli({"--url", ws_, "pub", "cli.in", "keyed", "--ack", "--key", "k-1", "--ttl", "60"});
    EXPECT_EQ(again.code, 0) << again.err;
    EXPECT_EQ(again.out, first.out) << "the first publication's position";
    const run_result other = cli({"--url", ws_, "pub", "cli.in", "other", "--ack", "--key", "k-1"});
    EXPECT_EQ(other.code, 3);
    EXPECT_NE(other.err.find("key_reused"), std::string::npos) << other.err;
    const run_result after = cli({"--url", ws_, "pub", "cli.in", "after", "--ack"});
    ASSERT_EQ(after.code, 0) << after.err;
    ASSERT_TRUE(eventually([&] {
        const auto got = received();
        return std::find(got.begin(), got.end(), "after") != got.end();
    }));
    const auto got = received();
    EXPECT_EQ(std::count(got.begin(), got.end(), "keyed"), 1);

    for (const std::vector<std::string>& bad : {std::vector<std::string>{"--ttl", "0"}, {"--ttl", "1.5"},
                                               {"--key", "two words"}, {"--key", std::string(256, 'k')}}) {
        std::vector<std::string> args = {"--url", "ws://127.0.0.1:1/ws", "pub", "cli.in", "x"};
        args.insert(args.end(), bad.begin(), bad.end());
        const run_result r = cli(args);
        EXPECT_EQ(r.code, 1) << bad[0] << " " << bad[1] << ": " << r.err;
        EXPECT_NE(r.err.find(bad[0] + ":"), std::string::npos) << r.err;
    }
}

// A router that accepts and never answers costs its share of
// --connect-timeout, not all of it: the next --url still gets its turn.
TEST_F(Cli, AHangingRouterLeavesTheNextUrlItsShareOfTheConnectTimeout) {
    silent_port hanging;
    const run_result r =
        cli({"--url", hanging.ws_url(), "--url", ws_, "--connect-timeout", "6", "request", "svc", "echo", "after"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "after\n");
}

// wss:// with the router's self-signed certificate as --ca-file; without it
// the connection fails and says why.
TEST(CliTls, ConnectsOverWssTrustingTheCaFileAndSaysWhyWithoutIt) {
    const auto cert = hyperstreams::testing::make_self_signed_certificate();
    const std::string cert_file = hyperstreams::testing::write_temp_file("cli-router.crt", cert.cert_pem);
    const std::string key_file = hyperstreams::testing::write_temp_file("cli-router.key", cert.key_pem);
    router_process router({"--tls-cert-file", cert_file, "--tls-key-file", key_file});
    const std::string url = "wss://" + router.http_address() + "/ws";

    const run_result pub = cli({"--url", url, "--ca-file", cert_file, "pub", "tls.check", "over tls", "--ack"});
    EXPECT_EQ(pub.code, 0) << pub.err;
    EXPECT_NE(pub.out.find(":1\n"), std::string::npos) << "the router's EPOCH:SEQ: " << pub.out;

    // Long enough for a TLS handshake to fail under a loaded machine: the
    // reason printed is the last failed attempt's, recorded before the timeout.
    const run_result untrusted = cli({"--url", url, "--connect-timeout", "4", "pub", "tls.check", "x"});
    EXPECT_EQ(untrusted.code, 2) << untrusted.err;
    EXPECT_NE(untrusted.err.find("cannot connect to " + url), std::string::npos) << untrusted.err;
    EXPECT_NE(untrusted.err.find("transport_handshake_failed: TLS: the certificate of " + router.http_address() +
                                 " is not trusted: self-signed certificate"),
              std::string::npos)
        << untrusted.err;

    const run_result plain = cli({"--url", router.ws_url(), "--ca-file", cert_file, "pub", "tls.check", "x"});
    EXPECT_EQ(plain.code, 1) << "a CA file with ws:// is a mistake";
    EXPECT_NE(plain.err.find("--ca-file: only a wss:// URL uses a CA file"), std::string::npos) << plain.err;
    const run_result missing = cli({"--url", url, "--ca-file", cert_file + ".missing", "pub", "tls.check", "x"});
    EXPECT_EQ(missing.code, 1);
    EXPECT_NE(missing.err.find("--ca-file: cannot read '" + cert_file + ".missing'"), std::string::npos)
        << missing.err;
}

TEST(CliAccess, ARefusedTokenPrintsTheRoutersReason) {
    const std::string secret = (temp_dir() / "cli-secret").string();
    std::ofstream(secret) << "a-secret-of-at-least-thirty-two-bytes";
    router_process router({"--auth-mode", "tokens", "--auth-hs256-secret-file", secret});
    for (const std::string& url : {router.ws_url(), router.backend_url()}) {
        const run_result none = cli({"--url", url, "services"});
        EXPECT_EQ(none.code, 2) << url;
        EXPECT_NE(none.err.find("refused: unauthorized: a token is required"), std::string::npos) << none.err;
        const run_result bad = cli({"--url", url, "--token", "not.a.jwt", "services"});
        EXPECT_EQ(bad.code, 2) << url;
        EXPECT_NE(bad.err.find("refused: unauthorized: malformed token"), std::string::npos) << bad.err;
    }
}

TEST_F(Cli, RequestPrintsTheResponseAndNamesRemoteErrors) {
    const run_result ok = cli({"--url", ws_, "request", "svc", "json"});
    EXPECT_EQ(ok.code, 0) << ok.err;
    EXPECT_EQ(ok.out, "{\n  \"a\": \"x\",\n  \"b\": [\n    1,\n    2\n  ]\n}\n");

    const run_result echo = cli({"--url", ws_, "request", "svc", "echo", "-"}, "from stdin");
    EXPECT_EQ(echo.code, 0) << echo.err;
    EXPECT_EQ(echo.out, "from stdin\n");

    const run_result failed = cli({"--url", ws_, "request", "svc", "fail"});
    EXPECT_EQ(failed.code, 3);
    EXPECT_NE(failed.err.find("invalid_argument: no good"), std::string::npos) << failed.err;

    const run_result missing = cli({"--url", ws_, "request", "svc", "missing"});
    EXPECT_EQ(missing.code, 3);
    EXPECT_NE(missing.err.find("no_such_service"), std::string::npos) << missing.err;

    // --timeout bounds the connecting too: long enough for it, never for "slow".
    const run_result slow = cli({"--url", ws_, "request", "svc", "slow", "--timeout", "2000"});
    EXPECT_EQ(slow.code, 4);
    EXPECT_NE(slow.err.find("deadline_exceeded"), std::string::npos) << slow.err;

    // As a backend over ZeroMQ.
    const run_result zmq = cli({"--url", router_.backend_url(), "request", "svc", "echo", "zmq"});
    EXPECT_EQ(zmq.code, 0) << zmq.err;
    EXPECT_EQ(zmq.out, "zmq\n");
}

TEST_F(Cli, SubPrintsOneLinePerMessageAndTimesOut) {
    process sub({HYPERSTREAMS_CLI_BIN, "--url", ws_, "sub", "cli.out.*", "--count", "2", "--timeout", "20"},
                (temp_dir() / "sub.err").string());
    std::vector<std::string> lines;
    std::thread reader([&] {
        while (auto line = sub.read_line(25s)) lines.push_back(*line);
    });
    // Publish until the subscription is in place and two messages got through.
    int n = 0;
    eventually([&] {
        backend_->publish("cli.out.a", hs::json(R"({"n":)" + std::to_string(++n) + "}"));
        std::this_thread::sleep_for(50ms);
        return !sub.running();
    }, 20s);
    reader.join();
    EXPECT_EQ(sub.wait(5s).value_or(-1), 0);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].rfind("cli.out.a ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(R"({"n":)"), std::string::npos) << lines[0];

    const run_result quiet = cli({"--url", ws_, "sub", "nothing.here", "--count", "1", "--timeout", "3"});
    EXPECT_EQ(quiet.code, 4);
}

TEST_F(Cli, SubSinceResumesAfterAPrintedPosition) {
    std::vector<std::string> positions;
    for (int i = 1; i <= 3; ++i) {
        const run_result pub = cli({"--url", ws_, "pub", "cli.hist", "m" + std::to_string(i), "--ack"});
        ASSERT_EQ(pub.code, 0) << pub.err;
        positions.push_back(pub.out.substr(0, pub.out.find_first_of("\r\n")));
    }
    const run_result sub = cli({"--url", ws_, "sub", "cli.hist", "--since", positions[0], "--count", "2",
                                "--timeout", "10"});
    EXPECT_EQ(sub.code, 0) << sub.err;
    EXPECT_EQ(sub.out.find(" m1"), std::string::npos) << sub.out;
    EXPECT_NE(sub.out.find(" m2"), std::string::npos) << sub.out;
    EXPECT_NE(sub.out.find(" m3"), std::string::npos) << sub.out;

    EXPECT_EQ(cli({"--url", ws_, "sub", "cli.*", "--since", positions[0]}).code, 1) << "wildcards cannot resume";
    EXPECT_EQ(cli({"--url", ws_, "sub", "cli.hist", "--since", "seven"}).code, 1);
}

TEST(CliLatest, SubLatestPrintsEveryMatchingChannelsLastMessageFirst) {
    router_process router({"--channels-namespaces", R"([{"pattern": "state.>", "latest": true}])"});
    const std::string ws = router.ws_url();
    for (const char* machine : {"state.m1", "state.m2"})
        for (const char* value : {"old", "now"})
            ASSERT_EQ(cli({"--url", ws, "pub", machine, std::string(machine) + "-" + value, "--ack"}).code, 0);
    const run_result sub = cli({"--url", ws, "sub", "state.*", "--latest", "--count", "2", "--timeout", "10"});
    EXPECT_EQ(sub.code, 0) << sub.err;
    EXPECT_NE(sub.out.find("state.m1 "), std::string::npos) << sub.out;
    EXPECT_NE(sub.out.find(":2 state.m1-now"), std::string::npos) << sub.out;
    EXPECT_NE(sub.out.find(":2 state.m2-now"), std::string::npos) << sub.out;
    EXPECT_EQ(sub.out.find("-old"), std::string::npos) << sub.out;

    const run_result refused = cli({"--url", ws, "sub", "other.*", "--latest", "--timeout", "10"});
    EXPECT_EQ(refused.code, 3);
    EXPECT_NE(refused.err.find("not_enabled"), std::string::npos) << refused.err;
}

TEST_F(Cli, ABadChannelOrPatternSaysWhatIsWrongWithIt) {
    const run_result dots = cli({"--url", ws_, "pub", "factory..telemetry", "x"});
    EXPECT_EQ(dots.code, 1);
    EXPECT_NE(dots.err.find("invalid_argument: the channel 'factory..telemetry' has an empty token"),
              std::string::npos) << dots.err;

    const run_result wildcard = cli({"--url", ws_, "pub", "factory.*.telemetry", "x"});
    EXPECT_EQ(wildcard.code, 1);
    EXPECT_NE(wildcard.err.find("has a wildcard"), std::string::npos) << wildcard.err;

    // (The pattern is checked once connected, which --timeout bounds: 10 s
    // costs nothing, the command exits as soon as it is refused.)
    const run_result pattern = cli({"--url", ws_, "sub", "factory.L1*", "--timeout", "10"});
    EXPECT_EQ(pattern.code, 1);
    EXPECT_NE(pattern.err.find("the pattern 'factory.L1*' has '*' or '>' inside a token"), std::string::npos)
        << pattern.err;
}

TEST_F(Cli, BinaryPayloadsArePrintedAsHex) {
    process sub({HYPERSTREAMS_CLI_BIN, "--url", ws_, "sub", "cli.bin", "--count", "1", "--timeout", "20"},
                (temp_dir() / "hex.err").string());
    std::string line;
    std::thread reader([&] {
        if (auto l = sub.read_line(25s)) line = *l;
    });
    const std::vector<std::uint8_t> bytes{0x00, 0x01, 0xfe, 0xff};
    eventually([&] {
        backend_->publish("cli.bin", bytes);
        std::this_thread::sleep_for(50ms);
        return !sub.running();
    }, 20s);
    reader.join();
    EXPECT_NE(line.find(" 0001feff"), std::string::npos) << line;
}

TEST_F(Cli, PubAndSendReachTheBackend) {
    const run_result pub = cli({"--url", ws_, "pub", "cli.in", R"({"v":1})", "--json", "--ack"});
    EXPECT_EQ(pub.code, 0) << pub.err;
    EXPECT_NE(pub.out.find(':'), std::string::npos) << pub.out;  // EPOCH:SEQ
    EXPECT_TRUE(eventually([&] {
        for (const auto& r : received())
            if (r == R"({"v":1})") return true;
        return false;
    }));

    const run_result send = cli({"--url", ws_, "send", backend_->address(), "psst", "--ack"});
    EXPECT_EQ(send.code, 0) << send.err;
    EXPECT_TRUE(eventually([&] {
        for (const auto& r : received())
            if (r == "direct:psst") return true;
        return false;
    }));

    const run_result nobody = cli({"--url", ws_, "send", "nobody-here", "x", "--ack"});
    EXPECT_EQ(nobody.code, 3) << nobody.out;
    EXPECT_NE(nobody.err.find("no_such_address"), std::string::npos) << nobody.err;
}

TEST_F(Cli, BroadcastReachesAListenerThatAsksForBroadcasts) {
    process listener({HYPERSTREAMS_CLI_BIN, "--url", ws_, "listen", "--broadcasts", "--count", "2", "--timeout", "20"},
                     (temp_dir() / "listen.err").string());
    const auto first = listener.read_line(10s);
    ASSERT_TRUE(first && first->rfind("address ", 0) == 0) << first.value_or("(nothing)");
    const std::string address = first->substr(8);

    const run_result b = cli({"--url", ws_, "--name", "caster", "broadcast", "shift change", "--ack"});
    EXPECT_EQ(b.code, 0) << b.err;
    const auto broadcast = listener.read_line(10s);
    ASSERT_TRUE(broadcast);
    EXPECT_EQ(broadcast->rfind("broadcast ", 0), 0u) << *broadcast;
    EXPECT_NE(broadcast->find(" shift change"), std::string::npos) << *broadcast;

    EXPECT_EQ(cli({"--url", ws_, "send", address, "psst", "--ack"}).code, 0);
    const auto direct = listener.read_line(10s);
    ASSERT_TRUE(direct);
    EXPECT_EQ(direct->rfind("broadcast ", 0), std::string::npos) << "a direct message keeps its line: " << *direct;
    EXPECT_NE(direct->find(" psst"), std::string::npos) << *direct;
    EXPECT_EQ(listener.wait(10s).value_or(-1), 0);
}

TEST_F(Cli, StreamPrintsItemsUntilTheEndOrTheCount) {
    const run_result all = cli({"--url", ws_, "stream", "svc", "count", "--credit", "2"});
    EXPECT_EQ(all.code, 0) << all.err;
    EXPECT_EQ(all.out, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n");

    const run_result some = cli({"--url", ws_, "stream", "svc", "count", "--count", "2"});
    EXPECT_EQ(some.code, 0) << some.err;
    EXPECT_EQ(some.out, "{\"n\":1}\n{\"n\":2}\n");
}

TEST_F(Cli, ServicesListsTheRegistry) {
    const run_result r = cli({"--url", ws_, "services"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("svc (1 instance):"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("count*"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("echo"), std::string::npos) << r.out;
}

// A router with presence on pres.>: the CLI lists the members of a channel,
// as lines and as JSON, and names the error where presence is off.
TEST(CliPresence, ListsWhoIsSubscribed) {
    router_process router({"--channels-namespaces", R"([{"pattern": "pres.>", "presence": true}])"});
    hs::options o;
    o.url = router.backend_url();
    o.name = "pres-member";
    hs::client member(o);
    member.subscribe("pres.line", [](const hs::message&) {});
    member.start();
    ASSERT_TRUE(member.wait_ready(10s));
    const std::string ws = router.ws_url();
    run_result r;
    ASSERT_TRUE(eventually([&] {
        r = cli({"--url", ws, "presence", "pres.line"});
        return r.code == 0 && r.out.find("count 1") != std::string::npos;
    })) << r.out << r.err;
    EXPECT_NE(r.out.find(member.address() + " - pres-member"), std::string::npos) << r.out;

    const run_result j = cli({"--url", ws, "presence", "pres.line", "--json"});
    EXPECT_EQ(j.code, 0) << j.err;
    const auto doc = nlohmann::json::parse(j.out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << j.out;
    EXPECT_EQ(doc["count"], 1);
    EXPECT_EQ(doc["members"][0]["address"], member.address());
    EXPECT_EQ(doc["members"][0]["name"], "pres-member");

    const run_result off = cli({"--url", ws, "presence", "office.line"});
    EXPECT_EQ(off.code, 3);
    EXPECT_NE(off.err.find("not_enabled"), std::string::npos) << off.err;
    const run_result pattern = cli({"--url", ws, "presence", "pres.*"});
    EXPECT_EQ(pattern.code, 1) << "a pattern is a usage error";
}

// The CLI as a backend subscribes a client by its address, and every
// refusal is its code on stderr with exit 3.
TEST(CliSubscribeClient, SubscribesAndUnsubscribesAClientByItsAddress) {
    router_process router;
    hs::options o;
    o.url = router.backend_url();
    o.name = "target";
    hs::client target(o);
    target.start();
    ASSERT_TRUE(target.wait_ready(10s));
    const std::string backend = router.backend_url();
    const std::string address = target.address();
    const run_result made = cli({"--url", backend, "subscribe-client", address, "orders.>"});
    EXPECT_EQ(made.code, 0) << made.err;
    const run_result twice = cli({"--url", backend, "subscribe-client", address, "orders.>"});
    EXPECT_EQ(twice.code, 3);
    EXPECT_NE(twice.err.find("already_subscribed"), std::string::npos) << twice.err;
    const run_result ended = cli({"--url", backend, "subscribe-client", address, "orders.>", "--unsubscribe"});
    EXPECT_EQ(ended.code, 0) << ended.err;
    const run_result gone = cli({"--url", backend, "subscribe-client", address, "orders.>", "--unsubscribe"});
    EXPECT_EQ(gone.code, 3);
    EXPECT_NE(gone.err.find("not_subscribed"), std::string::npos) << gone.err;
    const run_result nobody = cli({"--url", backend, "subscribe-client", address + "0", "orders.>"});
    EXPECT_EQ(nobody.code, 3);
    EXPECT_NE(nobody.err.find("no_such_address"), std::string::npos) << nobody.err;
    const run_result frontend = cli({"--url", router.ws_url(), "subscribe-client", address, "orders.>"});
    EXPECT_EQ(frontend.code, 3) << "only a backend may";
    EXPECT_NE(frontend.err.find("wrong_role"), std::string::npos) << frontend.err;
    EXPECT_EQ(cli({"--url", backend, "subscribe-client", address, "orders..x"}).code, 1) << "a usage error";
}

}  // namespace
