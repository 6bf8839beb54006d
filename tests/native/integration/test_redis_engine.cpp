// redis_engine against real redis-server processes: one server, then a
// three-master Redis Cluster made with redis-cli. Servers are killed,
// frozen (SIGSTOP) and restarted on their ports; slots are moved while the
// engine runs. TLS (rediss://) with certificates made at test time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <array>
#include <condition_variable>
#include <fstream>
#include <sstream>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "redis_engine.hpp"
#include "redis_process.hpp"
#include "redis_wire.hpp"
#include "token_maker.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::eventually;
using testing::redis_call;
using testing::redis_calls;
using testing::redis_server;
using testing::replication_field;
using testing::numsub;
using testing::reply_text;
using testing::shardnumsub;

struct message {
    std::string pattern;
    std::string channel;
    std::string payload;
};

redis_options quick_options(std::vector<std::string> addresses) {
    redis_options o;
    o.addresses = std::move(addresses);
    o.connect_timeout = 1000ms;
    o.command_timeout = 2000ms;
    o.backoff_min = 20ms;
    o.backoff_max = 200ms;
    return o;
}

// The engine on a thread of its own, and what its handlers were told.
class engine_host {
public:
    // `scripts` are loaded (load_script) before the engine starts.
    explicit engine_host(redis_options options, const std::vector<std::string>& scripts = {})
        : work_(io_.get_executor()),
          engine_(io_, std::move(options),
                  {[this](std::string_view p, std::string_view c, std::string_view m) {
                       record([&] { messages_.push_back({std::string(p), std::string(c), std::string(m)}); });
                   },
                   [this](bool up, std::string_view why) {
                       record([&] { states_.emplace_back(up, std::string(why)); });
                   },
                   {}}),
          thread_([this] { io_.run(); }) {
        for (const std::string& s : scripts) scripts_.push_back(engine_.load_script(s));
        engine_.start();
    }

    const redis_script_ref& script(std::size_t i) const { return scripts_.at(i); }

    void run(std::string key, const redis_script_ref& s, std::vector<std::string> args,
             std::function<void(redis_result)> done, redis_wait wait = {}) {
        const std::vector<std::string_view> views(args.begin(), args.end());
        engine_.run_script(std::move(key), s, views, std::move(done), wait);
    }

    ~engine_host() { stop(); }

    redis_engine& engine() { return engine_; }

    // Stops the engine on its thread, then the thread.
    void stop() {
        if (!thread_.joinable()) return;
        std::promise<void> done;
        asio::post(io_, [&] {
            engine_.stop();
            done.set_value();
        });
        done.get_future().wait_for(5s);
        work_.reset();
        io_.stop();
        thread_.join();
    }

    void send(std::string key, std::vector<std::string> args, std::function<void(redis_result)> done) {
        engine_.command(std::move(key), std::move(args), std::move(done));
    }

    redis_result call(std::string key, std::vector<std::string> args) {
        return completed("a command", [&](redis_engine::completion done) {
            engine_.command(std::move(key), std::move(args), std::move(done));
        });
    }

    // publish_sharded's count, or -1 when it did not answer an integer.
    long long publish_sharded(std::string channel, std::string message) {
        const redis_result r = completed("a publish", [&](redis_engine::completion done) {
            engine_.publish_sharded(std::move(channel), std::move(message), std::move(done));
        });
        if (r.status != redis_status::ok || r.reply->type != REDIS_REPLY_INTEGER) {
            ADD_FAILURE() << redis_status_name(r.status) << " " << r.detail << " " << reply_text(r.reply);
            return -1;
        }
        return r.reply->integer;
    }

    // On the engine's thread.
    bool sharded_pubsub() {
        std::promise<bool> p;
        asio::post(io_, [&] { p.set_value(engine_.sharded_pubsub()); });
        return p.get_future().get();
    }

    // The text of an ok reply, or "<status>: detail".
    std::string text(std::string key, std::vector<std::string> args) {
        const redis_result r = call(std::move(key), std::move(args));
        if (r.status != redis_status::ok) return std::string(redis_status_name(r.status)) + ": " + r.detail;
        return reply_text(r.reply);
    }

    // Until the last on_state said `up`; its reason.
    std::optional<std::string> wait_state(bool up, std::chrono::milliseconds timeout = 10s) {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, timeout, [&] { return !states_.empty() && states_.back().first == up; }))
            return std::nullopt;
        return states_.back().second;
    }

    // Until an on_state after the first `from` said down with `reason` in
    // its text (a reconnect may have said up again since).
    bool wait_down_with(const std::string& reason, std::size_t from = 0, std::chrono::milliseconds timeout = 10s) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] {
            return std::any_of(states_.begin() + static_cast<std::ptrdiff_t>(std::min(from, states_.size())),
                               states_.end(), [&](const std::pair<bool, std::string>& s) {
                                   return !s.first && s.second.find(reason) != std::string::npos;
                               });
        });
    }

    std::vector<std::pair<bool, std::string>> states() {
        std::lock_guard lock(mu_);
        return states_;
    }

    bool wait_messages(std::size_t count, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return messages_.size() >= count; });
    }

    std::vector<message> messages() {
        std::lock_guard lock(mu_);
        return messages_;
    }

private:
    // What `start` (given the completion) asked of the engine, once
    // completed; a failure of the test when it is not within 10 s.
    template <typename Start>
    redis_result completed(const char* what, Start start) {
        auto promise = std::make_shared<std::promise<redis_result>>();
        auto future = promise->get_future();
        start([promise](redis_result r) { promise->set_value(std::move(r)); });
        if (future.wait_for(10s) != std::future_status::ready) {
            ADD_FAILURE() << what << " did not complete";
            return {redis_status::stopped, nullptr, "no completion"};
        }
        return future.get();
    }

    template <typename Fn>
    void record(Fn fn) {
        {
            std::lock_guard lock(mu_);
            fn();
        }
        cv_.notify_all();
    }

    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<message> messages_;
    std::vector<std::pair<bool, std::string>> states_;
    redis_engine engine_;
    std::vector<redis_script_ref> scripts_;
    std::thread thread_;
};

// Bytes the kernel holds, received and not yet read, on the sockets
// listening side of 127.0.0.1:`port` (IPv4, from /proc/net/tcp): what a
// frozen server was sent.
std::size_t unread_by_server(std::uint16_t port) {
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);
    std::size_t total = 0;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues;
        fields >> slot >> local >> remote >> state >> queues;
        const std::size_t colon = local.find(':');
        if (colon == std::string::npos || std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
        total += std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16);
    }
    return total;
}

// Completions kept in the order they came.
struct answers {
    std::mutex mu;
    std::vector<std::pair<std::string, std::string>> got;  // what, reply text (or status)

    std::function<void(redis_result)> note(std::string what) {
        return [this, what](redis_result r) {
            std::lock_guard lock(mu);
            got.emplace_back(what, r.status == redis_status::ok ? reply_text(r.reply)
                                                                : std::string(redis_status_name(r.status)));
        };
    }
    bool wait(std::size_t n) {
        return eventually([&] {
            std::lock_guard lock(mu);
            return got.size() >= n;
        }, 10s);
    }
    std::string of(const std::string& what) {
        std::lock_guard lock(mu);
        for (const auto& [w, text] : got)
            if (w == what) return text;
        return "(none)";
    }
};

