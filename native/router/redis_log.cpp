#include "redis_log.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

#include "hyperstreams/names.hpp"
#include "log.hpp"
#include "publication_batch.hpp"

namespace hyperstreams::router {
namespace {

// Both publish scripts: deletes the entries at the head of `stream` whose
// end (x, ms on Redis's clock) is at or before `now`, up to 16, stopping at
// the first that lives on.
constexpr std::string_view trim_expired_head_lua = R"lua(
local function trim_expired_head(stream, now)
  for _, entry in ipairs(redis.call('xrange', stream, '-', '+', 'COUNT', 16)) do
    local x
    for i = 1, #entry[2], 2 do if entry[2][i] == 'x' then x = tonumber(entry[2][i + 1]) end end
    if not x or x > now then return end
    redis.call('xdel', stream, entry[1])
  end
end
)lua";

// Every script: whether Redis rolled back under the channel, so that its
// keys may lack publications that were acked and published. A replica
// promoted without the channel's last write (Redis replicates
// asynchronously), or a server restarted from an older snapshot, would
// otherwise give those publications' seqs again, in the same epoch, to
// others, which every subscriber that had the first ones drops as
// duplicates. So each write keeps, in the channel's meta hash, the
// master's replication ID and offset before it (r, o), and a script that
// finds the server elsewhere treats the channel as lost (a new epoch, the
// history gone):
// - a lineage the server does not continue: r is neither its replication ID
//   nor the one it took over from (master_replid2: a promoted replica's
//   old master's), or it restarted without its replication history; but on
//   a Redis Cluster only on the node that wrote it (n, CLUSTER MYID): on
//   another, the slot was moved there (MIGRATE brings the keys whole);
// - an offset not past o: the write after which o was kept never reached
//   this server.
// A server with no replication offset (a master that never had a replica
// keeps none) is judged by its ID alone; one whose INFO gives no ID, and a
// channel written before this check (no r), not at all. Answers rolled
// back or not, and the ID, offset and node ID ("" on a single server) to
// keep.
constexpr std::string_view rolled_back_lua = R"lua(
local function rolled_back(r, o, n)
  -- Three lines in a row in INFO, found at once: matching each in turn cost
  -- Redis twice as long.
  local info = redis.call('info', 'replication', 'cluster')
  local at = string.find(info, 'master_replid:', 1, true)
  if not at then return false end
  local id, id2, offset =
    string.match(info, '^master_replid:(%x+)%s+master_replid2:(%x+)%s+master_repl_offset:(%d+)', at)
  if not id then return false end
  -- A Redis Cluster node's ID: a slot moved to another master (MIGRATE)
  -- brings the keys whole, with another lineage's r.
  local node = ''
  if string.find(info, 'cluster_enabled:1', 1, true) then node = redis.call('cluster', 'myid') end
  if not r then return false, id, offset, node end
  if r ~= id and r ~= id2 then return node == '' or not n or n == '' or n == node, id, offset, node end
  return offset ~= '0' and tonumber(offset) <= (tonumber(o) or 0), id, offset, node
end
-- A new epoch for a channel that had `old`: the one proposed, unless that is it.
local function next_epoch(proposed, old)
  if proposed == old then return string.format('%.0f', tonumber(old) % 4294967295 + 1) end
  return proposed
end
)lua";

// KEYS: meta, stream, and the idempotency key's when the publish has one.
// ARGV: pub/sub channel, payload, flags, a new epoch, history length (0:
// none), history TTL, meta TTL (seconds), the message's time to live in ms
// (0: none), the idempotency window (seconds).
//
// The key check and the append are one script, so two routers taking the
// same key at once publish once. The key's value is "epoch:seq:digest"
// (SHA-1 of the flags and payload). The answer is {epoch, seq, outcome}:
// 0 published there, 1 a repeat placed there before, 2 the key holds
// another payload (nothing published).
//
// An entry with a time to live holds its end (x, Redis's clock, ms). The
// publish of one deletes the expired entries at the stream's head; the read
// leaves out any other, and MAXLEN bounds them all.
const std::string publish_script = std::string(trim_expired_head_lua) + std::string(rolled_back_lua) + R"lua(
local d
if KEYS[3] then
  d = redis.sha1hex(ARGV[3] .. ':' .. ARGV[2])
  local first = redis.call('get', KEYS[3])
  if first then
    local fe, fs, fd = string.match(first, '^(%d+):(%d+):(%x+)$')
    if fd ~= d then return {0, 0, 2} end
    return {tonumber(fe), tonumber(fs), 1}
  end
end
local m = redis.call('hmget', KEYS[1], 'e', 'r', 'o', 'n')
local e = m[1]
local lost, id, offset, node = rolled_back(m[2], m[3], m[4])
if not e or lost then
  e = e and next_epoch(ARGV[4], e) or ARGV[4]
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[1], 'e', e, 's', 0)
end
if id then redis.call('hset', KEYS[1], 'r', id, 'o', offset, 'n', node) end
local s = redis.call('hincrby', KEYS[1], 's', 1)
if ARGV[5] ~= '0' then
  if ARGV[8] == '0' then
    redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[5], s .. '-0', 'f', ARGV[3], 'd', ARGV[2])
  else
    local t = redis.call('time')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[5], s .. '-0', 'f', ARGV[3], 'd', ARGV[2], 'x',
               string.format('%.0f', now + tonumber(ARGV[8])))
    trim_expired_head(KEYS[2], now)
  end
  redis.call('expire', KEYS[2], ARGV[6])
end
redis.call('expire', KEYS[1], ARGV[7])
redis.call('publish', ARGV[1], struct.pack('<BI4I8', tonumber(ARGV[3]), tonumber(e), s) .. ARGV[2])
if KEYS[3] then redis.call('set', KEYS[3], e .. ':' .. s .. ':' .. d, 'EX', ARGV[9]) end
return {tonumber(e), s, 0}
)lua";

// The publish script's work for several publications of one channel, in
// their order, in one call (redis_log.hpp: batches).
// KEYS: meta, stream, then the idempotency keys of the publications that
// have one. ARGV: pub/sub channel, a new epoch, history length (0: none),
// history TTL, meta TTL (seconds), the idempotency window (seconds), the
// number of publications, then four for each: flags, time to live in ms (0:
// none), the index of its key in KEYS (0: none), payload.
//
// Each publication follows the publish script's rules: a key's repeat (the
// same flags and payload) answers the first position and takes none, a
// key holding another payload answers outcome 2, and neither is published;
// the others take consecutive seqs, in order, and go to the stream, which
// is trimmed to the history length, and its expired head deleted, once,
// after the appends: an exact MAXLEN on each XADD cost Redis 2.2 us per
// append, against 0.5 for the append and 2.6 for the XTRIM of the batch
// (docs/BENCHMARKS.md, "The history trimmed once per batch"). A key
// repeated within the batch is a repeat of its first use there. The
// answer is one string (one reply for the reader to allocate, not three
// integers per publication): when every publication took a seq, 12 bytes,
// [epoch u32 LE][first seq u64 LE] (the others follow it; no record per
// publication for Lua to pack); else 13 bytes per publication, in order,
// [outcome u8][epoch u32 LE][seq u64 LE]. What was published goes out as
// one message (publication_batch.hpp), and nothing when none was.
const std::string publish_batch_script = std::string(trim_expired_head_lua) + std::string(rolled_back_lua) + R"lua(
local m = redis.call('hmget', KEYS[1], 'e', 's', 'r', 'o', 'n')
local e, s = m[1], tonumber(m[2]) or 0
local lost, id, offset, node = rolled_back(m[3], m[4], m[5])
-- A channel lost starts again at its first publication below, as a new one.
local old_e
if lost and e then old_e, e = e, nil end
local en = e and tonumber(e)
-- parts[1] is the message's header, set last; then each publication's
-- head and payload, as two strings, so that no string per publication
-- copies its payload: table.concat copies each once, into the message.
-- out: the records, made only once a publication did not take a seq
-- (the ones before it did: first, first + 1, ...).
local out, parts, np = nil, {''}, 1
local first, now, expiring
local function records_until(i)
  out = {}
  for j = 0, i - 1 do out[j + 1] = struct.pack('<BI4I8', 0, en, first + j) end
