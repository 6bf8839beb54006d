// One TCP connection to one Redis node, TLS over it when the engine has a
// TLS context ("rediss://"), for the engine's own files (it brings in
// Asio). Pipelined: requests are written in the order they are
// sent and answered first in, first out, but for a script the node had
// lost (NOSCRIPT): it is run again from its text in its place, as
// redis_engine::run_script says, and answered then. A request not
// answered within the command timeout breaks the connection (a later
// answer would be taken for the next request's). A subscriber connection has no requests: every
// reply it reads is a push.
//
// Single-threaded: every call and every event on the io_context's thread.
// Once the connection failed or was closed it does nothing more; the owner
// makes a new one.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "redis_engine.hpp"
#include "redis_wire.hpp"

namespace boost::asio::ssl {
class context;
}

namespace hyperstreams::router {

// The client context every TLS connection of an engine shares: TLS 1.2 and
// later, Redis's certificate verified against `o.ca_file` (else the
// system's CAs), the router's own from `o.cert_file` and `o.key_file`.
// Null, and `error` in words, when a file cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_redis_tls_context(const redis_tls_options& o, std::string& error);

struct redis_request;

// A command on its way: its bytes, where it goes, and who waits for it.
struct redis_request {
    std::string wire;
    std::string key;
    redis_engine::completion done;
    // Commands the user asked for count in the stats; the engine's own
    // (CLUSTER SLOTS, ASKING) do not.
    bool internal = false;
    // Sent as EVALSHA of this script: run from its text when the node lacks it.
    redis_script_ref script;
    int redirects = 0;
    std::chrono::steady_clock::time_point written;
    // The first of its key's hold, sent again after TRYAGAIN (redis_engine).
    bool held = false;
    // A WAIT after its answer (redis_engine): what is asked for.
    redis_wait wait{};
    // redis_engine::publish_sharded's (`key` is the channel): formatted as
    // SPUBLISH or PUBLISH when routed, as the servers allow; `spublish`
    // once sent as SPUBLISH.
    std::string sharded_message;
    bool sharded_publish = false;
    bool spublish = false;
};
using redis_request_ptr = std::unique_ptr<redis_request>;

// Delays between attempts to connect: from backoff_min, doubled after each
// failure up to backoff_max, each drawn between half and all of it (so that
// routers restarted together do not reconnect in step).
class redis_backoff {
public:
    explicit redis_backoff(const redis_options& options);
    std::chrono::milliseconds next();
    void reset() noexcept { current_ = min_; }

private:
    std::chrono::milliseconds min_;
    std::chrono::milliseconds max_;
    std::chrono::milliseconds current_;
    std::minstd_rand rng_;
};

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
    // What the owner hears (every one must be set). None is called after
    // close().
    struct events {
        std::function<void()> up;
        // Every request sent and not answered, in order, then `down`.
        std::function<void(redis_request_ptr, redis_status, std::string detail)> failed;
        std::function<void(std::string reason)> down;
        std::function<void(redis_request_ptr, redis_reply)> answered;
        std::function<void(redis_reply)> pushed;  // subscriber connections
    };

    // `tls`: the engine's TLS context, null for plain TCP. `role`: the
    // connection's, in its name (redis_options::client_name).
    redis_connection(boost::asio::io_context& io, redis_address address, const redis_options& options,
                     std::shared_ptr<boost::asio::ssl::context> tls, bool subscriber, std::string_view role,
                     events e);
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    void connect();
    // Queued until connected; then written at once, behind what was sent before.
    void send(redis_request_ptr r);
    // Bytes that expect no matched answer (the subscriber's commands).
    void send_raw(std::string_view wire);
    // Breaks the connection as a failure would (events follow).
    void abort(std::string reason) { fail(redis_status::lost, std::move(reason)); }
    // Ends the connection without events; hands back the requests it held.
    std::deque<redis_request_ptr> close();

    bool is_up() const noexcept { return state_ == state::up; }
    bool is_dead() const noexcept { return state_ == state::dead; }
    std::size_t queued() const noexcept { return requests_.size(); }
    const redis_address& address() const noexcept { return address_; }

private:
    // handshaking: connected, the TLS handshake under way; greeting:
    // connected (and TLS set up), the greeting written and its answer
    // awaited. Both within the connect timeout; nothing else is written
    // meanwhile.
    enum class state : std::uint8_t { idle, connecting, handshaking, greeting, up, dead };
    using tcp = boost::asio::ip::tcp;
    struct tls_stream;  // asio::ssl::stream over socket_ (redis_connection.cpp)

    void on_connected(const boost::system::error_code& ec);
    void on_handshake(const boost::system::error_code& ec);
    // Connected (TLS set up): the greeting first.
    void greet();
    // Connected, and authenticated when the options have a password.
    void become_up();
    // To the socket, or through TLS when there is TLS.
    template <typename Handler>
    void write_all(std::string_view bytes, Handler&& handler);
    void do_write();
    void do_read();
    void on_read(const boost::system::error_code& ec, std::size_t n);
    void arm_command_timer();
    void on_command_timer();
    void fail(redis_status first_status, std::string reason);
    void stop_io();
    // After the answers to what was on the wire with a NOSCRIPT: the scripts
    // that may still run in their place, as EVAL, first in the queue.
    void rerun_scripts();

    const redis_address address_;
    const std::chrono::milliseconds connect_timeout_;
    const std::chrono::milliseconds command_timeout_;
    const bool subscriber_;
    // Written alone first, and answered before the connection is up: the
    // AUTH when the options have a password, else a PING. So "up" means
    // Redis answers (a Redis that hangs still accepts connections), and
    // over TLS a 1.3 server that refuses the router's certificate, which
    // says so only after the handshake, has its alert read, not lost to a
    // write that fails first. Then the connection's name (CLIENT SETNAME)
    // when the options give one: its answer, whatever it is, is the
    // greeting's last.
    const std::string greeting_;
    const bool greeting_is_auth_;
    const int greeting_replies_;
    int greeting_answered_ = 0;
    events events_;
    state state_ = state::idle;
    bool detached_ = false;  // closed by the owner: no more events
    tcp::resolver resolver_;
    tcp::socket socket_;
    const std::shared_ptr<boost::asio::ssl::context> tls_context_;
    std::unique_ptr<tls_stream> tls_;  // over socket_, when tls_context_ is set
    boost::asio::steady_timer connect_timer_;
    boost::asio::steady_timer command_timer_;
    bool command_timer_armed_ = false;
    redis_reader reader_;
    // A batch message of 1 KiB publications is about 100 KiB: about two
    // reads rather than seven (each a syscall, a feed of the reader and a
    // turn of the event loop).
    std::array<char, 128 * 1024> read_buf_{};
    // The bytes being written, and those sent since the write began.
    std::string writing_;
    std::string next_;
    bool write_in_progress_ = false;
    // Requests in the order their bytes were queued: the first
    // `requests_.size() - unwritten_` are on the wire.
    std::deque<redis_request_ptr> requests_;
    std::size_t unwritten_ = 0;
    // Scripts answered NOSCRIPT, in order, waiting for the answers to the
    // `awaited_` requests that were on the wire behind the first of them;
    // nothing is written meanwhile. `overtaken`: a later command of its key
    // ran.
    struct lost_script {
        redis_request_ptr request;
        redis_reply noscript;
        bool overtaken = false;
    };
    std::deque<lost_script> lost_scripts_;
    std::size_t awaited_ = 0;
};

}  // namespace hyperstreams::router
