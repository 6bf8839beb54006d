// The routing core's connections and the one way out of the core: every
// frame a room of the core sends goes through here, into the connection's
// outbox, in the order the core made it.
//
// Fan-out comes in runs: the message frames of consecutive publishes that
// go to the same subscribers are held and handed to each outbox in one push
// (one lock) instead of one per message. The run is handed over before any
// other frame reaches any outbox, so every connection still gets its frames
// in the order the core made them. The targets of a run belong to whoever
// started it (pub/sub's route), which must flush_run() before it changes
// them.
//
// Closing a connection only marks it: it leaves the core's tables when the
// core reaps it (take_doomed), so a room may close connections while it
// walks its own tables.
#pragma once

#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "authorizer.hpp"
#include "channel_log.hpp"
#include "connection.hpp"
#include "hyperstreams/errc.hpp"
#include "metrics.hpp"

namespace hyperstreams::router {

// A subscriber of a run and its slow-consumer policy.
using delivery_target = std::pair<connection*, slow_policy>;

// What the authorizer knows of a connection.
inline principal who(const connection& c) {
    return principal{c.id, c.transport, c.role, c.name, c.address, c.curve_key()};
}

class connection_table {
public:
    // Transports to wake; a few fit without an allocation.
    using wake_list = boost::container::small_vector<std::weak_ptr<link>, 8>;

    explicit connection_table(metrics& m) : metrics_(m) {}
    connection_table(const connection_table&) = delete;
    connection_table& operator=(const connection_table&) = delete;

    connection& add(connection_init init, time_point now);
    [[nodiscard]] connection* find(connection_id id) {
        auto it = connections_.find(id);
        return it == connections_.end() ? nullptr : &it->second;
    }
    [[nodiscard]] const connection* find(connection_id id) const {
        auto it = connections_.find(id);
        return it == connections_.end() ? nullptr : &it->second;
    }
    // Gone from every table: the last step of removing a connection.
    void erase(connection_id id);
    std::size_t size() const noexcept { return connections_.size(); }
    bool empty() const noexcept { return connections_.empty(); }
    const std::unordered_map<connection_id, connection>& all() const noexcept { return connections_; }
    // The ids of every connection, for a walk that may close some.
    std::vector<connection_id> ids() const;

    // Outgoing, in order. Nothing reaches a connection that is closing.
    void send(connection& c, const frame& f);
    void send_error(connection& c, std::uint32_t id, errc code, std::string_view text);
    void send_ack(connection& c, std::uint32_t id, position at = {});
    void deliver(connection& c, const shared_bytes& bytes, frame_class cls, slow_policy policy);
    // Adds `message` to the run to `targets`, handing over the run before
    // when it went elsewhere. `targets` must stay as it is until the run is
    // flushed.
    void add_to_run(const std::vector<delivery_target>& targets, shared_bytes message);
    void flush_run();

    // Ends a connection: a goodbye with `code` (none when 0), the outbox
    // closed, and the connection doomed.
    void close(connection& c, errc code, std::string_view reason, queued_data data);
    // The same with another farewell frame (a redirect).
    void close_with(connection& c, shared_bytes farewell, errc code, std::string_view reason, queued_data data);
    // The transport lost it: nothing more is sent.
    void lost(connection& c);
    // The next doomed connection, to be removed; false when none is.
    [[nodiscard]] bool take_doomed(connection_id& id);

    void take_wakes(wake_list& out);

private:
    void wake(connection& c);
    // Counts what a push dropped, wakes, and closes the connection on
    // overflow; false then.
    [[nodiscard]] bool settle(connection& c, const push_result& r);
    void deliver_run(connection& c, std::span<const shared_bytes> run, slow_policy policy);

    metrics& metrics_;
    // Connections in place (the map's nodes do not move): one heap block each.
    std::unordered_map<connection_id, connection> connections_;
    std::vector<connection_id> doomed_;
    std::vector<shared_bytes> run_;
    const std::vector<delivery_target>* run_targets_ = nullptr;
    std::vector<std::weak_ptr<link>> wakes_;  // until take_wakes()
};

}  // namespace hyperstreams::router
