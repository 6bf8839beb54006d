// hyperstreams: the command-line client. See usage() and each command's --help.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hyperstreams/names.hpp"
#include "session.hpp"

namespace {

using namespace hyperstreams;
using cli::event;
using cli::session;
using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

// Exit codes (documented in --help).
enum exit_code : int {
    exit_ok = 0,
    exit_usage = 1,
    exit_connection = 2,
    exit_remote = 3,
    exit_timeout = 4,
};

constexpr const char* exit_codes_text = R"(exit codes:
  0  success
  1  usage error (unknown command or option, missing argument, invalid JSON)
  2  connection failed (router unreachable, refused, or the token rejected)
  3  the remote side answered with an error (its code name is printed on stderr)
  4  timeout (no answer, or fewer messages than --count, in time)
)";

constexpr const char* main_usage = R"(usage: hyperstreams [--url URL]... [--token T] [--name N] [--ca-file PEM] [--connect-timeout S] <command> [args]

A command-line client for HyperStreams routers, for people and scripts.
The URL scheme picks the role: ws://HOST:PORT/ws connects as a frontend
(WebSocket; wss:// over TLS), tcp://HOST:PORT or ipc://PATH as a backend
(ZeroMQ).

commands:
  sub PATTERN                     print messages of the channels PATTERN matches
  pub CHANNEL DATA|-              publish DATA (or stdin) on CHANNEL
  request SERVICE METHOD [DATA|-] call SERVICE/METHOD, print the response
  stream SERVICE METHOD [DATA|-]  open a server stream, print its items
  send ADDRESS DATA|-             send a direct message to a client's address
  broadcast DATA|-                send DATA to every client of every router
  listen                          print this client's address and the direct messages it gets
  services                        list the services and their methods
  presence CHANNEL                list who is subscribed to CHANNEL
  subscribe-client ADDR PATTERN   (backends) subscribe client ADDR to PATTERN

global options:
  --url URL              router (default: $HYPERSTREAMS_URL or ws://127.0.0.1:7070/ws);
                         repeated: the routers of one cluster, all of one role,
                         tried in turn (a failed one costs one attempt)
  --token TOKEN          token for the hello (default: $HYPERSTREAMS_TOKEN)
  --name NAME            client name shown by the router (default: hyperstreams-cli)
  --ca-file PEM          wss:// only: trust the CA certificates in the PEM file
                         (a private CA, or the router's self-signed certificate)
                         instead of the system's; the certificate must also name
                         the URL's host, or the connection fails (exit 2)
  --connect-timeout S    seconds to wait for the connection (default 5); a command's
                         --timeout bounds the whole command, connecting included;
                         the attempts at each --url share the wait equally
  --help                 this text; `hyperstreams COMMAND --help` for a command
  --version              print the version

output: one line per message: CHANNEL EPOCH:SEQ PAYLOAD. JSON payloads are
printed as JSON (--pretty indents them), UTF-8 text as is, anything else as
hex (--hex forces hex; --raw FILE appends the raw bytes to FILE instead).

)";

struct command_spec {
    std::string name;
    std::vector<std::string> positional;  // names; a trailing '?' marks optional
    std::set<std::string> value_options;
    std::set<std::string> flag_options;
    std::string help;
};

const std::vector<command_spec>& commands() {
    static const std::vector<command_spec> specs = {
        {"sub",
         {"PATTERN"},
         {"--count", "--timeout", "--raw", "--since"},
         {"--hex", "--pretty", "--latest"},
         R"(usage: hyperstreams sub PATTERN [--latest] [--count N] [--timeout S] [--since EPOCH:SEQ] [--hex | --raw FILE] [--pretty]

Subscribes to PATTERN (a channel, `*` for one token, a final `>` for the
rest) and prints one line per message: CHANNEL EPOCH:SEQ PAYLOAD.
Gaps (missed messages) are reported on stderr.

  --count N     exit after N messages (exit 4 if they do not come within --timeout)
  --timeout S   stop after S seconds (default: never)
  --latest      first the last message of every channel PATTERN matches
                (where the router's namespace enables it), then live
  --since E:S   resume after position EPOCH:SEQ (as printed): first what the
                channel's history holds after it, then live (exact channels only)
  --hex         print payloads as hex
  --raw FILE    append the raw payload bytes to FILE; print only CHANNEL EPOCH:SEQ SIZE
  --pretty      indent JSON payloads
)"},
        {"pub",
         {"CHANNEL", "DATA"},
         {"--timeout", "--key", "--ttl"},
         {"--json", "--ack"},
         R"(usage: hyperstreams pub CHANNEL DATA|- [--json] [--ack] [--key KEY] [--ttl SECONDS] [--timeout S]

Publishes DATA (`-`: stdin) on CHANNEL.

  --json        DATA is JSON (checked, and flagged so that tools render it)
  --ack         wait for the router's acknowledgement and print EPOCH:SEQ
  --key KEY     idempotency key (1-255 printable ASCII characters): a repeat
                within the router's window is not delivered again, and its
                --ack prints the first publication's position; the same key
                with other DATA fails with key_reused
  --ttl SECONDS the message expires after SECONDS (at least 1): it is then
                no longer replayed from the channel's history
  --timeout S   how long to wait for the ack (default 10)
)"},
        {"request",
         {"SERVICE", "METHOD", "DATA?"},
         {"--timeout", "--raw"},
         {"--json", "--hex", "--compact"},
         R"(usage: hyperstreams request SERVICE METHOD [DATA|-] [--json] [--timeout MS] [--hex | --raw FILE]

Calls SERVICE/METHOD with DATA (`-`: stdin; default: empty) and prints the
response (JSON indented unless --compact). A failure prints its code name
and text on stderr and exits with 3.

  --json        DATA is JSON
  --timeout MS  deadline in milliseconds, connecting included (default 10000);
                exit 4 when it passes, 2 when the router was not reached
  --hex         print the response as hex
  --raw FILE    write the raw response bytes to FILE
  --compact     print JSON on one line
)"},
        {"stream",
         {"SERVICE", "METHOD", "DATA?"},
         {"--count", "--credit", "--timeout", "--raw"},
         {"--json", "--hex", "--pretty"},
         R"(usage: hyperstreams stream SERVICE METHOD [DATA|-] [--count N] [--credit N] [--timeout S] [--json]

Opens a server stream on SERVICE/METHOD and prints one line per item until
the stream ends (exit 0), fails (exit 3), --count items came (the stream is
cancelled, exit 0) or --timeout passes (exit 4 with --count, else 0).

  --count N     stop after N items
  --credit N    items the server may send ahead of this client (default 16)
  --timeout S   stop after S seconds (default: never)
  --json        DATA is JSON
  --hex, --raw FILE, --pretty   as for sub
)"},
        {"send",
         {"ADDRESS", "DATA"},
         {"--timeout"},
         {"--json", "--ack"},
         R"(usage: hyperstreams send ADDRESS DATA|- [--json] [--ack] [--timeout S]

Sends a direct message to the client whose address is ADDRESS (its session
id; `hyperstreams listen` prints its own).

  --json        DATA is JSON
  --ack         wait until the router confirms delivery (exit 3 if it cannot)
  --timeout S   how long to wait for the ack (default 10)
)"},
        {"broadcast",
         {"DATA"},
         {"--timeout"},
         {"--json", "--ack"},
         R"(usage: hyperstreams broadcast DATA|- [--json] [--ack] [--timeout S]

Sends DATA (`-`: stdin) to every other client of the router and, in a
cluster, of every router. Needs the broadcast right under tokens.

  --json        DATA is JSON
  --ack         wait until the router accepted it (exit 3 if it refuses)
  --timeout S   how long to wait for the ack (default 10)
)"},
        {"listen",
         {},
         {"--count", "--timeout", "--raw"},
         {"--hex", "--pretty", "--broadcasts"},
         R"(usage: hyperstreams listen [--broadcasts] [--count N] [--timeout S] [--hex | --raw FILE]

Prints `address ADDRESS` (this client's address), then one line per direct
message received: FROM PAYLOAD.

  --broadcasts  also print the broadcasts received: broadcast FROM PAYLOAD
  --count N     exit after N messages (exit 4 if they do not come within --timeout)
  --timeout S   stop after S seconds (default: never)
)"},
        {"services",
         {},
         {"--timeout"},
         {"--json"},
         R"(usage: hyperstreams services [--json] [--timeout S]

Lists the services registered with the router: name, instances, methods
(stream methods marked with `*`). --json prints the list as JSON.
)"},
        {"presence",
         {"CHANNEL"},
         {"--timeout"},
         {"--json"},
         R"(usage: hyperstreams presence CHANNEL [--json] [--timeout S]

Lists the clients subscribed to CHANNEL (in a namespace with presence; the
router says not_enabled elsewhere, exit 3): first `count N`, then one line
per member: ADDRESS SUBJECT NAME (SUBJECT `-` without a token). A channel
with more members than one answer holds lists fewer lines than N.

  --json        print {"count": N, "members": [{"address", "subject", "name"}]}
  --timeout S   how long to wait for the answer (default 10)
)"},
        {"subscribe-client",
         {"ADDRESS", "PATTERN"},
         {"--timeout"},
         {"--unsubscribe"},
         R"(usage: hyperstreams subscribe-client ADDRESS PATTERN [--unsubscribe] [--timeout S]

As a backend (a tcp:// or ipc:// URL): subscribes the client whose address
is ADDRESS (on any router of the cluster) to PATTERN, under that client's
own rights; it hears of it and keeps it across its reconnects. Needs the
subscribe_clients right under tokens. A refusal prints its code name
(forbidden, no_such_address, already_subscribed, ...) and exits with 3.

  --unsubscribe ends that client's subscription to PATTERN instead
  --timeout S   how long to wait for the router's verdict (default 10)
)"},
    };
    return specs;
}

struct parsed {
    std::vector<std::string> urls;
    std::string token;
    std::string name = "hyperstreams-cli";
    std::string ca_file;
    double connect_timeout = 5;
    const command_spec* command = nullptr;
    // When the command's --timeout runs out (it bounds the connection too).
    clock_type::time_point until = clock_type::time_point::max();
    std::vector<std::string> args;
    std::map<std::string, std::string> values;
    std::set<std::string> flags;
    // DATA, read (stdin for `-`) and checked before connecting.
    std::vector<std::uint8_t> data;
    std::uint8_t data_flags = 0;
    publish_options publish;  // pub's --key (a view of `values`) and --ttl, checked before connecting

    bool has(const std::string& f) const { return flags.count(f) != 0; }
    std::string value(const std::string& k, const std::string& fallback = {}) const {
        auto it = values.find(k);
        return it == values.end() ? fallback : it->second;
    }
};

[[noreturn]] void usage_error(const std::string& text) {
    std::fprintf(stderr, "hyperstreams: %s (see --help)\n", text.c_str());
    std::exit(exit_usage);
}

double number_option(const parsed& p, const std::string& key, double fallback) {
    const std::string v = p.value(key);
    if (v.empty()) return fallback;
    try {
        std::size_t used = 0;
        const double d = std::stod(v, &used);
        if (used != v.size() || d < 0) throw std::invalid_argument(v);
        return d;
    } catch (const std::exception&) {
        usage_error(key + ": '" + v + "' is not a non-negative number");
    }
}

parsed parse_args(int argc, char** argv) {
    parsed p;
    const char* env_url = std::getenv("HYPERSTREAMS_URL");
    p.urls = {env_url && *env_url ? env_url : "ws://127.0.0.1:7070/ws"};
    bool url_given = false;  // the first --url replaces the default
    if (const char* env = std::getenv("HYPERSTREAMS_TOKEN")) p.token = env;
    std::vector<std::string> a(argv + 1, argv + argc);
    std::size_t i = 0;
    auto take = [&](const std::string& opt) -> std::string {
        if (i + 1 >= a.size()) usage_error(opt + " needs a value");
        return a[++i];
    };
    for (; i < a.size(); ++i) {
        std::string arg = a[i];
        std::string inline_value;
        bool has_inline = false;
        if (arg.starts_with("--") && arg.find('=') != std::string::npos) {
            inline_value = arg.substr(arg.find('=') + 1);
            arg = arg.substr(0, arg.find('='));
            has_inline = true;
        }
        auto val = [&](const std::string& opt) { return has_inline ? inline_value : take(opt); };
        if (!p.command) {
            if (arg == "--help" || arg == "-h") {
                std::fputs(main_usage, stdout);
                std::fputs(exit_codes_text, stdout);
                std::exit(exit_ok);
            }
            if (arg == "--version") {
                std::printf("hyperstreams %s\n", HYPERSTREAMS_VERSION);
                std::exit(exit_ok);
            }
            if (arg == "--url") {
                if (!url_given) p.urls.clear();
                url_given = true;
                p.urls.push_back(val(arg));
            } else if (arg == "--token") {
                p.token = val(arg);
            } else if (arg == "--name") {
                p.name = val(arg);
            } else if (arg == "--ca-file") {
                p.ca_file = val(arg);
            } else if (arg == "--connect-timeout") {
                p.values["--connect-timeout"] = val(arg);
                p.connect_timeout = number_option(p, "--connect-timeout", 5);
                p.values.erase("--connect-timeout");
            } else if (arg.starts_with("-")) {
                usage_error("unknown option '" + arg + "'");
            } else {
                for (const command_spec& c : commands())
                    if (c.name == arg) p.command = &c;
                if (!p.command) usage_error("unknown command '" + arg + "'");
            }
            continue;
        }
        if (arg == "--help" || arg == "-h") {
            std::fputs(p.command->help.c_str(), stdout);
            std::fputs("\n", stdout);
            std::fputs(exit_codes_text, stdout);
            std::exit(exit_ok);
        }
        if (arg.starts_with("--")) {
            if (p.command->value_options.count(arg) != 0)
                p.values[arg] = val(arg);
            else if (p.command->flag_options.count(arg) != 0 && !has_inline)
                p.flags.insert(arg);
            else
                usage_error(p.command->name + ": unknown option '" + arg + "'");
            continue;
        }
        p.args.push_back(a[i]);
    }
    if (!p.command) {
        std::fputs(main_usage, stderr);
        std::exit(exit_usage);
    }
    std::size_t required = 0;
    for (const std::string& n : p.command->positional)
        if (!n.ends_with('?')) ++required;
    if (p.args.size() < required || p.args.size() > p.command->positional.size())
        usage_error(p.command->name + ": expected " + std::to_string(required) +
                    (required == p.command->positional.size() ? "" : "+") + " argument(s)");
    if (p.has("--hex") && !p.value("--raw").empty()) usage_error("--hex and --raw exclude each other");
    return p;
}

std::string errc_text(std::uint16_t code) { return std::string(errc_name(code)); }

// DATA argument: `-` reads stdin. With --json the text must parse.
std::vector<std::uint8_t> data_argument(const parsed& p, std::size_t index, std::uint8_t& flags) {
    std::string text;
    if (index < p.args.size()) {
        text = p.args[index];
        if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    flags = 0;
    if (p.has("--json")) {
        if (json::parse(text, nullptr, false).is_discarded()) usage_error("--json: DATA is not valid JSON");
        flags = frame_flags::json;
    }
    return {text.begin(), text.end()};
}

bool printable_utf8(const std::vector<std::uint8_t>& b) {
    std::size_t i = 0;
    while (i < b.size()) {
        const std::uint8_t c = b[i];
        std::size_t extra = 0;
        if (c < 0x80) {
            if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return false;
            if (c == 0x7f) return false;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
        } else {
            return false;
        }
        if (extra != 0 && i + extra >= b.size()) return false;
        for (std::size_t k = 1; k <= extra; ++k)
            if ((b[i + k] & 0xc0) != 0x80) return false;
        i += extra + 1;
    }
    return true;
}

std::string hex(const std::vector<std::uint8_t>& b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(b.size() * 2);
    for (std::uint8_t c : b) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

// How a payload is shown: JSON (flagged, or text that parses), text, or hex.
std::string render(const parsed& p, const std::vector<std::uint8_t>& b, std::uint8_t flags, int indent) {
    if (p.has("--hex")) return hex(b);
    if (printable_utf8(b)) {
        const std::string text(b.begin(), b.end());
        if ((flags & frame_flags::json) != 0 || (!text.empty() && (text[0] == '{' || text[0] == '['))) {
            const json j = json::parse(text, nullptr, false);
            if (!j.is_discarded()) return j.dump(indent);
        }
        return text;
    }
    return hex(b);
}

// --raw FILE: append the bytes; false when the file cannot be written.
bool write_raw(const std::string& path, const std::vector<std::uint8_t>& b) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return static_cast<bool>(out);
}

clock_type::time_point deadline_after(double seconds) {
    if (seconds <= 0) return clock_type::time_point::max();
    return clock_type::now() + std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// The command's --timeout in seconds, 0 for none (the command then runs
// until it is done).
double command_timeout_s(const parsed& p) {
    const std::string& name = p.command->name;
    if (name == "request") return number_option(p, "--timeout", 10000) / 1000;
    if (name == "pub" || name == "send" || name == "broadcast" || name == "services" || name == "presence" ||
        name == "subscribe-client")
        return number_option(p, "--timeout", 10);
    return number_option(p, "--timeout", 0);
}

int remote_failure(const event& e, const std::string& what) {
    std::fprintf(stderr, "hyperstreams: %s failed: %s%s%s\n", what.c_str(), errc_text(e.code).c_str(),
                 e.text.empty() ? "" : ": ", e.text.c_str());
    return exit_remote;
}

// "connection_refused: nothing accepts connections on 127.0.0.1:1": the code
// for scripts, the words for people.
std::string reason_text(std::uint16_t code, const std::string& text) {
    return errc_text(code) + (text.empty() ? "" : ": " + text);
}

// "ws://a/ws", "ws://a/ws or ws://b/ws".
std::string either(const std::vector<std::string>& urls) {
    std::string out;
    for (const std::string& u : urls) out += (out.empty() ? "" : " or ") + u;
    return out;
}

// Waits for the welcome; the exit code when the connection does not come.
int connect(session& s, double timeout_s, const std::vector<std::string>& urls) {
    const auto until = deadline_after(timeout_s);
    std::string last_reason;
    std::uint16_t last_error = 0;
    for (;;) {
        auto e = s.next(until);
        if (!e) {
            std::fprintf(stderr, "hyperstreams: cannot connect to %s within %gs%s%s\n", either(urls).c_str(),
                         timeout_s, last_reason.empty() ? "" : ": ", last_reason.c_str());
            return exit_connection;
        }
        if (e->kind == event_kind::welcome) return exit_ok;
        if (e->kind == event_kind::error) {
            last_reason = reason_text(e->code, e->text);
            last_error = e->code;
        }
        if (e->kind == event_kind::state_changed) {
            // The state change after a refusal names the same code without
            // the router's words: keep them.
            if (e->code != 0 && e->code != last_error) last_reason = reason_text(e->code, e->text);
            if (e->state == client_state::failed || e->state == client_state::awaiting_token) {
                std::fprintf(stderr, "hyperstreams: connection to %s refused: %s\n", e->name.c_str(),
                             last_reason.empty() ? state_name(e->state).data() : last_reason.c_str());
                return exit_connection;
            }
        }
    }
}

// Runs `start` on the I/O thread; a call the engine refused is a usage error.
// `why_invalid` says what is wrong with the arguments, for when the engine
// refuses them as invalid.
std::uint32_t begin(session& s, const std::string& what,
                    const std::function<call_result(client_engine&, time_ms)>& start,
                    const std::string& why_invalid = {}) {
    const call_result r = s.host().call(start);
    if (r.error) {
        const bool invalid = r.error == errc::invalid_argument || r.error == errc::invalid_name;
        std::fprintf(stderr, "hyperstreams: %s: %s%s%s\n", what.c_str(),
                     errc_text(static_cast<std::uint16_t>(r.error.value())).c_str(),
                     invalid && !why_invalid.empty() ? ": " : "", invalid ? why_invalid.c_str() : "");
        std::exit(invalid ? exit_usage : exit_remote);
    }
    return r.id;
}

// "the channel 'a..b' has an empty token (...)", or empty when the name is valid.
std::string name_problem(const char* kind, const std::string& name, std::string_view problem) {
    if (problem.empty()) return {};
    return std::string("the ") + kind + " '" + name + "' " + std::string(problem);
}

void print_line(const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

std::string show_payload(const parsed& p, const std::vector<std::uint8_t>& b, std::uint8_t flags) {
    const std::string raw = p.value("--raw");
    if (!raw.empty()) {
        if (!write_raw(raw, b)) {
            std::fprintf(stderr, "hyperstreams: cannot write %s\n", raw.c_str());
            std::exit(exit_usage);
        }
        return std::to_string(b.size()) + " bytes";
    }
    return render(p, b, flags, p.has("--pretty") ? 2 : -1);
}

int cmd_sub(const parsed& p, session& s) {
    const std::string pattern = p.args[0];
    const auto count = static_cast<std::uint64_t>(number_option(p, "--count", 0));
    std::optional<channel_position> since;
    if (const std::string text = p.value("--since"); !text.empty()) {
        unsigned long epoch = 0;
        unsigned long long seq = 0;
        char end = 0;
        if (std::sscanf(text.c_str(), "%lu:%llu%c", &epoch, &seq, &end) != 2 || epoch > UINT32_MAX)
            usage_error("sub: --since takes EPOCH:SEQ, e.g. 1732230000:42");
        since = channel_position{static_cast<std::uint32_t>(epoch), seq};
    }
    const std::uint32_t id = begin(s, "sub " + pattern, [&](client_engine& en, time_ms) {
        return en.subscribe(pattern, {.since = since, .latest = p.has("--latest")});
    }, name_problem("pattern", pattern, pattern_problem(pattern)));
    std::uint64_t got = 0;
    // Subscriptions the router made (the token's channels, a backend): their
    // messages are printed too.
    std::set<std::uint32_t> by_router;
    for (;;) {
        auto e = s.next(p.until);
        if (!e) {
            if (count > 0) {
                std::fprintf(stderr, "hyperstreams: %llu of %llu messages before the timeout\n",
                             static_cast<unsigned long long>(got), static_cast<unsigned long long>(count));
                return exit_timeout;
            }
            return exit_ok;
        }
        if (e->kind == event_kind::error && e->subscription == id) {
            if (e->ends_subscription) return remote_failure(*e, "sub " + pattern);
            // It goes on (history_gone: live from now on): say why, keep printing.
            std::fprintf(stderr, "hyperstreams: sub %s: %s%s%s\n", pattern.c_str(), errc_text(e->code).c_str(),
                         e->text.empty() ? "" : ": ", e->text.c_str());
        }
        if (e->kind == event_kind::gap)
            std::fprintf(stderr, "hyperstreams: gap on %s: %llu message(s) missed\n", e->name.c_str(),
                         static_cast<unsigned long long>(e->count));
        if (e->kind == event_kind::epoch_changed)
            std::fprintf(stderr, "hyperstreams: %s restarted (epoch %u)\n", e->name.c_str(), e->epoch);
        if (e->kind == event_kind::subscribed) {
            by_router.insert(e->subscription);
            std::fprintf(stderr, "hyperstreams: the router subscribed this client to %s\n", e->name.c_str());
        }
        if (e->kind == event_kind::unsubscribed && by_router.erase(e->subscription) != 0)
            std::fprintf(stderr, "hyperstreams: the router ended the subscription to %s%s%s\n", e->name.c_str(),
                         e->code != 0 ? ": " : "", e->code != 0 ? errc_text(e->code).c_str() : "");
        if (e->kind != event_kind::message || (e->subscription != id && by_router.count(e->subscription) == 0))
            continue;
        print_line(e->name + " " + std::to_string(e->epoch) + ":" + std::to_string(e->seq) + " " +
                   show_payload(p, e->payload, e->flags));
        if (count > 0 && ++got >= count) return exit_ok;
    }
}

// Waits for the ack or error of operation `id`.
int await_ack(const parsed& p, session& s, std::uint32_t id, const std::string& what, bool print_position) {
    for (;;) {
        auto e = s.next(p.until);
        if (!e) {
            std::fprintf(stderr, "hyperstreams: %s: no acknowledgement in time\n", what.c_str());
            return exit_timeout;
        }
        if (e->id != id) continue;
        if (e->kind == event_kind::error) return remote_failure(*e, what);
        if (e->kind == event_kind::ack) {
            if (print_position) print_line(std::to_string(e->epoch) + ":" + std::to_string(e->seq));
            return exit_ok;
        }
    }
}

// pub's --key and --ttl.
publish_options publish_options_of(const parsed& p) {
    publish_options o;
    if (auto it = p.values.find("--key"); it != p.values.end()) {
        const std::string& key = it->second;
        const bool printable = std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
        if (key.empty() || key.size() > 255 || !printable)
            usage_error("--key: '" + key + "' is not 1 to 255 printable ASCII characters without spaces");
        o.key = key;
    }
    const std::string ttl = p.value("--ttl");
    if (p.values.count("--ttl")) {
        std::uint32_t seconds = 0;
        const auto [end, ec] = std::from_chars(ttl.data(), ttl.data() + ttl.size(), seconds);
        if (ec != std::errc() || end != ttl.data() + ttl.size() || seconds == 0)
            usage_error("--ttl: '" + ttl + "' is not a whole number of seconds from 1 to 4294967295");
        o.ttl_s = seconds;
    }
    return o;
}

int cmd_pub(const parsed& p, session& s) {
    const std::string channel = p.args[0];
    const std::vector<std::uint8_t>& data = p.data;
    const std::uint8_t flags = p.data_flags;
    const bool ack = p.has("--ack");
    const std::uint32_t id = begin(s, "pub " + channel, [&](client_engine& en, time_ms) {
        return en.publish(channel, data, ack, flags, p.publish);
    }, name_problem("channel", channel, channel_problem(channel)));
    return ack ? await_ack(p, s, id, "pub " + channel, true) : exit_ok;
}

int cmd_send(const parsed& p, session& s) {
    const std::string to = p.args[0];
    const std::vector<std::uint8_t>& data = p.data;
    const std::uint8_t flags = p.data_flags;
    const bool ack = p.has("--ack");
    const std::uint32_t id = begin(s, "send " + to, [&](client_engine& en, time_ms) {
        return en.send_direct(to, data, ack, flags);
    });
    return ack ? await_ack(p, s, id, "send " + to, false) : exit_ok;
}

int cmd_broadcast(const parsed& p, session& s) {
    const bool ack = p.has("--ack");
    const std::uint32_t id = begin(s, "broadcast", [&](client_engine& en, time_ms) {
        return en.broadcast(p.data, ack, p.data_flags);
    });
    return ack ? await_ack(p, s, id, "broadcast", false) : exit_ok;
}

int cmd_request(const parsed& p, session& s) {
    const std::string service = p.args[0];
    const std::string method = p.args[1];
    const std::vector<std::uint8_t>& data = p.data;
    const std::uint8_t flags = p.data_flags;
    // What connecting left of --timeout (0: none given, the router's default).
    std::uint32_t timeout_ms = 0;
    if (p.until != clock_type::time_point::max()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(p.until - clock_type::now());
        timeout_ms = static_cast<std::uint32_t>(std::max<std::int64_t>(1, left.count()));
    }
    const std::string what = "request " + service + "/" + method;
    const std::uint32_t id = begin(s, what, [&](client_engine& en, time_ms now) {
        return en.request(service, method, data, timeout_ms, now, flags);
    });
    // The engine enforces the deadline; this bound only guards against a lost event.
    const auto until = p.until == clock_type::time_point::max() ? p.until : p.until + std::chrono::seconds(5);
    for (;;) {
        auto e = s.next(until);
        if (!e) return exit_timeout;
        if (e->id != id) continue;
        if (e->kind == event_kind::error) {
            const int rc = remote_failure(*e, what);
            return e->code == static_cast<std::uint16_t>(errc::deadline_exceeded) ? exit_timeout : rc;
        }
        if (e->kind == event_kind::response) {
            const std::string raw = p.value("--raw");
            if (!raw.empty()) {
                if (!write_raw(raw, e->payload)) return exit_usage;
                return exit_ok;
            }
            print_line(render(p, e->payload, e->flags, p.has("--compact") ? -1 : 2));
            return exit_ok;
        }
    }
}

int cmd_stream(const parsed& p, session& s) {
    const std::string service = p.args[0];
    const std::string method = p.args[1];
    const std::vector<std::uint8_t>& data = p.data;
    const std::uint8_t flags = p.data_flags;
    const auto count = static_cast<std::uint64_t>(number_option(p, "--count", 0));
    const auto credit = static_cast<std::uint32_t>(number_option(p, "--credit", default_stream_credit));
    if (credit == 0) usage_error("--credit must be at least 1");
    const std::string what = "stream " + service + "/" + method;
    const std::uint32_t id = begin(s, what, [&](client_engine& en, time_ms now) {
        return en.open_stream(service, method, data, credit, 0, now, flags);
    });
    std::uint64_t got = 0;
    for (;;) {
        auto e = s.next(p.until);
        if (!e) {
            s.host().post([id](client_engine& en, time_ms) { (void)en.cancel(id); });
            if (count > 0) {
                std::fprintf(stderr, "hyperstreams: %llu of %llu items before the timeout\n",
                             static_cast<unsigned long long>(got), static_cast<unsigned long long>(count));
                return exit_timeout;
            }
            return exit_ok;
        }
        if (e->id != id) continue;
        if (e->kind == event_kind::error) return remote_failure(*e, what);
        if (e->kind == event_kind::stream_end) return exit_ok;
        if (e->kind != event_kind::stream_item) continue;
        print_line(show_payload(p, e->payload, e->flags));
        // Printed: the item is consumed, its credit may go back to the server.
        s.host().post([id](client_engine& en, time_ms) { (void)en.stream_consumed(id, 1); });
        if (count > 0 && ++got >= count) {
            s.host().post([id](client_engine& en, time_ms) { (void)en.cancel(id); });
            return exit_ok;
        }
    }
}

int cmd_listen(const parsed& p, session& s) {
    print_line("address " + s.address());
    const auto count = static_cast<std::uint64_t>(number_option(p, "--count", 0));
    const bool broadcasts = p.has("--broadcasts");
    std::uint64_t got = 0;
    for (;;) {
        auto e = s.next(p.until);
        if (!e) return count > 0 ? exit_timeout : exit_ok;
        if (e->kind == event_kind::welcome) print_line("address " + e->name);  // a new session after a reconnect
        if (e->kind == event_kind::broadcast && broadcasts)
            print_line("broadcast " + e->name + " " + show_payload(p, e->payload, e->flags));
        else if (e->kind == event_kind::direct)
            print_line(e->name + " " + show_payload(p, e->payload, e->flags));
        else
            continue;
        if (count > 0 && ++got >= count) return exit_ok;
    }
}

int cmd_services(const parsed& p, session& s) {
    const std::uint32_t id = begin(s, "services", [](client_engine& en, time_ms) { return en.discover(); });
    for (;;) {
        auto e = s.next(p.until);
        if (!e) return exit_timeout;
        if (e->id != id) continue;
        if (e->kind == event_kind::error) return remote_failure(*e, "services");
        if (e->kind != event_kind::service_list) continue;
        if (p.has("--json")) {
            json out = json::array();
            for (const auto& svc : e->services) {
                json methods = json::array();
                for (const auto& [name, kind] : svc.methods)
                    methods.push_back({{"name", name}, {"kind", kind == method_kind::stream ? "stream" : "unary"}});
                out.push_back({{"service", svc.name}, {"instances", svc.instances}, {"methods", methods}});
            }
            print_line(out.dump(2));
            return exit_ok;
        }
        for (const auto& svc : e->services) {
            std::string line = svc.name + " (" + std::to_string(svc.instances) + " instance" +
                               (svc.instances == 1 ? "" : "s") + "):";
            for (const auto& [name, kind] : svc.methods)
                line += " " + name + (kind == method_kind::stream ? "*" : "");
            print_line(line);
        }
        return exit_ok;
    }
}

int cmd_presence(const parsed& p, session& s) {
    const std::string channel = p.args[0];
    const std::uint32_t id =
        begin(s, "presence", [&channel](client_engine& en, time_ms) { return en.presence(channel); },
              name_problem("channel", channel, channel_problem(channel)));
    for (;;) {
        auto e = s.next(p.until);
        if (!e) return exit_timeout;
        if (e->id != id) continue;
        if (e->kind == event_kind::error) return remote_failure(*e, "presence");
        if (e->kind != event_kind::presence) continue;
        if (p.has("--json")) {
            json members = json::array();
            for (const auto& m : e->members)
                members.push_back({{"address", m.address}, {"subject", m.subject}, {"name", m.name}});
            print_line(json{{"count", e->presence_count}, {"members", members}}.dump(2));
            return exit_ok;
        }
        print_line("count " + std::to_string(e->presence_count));
        for (const auto& m : e->members)
            print_line(m.address + " " + (m.subject.empty() ? std::string("-") : m.subject) + " " + m.name);
        return exit_ok;
    }
}

int cmd_subscribe_client(const parsed& p, session& s) {
    const std::string address = p.args[0];
    const std::string pattern = p.args[1];
    const bool unsubscribe = p.has("--unsubscribe");
    const std::string what = std::string(unsubscribe ? "unsubscribe-client " : "subscribe-client ") + address;
    const std::uint32_t id = begin(s, what, [&](client_engine& en, time_ms) {
        return unsubscribe ? en.unsubscribe_client(address, pattern) : en.subscribe_client(address, pattern);
    }, name_problem("pattern", pattern, pattern_problem(pattern)));
    return await_ack(p, s, id, what, false);
}

}  // namespace

int main(int argc, char** argv) {
    parsed p = parse_args(argc, argv);
    const std::string& command = p.command->name;
    if (command == "pub" || command == "send") p.data = data_argument(p, 1, p.data_flags);
    if (command == "pub") p.publish = publish_options_of(p);
    if (command == "broadcast") p.data = data_argument(p, 0, p.data_flags);
    if (command == "request" || command == "stream") p.data = data_argument(p, 2, p.data_flags);
    for (const std::string& url : p.urls) {
        if (native::scheme_of(url) == native::transport_scheme::unsupported)
            usage_error("--url: '" + url + "' is not ws://, wss://, tcp:// or ipc://");
        if (native::role_for(url) != native::role_for(p.urls.front()))
            usage_error("--url: '" + p.urls.front() + "' and '" + url +
                        "' connect in different roles (ws:// and wss:// as a frontend, "
                        "tcp:// and ipc:// as a backend)");
    }
    if (!p.ca_file.empty()) {
        if (std::none_of(p.urls.begin(), p.urls.end(), [](const std::string& u) { return u.starts_with("wss://"); }))
            usage_error("--ca-file: only a wss:// URL uses a CA file");
        if (!std::ifstream(p.ca_file)) usage_error("--ca-file: cannot read '" + p.ca_file + "'");
    }
    // Counted once DATA is read: stdin may be a pipe that takes its time.
    const double timeout_s = command_timeout_s(p);
    p.until = deadline_after(timeout_s);

    // The command's --timeout bounds the whole command: a dead router costs
    // no more than it, even when --connect-timeout is longer.
    double connect_s = p.connect_timeout;
    if (timeout_s > 0 && (connect_s <= 0 || timeout_s < connect_s)) connect_s = timeout_s;

    client_config config;
    config.urls = p.urls;
    config.name = p.name;
    config.token = p.token;
    config.role = native::role_for(p.urls.front());
    config.seed = 0;
    // Shared: a router that never answers leaves the others their turn.
    config.handshake_timeout_ms = static_cast<std::uint32_t>(std::max(1.0, connect_s) * 1000 /
                                                             static_cast<double>(p.urls.size()));
    native::transport_options transport;
    transport.tls.ca_file = p.ca_file;
    session s(config, std::move(transport));
    s.host().start();

    int rc = connect(s, connect_s, p.urls);
    if (rc == exit_ok) {
        const std::string& name = p.command->name;
        if (name == "sub") rc = cmd_sub(p, s);
        else if (name == "pub") rc = cmd_pub(p, s);
        else if (name == "request") rc = cmd_request(p, s);
        else if (name == "stream") rc = cmd_stream(p, s);
        else if (name == "send") rc = cmd_send(p, s);
        else if (name == "broadcast") rc = cmd_broadcast(p, s);
        else if (name == "listen") rc = cmd_listen(p, s);
        else if (name == "presence") rc = cmd_presence(p, s);
        else if (name == "subscribe-client") rc = cmd_subscribe_client(p, s);
        else rc = cmd_services(p, s);
    }
    // Goodbye, and what is still queued (a publish without ack) leaves first.
    s.host().close(std::chrono::milliseconds(1000));
    return rc;
}
