// libFuzzer target: the client engine (shared/, the browsers' and backends'
// one state machine) fed by a router that may send anything. An input is a
// script (script.hpp): transport messages from the router, a fake clock,
// lost transports and the owner's calls. The host's part is played after
// every step: events drained (an open_transport is opened at once),
// incoming calls answered, stream items consumed, output taken.
//
// Before the script, the engine connects, and calls made while not yet
// ready wait in its outbox (subscriptions, a request with a deadline, a
// stream, a discover; a registration for a backend). The first byte
// configures it: bit 0 backend role; bit 1 output batches bounded to 200
// bytes; bit 2 the harness answers the hello with a welcome itself (else
// the script must); bit 3 the host takes output with take_output() rather
// than output() and consume_output().
//
// Besides "no crash", it checks:
//   - receive() accepts every message once the events are drained;
//   - every event's views are readable (ASan checks the reads);
//   - the output is a batch of frames of kinds a client sends, within the
//     batch bound unless it is a single frame.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/client.hpp"
#include "hyperstreams/frame.hpp"
#include "script.hpp"

namespace {

using namespace hyperstreams;
using fuzzing::as_bytes;
using fuzzing::as_text;
using fuzzing::client_step;
using fuzzing::script_reader;

void require(bool condition, const char* what) {
    if (!condition) fuzzing::fail("fuzz_client", what);
}

// Where the bytes every event views are summed, so that no read is optimised away.
volatile std::uint8_t event_bytes_sum = 0;

constexpr std::size_t batch_bound = 200;
constexpr std::array<method_info, 2> methods = {method_info{"get", method_kind::unary},
                                                method_info{"watch", method_kind::stream}};
constexpr std::array<std::string_view, 4> channels = {"a.b", "a.c", "public.x", "z"};

client_config config_of(std::uint8_t setup) {
    client_config c;
    c.url = "ws://fuzz/ws";
    c.name = "fuzz";
    c.token = "token";
    c.role = (setup & 1) != 0 ? client_role::backend : client_role::frontend;
    c.backoff_base_ms = 10;
    c.backoff_max_ms = 100;
    c.stable_after_ms = 500;
    c.handshake_timeout_ms = 2000;
    c.heartbeat_ms = 1000;
    c.outbox_limit_bytes = 16u << 10;
    c.max_batch_bytes = (setup & 2) != 0 ? batch_bound : 0;
    c.limits.max_payload = 4096;
    return c;
}

bool client_sends(frame_kind k) {
    switch (k) {
        case frame_kind::welcome:
        case frame_kind::redirect:
        case frame_kind::ack:
        case frame_kind::message:
        case frame_kind::gap:
        case frame_kind::service_list:
        case frame_kind::subscribed:
        case frame_kind::unsubscribed:
            return false;
        default:
            return true;
    }
}

class harness {
public:
    explicit harness(std::uint8_t setup) : engine_(config_of(setup)), take_output_((setup & 8) != 0) {
        (void)engine_.start(now_);
        settle();
        (void)engine_.subscribe("a.b");
        (void)engine_.subscribe("a.*", {.policy = slow_policy::keep_latest});
        (void)engine_.request("svc", "get", as_bytes("q"), 500, now_);
        (void)engine_.open_stream("svc", "watch", {}, 4, 0, now_);
        (void)engine_.discover();
        if (engine_.config().role == client_role::backend) (void)engine_.register_service("svc", methods);
        now_ += 100;  // the request's deadline leaves with 400 ms left
        if ((setup & 4) != 0) welcome();
        settle();
    }

    void step(script_reader& in) {
        switch (static_cast<client_step>(in.u8() % static_cast<std::uint8_t>(client_step::count))) {
            case client_step::receive_raw:
                receive(in.str16());
                break;
            case client_step::receive_frames: {
                std::vector<std::uint8_t> message;
                const int n = 1 + in.u8() % 4;
                for (int i = 0; i < n; ++i) (void)in.frame_spec(message);
                receive(message);
                break;
            }
            case client_step::advance:
                now_ += in.u16();
                if (now_ >= engine_.next_deadline()) engine_.handle_timeout(now_);
                break;
            case client_step::lose_transport: {
                const std::uint8_t reason = in.u8();
                if (transport_ != 0)
                    engine_.transport_closed(transport_, now_, (reason & 1) != 0 ? errc::connection_refused : errc{},
                                             "fuzz");
                break;
            }
            case client_step::call: {
                const std::uint8_t which = in.u8();
                const std::uint8_t arg = in.u8();
                call(which, arg, in.str16());
                break;
            }
            case client_step::count:
                break;
        }
        settle();
    }

    void finish() {
        (void)engine_.close(now_);
        settle();
    }

private:
    void welcome() {
        welcome_body w;
        w.session_id = "s-1";
        w.router_id = "r";
        w.heartbeat_ms = 1000;
        w.max_payload = 4096;
        std::vector<std::uint8_t> body;
        require(!encode_body(w, body), "a welcome body encodes");
        frame f;
        f.kind = frame_kind::welcome;
        f.payload = body;
        std::vector<std::uint8_t> message;
        require(!append(message, f), "a welcome encodes");
        receive(message);
    }

