// The router's configuration: embedded defaults, then a JSON file
// (--config), then command-line flags, each overriding the one before.
//
// Every option has one entry in a table (config.cpp): its JSON key
// ("history.max_messages"), its flag (--history-max-messages), its default
// and its help text. The file, the flags, --help and --print-config all read
// that table, so they cannot disagree.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "grants.hpp"
#include "hyperstreams/frame.hpp"
#include "log.hpp"
#include "namespaces.hpp"

namespace hyperstreams::router {

enum class balance_policy : std::uint8_t { least_pending, round_robin };

// open: every connection may do everything (the demo and the default when
// nothing is configured). tokens: access control by JWT (docs/PROTOCOL.md,
// "Access control").
enum class auth_mode : std::uint8_t { open, tokens };

// Rights the configuration grants where no token does (auth.anonymous, each
// backend of backend_auth.curve_clients), written in the hs claim's form.
// Checked and compiled once, when the configuration is read; every copy of
// the configuration and every connection holding them shares them.
struct configured_grants {
    std::shared_ptr<const grants> rights;
    std::shared_ptr<const nlohmann::json> as_written;  // printed back by --print-config
};

// Z85 public key (40 characters) of each backend let in over CURVE -> its rights.
using curve_client_map = std::map<std::string, configured_grants, std::less<>>;

struct router_config {
    std::string listen = "127.0.0.1:7070";
    std::string backend = "tcp://127.0.0.1:7071";
    // /metrics and /status: HOST:PORT of a listener of their own, "same"
    // (on `listen`) or "off". /healthz is on every listener.
    std::string admin_listen = "127.0.0.1:7072";
    std::string admin_token_file;  // set: /metrics and /status want its bearer token
    std::string web;  // directory of the dashboard's static files; empty: none
    std::string ws_path = "/ws";
    std::uint32_t threads = 0;  // 0: one per core but one, at least one
    std::string router_id;      // empty: generated at start

    log::level log_level = log::level::info;
    log::format log_format = log::format::text;

    std::uint32_t heartbeat_interval_ms = 5000;
    std::uint32_t heartbeat_timeout_ms = 15000;
    std::uint32_t handshake_timeout_ms = 10000;

    std::uint32_t max_payload = 1u << 20;
    std::uint32_t max_message_bytes = (1u << 20) + (64u << 10);
    std::uint32_t max_subscriptions = 1024;
    std::uint32_t max_pending_requests = 1024;
    std::uint32_t max_connections = 10000;
    std::uint32_t max_http_connections = 1024;  // per listener, not upgraded to WebSocket
    std::uint32_t max_channels = 100000;
    std::uint32_t max_services = 10000;             // names known: served, or in their grace period
    std::uint32_t max_services_per_backend = 1000;  // names one connection serves
    std::uint32_t max_methods_per_service = 256;    // methods over all of a service's instances

    std::uint64_t outbox_max_bytes = 4u << 20;
    slow_policy outbox_policy = slow_policy::drop_oldest;
    std::uint32_t outbox_batch_bytes = 256u << 10;
    std::uint32_t outbox_zmq_hwm = 1000;

    std::uint32_t history_max_messages = 64;
    std::uint64_t history_max_bytes = 256u << 10;
    std::uint64_t history_max_total_bytes = 256u << 20;
    // With cluster.redis: the history in Redis expires this long after a
    // channel's last publication; its epoch and position (the meta hash)
    // after history_meta_ttl_s.
    std::uint32_t history_ttl_s = 3600;
    std::uint32_t history_meta_ttl_s = 30 * 24 * 3600;

    // Idempotent publish: a key's repeat within the window is acked with the
    // first publication's position and not delivered again. A channel
    // remembers at most idempotency_max_keys keys (the oldest is forgotten
    // first: its repeat is then a new publication).
    std::uint32_t idempotency_window_s = 300;
    std::uint32_t idempotency_max_keys = 1000;

    // Options of the channels each pattern matches (namespaces.hpp); the
    // channels none matches take the router-wide settings.
    std::vector<namespace_config> namespaces;

    // Several routers as one: the Redis server, or the seeds of a Redis
    // Cluster ("redis://HOST:PORT", "HOST:PORT", or "rediss://HOST:PORT" for
    // TLS: all or none); empty: a router on its own.
    std::vector<std::string> cluster_redis;
    std::string cluster_prefix = "hs";  // of every Redis key and channel
    // Redis's credentials (AUTH on every connection): a password alone is
    // the default user's (requirepass); with a user, an ACL user's. The
    // password, or a file holding it (its bytes, a final newline removed).
    std::string cluster_redis_user;
    std::string cluster_redis_password;
    std::string cluster_redis_password_file;
    // TLS to Redis ("rediss://" addresses): the CAs that Redis's certificate
    // must verify against (empty: the system's), and the router's own
    // certificate and key for a Redis that asks for one (both or neither).
    std::string cluster_redis_tls_ca_file;
    std::string cluster_redis_tls_cert_file;
    std::string cluster_redis_tls_key_file;
    // A publish acked only once this many replicas of its Redis master have
    // it (Redis's WAIT after its script), within the timeout; else it fails
    // with cluster_outcome_unknown. 0: acked once the master has it.
    std::uint32_t cluster_redis_wait_replicas = 0;
    std::uint32_t cluster_redis_wait_timeout_ms = 1000;
    // Where the other routers' clients reach this one; empty: the bound addresses.
    std::string cluster_advertise_ws;
    std::string cluster_advertise_backend;

