// Router configuration: embedded defaults, JSON file, flags, errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "config.hpp"

namespace hyperstreams::router {
namespace {

config_result parse(std::vector<std::string> args) {
    std::vector<const char*> argv{"hyperstreams-router"};
    for (const auto& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string write_temp(const std::string& text) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("hs-router-config-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                       "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json");
    std::ofstream(path) << text;
    return path.string();
}

TEST(RouterConfig, BareBinaryRunsOnEmbeddedDefaults) {
    const config_result r = parse({});
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    EXPECT_EQ(r.config.listen, "127.0.0.1:7070");
    EXPECT_EQ(r.config.backend, "tcp://127.0.0.1:7071");
    EXPECT_EQ(r.config.ws_path, "/ws");
    EXPECT_EQ(r.config.outbox_max_bytes, 4u << 20);
    EXPECT_EQ(r.config.outbox_policy, slow_policy::drop_oldest);
    EXPECT_EQ(r.config.history_max_messages, 64u);
    EXPECT_EQ(r.config.threads, 0u);
    EXPECT_EQ(r.config.admin_listen, "127.0.0.1:7072") << "the admin view on loopback, apart from --listen";
    EXPECT_EQ(r.config.admin_token_file, "");
    EXPECT_EQ(r.config.max_http_connections, 1024u);
    EXPECT_EQ(validate(r.config), "");
}

TEST(RouterConfig, UnderTokensTheAdminViewNeedsATokenBeyondLoopback) {
    const std::vector<std::string> tokens{"--auth-mode", "tokens", "--auth-hs256-secret", std::string(32, 's')};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = tokens;
        args.insert(args.end(), extra.begin(), extra.end());
        return parse(args);
    };
    EXPECT_EQ(with({}).what, config_result::action::run) << "loopback by default";
    EXPECT_EQ(with({"--admin-listen", "[::1]:9100"}).what, config_result::action::run);
    EXPECT_EQ(with({"--admin-listen", "off"}).what, config_result::action::run);
    for (const auto& exposed : {std::vector<std::string>{"--admin-listen", "0.0.0.0:9100"},
                                std::vector<std::string>{"--admin-listen", "same"}}) {
        const config_result r = with(exposed);
        EXPECT_EQ(r.what, config_result::action::fail) << exposed[1];
        EXPECT_NE(r.error.find("admin.token_file"), std::string::npos) << r.error;
        std::vector<std::string> protected_args = exposed;
        protected_args.insert(protected_args.end(), {"--admin-token-file", "/run/secrets/admin"});
        EXPECT_EQ(with(protected_args).what, config_result::action::run) << exposed[1] << " with a token";
    }
    EXPECT_EQ(parse({"--admin-listen", "0.0.0.0:9100"}).what, config_result::action::run)
        << "open mode: everything is open anyway";
}

TEST(RouterConfig, FlagsOverrideDefaultsInBothSpellings) {
    const config_result r = parse({"--listen", "0.0.0.0:9000", "--history-max-messages=5",
                                   "--outbox-policy", "keep_latest", "--log-level", "debug"});
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    EXPECT_EQ(r.config.listen, "0.0.0.0:9000");
    EXPECT_EQ(r.config.history_max_messages, 5u);
    EXPECT_EQ(r.config.outbox_policy, slow_policy::keep_latest);
    EXPECT_EQ(r.config.log_level, log::level::debug);
}

TEST(RouterConfig, FileOverridesDefaultsAndFlagsOverrideTheFile) {
    const std::string path = write_temp(R"({
        "listen": "127.0.0.1:8000",
        "history": {"max_messages": 10, "max_bytes": 4096},
        "drain": {"redirect_url": "ws://other:7070/ws"}
    })");
    const config_result r = parse({"--config", path, "--history-max-messages", "3"});
    std::filesystem::remove(path);
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    EXPECT_EQ(r.config.listen, "127.0.0.1:8000");
    EXPECT_EQ(r.config.history_max_messages, 3u) << "the flag wins over the file";
    EXPECT_EQ(r.config.history_max_bytes, 4096u);
    EXPECT_EQ(r.config.drain_redirect_url, "ws://other:7070/ws");
}

TEST(RouterConfig, FlagsWinWhateverTheirPositionRelativeToConfig) {
    const std::string path = write_temp(R"({"threads": 4})");
    const config_result r = parse({"--threads", "2", "--config", path});
    std::filesystem::remove(path);
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    EXPECT_EQ(r.config.threads, 2u);
}

struct bad_case {
    std::vector<std::string> args;
    std::string mentions;
};

class RouterConfigErrors : public ::testing::TestWithParam<bad_case> {};

TEST_P(RouterConfigErrors, NameTheOptionAndTheProblem) {
    const config_result r = parse(GetParam().args);
    EXPECT_EQ(r.what, config_result::action::fail);
    EXPECT_NE(r.error.find(GetParam().mentions), std::string::npos) << r.error;
}

INSTANTIATE_TEST_SUITE_P(
    Flags, RouterConfigErrors,
    ::testing::Values(bad_case{{"--no-such-flag", "1"}, "unknown option '--no-such-flag'"},
                      bad_case{{"--threads", "many"}, "--threads"},
                      bad_case{{"--threads", "-1"}, "--threads"},
                      bad_case{{"--threads", "100000"}, "between 0 and 256"},
                      bad_case{{"--outbox-policy", "sometimes"}, "drop_oldest|keep_latest|disconnect"},
                      bad_case{{"--listen", "nonsense"}, "listen"},
                      bad_case{{"--listen", "127.0.0.1:70000"}, "listen"},
                      bad_case{{"--backend", "http://x"}, "backend"},
                      bad_case{{"--admin-listen", "loopback"}, "admin.listen: 'loopback' is not HOST:PORT, same or off"},
                      bad_case{{"--heartbeat-interval-ms", "5000", "--heartbeat-timeout-ms", "4000"},
                               "heartbeat.timeout_ms"},
                      bad_case{{"--heartbeat-interval-ms", "5000", "--heartbeat-timeout-ms", "10000"},
                               "more than twice heartbeat.interval_ms"},
                      bad_case{{"--limits-max-payload", "1048576", "--limits-max-message-bytes", "4096"},
                               "limits.max_message_bytes"},
                      bad_case{{"--cluster-redis", "http://127.0.0.1:6379"}, "cluster.redis: 'http://127.0.0.1:6379'"},
                      bad_case{{"--cluster-redis", "redis://h:1,redis://h:99999"}, "'redis://h:99999' is not redis://HOST:PORT"},
                      bad_case{{"--cluster-prefix", "a{b}"}, "cluster.prefix"},
                      bad_case{{"--cluster-prefix", ""}, "cluster.prefix"},
                      bad_case{{"--cluster-redis", "h:1", "--cluster-redis-password", "p",
                                "--cluster-redis-password-file", "/f"},
                               "cluster.redis_password and cluster.redis_password_file exclude each other"},
                      bad_case{{"--cluster-redis", "h:1", "--cluster-redis-user", "router"},
                               "cluster.redis_user needs cluster.redis_password"},
                      bad_case{{"--cluster-redis-password", "p"}, "cluster.redis_password need cluster.redis"},
                      bad_case{{"--cluster-redis", "rediss://h:1,redis://h:2"},
                               "cluster.redis: mixes redis:// and rediss:// (TLS): all TLS or none"},
                      bad_case{{"--cluster-redis", "h:1", "--cluster-redis-tls-ca-file", "/ca.pem"},
                               "need rediss:// addresses in cluster.redis"},
                      bad_case{{"--cluster-redis", "rediss://h:1", "--cluster-redis-tls-cert-file", "/c.pem"},
                               "cluster.redis_tls_cert_file and cluster.redis_tls_key_file go together"},
                      bad_case{{"--history-ttl-s", "600", "--history-meta-ttl-s", "60"}, "history.meta_ttl_s"},
                      bad_case{{"--threads"}, "missing value"},
                      bad_case{{"--config", "/nonexistent/router.json"}, "cannot read"}));

TEST(RouterConfig, FileErrorsNameTheKey) {
    struct file_case {
        std::string text, mentions;
    };
    for (const file_case& c : {file_case{"{not json", "not valid JSON"},
                               file_case{"[1,2]", "top level must be an object"},
                               file_case{R"({"histroy": {"max_messages": 1}})", "unknown option 'histroy.max_messages'"},
                               file_case{R"({"threads": "four"})", "threads: expected a non-negative integer"},
                               file_case{R"({"threads": 1.5})", "threads: expected a non-negative integer"},
                               file_case{R"({"listen": 7070})", "listen: expected a string"},
                               file_case{R"({"log": {"level": "loud"}})", "'loud' is not one of"},
                               // One line whatever the key or value holds (found by fuzz_config).
                               file_case{R"({"ch\nnels": {"namespaces": []}})", "unknown option 'ch\\nnels.namespaces'"},
                               file_case{R"({"log": {"level": "lo\u0001ud\r"}})", "'lo\\x01ud\\r' is not one of"},
                               file_case{R"({"listen": "a\nb"})", "listen: 'a\\nb' is not HOST:PORT"}}) {
        const std::string path = write_temp(c.text);
        const config_result r = parse({"--config", path});
        std::filesystem::remove(path);
        EXPECT_EQ(r.what, config_result::action::fail) << c.text;
        EXPECT_NE(r.error.find(c.mentions), std::string::npos) << c.text << " -> " << r.error;
        EXPECT_EQ(r.error.find_first_of("\r\n"), std::string::npos) << "one line: " << r.error;
    }
}

TEST(RouterConfig, HelpListsEveryOptionWithItsDefault) {
    EXPECT_EQ(parse({"--help"}).what, config_result::action::help);
    EXPECT_EQ(parse({"--version"}).what, config_result::action::version);
    const std::string help = help_text("hyperstreams-router");
    for (const char* flag : {"--listen", "--backend", "--web", "--ws-path", "--threads", "--router-id",
                             "--log-level", "--log-format", "--heartbeat-interval-ms",
                             "--heartbeat-timeout-ms", "--handshake-timeout-ms", "--limits-max-payload",
                             "--limits-max-message-bytes", "--limits-max-subscriptions",
                             "--limits-max-pending-requests", "--limits-max-connections", "--limits-max-channels",
                             "--outbox-max-bytes", "--outbox-policy", "--outbox-batch-bytes",
                             "--history-max-messages", "--history-max-bytes", "--history-max-total-bytes",
                             "--requests-default-deadline-ms", "--requests-max-deadline-ms",
                             "--requests-balance", "--drain-timeout-ms", "--drain-redirect-url", "--config",
                             "--admin-listen", "--admin-token-file", "--limits-max-http-connections"})
        EXPECT_NE(help.find(flag), std::string::npos) << flag;
    EXPECT_NE(help.find("default: \"127.0.0.1:7070\""), std::string::npos);
    EXPECT_NE(help.find("default: 4194304"), std::string::npos);
}

TEST(RouterConfig, PrintedConfigReadsBackAsAConfigFile) {
    const config_result first = parse({"--history-max-messages", "9", "--requests-balance", "round_robin"});
    ASSERT_EQ(first.what, config_result::action::run);
    const std::string path = write_temp(to_json(first.config));
    const config_result second = parse({"--config", path});
    std::filesystem::remove(path);
    ASSERT_EQ(second.what, config_result::action::run) << second.error;
    EXPECT_EQ(second.config.history_max_messages, 9u);
    EXPECT_EQ(second.config.balance, balance_policy::round_robin);
    EXPECT_EQ(to_json(second.config), to_json(first.config));
}

TEST(RouterConfig, AccessOptionsTakeLists_JsonAndFiles) {
    const config_result r = parse({"--auth-mode", "tokens", "--auth-hs256-secret-file", "/etc/secret",
                                   "--auth-anonymous", R"({"subscribe":["public.>"]})", "--ws-allowed-origins",
                                   "https://a.example,https://b.example", "--limits-publish-rate", "50"});
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    EXPECT_EQ(r.config.auth, auth_mode::tokens);
    EXPECT_EQ(r.config.allowed_origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
    ASSERT_TRUE(r.config.auth_anonymous);
    EXPECT_EQ(r.config.auth_anonymous->as_written->dump(), R"({"subscribe":["public.>"]})");
    EXPECT_EQ(r.config.publish_rate, 50u);

    // The same from a file, where auth.anonymous is an object, not a nested group of options.
    const std::string file = write_temp(R"({"auth":{"mode":"tokens","hs256_secret_file":"/s",
        "anonymous":{"subscribe":["public.>"]}},"ws":{"allowed_origins":["https://a.example"]}})");
    const config_result f = parse({"--config", file});
    std::filesystem::remove(file);
    ASSERT_EQ(f.what, config_result::action::run) << f.error;
    ASSERT_TRUE(f.config.auth_anonymous);
    EXPECT_EQ(f.config.auth_anonymous->as_written->dump(), R"({"subscribe":["public.>"]})");
    EXPECT_EQ(f.config.allowed_origins, (std::vector<std::string>{"https://a.example"}));
}

TEST(RouterConfig, TokenSizeAndRuleLimitsHaveDefaultsAndBounds) {
    const config_result d = parse({});
    ASSERT_EQ(d.what, config_result::action::run) << d.error;
    EXPECT_EQ(d.config.auth_max_token_bytes, 16384u);
    EXPECT_EQ(d.config.auth_max_rules, 1024u);
    const config_result r = parse({"--auth-max-token-bytes", "65536", "--auth-max-rules", "10"});
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    EXPECT_EQ(r.config.auth_max_token_bytes, 65536u);
    EXPECT_EQ(r.config.auth_max_rules, 10u);
    EXPECT_EQ(parse({"--auth-max-token-bytes", "100"}).what, config_result::action::fail);
    EXPECT_EQ(parse({"--auth-max-rules", "0"}).what, config_result::action::fail);
}

TEST(RouterConfig, AccessOptionsThatCannotWorkTogetherAreRefused) {
    EXPECT_EQ(parse({"--tls-cert-file", "c.pem"}).what, config_result::action::fail);
    EXPECT_EQ(parse({"--auth-hs256-secret", "x"}).what, config_result::action::fail) << "keys but mode open";
    EXPECT_EQ(parse({"--backend-auth-curve-secret-key", "short"}).what, config_result::action::fail);
    EXPECT_EQ(parse({"--backend-auth-curve-clients", "{}"}).what, config_result::action::fail)
        << "clients without the router's key";
    EXPECT_EQ(parse({"--auth-anonymous", "{not json"}).what, config_result::action::fail);
}

// The example keys of ZeroMQ RFC 32 (Z85): a server's secret key, a client's public key.
constexpr const char* curve_secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
constexpr const char* curve_client = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

TEST(RouterConfig, ConfiguredRightsAreParsedOnceIntoGrants) {
    const std::string clients = std::string(R"({")") + curve_client + R"(":{"register":["orders"]}})";
    const config_result r =
        parse({"--auth-mode", "tokens", "--auth-anonymous",
               R"({"subscribe":["public.>"],"deny":{"subscribe":["public.secret"]}})",
               "--backend-auth-curve-secret-key", curve_secret, "--backend-auth-curve-clients", clients});
    ASSERT_EQ(r.what, config_result::action::run) << r.error;

    ASSERT_TRUE(r.config.auth_anonymous);
    const grants& anonymous = *r.config.auth_anonymous->rights;
    EXPECT_TRUE(anonymous.may_subscribe("public.news"));
    EXPECT_FALSE(anonymous.may_subscribe("public.secret")) << "the deny rule";
    EXPECT_FALSE(anonymous.may_publish("public.news"));

    ASSERT_TRUE(r.config.curve_clients);
    ASSERT_EQ(r.config.curve_clients->size(), 1u);
    const auto client = r.config.curve_clients->find(curve_client);
    ASSERT_NE(client, r.config.curve_clients->end());
    EXPECT_TRUE(client->second.rights->may_register("orders"));
    EXPECT_FALSE(client->second.rights->may_register("billing"));

    // A copy of the configuration shares the compiled rights.
    const router_config copy = r.config;
    EXPECT_EQ(copy.auth_anonymous->rights, r.config.auth_anonymous->rights);

    // --print-config writes them as they were given, and reads them back.
    const std::string path = write_temp(to_json(r.config));
    const config_result again = parse({"--config", path});
    std::filesystem::remove(path);
    ASSERT_EQ(again.what, config_result::action::run) << again.error;
    EXPECT_EQ(to_json(again.config), to_json(r.config));
    ASSERT_TRUE(again.config.auth_anonymous);
    EXPECT_FALSE(again.config.auth_anonymous->rights->may_subscribe("public.secret"));

    // null: none.
    const config_result none = parse({"--auth-mode", "tokens", "--auth-hs256-secret", std::string(32, 's'),
                                      "--auth-anonymous", "null"});
    ASSERT_EQ(none.what, config_result::action::run) << none.error;
    EXPECT_FALSE(none.config.auth_anonymous);
    EXPECT_FALSE(none.config.curve_clients);
}

TEST(RouterConfig, BadConfiguredRightsAreRefusedWhenReadNamingTheKey) {
    const std::vector<std::string> tokens{"--auth-mode", "tokens", "--auth-hs256-secret", std::string(32, 's')};
    auto refused = [&](std::vector<std::string> extra, const std::string& expected) {
        std::vector<std::string> args = tokens;
        args.insert(args.end(), extra.begin(), extra.end());
        const config_result r = parse(args);
        EXPECT_EQ(r.what, config_result::action::fail) << extra[1];
        EXPECT_NE(r.error.find(expected), std::string::npos) << "expected '" << expected << "' in: " << r.error;
    };
    refused({"--auth-anonymous", R"({"subscribe":["a..b"]})"}, "auth.anonymous: subscribe: 'a..b' is not a valid rule");
    refused({"--auth-anonymous", R"({"publish":"x"})"}, "auth.anonymous: publish: expected an array of strings");
    refused({"--auth-anonymous", R"({"subscribes":["a"]})"}, "auth.anonymous: unknown key 'subscribes'");
    refused({"--auth-anonymous", "[1]"}, "auth.anonymous: expected an object");

    const std::vector<std::string> curve{"--backend-auth-curve-secret-key", curve_secret,
                                         "--backend-auth-curve-clients"};
    auto curve_refused = [&](const std::string& clients, const std::string& expected) {
        std::vector<std::string> extra = curve;
        extra.push_back(clients);
        refused(extra, expected);
    };
    curve_refused(R"(["x"])", "backend_auth.curve_clients: expected an object");
    curve_refused(R"({"short":{}})", "backend_auth.curve_clients: 'short' is not a 40-character Z85 key");
    const std::string not_z85(40, '~');
    curve_refused(R"({")" + not_z85 + R"(":{}})",
                  "backend_auth.curve_clients: '" + not_z85 + "' is not a 40-character Z85 key");
    curve_refused(std::string(R"({")") + curve_client + R"(":{"register":"orders"}})",
                  std::string("backend_auth.curve_clients: '") + curve_client +
                      "': register: expected an array of strings");

    // In a file, the error names the file and the key.
    const std::string file = write_temp(R"({"auth":{"mode":"tokens","hs256_secret":")" + std::string(32, 's') +
                                        R"(","anonymous":{"call":["a/b/c"]}}})");
    const config_result f = parse({"--config", file});
    std::filesystem::remove(file);
    EXPECT_EQ(f.what, config_result::action::fail);
    EXPECT_NE(f.error.find("config file: auth.anonymous: call: 'a/b/c' is not a valid rule"), std::string::npos)
        << f.error;
}