long long numpat(std::uint16_t port) {
    const redis_reply r = redis_call(port, {"PUBSUB", "NUMPAT"});
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

// A self-signed certificate (`names`: its subjectAltName) and its key, in
// files: Redis shows it and trusts it in clients (its CA file), and so
// does the engine when a test says so.
struct tls_files {
    std::string cert;
    std::string key;
};
tls_files write_certificate(const std::string& name, const std::string& names = "IP:127.0.0.1,DNS:localhost") {
    const testing::certificate c = testing::make_self_signed_certificate(names);
    return {testing::write_temp_file(name + ".crt", c.cert_pem), testing::write_temp_file(name + ".key", c.key_pem)};
}

// The clients of the server at `port` (its plain port) connected to its
// port `local_port` (CLIENT LIST's laddr), but the one that asks.
long long clients_on(std::uint16_t port, std::uint16_t local_port) {
    std::istringstream lines(reply_text(redis_call(port, {"CLIENT", "LIST"})));
    const std::string laddr = "laddr=127.0.0.1:" + std::to_string(local_port) + " ";
    long long n = 0;
    for (std::string line; std::getline(lines, line);)
        if (line.find(laddr) != std::string::npos && line.find("cmd=client|list") == std::string::npos) ++n;
    return n;
}

long long blocked_clients(std::uint16_t port) {
    const std::string info = reply_text(redis_call(port, {"INFO", "clients"}));
    const std::size_t at = info.find("blocked_clients:");
    return at == std::string::npos ? -1 : std::stoll(info.substr(at + 16));
}

// ---- one server ----

TEST(RedisEngineSingle, CommandsAnswerInTheOrderTheyWereSent) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    engine_host host(quick_options({"redis://" + server.address()}));
    // Before the engine knows whether this is a cluster: the command waits.
    EXPECT_EQ(host.text("k", {"SET", "k", "v"}), "OK");
    ASSERT_TRUE(host.wait_state(true));
    EXPECT_EQ(host.text("k", {"GET", "k"}), "v");

    const std::string binary = std::string("a\0\r\nb", 5);
    EXPECT_EQ(host.text(binary, {"SET", binary, binary}), "OK");
    EXPECT_EQ(host.text(binary, {"GET", binary}), binary);
    EXPECT_EQ(reply_text(redis_call(server.port(), {"GET", binary})), binary);

    // Pipelined: all sent before the first answer, answered in order.
    constexpr int count = 2000;
    std::mutex mu;
    std::vector<long long> seen;
    std::promise<void> all;
    for (int i = 0; i < count; ++i)
        host.send("counter", {"INCR", "counter"}, [&](redis_result r) {
            std::lock_guard lock(mu);
            const bool integer = r.status == redis_status::ok && r.reply->type == REDIS_REPLY_INTEGER;
            seen.push_back(integer ? r.reply->integer : -1);
            if (seen.size() == count) all.set_value();
        });
    ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
    for (int i = 0; i < count; ++i) ASSERT_EQ(seen[i], i + 1) << "answer " << i;

    // An error reply is an answer; an empty command is refused here.
    const redis_result wrong = host.call("k", {"INCR", "k"});
    ASSERT_EQ(wrong.status, redis_status::ok);
    EXPECT_TRUE(redis_is_error(*wrong.reply));
    const redis_result empty = host.call("k", {});
    ASSERT_EQ(empty.status, redis_status::ok);
    EXPECT_EQ(redis_text(*empty.reply), "ERR empty command");

    const redis_stats st = host.engine().stats();
    EXPECT_TRUE(st.up);
    EXPECT_EQ(st.nodes, 1u);
    EXPECT_EQ(st.commands, count + 6u);
    EXPECT_EQ(st.replies, count + 6u);
    EXPECT_EQ(st.errors, 2u);
    EXPECT_EQ(st.redirects, 0u);
    EXPECT_GT(st.rtt_ewma_ms, 0);
    EXPECT_EQ(host.states(), (std::vector<std::pair<bool, std::string>>{{true, ""}}));
}

TEST(RedisEngineSingle, MessagesOfChannelsAndPatternsWithCountedSubscriptions) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    engine_host host(quick_options({server.address()}));
    ASSERT_TRUE(host.wait_state(true));
    host.engine().subscribe("news");
    host.engine().subscribe("news");
    host.engine().subscribe("marker");
    host.engine().psubscribe("news.*");
    ASSERT_TRUE(eventually([&] { return numsub(server.port(), "news") == 1 && numpat(server.port()) == 1; }, 5s));

    EXPECT_EQ(host.text("", {"PUBLISH", "news", std::string("a\0b", 3)}), "1");
    EXPECT_EQ(host.text("", {"PUBLISH", "news.sport", "goal"}), "1");
    ASSERT_TRUE(host.wait_messages(2));
    auto got = host.messages();
    EXPECT_EQ(got[0].pattern, "");
    EXPECT_EQ(got[0].channel, "news");
    EXPECT_EQ(got[0].payload, std::string("a\0b", 3));
    EXPECT_EQ(got[1].pattern, "news.*");
    EXPECT_EQ(got[1].channel, "news.sport");
    EXPECT_EQ(got[1].payload, "goal");

    // Subscribed twice: still subscribed after one unsubscribe.
    host.engine().unsubscribe("news");
    host.engine().punsubscribe("news.*");
    ASSERT_TRUE(eventually([&] { return numpat(server.port()) == 0; }, 5s));
    EXPECT_EQ(numsub(server.port(), "news"), 1);
    host.engine().unsubscribe("news");
    ASSERT_TRUE(eventually([&] { return numsub(server.port(), "news") == 0; }, 5s));
    host.text("", {"PUBLISH", "news", "unheard"});
    host.text("", {"PUBLISH", "news.sport", "unheard"});
    host.text("", {"PUBLISH", "marker", "last"});
    // One connection delivers in order: once "marker" is in, nothing else came.
    ASSERT_TRUE(host.wait_messages(3));
    got = host.messages();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[2].channel, "marker");
    EXPECT_EQ(host.engine().stats().messages, 3u);
}

// A server that wants credentials: an ACL user, and a password for the
// default user (requirepass). An engine given either authenticates each of
// its connections before anything else on it (the scripts it loads, its
// commands, its subscriber) and works as with none; one given a wrong
// password is down with Redis's WRONGPASS, one given none with its NOAUTH,
// each in its reason.
TEST(RedisEngineSingle, CredentialsGoFirstOnEveryConnectionAndARefusalIsNamed) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    ASSERT_TRUE(testing::require_credentials(server.port()));
    const std::vector<std::pair<std::string, std::string>> credentials = {{"router", "router-pass"},
                                                                          {"", "default-pass"}};
    for (const auto& [user, password] : credentials) {
        SCOPED_TRACE("user '" + user + "'");
        redis_options options = quick_options({server.address()});
        options.user = user;
        options.password = password;
        engine_host host(options, {"return ARGV[1]"});
        ASSERT_TRUE(host.wait_state(true));
        EXPECT_EQ(host.text("k", {"SET", "k", user}), "OK");
        EXPECT_EQ(host.text("k", {"GET", "k"}), user);
        std::promise<std::string> ran;
        host.run("k", host.script(0), {"0", "loaded"}, [&](redis_result r) {
            ran.set_value(r.status == redis_status::ok ? reply_text(r.reply) : std::string(r.detail));
        });
        auto answer = ran.get_future();
        ASSERT_EQ(answer.wait_for(10s), std::future_status::ready);
        EXPECT_EQ(answer.get(), "loaded") << "the script was loaded after AUTH";
        host.engine().subscribe("news");
        ASSERT_TRUE(eventually([&] { return host.text("", {"PUBLISH", "news", "hello"}) != "0"; }, 5s))
            << "the subscriber authenticated and subscribed";
        ASSERT_TRUE(host.wait_messages(1));
        EXPECT_EQ(host.messages().front().payload, "hello");
    }
    {
        redis_options options = quick_options({server.address()});
        options.user = "router";
        options.password = "not-the-password";
        engine_host host(options);
        EXPECT_TRUE(host.wait_down_with("WRONGPASS")) << ::testing::PrintToString(host.states());
        EXPECT_EQ(host.call("k", {"GET", "k"}).status, redis_status::unreachable);
    }
    {
        engine_host host(quick_options({server.address()}));
        EXPECT_TRUE(host.wait_down_with("NOAUTH")) << ::testing::PrintToString(host.states());
        EXPECT_FALSE(host.engine().stats().up);
    }
}

