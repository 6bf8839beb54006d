#include "config_options.hpp"

#include "grants.hpp"

namespace hyperstreams::router::config_detail {
namespace {

template <typename T>
option integer(std::string_view key, T router_config::*field, std::uint64_t min, std::uint64_t max,
               std::string_view help) {
    option o;
    o.key = key;
    o.help = help;
    o.type = option_type::integer;
    o.min = min;
    o.max = max;
    o.get = [field](const router_config& c) { return json(c.*field); };
    o.set = [field](router_config& c, const json& v) { c.*field = static_cast<T>(v.get<std::uint64_t>()); };
    return o;
}

option text(std::string_view key, std::string router_config::*field, std::string_view help) {
    option o;
    o.key = key;
    o.help = help;
    o.get = [field](const router_config& c) { return json(c.*field); };
    o.set = [field](router_config& c, const json& v) { c.*field = v.get<std::string>(); };
    return o;
}

// Rights in the hs claim's form (grants.hpp), with the same checks as a
// token's claim.
std::string parse_configured_grants(const json& v, configured_grants& out) {
    grants rights;
    if (std::string err = parse_grants(v, rights); !err.empty()) return err;
    out.rights = std::make_shared<const grants>(std::move(rights));
    out.as_written = std::make_shared<const json>(v);
    return {};
}

// The characters of Z85 (ZeroMQ RFC 32); a CURVE key is 40 of them.
bool is_z85_key(std::string_view key) noexcept {
    constexpr std::string_view alphabet =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    return key.size() == 40 && key.find_first_not_of(alphabet) == std::string_view::npos;
}

// auth.anonymous: rights, or null for none.
option anonymous_grants(std::string_view key, std::string_view help) {
    option o;
    o.key = key;
    o.help = help;
    o.type = option_type::json_value;
    o.get = [](const router_config& c) { return c.auth_anonymous ? *c.auth_anonymous->as_written : json(nullptr); };
    o.parse = [](router_config& c, const json& v) -> std::string {
        if (v.is_null()) {
            c.auth_anonymous.reset();
            return {};
        }
        configured_grants rights;
        if (std::string err = parse_configured_grants(v, rights); !err.empty()) return err;
        c.auth_anonymous = std::move(rights);
        return {};
    };
    return o;
}

// backend_auth.curve_clients: an object from Z85 public keys to rights, or
// null for none.
option curve_client_grants(std::string_view key, std::string_view help) {
    option o;
    o.key = key;
    o.help = help;
    o.type = option_type::json_value;
    o.get = [](const router_config& c) {
        if (!c.curve_clients) return json(nullptr);
        json clients = json::object();
        for (const auto& [public_key, client] : *c.curve_clients) clients[public_key] = *client.as_written;
        return clients;
    };
    o.parse = [](router_config& c, const json& v) -> std::string {
        if (v.is_null()) {
            c.curve_clients.reset();
            return {};
        }
        if (!v.is_object()) return "expected an object from Z85 public keys to rights";
        curve_client_map clients;
        for (const auto& [public_key, rights] : v.items()) {
            if (!is_z85_key(public_key)) return "'" + public_key + "' is not a 40-character Z85 key";
            configured_grants parsed;
            if (std::string err = parse_configured_grants(rights, parsed); !err.empty())
                return "'" + public_key + "': " + err;
            clients.emplace(public_key, std::move(parsed));
        }
        c.curve_clients = std::move(clients);
        return {};
    };
    return o;
}

// channels.namespaces: an array of namespaces (namespaces.hpp).
option channel_namespaces(std::string_view key, std::string_view help) {
    option o;
    o.key = key;
    o.help = help;
    o.type = option_type::json_value;
    o.get = [](const router_config& c) { return namespaces_json(c); };
    o.parse = [](router_config& c, const json& v) { return parse_namespaces(v, c.namespaces); };
    return o;
}

option boolean(std::string_view key, bool router_config::*field, std::string_view help) {
    option o;
    o.key = key;
    o.help = help;
    o.type = option_type::boolean;
    o.get = [field](const router_config& c) { return json(c.*field); };
    o.set = [field](router_config& c, const json& v) { c.*field = v.get<bool>(); };
    return o;
}

option list(std::string_view key, std::vector<std::string> router_config::*field, std::string_view help) {
    option o;
    o.key = key;
    o.help = help;
    o.type = option_type::list;
    o.get = [field](const router_config& c) { return json(c.*field); };
    o.set = [field](router_config& c, const json& v) { c.*field = v.get<std::vector<std::string>>(); };
    return o;
}

option choice(std::string_view key, std::vector<std::string_view> choices, std::string_view help,
              std::function<std::string_view(const router_config&)> get,
              std::function<void(router_config&, std::string_view)> set) {
    option o;
    o.key = key;
    o.help = help;
    o.type = option_type::choice;
    o.choices = std::move(choices);
    o.get = [get](const router_config& c) { return json(std::string(get(c))); };
    o.set = [set](router_config& c, const json& v) { set(c, v.get<std::string>()); };
    return o;
}

constexpr std::uint64_t u32_max = 0xFFFFFFFFu;

}  // namespace

const std::vector<option>& options() {
    static const std::vector<option> table = [] {
        std::vector<option> t;
        t.push_back(text("listen", &router_config::listen,
                         "HTTP and WebSocket listener, HOST:PORT (port 0: any free port; the bound "
                         "address is printed on stdout)"));
        t.push_back(text("backend", &router_config::backend,
                         "ZeroMQ ROUTER endpoint for backends (tcp://HOST:PORT, port * or 0: any "
                         "free port; ipc://PATH)"));
        t.push_back(text("admin.listen", &router_config::admin_listen,
                         "where /metrics and /status (the admin endpoints) are served: HOST:PORT of a "
                         "listener of their own (port 0: any free port, printed on stdout), same (on "
                         "--listen, beside the WebSocket and the files) or off; /healthz is on every "
                         "listener"));
        t.push_back(text("admin.token_file", &router_config::admin_token_file,
                         "file holding the admin bearer token (at least 16 visible ASCII characters; a "
                         "final newline is dropped): /metrics and /status then answer 401 without "
                         "'Authorization: Bearer TOKEN'; /healthz never asks; empty: no token"));
        t.push_back(text("web", &router_config::web,
                         "directory of static files served on / (the dashboard); empty: none"));
        t.push_back(text("ws_path", &router_config::ws_path, "HTTP path of the WebSocket upgrade"));
        t.push_back(integer("threads", &router_config::threads, 0, 256,
                            "I/O worker threads for HTTP/WebSocket (the first also serves the ZeroMQ socket); 0: one per "
                            "core but one (left to libzmq's I/O thread), at least one"));
        t.push_back(text("router_id", &router_config::router_id,
                         "this router's name in welcome frames and logs; empty: generated"));
        t.push_back(choice(
            "log.level", {"trace", "debug", "info", "warn", "error", "off"}, "lowest level logged",
            [](const router_config& c) { return log::level_name(c.log_level); },
            [](router_config& c, std::string_view v) { log::parse_level(v, c.log_level); }));
        t.push_back(choice(
            "log.format", {"text", "json"}, "log lines as key=value text or JSON lines (stderr)",
            [](const router_config& c) -> std::string_view {
                return c.log_format == log::format::json ? "json" : "text";
            },
            [](router_config& c, std::string_view v) {
                c.log_format = v == "json" ? log::format::json : log::format::text;
            }));
        t.push_back(integer("heartbeat.interval_ms", &router_config::heartbeat_interval_ms, 100,
                            u32_max,
                            "a connection the router sent nothing to for this long is pinged; clients "
                            "ping when they sent nothing for this long"));
        t.push_back(integer("heartbeat.timeout_ms", &router_config::heartbeat_timeout_ms, 200,
                            u32_max,
                            "a connection silent this long is dead: frontends are closed, backends "
                            "removed and their requests fail with backend_gone (more than twice "
                            "heartbeat.interval_ms)"));
        t.push_back(integer("handshake_timeout_ms", &router_config::handshake_timeout_ms, 100,
                            u32_max, "time a new connection has to send hello"));
        t.push_back(integer("limits.max_payload", &router_config::max_payload, 1024, 1u << 30,
                            "payload bytes per frame"));
        t.push_back(integer("limits.max_message_bytes", &router_config::max_message_bytes, 2048,
                            (1u << 30) + (1u << 20),
                            "bytes per WebSocket message / ZeroMQ message (one batch of frames); "
                            "larger ones are refused before allocation"));
        t.push_back(integer("limits.max_subscriptions", &router_config::max_subscriptions, 1,
                            u32_max, "subscriptions per connection"));
        t.push_back(integer("limits.max_pending_requests", &router_config::max_pending_requests, 1,
                            u32_max, "requests and streams a connection may have open at once"));
        t.push_back(integer("limits.max_connections", &router_config::max_connections, 1, u32_max,
                            "connections on both transports together"));
        t.push_back(integer("limits.max_http_connections", &router_config::max_http_connections, 1, u32_max,
                            "connections each HTTP listener holds before they upgrade to WebSocket "
                            "(TLS handshakes, requests for files, /healthz, upgrades under way, idle "
                            "keep-alive); past it a new one is closed as soon as accepted"));
        t.push_back(integer("limits.max_channels", &router_config::max_channels, 1, u32_max,
                            "channels the router keeps state for; past it the least recently "
                            "published is forgotten (its next message starts a new epoch)"));
        t.push_back(integer("limits.max_services", &router_config::max_services, 1, 1u << 20,
                            "service names the router knows (served, or in their grace period); "
                            "a register past it is refused with too_many_services"));
        t.push_back(integer("limits.max_services_per_backend", &router_config::max_services_per_backend,
                            1, 1u << 20, "service names one backend connection may serve"));
        t.push_back(integer("limits.max_methods_per_service", &router_config::max_methods_per_service,
                            1, 0xFFFF, "methods of one service, over all its instances"));
        t.push_back(integer("outbox.max_bytes", &router_config::outbox_max_bytes, 4096,
                            std::uint64_t{1} << 40,
                            "bound of each connection's outgoing queue; control frames may use up "
                            "to twice this before the connection is closed with slow_consumer"));
        t.push_back(choice(
            "outbox.policy", {"drop_oldest", "keep_latest", "disconnect"},
            "what happens to a subscriber whose queue is full, unless its subscribe asks for "
            "another policy: drop its oldest messages and send a gap, keep only the newest "
            "message per channel (with a gap), or close it with slow_consumer",
            [](const router_config& c) { return policy_name(c.outbox_policy); },
            [](router_config& c, std::string_view v) {
                c.outbox_policy = v == "keep_latest"  ? slow_policy::keep_latest
                                  : v == "disconnect" ? slow_policy::disconnect
                                                      : slow_policy::drop_oldest;
            }));
        t.push_back(integer("outbox.batch_bytes", &router_config::outbox_batch_bytes, 1024,
                            u32_max,
                            "queued frames are coalesced into one WebSocket/ZeroMQ message of up to "
                            "this many bytes (a single larger frame goes alone)"));
        t.push_back(integer("outbox.zmq_hwm", &router_config::outbox_zmq_hwm, 1, 1u << 20,
                            "ZeroMQ messages (each one such batch) libzmq may hold for a backend "
                            "that does not read before the router stops sending to it (ZMQ_SNDHWM); "
                            "past it frames wait in the outbox, under its bound and policy"));
        t.push_back(integer("history.max_messages", &router_config::history_max_messages, 0,
                            1u << 20, "messages kept per channel for resume; 0: no history"));
        t.push_back(integer("history.max_bytes", &router_config::history_max_bytes, 0,
                            std::uint64_t{1} << 40, "bytes of history kept per channel"));
        t.push_back(integer("history.max_total_bytes", &router_config::history_max_total_bytes, 0,
                            std::uint64_t{1} << 40,
                            "bytes of history over all channels; past it the least recently "
                            "published channels lose their history first; 0: no bound"));
        t.push_back(integer("history.ttl_s", &router_config::history_ttl_s, 1, u32_max,
                            "with cluster.redis: a channel's history in Redis expires this long after "
                            "its last publication"));
        t.push_back(integer("history.meta_ttl_s", &router_config::history_meta_ttl_s, 1, u32_max,
                            "with cluster.redis: a channel's epoch and position in Redis expire this "
                            "long after its last publication (then it starts again with a new epoch); "
                            "at least history.ttl_s"));
        t.push_back(integer("channels.idempotency_window_s", &router_config::idempotency_window_s, 1, u32_max,
                            "a publish repeating an idempotency key within this many seconds of the "
                            "key's first publication is acked with its position and not delivered again"));
        t.push_back(integer("channels.idempotency_max_keys", &router_config::idempotency_max_keys, 1, 1u << 20,
                            "idempotency keys a channel remembers within the window (one router); past it "
                            "the oldest is forgotten first, and its repeat is published again"));
        t.push_back(channel_namespaces(
            "channels.namespaces",
            "options of the channels a pattern matches: a list of objects {\"pattern\": \"factory.>\", "
            "\"history_size\": N, \"history_ttl_s\": N, \"policy\": drop_oldest|keep_latest|disconnect, "
            "\"max_message_bytes\": N, \"publish\": anyone|backends, \"latest\": true|false, "
            "\"presence\": true|false, \"join_leave\": true|false, \"message_ttl_s\": N, "
            "\"idempotency_window_s\": N}; a key left out is the router-wide setting (history.max_messages, "
            "history.ttl_s, outbox.policy, limits.max_payload, anyone, false, false, false, no expiry, "
            "channels.idempotency_window_s); latest: a subscribe may ask for each channel's last message, "
            "which the channel keeps; presence: who is subscribed to each channel; join_leave (with "
            "presence): join and leave events for the subscriptions that ask; where patterns overlap the "
            "most specific wins (a literal token over *, * over >)"));
        t.push_back(list("cluster.redis", &router_config::cluster_redis,
                         "several routers as one: the Redis server, or the seeds of a Redis Cluster "
                         "(redis://HOST:PORT, or rediss://HOST:PORT for TLS to every node: all or none), "
                         "which every router of the cluster names; empty: this router on its own"));
        t.push_back(text("cluster.redis_user", &router_config::cluster_redis_user,
                         "with cluster.redis: the ACL user the routers authenticate as (AUTH), with "
                         "cluster.redis_password; empty: the default user"));
        t.push_back(text("cluster.redis_password", &router_config::cluster_redis_password,
                         "with cluster.redis: the password sent (AUTH) on every connection to Redis "
                         "(prefer cluster.redis_password_file: a flag shows in the process list); "
                         "empty: none"));
        t.push_back(text("cluster.redis_password_file", &router_config::cluster_redis_password_file,
                         "file holding cluster.redis_password (its bytes, a final newline removed)"));
        t.push_back(text("cluster.redis_tls_ca_file", &router_config::cluster_redis_tls_ca_file,
                         "with rediss:// addresses: PEM CA certificates that Redis's certificate must "
                         "verify against, for the host or IP address connected to; empty: the system's"));
        t.push_back(text("cluster.redis_tls_cert_file", &router_config::cluster_redis_tls_cert_file,
                         "with rediss:// addresses: PEM certificate (chain) the router shows Redis, which "
                         "asks for one unless configured with tls-auth-clients no; empty: none"));
        t.push_back(text("cluster.redis_tls_key_file", &router_config::cluster_redis_tls_key_file,
                         "PEM private key of cluster.redis_tls_cert_file"));
        t.push_back(integer("cluster.redis_wait_replicas", &router_config::cluster_redis_wait_replicas, 0, 64,
                            "with cluster.redis: a publish is acked only once this many replicas of its "
                            "Redis master acknowledged it (WAIT), so that a failover does not lose it; "
                            "else it fails with cluster_outcome_unknown (it was published); 0: acked once "
                            "the master has it"));
        t.push_back(integer("cluster.redis_wait_timeout_ms", &router_config::cluster_redis_wait_timeout_ms, 1,
                            1500,
                            "with cluster.redis_wait_replicas: how long a publish waits for the replicas "
                            "(WAIT's timeout, under the 2 s a Redis command may take; deliveries and the "
                            "router's other commands do not wait for it)"));
        t.push_back(text("cluster.prefix", &router_config::cluster_prefix,
                         "prefix of every Redis key and channel of the cluster (letters, digits, "
                         "'_', '-')"));
        t.push_back(text("cluster.advertise_ws", &router_config::cluster_advertise_ws,
                         "with cluster.redis: the WebSocket URL other routers send clients to when "
                         "this one drains (ws://HOST:PORT/PATH); empty: the address it listens on, "
                         "which must then not be a wildcard"));
        t.push_back(text("cluster.advertise_backend", &router_config::cluster_advertise_backend,
                         "with cluster.redis: the backend endpoint backends of the other routers "
                         "join this one at (tcp://HOST:PORT or ipc://PATH); empty: the endpoint it "
                         "binds, which must then not be a wildcard"));
        t.push_back(integer("requests.default_deadline_ms", &router_config::default_deadline_ms, 1,
                            u32_max, "deadline of a request that names none"));
        t.push_back(integer("requests.max_deadline_ms", &router_config::max_deadline_ms, 1, u32_max,
                            "longest deadline the router grants to a request or stream"));
        t.push_back(choice(
            "requests.balance", {"least_pending", "round_robin"},
            "how a request picks among a service's instances",
            [](const router_config& c) -> std::string_view {
                return c.balance == balance_policy::round_robin ? "round_robin" : "least_pending";
            },
            [](router_config& c, std::string_view v) {
                c.balance = v == "round_robin" ? balance_policy::round_robin
                                               : balance_policy::least_pending;
            }));
        t.push_back(integer("requests.service_grace_ms", &router_config::service_grace_ms, 0, u32_max,
                            "a service whose last instance left is forgotten after this: until "
                            "then calls to it fail with no_instance_available, afterwards with "
                            "no_such_service"));
        t.push_back(integer("drain.timeout_ms", &router_config::drain_timeout_ms, 0, u32_max,
                            "on SIGTERM/SIGINT, time in-flight requests get to finish before they "
                            "fail with going_away"));
        t.push_back(text("drain.redirect_url", &router_config::drain_redirect_url,
                         "on drain, send WebSocket clients a redirect to this URL (ws:// or wss://) "
                         "instead of a goodbye"));
        t.push_back(text("drain.redirect_backend", &router_config::drain_redirect_backend,
                         "on drain, send ZeroMQ backends a redirect to this endpoint (tcp:// or "
                         "ipc://) instead of a goodbye"));
        t.push_back(choice(
            "auth.mode", {"open", "tokens"},
            "open: every connection may do everything (no tokens checked; for the demo and "
            "trusted networks); tokens: a JWT in hello grants rights (docs/PROTOCOL.md, Access "
            "control), connections without one get auth.anonymous",
            [](const router_config& c) -> std::string_view {
                return c.auth == auth_mode::tokens ? "tokens" : "open";
            },
            [](router_config& c, std::string_view v) {
                c.auth = v == "tokens" ? auth_mode::tokens : auth_mode::open;
            }));
        t.push_back(text("auth.hs256_secret", &router_config::auth_hs256_secret,
                         "shared secret of HS256 tokens (prefer auth.hs256_secret_file)"));
        t.push_back(text("auth.hs256_secret_file", &router_config::auth_hs256_secret_file,
                         "file holding the HS256 secret (its bytes, a final newline removed)"));
        t.push_back(text("auth.public_key_file", &router_config::auth_public_key_file,
                         "PEM public key of RS256 (RSA >= 2048 bits) or ES256 (EC P-256) tokens"));
        t.push_back(anonymous_grants("auth.anonymous",
                                     "rights of connections without a token, an object of the hs claim's "
                                     "form; null: they are refused with unauthorized"));
        t.push_back(integer("auth.expiry_grace_ms", &router_config::auth_expiry_grace_ms, 0, u32_max,
                            "a connection whose token expired has this long to refresh it before "
                            "it is closed with token_expired"));
        t.push_back(integer("auth.leeway_s", &router_config::auth_leeway_s, 0, 600,
                            "clock skew tolerated on a token's nbf"));
        t.push_back(integer("auth.max_token_bytes", &router_config::auth_max_token_bytes, 256, 1u << 20,
                            "longest token a hello or token_refresh may carry; a longer one is "
                            "refused with unauthorized before its signature is checked"));
        t.push_back(integer("auth.max_rules", &router_config::auth_max_rules, 1, 1u << 20,
                            "rules a token's hs claim may hold (allow and deny together); more are "
                            "refused with unauthorized"));
        t.push_back(integer("limits.connections_per_subject", &router_config::connections_per_subject,
                            0, u32_max,
                            "connections the tokens of one subject (sub) may hold at once; more "
                            "are refused with too_many_connections; 0: no limit"));
        t.push_back(integer("limits.publish_rate", &router_config::publish_rate, 0, u32_max,
                            "publishes per second per connection (a token bucket); more fail with "
                            "rate_limited; 0: no limit"));
        t.push_back(integer("limits.publish_burst", &router_config::publish_burst, 0, u32_max,
                            "publishes a connection may send at once above the rate; 0: one "
                            "second's worth"));
        t.push_back(list("ws.allowed_origins", &router_config::allowed_origins,
                         "Origin headers a WebSocket upgrade may carry (e.g. "
                         "https://app.example.com); others get HTTP 403; an upgrade without "
                         "Origin (not a browser) passes; empty: any origin"));
        t.push_back(boolean("ws.permessage_deflate.enabled", &router_config::ws_deflate_enabled,
                            "accept permessage-deflate (RFC 7692) from WebSocket clients that offer it "
                            "(browsers and the npm package in Node do): messages of at least "
                            "ws.permessage_deflate.threshold_bytes are sent compressed; a connection that "
                            "negotiated it holds the compressor's memory (docs/BENCHMARKS.md)"));
        t.push_back(integer("ws.permessage_deflate.server_max_window_bits",
                            &router_config::ws_deflate_server_max_window_bits, 9, 15,
                            "the router's compression window, 2^N bytes: a smaller one costs each "
                            "connection less memory and compresses less"));
        t.push_back(integer("ws.permessage_deflate.client_max_window_bits",
                            &router_config::ws_deflate_client_max_window_bits, 9, 15,
                            "the window asked of clients, 2^N bytes (the router keeps a decompression "
                            "window of this size per connection); below 15, a client whose offer lacks the "
                            "client_max_window_bits parameter does not get the extension (browsers and ws "
                            "send it)"));
        t.push_back(integer("ws.permessage_deflate.threshold_bytes", &router_config::ws_deflate_threshold_bytes,
                            0, u32_max,
                            "WebSocket messages (batches of frames) smaller than this are sent "
                            "uncompressed"));
        t.push_back(integer("ws.permessage_deflate.level", &router_config::ws_deflate_level, 1, 9,
                            "zlib compression level: 1 is the fastest, 9 the smallest"));
        t.push_back(integer("ws.permessage_deflate.mem_level", &router_config::ws_deflate_mem_level, 1, 9,
                            "zlib memLevel: the compressor's hash table and buffer, 2^(N+9) bytes "
                            "per connection"));
        t.push_back(boolean("ws.permessage_deflate.server_no_context_takeover",
                            &router_config::ws_deflate_server_no_context_takeover,
                            "the router compresses each message on its own (it keeps no history between "
                            "messages): worse compression of small messages"));
        t.push_back(boolean("ws.permessage_deflate.client_no_context_takeover",
                            &router_config::ws_deflate_client_no_context_takeover,
                            "ask clients to compress each message on its own"));
        t.push_back(text("tls.cert_file", &router_config::tls_cert_file,
                         "PEM certificate chain; with tls.key_file the listener speaks only TLS "
                         "(https and wss)"));
        t.push_back(text("tls.key_file", &router_config::tls_key_file, "PEM private key of tls.cert_file"));
        t.push_back(text("backend_auth.curve_secret_key", &router_config::curve_secret_key,
                         "the router's ZeroMQ CURVE secret key (Z85, 40 characters); set: every "
                         "backend must connect with CURVE and a key listed in "
                         "backend_auth.curve_clients"));
        t.push_back(curve_client_grants("backend_auth.curve_clients",
                                        "the backends let in over CURVE: an object from each one's public key "
                                        "(Z85) to its rights (the hs claim's form, e.g. "
                                        "{\"register\":[\"orders\"]}); a key not listed gets nothing through"));
        return t;
    }();
    return table;
}

}  // namespace hyperstreams::router::config_detail