    // A copy that dies after the call: the engine's events may view it
    // until the next receive, and the harness drains them before.
    void receive(bytes_view message) {
        const std::vector<std::uint8_t> copy(message.begin(), message.end());
        require(!engine_.receive(copy, now_), "receive accepts a message once the events are drained");
        settle();
    }

    void call(std::uint8_t which, std::uint8_t arg, bytes_view data) {
        const std::string_view text = as_text(data);
        const std::string_view channel = channels[arg % channels.size()];
        switch (which % 15) {
            case 0: {
                subscribe_options options{.policy = static_cast<slow_policy>(arg & 3)};
                if ((arg & 4) != 0) options.since = channel_position{arg, arg};
                (void)engine_.subscribe(text, options);
                break;
            }
            case 1: (void)engine_.unsubscribe(arg); break;
            case 2: (void)engine_.publish(channel, data, (arg & 1) != 0, arg & frame_flags::json); break;
            case 3: (void)engine_.request("svc", "get", data, arg * 10u, now_, arg & frame_flags::json); break;
            case 4: (void)engine_.open_stream("svc", "watch", data, arg % 8, arg * 10u, now_); break;
            case 5: (void)engine_.stream_consumed(arg, 1 + arg % 3); break;
            case 6: (void)engine_.cancel(arg); break;
            case 7: (void)engine_.send_direct((arg & 1) != 0 ? engine_.session_id() : text, data, (arg & 2) != 0); break;
            case 8: (void)engine_.broadcast(data, (arg & 1) != 0); break;
            case 9: (void)engine_.discover(); break;
            case 10: (void)engine_.refresh_token(text, now_); break;
            case 11:
                if ((arg & 1) != 0)
                    (void)engine_.register_service(channel, methods);
                else
                    (void)engine_.unregister_service(channel);
                break;
            case 12:
                if ((arg & 1) != 0)
                    (void)engine_.stream_end(arg >> 1);
                else
                    (void)engine_.stream_send(arg >> 1, data);
                break;
            case 13:
                if ((arg & 1) != 0)
                    (void)engine_.subscribe_client(text, channel, static_cast<slow_policy>((arg >> 1) & 3));
                else
                    (void)engine_.unsubscribe_client(text, channel);
                break;
            default:
                if ((arg & 1) != 0) (void)engine_.start(now_);
                else (void)engine_.close(now_);
                break;
        }
    }

    // What a host does after every call: events, then output.
    void settle() {
        client_event e;
        bool open = false;
        while (engine_.poll_event(e)) {
            touch(e);
            switch (e.kind) {
                case event_kind::open_transport:
                    transport_ = e.id;
                    open = true;
                    break;
                case event_kind::incoming_request:
                    if (e.id % 2 == 0)
                        (void)engine_.respond(e.id, e.payload, e.flags);
                    else
                        (void)engine_.respond_error(e.id, errc::handler_failed, "fuzz");
                    break;
                case event_kind::incoming_stream:
                    (void)engine_.stream_send(e.id, e.payload);
                    (void)engine_.stream_end(e.id);
                    break;
                case event_kind::stream_item:
                    (void)engine_.stream_consumed(e.id, 1);
                    break;
                default:
                    break;
            }
        }
        if (open) {
            engine_.transport_opened(transport_, now_);
            return settle();
        }
        if (take_output_) {
            while (engine_.take_output(taken_)) check_output(taken_);
            return;
        }
        for (bytes_view out = engine_.output(); !out.empty(); out = engine_.output()) {
            check_output(out);
            engine_.consume_output();
        }
    }

    static void touch(const client_event& e) {
        std::uint8_t sum = 0;
        for (char c : e.name) sum = static_cast<std::uint8_t>(sum + c);
        for (char c : e.method) sum = static_cast<std::uint8_t>(sum + c);
        for (char c : e.text) sum = static_cast<std::uint8_t>(sum + c);
        for (std::uint8_t b : e.payload) sum = static_cast<std::uint8_t>(sum + b);
        if (e.services != nullptr)
            for (const service_info& s : e.services->services)
                for (char c : s.name) sum = static_cast<std::uint8_t>(sum + c);
        event_bytes_sum = sum;
    }

    void check_output(bytes_view out) {
        batch_reader reader(out, decode_limits{UINT32_MAX, UINT32_MAX});
        frame f;
        std::size_t frames = 0;
        while (reader.next(f)) {
            ++frames;
            require(client_sends(f.kind), "the engine sends only kinds a client sends");
        }
        require(!reader.error(), "the engine's output is a batch of frames");
        const std::size_t bound = engine_.config().max_batch_bytes;
        require(bound == 0 || out.size() <= bound || frames == 1, "an output batch keeps to max_batch_bytes");
    }

    client_engine engine_;
    const bool take_output_;
    std::vector<std::uint8_t> taken_;
    time_ms now_ = 0;
    std::uint32_t transport_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    script_reader in(bytes_view(data, size));
    harness h(in.u8());
    while (!in.done()) h.step(in);
    h.finish();
    return 0;
}
