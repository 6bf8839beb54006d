#include "redis_log.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "hyperstreams/names.hpp"
#include "log.hpp"

namespace hyperstreams::router {
namespace {

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
constexpr const char* publish_script = R"lua(
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
local e = redis.call('hget', KEYS[1], 'e')
if not e then
  e = ARGV[4]
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[1], 'e', e)
end
local s = redis.call('hincrby', KEYS[1], 's', 1)
if ARGV[5] ~= '0' then
  if ARGV[8] == '0' then
    redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[5], s .. '-0', 'f', ARGV[3], 'd', ARGV[2])
  else
    local t = redis.call('time')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[5], s .. '-0', 'f', ARGV[3], 'd', ARGV[2], 'x',
               string.format('%.0f', now + tonumber(ARGV[8])))
    for _, entry in ipairs(redis.call('xrange', KEYS[2], '-', '+', 'COUNT', 16)) do
      local x
      for i = 1, #entry[2], 2 do if entry[2][i] == 'x' then x = tonumber(entry[2][i + 1]) end end
      if not x or x > now then break end
      redis.call('xdel', KEYS[2], entry[1])
    end
  end
  redis.call('expire', KEYS[2], ARGV[6])
end
redis.call('expire', KEYS[1], ARGV[7])
redis.call('publish', ARGV[1], struct.pack('<BI4I8', tonumber(ARGV[3]), tonumber(e), s) .. ARGV[2])
if KEYS[3] then redis.call('set', KEYS[3], e .. ':' .. s .. ':' .. d, 'EX', ARGV[9]) end
return {tonumber(e), s, 0}
)lua";

// KEYS: meta, stream. ARGV: the epoch and seq resumed from, and 1 for the
// history, 0 for the position only or 2 for the last publication. Answers
// the channel's epoch and last seq (0, 0: Redis has no such channel), the
// history after seq (all of it when the epoch is another) or the stream's
// last entry, without the entries expired, and Redis's clock (ms) that
// decided it.
constexpr const char* read_script = R"lua(
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local clock = string.format('%.0f', now)
local e = redis.call('hget', KEYS[1], 'e')
if not e then return {0, 0, {}, clock} end
local s = tonumber(redis.call('hget', KEYS[1], 's'))
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

