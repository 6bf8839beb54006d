#include "core_runner.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "log.hpp"

namespace hyperstreams::router {

namespace asio = boost::asio;

struct core_runner::impl {
    impl(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch, std::string id)
        : core(cfg, auth, m, epoch, std::move(id)), timer(ioc), work(asio::make_work_guard(ioc)) {}

    // Re-arms the timer when the core's next deadline is earlier than the
    // one armed. A later deadline leaves the timer alone: it fires early,
    // tick() finds nothing due and the timer is armed again.
    void rearm() {
        after_event();
        const time_point next = core.next_deadline();
        if (armed && next >= armed_at) return;
        armed = true;
        armed_at = next;
        timer.expires_at(next);
        timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec == asio::error::operation_aborted) return;
            armed = false;
            core.tick(steady_clock::now());
            rearm();
        });
    }

    void after_event() {
        if (on_drained && core.drained()) {
            auto fn = std::move(on_drained);
            on_drained = nullptr;
            fn();
        }
    }

    template <typename Fn>
    void run_on_core(Fn&& fn) {
        asio::post(ioc, [this, fn = std::forward<Fn>(fn)]() mutable {
            fn();
            rearm();
        });
    }

    asio::io_context ioc{1};
    router_core core;
    asio::steady_timer timer;
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::thread thread;
    bool armed = false;
    time_point armed_at{};
    std::function<void()> on_drained;
};

core_runner::core_runner(const router_config& cfg, authorizer& auth, metrics& m, std::uint32_t epoch,
                         std::string router_id)
    : impl_(std::make_unique<impl>(cfg, auth, m, epoch, std::move(router_id))) {}

core_runner::~core_runner() { stop(); }

void core_runner::start() {
    impl_->run_on_core([] {});
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
    impl_->run_on_core([this, init = std::move(init)]() mutable {
        impl_->core.open(std::move(init), steady_clock::now());
    });
}

void core_runner::receive(connection_id id, std::vector<std::uint8_t> bytes, std::shared_ptr<inbound_gate> gate) {
    impl_->run_on_core([this, id, bytes = std::move(bytes), gate = std::move(gate)] {
        impl_->core.receive(id, bytes, steady_clock::now());
        if (gate) gate->release(bytes.size());
    });
}

void core_runner::closed(connection_id id) {
    impl_->run_on_core([this, id] { impl_->core.closed(id, steady_clock::now()); });
}

void core_runner::reject(connection_id id, errc code, std::string text) {
    impl_->run_on_core([this, id, code, text = std::move(text)] {
        impl_->core.reject(id, code, text, steady_clock::now());
    });
}

void core_runner::drain(std::function<void()> on_drained) {
    impl_->run_on_core([this, fn = std::move(on_drained)]() mutable {
        const time_point now = steady_clock::now();
        if (impl_->core.draining()) {
            impl_->core.hurry_drain(now);
            return;
        }
        impl_->on_drained = std::move(fn);
        impl_->core.begin_drain(now);
    });
}

void core_runner::status(std::function<void(std::string)> done) {
    impl_->run_on_core([this, done = std::move(done)] { done(impl_->core.status_json(steady_clock::now())); });
}

const std::string& core_runner::router_id() const noexcept { return impl_->core.router_id(); }

}  // namespace hyperstreams::router
