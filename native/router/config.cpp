#include "config.hpp"

#include "redis_address.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace hyperstreams::router {
namespace {

using json = nlohmann::json;

// json_value: a JSON value (a flag gives it as JSON text) that the option's
// own parse() checks and stores; list: an array of strings (a flag gives it
// comma-separated).
enum class option_type : std::uint8_t { text, integer, choice, json_value, list };

struct option {
    std::string_view key;
    std::string_view help;
    option_type type = option_type::text;
    std::uint64_t min = 0;
    std::uint64_t max = 0;
    std::vector<std::string_view> choices;
    std::function<json(const router_config&)> get;
    std::function<void(router_config&, const json&)> set;  // the value is checked already
    // json_value only: checks and stores the value; returns "" or what is wrong with it.
    std::function<std::string(router_config&, const json&)> parse;
};

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
        t.push_back(list("cluster.redis", &router_config::cluster_redis,
                         "several routers as one: the Redis server, or the seeds of a Redis Cluster "
                         "(redis://HOST:PORT), which every router of the cluster names; empty: this "
                         "router on its own"));
        t.push_back(text("cluster.prefix", &router_config::cluster_prefix,
                         "prefix of every Redis key and channel of the cluster (letters, digits, "
                         "'_', '-')"));
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

std::string flag_of(std::string_view key) {
    std::string flag = "--";
    for (char c : key) flag += (c == '.' || c == '_') ? '-' : c;
    return flag;
}

const option* find_by_key(std::string_view key) {
    for (const option& o : options())
        if (o.key == key) return &o;
    return nullptr;
}

const option* find_by_flag(std::string_view flag) {
    for (const option& o : options())
        if (flag_of(o.key) == flag) return &o;
    return nullptr;
}

std::string choices_text(const option& o) {
    std::string s;
    for (std::string_view c : o.choices) {
        if (!s.empty()) s += '|';
        s += c;
    }
    return s;
}

// Checks `v` against the option's type and range, then stores it.
std::string apply_value(router_config& cfg, const option& o, const json& v, std::string_view where) {
    auto fail = [&](std::string_view what) {
        return std::string(where) + ": " + std::string(o.key) + ": " + std::string(what);
    };
    switch (o.type) {
        case option_type::text:
            if (!v.is_string()) return fail("expected a string");
            break;
        case option_type::integer: {
            if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0))
                return fail("expected a non-negative integer");
            const auto n = v.get<std::uint64_t>();
            if (n < o.min || n > o.max)
                return fail("must be between " + std::to_string(o.min) + " and " + std::to_string(o.max));
            break;
        }
        case option_type::json_value:
            if (std::string err = o.parse(cfg, v); !err.empty()) return fail(err);
            return {};
        case option_type::list:
            if (!v.is_array()) return fail("expected an array of strings");
            for (const json& item : v)
                if (!item.is_string()) return fail("expected an array of strings");
            break;
        case option_type::choice: {
            if (!v.is_string()) return fail("expected one of " + choices_text(o));
            const auto s = v.get<std::string>();
            bool known = false;
            for (std::string_view c : o.choices) known = known || c == s;
            if (!known) return fail("'" + s + "' is not one of " + choices_text(o));
            break;
        }
    }
    o.set(cfg, v);
    return {};
}

std::string apply_object(router_config& cfg, const json& obj, const std::string& prefix) {
    for (const auto& [name, value] : obj.items()) {
        const std::string key = prefix.empty() ? name : prefix + "." + name;
        const option* whole = find_by_key(key);
        if (value.is_object() && (whole == nullptr || whole->type != option_type::json_value)) {
            if (std::string err = apply_object(cfg, value, key); !err.empty()) return err;
            continue;
        }
        const option* o = find_by_key(key);
        if (o == nullptr) return "config file: unknown option '" + key + "'";
        if (std::string err = apply_value(cfg, *o, value, "config file"); !err.empty()) return err;
    }
    return {};
}

// An IP address of the loopback interface (127.0.0.0/8, ::1).
bool loopback(std::string_view host) noexcept { return host.rfind("127.", 0) == 0 || host == "::1"; }

// A flag's text as the JSON value its option expects.
bool flag_value(const option& o, std::string_view text, json& out) {
    if (o.type == option_type::json_value) {
        out = json::parse(text, nullptr, false);
        return !out.is_discarded();
    }
    if (o.type == option_type::list) {
        out = json::array();
        while (!text.empty()) {
            const std::size_t comma = text.find(',');
            if (comma != 0) out.push_back(std::string(text.substr(0, comma)));
            text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        }
        return true;
    }
    if (o.type != option_type::integer) {
        out = std::string(text);
        return true;
    }
    std::uint64_t n = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, n);
    if (text.empty() || ec != std::errc{} || ptr != end) return false;
    out = n;
    return true;
}

}  // namespace

