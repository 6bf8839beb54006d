// The lane (lane.hpp) of one I/O thread: a service of its io_context, so
// that every connection served on that thread (the WebSocket sessions it
// accepted; the ZeroMQ peers on the first thread) shares it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>

#include "lane.hpp"

namespace hyperstreams::router {

class io_lane final : public lane {
public:
    explicit io_lane(boost::asio::io_context& io) : io_(io) {}

    bool here() const noexcept override {
        return !gone_.load(std::memory_order_acquire) && io_.get_executor().running_in_this_thread();
    }
    void shut_down() {
        gone_.store(true, std::memory_order_release);
        stop();
    }

    // The lane of the thread that runs `io`.
    static std::shared_ptr<io_lane> of(boost::asio::io_context& io);

private:
    void post(std::function<void()> fn) override {
        if (!gone_.load(std::memory_order_acquire)) boost::asio::post(io_, std::move(fn));
    }

    boost::asio::io_context& io_;
    std::atomic<bool> gone_{false};
};

// Holds the io_context's lane; its shutdown (the io_context's end) stops
// the lane, which connections may outlive.
class io_lane_service final : public boost::asio::execution_context::service {
public:
    using key_type = io_lane_service;
    static inline boost::asio::execution_context::id id;

    explicit io_lane_service(boost::asio::execution_context& ctx)
        : boost::asio::execution_context::service(ctx),
          lane_(std::make_shared<io_lane>(static_cast<boost::asio::io_context&>(ctx))) {}

    const std::shared_ptr<io_lane>& get() const noexcept { return lane_; }

private:
    void shutdown() override { lane_->shut_down(); }

    std::shared_ptr<io_lane> lane_;
};

inline std::shared_ptr<io_lane> io_lane::of(boost::asio::io_context& io) {
    return boost::asio::use_service<io_lane_service>(io).get();
}

}  // namespace hyperstreams::router