TEST(RouterConfig, SeveralRoutersNameTheirRedis) {
    EXPECT_TRUE(parse({}).config.cluster_redis.empty()) << "a router on its own by default";
    const config_result r = parse({"--cluster-redis", "redis://127.0.0.1:7000,127.0.0.1:7001", "--cluster-prefix", "plant-7"});
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    EXPECT_EQ(r.config.cluster_redis, (std::vector<std::string>{"redis://127.0.0.1:7000", "127.0.0.1:7001"}));
    EXPECT_EQ(r.config.cluster_prefix, "plant-7");
    const config_result with_user =
        parse({"--cluster-redis", "h:1", "--cluster-redis-user", "router", "--cluster-redis-password-file", "/run/pw"});
    ASSERT_EQ(with_user.what, config_result::action::run) << with_user.error;
    EXPECT_EQ(with_user.config.cluster_redis_user, "router");
    EXPECT_EQ(with_user.config.cluster_redis_password_file, "/run/pw");
    const config_result tls = parse({"--cluster-redis", "rediss://h:1,rediss://h:2", "--cluster-redis-tls-ca-file",
                                     "/ca.pem", "--cluster-redis-tls-cert-file", "/c.pem",
                                     "--cluster-redis-tls-key-file", "/k.pem"});
    ASSERT_EQ(tls.what, config_result::action::run) << tls.error;
    EXPECT_EQ(tls.config.cluster_redis_tls_ca_file, "/ca.pem");
    EXPECT_EQ(tls.config.cluster_redis_tls_cert_file, "/c.pem");
    EXPECT_EQ(tls.config.cluster_redis_tls_key_file, "/k.pem");
    EXPECT_EQ(parse({"--cluster-redis", "rediss://h:1"}).what, config_result::action::run)
        << "the system's CAs, and no client certificate, by default";
}

