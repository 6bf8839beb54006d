#include "redis_bus.hpp"

#include <hiredis/hiredis.h>

#include "log.hpp"

namespace hyperstreams::router {
namespace {

void put_name(std::string& out, std::string_view name) {
    out.push_back(static_cast<char>(name.size()));
    out.append(name);
}

// Takes a [len u8][bytes] name off the front of `in`; false when it does not fit.
bool take_name(std::string_view& in, std::string_view& name) {
    if (in.empty()) return false;
    const std::size_t n = static_cast<unsigned char>(in[0]);
    if (in.size() < 1 + n) return false;
    name = in.substr(1, n);
    in.remove_prefix(1 + n);
    return true;
}

}  // namespace

redis_bus::redis_bus(redis_engine& engine, std::string prefix, std::string router_id)
    : engine_(engine),
      prefix_(std::move(prefix)),
      router_id_(std::move(router_id)),
      own_channel_(prefix_ + ":r:" + router_id_),
      broadcast_channel_(prefix_ + ":b") {}

void redis_bus::start(entry e) {
    enter_ = std::move(e);
    engine_.subscribe(own_channel_);
    engine_.subscribe(broadcast_channel_);
}

void redis_bus::direct(std::string_view router_id, std::string_view to, std::string_view from, std::uint8_t flags,
                       bytes_view payload, const publisher& ack) {
    std::string message;
    message.reserve(3 + to.size() + from.size() + payload.size());
    put_name(message, to);
    put_name(message, from);
    message.push_back(static_cast<char>(flags & frame_flags::json));
    message.append(reinterpret_cast<const char*>(payload.data()), payload.size());
    std::string channel = prefix_ + ":r:" + std::string(router_id);
    engine_.command({}, {"PUBLISH", channel, std::move(message)}, [this, ack, router = std::string(router_id)](redis_result r) {
        const redisReply* a = r.reply.get();
        if (r.status != redis_status::ok || a->type != REDIS_REPLY_INTEGER) {
            const std::string why = r.status != redis_status::ok
                                        ? "Redis: " + std::string(redis_status_name(r.status)) + ": " + r.detail
                                        : "Redis: " + std::string(a->str ? a->str : "an unexpected answer");
            enter_([this, ack, why] { sink_->direct_done(ack, errc::cluster_unavailable, why); });
            return;
        }
        const bool taken = a->integer > 0;
        enter_([this, ack, taken, router] {
            if (taken)
                sink_->direct_done(ack, errc{}, {});
            else
                sink_->direct_done(ack, errc::no_such_address, "no client has this address (router " + router +
                                                                   " is not in the cluster)");
        });
    });
}

void redis_bus::broadcast(std::string_view from, std::uint8_t flags, bytes_view payload) {
    std::string message;
    message.reserve(3 + router_id_.size() + from.size() + payload.size());
    put_name(message, router_id_);
    put_name(message, from);
    message.push_back(static_cast<char>(flags & frame_flags::json));
    message.append(reinterpret_cast<const char*>(payload.data()), payload.size());
    engine_.command({}, {"PUBLISH", broadcast_channel_, std::move(message)}, [](redis_result r) {
        if (r.status != redis_status::ok) {
            HS_LOG(warn, "cluster.broadcast_failed").kv("why", r.detail);
        }
    });
}

bool redis_bus::on_message(std::string_view channel, std::string_view payload) {
    const bool direct = channel == own_channel_;
    if (!direct && channel != broadcast_channel_) return false;
    std::string_view rest = payload;
    std::string_view first;
    std::string_view from;
    if (!take_name(rest, first) || !take_name(rest, from) || rest.empty()) {
        HS_LOG(warn, "cluster.bad_message").kv("channel", channel).kv("bytes", payload.size());
        return true;
    }
    if (!direct && first == router_id_) return true;  // this router's own broadcast: its clients have it
    const auto flags = static_cast<std::uint8_t>(static_cast<unsigned char>(rest[0]) & frame_flags::json);
    rest.remove_prefix(1);
    enter_([this, direct, first = std::string(first), from = std::string(from), flags, body = std::string(rest)] {
        const bytes_view bytes(reinterpret_cast<const std::uint8_t*>(body.data()), body.size());
        if (direct)
            sink_->direct_arrived(first, from, flags, bytes);
        else
            sink_->broadcast_arrived(from, flags, bytes);
    });
    return true;
}

}  // namespace hyperstreams::router
