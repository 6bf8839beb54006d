#include "redis_wire.hpp"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {
namespace {

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the Redis
// Cluster specification defines the key hash.
constexpr std::array<std::uint16_t, 256> crc16_table = [] {
    std::array<std::uint16_t, 256> t{};
    for (unsigned i = 0; i < 256; ++i) {
        unsigned crc = i << 8;
        for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
        t[i] = static_cast<std::uint16_t>(crc);
    }
    return t;
}();

std::uint16_t crc16(std::string_view bytes) noexcept {
    unsigned crc = 0;
    for (const char c : bytes)
        crc = ((crc << 8) ^ crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xFF]) & 0xFFFF;
    return static_cast<std::uint16_t>(crc);
}

// "host:port", "[v6]:port" or ":port" (empty host) as Redis writes them.
bool parse_endpoint(std::string_view text, redis_address& out) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    std::string_view host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    out.host = std::string(host);
    return parse_redis_port(text.substr(colon + 1), out.port);
}

std::string_view element_text(const redisReply& r, std::size_t i) noexcept {
    return i < r.elements && r.element[i] ? redis_text(*r.element[i]) : std::string_view();
}

bool element_integer(const redisReply& r, std::size_t i, long long& out) noexcept {
    if (i >= r.elements || !r.element[i] || r.element[i]->type != REDIS_REPLY_INTEGER) return false;
    out = r.element[i]->integer;
    return true;
}

}  // namespace

void redis_reply_deleter::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

std::string_view redis_status_name(redis_status s) noexcept {
    switch (s) {
        case redis_status::ok: return "ok";
        case redis_status::unreachable: return "unreachable";
        case redis_status::lost: return "lost";
        case redis_status::timed_out: return "timed_out";
        case redis_status::stopped: return "stopped";
    }
    return "unknown";
}

std::string redis_failure(const redis_result& r) {
    if (r.status != redis_status::ok) return "Redis: " + std::string(redis_status_name(r.status)) + ": " + r.detail;
    if (r.reply && r.reply->type == REDIS_REPLY_ERROR) return "Redis: " + std::string(redis_text(*r.reply));
    return "Redis: an answer of an unexpected shape";
}

