// How routers that are one reach each other's clients: a direct message to
// an address another router gave, a backend's subscribe_client or
// unsubscribe_client for such an address, and broadcasts to every client of
// every router. The addressing room uses it when the router is one of several
// (cluster.redis: redis_bus); a router on its own has none.
//
// Called under the core's lock; answers come through the sink, also under
// it (core_runner::log_answer).
#pragma once

#include <cstdint>
#include <string_view>

#include "authorizer.hpp"
#include "channel_log.hpp"
#include "hyperstreams/errc.hpp"

namespace hyperstreams::router {

class router_bus {
public:
    class sink {
    public:
        // A direct message for `to`, an address of this router: whether a
        // client of this router has it (and was given the message).
        virtual bool direct_arrived(std::string_view to, std::string_view from, std::uint8_t flags,
                                    bytes_view payload) = 0;
        // A broadcast another router's client sent.
        virtual void broadcast_arrived(std::string_view from, std::uint8_t flags, bytes_view payload) = 0;
        // The answer to direct(): the router that gave the address queued
        // the message for its client (the ack; only when the sender asked
        // for one), or no client has the address (no_such_address), or the
        // bus failed (cluster_unavailable), or the router took the message
        // and did not answer (cluster_outcome_unknown).
        virtual void direct_done(const publisher& from, errc code, std::string_view text) = 0;
        // A subscribe_client (`subscribe`) or unsubscribe_client for `to`,
        // an address of this router, with `policy`: the verdict the backend
        // gets (its text goes back too), no_such_address when no client of
        // this router has it. The sender hears of it through direct_done.
        virtual verdict client_subscription_arrived(std::string_view to, std::string_view pattern,
                                                    slow_policy policy, bool subscribe) = 0;

    protected:
        ~sink() = default;
    };

    virtual ~router_bus() = default;
    void bind(sink& s) noexcept { sink_ = &s; }

    // Hands `payload` (lent for the call) to the router `router_id`, for its
    // client `to`.
    virtual void direct(std::string_view router_id, std::string_view to, std::string_view from, std::uint8_t flags,
                        bytes_view payload, const publisher& ack) = 0;
    // Asks the router `router_id` to subscribe (or unsubscribe) its client
    // `to` to `pattern`; the answer, always awaited, comes to
    // sink::direct_done for `ack`: that router's verdict, or
    // cluster_unavailable / cluster_outcome_unknown / no_such_address as for
    // a direct.
    virtual void client_subscription(std::string_view router_id, std::string_view to, std::string_view pattern,
                                     slow_policy policy, bool subscribe, const publisher& ack) = 0;
    // To every other router's clients.
    virtual void broadcast(std::string_view from, std::uint8_t flags, bytes_view payload) = 0;

protected:
    sink* sink_ = nullptr;
};

}  // namespace hyperstreams::router