// rediss://: every connection of the engine (its commands, the scripts it
// loads, its subscriber) is TLS, to a server that asks for the client's
// certificate as Redis does by default. Each way it can fail is named in
// the engine's reason: Redis's certificate from a CA the engine does not
// trust, or naming another host; no client certificate; a port that does
// not speak TLS; and options that cannot be used at all (a CA file that
// cannot be read, addresses that mix redis:// and rediss://), which never
// connect.
TEST(RedisEngineSingle, TlsCarriesEveryConnectionAndEachRefusalIsNamed) {
    const tls_files redis_cert = write_certificate("redis");
    redis_server server(false, testing::redis_tls_setup{redis_cert.cert, redis_cert.key, redis_cert.cert, true});
    ASSERT_TRUE(server.ready());
    const auto tls_options = [&](redis_tls_options tls) {
        redis_options options = quick_options({server.tls_address()});
        options.tls = std::move(tls);
        return options;
    };
    {
        engine_host host(tls_options({redis_cert.cert, redis_cert.cert, redis_cert.key}), {"return ARGV[1]"});
        ASSERT_TRUE(host.wait_state(true));
        EXPECT_EQ(host.engine().setup_error(), "");
        EXPECT_EQ(host.text("k", {"SET", "k", std::string("over\0tls", 8)}), "OK");
        EXPECT_EQ(host.text("k", {"GET", "k"}), std::string("over\0tls", 8));
        std::promise<std::string> ran;
        host.run("k", host.script(0), {"0", "loaded"}, [&](redis_result r) {
            ran.set_value(r.status == redis_status::ok ? reply_text(r.reply) : std::string(r.detail));
        });
        auto answer = ran.get_future();
        ASSERT_EQ(answer.wait_for(10s), std::future_status::ready);
        EXPECT_EQ(answer.get(), "loaded");
        host.engine().subscribe("news");
        // Published on the plain port: the message reaches the subscriber
        // over TLS, a large one whole.
        ASSERT_TRUE(eventually([&] { return numsub(server.port(), "news") == 1; }, 5s));
        const std::string large(300 * 1024, 'x');
        EXPECT_EQ(reply_text(redis_call(server.port(), {"PUBLISH", "news", "hello"})), "1");
        EXPECT_EQ(reply_text(redis_call(server.port(), {"PUBLISH", "news", large})), "1");
        ASSERT_TRUE(host.wait_messages(2));
        EXPECT_EQ(host.messages()[0].payload, "hello");
        EXPECT_EQ(host.messages()[1].payload, large);
        // Both of the engine's connections are on the TLS port.
        EXPECT_EQ(clients_on(server.port(), server.tls_port()), 2);
    }
    const tls_files stranger = write_certificate("stranger");
    {
        engine_host host(tls_options({stranger.cert, redis_cert.cert, redis_cert.key}));
        EXPECT_TRUE(host.wait_down_with("TLS: the certificate is not trusted: self-signed certificate"))
            << ::testing::PrintToString(host.states());
        EXPECT_EQ(host.call("k", {"GET", "k"}).status, redis_status::unreachable);
    }
    {
        // Redis wants the client's certificate, and gets none.
        engine_host host(tls_options({redis_cert.cert, "", ""}));
        EXPECT_TRUE(host.wait_down_with("certificate required")) << ::testing::PrintToString(host.states());
    }
    {
        const tls_files named = write_certificate("named", "DNS:redis.example");
        redis_server elsewhere(false, testing::redis_tls_setup{named.cert, named.key, named.cert, false});
        ASSERT_TRUE(elsewhere.ready());
        redis_options options = quick_options({elsewhere.tls_address()});
        options.tls = {named.cert, "", ""};
        engine_host host(options);
        EXPECT_TRUE(host.wait_down_with("TLS: the certificate is not trusted: IP address mismatch"))
            << ::testing::PrintToString(host.states());
    }
    {
        redis_options options = quick_options({"rediss://" + server.address()});
        options.tls = {redis_cert.cert, redis_cert.cert, redis_cert.key};
        engine_host host(options);
        EXPECT_TRUE(host.wait_down_with("no TLS handshake within 1000 ms: not a TLS port (redis://)?"))
            << ::testing::PrintToString(host.states());
    }
    {
        engine_host host(tls_options({"/nonexistent/ca.pem", "", ""}));
        EXPECT_NE(host.engine().setup_error().find("cannot load the CA file /nonexistent/ca.pem"), std::string::npos)
            << host.engine().setup_error();
        EXPECT_TRUE(host.wait_down_with("cannot load the CA file")) << ::testing::PrintToString(host.states());
        EXPECT_EQ(clients_on(server.port(), server.tls_port()), 0);
    }
    {
        engine_host host(quick_options({server.tls_address(), server.address()}));
        EXPECT_TRUE(host.wait_down_with("mix redis:// and rediss://")) << ::testing::PrintToString(host.states());
    }
}

// after_subscribed runs once the subscriptions asked for before it are in
// force in Redis, and at once when none was asked for since the last were.
// The server is paused (CLIENT PAUSE ALL: its clients' commands wait) so
// that a SUBSCRIBE sent is not yet in force.
TEST(RedisEngineSingle, AfterSubscribedRunsOnceTheSubscriptionsBeforeItAreInForce) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    engine_host host(quick_options({server.address()}));
    ASSERT_TRUE(host.wait_state(true));
    using clock = std::chrono::steady_clock;
    // Shorter than the engine's PING timeout (2 s), which would take the
    // subscriber connection down.
    const auto pause = 800ms;

    auto paused_at = clock::now();
    ASSERT_EQ(reply_text(redis_call(server.port(), {"CLIENT", "PAUSE", "800", "ALL"})), "OK");
    std::promise<std::pair<clock::duration, long long>> subscribed;
    host.engine().subscribe("fresh");
    host.engine().after_subscribed(
        [&] { subscribed.set_value({clock::now() - paused_at, numsub(server.port(), "fresh")}); });
    auto ran = subscribed.get_future();
    ASSERT_EQ(ran.wait_for(10s), std::future_status::ready);
    const auto [after, subscribers] = ran.get();
    EXPECT_GE(after, pause) << "ran before the paused server took the SUBSCRIBE";
    EXPECT_EQ(subscribers, 1);

    // Nothing asked for since: at once, paused or not (timed from the
    // pause's answer: the pause began before it).
    ASSERT_EQ(reply_text(redis_call(server.port(), {"CLIENT", "PAUSE", "800", "ALL"})), "OK");
    paused_at = clock::now();
    std::promise<clock::duration> at_once;
    host.engine().after_subscribed([&] { at_once.set_value(clock::now() - paused_at); });
    auto ran_at_once = at_once.get_future();
    ASSERT_EQ(ran_at_once.wait_for(10s), std::future_status::ready);
    EXPECT_LT(ran_at_once.get(), pause) << "waited for the server with nothing to confirm";
}

TEST(RedisEngineSingle, ServerKilledThenRestartedOnItsPort) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    redis_options options = quick_options({server.address()});
    options.command_timeout = 5000ms;
    engine_host host(options);
    ASSERT_TRUE(host.wait_state(true));
    host.engine().subscribe("ch");
    ASSERT_TRUE(eventually([&] { return numsub(server.port(), "ch") == 1; }, 5s));

    // A command on the wire when the server dies: it may have run.
    std::promise<redis_result> blocked;
    host.send("list", {"BLPOP", "list", "0"}, [&](redis_result r) { blocked.set_value(std::move(r)); });
    ASSERT_TRUE(eventually([&] { return blocked_clients(server.port()) == 1; }, 5s));
    server.kill();
    auto lost = blocked.get_future();
    ASSERT_EQ(lost.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(lost.get().status, redis_status::lost);
    const auto down = host.wait_state(false);
    ASSERT_TRUE(down);
    EXPECT_NE(down->find(server.address()), std::string::npos) << *down;

    const redis_result refused = host.call("k", {"GET", "k"});
    EXPECT_EQ(refused.status, redis_status::unreachable);
    EXPECT_NE(refused.detail.find(server.address()), std::string::npos) << refused.detail;

    ASSERT_TRUE(server.restart());
    ASSERT_TRUE(host.wait_state(true));
    // Up means the subscriptions are made again: a message published now arrives.
    EXPECT_EQ(host.text("", {"PUBLISH", "ch", "again"}), "1");
    ASSERT_TRUE(host.wait_messages(1));
    EXPECT_EQ(host.messages()[0].payload, "again");
    const redis_stats st = host.engine().stats();
    EXPECT_GE(st.reconnects, 2u);  // the node's connection and the subscriber's
    EXPECT_GE(st.errors, 2u);
}