    std::uint32_t default_deadline_ms = 30000;
    std::uint32_t max_deadline_ms = 300000;
    balance_policy balance = balance_policy::least_pending;
    std::uint32_t service_grace_ms = 60000;  // a service nobody serves is forgotten after this

    std::uint32_t drain_timeout_ms = 10000;
    std::string drain_redirect_url;      // WebSocket clients
    std::string drain_redirect_backend;  // ZeroMQ backends: a tcp:// or ipc:// endpoint

    auth_mode auth = auth_mode::open;
    std::string auth_hs256_secret;
    std::string auth_hs256_secret_file;
    std::string auth_public_key_file;
    std::optional<configured_grants> auth_anonymous;  // nullopt: connections without a token are refused
    std::uint32_t auth_expiry_grace_ms = 30000;
    std::uint32_t auth_leeway_s = 5;
    std::uint32_t auth_max_token_bytes = 16384;
    std::uint32_t auth_max_rules = 1024;
    std::uint32_t connections_per_subject = 100;  // 0: no limit
    std::uint32_t publish_rate = 0;               // publishes per second per connection; 0: no limit
    std::uint32_t publish_burst = 0;              // 0: the rate (one second's worth)

    std::vector<std::string> allowed_origins;  // empty: any Origin

    // permessage-deflate (RFC 7692) on the WebSocket listener: off unless
    // enabled; then each connection whose client offers it compresses the
    // messages of at least ws_deflate_threshold_bytes it sends, and inflates
    // those it receives compressed.
    bool ws_deflate_enabled = false;
    // 2^10-byte windows: a connection that negotiated the extension holds
    // 12 KiB of compressor and 1 KiB of inflate window instead of 136 and
    // 32 KiB, and compressing costs half the CPU, for 1.6x the bytes of
    // 2^15 on the simulator's telemetry (docs/BENCHMARKS.md).
    std::uint32_t ws_deflate_server_max_window_bits = 10;  // the router's compression window
    std::uint32_t ws_deflate_client_max_window_bits = 10;  // asked of clients that offer the parameter
    std::uint32_t ws_deflate_threshold_bytes = 128;
    std::uint32_t ws_deflate_level = 6;      // zlib's compression level
    std::uint32_t ws_deflate_mem_level = 4;  // zlib's memLevel: the compressor's hash table and buffer
    bool ws_deflate_server_no_context_takeover = false;
    bool ws_deflate_client_no_context_takeover = false;

    std::string tls_cert_file;  // both set: the listener speaks TLS only (https, wss)
    std::string tls_key_file;

    std::string curve_secret_key;  // Z85; set: backends must use CURVE
    // Keys not listed are refused by the ZAP handler. Set (even empty) only
    // with curve_secret_key.
    std::optional<curve_client_map> curve_clients;
};

// Outcome of parsing the command line.
struct config_result {
    enum class action : std::uint8_t { run, help, version, print_config, fail };
    action what = action::run;
    router_config config;
    std::string error;  // set when what == fail: one line naming the option and the problem
};

// Parses argv (argv[0] is the program). Reads the --config file if given.
config_result parse_command_line(int argc, const char* const* argv);

// Applies a JSON document (the contents of a config file) to `cfg`. Unknown
// keys and values of the wrong type or range are errors. Returns "" on success.
std::string apply_json(router_config& cfg, std::string_view json_text);

// Checks cross-option constraints. Returns "" when the configuration is usable.
std::string validate(const router_config& cfg);

// The effective configuration as a JSON document, in the config file format.
std::string to_json(const router_config& cfg);

// The --help text: usage and every option with its flag, key and default.
std::string help_text(std::string_view program);

std::string_view policy_name(slow_policy p) noexcept;

// A secret or key kept in a file (auth.hs256_secret_file,
// auth.public_key_file, admin.token_file, cluster.redis_password_file): its
// bytes, a final newline ("\n" or "\r\n") removed. False when it cannot
// be read.
bool read_secret_file(const std::string& path, std::string& out);

// Splits "host:port" (IPv6 hosts in brackets); false when malformed.
bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port);

}  // namespace hyperstreams::router