end
for i = 0, tonumber(ARGV[7]) - 1 do
  local at = 8 + 4 * i
  local flags, ttl, k, payload = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2]), ARGV[at + 3]
  local d, known
  if k > 0 then
    d = redis.sha1hex(flags .. ':' .. payload)
    known = redis.call('get', KEYS[k])
  end
  if known then
    if not out then records_until(i) end
    local fe, fs, fd = string.match(known, '^(%d+):(%d+):(%x+)$')
    if fd == d then
      out[i + 1] = struct.pack('<BI4I8', 1, tonumber(fe), tonumber(fs))
    else
      out[i + 1] = struct.pack('<BI4I8', 2, 0, 0)
    end
  else
    if not e then
      e = old_e and next_epoch(ARGV[2], old_e) or ARGV[2]
      en = tonumber(e)
      s = 0
      redis.call('del', KEYS[2])
      redis.call('hset', KEYS[1], 'e', e)
    end
    s = s + 1
    first = first or s
    local seq = string.format('%.0f', s)
    if ARGV[3] ~= '0' then
      if ttl == '0' then
        redis.call('xadd', KEYS[2], seq .. '-0', 'f', flags, 'd', payload)
      else
        if not now then
          local t = redis.call('time')
          now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        redis.call('xadd', KEYS[2], seq .. '-0', 'f', flags, 'd', payload, 'x',
                   string.format('%.0f', now + tonumber(ttl)))
        expiring = true
      end
    end
    if k > 0 then redis.call('set', KEYS[k], e .. ':' .. seq .. ':' .. d, 'EX', ARGV[6]) end
    parts[np + 1] = struct.pack('<BI4', tonumber(flags), #payload)
    parts[np + 2] = payload
    np = np + 2
    if out then out[i + 1] = struct.pack('<BI4I8', 0, en, s) end
  end
end
if not first then return table.concat(out) end
if id then
  redis.call('hset', KEYS[1], 's', string.format('%.0f', s), 'r', id, 'o', offset, 'n', node)
else
  redis.call('hset', KEYS[1], 's', string.format('%.0f', s))
end
if ARGV[3] ~= '0' then
  redis.call('xtrim', KEYS[2], 'MAXLEN', ARGV[3])
  if expiring then
    trim_expired_head(KEYS[2], now)
  end
  redis.call('expire', KEYS[2], ARGV[4])
end
redis.call('expire', KEYS[1], ARGV[5])
parts[1] = struct.pack('<BBI4I8I4', 128, 19, en, first, (np - 1) / 2)
redis.call('publish', ARGV[1], table.concat(parts))
if not out then return struct.pack('<I4I8', en, first) end
return table.concat(out)
)lua";

// KEYS: meta, stream. ARGV: the epoch and seq resumed from, and 1 for the
// history, 0 for the position only or 2 for the last publication. Answers
// the channel's epoch and last seq (0, 0: Redis has no such channel), the
// history after seq (all of it when the epoch is another) or the stream's
// last entry, without the entries expired, and Redis's clock (ms) that
// decided it. A channel Redis rolled back under (rolled_back) is deleted
// and answered as none: its next publication starts a new epoch.
const std::string read_script = std::string(rolled_back_lua) + R"lua(
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local clock = string.format('%.0f', now)
local m = redis.call('hmget', KEYS[1], 'e', 's', 'r', 'o', 'n')
local e = m[1]
if not e then return {0, 0, {}, clock} end
if rolled_back(m[3], m[4], m[5]) then
  redis.call('del', KEYS[1], KEYS[2])
  return {0, 0, {}, clock}
end
local s = tonumber(m[2])
if ARGV[3] == '0' then return {tonumber(e), s, {}, clock} end
if ARGV[3] == '2' then
  local last = redis.call('xrevrange', KEYS[2], '+', '-', 'COUNT', 1)
  for _, entry in ipairs(last) do
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'x' and tonumber(entry[2][i + 1]) <= now then return {tonumber(e), s, {}, clock} end
    end
  end
  return {tonumber(e), s, last, clock}
end
local from = '-'
if e == ARGV[1] then from = (tonumber(ARGV[2]) + 1) .. '-0' end
local alive = {}
for _, entry in ipairs(redis.call('xrange', KEYS[2], from, '+')) do
  local x
  for i = 1, #entry[2], 2 do if entry[2][i] == 'x' then x = tonumber(entry[2][i + 1]) end end
  if not x or x > now then alive[#alive + 1] = entry end
end
return {tonumber(e), s, alive, clock}
)lua";

constexpr std::size_t header_bytes = 13;  // flags u8, epoch u32, seq u64

std::uint64_t load_le(const char* p, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return v;
}

// `v` in decimal, written into `buf`.
template <std::size_t N, typename T>
std::string_view decimal(char (&buf)[N], T v) noexcept {
    return {buf, static_cast<std::size_t>(std::to_chars(buf, buf + N, v).ptr - buf)};
}

std::string_view text_of(const redisReply* r) noexcept {
    return r && r->str ? std::string_view(r->str, r->len) : std::string_view();
}

// A publish whose WAIT did not count the replicas the options ask for:
// why it is not acked; empty when it is.
std::string why_unreplicated(const redis_result& r, const redis_log_options& o) {
    if (o.wait_replicas == 0 || r.replicas >= static_cast<long long>(o.wait_replicas)) return {};
    return "published, but " +
           (r.replicas < 0 ? std::string("the replicas that have it could not be counted (Redis's WAIT failed)")
                           : std::to_string(r.replicas) + " of " + std::to_string(o.wait_replicas) +
                                 " replicas acknowledged it within " + std::to_string(o.wait_timeout.count()) + " ms") +
           ": a Redis failover may lose it";
}

// Escapes what Redis's glob takes for itself.
void append_glob_literal(std::string& out, std::string_view token) {
    for (char c : token) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
}

