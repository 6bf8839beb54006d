#include "hyperstreams/native/engine_host.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "transport.hpp"

namespace hyperstreams::native {

namespace asio = boost::asio;

transport_scheme scheme_of(std::string_view url) noexcept {
    if (url.starts_with("tcp://") || url.starts_with("ipc://")) return transport_scheme::zeromq;
    if (url.starts_with("ws://") || url.starts_with("wss://")) return transport_scheme::websocket;
    return transport_scheme::unsupported;
}

client_role role_for(std::string_view url) noexcept {
    return scheme_of(url) == transport_scheme::websocket ? client_role::frontend
                                                         : client_role::backend;
}

time_ms engine_host::now() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

namespace {

std::uint64_t random_seed() {
    std::random_device rd;
    const std::uint64_t seed = (std::uint64_t{rd()} << 32) | rd();
    return seed == 0 ? 1 : seed;
}

client_config seeded(client_config c) {
    if (c.seed == 0) c.seed = random_seed();
    return c;
}

}  // namespace

struct engine_host::impl : std::enable_shared_from_this<impl> {
    // `owners_io` null: an io_context and a thread of its own.
    impl(asio::io_context* owners_io, client_config config, event_handler handler, transport_options transport)
        : own_io(owners_io ? nullptr : std::make_unique<asio::io_context>(1)),
          io(owners_io ? *owners_io : *own_io),
          engine(seeded(std::move(config))),
          on_event(std::move(handler)),
          options(std::move(transport)) {}

    // Declared first: destroyed last, after every transport (and every
    // handler holding one) is gone; its destruction waits for the lingers.
    std::shared_ptr<zmq_context> zmq;
    std::shared_ptr<tls_context> tls;
    const std::unique_ptr<asio::io_context> own_io;
    asio::io_context& io;
    asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
    asio::steady_timer timer{io};
    time_ms armed_deadline = no_deadline;
    std::uint64_t timer_generation = 0;
    asio::steady_timer linger_timer{io};

    client_engine engine;
    event_handler on_event;
    const transport_options options;
    std::thread thread;
    std::atomic<std::thread::id> io_thread_id{};
    std::atomic<bool> started{false};
    std::atomic<bool> closing{false};
    std::mutex close_mu;
    // On an owner's io_context: set once the goodbye left (or the linger ran out).
    std::promise<void> finished;
    bool finish_told = false;
    // On an owner's io_context, which may run before start(): tasks posted
    // before it wait, so that they find the engine started, as on a thread
    // of its own (which runs them only after the start).
    std::mutex early_mu;
    std::vector<task> early;

    std::uint32_t transport_id = 0;
    std::shared_ptr<transport> current;
    std::vector<std::shared_ptr<transport>> closing_transports;
    bool pumping = false;
    bool reading = true;

    // HYPERSTREAMS_TRACE=1 in the environment: every event on stderr, the
    // first thing to look at when a client does not do what it should.
    const bool trace = std::getenv("HYPERSTREAMS_TRACE") != nullptr;

    void trace_event(const client_event& e) const {
        const std::string_view code = e.code == 0 ? std::string_view("0") : errc_name(e.code);
        std::fprintf(stderr, "hyperstreams[%s] %.*s op=%.*s id=%u code=%.*s state=%.*s name=%.*s text=%.*s\n",
                     engine.config().name.c_str(), static_cast<int>(event_name(e.kind).size()),
                     event_name(e.kind).data(), static_cast<int>(operation_name(e.op).size()),
                     operation_name(e.op).data(), e.id, static_cast<int>(code.size()), code.data(),
                     static_cast<int>(state_name(e.state).size()),
                     state_name(e.state).data(), static_cast<int>(e.name.size()), e.name.data(),
                     static_cast<int>(e.text.size()), e.text.data());
    }

    void run_task(const task& t) {
        t(engine, now());
        pump();
    }

    // Drains events (performing the transport actions), sends the output and
    // re-arms the timer: what client.hpp asks after every call.
    void pump() {
        if (pumping) return;  // a nested call: the outer loop finishes the job
        pumping = true;
        client_event e;
        for (;;) {
            if (engine.poll_event(e)) {
                switch (e.kind) {
                    case event_kind::open_transport: open(e.id, std::string(e.name)); break;
                    case event_kind::close_transport: flush_output(); close_transport(e.id); break;
                    default: break;
                }
                if (trace) trace_event(e);
                if (on_event) on_event(engine, e);
                continue;
            }
            if (!engine.output().empty()) {
                flush_output();
                continue;
            }
            break;
        }
        pumping = false;
        arm_timer();
    }

