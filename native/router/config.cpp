#include "config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config_options.hpp"
#include "redis_address.hpp"

namespace hyperstreams::router {
namespace {

using config_detail::json;
using config_detail::option;
using config_detail::option_type;
using config_detail::options;

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
        case option_type::boolean:
            if (!v.is_boolean()) return fail("expected true or false");
            break;
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
    if (o.type == option_type::boolean) {
        if (text != "true" && text != "false") return false;
        out = text == "true";
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

namespace {

// A message that names what it refuses in one line, however the name or
// value it quotes was written: control characters escaped ("ch\nnels",
// a key of a config file, was two lines).
std::string one_line(std::string message) {
    std::string out;
    out.reserve(message.size());
    for (const char c : message) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (u < 0x20 || u == 0x7F) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xF];
        } else {
            out += c;
        }
    }
    return out;
}

std::string check(const router_config& c);

}  // namespace

std::string apply_json(router_config& cfg, std::string_view json_text) {
    json doc = json::parse(json_text.begin(), json_text.end(), nullptr, false, true);
    if (doc.is_discarded()) return "config file: not valid JSON";
    if (!doc.is_object()) return "config file: the top level must be an object";
    return one_line(apply_object(cfg, doc, ""));
}

std::string validate(const router_config& c) { return one_line(check(c)); }

namespace {

std::string check(const router_config& c) {
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
            return "cluster.redis: '" + address + "' is not redis://HOST:PORT (or rediss:// for TLS)";
    bool tls = false;
    if (redis_addresses_tls(c.cluster_redis, tls))
        return "cluster.redis: mixes redis:// and rediss:// (TLS): all TLS or none";
    if (!tls && (!c.cluster_redis_tls_ca_file.empty() || !c.cluster_redis_tls_cert_file.empty() ||
                 !c.cluster_redis_tls_key_file.empty()))
        return "cluster.redis_tls_ca_file, cluster.redis_tls_cert_file and cluster.redis_tls_key_file need "
               "rediss:// addresses in cluster.redis";
    if (c.cluster_redis_tls_cert_file.empty() != c.cluster_redis_tls_key_file.empty())
        return "cluster.redis_tls_cert_file and cluster.redis_tls_key_file go together";
    if (!c.cluster_redis_password.empty() && !c.cluster_redis_password_file.empty())
        return "cluster.redis_password and cluster.redis_password_file exclude each other";
    if (!c.cluster_redis_user.empty() && c.cluster_redis_password.empty() && c.cluster_redis_password_file.empty())
        return "cluster.redis_user needs cluster.redis_password or cluster.redis_password_file";
    if (c.cluster_redis.empty() && (!c.cluster_redis_user.empty() || !c.cluster_redis_password.empty() ||
                                    !c.cluster_redis_password_file.empty()))
        return "cluster.redis_user and cluster.redis_password need cluster.redis";
    if (c.cluster_prefix.empty() || c.cluster_prefix.size() > 64 ||
        c.cluster_prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos)
        return "cluster.prefix: 1 to 64 letters, digits, '_' or '-'";
    if (!c.cluster_advertise_ws.empty() && !c.cluster_advertise_ws.starts_with("ws://") &&
        !c.cluster_advertise_ws.starts_with("wss://"))
        return "cluster.advertise_ws: a ws:// or wss:// URL";
    if (!c.cluster_advertise_backend.empty() && !c.cluster_advertise_backend.starts_with("tcp://") &&
        !c.cluster_advertise_backend.starts_with("ipc://"))
        return "cluster.advertise_backend: a tcp:// or ipc:// endpoint";
    if (c.history_meta_ttl_s < c.history_ttl_s)
        return "history.meta_ttl_s must be at least history.ttl_s (a channel's position outlives its history)";
    if (std::string err = check_namespaces(c); !err.empty()) return err;
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

}  // namespace

bool read_secret_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::stringstream text;
    text << in.rdbuf();
    out = text.str();
    if (!out.empty() && out.back() == '\n') out.pop_back();
    if (!out.empty() && out.back() == '\r') out.pop_back();
    return true;
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
                           : o.type == option_type::boolean    ? "true|false"
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
        r.error = one_line(std::move(message));
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
                        (o->type == option_type::json_value ? "JSON"
                         : o->type == option_type::boolean  ? "true or false"
                                                            : "a non-negative integer"));
        if (std::string err = apply_value(r.config, *o, v, flag_of(o->key)); !err.empty())
            return fail(err);
    }
    if (std::string err = validate(r.config); !err.empty()) return fail(err);
    return r;
}

}  // namespace hyperstreams::router