// The entries of an XRANGE answer, as publications of `epoch`. An entry's
// end (x) is on Redis's clock, `redis_clock` (ms) when Redis read it: it
// becomes this router's as the time left then, counted from `now`.
std::vector<publication> stream_entries(const redisReply* entries, std::uint32_t epoch, const redisReply* redis_clock,
                                        time_point now) {
    const std::int64_t redis_now = std::strtoll(std::string(text_of(redis_clock)).c_str(), nullptr, 10);
    std::vector<publication> kept;
    for (std::size_t i = 0; i < entries->elements; ++i) {
        const redisReply* e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY) continue;
        publication p;
        p.epoch = epoch;
        p.seq = std::strtoull(std::string(text_of(e->element[0])).c_str(), nullptr, 10);
        const redisReply* fields = e->element[1];
        for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
            const std::string_view key = text_of(fields->element[f]);
            const std::string_view value = text_of(fields->element[f + 1]);
            if (key == "f") {
                p.flags = static_cast<std::uint8_t>(std::strtoul(std::string(value).c_str(), nullptr, 10) &
                                                    frame_flags::json);
            } else if (key == "d") {
                p.hold = frame_bytes::copy(bytes_view(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()));
                p.payload = *p.hold;
            } else if (key == "x") {
                const std::int64_t left = std::strtoll(std::string(value).c_str(), nullptr, 10) - redis_now;
                p.expires = now + std::chrono::milliseconds(left);
            }
        }
        if (p.hold) kept.push_back(std::move(p));
    }
    return kept;
}

// The Redis glob (HSCAN MATCH) of the names that start with `prefix`.
std::string prefix_glob(std::string_view prefix) {
    std::string glob;
    append_glob_literal(glob, prefix);
    glob.push_back('*');
    return glob;
}

}  // namespace

redis_log::redis_log(redis_engine& engine, redis_log_options options)
    : engine_(engine),
      options_(std::move(options)),
      publish_script_(engine_.load_script(publish_script)),
      publish_batch_script_(engine_.load_script(publish_batch_script)),
      read_script_(engine_.load_script(read_script)),
      meta_ttl_text_(std::to_string(options_.meta_ttl_s)),
      wait_{options_.wait_replicas, options_.wait_timeout, {}},
      rng_(std::random_device{}()) {}

redis_log::~redis_log() = default;

std::string redis_log::meta_key(std::string_view channel) const {
    return options_.prefix + ":{" + std::string(channel) + "}:m";
}

std::string redis_log::stream_key(std::string_view channel) const {
    return options_.prefix + ":{" + std::string(channel) + "}:s";
}

redis_wait redis_log::wait_for(std::string_view channel) const {
    redis_wait w = wait_;
    if (w.replicas > 0) w.fence = options_.prefix + ":{" + std::string(channel) + "}:w";
    return w;
}

std::string redis_log::pubsub_channel(std::string_view channel) const {
    return options_.prefix + ":p:" + std::string(channel);
}

std::pair<std::string, bool> redis_log::redis_interest(std::string_view pattern) const {
    if (is_valid_channel(pattern)) return {pubsub_channel(pattern), false};
    std::string glob = options_.prefix + ":p:";
    bool more = true;
    while (more) {
        const std::size_t dot = pattern.find('.');
        const std::string_view token = pattern.substr(0, dot);
        more = dot != std::string_view::npos;
        pattern = more ? pattern.substr(dot + 1) : std::string_view();
        if (token == "*" || token == ">")
            glob.push_back('*');
        else
            append_glob_literal(glob, token);
        if (more) glob.push_back('.');
    }
    return {glob, true};
}

std::string redis_log::down_reason() const {
    std::lock_guard lock(reason_mu_);
    return down_reason_;
}

void redis_log::on_state(bool up, std::string_view reason) {
    {
        std::lock_guard lock(reason_mu_);
        down_reason_ = up ? std::string() : std::string(reason);
    }
    up_.store(up, std::memory_order_release);
    if (up) {
        // Redis may have lost the index meanwhile: it is written again.
        index_generation_.fetch_add(1, std::memory_order_acq_rel);
        HS_LOG(info, "cluster.redis_up");
        // Back after being down: what the subscriber connection missed
        // meanwhile is read from the streams (holes, redis_log.hpp), once
        // the subscriptions are in force again (a publication made after a
        // channel's read then comes live). Only the channels of the slots
        // that may have lost messages: on a Redis Cluster whose master
        // failed over while this router's subscriber connection, on another
        // node, stayed, that master's channels; else every one.
        if (!std::exchange(was_up_, true)) {
            (void)engine_.take_missed_slots();  // the engine's start: nothing delivered yet
        } else {
            engine_.after_subscribed([this] {
                if (!up_.load(std::memory_order_acquire)) return;  // down again: the next up reads them
                enter_call([this, missed = std::make_shared<const std::bitset<redis_slots>>(
                                      engine_.take_missed_slots())] {
                    catch_up_.clear();
                    for (const auto& [name, at] : known_)
                        if (missed->test(redis_key_slot(meta_key(name)))) catch_up_.push_back(name);
                    HS_LOG(info, "cluster.catch_up").kv("channels", static_cast<std::uint64_t>(catch_up_.size()))
                        .kv("known", static_cast<std::uint64_t>(known_.size()));
                    pump_catch_up();
                });
            });
        }
    } else {
        HS_LOG(warn, "cluster.redis_down").kv("reason", reason);
    }
}

redis_log::key_names redis_log::names_of(std::string_view channel, std::string_view idempotency_key) {
    names_.clear();
    for (const char kind : {'m', 's'}) {
        names_ += options_.prefix;
        names_ += ":{";
        names_ += channel;
        names_ += "}:";
        names_ += kind;
    }
    names_ += options_.prefix;
    names_ += ":p:";
    names_ += channel;
    const std::size_t pubsub_size = names_.size() - 2 * (options_.prefix.size() + channel.size() + 5);
    if (!idempotency_key.empty()) {
        names_ += options_.prefix;
        names_ += ":{";
        names_ += channel;
        names_ += "}:i:";
        names_ += idempotency_key;
    }
    const std::string_view all(names_);
    const std::size_t key = options_.prefix.size() + channel.size() + 5;
    return {all.substr(0, key), all.substr(key, key), all.substr(2 * key, pubsub_size),
            all.substr(2 * key + pubsub_size)};
}

std::uint32_t redis_log::advance(std::string_view channel, position first, std::uint32_t count) {
    return advance(known_.find(channel), channel, first, count);
}

std::uint32_t redis_log::advance(known_map::iterator it, std::string_view channel, position first,
                                 std::uint32_t count) {
    const position last_of_them{first.epoch, first.seq + (count - 1)};
    if (it == known_.end()) {
        if (known_.size() >= options_.max_known_channels) known_.clear();  // duplicates are then caught by the clients
        known_.emplace(std::string(channel), last_of_them);
        return 0;
    }
    position& last = it->second;
    const std::uint32_t seen =
        delivered_already(last.epoch, last.seq, publication_batch{first.epoch, first.seq, count, {}});
    if (seen < count) last = last_of_them;
    return seen;
}

// ---------------------------------------------------------------- publish

