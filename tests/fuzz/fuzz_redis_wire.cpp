// libFuzzer target: what a router reads from Redis before any of its own
// code sees a message (redis_wire.hpp): the reply reader fed bytes in the
// pieces the input chooses, and every reply it gives to the decoders the
// engine runs on replies (CLUSTER SLOTS, MOVED and ASK, pub/sub pushes,
// NOSCRIPT, a reply's text); and the addresses of cluster.redis.
//
// The first byte chooses how the rest is cut into reads (each piece's
// length from the next byte when bit 0 is set; else one read). Besides "no
// crash", it checks:
//   - bytes that are not RESP leave the reader failed for good, and a reply
//     comes only from bytes that are;
//   - every slot range CLUSTER SLOTS gives is inside 0..16383, first at or
//     before last, with a master that has a host and a port;
//   - a redirect names a slot inside 0..16383, a host and a port;
//   - a push's parts (a message's, an error's text) are views into the reply;
//   - an address that parses is written back (text()) as one that parses to
//     the same address;
//   - a command redis_format writes from the input's parts reads back as an
//     array of those parts.
#include <algorithm>
#include <cstddef>
#include <span>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <hiredis/hiredis.h>

#include "redis_address.hpp"
#include "redis_wire.hpp"
#include "script.hpp"

namespace {

using namespace hyperstreams::router;

void require(bool condition, const char* what) {
    if (!condition) hyperstreams::fuzzing::fail("fuzz_redis_wire", what);
}

bool inside(std::string_view part, const redisReply& r) {
    return part.empty() || (r.str && part.data() >= r.str && part.data() + part.size() <= r.str + r.len);
}

bool inside_any(std::string_view part, const redisReply& r) {
    if (inside(part, r)) return true;
    for (std::size_t i = 0; i < r.elements; ++i)
        if (r.element[i] && inside_any(part, *r.element[i])) return true;
    return false;
}

void address_reads_back(const redis_address& a) {
    redis_address again;
    require(!parse_redis_address(a.text(), again) && again == a, "an address does not read back from its text");
}

void check_reply(const redisReply& r) {
    const redis_address answered_by{"10.0.0.1", 7000};
    std::vector<redis_slot_range> ranges;
    if (!parse_cluster_slots(r, answered_by, ranges)) {
        for (const redis_slot_range& s : ranges) {
            require(s.first <= s.last && s.last < 16384, "a slot range outside 0..16383");
            require(!s.master.host.empty() && s.master.port != 0, "a slot range's master without a host or port");
        }
    }
    (void)is_cluster_disabled(r);
    redis_redirect to;
    if (parse_redirect(r, answered_by, to)) {
        require(to.slot < 16384, "a redirect to a slot outside 0..16383");
        require(!to.to.host.empty() && to.to.port != 0, "a redirect without a host or port");
    }
    const redis_push p = parse_push(r);
    if (p.what == redis_push::kind::message || p.what == redis_push::kind::pmessage ||
        p.what == redis_push::kind::smessage || p.what == redis_push::kind::sunsubscribe ||
        p.what == redis_push::kind::error)
        require(inside_any(p.channel, r) && inside_any(p.payload, r) && inside_any(p.pattern, r),
                "a push's parts are not the reply's");
    (void)redis_is_noscript(r);
    (void)redis_is_error(r);
    const std::string_view text = redis_text(r);
    require(inside(text, r), "a reply's text is not the reply's");
}

void read_replies(std::string_view input, bool in_pieces) {
    redis_reader reader;
    bool failed = false;
    std::size_t at = 0;
    while (at < input.size()) {
        std::size_t n = input.size() - at;
        if (in_pieces) n = std::min<std::size_t>(n, 1 + static_cast<unsigned char>(input[at]) % 64);
        const std::error_code fed = reader.feed(input.substr(at, n));
        at += n;
        if (failed) require(static_cast<bool>(fed), "a failed reader took more bytes");
        failed = failed || static_cast<bool>(fed);
        for (;;) {
            std::error_code ec;
            redis_reply r = reader.next(ec);
            if (ec) {
                failed = true;
                break;
            }
            if (!r) break;
            require(!failed, "a reply after the reader failed");
            check_reply(*r);
        }
    }
}

// The input's parts (each a length byte, then that many bytes) as a
// command, read back.
void command_round_trip(std::string_view input) {
    std::vector<std::string_view> args;
    for (std::size_t at = 0; at < input.size();) {
        const std::size_t length = std::min<std::size_t>(static_cast<unsigned char>(input[at]), input.size() - at - 1);
        args.push_back(input.substr(at + 1, length));
        at += 1 + length;
    }
    if (args.empty()) return;
    const std::string wire = redis_format(std::span<const std::string_view>(args));
    redis_reader reader;
    require(!reader.feed(wire), "a command written is not RESP");
    std::error_code ec;
    const redis_reply r = reader.next(ec);
    require(!ec && r && r->type == REDIS_REPLY_ARRAY && r->elements == args.size(), "a command reads back whole");
    for (std::size_t i = 0; i < args.size(); ++i)
        require(redis_text(*r->element[i]) == args[i], "a command's argument reads back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    read_replies(input, (data[0] & 1) != 0);
    command_round_trip(input);
    redis_address a;
    if (!parse_redis_address(input.substr(0, 256), a)) address_reads_back(a);
    return 0;
}
