// redis_wire: key slots, RESP in both directions, and the replies the Redis
// engine acts on, without a socket.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "hyperstreams/errc.hpp"
#include "publication_batch.hpp"
#include "redis_wire.hpp"

namespace hyperstreams::router {
namespace {

using namespace std::string_literals;

// One reply out of `bytes`, fed whole.
redis_reply parse(std::string_view bytes) {
    redis_reader reader;
    EXPECT_FALSE(reader.feed(bytes));
    std::error_code ec;
    redis_reply r = reader.next(ec);
    EXPECT_FALSE(ec) << reader.error();
    EXPECT_TRUE(r) << "incomplete: " << bytes;
    return r;
}

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

// Values from a Redis 7 server's CLUSTER KEYSLOT.
TEST(RedisKeySlot, MatchesRedis) {
    EXPECT_EQ(redis_key_slot("foo"), 12182);
    EXPECT_EQ(redis_key_slot("123456789"), 12739);  // CRC16-XMODEM's check value 0x31C3
    EXPECT_EQ(redis_key_slot(""), 0);
    EXPECT_EQ(redis_key_slot("a\0b"s), 8383);
    EXPECT_EQ(redis_key_slot("\xff\xfe"), 3374);
}

TEST(RedisKeySlot, HashTagIsTheFirstNonEmptyBracePair) {
    EXPECT_EQ(redis_key_slot("{user1000}.following"), 3443);
    EXPECT_EQ(redis_key_slot("{user1000}.following"), redis_key_slot("{user1000}.followers"));
    EXPECT_EQ(redis_key_slot("{user1000}.following"), redis_key_slot("user1000"));
    EXPECT_EQ(redis_key_slot("foo{bar}{zap}"), 5061);  // "bar"
    EXPECT_EQ(redis_key_slot("foo{{bar}}zap"), 4015);  // "{bar"
    EXPECT_EQ(redis_key_slot("foo{}{bar}"), 8363);     // an empty tag: the whole key
    EXPECT_EQ(redis_key_slot("{}"), 15257);
    EXPECT_EQ(redis_key_slot("a{"), 14311);
    EXPECT_EQ(redis_key_slot("}{b}"), 3300);
}

TEST(RedisFormat, IsBinarySafe) {
    EXPECT_EQ(redis_format({"SET", "k", "v"}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    const std::string binary = "a\0\r\n$b"s;
    EXPECT_EQ(redis_format({"SET", binary, ""}), "*3\r\n$3\r\nSET\r\n$6\r\n" + binary + "\r\n$0\r\n\r\n");
}

// The formatter is the project's own (hiredis's uses sprintf): its bytes are
// hiredis's, lengths of every width included.
TEST(RedisFormat, WritesWhatHiredisWrites) {
    const std::vector<std::string> args{"EVALSHA", "", std::string(9, 'a'), std::string(10, '\0'),
                                        std::string(99999, 'x'), std::string(100000, '\n'), "\r\n$*"};
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const std::string& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    char* wire = nullptr;
    const int n = redisFormatCommandArgv(&wire, static_cast<int>(args.size()), argv.data(), lengths.data());
    ASSERT_GT(n, 0);
    const std::string expected(wire, static_cast<std::size_t>(n));
    redisFreeCommand(wire);
    EXPECT_EQ(redis_format(args), expected);
    const std::vector<std::string_view> rest(args.begin() + 2, args.end());
    EXPECT_EQ(redis_format_evalsha(args[1], rest), expected);
    EXPECT_EQ(redis_format(std::vector<std::string>{}), "*0\r\n");
}

// The SHA Redis gives `SCRIPT LOAD "return 1"`.
TEST(RedisScript, Sha1IsRedissName) {
    EXPECT_EQ(redis_script_sha1("return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(RedisScript, AnEvalshaBecomesTheEvalOfItsScriptWithTheSameArguments) {
    const std::string body = "return redis.call('get', KEYS[1])";
    const std::string sha = redis_script_sha1(body);
    const std::string binary("a\0\r\n", 4);
    EXPECT_EQ(redis_evalsha_as_eval(redis_format({"EVALSHA", sha, "1", "k", binary}), body),
              redis_format({"EVAL", body, "1", "k", binary}));
    EXPECT_EQ(redis_evalsha_as_eval(redis_format({"EVALSHA", sha, "0"}), body), redis_format({"EVAL", body, "0"}));
    EXPECT_EQ(redis_evalsha_as_eval(redis_format({"GET", "k"}), body), "");
    EXPECT_EQ(redis_evalsha_as_eval(redis_format({"EVALSHA", "short", "0"}), body), "");
    EXPECT_EQ(redis_evalsha_as_eval("", body), "");
}

TEST(RedisReader, ReadsRepliesFedByteByByte) {
    const std::string bytes = "+OK\r\n-ERR wrong\r\n:42\r\n$-1\r\n" + bulk("a\0\r\nb"s) +
                              "*3\r\n*2\r\n:1\r\n$1\r\nx\r\n$0\r\n\r\n*-1\r\n";
    redis_reader reader;
    std::vector<redis_reply> replies;
    for (const char c : bytes) {
        ASSERT_FALSE(reader.feed(std::string_view(&c, 1)));
        for (;;) {
            std::error_code ec;
            redis_reply r = reader.next(ec);
            ASSERT_FALSE(ec) << reader.error();
            if (!r) break;
            replies.push_back(std::move(r));
        }
    }
    ASSERT_EQ(replies.size(), 6u);
    EXPECT_EQ(replies[0]->type, REDIS_REPLY_STATUS);
    EXPECT_EQ(redis_text(*replies[0]), "OK");
    EXPECT_TRUE(redis_is_error(*replies[1]));
    EXPECT_EQ(redis_text(*replies[1]), "ERR wrong");
    EXPECT_EQ(replies[2]->type, REDIS_REPLY_INTEGER);
    EXPECT_EQ(replies[2]->integer, 42);
    EXPECT_EQ(replies[3]->type, REDIS_REPLY_NIL);
    EXPECT_EQ(redis_text(*replies[4]), "a\0\r\nb"s);
    ASSERT_EQ(replies[5]->type, REDIS_REPLY_ARRAY);
    ASSERT_EQ(replies[5]->elements, 3u);
    EXPECT_EQ(replies[5]->element[0]->elements, 2u);
    EXPECT_EQ(redis_text(*replies[5]->element[0]->element[1]), "x");
    EXPECT_EQ(redis_text(*replies[5]->element[1]), "");
    EXPECT_EQ(replies[5]->element[2]->type, REDIS_REPLY_NIL);
}

TEST(RedisReader, BytesThatAreNotRespFailTheReaderForGood) {
    redis_reader reader;
    EXPECT_FALSE(reader.feed("?what\r\n"));
    std::error_code ec;
    EXPECT_FALSE(reader.next(ec));
    EXPECT_EQ(ec, errc::protocol_violation);
    EXPECT_FALSE(reader.error().empty());
    (void)reader.feed("+OK\r\n");
    EXPECT_FALSE(reader.next(ec));
    EXPECT_EQ(ec, errc::protocol_violation);
}

// An array's header alone would have hiredis allocate its element
// pointers: one over the bound is refused before (found by
// fuzz_redis_wire: "*499992762" asked for 4 GB), and says why.
TEST(RedisReader, AnArrayOverTheBoundFailsTheReaderBeforeItsElementsAreAllocated) {
    redis_reader reader;
    EXPECT_FALSE(reader.feed("*499992762\r\n"));
    std::error_code ec;
    EXPECT_FALSE(reader.next(ec));
    EXPECT_EQ(ec, errc::protocol_violation);
    EXPECT_NE(reader.error().find("an array of 499992762 elements, over the bound of 16777216"), std::string_view::npos)
        << reader.error();

    // One within it, nested in another, is read as before.
    redis_reader fine;
    EXPECT_FALSE(fine.feed("*1\r\n*2\r\n:1\r\n$1\r\nx\r\n"));
    const redis_reply r = fine.next(ec);
    ASSERT_TRUE(r) << ec.message();
    ASSERT_EQ(r->elements, 1u);
    EXPECT_EQ(r->element[0]->elements, 2u);
    EXPECT_EQ(redis_text(*r->element[0]->element[1]), "x");
}

TEST(RedisAddress, AcceptsTheDocumentedForms) {
    redis_address a;
    ASSERT_FALSE(parse_redis_address("redis://cache.local:6380", a));
    EXPECT_EQ(a, (redis_address{"cache.local", 6380}));
    ASSERT_FALSE(parse_redis_address("127.0.0.1:7000", a));
    EXPECT_EQ(a, (redis_address{"127.0.0.1", 7000}));
    ASSERT_FALSE(parse_redis_address("localhost", a));
    EXPECT_EQ(a, (redis_address{"localhost", 6379}));
    ASSERT_FALSE(parse_redis_address("[::1]:7001", a));
    EXPECT_EQ(a, (redis_address{"::1", 7001}));
    EXPECT_EQ(a.text(), "[::1]:7001");
    ASSERT_FALSE(parse_redis_address("[fe80::1%eth0]:7002", a));
    EXPECT_EQ(a, (redis_address{"fe80::1%eth0", 7002}));
    ASSERT_FALSE(parse_redis_address("redis-0.redis_svc.ns.svc.cluster.local", a));
    EXPECT_EQ(a, (redis_address{"redis-0.redis_svc.ns.svc.cluster.local", 6379}));
    // TLS: the same address; the scheme says how to reach it.
    ASSERT_FALSE(parse_redis_address("rediss://cache.local:6380", a));
    EXPECT_EQ(a, (redis_address{"cache.local", 6380}));
    EXPECT_TRUE(redis_address_tls("rediss://cache.local:6380"));
    EXPECT_FALSE(redis_address_tls("redis://cache.local:6380"));
    EXPECT_FALSE(redis_address_tls("cache.local:6380"));
    bool tls = true;
    EXPECT_FALSE(redis_addresses_tls({"h:1", "redis://h:2"}, tls));
    EXPECT_FALSE(tls);
    EXPECT_FALSE(redis_addresses_tls({"rediss://h:1", "rediss://h:2"}, tls));
    EXPECT_TRUE(tls);
    EXPECT_EQ(redis_addresses_tls({"rediss://h:1", "h:2"}, tls), errc::invalid_argument);
    for (const char* bad : {"", "redis://", "rediss://", ":6379", "host:0", "host:65536", "host:x", "::1:6379",
                            "redisss://h:1", "rediss://rediss://h:1", "redis://redis://h:1", "http://h:1",
                            "redis://user@h:1", "rediss://user:pass@h:1", "h:1/0", "[::1", "[]:1", "[::1]x",
                            // no host that cannot be resolved or written back (fuzz_redis_wire: "[[]")
                            "[[]", "[%z]", "[host]:1", "[a[b]:1", "host;6379", "ho\x01st:1", "h\xc3\xa9:1",
                            "[::1]]:1"})
        EXPECT_EQ(parse_redis_address(bad, a), errc::invalid_argument) << bad;
    EXPECT_FALSE(redis_check_address("redis://h:1"));
}

TEST(RedisClusterSlots, GivesEachRangesMaster) {
    // Redis 7's shape: [first, last, [host, port, id, [metadata]], replicas...]
    const std::string reply = "*2\r\n"
                              "*4\r\n:0\r\n:5460\r\n*4\r\n" + bulk("10.0.0.1") + ":7000\r\n" + bulk("id1") + "*0\r\n"
                              "*3\r\n" + bulk("10.0.0.2") + ":7003\r\n" + bulk("id4") +
                              "*3\r\n:5461\r\n:16383\r\n*3\r\n" + bulk("") + ":7001\r\n" + bulk("id2");
    std::vector<redis_slot_range> ranges;
    ASSERT_FALSE(parse_cluster_slots(*parse(reply), redis_address{"10.0.0.9", 7001}, ranges));
    ASSERT_EQ(ranges.size(), 2u);
    EXPECT_EQ(ranges[0].first, 0);
    EXPECT_EQ(ranges[0].last, 5460);
    EXPECT_EQ(ranges[0].master, (redis_address{"10.0.0.1", 7000}));
    EXPECT_EQ(ranges[1].first, 5461);
    EXPECT_EQ(ranges[1].last, 16383);
    // An empty host: the node that answered.
    EXPECT_EQ(ranges[1].master, (redis_address{"10.0.0.9", 7001}));
}

TEST(RedisClusterSlots, RefusesWhatIsNotASlotMap) {
    std::vector<redis_slot_range> ranges;
    const redis_address by{"h", 1};
    for (const std::string& bad : {"+OK\r\n"s, "*1\r\n:1\r\n"s, "*1\r\n*2\r\n:0\r\n:1\r\n"s,
                                  "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n" + bulk("h") + ":1\r\n",
                                  "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n" + bulk("h") + ":1\r\n",
                                  "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n" + bulk("h") + ":0\r\n",
                                  "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n"s})
        EXPECT_EQ(parse_cluster_slots(*parse(bad), by, ranges), errc::malformed_body) << bad;
    EXPECT_TRUE(ranges.empty());
    EXPECT_TRUE(is_cluster_disabled(*parse("-ERR This instance has cluster support disabled\r\n")));
    EXPECT_FALSE(is_cluster_disabled(*parse("-ERR unknown command\r\n")));
}

TEST(RedisRedirect, ReadsMovedAndAsk) {
    const redis_address by{"10.0.0.9", 7000};
    redis_redirect r;
    ASSERT_TRUE(parse_redirect(*parse("-MOVED 3999 10.0.0.2:7001\r\n"), by, r));
    EXPECT_FALSE(r.ask);
    EXPECT_EQ(r.slot, 3999);
    EXPECT_EQ(r.to, (redis_address{"10.0.0.2", 7001}));
    ASSERT_TRUE(parse_redirect(*parse("-ASK 12182 :7002\r\n"), by, r));
    EXPECT_TRUE(r.ask);
    EXPECT_EQ(r.slot, 12182);
    EXPECT_EQ(r.to, (redis_address{"10.0.0.9", 7002}));
    ASSERT_TRUE(parse_redirect(*parse("-MOVED 1 [::1]:7003\r\n"), by, r));
    EXPECT_EQ(r.to, (redis_address{"::1", 7003}));
    for (const char* not_one : {"-ERR MOVED 1 h:1\r\n", "-MOVED 16384 h:1\r\n", "-MOVED x h:1\r\n",
                                "-MOVED 1 h\r\n", "-ASK 1\r\n", "+MOVED 1 h:1\r\n"})
        EXPECT_FALSE(parse_redirect(*parse(not_one), by, r)) << not_one;
}

TEST(RedisErrors, NoscriptAndTryagainAreToldByTheirWord) {
    EXPECT_TRUE(redis_is_tryagain(*parse("-TRYAGAIN Multiple keys request during rehashing of slot\r\n")));
    EXPECT_TRUE(redis_is_tryagain(*parse("-TRYAGAIN\r\n")));
    EXPECT_TRUE(redis_is_noscript(*parse("-NOSCRIPT No matching script. Please use EVAL.\r\n")));
    for (const char* not_one : {"+TRYAGAIN\r\n", "-TRYAGAINX\r\n", "-ERR TRYAGAIN\r\n", "$8\r\nTRYAGAIN\r\n"})
        EXPECT_FALSE(redis_is_tryagain(*parse(not_one))) << not_one;
    EXPECT_FALSE(redis_is_noscript(*parse("-TRYAGAIN x\r\n")));
}

TEST(RedisPush, ReadsSubscribeModeReplies) {
    // The views are into the reply.
    const redis_reply message = parse("*3\r\n" + bulk("message") + bulk("ch") + bulk("a\0b"s));
    redis_push p = parse_push(*message);
    EXPECT_EQ(p.what, redis_push::kind::message);
    EXPECT_EQ(p.channel, "ch");
    EXPECT_EQ(p.payload, "a\0b"s);
    const redis_reply pmessage = parse("*4\r\n" + bulk("pmessage") + bulk("c*") + bulk("ch") + bulk("x"));
    p = parse_push(*pmessage);
    EXPECT_EQ(p.what, redis_push::kind::pmessage);
    EXPECT_EQ(p.pattern, "c*");
    EXPECT_EQ(p.channel, "ch");
    EXPECT_EQ(p.payload, "x");
    EXPECT_EQ(parse_push(*parse("*2\r\n" + bulk("pong") + bulk(""))).what, redis_push::kind::pong);
    EXPECT_EQ(parse_push(*parse("+PONG\r\n")).what, redis_push::kind::pong);
    EXPECT_EQ(parse_push(*parse("*3\r\n" + bulk("subscribe") + bulk("ch") + ":1\r\n")).what, redis_push::kind::ack);
    EXPECT_EQ(parse_push(*parse("*2\r\n" + bulk("message") + bulk("ch"))).what, redis_push::kind::other);
    EXPECT_EQ(parse_push(*parse(":1\r\n")).what, redis_push::kind::other);
}

TEST(RedisPush, ReadsShardedChannelsAndRefusals) {
    const redis_reply smessage = parse("*3\r\n" + bulk("smessage") + bulk("hs:r:a") + bulk("d\0"s));
    redis_push p = parse_push(*smessage);
    EXPECT_EQ(p.what, redis_push::kind::smessage);
    EXPECT_EQ(p.channel, "hs:r:a");
    EXPECT_EQ(p.payload, "d\0"s);
    EXPECT_EQ(parse_push(*parse("*3\r\n" + bulk("ssubscribe") + bulk("hs:r:a") + ":1\r\n")).what,
              redis_push::kind::ack);
    // Asked for, or Redis's own when the channel's slot moved.
    const redis_reply ended = parse("*3\r\n" + bulk("sunsubscribe") + bulk("hs:r:a") + ":0\r\n");
    p = parse_push(*ended);
    EXPECT_EQ(p.what, redis_push::kind::sunsubscribe);
    EXPECT_EQ(p.channel, "hs:r:a");
    const redis_reply refused = parse("-MOVED 9886 127.0.0.1:7002\r\n");
    p = parse_push(*refused);
    EXPECT_EQ(p.what, redis_push::kind::error);
    EXPECT_EQ(p.payload, "MOVED 9886 127.0.0.1:7002");
    EXPECT_EQ(parse_push(*parse("*2\r\n" + bulk("smessage") + bulk("hs:r:a"))).what, redis_push::kind::other);
}

// Seqs 5..8 of epoch 3, against the last one a router delivered.
TEST(PublicationBatch, CountsTheLeadingPublicationsDeliveredAlready) {
    const publication_batch b{3, 5, 4, {}};
    EXPECT_EQ(delivered_already(0, 0, b), 0u) << "nothing delivered yet";
    EXPECT_EQ(delivered_already(3, 4, b), 0u) << "the one before the first";
    EXPECT_EQ(delivered_already(3, 5, b), 1u);
    EXPECT_EQ(delivered_already(3, 7, b), 3u);
    EXPECT_EQ(delivered_already(3, 8, b), 4u) << "the batch again";
    EXPECT_EQ(delivered_already(3, 900, b), 4u);
    EXPECT_EQ(delivered_already(4, 8, b), 0u) << "another epoch: its seqs say nothing of these";
    EXPECT_EQ(delivered_already(2, 8, b), 0u);
    const publication_batch last{3, 0xFFFFFFFFFFFFFFFEull, 2, {}};
    EXPECT_EQ(delivered_already(3, 0xFFFFFFFFFFFFFFFFull, last), 2u);
    EXPECT_EQ(delivered_already(3, 0xFFFFFFFFFFFFFFFEull, last), 1u);
    EXPECT_EQ(delivered_already(3, 1, publication_batch{3, 1, 0xFFFFFFFFu, {}}), 1u);
}

TEST(RedisStatus, HasNames) {
    EXPECT_EQ(redis_status_name(redis_status::ok), "ok");
    EXPECT_EQ(redis_status_name(redis_status::unreachable), "unreachable");
    EXPECT_EQ(redis_status_name(redis_status::lost), "lost");
    EXPECT_EQ(redis_status_name(redis_status::timed_out), "timed_out");
    EXPECT_EQ(redis_status_name(redis_status::stopped), "stopped");
}

}  // namespace
}  // namespace hyperstreams::router