void redis_log::append(std::string_view channel, std::uint8_t flags, bytes_view payload, const publisher& from,
                       const channel_options& options, const publish_extras& extras) {
    if (!up()) {
        publish_failures_.fetch_add(1, std::memory_order_relaxed);
        sink_->append_failed(from, errc::cluster_unavailable, "Redis is unreachable: " + down_reason());
        return;
    }
    if (options.latest) index_latest(channel);
    bool first = false;
    {
        std::lock_guard lock(queue_mu_);
        first = queued_.empty();
        queued_publish q;
        q.channel_at = queued_bytes_.size();
        q.channel_size = channel.size();
        queued_bytes_ += channel;
        q.payload_at = queued_bytes_.size();
        q.payload_size = payload.size();
        queued_bytes_.append(reinterpret_cast<const char*>(payload.data()), payload.size());
        q.key_at = queued_bytes_.size();
        q.key_size = extras.key.size();
        queued_bytes_ += extras.key;
        q.flags = flags;
        q.ttl_s = extras.ttl_s;
        q.messages_kept = options.messages_kept();
        q.history_ttl_s = options.history_ttl_s;
        q.idempotency_window_s = options.idempotency_window_s;
        q.from = from;
        queued_.push_back(q);
    }
    // Posted, never run here: what the core appends until the engine's
    // thread gets to it joins this flush. A lone publish waits for this one
    // post more than when its script was queued at once, and for nothing else.
    if (first) engine_.after_reads([this] { flush(); });
}

void redis_log::flush() {
    {
        std::lock_guard lock(queue_mu_);
        std::swap(queued_, flushing_);
        std::swap(queued_bytes_, flushing_bytes_);
    }
    // Each channel's publications together, in the order appended (a
    // stable sort by channel): every publisher's order on a channel is kept.
    // Mostly they are already (one channel): the sort's buffer is then not
    // made.
    flush_order_.resize(flushing_.size());
    for (std::size_t i = 0; i < flush_order_.size(); ++i) flush_order_[i] = i;
    const auto by_channel = [this](std::size_t a, std::size_t b) {
        return queued_text(flushing_[a].channel_at, flushing_[a].channel_size) <
               queued_text(flushing_[b].channel_at, flushing_[b].channel_size);
    };
    if (!std::is_sorted(flush_order_.begin(), flush_order_.end(), by_channel))
        std::stable_sort(flush_order_.begin(), flush_order_.end(), by_channel);
    std::size_t begin = 0;
    while (begin < flush_order_.size()) {
        const queued_publish& head = flushing_[flush_order_[begin]];
        const std::string_view channel = queued_text(head.channel_at, head.channel_size);
        std::size_t end = begin;
        std::size_t bytes = 0;
        while (end < flush_order_.size() && end - begin < max_batch_publications) {
            const queued_publish& q = flushing_[flush_order_[end]];
            if (queued_text(q.channel_at, q.channel_size) != channel) break;
            // A publication bigger than the bound goes alone.
            if (end > begin && bytes + q.payload_size + q.key_size > max_batch_bytes) break;
            bytes += q.payload_size + q.key_size;
            ++end;
        }
        if (end - begin == 1)
            publish_one(head);
        else
            publish_batch(std::span<const std::size_t>(flush_order_).subspan(begin, end - begin));
        begin = end;
    }
    flushing_.clear();
    flushing_bytes_.clear();
}

void redis_log::publish_one(const queued_publish& q) {
    std::uint32_t proposed = 0;
    while (proposed == 0) proposed = static_cast<std::uint32_t>(rng_());
    const std::string_view channel = queued_text(q.channel_at, q.channel_size);
    // The arguments as views of reused buffers and of numbers written in
    // place: a publish allocates no string before the command's own bytes.
    const auto [meta, stream, pubsub, key] = names_of(channel, queued_text(q.key_at, q.key_size));
    char flag_text[4];
    char proposed_text[12];
    char history_size_text[24];
    char history_ttl_text[24];
    char ttl_ms_text[24];
    char window_text[24];
    const bool keyed = q.key_size != 0;
    const std::string_view argv[] = {
        pubsub,
        queued_text(q.payload_at, q.payload_size),
        decimal(flag_text, q.flags),
        decimal(proposed_text, proposed),
        decimal(history_size_text, q.messages_kept),
        decimal(history_ttl_text, q.history_ttl_s),
        meta_ttl_text_,
        decimal(ttl_ms_text, std::uint64_t{q.ttl_s} * 1000),
        decimal(window_text, q.idempotency_window_s)};
    std::string_view args[13] = {keyed ? "3" : "2", meta, stream};
    std::size_t n = 3;
    if (keyed) args[n++] = key;
    for (const std::string_view a : argv) args[n++] = a;
    engine_.run_script(std::string(meta), publish_script_, std::span<const std::string_view>(args, n),
                       [this, from = q.from, name = std::string(channel)](redis_result r) {
        const redisReply* a = r.reply.get();
        const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_ARRAY && a->elements == 3 &&
                        a->element[0]->type == REDIS_REPLY_INTEGER && a->element[1]->type == REDIS_REPLY_INTEGER &&
                        a->element[2]->type == REDIS_REPLY_INTEGER;
        if (!ok) {
            // Sent, and the answer lost: Redis may have run the script.
            const errc code = r.status == redis_status::lost || r.status == redis_status::timed_out
                                  ? errc::cluster_outcome_unknown
                                  : errc::cluster_unavailable;
            publish_failures_.fetch_add(1, std::memory_order_relaxed);
            HS_LOG_THROTTLED(failed_log_, warn, "cluster.publish_failed").kv("channel", name).kv("code", errc_name(static_cast<std::uint16_t>(code)))
                .kv("why", redis_failure(r));
            enter_call([this, from, code, why = redis_failure(r)] { sink_->append_failed(from, code, why); });
            return;
        }
        if (a->element[2]->integer == 2) {
            enter_call([this, from] {
                sink_->append_failed(from, errc::key_reused,
                                     "the idempotency key was used for another payload on this channel");
            });
            return;
        }
        if (std::string why = why_unreplicated(r, options_); !why.empty()) {
            unreplicated_.fetch_add(1, std::memory_order_relaxed);
            HS_LOG_THROTTLED(unreplicated_log_, warn, "cluster.publish_unreplicated").kv("channel", name).kv("replicas", r.replicas);
            enter_call([this, from, why = std::move(why)] {
                sink_->append_failed(from, errc::cluster_outcome_unknown, why);
            });
            return;
        }
        // A repeat (1) is only placed: the first publication was delivered.
        if (!from.wants_ack) return;
        answer placed;
        placed.what = answer::kind::placed;
        placed.from = from;
        placed.at = position{static_cast<std::uint32_t>(a->element[0]->integer),
                             static_cast<std::uint64_t>(a->element[1]->integer)};
        enter(std::move(placed));
    }, wait_for(channel));
}

