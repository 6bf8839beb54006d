#include "core_runner.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "lane.hpp"
#include "log.hpp"
#include "router_core.hpp"

namespace hyperstreams::router {

namespace asio = boost::asio;

struct core_runner::impl {
    impl(const router_config& cfg, authorizer& auth, metrics& m, std::string id, std::uint32_t epoch)
        : stats(m), core(cfg, auth, m, epoch, std::move(id)), timer(ioc), work(asio::make_work_guard(ioc)) {}
    impl(const router_config& cfg, authorizer& auth, metrics& m, std::string id, channel_log& log, router_bus& bus,
         presence_cluster& presence)
        : stats(m), core(cfg, auth, m, log, std::move(id), &bus, &presence), timer(ioc),
          work(asio::make_work_guard(ioc)) {}

    // Runs fn(now) on the core under the mutex; then, with the mutex
    // released, has the lanes the core sent to drained (this thread's
    // inline, each other one by one post), wakes the transports the core
    // named and runs the drain's callback if this call finished the drain.
    // A wake-up may drop the last reference to a session, whose destructor
    // then calls in here again.
    template <typename Fn>
    void with_core(Fn&& fn) {
        router_core::wake_list wakes;
        std::vector<std::shared_ptr<lane>> lanes;
        std::function<void()> drained;
        {
            std::lock_guard lock(mu);
            try {
                fn(steady_clock::now());  // read under the mutex: `now` never goes back between calls
            } catch (const std::exception& e) {
                // The core's tables may be half-updated: do not route on them.
                HS_LOG(error, "core.crash").kv("what", e.what());
                std::abort();
            }
            core.take_wakes(wakes);
            core.take_lanes(lanes);
            if (on_drained && core.drained()) drained = std::exchange(on_drained, nullptr);
            arm_if_earlier(core.next_deadline());
        }
        for (const std::shared_ptr<lane>& l : lanes) {
            if (l->here()) {
                drain_lane(*l);
            } else {
                l->schedule([this, l] { drain_lane(*l); });
            }
        }
        for (const std::weak_ptr<link>& w : wakes)
            if (const std::shared_ptr<link> s = w.lock()) s->wake();
        if (drained) drained();
    }

    // On the lane's thread, outside the core's mutex: pushes what the core
    // queued to the lane's connections, wakes their sessions, and closes in
    // the core those that overflowed.
    // The outcome's vectors (a wake per idle subscriber: a thousand entries
    // for a batch to a thousand) are kept per thread between drains; a drain
    // that a wake-up started inside another takes fresh ones.
    void drain_lane(lane& l) {
        thread_local lane_outcome spare;
        lane_outcome out = std::move(spare);
        out.clear();
        l.drain(stats, out);
        for (const std::weak_ptr<link>& w : out.wakes)
            if (const std::shared_ptr<link> s = w.lock()) s->wake();
        if (!out.overflowed.empty())
            with_core([&](time_point now) { core.overflowed(out.overflowed, now); });
        out.clear();
        spare = std::move(out);
    }

    // Under the mutex. steady_timer is not thread-safe, so the timer is set
    // on its own thread: a deadline earlier than the armed one posts a
    // re-arm there (at most one in flight). A later one leaves the timer
    // alone: it fires early, tick() finds nothing due and it is armed again.
    // Most calls change nothing: the heartbeat scan, a few seconds away at
    // most, comes before a new call's deadline.
    void arm_if_earlier(time_point next) {
        if (next >= armed_at) return;
        armed_at = next;
        if (rearm_posted) return;
        rearm_posted = true;
        asio::post(ioc, [this] {
            std::lock_guard lock(mu);
            rearm_posted = false;
            timer.expires_at(armed_at);  // cancels the wait in progress, if any
            timer.async_wait([this](const boost::system::error_code& ec) {
                if (ec == asio::error::operation_aborted) return;
                with_core([this](time_point now) {
                    armed_at = time_point::max();  // nothing is armed now
                    core.tick(now);
                });
            });
        });
    }

    metrics& stats;
    std::mutex mu;  // guards the core, armed_at, rearm_posted and on_drained
    asio::io_context ioc{1};
    router_core core;
    asio::steady_timer timer;  // set on the timer's thread only
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::thread thread;
    time_point armed_at = time_point::max();
    bool rearm_posted = false;
    std::function<void()> on_drained;
};

core_runner::core_runner(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch,
                         std::string router_id)
    : impl_(std::make_unique<impl>(cfg, auth, m, std::move(router_id), epoch)) {}

core_runner::core_runner(const router_config& cfg, authorizer& auth, metrics& m, channel_log& log, router_bus& bus,
                         presence_cluster& presence, std::string router_id)
    : impl_(std::make_unique<impl>(cfg, auth, m, std::move(router_id), log, bus, presence)) {}

core_runner::~core_runner() { stop(); }

void core_runner::start() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->arm_if_earlier(impl_->core.next_deadline());
    }
    impl_->thread = std::thread([this] {
        try {
            impl_->ioc.run();
        } catch (const std::exception& e) {
            HS_LOG(error, "core.crash").kv("what", e.what());
            std::abort();
        }
    });
}

void core_runner::stop() {
    if (!impl_->thread.joinable()) return;
    impl_->work.reset();
    impl_->ioc.stop();
    impl_->thread.join();
}

void core_runner::open(connection_init init) {
    impl_->with_core([&](time_point now) { impl_->core.open(std::move(init), now); });
}

void core_runner::receive(connection_id id, bytes_view batch) {
    impl_->with_core([&](time_point now) { impl_->core.receive(id, batch, now); });
}

void core_runner::closed(connection_id id) {
    impl_->with_core([&](time_point now) { impl_->core.closed(id, now); });
}

void core_runner::reject(connection_id id, errc code, std::string_view text) {
    impl_->with_core([&](time_point now) { impl_->core.reject(id, code, text, now); });
}

void core_runner::log_answer(const std::function<void()>& answer) {
    impl_->with_core([&](time_point now) { impl_->core.log_answer(answer, now); });
}

void core_runner::redirect_drain_to(std::string websocket_url, std::string backend_endpoint) {
    impl_->with_core([&](time_point) { impl_->core.redirect_drain_to(std::move(websocket_url), std::move(backend_endpoint)); });
}

void core_runner::set_cluster_routers(const routers_body& others) {
    impl_->with_core([&](time_point) { impl_->core.set_cluster_routers(others); });
}

void core_runner::drain(std::function<void()> on_drained) {
    impl_->with_core([&](time_point now) {
        if (impl_->core.draining()) {
            impl_->core.hurry_drain(now);
            return;
        }
        impl_->on_drained = std::move(on_drained);
        impl_->core.begin_drain(now);
    });
}

std::string core_runner::status(const cluster_view* cluster) {
    status_snapshot snapshot;
    impl_->with_core([&](time_point now) { snapshot = impl_->core.snapshot(now); });
    if (cluster != nullptr) snapshot.cluster = *cluster;
    return render_status(snapshot);
}

const std::string& core_runner::router_id() const noexcept { return impl_->core.router_id(); }

}  // namespace hyperstreams::router