config_result parse_file(const std::string& text, std::vector<std::string> more = {}) {
    const std::string path = write_temp(text);
    std::vector<std::string> args{"--config", path};
    args.insert(args.end(), more.begin(), more.end());
    config_result r = parse(args);
    std::filesystem::remove(path);
    return r;
}

TEST(RouterConfig, NamespacesTakeTheRouterWideSettingsForWhatTheyLeaveOut) {
    const config_result r = parse_file(R"({"channels": {"namespaces": [
        {"pattern": "factory.>", "history_size": 100, "history_ttl_s": 300, "latest": false, "presence": false,
         "join_leave": false, "policy": "keep_latest", "max_message_bytes": 65536, "publish": "backends"},
        {"pattern": "chat.*"}]}})",
                                       {"--history-max-messages", "7", "--outbox-policy", "disconnect",
                                        "--channels-idempotency-window-s", "60"});
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    ASSERT_EQ(r.config.namespaces.size(), 2u);
    const nlohmann::json printed = nlohmann::json::parse(to_json(r.config))["channels"]["namespaces"];
    EXPECT_EQ(printed[0], nlohmann::json::parse(R"({"pattern": "factory.>", "history_size": 100,
        "history_ttl_s": 300, "policy": "keep_latest", "max_message_bytes": 65536, "publish": "backends",
        "message_ttl_s": 0, "idempotency_window_s": 60,
        "latest": false, "presence": false, "join_leave": false})"));
    EXPECT_EQ(printed[1], nlohmann::json::parse(R"({"pattern": "chat.*", "history_size": 7,
        "history_ttl_s": 3600, "policy": "disconnect", "max_message_bytes": 1048576, "publish": "anyone",
        "message_ttl_s": 0, "idempotency_window_s": 60,
        "latest": false, "presence": false, "join_leave": false})"))
        << "the flags given after the file reach what the namespace leaves out";

    const namespace_table table(r.config);
    EXPECT_EQ(table.of_channel("factory.line1.m3").history_size, 100u);
    EXPECT_EQ(table.of_channel("chat.lobby").history_size, 7u);
    EXPECT_EQ(table.of_channel("chat.lobby.x").history_size, 7u) << "no namespace: history.max_messages";
    EXPECT_EQ(table.pattern_of(table.of_channel("chat.lobby.x")), "");
    EXPECT_EQ(table.of_pattern("factory.*.m3").policy, slow_policy::keep_latest) << "factory.> holds every match";
    EXPECT_EQ(table.of_pattern("*.lobby").policy, slow_policy::disconnect) << "no namespace holds all of *.lobby";
    EXPECT_EQ(table.pattern_of(table.of_pattern("*.lobby")), "");
}