void redis_log::publish_batch(std::span<const std::size_t> members) {
    std::uint32_t proposed = 0;
    while (proposed == 0) proposed = static_cast<std::uint32_t>(rng_());
    const queued_publish& head = flushing_[members.front()];
    const std::string channel(queued_text(head.channel_at, head.channel_size));
    const key_names names = names_of(channel, {});
    // Numbers and key names first, into one buffer that then stays put,
    // then the views of it: no reallocation moves what a view points at.
    batch_text_.clear();
    std::vector<std::pair<std::size_t, std::size_t>>& at = batch_spans_;
    at.clear();
    const auto write = [&](auto value) {
        char buf[24];
        const std::string_view text = decimal(buf, value);
        at.emplace_back(batch_text_.size(), text.size());
        batch_text_ += text;
    };
    write(proposed);
    write(head.messages_kept);
    write(head.history_ttl_s);
    write(head.idempotency_window_s);
    write(members.size());
    std::size_t keys = 0;
    for (const std::size_t i : members) {
        const queued_publish& q = flushing_[i];
        write(q.flags);
        write(std::uint64_t{q.ttl_s} * 1000);
        write(q.key_size == 0 ? std::size_t{0} : 3 + keys);
        if (q.key_size != 0) ++keys;
    }
    write(2 + keys);
    const std::size_t keys_at = at.size();
    for (const std::size_t i : members) {
        const queued_publish& q = flushing_[i];
        if (q.key_size == 0) continue;
        const std::size_t from = batch_text_.size();
        batch_text_ += options_.prefix;
        batch_text_ += ":{";
        batch_text_ += channel;
        batch_text_ += "}:i:";
        batch_text_ += queued_text(q.key_at, q.key_size);
        at.emplace_back(from, batch_text_.size() - from);
    }
    const std::string_view text(batch_text_);
    const auto view = [&](std::size_t n) { return text.substr(at[n].first, at[n].second); };
    batch_args_.clear();
    batch_args_.push_back(view(keys_at - 1));  // numkeys
    batch_args_.push_back(names.meta);
    batch_args_.push_back(names.stream);
    for (std::size_t k = keys_at; k < at.size(); ++k) batch_args_.push_back(view(k));
    batch_args_.push_back(names.pubsub);
    batch_args_.push_back(view(0));
    batch_args_.push_back(view(1));
    batch_args_.push_back(view(2));
    batch_args_.push_back(meta_ttl_text_);
    batch_args_.push_back(view(3));
    batch_args_.push_back(view(4));
    std::vector<publisher> from;
    from.reserve(members.size());
    for (std::size_t m = 0; m < members.size(); ++m) {
        const queued_publish& q = flushing_[members[m]];
        batch_args_.push_back(view(5 + 3 * m));
        batch_args_.push_back(view(6 + 3 * m));
        batch_args_.push_back(view(7 + 3 * m));
        batch_args_.push_back(queued_text(q.payload_at, q.payload_size));
        from.push_back(q.from);
    }
    engine_.run_script(std::string(names.meta), publish_batch_script_, batch_args_,
                       [this, from = std::move(from), channel](redis_result r) { batch_answered(channel, from, r); },
                       wait_for(channel));
}

void redis_log::batch_answered(const std::string& channel, const std::vector<publisher>& from,
                               const redis_result& r) {
    constexpr std::size_t record = 13;     // outcome u8, epoch u32, seq u64
    constexpr std::size_t all_placed = 12;  // epoch u32, first seq u64: every publication took a seq
    const redisReply* a = r.reply.get();
    const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_STRING &&
                    (static_cast<std::size_t>(a->len) == record * from.size() ||
                     (from.size() > 1 && static_cast<std::size_t>(a->len) == all_placed));
    if (!ok) {
        // Sent, and the answer lost: Redis may have run the script.
        const errc code = r.status == redis_status::lost || r.status == redis_status::timed_out
                              ? errc::cluster_outcome_unknown
                              : errc::cluster_unavailable;
        publish_failures_.fetch_add(from.size(), std::memory_order_relaxed);
        HS_LOG_THROTTLED(failed_log_, warn, "cluster.publish_failed").kv("channel", channel)
            .kv("code", errc_name(static_cast<std::uint16_t>(code)))
            .kv("publications", static_cast<std::uint64_t>(from.size())).kv("why", redis_failure(r));
        enter_call([this, from, code, why = redis_failure(r)] {
            for (const publisher& p : from) sink_->append_failed(p, code, why);
        });
        return;
    }
    const std::string why = why_unreplicated(r, options_);
    if (!why.empty()) {
        HS_LOG_THROTTLED(unreplicated_log_, warn, "cluster.publish_unreplicated").kv("channel", channel).kv("replicas", r.replicas)
            .kv("publications", static_cast<std::uint64_t>(from.size()));
    }
    const auto place = [this, &why](const publisher& p, position at) {
        if (!why.empty()) {
            unreplicated_.fetch_add(1, std::memory_order_relaxed);
            enter_call([this, p, why] { sink_->append_failed(p, errc::cluster_outcome_unknown, why); });
            return;
        }
        if (!p.wants_ack) return;
        answer placed;
        placed.what = answer::kind::placed;
        placed.from = p;
        placed.at = at;
        enter(std::move(placed));
    };
    if (static_cast<std::size_t>(a->len) == all_placed) {
        const position first{static_cast<std::uint32_t>(load_le(a->str, 4)), load_le(a->str + 4, 8)};
        for (std::size_t i = 0; i < from.size(); ++i) place(from[i], position{first.epoch, first.seq + i});
        return;
    }
    for (std::size_t i = 0; i < from.size(); ++i) {
        const char* at = a->str + record * i;
        const auto outcome = static_cast<unsigned char>(at[0]);
        if (outcome == 2) {
            enter_call([this, p = from[i]] {
                sink_->append_failed(p, errc::key_reused,
                                     "the idempotency key was used for another payload on this channel");
            });
            continue;
        }
        // A repeat (1) is only placed: the first publication was delivered.
        place(from[i], position{static_cast<std::uint32_t>(load_le(at + 1, 4)), load_le(at + 5, 8)});
    }
}

void redis_log::on_message(std::string_view channel, std::string_view payload) {
    const std::string_view prefix_end = ":p:";
    const bool ours = channel.size() > options_.prefix.size() + prefix_end.size() &&
                      channel.substr(0, options_.prefix.size()) == options_.prefix &&
                      channel.substr(options_.prefix.size(), prefix_end.size()) == prefix_end;
    const std::string_view name = ours ? channel.substr(options_.prefix.size() + prefix_end.size()) : std::string_view();
    if (ours && is_publication_batch(payload)) {
        on_batch(name, payload);
        return;
    }
    // A publication's flags byte never has 0x80: a presence event.
    const bool presence_event = !payload.empty() && (static_cast<unsigned char>(payload[0]) & 0x80) != 0;
    if (ours && presence_event && presence_events_) {
        if (!is_valid_channel(name)) return;
        enter_call([this, name = std::string(name), event = std::string(payload)] { presence_events_(name, event); });
        return;
    }
    if (!ours || payload.size() < header_bytes) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", channel).kv("bytes", payload.size());
        return;
    }
    if (!is_valid_channel(name)) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", channel);
        return;
    }
    answer a;
    a.what = answer::kind::deliver;
    a.p.flags = static_cast<std::uint8_t>(static_cast<unsigned char>(payload[0]) & frame_flags::json);
    a.p.epoch = static_cast<std::uint32_t>(load_le(payload.data() + 1, 4));
    a.p.seq = load_le(payload.data() + 5, 8);
    // The script never gives either (its epochs are drawn non-zero, its
    // seqs start at 1), and a client takes (0, 0) for "no position": not a
    // publication's, as read_publication_batch refuses it in a batch.
    if (a.p.epoch == 0 || a.p.seq == 0) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_message").kv("channel", channel).kv("why", "position zero");
        return;
    }
    a.name_at = bytes_.size();
    a.name_size = name.size();
    bytes_ += name;
    a.payload_at = bytes_.size();
    a.payload_size = payload.size() - header_bytes;
    bytes_ += payload.substr(header_bytes);
    enter(std::move(a));
}