std::string_view policy_name(slow_policy p) noexcept {
    switch (p) {
        case slow_policy::keep_latest: return "keep_latest";
        case slow_policy::disconnect: return "disconnect";
        case slow_policy::drop_oldest:
        case slow_policy::router_default: break;
    }
    return "drop_oldest";
}

bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port) {
    std::size_t colon = 0;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return false;
        host = std::string(text.substr(1, close - 1));
        colon = close + 1;
    } else {
        colon = text.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = std::string(text.substr(0, colon));
        if (host.find(':') != std::string::npos) return false;
    }
    const std::string_view digits = text.substr(colon + 1);
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (host.empty() || digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() ||
        value > 65535)
        return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

std::string apply_json(router_config& cfg, std::string_view json_text) {
    json doc = json::parse(json_text.begin(), json_text.end(), nullptr, false, true);
    if (doc.is_discarded()) return "config file: not valid JSON";
    if (!doc.is_object()) return "config file: the top level must be an object";
    return apply_object(cfg, doc, "");
}

std::string validate(const router_config& c) {
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(c.listen, host, port))
        return "listen: '" + c.listen + "' is not HOST:PORT";
    std::string admin_host = host;
    if (c.admin_listen != "same" && c.admin_listen != "off" && !split_host_port(c.admin_listen, admin_host, port))
        return "admin.listen: '" + c.admin_listen + "' is not HOST:PORT, same or off";
    // Under tokens the admin view, which names every connection, answers
    // without a token only on loopback, and never on --listen, which a
    // reverse proxy in front of the router may forward.
    if (c.auth == auth_mode::tokens && c.admin_token_file.empty() && c.admin_listen != "off") {
        if (c.admin_listen == "same")
            return "admin.listen same under auth.mode tokens needs admin.token_file (else anyone who "
                   "reaches --listen reads /status and /metrics)";
        if (!loopback(admin_host))
            return "admin.listen " + c.admin_listen + " is not a loopback address: under auth.mode tokens it "
                   "needs admin.token_file";
    }
    if (c.backend.rfind("tcp://", 0) != 0 && c.backend.rfind("ipc://", 0) != 0)
        return "backend: '" + c.backend + "' must start with tcp:// or ipc://";
    if (c.ws_path.empty() || c.ws_path.front() != '/') return "ws_path: must start with /";
    if (!c.drain_redirect_url.empty() && c.drain_redirect_url.rfind("ws://", 0) != 0 &&
        c.drain_redirect_url.rfind("wss://", 0) != 0)
        return "drain.redirect_url: '" + c.drain_redirect_url + "' must start with ws:// or wss://";
    if (!c.drain_redirect_backend.empty() && c.drain_redirect_backend.rfind("tcp://", 0) != 0 &&
        c.drain_redirect_backend.rfind("ipc://", 0) != 0)
        return "drain.redirect_backend: '" + c.drain_redirect_backend + "' must start with tcp:// or ipc://";
    // A live client may send nothing for two intervals (docs/PROTOCOL.md section 11).
    if (c.heartbeat_timeout_ms <= std::uint64_t{2} * c.heartbeat_interval_ms)
        return "heartbeat.timeout_ms must be more than twice heartbeat.interval_ms (a live client may "
               "stay silent for two intervals)";
    // One frame of the largest payload must fit in a transport message.
    const std::uint64_t largest_frame = std::uint64_t{c.max_payload} + header_size + 16 + max_name_size;
    if (c.max_message_bytes < largest_frame)
        return "limits.max_message_bytes must be at least limits.max_payload + " +
               std::to_string(header_size + 16 + max_name_size) + " (one frame of the largest payload)";
    if (c.outbox_max_bytes < largest_frame)
        return "outbox.max_bytes must hold one frame of the largest payload (limits.max_payload + " +
               std::to_string(header_size + 16 + max_name_size) + ")";
    if (c.outbox_batch_bytes > c.max_message_bytes)
        return "outbox.batch_bytes must not exceed limits.max_message_bytes (clients read with "
               "the same limit)";
    if (c.default_deadline_ms > c.max_deadline_ms)
        return "requests.default_deadline_ms must not exceed requests.max_deadline_ms";
    if (c.router_id.size() > 64) return "router_id: at most 64 bytes";
    for (const std::string& address : c.cluster_redis)
        if (redis_check_address(address))
            return "cluster.redis: '" + address + "' is not redis://HOST:PORT";
    if (c.cluster_prefix.empty() || c.cluster_prefix.size() > 64 ||
        c.cluster_prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos)
        return "cluster.prefix: 1 to 64 letters, digits, '_' or '-'";
    if (c.history_meta_ttl_s < c.history_ttl_s)
        return "history.meta_ttl_s must be at least history.ttl_s (a channel's position outlives its history)";
    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
        return "tls.cert_file and tls.key_file go together";
    if (!c.auth_hs256_secret.empty() && !c.auth_hs256_secret_file.empty())
        return "auth.hs256_secret and auth.hs256_secret_file exclude each other";
    if (c.auth == auth_mode::open && (!c.auth_hs256_secret.empty() || !c.auth_hs256_secret_file.empty() ||
                                      !c.auth_public_key_file.empty() || c.auth_anonymous))
        return "auth keys or auth.anonymous are set but auth.mode is open (set it to tokens)";
    if (!c.curve_secret_key.empty() && c.curve_secret_key.size() != 40)
        return "backend_auth.curve_secret_key: a Z85 key has 40 characters";
    if (c.curve_clients && c.curve_secret_key.empty())
        return "backend_auth.curve_clients needs backend_auth.curve_secret_key";
    return {};
}