TEST(RouterConfig, ALatestNamespaceKeepsTheLastMessageEvenWithoutHistory) {
    const config_result r = parse_file(R"({"channels": {"namespaces": [
        {"pattern": "state.>", "latest": true, "history_size": 0}, {"pattern": "deep.>", "latest": true,
         "history_size": 9}, {"pattern": "none.>", "history_size": 0}]}})");
    ASSERT_EQ(r.what, config_result::action::run) << r.error;
    const nlohmann::json printed = nlohmann::json::parse(to_json(r.config))["channels"]["namespaces"];
    EXPECT_EQ(printed[0]["latest"], true);
    EXPECT_EQ(printed[0]["history_size"], 0) << "as written; its channels keep their last message all the same";
    const namespace_table table(r.config);
    EXPECT_TRUE(table.of_channel("state.m3").latest);
    EXPECT_EQ(table.of_channel("state.m3").messages_kept(), 1u);
    EXPECT_EQ(table.of_channel("deep.m3").messages_kept(), 9u);
    EXPECT_EQ(table.of_channel("none.m3").messages_kept(), 0u);
}

TEST(RouterConfig, WhereNamespacesOverlapTheMostSpecificWinsInAnyOrder) {
    for (const char* list : {R"([{"pattern": "a.>", "history_size": 1}, {"pattern": "a.*.>", "history_size": 2},
                                 {"pattern": "a.b.>", "history_size": 3}, {"pattern": "a.*.c", "history_size": 4}])",
                             R"([{"pattern": "a.*.c", "history_size": 4}, {"pattern": "a.b.>", "history_size": 3},
                                 {"pattern": "a.*.>", "history_size": 2}, {"pattern": "a.>", "history_size": 1}])"}) {
        const config_result r = parse({"--channels-namespaces", list});
        ASSERT_EQ(r.what, config_result::action::run) << r.error;
        const namespace_table table(r.config);
        EXPECT_EQ(table.of_channel("a.x").history_size, 1u) << list;
        EXPECT_EQ(table.of_channel("a.x.y").history_size, 2u) << list;
        EXPECT_EQ(table.of_channel("a.b.c").history_size, 3u) << "a literal beats * at the first difference";
        EXPECT_EQ(table.of_channel("a.x.c").history_size, 4u) << "a literal beats > at the first difference";
        EXPECT_EQ(table.of_channel("b.x").history_size, 64u) << list;
        EXPECT_EQ(table.pattern_of(table.of_channel("a.b.c")), "a.b.>");
    }
}