    void flush_output() {
        while (!engine.output().empty()) {
            if (current) current->send(engine.output());
            engine.consume_output();
        }
    }

    void open(std::uint32_t id, const std::string& url) {
        if (current) close_transport(transport_id);
        transport_id = id;
        std::weak_ptr<impl> weak = weak_from_this();
        transport_callbacks cb;
        cb.opened = [weak, id] {
            if (auto self = weak.lock()) {
                self->engine.transport_opened(id, now());
                self->pump();
            }
        };
        cb.received = [weak, id](bytes_view message) {
            if (auto self = weak.lock()) {
                if (id != self->transport_id) return;
                (void)self->engine.receive(message, now());
                self->pump();
            }
        };
        cb.closed = [weak, id](errc reason, std::string_view detail) {
            if (auto self = weak.lock()) {
                if (id == self->transport_id) self->current.reset();
                self->engine.transport_closed(id, now(), reason, detail);
                self->pump();
            }
        };
        switch (scheme_of(url)) {
            case transport_scheme::zeromq:
                if (!zmq) zmq = make_zmq_context();
                current = open_zmq_transport(io, zmq, url, options, std::move(cb));
                break;
            case transport_scheme::websocket:
                if (!tls && url.starts_with("wss://")) tls = make_tls_context(options.tls);
                current = open_ws_transport(io, url, options, tls, std::move(cb));
                break;
            case transport_scheme::unsupported:
                // The engine backs off and tries again, as for a refused connection.
                asio::post(io, [closed = std::move(cb.closed)] {
                    closed(errc::connection_failed, "not a ws://, wss://, tcp:// or ipc:// URL");
                });
                return;
        }
        if (!reading) current->set_reading(false);
    }

    void close_transport(std::uint32_t id) {
        if (id != transport_id || !current) return;
        current->close();
        if (current->busy()) closing_transports.push_back(current);
        current.reset();
    }

    void arm_timer() {
        const time_ms deadline = engine.next_deadline();
        if (deadline == armed_deadline) return;
        armed_deadline = deadline;
        const std::uint64_t generation = ++timer_generation;
        if (deadline == no_deadline) {
            timer.cancel();
            return;
        }
        timer.expires_at(std::chrono::steady_clock::time_point(std::chrono::milliseconds(deadline)));
        timer.async_wait([weak = weak_from_this(), generation](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!self || ec || generation != self->timer_generation) return;
            self->armed_deadline = no_deadline;
            self->engine.handle_timeout(now());
            self->pump();
        });
    }

    // After the engine's goodbye: wait for the transports to finish sending,
    // at most until `until`, then let the I/O thread end.
    void finish_when_flushed(std::chrono::steady_clock::time_point until) {
        std::erase_if(closing_transports, [](const auto& t) { return !t->busy(); });
        const bool flushed = closing_transports.empty() && (!current || !current->busy());
        if (flushed || std::chrono::steady_clock::now() >= until) {
            timer.cancel();
            if (own_io) {
                io.stop();
                return;
            }
            // The owner's io_context goes on: leave nothing of ours in it.
            guard.reset();
            if (current) current->abort();
            current.reset();
            closing_transports.clear();
            if (!std::exchange(finish_told, true)) finished.set_value();
            return;
        }
        linger_timer.expires_after(std::chrono::milliseconds(10));
        linger_timer.async_wait([self = shared_from_this(), until](const boost::system::error_code&) {
            self->finish_when_flushed(until);
        });
    }
};

engine_host::engine_host(client_config config, event_handler on_event, transport_options transport)
    : impl_(std::make_shared<impl>(nullptr, std::move(config), std::move(on_event), std::move(transport))) {}

engine_host::engine_host(asio::io_context& io, client_config config, event_handler on_event,
                         transport_options transport)
    : impl_(std::make_shared<impl>(&io, std::move(config), std::move(on_event), std::move(transport))) {}