// A script the server lost (SCRIPT FLUSH) while connected runs from its
// text in its place: several on the wire at once, all answered NOSCRIPT,
// run again in their order and before what was sent after them. A command
// of the same key that was on the wire behind a lost script, and ran,
// would have it run out of order: that script is answered NOSCRIPT and
// does not run. Frozen (SIGSTOP) until the kernel holds every command, the
// server reads them together.
TEST(RedisEngineSingle, AScriptTheServerLostRunsInItsPlaceOrNotAtAll) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    engine_host host(quick_options({server.address()}), {"return redis.call('rpush', KEYS[1], ARGV[1])"});
    ASSERT_TRUE(host.wait_state(true));
    const auto& push = host.script(0);
    {
        answers first;
        host.run("k", push, {"1", "k", "loaded"}, first.note("loaded"));
        ASSERT_TRUE(first.wait(1));
        EXPECT_EQ(first.of("loaded"), "1") << "SCRIPT LOAD went first on the connection";
    }
    const auto frozen_run = [&](answers& a, const std::function<void()>& send, std::size_t bytes, std::size_t n) {
        ASSERT_EQ(reply_text(redis_call(server.port(), {"SCRIPT", "FLUSH"})), "OK");
        server.signal(SIGSTOP);
        send();
        const bool all_sent = eventually([&] { return unread_by_server(server.port()) >= bytes; }, 5s);
        server.signal(SIGCONT);
        ASSERT_TRUE(all_sent) << unread_by_server(server.port()) << " of " << bytes << " bytes";
        ASSERT_TRUE(a.wait(n));
    };
    const auto evalsha_bytes = [&](const std::string& value) {
        return redis_format({"EVALSHA", push->sha1, "1", "k", value}).size();
    };

    answers in_place;
    frozen_run(in_place, [&] {
        host.run("k", push, {"1", "k", "a"}, in_place.note("a"));
        host.send("other", {"SET", "other", "x"}, in_place.note("other"));
        host.run("k", push, {"1", "k", "b"}, in_place.note("b"));
    }, evalsha_bytes("a") + evalsha_bytes("b") + redis_format({"SET", "other", "x"}).size(), 3);
    answers after;
    host.send("k", {"RPUSH", "k", "after"}, after.note("after"));
    ASSERT_TRUE(after.wait(1));
    EXPECT_EQ(in_place.of("a"), "2");
    EXPECT_EQ(in_place.of("b"), "3");
    EXPECT_EQ(in_place.of("other"), "OK");
    EXPECT_EQ(after.of("after"), "4") << "what was sent after them runs after them";

    answers overtaken;
    frozen_run(overtaken, [&] {
        host.run("k", push, {"1", "k", "lost"}, overtaken.note("lost"));
        host.send("k", {"RPUSH", "k", "plain"}, overtaken.note("plain"));
    }, evalsha_bytes("lost") + redis_format({"RPUSH", "k", "plain"}).size(), 2);
    EXPECT_EQ(overtaken.of("plain"), "5");
    EXPECT_EQ(overtaken.of("lost").rfind("NOSCRIPT", 0), 0u) << overtaken.of("lost");
    const redis_reply list = redis_call(server.port(), {"LRANGE", "k", "0", "-1"});
    ASSERT_TRUE(list && list->type == REDIS_REPLY_ARRAY);
    std::vector<std::string> items;
    for (std::size_t i = 0; i < list->elements; ++i) items.emplace_back(redis_text(*list->element[i]));
    EXPECT_EQ(items, (std::vector<std::string>{"loaded", "a", "b", "after", "plain"}));
}

// A write with a WAIT is answered once its replica has it, with the count;
// with the replica frozen, once WAIT's timeout passed, with 0. The WAIT
// goes on a connection of its own, after a write of the fence key: the
// node's other commands are answered while it waits. Writes answered while
// a WAIT waits share the next one: one WAIT for the two.
TEST(RedisEngineSingle, AWriteWithAWaitIsAnsweredWithTheReplicasThatHaveIt) {
    redis_server master(false, std::nullopt, {"--repl-diskless-sync-delay", "0"});
    ASSERT_TRUE(master.ready());
    redis_server replica(false, std::nullopt, {"--replicaof", "127.0.0.1", std::to_string(master.port())});
    ASSERT_TRUE(replica.ready());
    ASSERT_TRUE(eventually([&] { return replication_field(replica.port(), "master_link_status") == "up"; }, 10s));
    engine_host host(quick_options({master.address()}), {"return redis.call('incr', KEYS[1])"});
    ASSERT_TRUE(host.wait_state(true));
    const auto& incr = host.script(0);
    const auto waits = [&] {
        const std::string info = reply_text(redis_call(master.port(), {"INFO", "commandstats"}));
        const std::size_t at = info.find("cmdstat_wait:calls=");
        return at == std::string::npos ? 0LL : std::stoll(info.substr(at + 19));
    };
    const auto durable = [](std::chrono::milliseconds timeout) { return redis_wait{1, timeout, "{n}:w"}; };

    std::mutex mu;
    std::vector<std::pair<std::string, long long>> got;  // reply, replicas
    const auto note = [&](redis_result r) {
        std::lock_guard lock(mu);
        got.emplace_back(r.status == redis_status::ok ? reply_text(r.reply) : "failed", r.replicas);
    };
    const auto count = [&] {
        std::lock_guard lock(mu);
        return got.size();
    };
    host.run("n", incr, {"1", "n"}, note, durable(1000ms));
    ASSERT_TRUE(eventually([&] { return count() == 1; }, 5s));
    EXPECT_EQ(got[0], (std::pair<std::string, long long>{"1", 1}));
    EXPECT_EQ(reply_text(redis_call(replica.port(), {"GET", "n"})), "1") << "on the replica when answered";
    const redis_reply fence_ttl = redis_call(master.port(), {"PTTL", "{n}:w"});
    ASSERT_TRUE(fence_ttl && fence_ttl->type == REDIS_REPLY_INTEGER);
    EXPECT_GT(fence_ttl->integer, 0) << "the fence was written, and expires";
    EXPECT_LE(fence_ttl->integer, 10000);
    host.run("n", incr, {"1", "n"}, note);
    ASSERT_TRUE(eventually([&] { return count() == 2; }, 5s));
    EXPECT_EQ(got[1], (std::pair<std::string, long long>{"2", -1})) << "no WAIT asked for";
    EXPECT_EQ(waits(), 1);

    replica.signal(SIGSTOP);
    host.run("n", incr, {"1", "n"}, note, durable(300ms));
    host.run("n", incr, {"1", "n"}, note, durable(300ms));
    host.run("n", incr, {"1", "n"}, note, durable(300ms));
    bool answered = eventually([&] { return count() == 5; }, 5s);
    ASSERT_TRUE(answered);
    EXPECT_EQ(got[2], (std::pair<std::string, long long>{"3", 0}));
    EXPECT_EQ(got[3], (std::pair<std::string, long long>{"4", 0}));
    EXPECT_EQ(got[4], (std::pair<std::string, long long>{"5", 0}));
    EXPECT_EQ(waits(), 3) << "the two answered while the first WAIT waited shared one";
    EXPECT_LT(host.engine().stats().rtt_ewma_ms, 100.0) << "Redis's round trip, without the WAITs' 300 ms";

    // While a WAIT waits, the node's other commands are answered: a read
    // of the key the waiting write wrote has its value.
    host.run("n", incr, {"1", "n"}, note, durable(1500ms));
    answered = eventually([&] { return blocked_clients(master.port()) == 1; }, 5s);
    const redis_result read = host.call("n", {"GET", "n"});
    const std::size_t completed = count();
    replica.signal(SIGCONT);
    ASSERT_TRUE(answered) << "the WAIT waits";
    ASSERT_EQ(read.status, redis_status::ok) << read.detail;
    EXPECT_EQ(reply_text(read.reply), "6");
    EXPECT_EQ(completed, 5u) << "the read was answered before the waiting write";
    ASSERT_TRUE(eventually([&] { return count() == 6; }, 5s));
    EXPECT_EQ(got[5], (std::pair<std::string, long long>{"6", 1})) << "counted once the replica went on";

    // The master lost the script: it runs again from its text, and the WAIT
    // follows its answer.
    ASSERT_TRUE(eventually([&] { return replication_field(replica.port(), "master_link_status") == "up"; }, 10s));
    ASSERT_EQ(reply_text(redis_call(master.port(), {"SCRIPT", "FLUSH"})), "OK");
    host.run("n", incr, {"1", "n"}, note, durable(1000ms));
    ASSERT_TRUE(eventually([&] { return count() == 7; }, 5s));
    EXPECT_EQ(got[6], (std::pair<std::string, long long>{"7", 1}));
    EXPECT_EQ(waits(), 5);
    EXPECT_EQ(reply_text(redis_call(replica.port(), {"GET", "n"})), "7");
}