TEST(RouterConfig, BadNamespacesStopTheRouterNamingTheEntryAndTheKey) {
    struct bad {
        std::string namespaces, mentions;
    };
    for (const bad& c : {
             bad{R"({"pattern": "a.>"})", "channels.namespaces: expected an array of objects"},
             bad{R"(["a.>"])", "entry 1: expected an object"},
             bad{R"([{"history_size": 1}])", "entry 1: pattern: missing"},
             bad{R"([{"pattern": 7}])", "entry 1: pattern: expected a string"},
             bad{R"([{"pattern": "a.>.b"}])", "entry 1: pattern: 'a.>.b' has '>' before its last token"},
             bad{R"([{"pattern": "a..b"}])", "entry 1: pattern: 'a..b' has an empty token"},
             bad{R"([{"pattern": "a.>"}, {"pattern": "b", "histroy_size": 1}])", "entry 2 ('b'): unknown key 'histroy_size'"},
             bad{R"([{"pattern": "a", "history_size": -1}])", "entry 1 ('a'): history_size: expected a non-negative integer"},
             bad{R"([{"pattern": "a", "history_size": "10"}])", "history_size: expected a non-negative integer"},
             bad{R"([{"pattern": "a", "history_size": 2000000}])", "history_size: must be between 0 and 1048576"},
             bad{R"([{"pattern": "a", "history_ttl_s": 0}])", "history_ttl_s: must be between 1 and"},
             bad{R"([{"pattern": "a", "max_message_bytes": 0}])", "max_message_bytes: must be between 1 and"},
             bad{R"([{"pattern": "a", "max_message_bytes": 1.5}])", "max_message_bytes: expected a non-negative integer"},
             bad{R"([{"pattern": "a", "policy": "sometimes"}])", "policy: \"sometimes\" is not one of drop_oldest|keep_latest|disconnect"},
             bad{R"([{"pattern": "a", "policy": 2}])", "policy: 2 is not one of"},
             bad{R"([{"pattern": "a", "publish": "frontends"}])", "publish: \"frontends\" is not one of anyone|backends"},
             bad{R"([{"pattern": "a", "presence": "yes"}])", "presence: expected true or false"},
             bad{R"([{"pattern": "a", "latest": 1}])", "entry 1 ('a'): latest: expected true or false"},
             bad{R"([{"pattern": "a", "join_leave": "yes"}])", "join_leave: expected true or false"},
             bad{R"([{"pattern": "a", "join_leave": true}])",
                 "channels.namespaces 'a': join_leave needs presence"},
             bad{R"([{"pattern": "a.*"}, {"pattern": "a.*"}])", "entry 2: the pattern 'a.*' is listed twice"},
             bad{R"([{"pattern": "a", "max_message_bytes": 2000000}])",
                 "channels.namespaces 'a': max_message_bytes must not exceed limits.max_payload (1048576)"},
             bad{R"([{"pattern": "a", "history_ttl_s": 3000000}])",
                 "channels.namespaces 'a': history_ttl_s must not exceed history.meta_ttl_s"},
         }) {
        const config_result r = parse_file(R"({"channels": {"namespaces": )" + c.namespaces + "}}");
        EXPECT_EQ(r.what, config_result::action::fail) << c.namespaces;
        EXPECT_NE(r.error.find(c.mentions), std::string::npos) << c.namespaces << " -> " << r.error;
    }
    const std::string presence = R"({"channels": {"namespaces": [{"pattern": "a", "presence": true, "join_leave": true}]}})";
    const config_result alone = parse_file(presence);
    ASSERT_EQ(alone.what, config_result::action::run) << alone.error;
    EXPECT_TRUE(namespace_table(alone.config).of_channel("a").join_leave);
    const config_result flag = parse({"--channels-namespaces", R"([{"pattern": "a", "pubish": "backends"}])"});
    EXPECT_EQ(flag.what, config_result::action::fail);
    EXPECT_NE(flag.error.find("--channels-namespaces: channels.namespaces: entry 1 ('a'): unknown key 'pubish'"),
              std::string::npos)
        << flag.error;
}