// Checked whole before any of it enters: a batch is delivered entire or
// not at all. Its publications then wait with the read's other answers
// and enter the core with them, in seq order, under one hold of its lock.
void redis_log::on_batch(std::string_view name, std::string_view message) {
    publication_batch batch;
    if (!is_valid_channel(name) || read_publication_batch(message, batch)) {
        HS_LOG_THROTTLED(bad_log_, warn, "cluster.bad_batch").kv("channel", name).kv("bytes", message.size());
        return;
    }
    answer a;
    a.what = answer::kind::deliver_batch;
    a.p.epoch = batch.epoch;
    a.p.seq = batch.first_seq;
    a.count = batch.count;
    a.name_at = bytes_.size();
    a.name_size = name.size();
    bytes_ += name;
    a.payload_at = bytes_.size();
    a.payload_size = batch.entries.size();
    bytes_ += batch.entries;
    enter(std::move(a));
}

// Under the core's lock: the entries on_batch checked, but the first `seen`,
// which a second matching Redis subscription delivered already.
void redis_log::deliver_batch(const answer& a, std::string_view bytes, std::uint32_t seen) {
    const std::string_view name(bytes.data() + a.name_at, a.name_size);
    std::string_view entries(bytes.data() + a.payload_at, a.payload_size);
    publication p;
    p.epoch = a.p.epoch;
    for (std::uint32_t i = 0; i < a.count; ++i) {
        const batched_publication e = take_batch_entry(entries);
        if (i < seen) continue;
        p.flags = static_cast<std::uint8_t>(e.flags & frame_flags::json);
        p.seq = a.p.seq + i;
        p.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(e.payload.data()), e.payload.size());
        (void)sink_->deliver(name, p, false);
    }
}

void redis_log::deliver_answer(const answer& a, std::string_view bytes, bool fill) {
    const std::string_view name(bytes.data() + a.name_at, a.name_size);
    if (fill) {
        if (auto f = filling_.empty() ? filling_.end() : filling_.find(name); f != filling_.end()) {
            fill_state& state = f->second;
            held_answer h{a, std::string(bytes.substr(a.name_at, a.name_size + a.payload_size))};
            h.a.name_at = 0;
            h.a.payload_at = a.name_size;
            state.held_bytes += h.bytes.size();
            state.held.push_back(std::move(h));
            // Past this much waiting, the read (made again while Redis is
            // not there, up to max_fill_time) is given up: what waits goes
            // now, and the clients see the gap.
            if (state.held_bytes > max_fill_held_bytes)
                finish_fill(state.id, std::string(name), 0, {}, "too much waiting behind the read");
            return;
        }
    }
    // One lookup of the channel's last position, for the hole and for what
    // was delivered already (a second matching Redis subscription).
    const auto known = known_.find(name);
    if (fill && known != known_.end() && known->second.epoch == a.p.epoch && a.p.seq > known->second.seq + 1) {
        start_fill(name, known->second);
        deliver_answer(a, bytes, true);  // held
        return;
    }
    const bool batch = a.what == answer::kind::deliver_batch;
    const std::uint32_t seen = advance(known, name, position{a.p.epoch, a.p.seq}, batch ? a.count : 1);
    if (batch) {
        deliver_batch(a, bytes, seen);
        return;
    }
    if (seen != 0) return;
    publication p = a.p;
    p.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(bytes.data()) + a.payload_at, a.payload_size);
    (void)sink_->deliver(name, p, false);
}

// ---------------------------------------------------------------- holes

void redis_log::start_fill(std::string_view channel, position from) {
    fill_state& f = filling_[std::string(channel)];
    f.id = ++fill_ids_;
    f.from = from;
    f.started = std::chrono::steady_clock::now();
    HS_LOG(debug, "cluster.hole").kv("channel", channel).kv("after_seq", from.seq);
    // Posted: the read is the engine's, and this runs under the core's lock.
    engine_.after_reads([this, id = f.id, name = std::string(channel), from] { fill_read(id, name, from); });
}

// Engine's thread.
void redis_log::fill_read(std::uint64_t id, std::string channel, position from) {
    const std::string meta = meta_key(channel);
    const std::string stream = stream_key(channel);
    char epoch_text[12];
    char seq_text[24];
    const std::string_view args[] = {"2", meta, stream, decimal(epoch_text, from.epoch), decimal(seq_text, from.seq),
                                     "1"};
    engine_.run_script(meta, read_script_, args, [this, id, name = std::move(channel)](redis_result r) {
        const redisReply* a = r.reply.get();
        const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_ARRAY && a->elements == 4 &&
                        a->element[0]->type == REDIS_REPLY_INTEGER && a->element[2]->type == REDIS_REPLY_ARRAY &&
                        a->element[3]->type == REDIS_REPLY_STRING;
        if (!ok) {
            // Redis not there for now (the node down, failing over, or not
            // yet known to have moved): read again. Anything else is final.
            const std::string_view error = r.status == redis_status::ok && a->type == REDIS_REPLY_ERROR
                                               ? std::string_view(a->str, a->len)
                                               : std::string_view();
            const bool for_now = (r.status != redis_status::ok && r.status != redis_status::stopped) ||
                                 error.starts_with("CLUSTERDOWN") || error.starts_with("LOADING") ||
                                 error.starts_with("MASTERDOWN");
            enter_call([this, id, name, for_now, why = redis_failure(r)] {
                if (for_now)
                    fill_failed(id, name, why);
                else
                    finish_fill(id, name, 0, {}, why);
            });
            return;
        }
        const auto epoch = static_cast<std::uint32_t>(a->element[0]->integer);
        std::vector<publication> entries =
            stream_entries(a->element[2], epoch, a->element[3], std::chrono::steady_clock::now());
        enter_call([this, id, name, epoch, entries = std::move(entries)]() mutable {
            finish_fill(id, name, epoch, std::move(entries), {});
        });
    });
}