TEST(RedisEngineSingle, AnAnswerTooLateTimesOutAndTheConnectionIsMadeAgain) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    redis_options options = quick_options({server.address()});
    options.command_timeout = 300ms;
    engine_host host(options);
    ASSERT_TRUE(host.wait_state(true));
    std::promise<redis_result> slow;
    std::promise<redis_result> behind;
    host.send("list", {"BLPOP", "list", "3"}, [&](redis_result r) { slow.set_value(std::move(r)); });
    host.send("k", {"GET", "k"}, [&](redis_result r) { behind.set_value(std::move(r)); });
    auto slow_result = slow.get_future();
    auto behind_result = behind.get_future();
    ASSERT_EQ(slow_result.wait_for(3s), std::future_status::ready);
    EXPECT_EQ(slow_result.get().status, redis_status::timed_out);
    ASSERT_EQ(behind_result.wait_for(3s), std::future_status::ready);
    // Its answer would have been read as BLPOP's.
    EXPECT_EQ(behind_result.get().status, redis_status::lost);
    EXPECT_TRUE(host.wait_down_with("no answer within 300 ms")) << ::testing::PrintToString(host.states());
    // After the reconnect, once the connection is back for commands too.
    EXPECT_TRUE(eventually([&] { return host.text("k", {"SET", "k", "after"}) == "OK"; }, 10s)) << "made again";
}

TEST(RedisEngineSingle, AServerThatStopsAnsweringIsNoticedWhileIdle) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    redis_options options = quick_options({server.address()});
    options.command_timeout = 300ms;
    engine_host host(options);
    ASSERT_TRUE(host.wait_state(true));
    // Frozen: connections stay open, nothing answers. Only the subscriber's
    // PING finds out.
    const std::size_t before = host.states().size();
    server.signal(SIGSTOP);
    const bool down = host.wait_down_with("PING", before);
    server.signal(SIGCONT);
    EXPECT_TRUE(down) << ::testing::PrintToString(host.states());
    // After the reconnect, once the connection is back for commands too.
    EXPECT_TRUE(eventually([&] { return host.text("k", {"SET", "k", "v"}) == "OK"; }, 10s)) << "made again";
}

TEST(RedisEngineSingle, NothingListeningIsReportedWithTheReason) {
    engine_host host(quick_options({"127.0.0.1:1"}));
    const auto down = host.wait_state(false);
    ASSERT_TRUE(down);
    EXPECT_NE(down->find("127.0.0.1:1"), std::string::npos) << *down;
    EXPECT_NE(down->find("refused"), std::string::npos) << *down;
    const redis_result r = host.call("k", {"GET", "k"});
    EXPECT_EQ(r.status, redis_status::unreachable);
    EXPECT_FALSE(r.detail.empty());
    EXPECT_FALSE(host.engine().stats().up);
}

// A listener whose accept queue is full: the kernel drops further SYNs, so
// a connect to it neither succeeds nor fails.
class silent_listener {
public:
    silent_listener() {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 0) != 0 ||
            ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            return;
        port_ = ntohs(a.sin_port);
        // A backlog of 0 holds one connection: the first filler takes it.
        filler_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        (void)::connect(filler_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        pollfd p{filler_, POLLOUT, 0};
        full_ = ::poll(&p, 1, 2000) == 1;
    }
    ~silent_listener() {
        ::close(filler_);
        ::close(listener_);
    }
    bool full() const { return full_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

private:
    int listener_ = -1;
    int filler_ = -1;
    std::uint16_t port_ = 0;
    bool full_ = false;
};

TEST(RedisEngineSingle, AConnectThatHangsTimesOut) {
    silent_listener silent;
    ASSERT_TRUE(silent.full());
    redis_options options = quick_options({silent.address()});
    options.connect_timeout = 200ms;
    engine_host host(options);
    const auto down = host.wait_state(false);
    ASSERT_TRUE(down);
    EXPECT_NE(down->find("no connection within 200 ms"), std::string::npos) << *down;
    EXPECT_EQ(host.call("k", {"GET", "k"}).status, redis_status::unreachable);
}

TEST(RedisEngineSingle, StopFailsWhatIsPendingAndCallsNothingAfter) {
    redis_server server;
    ASSERT_TRUE(server.ready());
    auto host = std::make_unique<engine_host>(quick_options({server.address()}));
    ASSERT_TRUE(host->wait_state(true));
    std::promise<redis_result> blocked;
    host->send("list", {"BLPOP", "list", "0"}, [&](redis_result r) { blocked.set_value(std::move(r)); });
    ASSERT_TRUE(eventually([&] { return blocked_clients(server.port()) == 1; }, 5s));
    host->stop();
    auto result = blocked.get_future();
    ASSERT_EQ(result.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(result.get().status, redis_status::stopped);
    const auto states = host->states().size();
    server.kill();
    bool called = false;
    host->engine().command("k", {"GET", "k"}, [&](redis_result) { called = true; });
    EXPECT_EQ(host->states().size(), states);
    host.reset();
    EXPECT_FALSE(called);
}

// ---- a Redis Cluster of three masters, one for the whole suite ----

class RedisEngineCluster : public ::testing::Test {
protected:
    // Each node has a TLS port too, and asks TLS clients for their
    // certificate (TlsReachesEveryNodeAndFollowsARedirect).
    static void SetUpTestSuite() {
        certificate = write_certificate("cluster");
        std::vector<std::string> args = {"--cluster", "create"};
        for (auto& n : nodes) {
            n = std::make_unique<redis_server>(
                true, testing::redis_tls_setup{certificate.cert, certificate.key, certificate.cert, true});
            if (!n->ready()) return;
            args.push_back(n->address());
        }
        args.insert(args.end(), {"--cluster-replicas", "0", "--cluster-yes"});
        const auto created = testing::run_program("redis-cli", args, 30s);
        created_ = created.status == 0;
        if (!created_) std::fprintf(stderr, "redis-cli --cluster create failed:\n%s\n", created.output.c_str());
    }

    static void TearDownTestSuite() {
        for (auto& n : nodes) n.reset();
    }

    // Every node says the cluster is ok (a node restarted by a test
    // refuses writes for a while after).
    void SetUp() override {
        ASSERT_TRUE(created_);
        ASSERT_TRUE(eventually([] {
            for (auto& n : nodes)
                if (reply_text(redis_call(n->port(), {"CLUSTER", "INFO"})).find("cluster_state:ok") ==
                    std::string::npos)
                    return false;
            return true;
        }, 10s));
    }

    static std::vector<std::string> addresses() {
        std::vector<std::string> out;
        for (auto& n : nodes) out.push_back(n->address());
        return out;
    }

    static std::string id(std::size_t node) {
        return reply_text(redis_call(nodes[node]->port(), {"CLUSTER", "MYID"}));
    }

    // Which node serves `slot`, as node 0 sees it.
    static std::size_t owner(std::uint16_t slot) {
        const redis_reply r = redis_call(nodes[0]->port(), {"CLUSTER", "SLOTS"});
        std::vector<redis_slot_range> ranges;
        if (!r || parse_cluster_slots(*r, redis_address{"127.0.0.1", nodes[0]->port()}, ranges)) return nodes.size();
        for (const auto& range : ranges)
            if (slot >= range.first && slot <= range.last)
                for (std::size_t i = 0; i < nodes.size(); ++i)
                    if (range.master.port == nodes[i]->port()) return i;
        return nodes.size();
    }

    // A key `prefix`N that node `node` serves.
    static std::string key_on(std::size_t node, const std::string& prefix) {
        for (int i = 0; i < 10000; ++i) {
            std::string key = prefix + std::to_string(i);
            if (owner(redis_key_slot(key)) == node) return key;
        }
        ADD_FAILURE() << "no key of node " << node;
        return prefix;
    }

    // Through `host`, a key `prefix`N of each node set and read back.
    static void set_and_get_on_every_node(engine_host& host, const std::string& prefix) {
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const std::string key = key_on(i, prefix);
            EXPECT_EQ(host.text(key, {"SET", key, "v" + std::to_string(i)}), "OK");
            EXPECT_EQ(host.text(key, {"GET", key}), "v" + std::to_string(i));
        }
    }

    // The slot of `key`, and `key` with it, from node `from` to node `to`,
    // as redis-cli --cluster reshard does. MIGRATE goes to `to`'s TLS port,
    // as its bus speaks TLS (tls-cluster), and so does a node's MIGRATE.
    static void move_slot_of(const std::string& key, std::size_t from, std::size_t to) {
        const std::uint16_t slot = redis_key_slot(key);
        set_slot(to, slot, "IMPORTING", from);
        set_slot(from, slot, "MIGRATING", to);
        const std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(nodes[to]->tls_port()),
                                                  key, "0", "5000"};
        EXPECT_EQ(reply_text(redis_call(nodes[from]->port(), migrate)), "OK");
        assign(slot, to);
    }