TEST(RouterConfig, PrintedNamespacesReadBackAsAConfigFile) {
    const config_result first =
        parse({"--channels-namespaces", R"([{"pattern": "factory.>", "history_size": 5, "publish": "backends"}])"});
    ASSERT_EQ(first.what, config_result::action::run) << first.error;
    const config_result second = parse_file(to_json(first.config));
    ASSERT_EQ(second.what, config_result::action::run) << second.error;
    EXPECT_EQ(to_json(second.config), to_json(first.config));
    EXPECT_NE(help_text("hyperstreams-router").find("--channels-namespaces JSON"), std::string::npos);
}

TEST(RouterConfig, PermessageDeflateIsOffUntilEnabledInAFileOrByFlags) {
    const config_result defaults = parse({});
    ASSERT_EQ(defaults.what, config_result::action::run) << defaults.error;
    EXPECT_FALSE(defaults.config.ws_deflate_enabled);
    EXPECT_EQ(defaults.config.ws_deflate_server_max_window_bits, 10u);
    EXPECT_EQ(defaults.config.ws_deflate_client_max_window_bits, 10u);

    const std::string path = write_temp(
        R"({"ws": {"permessage_deflate": {"enabled": true, "server_max_window_bits": 12, "threshold_bytes": 1024,
            "server_no_context_takeover": true}}})");
    const config_result file = parse({"--config", path, "--ws-permessage-deflate-level", "1"});
    std::filesystem::remove(path);
    ASSERT_EQ(file.what, config_result::action::run) << file.error;
    EXPECT_TRUE(file.config.ws_deflate_enabled);
    EXPECT_EQ(file.config.ws_deflate_server_max_window_bits, 12u);
    EXPECT_EQ(file.config.ws_deflate_threshold_bytes, 1024u);
    EXPECT_EQ(file.config.ws_deflate_level, 1u);
    EXPECT_TRUE(file.config.ws_deflate_server_no_context_takeover);
    EXPECT_FALSE(file.config.ws_deflate_client_no_context_takeover);

    const auto printed = nlohmann::json::parse(to_json(file.config));
    EXPECT_EQ(printed["ws"]["permessage_deflate"]["enabled"], true);
    EXPECT_EQ(printed["ws"]["permessage_deflate"]["server_max_window_bits"], 12);

    const config_result flags = parse({"--ws-permessage-deflate-enabled", "true",
                                       "--ws-permessage-deflate-client-no-context-takeover=true"});
    ASSERT_EQ(flags.what, config_result::action::run) << flags.error;
    EXPECT_TRUE(flags.config.ws_deflate_enabled);
    EXPECT_TRUE(flags.config.ws_deflate_client_no_context_takeover);
}

