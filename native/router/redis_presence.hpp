// Presence of routers that are one (cluster.redis), kept in Redis the way
// Centrifugo keeps it: a hash per channel, P:{channel}:presence, from each
// member's address to "[router id length u8][router id][member body]".
//
// A join writes its member and a leave removes it (one script each on the
// channel's node, in the order the core asked); with join_leave the same
// script publishes the event on the channel's pub/sub channel P:p:channel,
// as [0x80][kind u8: 0x17 join, 0x18 leave][member body]: the flags byte of
// a publication never has 0x80, so redis_log tells the two apart and hands
// the event back (on_event, in order with the channel's publications). Every
// router with local interest in the channel (this one too) sends it to its
// members that asked.
//
// A read takes the hash, then the membership (P:routers, cluster_node.hpp)
// of the routers it names, and keeps the members of routers alive: a router
// that stopped without saying (SIGKILL) loses its members within the
// membership's expiry, and the read that finds them removes them.
//
// The hash expires the membership's timeout after the last join, or after
// the last heartbeat of a router with members in it (each refreshes the
// channels it has members in: refresh()), so the hash of a channel whose
// routers all went without a leave does not stay in Redis for ever.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "log.hpp"
#include "presence.hpp"
#include "redis_engine.hpp"
#include "redis_log.hpp"

namespace hyperstreams::router {

class redis_presence final : public presence_cluster {
public:
    // Answers enter the core through `log` (in order with its own); a
    // channel's hash expires `expiry` after its last join or refresh.
    redis_presence(redis_engine& engine, redis_log& log, std::string prefix, std::string router_id,
                   std::chrono::milliseconds expiry);

    // Any thread (the heartbeat's): the expiry of every channel this
    // router has members in starts again.
    void refresh();

    // Under the core's lock: an event redis_log found on a channel's pub/sub.
    void on_event(std::string_view channel, std::string_view event);

    void joined(std::string_view channel, std::string_view address, bytes_view member, bool announce) override;
    void left(std::string_view channel, std::string_view address, bytes_view member, bool announce) override;
    void read(std::uint64_t ticket, std::string_view channel) override;

    std::string key(std::string_view channel) const;

    // Joins and leaves Redis refused or did not answer (thread-safe).
    [[nodiscard]] std::uint64_t write_failures() const noexcept { return write_log_.occurrences(); }

private:
    // Engine's thread: the members of routers in `alive` (and this one's)
    // answer read `ticket`; the others leave the hash `k`.
    void answer_read(std::uint64_t ticket, const std::string& k, const std::vector<std::array<std::string, 3>>& members,
                     const std::vector<std::string>& alive);
    void fail_read(std::uint64_t ticket, const redis_result& r);
    void change(const redis_script_ref& script, frame_kind kind, std::string_view channel, std::string_view address,
                bytes_view member, bool announce);

    redis_engine& engine_;
    redis_log& log_;
    const std::string prefix_;
    const std::string routers_key_;
    const std::string router_id_;
    const redis_script_ref join_script_;
    const redis_script_ref leave_script_;
    const std::string expiry_ms_;
    log::throttle write_log_;  // cluster.presence_write_failed
    // This router's members per channel. Written under the core's lock,
    // read by refresh(): a leaf lock of its own.
    std::mutex local_mu_;
    std::unordered_map<std::string, std::size_t> local_;
};

}  // namespace hyperstreams::router