    static void set_slot(std::size_t on, std::uint16_t slot, const char* how, std::size_t node) {
        const std::vector<std::string> args = {"CLUSTER", "SETSLOT", std::to_string(slot), how, id(node)};
        EXPECT_EQ(reply_text(redis_call(nodes[on]->port(), args)), "OK");
    }

    // The end of a migration: every node hears that `to` serves `slot`.
    static void assign(std::uint16_t slot, std::size_t to) {
        set_slot(to, slot, "NODE", to);
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (i != to) set_slot(i, slot, "NODE", to);
    }

    // A list {tag}list of node `from` holding "zero", its slot then
    // migrating to `to` (IMPORTING and MIGRATING, nothing moved yet), and a
    // script that pushes "first" on it and sets {tag}new, which is not
    // there: on `from`, TRYAGAIN until the list has moved.
    struct migration {
        std::string list;
        std::vector<std::string> first;  // the script
        std::uint16_t slot = 0;
        std::size_t from = 0;
        std::size_t to = 0;
    };
    static migration begin_migration(engine_host& host, std::size_t from, std::size_t to, const std::string& prefix) {
        migration m;
        const std::string tag = "{" + key_on(from, prefix) + "}";
        m.list = tag + "list";
        m.first = {"EVAL", "redis.call('rpush', KEYS[1], 'first') return redis.call('set', KEYS[2], 'x')", "2",
                   m.list, tag + "new"};
        m.slot = redis_key_slot(m.list);
        m.from = from;
        m.to = to;
        EXPECT_EQ(host.text(m.list, {"RPUSH", m.list, "zero"}), "1");
        set_slot(to, m.slot, "IMPORTING", from);
        set_slot(from, m.slot, "MIGRATING", to);
        return m;
    }
    // The rest of it: the list moves, then the slot.
    static void end_migration(const migration& m) {
        const std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(nodes[m.to]->tls_port()),
                                                  m.list, "0", "5000"};
        EXPECT_EQ(reply_text(redis_call(nodes[m.from]->port(), migrate)), "OK");
        assign(m.slot, m.to);
    }
    // The list's items on the node that serves it now.
    static std::vector<std::string> items(const migration& m) {
        const redis_reply r = redis_call(nodes[m.to]->port(), {"LRANGE", m.list, "0", "-1"});
        std::vector<std::string> out;
        if (r && r->type == REDIS_REPLY_ARRAY)
            for (std::size_t i = 0; i < r->elements; ++i) out.emplace_back(redis_text(*r->element[i]));
        return out;
    }

    static inline std::array<std::unique_ptr<redis_server>, 3> nodes;
    static inline bool created_ = false;
    static inline tls_files certificate;
};

TEST_F(RedisEngineCluster, KeysOfEveryNodeGoStraightToIt) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const std::string key = key_on(i, "straight:");
        EXPECT_EQ(host.text(key, {"SET", key, "v" + std::to_string(i)}), "OK");
        EXPECT_EQ(reply_text(redis_call(nodes[i]->port(), {"GET", key})), "v" + std::to_string(i));
        EXPECT_EQ(host.text(key, {"GET", key}), "v" + std::to_string(i));
    }
    for (const std::string key : {"foo", "{user1000}.following", "", "a{b}c", "\xff"})
        EXPECT_EQ(reply_text(redis_call(nodes[0]->port(), {"CLUSTER", "KEYSLOT", key})),
                  std::to_string(redis_key_slot(key)))
            << key;
    const redis_stats st = host.engine().stats();
    EXPECT_EQ(st.redirects, 0u);
    EXPECT_EQ(st.nodes, 3u);
}

// An ACL user on every node (the default user left as the other tests need
// it): the engine authenticates to each node, the seed and those CLUSTER
// SLOTS names, and reaches the keys of every one; a wrong password leaves it
// down with Redis's WRONGPASS.
TEST_F(RedisEngineCluster, CredentialsReachEveryNode) {
    for (const auto& n : nodes)
        ASSERT_EQ(reply_text(redis_call(n->port(), {"ACL", "SETUSER", "router", "on", ">router-pass", "~*", "&*",
                                                    "+@all"})),
                  "OK");
    {
        redis_options options = quick_options({addresses().front()});
        options.user = "router";
        options.password = "router-pass";
        engine_host host(options);
        ASSERT_TRUE(host.wait_state(true));
        set_and_get_on_every_node(host, "credentials:");
        EXPECT_EQ(host.engine().stats().nodes, 3u);
        EXPECT_EQ(host.text("", {"ACL", "WHOAMI"}), "router");
    }
    {
        redis_options options = quick_options(addresses());
        options.user = "router";
        options.password = "not-the-password";
        engine_host host(options);
        EXPECT_TRUE(host.wait_down_with("WRONGPASS")) << ::testing::PrintToString(host.states());
    }
    for (const auto& n : nodes) redis_call(n->port(), {"ACL", "DELUSER", "router"});
}

// rediss:// seeds: the nodes CLUSTER SLOTS names, and the one a MOVED
// names, are reached over TLS too (their TLS ports, which Redis gives a
// client connected over TLS), each with the router's certificate.
TEST_F(RedisEngineCluster, TlsReachesEveryNodeAndFollowsARedirect) {
    redis_options options = quick_options({nodes[0]->tls_address()});
    options.tls = {certificate.cert, certificate.cert, certificate.key};
    engine_host host(options);
    ASSERT_TRUE(host.wait_state(true));
    set_and_get_on_every_node(host, "tls:");
    EXPECT_EQ(host.engine().stats().nodes, 3u);
    host.engine().subscribe("tls-news");
    ASSERT_TRUE(eventually([&] {
        long long subs = 0;
        for (auto& n : nodes) subs += numsub(n->port(), "tls-news");
        return subs == 1;
    }, 5s));
    EXPECT_EQ(reply_text(redis_call(nodes[2]->port(), {"PUBLISH", "tls-news", "across"})), "0");
    ASSERT_TRUE(host.wait_messages(1));
    EXPECT_EQ(host.messages().front().payload, "across");

    const std::string key = key_on(1, "tls-moved:");
    EXPECT_EQ(host.text(key, {"SET", key, "kept"}), "OK");
    move_slot_of(key, 1, 2);
    EXPECT_EQ(host.text(key, {"GET", key}), "kept");
    EXPECT_EQ(host.engine().stats().redirects, 1u);
    // Followed to the node's TLS port: still three nodes, and no client of
    // the engine on a plain port.
    EXPECT_EQ(host.engine().stats().nodes, 3u);
    for (auto& n : nodes) {
        EXPECT_EQ(clients_on(n->port(), n->port()), 0) << n->address();
        EXPECT_GE(clients_on(n->port(), n->tls_port()), 1) << n->address();
    }
}

