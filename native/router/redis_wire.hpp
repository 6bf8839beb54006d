// The socket-free half of the Redis engine: addresses, RESP in both
// directions (hiredis's reply reader; commands written here), and the
// replies the engine acts on (CLUSTER SLOTS, MOVED and ASK, pub/sub pushes).
// Unit tests feed it bytes; redis_engine.cpp feeds it what the sockets read.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "redis_address.hpp"
#include "redis_engine.hpp"

struct redisReader;

namespace hyperstreams::router {

// A command and its arguments in RESP, binary-safe.
std::string redis_format(std::span<const std::string_view> args);
std::string redis_format(std::initializer_list<std::string_view> args);
std::string redis_format(const std::vector<std::string>& args);
// EVALSHA sha1 args...
std::string redis_format_evalsha(std::string_view sha1, std::span<const std::string_view> args);

// The SHA1 of a script as Redis names it (40 hex digits, lower case).
std::string redis_script_sha1(std::string_view body);
// An EVALSHA command made by redis_format (EVALSHA, a 40-byte SHA, the
// rest) as the EVAL of `body` with the same rest; empty when `evalsha` is
// not such a command.
std::string redis_evalsha_as_eval(std::string_view evalsha, std::string_view body);
// A NOSCRIPT error: the node does not have the script.
bool redis_is_noscript(const redisReply& r) noexcept;
// A TRYAGAIN error: a command of several keys whose slot is migrating, some
// of them moved and some not. It did not run.
bool redis_is_tryagain(const redisReply& r) noexcept;

// Replies out of bytes as they arrive, in any pieces. After an error (bytes
// that are not RESP, or an array longer than redis_max_array_elements) the
// reader stays failed: the connection must go.
class redis_reader {
public:
    redis_reader();
    ~redis_reader();
    redis_reader(const redis_reader&) = delete;
    redis_reader& operator=(const redis_reader&) = delete;

    // errc::protocol_violation when the bytes are not RESP (error() says why).
    std::error_code feed(std::string_view bytes);
    // The next complete reply; null when more bytes are needed or on error
    // (`ec` set).
    redis_reply next(std::error_code& ec);
    std::string_view error() const noexcept;

    // hiredis's reader calls this for an array it refuses (redis_wire.cpp).
    void refuse_array(long long elements) noexcept;

private:
    redisReader* reader_;
    char refused_[96] = {};  // why an array was refused, or empty
};

// hiredis allocates an array's element pointers when the array's header
// arrives, before any element: "*499992762" alone would take 4 GB. No
// reply the engine asks for comes near this bound (the longest: a history
// read, at most history.max_messages, 2^20, entries; a channel's presence,
// two per member of the whole cluster, eight million members at the bound:
// 128 MiB of pointers); an array over it fails the reader.
inline constexpr long long redis_max_array_elements = 1 << 24;

// A reply's text (string, status or error), or empty.
std::string_view redis_text(const redisReply& r) noexcept;
bool redis_is_error(const redisReply& r) noexcept;

// The master of each slot range a CLUSTER SLOTS reply lists. A master whose
// host is empty is the node that answered (`answered_by`'s host).
struct redis_slot_range {
    std::uint16_t first = 0;
    std::uint16_t last = 0;
    redis_address master;
};
// errc::malformed_body when the reply is not a CLUSTER SLOTS answer.
std::error_code parse_cluster_slots(const redisReply& reply, const redis_address& answered_by,
                                    std::vector<redis_slot_range>& out);
// The error CLUSTER SLOTS gets from a server that is not part of a cluster.
bool is_cluster_disabled(const redisReply& reply) noexcept;

// -MOVED slot host:port or -ASK slot host:port. An empty host (a node that
// does not know its own endpoint) means the node that answered.
struct redis_redirect {
    bool ask = false;
    std::uint16_t slot = 0;
    redis_address to;
};
bool parse_redirect(const redisReply& reply, const redis_address& answered_by, redis_redirect& out);

// What the subscriber connection receives (RESP2 subscribe mode): a
// message of a channel (SUBSCRIBE), of a pattern (PSUBSCRIBE) or of a
// sharded channel (SSUBSCRIBE: smessage); the answer to a PING; a
// subscription's confirmation; a sharded channel's subscription ended
// (sunsubscribe: asked for, or Redis's when its slot moved to another
// node); an error reply (a subscription refused).
struct redis_push {
    enum class kind : std::uint8_t { message, pmessage, smessage, pong, ack, sunsubscribe, error, other };
    kind what = kind::other;
    std::string_view pattern;  // pmessage
    std::string_view channel;  // message, pmessage, smessage, sunsubscribe
    std::string_view payload;  // message, pmessage, smessage; error: its text
};
redis_push parse_push(const redisReply& reply) noexcept;

}  // namespace hyperstreams::router