// Why a command did not give a usable answer, for the publisher's error.
std::string failure(const redis_result& r) {
    if (r.status != redis_status::ok) return "Redis: " + std::string(redis_status_name(r.status)) + ": " + r.detail;
    if (r.reply && r.reply->type == REDIS_REPLY_ERROR) return "Redis: " + std::string(text_of(r.reply.get()));
    return "Redis: an answer of an unexpected shape";
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
      read_script_(engine_.load_script(read_script)),
      meta_ttl_text_(std::to_string(options_.meta_ttl_s)),
      rng_(std::random_device{}()) {}

redis_log::~redis_log() = default;

std::string redis_log::meta_key(std::string_view channel) const {
    return options_.prefix + ":{" + std::string(channel) + "}:m";
}

std::string redis_log::stream_key(std::string_view channel) const {
    return options_.prefix + ":{" + std::string(channel) + "}:s";
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

bool redis_log::advance(std::string_view channel, position at) {
    auto it = known_.find(channel);
    if (it == known_.end()) {
        if (known_.size() >= options_.max_known_channels) known_.clear();  // duplicates are then caught by the clients
        known_.emplace(std::string(channel), at);
        return true;
    }
    position& last = it->second;
    if (last.epoch == at.epoch && at.seq <= last.seq) return false;
    last = at;
    return true;
}

// ---------------------------------------------------------------- publish

void redis_log::append(std::string_view channel, std::uint8_t flags, bytes_view payload, const publisher& from,
                       const channel_options& options, const publish_extras& extras) {
    if (!up()) {
        sink_->append_failed(from, errc::cluster_unavailable, "Redis is unreachable: " + down_reason());
        return;
    }
    if (options.latest) index_latest(channel);
    std::uint32_t proposed = 0;
    while (proposed == 0) proposed = static_cast<std::uint32_t>(rng_());
    // The arguments as views of one reused buffer and of numbers written in
    // place: a publish allocates no string before the command's own bytes.
    const auto [meta, stream, pubsub, key] = names_of(channel, extras.key);
    char flag_text[4];
    char proposed_text[12];
    char history_size_text[24];
    char history_ttl_text[24];
    char ttl_ms_text[24];
    char window_text[24];
    const bool keyed = !extras.key.empty();
    const std::string_view message(reinterpret_cast<const char*>(payload.data()), payload.size());
    const std::string_view argv[] = {
        pubsub,
        message,
        decimal(flag_text, flags),
        decimal(proposed_text, proposed),
        decimal(history_size_text, options.messages_kept()),
        decimal(history_ttl_text, options.history_ttl_s),
        meta_ttl_text_,
        decimal(ttl_ms_text, std::uint64_t{extras.ttl_s} * 1000),
        decimal(window_text, options.idempotency_window_s)};
    std::string_view args[13] = {keyed ? "3" : "2", meta, stream};
    std::size_t n = 3;
    if (keyed) args[n++] = key;
    for (const std::string_view a : argv) args[n++] = a;
    engine_.run_script(std::string(meta), publish_script_, std::span<const std::string_view>(args, n),
                       [this, from, name = std::string(channel)](redis_result r) {
        const redisReply* a = r.reply.get();
        const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_ARRAY && a->elements == 3 &&
                        a->element[0]->type == REDIS_REPLY_INTEGER && a->element[1]->type == REDIS_REPLY_INTEGER &&
                        a->element[2]->type == REDIS_REPLY_INTEGER;
        if (!ok) {
            // Sent, and the answer lost: Redis may have run the script.
            const errc code = r.status == redis_status::lost || r.status == redis_status::timed_out
                                  ? errc::cluster_outcome_unknown
                                  : errc::cluster_unavailable;
            HS_LOG(warn, "cluster.publish_failed").kv("channel", name).kv("code", errc_name(static_cast<std::uint16_t>(code)))
                .kv("why", failure(r));
            enter_call([this, from, code, why = failure(r)] { sink_->append_failed(from, code, why); });
            return;
        }
        if (a->element[2]->integer == 2) {
            enter_call([this, from] {
                sink_->append_failed(from, errc::key_reused,
                                     "the idempotency key was used for another payload on this channel");
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
    });
}

void redis_log::on_message(std::string_view channel, std::string_view payload) {
    const std::string_view prefix_end = ":p:";
    const bool ours = channel.size() > options_.prefix.size() + prefix_end.size() &&
                      channel.substr(0, options_.prefix.size()) == options_.prefix &&
                      channel.substr(options_.prefix.size(), prefix_end.size()) == prefix_end;
    // A publication's flags byte never has 0x80: a presence event.
    const bool presence_event = !payload.empty() && (static_cast<unsigned char>(payload[0]) & 0x80) != 0;
    if (ours && presence_event && presence_events_) {
        const std::string_view name = channel.substr(options_.prefix.size() + prefix_end.size());
        if (!is_valid_channel(name)) return;
        enter_call([this, name = std::string(name), event = std::string(payload)] { presence_events_(name, event); });
        return;
    }
    if (!ours || payload.size() < header_bytes) {
        HS_LOG(warn, "cluster.bad_message").kv("channel", channel).kv("bytes", payload.size());
        return;
    }
    const std::string_view name = channel.substr(options_.prefix.size() + prefix_end.size());
    if (!is_valid_channel(name)) {
        HS_LOG(warn, "cluster.bad_message").kv("channel", channel);
        return;
    }
    answer a;
    a.what = answer::kind::deliver;
    a.p.flags = static_cast<std::uint8_t>(static_cast<unsigned char>(payload[0]) & frame_flags::json);
    a.p.epoch = static_cast<std::uint32_t>(load_le(payload.data() + 1, 4));
    a.p.seq = load_le(payload.data() + 5, 8);
    a.name_at = bytes_.size();
    a.name_size = name.size();
    a.payload_size = payload.size() - header_bytes;
    bytes_ += name;
    bytes_ += payload.substr(header_bytes);
    enter(std::move(a));
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
            case answer::kind::deliver: {
                const std::string_view name(running_bytes_.data() + a.name_at, a.name_size);
                if (!advance(name, position{a.p.epoch, a.p.seq})) break;  // a second matching Redis subscription
                a.p.payload = bytes_view(reinterpret_cast<const std::uint8_t*>(running_bytes_.data()) + a.name_at +
                                             a.name_size,
                                         a.payload_size);
                (void)sink_->deliver(name, a.p);
                break;
            }
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
            enter_call([this, ticket, kind, name, why = failure(r)] {
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
        HS_LOG(warn, "cluster.latest_index_failed").kv("channel", name).kv("why", failure(r));
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
            finish_latest(job, failure(r));
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
        // Not names_of(): this runs on the engine's thread, names_ is the core's.
        const std::string meta = meta_key(job->names[i]);
        const std::string stream = stream_key(job->names[i]);
        const std::string_view args[] = {"2", meta, stream, "0", "0", "2"};
        engine_.run_script(meta, read_script_, args, [this, job, i](redis_result r) {
            const redisReply* a = r.reply.get();
            const bool ok = r.status == redis_status::ok && a->type == REDIS_REPLY_ARRAY && a->elements == 4 &&
                            a->element[0]->type == REDIS_REPLY_INTEGER && a->element[1]->type == REDIS_REPLY_INTEGER &&
                            a->element[2]->type == REDIS_REPLY_ARRAY && a->element[3]->type == REDIS_REPLY_STRING;
            if (!ok) {
                if (job->failed.empty()) job->failed = failure(r);
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

void redis_log::describe(std::vector<channel_view>& out) const {
    for (const auto& [name, at] : known_) out.push_back(channel_view{name, at.epoch, at.seq, 0, 0, 0});
}

}  // namespace hyperstreams::router