std::uint16_t redis_key_slot(std::string_view key) noexcept {
    const std::size_t open = key.find('{');
    if (open != std::string_view::npos) {
        const std::size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & 16383;
}

namespace {

// RESP is *N, then $length and the bytes per argument: written here with
// to_chars into one buffer sized up front. hiredis's redisFormatCommandArgv
// writes every length with sprintf and copies the result out of a malloc'd
// buffer of its own: printf's internals were 8-10% of the publishing
// router's perf samples (3 subscribers x 64 B).
// `head` then `args`.
template <typename Args>
std::string format_command(std::span<const std::string_view> head, const Args& args) {
    constexpr std::size_t header_room = 1 + 20 + 2;  // '*' or '$', a 64-bit length, CRLF
    std::size_t size = header_room;
    for (const auto& a : head) size += header_room + a.size() + 2;
    for (const auto& a : args) size += header_room + a.size() + 2;
    std::string out;
    out.resize(size);
    char* p = out.data();
    const auto header = [&p](char kind, std::size_t n) {
        *p++ = kind;
        p = std::to_chars(p, p + 20, n).ptr;
        *p++ = '\r';
        *p++ = '\n';
    };
    const auto argument = [&](std::string_view a) {
        header('$', a.size());
        if (!a.empty()) std::memcpy(p, a.data(), a.size());
        p += a.size();
        *p++ = '\r';
        *p++ = '\n';
    };
    header('*', head.size() + std::size(args));
    for (const auto& a : head) argument(a);
    for (const auto& a : args) argument(a);
    out.resize(static_cast<std::size_t>(p - out.data()));
    return out;
}

}  // namespace

std::string redis_format(std::span<const std::string_view> args) { return format_command({}, args); }

std::string redis_format(std::initializer_list<std::string_view> args) { return format_command({}, args); }

std::string redis_format(const std::vector<std::string>& args) { return format_command({}, args); }

std::string redis_format_evalsha(std::string_view sha1, std::span<const std::string_view> args) {
    const std::string_view head[] = {"EVALSHA", sha1};
    return format_command(head, args);
}

namespace {

// hiredis frees its buffer when it is empty and more than 16 KiB of it is
// unused (REDIS_READER_MAX_BUF), then grows it again, doubling, for the
// next reply that big: for every batch message of 1 KiB publications
// (about 100 KiB) a subscriber connection read. A reader now keeps up to
// what the biggest batch takes (max_batch_bytes, 1 MiB, doubled by the
// growth, and room to spare), per connection.
constexpr std::size_t reader_buffer_kept = std::size_t{4} << 20;

// hiredis's own reply functions, but for arrays over the bound.
void* (*hiredis_create_array)(const redisReadTask*, int) = nullptr;

void* bounded_array(const redisReadTask* task, int elements) {
    if (elements < 0 || elements > redis_max_array_elements) {
        if (task->privdata != nullptr) static_cast<redis_reader*>(task->privdata)->refuse_array(elements);
        return nullptr;  // hiredis fails the reader
    }
    return hiredis_create_array(task, elements);
}

redisReplyObjectFunctions* bounded_functions() {
    static redisReplyObjectFunctions functions = [] {
        redisReader* plain = redisReaderCreate();
        redisReplyObjectFunctions f = *plain->fn;
        redisReaderFree(plain);
        hiredis_create_array = f.createArray;
        f.createArray = &bounded_array;
        return f;
    }();
    return &functions;
}

}  // namespace

redis_reader::redis_reader() : reader_(redisReaderCreateWithFunctions(bounded_functions())) {
    if (reader_ != nullptr) {
        reader_->maxbuf = reader_buffer_kept;
        reader_->privdata = this;  // hiredis hands it to every read task (bounded_array)
    }
}

void redis_reader::refuse_array(long long elements) noexcept {
    std::snprintf(refused_, sizeof refused_, "an array of %lld elements, over the bound of %lld", elements,
                  redis_max_array_elements);
}

redis_reader::~redis_reader() { redisReaderFree(reader_); }

std::error_code redis_reader::feed(std::string_view bytes) {
    if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK)
        return make_error_code(errc::protocol_violation);
    return {};
}

redis_reply redis_reader::next(std::error_code& ec) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
        ec = make_error_code(errc::protocol_violation);
        return nullptr;
    }
    ec.clear();
    return redis_reply(static_cast<redisReply*>(reply));
}

std::string_view redis_reader::error() const noexcept { return refused_[0] != '\0' ? refused_ : reader_->errstr; }

std::string_view redis_text(const redisReply& r) noexcept {
    switch (r.type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR: return {r.str, r.len};
        default: return {};
    }
}

bool redis_is_error(const redisReply& r) noexcept { return r.type == REDIS_REPLY_ERROR; }

bool redis_is_noscript(const redisReply& r) noexcept {
    return redis_is_error(r) && redis_text(r).substr(0, 9) == "NOSCRIPT ";
}

bool redis_is_tryagain(const redisReply& r) noexcept {
    const std::string_view text = redis_text(r);
    return redis_is_error(r) && (text == "TRYAGAIN" || text.substr(0, 9) == "TRYAGAIN ");
}

std::string redis_script_sha1(std::string_view body) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(body.data(), body.size(), digest, &length, EVP_sha1(), nullptr) != 1) return {};
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0x0F]);
    }
    return out;
}

std::string redis_evalsha_as_eval(std::string_view evalsha, std::string_view body) {
    // *N\r\n  $7\r\nEVALSHA\r\n  $40\r\n<sha>\r\n  the rest
    constexpr std::string_view verb = "$7\r\nEVALSHA\r\n$40\r\n";
    constexpr std::size_t sha = 40 + 2;
    const std::size_t count_end = evalsha.find("\r\n");
    if (evalsha.empty() || evalsha[0] != '*' || count_end == std::string_view::npos) return {};
    const std::string_view after = evalsha.substr(count_end + 2);
    if (after.substr(0, verb.size()) != verb || after.size() < verb.size() + sha) return {};
    std::string out(evalsha.substr(0, count_end + 2));
    out += "$4\r\nEVAL\r\n$" + std::to_string(body.size()) + "\r\n";
    out += body;
    out += "\r\n";
    out += after.substr(verb.size() + sha);
    return out;
}