engine_host::~engine_host() {
    close();
    // On an owner's io_context the transports are the I/O thread's to drop.
    if (!impl_->own_io) return;
    if (impl_->thread.joinable()) {
        if (on_io_thread())
            impl_->thread.detach();  // misuse; better a leak than a deadlock
        else
            impl_->thread.join();
    }
    impl_->current.reset();
    impl_->closing_transports.clear();
}

void engine_host::start() {
    if (!impl_->own_io) {
        // Started only once the start is queued: a task posted after this
        // (not kept in `early`) then comes after it.
        std::lock_guard lock(impl_->early_mu);
        if (impl_->started.load()) return;
        asio::post(impl_->io, [self = impl_, early = std::move(impl_->early)] {
            self->run_task([](client_engine& engine, time_ms now) { (void)engine.start(now); });
            for (const task& t : early) self->run_task(t);
        });
        impl_->early.clear();
        impl_->started.store(true);
        return;
    }
    if (impl_->started.exchange(true)) return;
    impl_->thread = std::thread([self = impl_] {
        self->io_thread_id.store(std::this_thread::get_id());
        self->run_task([](client_engine& engine, time_ms now) { (void)engine.start(now); });
        self->io.run();
        // Tasks still queued are destroyed with the io_context, which breaks
        // the promises of call(): no waiter stays blocked.
    });
}

void engine_host::post(task t) {
    if (impl_->closing.load(std::memory_order_acquire)) return;
    if (!impl_->own_io && !impl_->started.load()) {
        std::lock_guard lock(impl_->early_mu);
        if (!impl_->started.load()) {
            impl_->early.push_back(std::move(t));
            return;
        }
    }
    asio::post(impl_->io, [self = impl_, t = std::move(t)] { self->run_task(t); });
}

void engine_host::post_after(std::chrono::milliseconds delay, task t) {
    if (impl_->closing.load(std::memory_order_acquire)) return;
    asio::post(impl_->io, [self = impl_, delay, t = std::move(t)]() mutable {
        auto timer = std::make_shared<asio::steady_timer>(self->io, delay);
        // Weak: a timer still pending when the I/O thread ends must not keep
        // the host alive; the io_context's destruction then drops it.
        timer->async_wait([weak = self->weak_from_this(), timer, t = std::move(t)](const boost::system::error_code& ec) {
            const auto alive = weak.lock();
            if (!alive || ec || alive->closing.load()) return;
            alive->run_task(t);
        });
    });
}

void engine_host::pause_reading() {
    if (impl_->closing.load(std::memory_order_acquire)) return;
    asio::post(impl_->io, [self = impl_] {
        self->reading = false;
        if (self->current) self->current->set_reading(false);
    });
}

void engine_host::resume_reading() {
    if (impl_->closing.load(std::memory_order_acquire)) return;
    asio::post(impl_->io, [self = impl_] {
        self->reading = true;
        if (self->current) self->current->set_reading(true);
    });
}

void engine_host::drop_connection() {
    if (impl_->closing.load(std::memory_order_acquire)) return;
    asio::post(impl_->io, [self = impl_] {
        if (self->current) self->current->abort();
    });
}

bool engine_host::run_inline(const task& t) {
    if (!on_io_thread()) return false;
    impl_->run_task(t);
    return true;
}

bool engine_host::on_io_thread() const noexcept {
    if (!impl_->own_io) return impl_->io.get_executor().running_in_this_thread();
    return impl_->io_thread_id.load() == std::this_thread::get_id();
}

void engine_host::close(std::chrono::milliseconds linger) {
    std::lock_guard lock(impl_->close_mu);
    if (!impl_->started.load()) {
        impl_->closing.store(true);
        impl_->guard.reset();  // an owner's io_context may end without it
        return;
    }
    if (on_io_thread()) {
        if (!impl_->closing.exchange(true)) {
            (void)impl_->engine.close(now());
            impl_->pump();
            impl_->finish_when_flushed(std::chrono::steady_clock::now() + linger);
        }
        return;
    }
    if (!impl_->closing.load()) {
        const auto until = std::chrono::steady_clock::now() + linger;
        asio::post(impl_->io, [self = impl_, until] {
            (void)self->engine.close(now());
            self->pump();
            self->finish_when_flushed(until);
        });
        impl_->closing.store(true, std::memory_order_release);
        if (!impl_->own_io) {
            (void)impl_->finished.get_future().wait_for(linger + std::chrono::seconds(1));
            return;
        }
    }
    if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace hyperstreams::native