TEST(RouterConfig, BadPermessageDeflateSettingsNameTheKey) {
    struct bad {
        std::vector<std::string> args;
        std::string mentions;
    };
    for (const bad& b : {bad{{"--ws-permessage-deflate-server-max-window-bits", "8"},
                             "ws.permessage_deflate.server_max_window_bits: must be between 9 and 15"},
                         bad{{"--ws-permessage-deflate-client-max-window-bits", "16"},
                             "ws.permessage_deflate.client_max_window_bits: must be between 9 and 15"},
                         bad{{"--ws-permessage-deflate-level", "10"}, "ws.permessage_deflate.level"},
                         bad{{"--ws-permessage-deflate-mem-level", "0"}, "ws.permessage_deflate.mem_level"},
                         bad{{"--ws-permessage-deflate-enabled", "1"},
                             "--ws-permessage-deflate-enabled: '1' is not true or false"}}) {
        const config_result r = parse(b.args);
        EXPECT_EQ(r.what, config_result::action::fail) << b.args[0];
        EXPECT_NE(r.error.find(b.mentions), std::string::npos) << b.args[0] << " -> " << r.error;
    }
    const std::string path = write_temp(R"({"ws": {"permessage_deflate": {"enabled": "yes"}}})");
    const config_result file = parse({"--config", path});
    std::filesystem::remove(path);
    EXPECT_EQ(file.what, config_result::action::fail);
    EXPECT_NE(file.error.find("ws.permessage_deflate.enabled: expected true or false"), std::string::npos)
        << file.error;
}

TEST(RouterConfig, HostPortSplitting) {
    std::string host;
    std::uint16_t port = 0;
    EXPECT_TRUE(split_host_port("127.0.0.1:0", host, port));
    EXPECT_EQ(host, "127.0.0.1");
    EXPECT_EQ(port, 0);
    EXPECT_TRUE(split_host_port("[::1]:8080", host, port));
    EXPECT_EQ(host, "::1");
    EXPECT_EQ(port, 8080);
    EXPECT_FALSE(split_host_port("::1:8080", host, port));
    EXPECT_FALSE(split_host_port(":80", host, port));
    EXPECT_FALSE(split_host_port("host:", host, port));
    EXPECT_FALSE(split_host_port("host:80x", host, port));
}

}  // namespace
}  // namespace hyperstreams::router