std::error_code parse_cluster_slots(const redisReply& reply, const redis_address& answered_by,
                                    std::vector<redis_slot_range>& out) {
    const auto bad = make_error_code(errc::malformed_body);
    if (reply.type != REDIS_REPLY_ARRAY) return bad;
    std::vector<redis_slot_range> ranges;
    for (std::size_t i = 0; i < reply.elements; ++i) {
        const redisReply* entry = reply.element[i];
        long long first = 0;
        long long last = 0;
        if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements < 3 || !element_integer(*entry, 0, first) ||
            !element_integer(*entry, 1, last) || first < 0 || last < first || last > 16383)
            return bad;
        const redisReply* master = entry->element[2];
        long long port = 0;
        if (!master || master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
            master->element[0]->type != REDIS_REPLY_STRING || !element_integer(*master, 1, port) || port <= 0 ||
            port > 65535)
            return bad;
        redis_slot_range r;
        r.first = static_cast<std::uint16_t>(first);
        r.last = static_cast<std::uint16_t>(last);
        const std::string_view host = element_text(*master, 0);
        r.master.host = host.empty() ? answered_by.host : std::string(host);
        r.master.port = static_cast<std::uint16_t>(port);
        ranges.push_back(std::move(r));
    }
    out = std::move(ranges);
    return {};
}

bool is_cluster_disabled(const redisReply& reply) noexcept {
    return reply.type == REDIS_REPLY_ERROR &&
           redis_text(reply).find("cluster support disabled") != std::string_view::npos;
}

bool parse_redirect(const redisReply& reply, const redis_address& answered_by, redis_redirect& out) {
    if (reply.type != REDIS_REPLY_ERROR) return false;
    std::string_view text = redis_text(reply);
    redis_redirect r;
    if (text.substr(0, 6) == "MOVED ") {
        text.remove_prefix(6);
    } else if (text.substr(0, 4) == "ASK ") {
        text.remove_prefix(4);
        r.ask = true;
    } else {
        return false;
    }
    const std::size_t space = text.find(' ');
    if (space == std::string_view::npos) return false;
    const std::string_view slot = text.substr(0, space);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(slot.data(), slot.data() + slot.size(), value);
    if (ec != std::errc() || end != slot.data() + slot.size() || value > 16383) return false;
    r.slot = static_cast<std::uint16_t>(value);
    if (!parse_endpoint(text.substr(space + 1), r.to)) return false;
    if (r.to.host.empty()) r.to.host = answered_by.host;
    out = std::move(r);
    return true;
}

redis_push parse_push(const redisReply& reply) noexcept {
    redis_push p;
    if (reply.type == REDIS_REPLY_STATUS && redis_text(reply) == "PONG") {
        p.what = redis_push::kind::pong;
        return p;
    }
    if (reply.type == REDIS_REPLY_ERROR) {
        p.what = redis_push::kind::error;
        p.payload = redis_text(reply);
        return p;
    }
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements == 0) return p;
    const std::string_view kind = element_text(reply, 0);
    if ((kind == "message" || kind == "smessage") && reply.elements == 3) {
        p.what = kind == "message" ? redis_push::kind::message : redis_push::kind::smessage;
        p.channel = element_text(reply, 1);
        p.payload = element_text(reply, 2);
    } else if (kind == "pmessage" && reply.elements == 4) {
        p.what = redis_push::kind::pmessage;
        p.pattern = element_text(reply, 1);
        p.channel = element_text(reply, 2);
        p.payload = element_text(reply, 3);
    } else if (kind == "sunsubscribe" && reply.elements == 3) {
        p.what = redis_push::kind::sunsubscribe;
        p.channel = element_text(reply, 1);
    } else if (kind == "pong") {
        p.what = redis_push::kind::pong;
    } else if (kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" || kind == "punsubscribe" ||
               kind == "ssubscribe") {
        p.what = redis_push::kind::ack;
    }
    return p;
}

}  // namespace hyperstreams::router