void redis_log::fill_failed(std::uint64_t id, const std::string& channel, std::string why) {
    const auto f = filling_.find(channel);
    if (f == filling_.end() || f->second.id != id) return;  // given up already
    fill_state& state = f->second;
    const std::chrono::milliseconds pause(100 << std::min<std::uint32_t>(state.failed_reads, 3));
    if (std::chrono::steady_clock::now() + pause - state.started > max_fill_time) {
        finish_fill(id, channel, 0, {}, why);
        return;
    }
    ++state.failed_reads;
    HS_LOG(warn, "cluster.hole_read_failed").kv("channel", channel).kv("after_seq", state.from.seq)
        .kv("retry_in_ms", static_cast<std::uint64_t>(pause.count())).kv("why", why);
    engine_.after(pause, [this, id, channel, from = state.from] { fill_read(id, channel, from); });
}

void redis_log::finish_fill(std::uint64_t id, const std::string& channel, std::uint32_t epoch,
                            std::vector<publication> entries, std::string_view why) {
    const auto f = filling_.find(channel);
    if (f == filling_.end() || f->second.id != id) return;  // given up already
    fill_state state = std::move(f->second);
    filling_.erase(f);
    // What the hole lacked: after the last delivered, before what waited.
    const std::uint64_t until =
        state.held.empty() ? std::numeric_limits<std::uint64_t>::max() : state.held.front().a.p.seq;
    std::uint64_t found = 0;
    if (epoch == state.from.epoch) {
        for (const publication& p : entries) {
            if (p.seq <= state.from.seq || p.seq >= until) continue;
            if (advance(channel, position{p.epoch, p.seq}, 1) != 0) continue;
            (void)sink_->deliver(channel, p, false);
            ++found;
        }
    }
    recovered_.fetch_add(found, std::memory_order_relaxed);
    if (!why.empty()) {
        HS_LOG(warn, "cluster.hole_unfilled").kv("channel", channel).kv("after_seq", state.from.seq).kv("why", why);
    } else if (found != 0) {
        HS_LOG(info, "cluster.hole_filled").kv("channel", channel).kv("after_seq", state.from.seq)
            .kv("publications", found);
    }
    for (const held_answer& h : state.held) deliver_answer(h.a, h.bytes, false);
    pump_catch_up();
}

void redis_log::pump_catch_up() {
    while (!catch_up_.empty() && filling_.size() < max_fills_in_flight) {
        const std::string name = std::move(catch_up_.back());
        catch_up_.pop_back();
        const auto known = known_.find(name);
        if (known != known_.end() && !filling_.contains(name)) start_fill(name, known->second);
    }
}

void redis_log::enter(answer a) {
    const bool first = waiting_.empty();
    waiting_.push_back(std::move(a));
    if (first) engine_.after_reads([this] { enter_([this] { run_waiting(); }); });
}

void redis_log::enter_call(std::function<void()> call) {
    answer a;
    a.call = std::move(call);
    enter(std::move(a));
}

void redis_log::run_waiting() {
    std::swap(waiting_, running_);
    std::swap(bytes_, running_bytes_);
    for (answer& a : running_) {
        switch (a.what) {
            case answer::kind::deliver:
            case answer::kind::deliver_batch: deliver_answer(a, running_bytes_, true); break;
            case answer::kind::placed: sink_->placed(a.from, a.at); break;
            case answer::kind::call: a.call(); break;
        }
    }
    running_.clear();
    running_bytes_.clear();
}

// ---------------------------------------------------------------- resume

void redis_log::read_since(std::uint64_t ticket, std::string_view channel, position since, read_kind kind,
                           time_point now) {
    // A plain subscribe needs no Redis to begin: without it, the ack says
    // what this router knows, and the live messages come once Redis is back
    // (a gap or a new epoch tells the client what it missed).
    if (kind == read_kind::position_only && !up()) {
        history h;
        h.now = last_position(channel);
        sink_->history_read(ticket, channel, std::move(h));
        return;
    }
    if (!up()) {
        sink_->history_failed(ticket, channel, errc::cluster_unavailable, "Redis is unreachable: " + down_reason());
        return;
    }
    // Read once the channel's subscription (made by the subscribe being
    // answered, or by an earlier one) is in force: what is published after
    // the read then comes live, and pub/sub merges the two by seq.
    engine_.after_subscribed([this, ticket, since, kind, now, name = std::string(channel)] {
        read_since_subscribed(ticket, name, since, kind, now);
    });
}

// Engine's thread.
void redis_log::read_since_subscribed(std::uint64_t ticket, const std::string& channel, position since,
                                      read_kind kind, time_point now) {
    const std::string meta = meta_key(channel);
    const std::string stream = stream_key(channel);
    char epoch_text[12];
    char seq_text[24];
    const std::string_view args[] = {
        "2",
        meta,
        stream,
        decimal(epoch_text, since.epoch),
        decimal(seq_text, since.seq),
        kind == read_kind::history ? "1" : "0"};
    engine_.run_script(meta, read_script_, args, [this, ticket, since, kind, now, name = channel](redis_result r) {
        const redisReply* a = r.reply.get();
        const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_ARRAY && a->elements == 4 &&
                        a->element[0]->type == REDIS_REPLY_INTEGER && a->element[1]->type == REDIS_REPLY_INTEGER &&
                        a->element[2]->type == REDIS_REPLY_ARRAY && a->element[3]->type == REDIS_REPLY_STRING;
        if (!ok) {
            enter_call([this, ticket, kind, name, why = redis_failure(r)] {
                if (kind == read_kind::history) {
                    sink_->history_failed(ticket, name, errc::cluster_unavailable, why);
                    return;
                }
                history h;
                h.now = last_position(name);
                sink_->history_read(ticket, name, std::move(h));
            });
            return;
        }
        const position at{static_cast<std::uint32_t>(a->element[0]->integer),
                          static_cast<std::uint64_t>(a->element[1]->integer)};
        const std::vector<publication> kept = stream_entries(a->element[2], at.epoch, a->element[3], now);
        history h;
        if (kind == read_kind::history) {
            h = resume_from(since, at, kept);
        } else {
            h.now = at;
        }
        enter_call([this, ticket, name, h = std::move(h)]() mutable {
            sink_->history_read(ticket, name, std::move(h));
        });
    });
}

// ---------------------------------------------------------------- latest value

// Written before the publish's script, on a single server on the same
// connection: a reader that finds no channel in the index finds no
// publication of it either (which then comes live).
void redis_log::index_latest(std::string_view channel) {
    const std::uint64_t generation = index_generation_.load(std::memory_order_acquire);
    if (generation != indexed_generation_ || indexed_.size() >= options_.max_known_channels) {
        indexed_.clear();
        indexed_generation_ = generation;
    }
    if (!indexed_.emplace(channel).second) return;
    const std::string key = latest_index_key();
    engine_.command(key, {"HSET", key, std::string(channel), ""},
                    [this, name = std::string(channel)](redis_result r) {
        if (r.status == redis_status::ok && r.reply->type == REDIS_REPLY_INTEGER) return;
        HS_LOG(warn, "cluster.latest_index_failed").kv("channel", name).kv("why", redis_failure(r));
        enter_call([this, name] { indexed_.erase(name); });  // the next publish tries again
    });
}