TEST_F(RedisEngineCluster, MessagesPublishedOnAnyNodeArrive) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    host.engine().subscribe("alerts");
    host.engine().psubscribe("alerts.*");
    ASSERT_TRUE(eventually([&] {
        long long subs = 0;
        long long pats = 0;
        for (auto& n : nodes) {
            subs += numsub(n->port(), "alerts");
            pats += numpat(n->port());
        }
        return subs == 1 && pats == 1;
    }, 5s));
    // Each PUBLISH goes to the node of its channel's slot; the cluster bus
    // carries it to the subscriber's node.
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const std::string channel = key_on(i, "alerts.");
        host.text(channel, {"PUBLISH", channel, "from " + std::to_string(i)});
    }
    host.text("alerts", {"PUBLISH", "alerts", "plain"});
    ASSERT_TRUE(host.wait_messages(4));
    // From different nodes, in any order.
    std::multiset<std::string> got;
    for (const message& m : host.messages()) got.insert(m.pattern + " " + m.channel + " " + m.payload);
    EXPECT_EQ(got, (std::multiset<std::string>{"alerts.* " + key_on(0, "alerts.") + " from 0",
                                               "alerts.* " + key_on(1, "alerts.") + " from 1",
                                               "alerts.* " + key_on(2, "alerts.") + " from 2", " alerts plain"}));
}

TEST_F(RedisEngineCluster, AMovedSlotIsFollowedAndLearned) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    const std::size_t from = 0;
    const std::size_t to = 1;
    const std::string key = key_on(from, "moved:");
    EXPECT_EQ(host.text(key, {"SET", key, "kept"}), "OK");
    move_slot_of(key, from, to);

    EXPECT_EQ(host.text(key, {"GET", key}), "kept");
    EXPECT_EQ(host.engine().stats().redirects, 1u);
    // Learned: the next command goes to the new node at once.
    EXPECT_EQ(host.text(key, {"GET", key}), "kept");
    EXPECT_EQ(host.engine().stats().redirects, 1u);
    EXPECT_EQ(reply_text(redis_call(nodes[to]->port(), {"GET", key})), "kept");
}

TEST_F(RedisEngineCluster, AskDuringAMigrationIsFollowedEachTime) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    const std::size_t from = 2;
    const std::size_t to = 0;
    const std::string key = key_on(from, "ask:");
    const std::uint16_t slot = redis_key_slot(key);
    set_slot(to, slot, "IMPORTING", from);
    set_slot(from, slot, "MIGRATING", to);

    // Not on the migrating node: it sends the command on with ASK.
    EXPECT_EQ(host.text(key, {"SET", key, "new"}), "OK");
    EXPECT_EQ(host.engine().stats().redirects, 1u);
    EXPECT_EQ(host.text(key, {"GET", key}), "new");
    EXPECT_EQ(host.engine().stats().redirects, 2u);  // ASK does not change the slot map
    EXPECT_EQ(reply_text(redis_calls(nodes[to]->port(), {{"ASKING"}, {"GET", key}}).back()), "new");

    assign(slot, to);
    EXPECT_EQ(host.text(key, {"GET", key}), "new");
    EXPECT_EQ(host.engine().stats().redirects, 3u);  // MOVED, now
}

// A script of two keys whose slot migrates, one key moved and one not
// (as a keyed publish: the channel's keys there, its new idempotency key
// not) meets TRYAGAIN: the engine sends it again until the slot has moved,
// and a command of the same key asked for meanwhile waits behind it, so
// the two run in the order asked for.
TEST_F(RedisEngineCluster, ACommandMetWithTryagainWaitsForItsSlotAndKeepsItsKeysOrder) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    const migration m = begin_migration(host, 1, 0, "tryagain:");

    answers got;
    host.send(m.list, m.first, got.note("first"));
    ASSERT_TRUE(eventually([&] { return host.engine().stats().retries >= 1; }, 5s));
    host.send(m.list, {"RPUSH", m.list, "second"}, got.note("second"));
    end_migration(m);

    ASSERT_TRUE(got.wait(2));
    {
        std::lock_guard lock(got.mu);
        EXPECT_EQ(got.got, (std::vector<std::pair<std::string, std::string>>{{"first", "OK"}, {"second", "3"}}));
    }
    EXPECT_EQ(items(m), (std::vector<std::string>{"zero", "first", "second"}));
    // Let go: the next command of the key goes at once.
    EXPECT_EQ(host.text(m.list, {"LLEN", m.list}), "3");
}

// Both on the wire at once, the first meets TRYAGAIN and the second runs:
// the first cannot run after it, and is answered TRYAGAIN, not sent again.
TEST_F(RedisEngineCluster, ACommandThatRanFirstMakesTheOneMetWithTryagainBeforeItFail) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    const migration m = begin_migration(host, 2, 1, "overtaken:");

    // Frozen, the node reads nothing: both commands reach it together.
    const std::vector<std::string> second = {"RPUSH", m.list, "second"};
    const std::size_t bytes = redis_format(m.first).size() + redis_format(second).size();
    nodes[m.from]->signal(SIGSTOP);
    answers got;
    host.send(m.list, m.first, got.note("first"));
    host.send(m.list, second, got.note("second"));
    const bool both_sent = eventually([&] { return unread_by_server(nodes[m.from]->port()) >= bytes; }, 5s);
    nodes[m.from]->signal(SIGCONT);
    ASSERT_TRUE(both_sent);

    ASSERT_TRUE(got.wait(1));
    EXPECT_EQ(got.of("second"), "2");
    // The migration ends: sent again now, the first would run after the
    // second.
    end_migration(m);
    ASSERT_TRUE(got.wait(2));
    EXPECT_EQ(got.of("first"), "TRYAGAIN a later command of the key ran while it waited for its slot");
    EXPECT_EQ(items(m), (std::vector<std::string>{"zero", "second"}));
}

TEST_F(RedisEngineCluster, RedirectsAreBounded) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    const std::size_t from = 1;
    const std::size_t to = 2;
    const std::string key = key_on(from, "loop:");
    const std::uint16_t slot = redis_key_slot(key);
    // Migrating on one side only: `from` sends the key on with ASK, `to`
    // (not importing) sends it back with MOVED, and so on.
    set_slot(from, slot, "MIGRATING", to);
    const redis_result r = host.call(key, {"GET", key});
    EXPECT_EQ(reply_text(redis_call(nodes[from]->port(), {"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"})),
              "OK");
    ASSERT_EQ(r.status, redis_status::ok);
    EXPECT_EQ(redis_text(*r.reply).substr(0, 6), "MOVED ");
    EXPECT_EQ(host.engine().stats().redirects, 5u);
    EXPECT_EQ(host.text(key, {"GET", key}), "");
}

TEST_F(RedisEngineCluster, AMasterRestartedIsReconnected) {
    engine_host host(quick_options(addresses()));
    ASSERT_TRUE(host.wait_state(true));
    const std::size_t victim = 2;
    const std::string lost_key = key_on(victim, "restart:");
    const std::string other_key = key_on(0, "restart:");
    EXPECT_EQ(host.text(lost_key, {"SET", lost_key, "before"}), "OK");

    nodes[victim]->kill();
    const auto down = host.wait_state(false);
    ASSERT_TRUE(down);
    EXPECT_NE(down->find(nodes[victim]->address()), std::string::npos) << *down;
    EXPECT_EQ(host.call(lost_key, {"GET", lost_key}).status, redis_status::unreachable);
    // The other masters still serve their slots.
    EXPECT_EQ(host.text(other_key, {"SET", other_key, "fine"}), "OK");

    ASSERT_TRUE(nodes[victim]->restart());
    ASSERT_TRUE(host.wait_state(true));
    // A restarted master refuses writes (CLUSTERDOWN) until it has heard
    // from the cluster.
    EXPECT_TRUE(eventually([&] { return host.text(lost_key, {"SET", lost_key, "after"}) == "OK"; }, 10s));
    EXPECT_EQ(host.text(lost_key, {"GET", lost_key}), "after");
    EXPECT_GE(host.engine().stats().reconnects, 1u);
}