std::string to_json(const router_config& cfg) {
    json doc = json::object();
    for (const option& o : options()) {
        // "history.max_messages" -> "/history/max_messages"
        std::string pointer(1, '/');
        pointer += o.key;
        std::replace(pointer.begin(), pointer.end(), '.', '/');
        doc[json::json_pointer(pointer)] = o.get(cfg);
    }
    return doc.dump(2);
}

std::string help_text(std::string_view program) {
    const router_config defaults;
    std::ostringstream out;
    out << "Usage: " << program << " [--config FILE] [OPTION VALUE]...\n\n"
        << "HyperStreams router: WebSocket frontends and ZeroMQ backends, pub/sub,\n"
        << "request/response, streams, direct messages, with bounded queues.\n\n"
        << "Settings come from the embedded defaults, then the JSON file given with\n"
        << "--config (same keys, nested objects for the dotted parts), then the flags.\n"
        << "Each flag is also written --flag=VALUE.\n\n"
        << "  --config FILE           JSON configuration file\n"
        << "  --print-config          print the effective configuration as JSON and exit\n"
        << "  --help                  this text\n"
        << "  --version               the router's version\n\n";
    for (const option& o : options()) {
        std::string value = o.get(defaults).dump();
        std::string kind = o.type == option_type::integer      ? "N"
                           : o.type == option_type::choice     ? choices_text(o)
                           : o.type == option_type::json_value ? "JSON"
                           : o.type == option_type::list       ? "A,B,..."
                                                               : "TEXT";
        out << "  " << flag_of(o.key) << " " << kind << "\n"
            << "      " << o.help << "\n"
            << "      key: " << o.key << ", default: " << value << "\n";
    }
    out << "\nEndpoints on --listen: GET /healthz, the WebSocket upgrade on --ws-path, static\n"
        << "files from --web on everything else. On --admin-listen: GET /healthz, GET /metrics\n"
        << "(Prometheus) and GET /status (JSON: connections, channels, services).\n"
        << "SIGTERM/SIGINT drain the router (/healthz then answers 503) and exit 0.\n";
    return out.str();
}

config_result parse_command_line(int argc, const char* const* argv) {
    config_result r;
    std::vector<std::pair<const option*, std::string>> flags;
    std::string config_file;
    auto fail = [&r](std::string message) {
        r.what = config_result::action::fail;
        r.error = std::move(message);
        return r;
    };
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        bool has_value = false;
        if (const std::size_t eq = arg.find('='); eq != std::string_view::npos && arg.rfind("--", 0) == 0) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_value = true;
        }
        if (arg == "--help" || arg == "-h") {
            r.what = config_result::action::help;
            return r;
        }
        if (arg == "--version") {
            r.what = config_result::action::version;
            return r;
        }
        if (arg == "--print-config") {
            r.what = config_result::action::print_config;
            continue;
        }
        const option* o = arg == "--config" ? nullptr : find_by_flag(arg);
        if (arg != "--config" && o == nullptr) return fail("unknown option '" + std::string(arg) + "' (see --help)");
        if (!has_value) {
            if (i + 1 >= argc) return fail(std::string(arg) + ": missing value");
            value = argv[++i];
        }
        if (o == nullptr)
            config_file = std::string(value);
        else
            flags.emplace_back(o, std::string(value));
    }
    if (!config_file.empty()) {
        std::ifstream in(config_file, std::ios::binary);
        if (!in) return fail("--config: cannot read '" + config_file + "'");
        std::stringstream text;
        text << in.rdbuf();
        if (std::string err = apply_json(r.config, text.str()); !err.empty())
            return fail(config_file + ": " + err);
    }
    for (const auto& [o, text] : flags) {
        json v;
        if (!flag_value(*o, text, v))
            return fail(flag_of(o->key) + ": '" + text + "' is not " +
                        (o->type == option_type::json_value ? "JSON" : "a non-negative integer"));
        if (std::string err = apply_value(r.config, *o, v, flag_of(o->key)); !err.empty())
            return fail(err);
    }
    if (std::string err = validate(r.config); !err.empty()) return fail(err);
    return r;
}

}  // namespace hyperstreams::router