// One read in progress: the names the index lists, then the last entry of
// each. Engine's thread only.
struct redis_log::latest_job {
    std::uint64_t ticket = 0;
    std::string pattern;
    std::string cursor = "0";
    std::vector<std::string> names;
    std::vector<std::pair<std::string, publication>> found;
    position now;  // the channel's, when the pattern is one
    time_point read_at;  // the router's time when the read began: what expires is judged at it
    std::size_t waiting = 0;
    std::string failed;  // why, once a command failed
};

void redis_log::read_latest(std::uint64_t ticket, std::string_view pattern, time_point now) {
    if (!up()) {
        sink_->history_failed(ticket, pattern, errc::cluster_unavailable, "Redis is unreachable: " + down_reason());
        return;
    }
    auto job = std::make_shared<latest_job>();
    job->ticket = ticket;
    job->pattern.assign(pattern);
    job->read_at = now;
    // As a resume does (read_since): once the pattern's subscription is in
    // force, so that what is published after the read comes live.
    engine_.after_subscribed([this, job = std::move(job)]() mutable {
        if (is_valid_channel(job->pattern)) {
            job->names.push_back(job->pattern);
            read_last_entries(std::move(job));
        } else {
            scan_latest_index(std::move(job));
        }
    });
}

// HSCAN of the index, filtered by Redis on the pattern's literal start and
// here by the pattern, until the cursor comes back to 0.
void redis_log::scan_latest_index(std::shared_ptr<latest_job> job) {
    const std::string key = latest_index_key();
    engine_.command(key, {"HSCAN", key, job->cursor, "MATCH", prefix_glob(literal_prefix(job->pattern)), "COUNT", "1000"},
                    [this, job](redis_result r) mutable {
        const redisReply* a = r.reply.get();
        const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_ARRAY && a->elements == 2 &&
                        a->element[1]->type == REDIS_REPLY_ARRAY;
        if (!ok) {
            finish_latest(job, redis_failure(r));
            return;
        }
        job->cursor.assign(text_of(a->element[0]));
        const redisReply* fields = a->element[1];
        for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
            const std::string_view name = text_of(fields->element[i]);
            if (is_valid_channel(name) && pattern_matches(job->pattern, name)) job->names.emplace_back(name);
        }
        if (job->cursor != "0") {
            scan_latest_index(std::move(job));
            return;
        }
        // HSCAN may give a name twice.
        std::sort(job->names.begin(), job->names.end());
        job->names.erase(std::unique(job->names.begin(), job->names.end()), job->names.end());
        read_last_entries(std::move(job));
    });
}

// The last entry of each named channel's stream, pipelined, each on its
// channel's node.
void redis_log::read_last_entries(std::shared_ptr<latest_job> job) {
    job->waiting = job->names.size();
    if (job->waiting == 0) {
        finish_latest(job, {});
        return;
    }
    for (std::size_t i = 0; i < job->names.size(); ++i) {
        const std::string meta = meta_key(job->names[i]);
        const std::string stream = stream_key(job->names[i]);
        const std::string_view args[] = {"2", meta, stream, "0", "0", "2"};
        engine_.run_script(meta, read_script_, args, [this, job, i](redis_result r) {
            const redisReply* a = r.reply.get();
            const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_ARRAY && a->elements == 4 &&
                            a->element[0]->type == REDIS_REPLY_INTEGER && a->element[1]->type == REDIS_REPLY_INTEGER &&
                            a->element[2]->type == REDIS_REPLY_ARRAY && a->element[3]->type == REDIS_REPLY_STRING;
            if (!ok) {
                if (job->failed.empty()) job->failed = redis_failure(r);
            } else {
                const position at{static_cast<std::uint32_t>(a->element[0]->integer),
                                  static_cast<std::uint64_t>(a->element[1]->integer)};
                std::vector<publication> last = stream_entries(a->element[2], at.epoch, a->element[3], job->read_at);
                // Only the channel's last publication is its latest value.
                if (!last.empty() && last.front().seq == at.seq)
                    job->found.emplace_back(job->names[i], std::move(last.front()));
                if (job->names.size() == 1 && job->names[i] == job->pattern) job->now = at;
            }
            if (--job->waiting == 0) finish_latest(job, job->failed);
        });
    }
}

void redis_log::finish_latest(const std::shared_ptr<latest_job>& job, std::string why) {
    if (!why.empty()) {
        enter_call([this, job, why = std::move(why)] {
            sink_->history_failed(job->ticket, job->pattern, errc::cluster_unavailable, why);
        });
        return;
    }
    std::sort(job->found.begin(), job->found.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    enter_call([this, job] {
        std::vector<latest_value> values;
        values.reserve(job->found.size());
        for (const auto& [name, last] : job->found) values.push_back(latest_value{name, last});
        sink_->latest_read(job->ticket, job->pattern, job->now, values);
    });
}

std::string redis_log::latest_index_key() const { return options_.prefix + ":latest"; }

position redis_log::last_position(std::string_view channel) const {
    auto it = known_.find(channel);
    return it == known_.end() ? position{} : it->second;
}

void redis_log::interest(std::string_view pattern, interest_change change) {
    auto [name, wildcard] = redis_interest(pattern);
    HS_LOG(debug, "cluster.interest").kv("pattern", pattern).kv("redis", name)
        .kv("change", change == interest_change::first_subscriber ? "subscribe" : "unsubscribe");
    if (change == interest_change::first_subscriber) {
        if (wildcard)
            wildcard_interest_.emplace_back(pattern);
        else
            exact_interest_.emplace(pattern);
    } else {
        if (wildcard) {
            if (const auto it = std::find(wildcard_interest_.begin(), wildcard_interest_.end(), pattern);
                it != wildcard_interest_.end())
                wildcard_interest_.erase(it);
        } else if (const auto it = exact_interest_.find(pattern); it != exact_interest_.end()) {
            exact_interest_.erase(it);
        }
        // No longer delivered: no position to fill holes from, or to read
        // after Redis comes back. A channel another local subscription
        // still matches keeps its position: Redis sends a message once per
        // matching subscription of this router, and the position drops
        // the second copy.
        if (!wildcard) {
            if (const auto it = known_.find(pattern); it != known_.end() && !still_wanted(it->first)) known_.erase(it);
        } else {
            std::erase_if(known_,
                          [&](const auto& k) { return pattern_matches(pattern, k.first) && !still_wanted(k.first); });
        }
    }
    if (change == interest_change::first_subscriber) {
        if (wildcard)
            engine_.psubscribe(std::move(name));
        else
            engine_.subscribe(std::move(name));
    } else {
        if (wildcard)
            engine_.punsubscribe(std::move(name));
        else
            engine_.unsubscribe(std::move(name));
    }
}

bool redis_log::still_wanted(std::string_view channel) const {
    return exact_interest_.contains(channel) ||
           std::any_of(wildcard_interest_.begin(), wildcard_interest_.end(),
                       [&](const std::string& p) { return pattern_matches(p, channel); });
}

void redis_log::describe(std::vector<channel_view>& out) const {
    for (const auto& [name, at] : known_) out.push_back(channel_view{name, at.epoch, at.seq, 0, 0, 0});
}

}  // namespace hyperstreams::router
