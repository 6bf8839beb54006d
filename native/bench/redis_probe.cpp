// The cluster scenario's view of its Redis: round trip and commands run.
#include <hiredis/hiredis.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>
#include <sstream>
#include <string_view>

#include "bench.hpp"

namespace hyperstreams::bench {
namespace {

struct reply_deleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

reply_ptr command(redisContext* c, const char* text) {
    if (c == nullptr) return nullptr;
    return reply_ptr(static_cast<redisReply*>(redisCommand(c, text)));
}

timeval timeval_of(std::chrono::milliseconds t) {
    return {static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>(t.count() % 1000 * 1000)};
}

struct context_deleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;

// A blocking connection, or null.
context_ptr open_context(unsigned short port, std::chrono::milliseconds timeout) {
    context_ptr c(redisConnectWithTimeout("127.0.0.1", port, timeval_of(timeout)));
    if (!c || c->err != 0 || redisSetTimeout(c.get(), timeval_of(timeout)) != REDIS_OK) return nullptr;
    return c;
}

// The next reply on `c`, or null (an error or the timeout).
reply_ptr next_reply(redisContext* c) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK) return nullptr;
    return reply_ptr(static_cast<redisReply*>(r));
}

}  // namespace

redis_probe::~redis_probe() {
    if (context_ != nullptr) redisFree(context_);
}

bool redis_probe::connect(unsigned short port, std::chrono::milliseconds timeout) {
    port_ = port;
    timeout_ = timeout;
    if (context_ != nullptr) redisFree(context_);
    context_ = redisConnectWithTimeout("127.0.0.1", port, timeval_of(timeout));
    if (context_ == nullptr || context_->err != 0 || redisSetTimeout(context_, timeval_of(timeout)) != REDIS_OK) {
        if (context_ != nullptr) redisFree(context_);
        context_ = nullptr;
        return false;
    }
    const reply_ptr pong = command(context_, "PING");
    return pong && pong->type == REDIS_REPLY_STATUS;
}

histogram redis_probe::ping(int count) {
    histogram h;
    for (int i = 0; i < count; ++i) {
        const auto start = clock_type::now();
        if (!command(context_, "PING")) break;
        h.add(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start).count());
    }
    return h;
}

histogram redis_probe::publish_to_subscribers(int subscribers, int count) {
    histogram h;
    if (context_ == nullptr) return h;
    const std::string channel = "bench:probe";
    std::vector<context_ptr> readers;
    for (int i = 0; i < subscribers; ++i) {
        context_ptr c = open_context(port_, timeout_);
        const reply_ptr ok = c ? reply_ptr(static_cast<redisReply*>(redisCommand(c.get(), "SUBSCRIBE %s", channel.c_str())))
                               : nullptr;
        if (!ok || ok->type != REDIS_REPLY_ARRAY) return h;
        readers.push_back(std::move(c));
    }
    const std::string payload(64, 'x');
    for (int i = 0; i < count; ++i) {
        const auto start = clock_type::now();
        if (redisAppendCommand(context_, "PUBLISH %s %b", channel.c_str(), payload.data(), payload.size()) != REDIS_OK)
            return {};
        for (int done = 0; done == 0;)
            if (redisBufferWrite(context_, &done) != REDIS_OK) return {};
        for (std::size_t k = 0; k < readers.size(); ++k) {
            if (!next_reply(readers[k].get())) return {};
            if (k == 0) h.add(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - start).count());
        }
        if (!next_reply(context_)) return {};
    }
    return h;
}

std::map<std::string, std::uint64_t> redis_probe::command_calls() {
    std::map<std::string, std::uint64_t> calls;
    const reply_ptr info = command(context_, "INFO commandstats");
    if (!info || info->type != REDIS_REPLY_STRING) return calls;
    // Lines "cmdstat_NAME:calls=N,usec=...", NAME with a '|' for subcommands.
    std::istringstream lines(std::string(info->str, info->len));
    std::string line;
    constexpr std::string_view prefix = "cmdstat_";
    while (std::getline(lines, line)) {
        const std::size_t colon = line.find(":calls=");
        if (line.rfind(prefix, 0) != 0 || colon == std::string::npos) continue;
        calls[line.substr(prefix.size(), colon - prefix.size())] = std::strtoull(line.c_str() + colon + 7, nullptr, 10);
    }
    return calls;
}

int redis_probe::replicas_online() {
    const reply_ptr info = command(context_, "INFO replication");
    if (!info || info->type != REDIS_REPLY_STRING) return -1;
    // Lines "slaveN:ip=...,port=...,state=online,offset=...".
    std::istringstream lines(std::string(info->str, info->len));
    int online = 0;
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("slave", 0) == 0 && line.find(":ip=") != std::string::npos &&
            line.find(",state=online,") != std::string::npos)
            ++online;
    return online;
}

}  // namespace hyperstreams::bench