// A sharded channel (a router's own) is subscribed on the node serving its
// slot only, and a publish from an engine anywhere counts its subscriber
// wherever that is (a classic PUBLISH counts those of the node that took
// it). When its slot moves, Redis ends the subscription and the engine
// makes it again on the new node.
TEST_F(RedisEngineCluster, AShardedChannelIsCountedExactlyAndFollowsItsSlot) {
    engine_host listener(quick_options(addresses()));
    engine_host sender(quick_options({addresses().back()}));
    ASSERT_TRUE(listener.wait_state(true));
    ASSERT_TRUE(sender.wait_state(true));
    const std::size_t from = 0;
    const std::size_t to = 1;
    const std::string channel = key_on(from, "inbox:");
    listener.engine().subscribe_sharded(channel);
    ASSERT_TRUE(eventually([&] { return shardnumsub(nodes[from]->port(), channel) == 1; }, 5s));
    EXPECT_EQ(numsub(nodes[from]->port(), channel), 0) << "not a classic subscription";
    EXPECT_TRUE(listener.sharded_pubsub());

    EXPECT_EQ(sender.publish_sharded(channel, "one"), 1);
    EXPECT_EQ(sender.publish_sharded(key_on(from, "nobody:"), "lost"), 0);
    ASSERT_TRUE(listener.wait_messages(1));
    EXPECT_EQ(listener.messages()[0].channel, channel);
    EXPECT_EQ(listener.messages()[0].pattern, "");
    EXPECT_EQ(listener.messages()[0].payload, "one");

    // The slot moves (a channel is no key: nothing to MIGRATE).
    const std::uint16_t slot = redis_key_slot(channel);
    set_slot(to, slot, "IMPORTING", from);
    set_slot(from, slot, "MIGRATING", to);
    assign(slot, to);
    ASSERT_TRUE(eventually([&] { return shardnumsub(nodes[to]->port(), channel) == 1; }, 5s))
        << "subscribed again where the slot is";
    EXPECT_EQ(shardnumsub(nodes[from]->port(), channel), 0);
    EXPECT_EQ(sender.publish_sharded(channel, "two"), 1) << "the sender follows the slot too";
    ASSERT_TRUE(listener.wait_messages(2));
    EXPECT_EQ(listener.messages()[1].payload, "two");
    EXPECT_TRUE(listener.sharded_pubsub());
    assign(slot, from);  // as the other tests expect it
}

// Redis that refuses sharded pub/sub (here an ACL user without SSUBSCRIBE
// and SPUBLISH, as a Redis before 7.0 with its unknown command): the
// sharded channel becomes a classic one, and its publishes PUBLISHes.
TEST_F(RedisEngineCluster, WhereShardedPubsubIsRefusedItsChannelsAreClassicOnes) {
    for (const auto& n : nodes)
        ASSERT_EQ(reply_text(redis_call(n->port(), {"ACL", "SETUSER", "noshard", "on", ">noshard-pass", "~*", "&*",
                                                    "+@all", "-ssubscribe", "-spublish"})),
                  "OK");
    redis_options options = quick_options(addresses());
    options.user = "noshard";
    options.password = "noshard-pass";
    engine_host host(options);
    ASSERT_TRUE(host.wait_state(true));
    const std::string channel = key_on(2, "inbox:");
    host.engine().subscribe_sharded(channel);
    ASSERT_TRUE(eventually([&] {
        long long subs = 0;
        for (auto& n : nodes) subs += numsub(n->port(), channel);
        return subs == 1;
    }, 5s));
    EXPECT_FALSE(host.sharded_pubsub());
    EXPECT_GE(host.publish_sharded(channel, "classic"), 0);
    ASSERT_TRUE(host.wait_messages(1));
    EXPECT_EQ(host.messages()[0].payload, "classic");
    for (const auto& n : nodes) redis_call(n->port(), {"ACL", "DELUSER", "noshard"});
}

// ---- a Redis Cluster of three masters, each with a replica ----

// A master killed: the cluster promotes its replica (a cluster node
// timeout of 1 s here), and the engine, which knows only the masters,
// follows. Commands for the dead master's slots fail (unreachable) until
// then, and reach the promoted replica after, which has what was
// replicated; the subscriber connection, which was on the dead master,
// delivers again from another node, and so does a sharded channel's from
// the promoted replica; the engine is up again, and has let go of the
// dead master.
TEST(RedisEngineClusterFailover, AReplicaPromotedInPlaceOfAKilledMasterIsFollowed) {
    const auto nodes = testing::make_redis_cluster(3, 1, {"--cluster-node-timeout", "1000"});
    ASSERT_EQ(nodes.size(), 6u);
    std::vector<std::size_t> masters;
    for (std::size_t i = 0; i < nodes.size(); ++i)
        if (replication_field(nodes[i]->port(), "role") == "master") masters.push_back(i);
    ASSERT_EQ(masters.size(), 3u);

    std::vector<std::string> seeds;
    for (auto& n : nodes) seeds.push_back(n->address());
    engine_host host(quick_options(seeds));
    ASSERT_TRUE(host.wait_state(true));
    // Connected to the masters only: the replicas among the seeds serve no
    // slot.
    EXPECT_TRUE(eventually([&] { return host.engine().stats().nodes == 3u; }, 5s))
        << host.engine().stats().nodes << " nodes";
    host.engine().subscribe("failover-news");
    // The victim is the master the subscriber connection is on (any node
    // up will do for it, whichever answered first), so that it must move.
    std::size_t victim = nodes.size();
    ASSERT_TRUE(eventually([&] {
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (numsub(nodes[i]->port(), "failover-news") == 1) victim = i;
        return victim < nodes.size();
    }, 5s));
    ASSERT_NE(std::find(masters.begin(), masters.end(), victim), masters.end()) << "a master";
    std::size_t heir = nodes.size();
    for (std::size_t i = 0; i < nodes.size(); ++i)
        if (replication_field(nodes[i]->port(), "master_port") == std::to_string(nodes[victim]->port())) heir = i;
    ASSERT_LT(heir, nodes.size());
    std::string key;
    for (int i = 0; i < 10000 && key.empty(); ++i) {
        // Served there: no MOVED.
        const std::string candidate = "failover:" + std::to_string(i);
        const redis_reply r = redis_call(nodes[victim]->port(), {"GET", candidate});
        if (r && r->type != REDIS_REPLY_ERROR) key = candidate;
    }
    ASSERT_FALSE(key.empty()) << "a key of the victim's slots";
    EXPECT_EQ(host.text(key, {"SET", key, "replicated"}), "OK");
    // Replicated before the master dies.
    ASSERT_TRUE(testing::wait_replicated(nodes[victim]->port(), nodes[heir]->port(), 10s));
    // Every node (a replica too) knows its own clients only.
    const auto subscribed = [&] {
        long long subs = 0;
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (i != victim) subs += numsub(nodes[i]->port(), "failover-news");
        return subs == 1;
    };
    // A sharded channel of the victim's slots: subscribed there.
    host.engine().subscribe_sharded(key);
    ASSERT_TRUE(eventually([&] { return shardnumsub(nodes[victim]->port(), key) == 1; }, 5s));

    nodes[victim]->kill();
    ASSERT_TRUE(host.wait_state(false)) << "the victim's slots are down";
    // The subscriber connection may see the victim go before the command
    // connection does: a command sent between the two is lost with it.
    EXPECT_TRUE(eventually([&] { return host.call(key, {"GET", key}).status == redis_status::unreachable; }, 5s));
    ASSERT_TRUE(eventually([&] { return host.text(key, {"GET", key}) == "replicated"; }, 20s))
        << host.text(key, {"GET", key});
    EXPECT_EQ(replication_field(nodes[heir]->port(), "role"), "master");
    EXPECT_EQ(host.text(key, {"SET", key, "after"}), "OK");
    EXPECT_EQ(reply_text(redis_call(nodes[heir]->port(), {"GET", key})), "after");
    ASSERT_TRUE(host.wait_state(true));
    ASSERT_TRUE(eventually(subscribed, 10s)) << "subscribed again, on a live node";
    EXPECT_NE(host.text("failover-news", {"PUBLISH", "failover-news", "still here"}), "");
    ASSERT_TRUE(host.wait_messages(1));
    EXPECT_EQ(host.messages().front().payload, "still here");
    // The sharded channel's subscription is made again on the heir.
    ASSERT_TRUE(eventually([&] { return shardnumsub(nodes[heir]->port(), key) == 1; }, 10s));
    EXPECT_EQ(host.publish_sharded(key, "sharded, still here"), 1);
    ASSERT_TRUE(host.wait_messages(2));
    EXPECT_EQ(host.messages()[1].payload, "sharded, still here");
    // The dead master serves no slot: forgotten, not retried for ever.
    EXPECT_TRUE(eventually([&] { return host.engine().stats().nodes == 3u; }, 10s))
        << host.engine().stats().nodes << " nodes";
}

}  // namespace
}  // namespace hyperstreams::router
