#include "hyperstreams/backend.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "handler_thread.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/native/engine_host.hpp"
#include "token_expiry.hpp"

namespace hyperstreams::backend {

// The public header keeps the engine out of sight; its default must still be the engine's.
static_assert(stream_options{}.credit == default_stream_credit);
namespace detail {

using native::engine_host;

namespace {

std::vector<std::uint8_t> copy_of(byte_span b) { return {b.begin(), b.end()}; }

std::uint8_t flags_of(const payload& p) noexcept { return p.is_json ? frame_flags::json : 0; }

// The engine's view of `o` (valid while `o` is).
hyperstreams::publish_options engine_options(const publish_options& o) noexcept {
    hyperstreams::publish_options e;
    e.key = o.key;
    e.ttl_s = o.ttl_s;
    return e;
}

received received_of(const client_event& e) {
    return {copy_of(e.payload), (e.flags & frame_flags::json) != 0};
}

std::error_code code_error(std::uint16_t code) { return make_error_code(static_cast<errc>(code)); }

// A backoff the engine reported no error event for: a failed attempt (the
// host's transport codes) or a timeout. A router's refusal came as an error
// event already.
bool is_local_failure(std::uint16_t code) {
    const auto e = static_cast<errc>(code);
    return is_transport_failure(e) || e == errc::handshake_timeout || e == errc::heartbeat_timeout;
}

static_assert(stream_options{}.credit == default_stream_credit, "the engine's default window");

std::string describe_backoff(const client_event& e) {
    std::string text = e.text.empty() ? std::string(errc_name(e.code)) : std::string(e.text);
    return text + "; next attempt in " + std::to_string(e.count) + " ms";
}

}  // namespace

// Credit of one incoming stream, shared by its writer (any thread) and the
// I/O thread. The writer counts the items it queued that the I/O thread has
// not handed to the engine yet (in_flight): when the engine reports the
// credit it has, the writer's share is that credit minus what is on its way.
struct stream_flow {
    std::mutex mu;
    std::condition_variable cv;
    std::uint32_t credit = 0;
    std::uint32_t in_flight = 0;
    bool cancelled = false;
};

struct router_link;

// One incoming call (request or stream), shared by its reply or writer, the
// handler's wrapper and nothing else. When the last of them lets go without
// an answer, the call fails with handler_failed.
struct call_link {
    call_link(std::weak_ptr<client_core> c, std::weak_ptr<router_link> v, std::uint32_t i, std::uint64_t t,
              std::shared_ptr<stream_flow> f)
        : core(std::move(c)), via(std::move(v)), id(i), token(t), flow(std::move(f)) {}
    ~call_link();
    call_link(const call_link&) = delete;
    call_link& operator=(const call_link&) = delete;

    // Claims the right to finish the call; false when finished already.
    bool claim() noexcept { return !finished.exchange(true); }
    void set_failure_text(std::string text) {
        std::lock_guard lock(text_mu);
        failure_text = std::move(text);
    }
    // Runs `f` with the engine of the connection the call came on, on the
    // I/O thread, if the call is still live there; false when that
    // connection is gone.
    bool on_engine(std::function<void(client_engine&, router_link&)> f);
    bool finish(std::vector<std::uint8_t> bytes, std::uint8_t flags);
    bool finish_error(errc code, std::string text);
    bool end_stream();

    std::weak_ptr<client_core> core;
    std::weak_ptr<router_link> via;  // the connection (router) the call came on
    const std::uint32_t id;
    const std::uint64_t token;  // tells this call from a later one the router gives the same id
    const std::shared_ptr<stream_flow> flow;  // streams only
    std::atomic<bool> finished{false};
    std::atomic<bool> gone{false};  // cancelled, timed out or lost: the caller no longer waits
    std::mutex text_mu;
    std::string failure_text = "the handler finished without answering";
};

// A call in progress on one connection; the I/O thread's.
struct live_call {
    std::uint64_t token = 0;
    std::shared_ptr<stream_flow> flow;
    std::weak_ptr<call_link> link;

    // The caller no longer waits: the reply or writer learns it.
    void abandon() const {
        if (auto l = link.lock()) l->gone = true;
        if (!flow) return;
        {
            std::lock_guard lock(flow->mu);
            flow->cancelled = true;
        }
        flow->cv.notify_all();
    }
};

// One connection to one router. The first (client_core::primary) carries
// everything; in a cluster, the connections to the other routers (joined)
// only serve the services, so that a caller on any router reaches them.
// The I/O thread's, the host aside.
struct router_link : std::enable_shared_from_this<router_link> {
    // The client's own io_context, when it has one: a reply or writer on
    // another thread may hold the link last, after the client is gone, and
    // the host's timers must go before the context they belong to.
    std::shared_ptr<boost::asio::io_context> own_io;
    std::string endpoint;  // the router's backend endpoint (joined ones)
    std::map<std::string, std::uint32_t> registered;  // service -> registration id
    std::unordered_map<std::uint32_t, live_call> live;
    std::unique_ptr<engine_host> host;  // last: its events stop before the tables go

    void abandon_calls() {
        for (auto& [id, call] : live) call.abandon();
        live.clear();
    }
};

class client_core : public std::enable_shared_from_this<client_core> {
public:
    explicit client_core(options o) : opts(std::move(o)) {
        if (!opts.handler_executor && opts.handlers == handler_threading::handler_thread)
            runner = std::make_unique<handler_thread>();
    }

    ~client_core() {
        // The I/O thread stops first (it calls on_event); handlers still
        // queued then run against closed hosts, whose post() drops tasks.
        shut();
        stop_handlers();
    }

    // Runs the handlers still queued on the handler thread and joins it
    // (from that thread itself, only asks it to end). Idempotent.
    void stop_handlers() {
        if (runner) runner->stop();
    }

    engine_host& host() noexcept { return *primary->host; }

    // After the I/O thread stopped: nothing will answer what still waits.
    void fail_everything_pending() {
        primary->abandon_calls();
        while (!streams.empty()) end_stream(streams.begin()->first, errc::closed, "the client closed");
        for (auto& [id, p] : pending_verdicts) p(errc::closed);
        pending_verdicts.clear();
        request_map requests;
        requests.swap(pending_requests);
        for (auto& [id, done] : requests) {
            response r;
            r.error = errc::closed;
            done(std::move(r));
        }
        for (auto& [id, p] : pending_acks) {
            publish_ack a;
            a.error = errc::closed;
            p(std::move(a));
        }
        pending_acks.clear();
        for (auto& [id, p] : pending_services) {
            services_result out;
            out.error = errc::closed;
            p(std::move(out));
        }
        pending_services.clear();
        for (auto& [id, p] : pending_presence) {
            presence_result out;
            out.error = errc::closed;
            p(std::move(out));
        }
        pending_presence.clear();
        end_ready_waits(errc::closed, true);
    }

    // Connected with every service registered (primary). I/O thread, and
    // every change of what wait_ready() waits for passes here.
    void status_changed() {
        std::vector<std::function<void(std::error_code)>> waiting;
        {
            std::lock_guard lock(status_mu);
            if (connected && unconfirmed.empty()) waiting.swap(ready_waiters);
        }
        status_cv.notify_all();
        for (auto& w : waiting) w({});
    }

    // The waits for ready end with `why`; `for_good`: so does every later one.
    void end_ready_waits(std::error_code why, bool for_good) {
        std::vector<std::function<void(std::error_code)>> waiting;
        {
            std::lock_guard lock(status_mu);
            waiting.swap(ready_waiters);
            if (for_good) ready_waits_end = why;
        }
        for (auto& w : waiting) w(why);
    }

    // `done` when ready (at once if it is), or with why it never will be. Any thread.
    void when_ready(std::function<void(std::error_code)> done) {
        std::unique_lock lock(status_mu);
        if (ready_waits_end || (connected && unconfirmed.empty())) {
            const std::error_code why = ready_waits_end;
            lock.unlock();
            return done(why);
        }
        ready_waiters.push_back(std::move(done));
    }

    client_config config_for(std::vector<std::string> urls, bool follow_cluster) const {
        client_config config;
        if (urls.size() == 1)
            config.url = std::move(urls.front());
        else
            config.urls = std::move(urls);
        config.name = opts.name;
        config.token = opts.token;
        config.role = native::role_for(config.router_urls().front());
        config.follow_cluster = follow_cluster && config.role == client_role::backend;
        config.seed = opts.seed;
        return config;
    }

    native::transport_options transport() const {
        native::transport_options t;
        t.curve = {opts.curve_server_key, opts.curve_public_key, opts.curve_secret_key};
        t.tls.ca_file = opts.tls_ca_file;
        return t;
    }

    std::shared_ptr<router_link> make_link(std::vector<std::string> urls, bool follow_cluster) {
        auto link = std::make_shared<router_link>();
        link->own_io = own_io;
        link->host = std::make_unique<engine_host>(
            io, config_for(std::move(urls), follow_cluster),
            [this, weak = std::weak_ptr<router_link>(link)](client_engine& engine, const client_event& e) {
                // A link left behind (the router left the cluster) hears nothing more.
                if (const auto l = weak.lock()) on_event(*l, engine, e);
            },
            transport());
        return link;
    }

    void init() {
        primary = make_link(opts.urls.empty() ? std::vector<std::string>{opts.url} : opts.urls, opts.follow_cluster);
        if (!own_io) return;
        guard.emplace(io.get_executor());
        io_thread = std::thread([this] { io.run(); });
    }

    // Closes every connection and stops the I/O thread; from an inline
    // handler on the client's own thread, only starts closing (the
    // destructor finishes). Idempotent.
    void shut() {
        if (host().on_io_thread()) {
            close_joined();
            host().close();
            // On the caller's io_context this is the thread the tables
            // belong to: nothing is left for the destructor to wait for.
            if (!own_io && !shut_down.exchange(true)) fail_everything_pending();
            return;
        }
        if (shut_down.exchange(true)) return;
        // First on the I/O thread, where their close() returns at once: their
        // goodbyes leave while the primary's close() below waits for its own.
        host().post([this](client_engine&, time_ms) { close_joined(); });
        host().close();
        if (!own_io) return fail_pending_on_callers_thread();
        guard.reset();
        io.stop();
        if (io_thread.joinable()) io_thread.join();
        fail_everything_pending();
    }

    // The caller's io_context goes on running: what waits is its thread's.
    // One that nobody runs leaves it to this thread, after a bounded wait.
    void fail_pending_on_callers_thread() {
        auto claimed = std::make_shared<std::atomic<bool>>(false);
        auto done = std::make_shared<std::promise<void>>();
        auto finished = done->get_future();
        boost::asio::post(io, [this, claimed, done] {
            if (claimed->exchange(true)) return;
            fail_everything_pending();
            done->set_value();
        });
        if (finished.wait_for(std::chrono::seconds(1)) == std::future_status::ready) return;
        if (claimed->exchange(true)) {
            finished.wait();  // it is running now
            return;
        }
        fail_everything_pending();
    }

    // I/O thread.
    void close_joined() {
        for (auto& [endpoint, link] : joined) {
            link->abandon_calls();
            link->host->close();
        }
        joined.clear();
    }

    // Runs `f` where handlers run.
    void dispatch(std::function<void()> f) {
        if (opts.handler_executor)
            opts.handler_executor(std::move(f));
        else if (runner)
            runner->post(std::move(f));
        else
            f();
    }

    // `f`, where handlers run, if this client still exists then: for the
    // closures that reach back into it (a handler executor of the owner's
    // may run them after the client is gone).
    template <class F>
    void dispatch_to_self(F f) {
        dispatch([weak = weak_from_this(), f = std::move(f)]() mutable {
            if (const auto self = weak.lock()) f(*self);
        });
    }

    // `done`, called where handlers run.
    template <class Result>
    std::function<void(Result)> where_handlers_run(std::function<void(Result)> done) {
        return [this, done = std::move(done)](Result r) {
            dispatch([done, r = std::move(r)]() mutable { done(std::move(r)); });
        };
    }

    // The calls with an outcome; `done` runs on the I/O thread.
    void publish_with_ack(std::string_view channel, payload p, publish_options options,
                          std::function<void(publish_ack)> done) {
        host().post([this, ch = std::string(channel), bytes = copy_of(p.bytes), flags = flags_of(p),
                     options = std::move(options), done = std::move(done)](client_engine& engine, time_ms) mutable {
            const call_result r = engine.publish(ch, bytes, true, flags, engine_options(options));
            if (r.error) {
                publish_ack a;
                a.error = r.error;
                done(std::move(a));
                return;
            }
            pending_acks[r.id] = std::move(done);
        });
    }

    void list_services(std::function<void(services_result)> done) {
        host().post([this, done = std::move(done)](client_engine& engine, time_ms) mutable {
            const call_result r = engine.discover();
            if (r.error) {
                services_result out;
                out.error = r.error;
                done(std::move(out));
                return;
            }
            pending_services[r.id] = std::move(done);
        });
    }

    void ask_presence(std::string_view channel, std::function<void(presence_result)> done) {
        host().post([this, ch = std::string(channel), done = std::move(done)](client_engine& engine, time_ms) mutable {
            const call_result r = engine.presence(ch);
            if (r.error) {
                presence_result out;
                out.error = r.error;
                done(std::move(out));
                return;
            }
            pending_presence[r.id] = std::move(done);
        });
    }

    void client_subscription(bool subscribe, std::string_view address, std::string_view pattern, slow_policy policy,
                             std::function<void(std::error_code)> done) {
        host().post([this, subscribe, a = std::string(address), p = std::string(pattern), policy,
                     done = std::move(done)](client_engine& engine, time_ms) mutable {
            const call_result r = subscribe ? engine.subscribe_client(a, p, policy) : engine.unsubscribe_client(a, p);
            if (r.error) {
                done(r.error);
                return;
            }
            pending_verdicts[r.id] = std::move(done);
        });
    }

    void refresh_token(std::string_view token, std::function<void(std::error_code)> done) {
        host().post([this, t = std::string(token), done = std::move(done)](client_engine& engine, time_ms now) mutable {
            send_token(engine, now, std::move(t), std::move(done));
        });
    }

    void report(std::error_code error, std::string text) {
        if (!opts.on_error) return;
        dispatch_to_self([error, text = std::move(text)](client_core& c) { c.opts.on_error(error, text); });
    }

    // What a report about `link` starts with: which router, when not the first.
    static std::string about(const router_link& link) {
        return link.endpoint.empty() ? std::string() : "router " + link.endpoint + ": ";
    }

    // --- services (I/O thread) ---------------------------------------------

    struct method_entry {
        request_handler unary;
        stream_handler stream;
    };

    void serve(const std::string& service, const std::string& method, method_entry entry,
               client_engine& engine) {
        services[service][method] = std::move(entry);
        if (!started) return;
        register_service(service, engine, *primary);
        on_joined([service](client_core& c, client_engine& en, router_link& l) { c.register_service(service, en, l); });
    }

    void withdraw(const std::string& service, client_engine& engine) {
        services.erase(service);
        if (primary->registered.erase(service) != 0) (void)engine.unregister_service(service);
        on_joined([service](client_core&, client_engine& en, router_link& l) {
            if (l.registered.erase(service) != 0) (void)en.unregister_service(service);
        });
    }

    // Runs `f` on the engine of every router joined, later on the I/O thread.
    void on_joined(std::function<void(client_core&, client_engine&, router_link&)> f) {
        for (auto& [endpoint, link] : joined)
            link->host->post([this, f, weak = std::weak_ptr<router_link>(link)](client_engine& en, time_ms) {
                if (const auto l = weak.lock()) f(*this, en, *l);
            });
    }

    void register_service(const std::string& service, client_engine& engine, router_link& link) {
        if (link.registered.count(service) != 0) (void)engine.unregister_service(service);
        link.registered.erase(service);
        const auto it = services.find(service);
        if (it == services.end() || it->second.empty()) return;
        std::vector<method_info> methods;
        for (const auto& [name, entry] : it->second)
            methods.push_back({name, entry.stream ? method_kind::stream : method_kind::unary});
        const call_result r = engine.register_service(service, methods);
        if (r.error) {
            report(r.error, about(link) + "cannot register service '" + service + "'" +
                                (r.error == errc::wrong_role
                                     ? ": " + engine.config().router_urls().front() +
                                           " connects as a frontend; services need the "
                                       "router's backend endpoint (tcp:// or ipc://)"
                                     : ""));
            return;
        }
        link.registered[service] = r.id;
        if (&link != primary.get()) return;
        {
            std::lock_guard lock(status_mu);
            unconfirmed.insert(r.id);
        }
        status_changed();
    }

    // --- the cluster (I/O thread) ---------------------------------------------

    // The primary's router listed the cluster's other routers: join those
    // not joined yet, leave those no longer listed.
    void follow_cluster(const client_event& e) {
        routers_body routers;
        if (const std::error_code ec = decode_body(e.payload, routers)) {
            report(ec, "the router's list of the cluster's routers does not parse");
            return;
        }
        std::set<std::string> listed;
        for (const router_endpoint& r : routers.routers) listed.emplace(r.backend);
        for (auto it = joined.begin(); it != joined.end();) {
            if (listed.count(it->first) != 0) {
                ++it;
                continue;
            }
            it->second->abandon_calls();
            it->second->host->close();  // on the I/O thread: returns at once, the goodbye leaves later
            it = joined.erase(it);
        }
        for (const std::string& endpoint : listed) {
            if (joined.count(endpoint) != 0) continue;
            auto link = make_link({endpoint}, false);
            link->endpoint = endpoint;
            joined.emplace(endpoint, link);
            link->host->start();
            link->host->post([this, weak = std::weak_ptr<router_link>(link)](client_engine& en, time_ms) {
                if (const auto l = weak.lock())
                    for (const auto& [service, methods] : services) register_service(service, en, *l);
            });
        }
    }

    // --- events (I/O thread) -----------------------------------------------

    void on_event(router_link& link, client_engine& engine, const client_event& e) {
        if (&link != primary.get()) return on_joined_event(link, engine, e);
        switch (e.kind) {
            case event_kind::state_changed: {
                if (e.state != client_state::ready) {
                    std::lock_guard lock(status_mu);
                    connected = false;
                }
                if (opts.on_state)
                    dispatch_to_self([s = std::string(state_name(e.state))](client_core& c) { c.opts.on_state(s); });
                if (e.state == client_state::failed) {
                    report(code_error(e.code), "the connection failed for good");
                    end_ready_waits(code_error(e.code), false);
                }
                if (e.state == client_state::backoff && is_local_failure(e.code))
                    report(code_error(e.code), describe_backoff(e));
                if (e.state == client_state::backoff || e.state == client_state::failed) link.abandon_calls();
                if (e.state == client_state::awaiting_token && static_cast<errc>(e.code) == errc::token_expired)
                    fetch_token();
                return;
            }
            case event_kind::welcome: {
                // Ready from here: the welcome follows the state change and
                // carries the address that wait_ready() promises.
                {
                    std::lock_guard lock(status_mu);
                    session = std::string(e.name);
                    connected = true;
                }
                status_changed();
                return;
            }
            case event_kind::routers: return follow_cluster(e);
            case event_kind::message: return on_message(e);
            case event_kind::gap: return on_gap(e);
            case event_kind::epoch_changed: return on_epoch_changed(e);
            case event_kind::stream_item: return on_stream_item(e);
            case event_kind::stream_end: return end_stream(e.id, {}, {});
            case event_kind::token_refreshed: {
                if (auto it = pending_verdicts.find(e.id); it != pending_verdicts.end()) {
                    it->second({});
                    pending_verdicts.erase(it);
                }
                return;
            }
            case event_kind::ack: return on_ack(link, e);
            case event_kind::error: return on_error(link, e);
            case event_kind::response: {
                auto it = pending_requests.find(e.id);
                if (it == pending_requests.end()) return;
                response r;
                r.data = received_of(e);
                complete(it, std::move(r));
                return;
            }
            case event_kind::incoming_request:
            case event_kind::incoming_stream: return on_incoming(link, engine, e);
            case event_kind::stream_credit: return on_credit(link, e);
            case event_kind::cancelled: return on_cancelled(link, e);
            case event_kind::direct:
            case event_kind::broadcast: {
                const direct_handler& handler = e.kind == event_kind::direct ? direct : broadcasts;
                if (!handler) return;
                direct_message m{std::string(e.name), received_of(e)};
                dispatch([handler, m = std::move(m)] { handler(m); });
                return;
            }
            case event_kind::presence: {
                auto it = pending_presence.find(e.id);
                if (it == pending_presence.end()) return;
                presence_result out;
                presence_list_body list;
                (void)decode_body(e.payload, list);  // the engine checked it
                out.count = list.count;
                for (const hyperstreams::presence_member& m : list.members)
                    out.members.push_back({std::string(m.address), std::string(m.subject), std::string(m.name)});
                it->second(std::move(out));
                pending_presence.erase(it);
                return;
            }
            case event_kind::join:
            case event_kind::leave: return on_join_leave(e);
            case event_kind::service_list: {
                auto it = pending_services.find(e.id);
                if (it == pending_services.end()) return;
                services_result out;
                if (e.services != nullptr) {
                    for (const service_info& s : e.services->services) {
                        service_description d{std::string(s.name), s.instances, {}};
                        for (const method_info& m : s.methods)
                            d.methods.push_back({std::string(m.name), m.kind == method_kind::stream});
                        out.services.push_back(std::move(d));
                    }
                }
                it->second(std::move(out));
                pending_services.erase(it);
                return;
            }
            default: return;
        }
    }

    // A connection to another router of the cluster serves; nothing else
    // comes on it.
    void on_joined_event(router_link& link, client_engine& engine, const client_event& e) {
        switch (e.kind) {
            case event_kind::redirected: {
                // The router drains: it sends this connection to a router
                // this client serves on already. Leave it; the router's
                // list no longer names it once its membership is gone.
                link.abandon_calls();
                link.host->close();
                const std::string endpoint = link.endpoint;
                host().post([this, endpoint](client_engine&, time_ms) { joined.erase(endpoint); });
                return;
            }
            case event_kind::state_changed:
                if (e.state == client_state::backoff && is_local_failure(e.code))
                    report(code_error(e.code), about(link) + describe_backoff(e));
                if (e.state == client_state::backoff || e.state == client_state::failed) link.abandon_calls();
                return;
            case event_kind::incoming_request:
            case event_kind::incoming_stream: return on_incoming(link, engine, e);
            case event_kind::stream_credit: return on_credit(link, e);
            case event_kind::cancelled: return on_cancelled(link, e);
            case event_kind::ack: return on_ack(link, e);
            case event_kind::error: return on_error(link, e);
            default: return;
        }
    }

    void on_credit(router_link& link, const client_event& e) {
        auto it = link.live.find(e.id);
        if (it == link.live.end() || !it->second.flow) return;
        stream_flow& f = *it->second.flow;
        {
            std::lock_guard lock(f.mu);
            const auto count = static_cast<std::uint32_t>(std::min<std::uint64_t>(e.count, UINT32_MAX));
            f.credit = count > f.in_flight ? count - f.in_flight : 0;
        }
        f.cv.notify_all();
    }

    void on_cancelled(router_link& link, const client_event& e) {
        auto it = link.live.find(e.id);
        if (it == link.live.end()) return;
        it->second.abandon();
        link.live.erase(it);
    }

    void on_message(const client_event& e) {
        auto it = subscribers.find(e.subscription);
        if (it == subscribers.end()) return;
        message m;
        m.channel = std::string(e.name);
        m.data = received_of(e);
        m.epoch = e.epoch;
        m.seq = e.seq;
        m.replayed = (e.flags & frame_flags::replayed) != 0;
        dispatch([handler = it->second.on_message, m = std::move(m)] { handler(m); });
    }

    void on_gap(const client_event& e) {
        auto it = subscribers.find(e.subscription);
        if (it == subscribers.end() || !it->second.on_gap) return;
        gap g{std::string(e.name), e.epoch, e.seq, e.count};
        dispatch([handler = it->second.on_gap, g = std::move(g)] { handler(g); });
    }

    void on_join_leave(const client_event& e) {
        auto it = subscribers.find(e.subscription);
        if (it == subscribers.end() || !it->second.on_join_leave) return;
        hyperstreams::presence_member m;
        (void)decode_body(e.payload, m);  // the engine checked it
        presence_change c{e.kind == event_kind::join, std::string(e.name),
                          {std::string(m.address), std::string(m.subject), std::string(m.name)}};
        dispatch([handler = it->second.on_join_leave, c = std::move(c)] { handler(c); });
    }

    void on_epoch_changed(const client_event& e) {
        auto it = subscribers.find(e.subscription);
        if (it == subscribers.end() || !it->second.on_epoch_change) return;
        epoch_change c{std::string(e.name), e.epoch, e.seq};
        dispatch([handler = it->second.on_epoch_change, c = std::move(c)] { handler(c); });
    }

    // --- streams this client opened (I/O thread) -----------------------------

    void on_stream_item(const client_event& e) {
        auto it = streams.find(e.id);
        if (it == streams.end()) return;
        // The credit goes back once the handler is done with the item, so a
        // slow consumer slows the service down instead of queueing here.
        dispatch_to_self([handler = it->second.on_item, manual = it->second.manual, id = e.id,
                          token = it->second.handle, item = received_of(e)](client_core& c) mutable {
            if (handler) handler(std::move(item));
            if (!manual) c.consume(id, token, 1);
        });
    }

    // Safe from any thread: reports `items` consumed on stream `id`, if it is
    // still the stream of handle `handle`.
    void consume(std::uint32_t id, std::uint64_t handle, std::uint32_t items) {
        host().post([this, id, handle, items](client_engine& engine, time_ms) {
            auto it = streams.find(id);
            if (it == streams.end() || it->second.handle != handle) return;
            (void)engine.stream_consumed(id, items);
        });
    }

    // The stream's one end: its handler, after every item already dispatched.
    void end_stream(std::uint32_t id, std::error_code error, std::string text) {
        auto it = streams.find(id);
        if (it == streams.end()) return;
        end_handler done = std::move(it->second.on_end);
        stream_ids.erase(it->second.handle);
        streams.erase(it);
        if (done) dispatch([done = std::move(done), error, text = std::move(text)] { done(error, text); });
    }

    // --- the token (I/O thread) -------------------------------------------------

    // Sends `token` as the new one; `verdict` (optional) learns the router's answer.
    void send_token(client_engine& engine, time_ms now, std::string token,
                    std::function<void(std::error_code)> verdict) {
        const call_result r = engine.refresh_token(token, now);
        if (r.error) {
            if (verdict) verdict(r.error);
            else report(r.error, "token refresh");
            return;
        }
        if (verdict) pending_verdicts[r.id] = std::move(verdict);
        schedule_refresh(token);
    }

    // Asks the provider again `token_refresh_margin` before `token` expires.
    void schedule_refresh(const std::string& token) {
        const std::uint64_t generation = ++token_generation;
        if (!opts.token_provider) return;
        const auto exp = token_expiry(token);
        if (!exp) return;
        const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(*exp)) - opts.token_refresh_margin;
        const auto delay = std::max(std::chrono::milliseconds(0),
                                    std::chrono::duration_cast<std::chrono::milliseconds>(
                                        at - std::chrono::system_clock::now()));
        host().post_after(delay, [this, generation](client_engine&, time_ms) {
            if (generation == token_generation) fetch_token();
        });
    }

    // Calls the provider where handlers run (it may block), then sends its token.
    void fetch_token() {
        if (!opts.token_provider) return;
        dispatch_to_self([](client_core& c) {
            std::string token = c.opts.token_provider();
            if (token.empty()) return;
            c.host().post([&c, token = std::move(token)](client_engine& engine, time_ms now) mutable {
                // The same token again would be refused again: wait for a new one.
                if (token == engine.config().token && engine.state() == client_state::awaiting_token) return;
                c.send_token(engine, now, std::move(token), nullptr);
            });
        });
    }

    void on_ack(router_link& link, const client_event& e) {
        switch (e.op) {
            case operation::publish:
            case operation::direct: {
                auto it = pending_acks.find(e.id);
                if (it == pending_acks.end()) return;
                publish_ack a;
                a.epoch = e.epoch;
                a.seq = e.seq;
                it->second(std::move(a));
                pending_acks.erase(it);
                return;
            }
            case operation::register_service: {
                if (&link != primary.get()) return;
                {
                    std::lock_guard lock(status_mu);
                    unconfirmed.erase(e.id);
                }
                status_changed();
                return;
            }
            case operation::subscribe_client:
            case operation::unsubscribe_client:
                if (auto it = pending_verdicts.find(e.id); it != pending_verdicts.end()) {
                    it->second({});
                    pending_verdicts.erase(it);
                }
                return;
            default: return;
        }
    }

    void on_error(router_link& link, const client_event& e) {
        std::string text(e.text);
        const std::error_code error = code_error(e.code);
        switch (e.op) {
            case operation::stream:
                if (streams.count(e.id) != 0) return end_stream(e.id, error, std::move(text));
                [[fallthrough]];
            case operation::request: {
                auto it = pending_requests.find(e.id);
                if (it == pending_requests.end()) return;
                response r;
                r.error = error;
                r.error_text = std::move(text);
                complete(it, std::move(r));
                return;
            }
            case operation::publish:
            case operation::direct: {
                if (auto it = pending_acks.find(e.id); it != pending_acks.end()) {
                    publish_ack a;
                    a.error = error;
                    a.error_text = std::move(text);
                    it->second(std::move(a));
                    pending_acks.erase(it);
                    return;
                }
                break;
            }
            case operation::subscribe:
                if (e.ends_subscription) subscribers.erase(e.subscription);
                break;
            case operation::register_service: {
                for (auto it = link.registered.begin(); it != link.registered.end(); ++it)
                    if (it->second == e.id) {
                        link.registered.erase(it);
                        break;
                    }
                if (&link != primary.get()) break;
                {
                    std::lock_guard lock(status_mu);
                    unconfirmed.erase(e.id);
                }
                status_changed();
                break;
            }
            case operation::token_refresh:
            case operation::subscribe_client:
            case operation::unsubscribe_client: {
                if (auto it = pending_verdicts.find(e.id); it != pending_verdicts.end()) {
                    it->second(error);
                    pending_verdicts.erase(it);
                    return;
                }
                break;
            }
            case operation::discover: {
                if (auto it = pending_services.find(e.id); it != pending_services.end()) {
                    services_result out;
                    out.error = error;
                    it->second(std::move(out));
                    pending_services.erase(it);
                    return;
                }
                break;
            }
            case operation::presence: {
                if (auto it = pending_presence.find(e.id); it != pending_presence.end()) {
                    presence_result out;
                    out.error = error;
                    it->second(std::move(out));
                    pending_presence.erase(it);
                    return;
                }
                break;
            }
            default: break;
        }
        report(error, about(link) + std::string(operation_name(e.op)) + ": " + text);
    }

    using request_map = std::unordered_map<std::uint32_t, std::function<void(response)>>;
    void complete(request_map::iterator it, response r) {
        std::function<void(response)> done = std::move(it->second);
        pending_requests.erase(it);
        done(std::move(r));
    }

    void on_incoming(router_link& via, client_engine& engine, const client_event& e) {
        const bool stream = e.kind == event_kind::incoming_stream;
        const method_entry* entry = nullptr;
        if (auto s = services.find(std::string(e.name)); s != services.end())
            if (auto m = s->second.find(std::string(e.method)); m != s->second.end()) entry = &m->second;
        if (entry == nullptr || (stream ? !entry->stream : !entry->unary)) {
            (void)engine.respond_error(e.id, errc::no_such_service, "method not served here");
            return;
        }
        std::shared_ptr<stream_flow> flow;
        if (stream) {
            flow = std::make_shared<stream_flow>();
            flow->credit = static_cast<std::uint32_t>(std::min<std::uint64_t>(e.count, UINT32_MAX));
        }
        const std::uint64_t token = ++last_token;
        auto link = std::make_shared<call_link>(weak_from_this(), via.weak_from_this(), e.id, token, flow);
        via.live[e.id] = live_call{token, flow, link};
        request req{std::string(e.name), std::string(e.method), received_of(e)};
        if (stream) {
            dispatch([handler = entry->stream, req = std::move(req), link]() mutable {
                try {
                    handler(std::move(req), stream_writer(link));
                } catch (const std::exception& ex) {
                    link->set_failure_text(ex.what());
                } catch (...) {
                    link->set_failure_text("the handler threw");
                }
            });
        } else {
            dispatch([handler = entry->unary, req = std::move(req), link]() mutable {
                try {
                    handler(std::move(req), reply(link));
                } catch (const std::exception& ex) {
                    link->set_failure_text(ex.what());
                } catch (...) {
                    link->set_failure_text("the handler threw");
                }
            });
        }
    }

    options opts;
    std::unique_ptr<handler_thread> runner;

    // The I/O thread runs every connection: the client's own, or the
    // caller's (options::io_context). Declared before them: the
    // connections' hosts go first. Each connection shares the client's own
    // (see router_link).
    std::shared_ptr<boost::asio::io_context> own_io =
        opts.io_context != nullptr ? nullptr : std::make_shared<boost::asio::io_context>(1);
    boost::asio::io_context& io = own_io ? *own_io : *opts.io_context;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
    std::thread io_thread;
    std::atomic<bool> shut_down{false};

    // Owned by the I/O thread.
    bool started = false;
    std::map<std::string, std::map<std::string, method_entry>> services;
    std::uint64_t last_token = 0;
    std::unordered_map<std::uint64_t, std::uint32_t> subscription_ids;  // handle -> engine id
    struct subscriber {
        message_handler on_message;
        gap_handler on_gap;
        epoch_change_handler on_epoch_change;
        presence_handler on_join_leave;
    };
    std::unordered_map<std::uint32_t, subscriber> subscribers;  // engine id -> handlers
    struct open_stream_state {
        std::uint64_t handle = 0;
        item_handler on_item;
        end_handler on_end;
        bool manual = false;
    };
    std::unordered_map<std::uint32_t, open_stream_state> streams;  // engine id -> stream
    std::unordered_map<std::uint64_t, std::uint32_t> stream_ids;   // handle -> engine id
    // Operations whose outcome is a verdict: token refreshes, subscribe_client, unsubscribe_client.
    std::unordered_map<std::uint32_t, std::function<void(std::error_code)>> pending_verdicts;
    std::uint64_t token_generation = 0;  // a scheduled refresh of an older token does nothing
    request_map pending_requests;
    std::unordered_map<std::uint32_t, std::function<void(publish_ack)>> pending_acks;
    std::unordered_map<std::uint32_t, std::function<void(services_result)>> pending_services;
    std::unordered_map<std::uint32_t, std::function<void(presence_result)>> pending_presence;
    direct_handler direct;
    direct_handler broadcasts;

    // Any thread.
    std::atomic<std::uint64_t> last_handle{0};
    mutable std::mutex status_mu;
    std::condition_variable status_cv;
    bool connected = false;
    std::set<std::uint32_t> unconfirmed;  // registrations not acknowledged yet (primary)
    std::vector<std::function<void(std::error_code)>> ready_waiters;  // wait_ready(token)
    std::error_code ready_waits_end;  // closed: every wait for ready ends at once
    std::string session;

    // Last: destroyed first (see the destructor). The primary is set by
    // init() and never replaced; joined is the I/O thread's.
    std::shared_ptr<router_link> primary;
    std::map<std::string, std::shared_ptr<router_link>> joined;  // by backend endpoint
};

call_link::~call_link() {
    if (finished.load() || gone.load()) return;
    std::string text;
    {
        std::lock_guard lock(text_mu);
        text = std::move(failure_text);
    }
    (void)finish_error(errc::handler_failed, std::move(text));
}

bool call_link::on_engine(std::function<void(client_engine&, router_link&)> f) {
    const auto l = via.lock();
    if (!l) return false;
    l->host->post([weak = via, id = id, token = token, f = std::move(f)](client_engine& engine, time_ms) {
        const auto link = weak.lock();
        if (!link) return;
        auto it = link->live.find(id);
        if (it == link->live.end() || it->second.token != token) return;
        f(engine, *link);
    });
    return true;
}

bool call_link::finish(std::vector<std::uint8_t> bytes, std::uint8_t flags) {
    if (gone.load() || !claim()) return false;
    return on_engine([id = id, bytes = std::move(bytes), flags](client_engine& engine, router_link& l) {
        (void)engine.respond(id, bytes, flags);
        l.live.erase(id);
    });
}

bool call_link::finish_error(errc code, std::string text) {
    if (gone.load() || !claim()) return false;
    return on_engine([id = id, code, text = std::move(text)](client_engine& engine, router_link& l) {
        (void)engine.respond_error(id, code, text);
        l.live.erase(id);
    });
}

bool call_link::end_stream() {
    if (gone.load() || !claim()) return false;
    return on_engine([id = id](client_engine& engine, router_link& l) {
        (void)engine.stream_end(id);
        l.live.erase(id);
    });
}

}  // namespace detail

// --- reply -----------------------------------------------------------------------

reply::reply(std::shared_ptr<detail::call_link> link) noexcept : link_(std::move(link)) {}

bool reply::send(payload p) {
    return link_ && link_->finish(detail::copy_of(p.bytes), detail::flags_of(p));
}

bool reply::fail(errc code, std::string_view text) {
    return link_ && link_->finish_error(code, std::string(text));
}

bool reply::done() const noexcept { return !link_ || link_->finished.load() || link_->gone.load(); }

// --- stream_writer -------------------------------------------------------------

std::string_view write_status_name(write_status s) noexcept {
    switch (s) {
        case write_status::ok: return "ok";
        case write_status::no_credit: return "no_credit";
        case write_status::timeout: return "timeout";
        case write_status::cancelled: return "cancelled";
        case write_status::closed: return "closed";
    }
    return "unknown";
}

stream_writer::stream_writer(std::shared_ptr<detail::call_link> link) noexcept : link_(std::move(link)) {}

write_status stream_writer::write(payload p, std::chrono::milliseconds wait) {
    if (!link_ || link_->finished.load()) return write_status::closed;
    bool on_io_thread = false;
    {
        // Not held through the wait: the client may go meanwhile.
        const auto via = link_->via.lock();
        if (!via) return write_status::closed;
        on_io_thread = via->host->on_io_thread();
    }
    detail::stream_flow& f = *link_->flow;
    {
        std::unique_lock lock(f.mu);
        if (f.cancelled) return write_status::cancelled;
        if (f.credit == 0) {
            if (wait.count() <= 0 || on_io_thread) return write_status::no_credit;
            if (!f.cv.wait_for(lock, wait, [&] { return f.credit > 0 || f.cancelled; }))
                return write_status::timeout;
            if (f.cancelled) return write_status::cancelled;
        }
        if (link_->finished.load()) return write_status::closed;
        --f.credit;
        ++f.in_flight;
    }
    const bool queued = link_->on_engine(
        [flow = link_->flow, id = link_->id, bytes = detail::copy_of(p.bytes), flags = detail::flags_of(p)](
            client_engine& engine, detail::router_link&) {
            {
                std::lock_guard lock(flow->mu);
                --flow->in_flight;
            }
            (void)engine.stream_send(id, bytes, flags);
        });
    return queued ? write_status::ok : write_status::closed;
}

bool stream_writer::end() { return link_ && link_->end_stream(); }

bool stream_writer::fail(errc code, std::string_view text) {
    return link_ && link_->finish_error(code, std::string(text));
}

bool stream_writer::cancelled() const noexcept {
    if (!link_) return true;
    std::lock_guard lock(link_->flow->mu);
    return link_->flow->cancelled;
}

std::uint32_t stream_writer::credit() const noexcept {
    if (!link_) return 0;
    std::lock_guard lock(link_->flow->mu);
    return link_->flow->credit;
}

// --- subscription ----------------------------------------------------------------

void subscription::unsubscribe() {
    auto core = core_.lock();
    if (!core || id_ == 0) return;
    core->host().post([c = core.get(), handle = id_](client_engine& engine, time_ms) {
        auto it = c->subscription_ids.find(handle);
        if (it == c->subscription_ids.end()) return;
        (void)engine.unsubscribe(it->second);
        c->subscribers.erase(it->second);
        c->subscription_ids.erase(it);
    });
    id_ = 0;
}

// --- stream_handle -------------------------------------------------------------------

void stream_handle::cancel() {
    auto core = core_.lock();
    if (!core || id_ == 0) return;
    core->host().post([c = core.get(), handle = id_](client_engine& engine, time_ms) {
        auto it = c->stream_ids.find(handle);
        if (it == c->stream_ids.end()) return;
        const std::uint32_t id = it->second;
        (void)engine.cancel(id);
        c->end_stream(id, errc::cancelled, "cancelled by the caller");
    });
}

void stream_handle::consume(std::uint32_t items) {
    auto core = core_.lock();
    if (!core || id_ == 0 || items == 0) return;
    core->host().post([c = core.get(), handle = id_, items](client_engine& engine, time_ms) {
        auto it = c->stream_ids.find(handle);
        if (it != c->stream_ids.end()) (void)engine.stream_consumed(it->second, items);
    });
}

// --- client ------------------------------------------------------------------------

client::client(options opts) : core_(std::make_shared<detail::client_core>(std::move(opts))) {
    core_->init();
}

// The handler thread is joined here, not when the core goes: a handler
// that holds the core for an instant (a handle's call) would otherwise let
// go of it last, and the handlers still queued would run after this
// destructor returned, against what its owner has destroyed since.
client::~client() {
    close();
    core_->stop_handlers();
}

void client::provide(std::string_view service, std::string_view method, request_handler handler) {
    detail::client_core::method_entry entry;
    entry.unary = std::move(handler);
    core_->host().post([c = core_.get(), s = std::string(service), m = std::string(method),
                       entry = std::move(entry)](client_engine& engine, time_ms) mutable {
        c->serve(s, m, std::move(entry), engine);
    });
}

void client::provide_stream(std::string_view service, std::string_view method, stream_handler handler) {
    detail::client_core::method_entry entry;
    entry.stream = std::move(handler);
    core_->host().post([c = core_.get(), s = std::string(service), m = std::string(method),
                       entry = std::move(entry)](client_engine& engine, time_ms) mutable {
        c->serve(s, m, std::move(entry), engine);
    });
}

void client::withdraw(std::string_view service) {
    core_->host().post([c = core_.get(), s = std::string(service)](client_engine& engine, time_ms) {
        c->withdraw(s, engine);
    });
}

void client::start() {
    if (core_->opts.token.empty() && core_->opts.token_provider) {
        // Before the engine's start, which sends it in hello.
        std::string token = core_->opts.token_provider();
        core_->host().post([token = std::move(token)](client_engine& engine, time_ms now) {
            if (!token.empty()) (void)engine.refresh_token(token, now);
        });
    }
    // After the engine's start, which start() queues first.
    core_->host().start();
    core_->host().post([c = core_.get()](client_engine& engine, time_ms) {
        if (c->started) return;
        c->started = true;
        for (const auto& [service, methods] : c->services) c->register_service(service, engine, *c->primary);
        c->schedule_refresh(engine.config().token);
    });
}

bool client::wait_ready(std::chrono::milliseconds timeout) {
    std::unique_lock lock(core_->status_mu);
    return core_->status_cv.wait_for(lock, timeout,
                                     [&] { return core_->connected && core_->unconfirmed.empty(); });
}

std::string client::address() const {
    std::lock_guard lock(core_->status_mu);
    return core_->session;
}

void client::publish(std::string_view channel, payload p) { publish(channel, p, publish_options{}); }

void client::publish(std::string_view channel, payload p, publish_options options) {
    core_->host().post([c = core_.get(), ch = std::string(channel), bytes = detail::copy_of(p.bytes),
                       flags = detail::flags_of(p), options = std::move(options)](client_engine& engine, time_ms) {
        const call_result r = engine.publish(ch, bytes, false, flags, detail::engine_options(options));
        if (r.error) c->report(r.error, "publish on '" + ch + "'");
    });
}

std::future<publish_ack> client::publish_with_ack(std::string_view channel, payload p) {
    return publish_with_ack(channel, p, publish_options{});
}

std::future<publish_ack> client::publish_with_ack(std::string_view channel, payload p, publish_options options) {
    auto promise = std::make_shared<std::promise<publish_ack>>();
    auto future = promise->get_future();
    // A future needs no executor: set it on the I/O thread.
    core_->publish_with_ack(channel, p, std::move(options),
                            [promise](publish_ack a) { promise->set_value(std::move(a)); });
    return future;
}

void client::publish_with_ack(std::string_view channel, payload p, std::function<void(publish_ack)> done) {
    publish_with_ack(channel, p, publish_options{}, std::move(done));
}

void client::publish_with_ack(std::string_view channel, payload p, publish_options options,
                              std::function<void(publish_ack)> done) {
    core_->publish_with_ack(channel, p, std::move(options), core_->where_handlers_run(std::move(done)));
}

subscription client::subscribe(std::string_view pattern, message_handler handler) {
    return subscribe(pattern, std::move(handler), subscribe_options{});
}

subscription client::subscribe(std::string_view pattern, message_handler handler, subscribe_options options) {
    const std::uint64_t handle = ++core_->last_handle;
    core_->host().post([c = core_.get(), handle, p = std::string(pattern), handler = std::move(handler),
                       options = std::move(options)](client_engine& engine, time_ms) mutable {
        hyperstreams::subscribe_options asked;
        asked.policy = options.policy;
        if (options.since) asked.since = channel_position{options.since->epoch, options.since->seq};
        asked.latest = options.latest;
        asked.join_leave = static_cast<bool>(options.on_join_leave);
        const call_result r = engine.subscribe(p, asked);
        if (r.error) {
            c->report(r.error, "subscribe to '" + p + "'");
            return;
        }
        c->subscription_ids[handle] = r.id;
        c->subscribers[r.id] = {std::move(handler), std::move(options.on_gap), std::move(options.on_epoch_change),
                                std::move(options.on_join_leave)};
    });
    return subscription(core_, handle);
}

void client::send(std::string_view address, payload p) {
    core_->host().post([c = core_.get(), to = std::string(address), bytes = detail::copy_of(p.bytes),
                       flags = detail::flags_of(p)](client_engine& engine, time_ms) {
        const call_result r = engine.send_direct(to, bytes, false, flags);
        if (r.error) c->report(r.error, "send to '" + to + "'");
    });
}

void client::broadcast(payload p) {
    core_->host().post([c = core_.get(), bytes = detail::copy_of(p.bytes), flags = detail::flags_of(p)](
                           client_engine& engine, time_ms) {
        const call_result r = engine.broadcast(bytes, false, flags);
        if (r.error) c->report(r.error, "broadcast");
    });
}

void client::on_broadcast(direct_handler handler) {
    core_->host().post([c = core_.get(), handler = std::move(handler)](client_engine&, time_ms) mutable {
        c->broadcasts = std::move(handler);
    });
}

stream_handle client::open_stream(std::string_view service, std::string_view method, payload p,
                                  item_handler on_item, end_handler on_end, stream_options options) {
    const std::uint64_t handle = ++core_->last_handle;
    core_->host().post([c = core_.get(), handle, s = std::string(service), m = std::string(method),
                       bytes = detail::copy_of(p.bytes), flags = detail::flags_of(p), options,
                       on_item = std::move(on_item), on_end = std::move(on_end)](client_engine& engine,
                                                                                 time_ms now) mutable {
        const call_result r = engine.open_stream(s, m, bytes, options.credit,
                                                 static_cast<std::uint32_t>(options.timeout.count()), now, flags);
        if (r.error) {
            if (on_end) c->dispatch([on_end = std::move(on_end), error = r.error] { on_end(error, {}); });
            return;
        }
        c->stream_ids[handle] = r.id;
        c->streams[r.id] = {handle, std::move(on_item), std::move(on_end), options.manual_credit};
    });
    return stream_handle(core_, handle);
}

stream_reader client::read_stream(std::string_view service, std::string_view method, payload p,
                                  stream_options options) {
    auto state = std::make_shared<detail::reader_state>();
    options.manual_credit = true;
    // The handlers hold the state weakly: the client's tables must not keep
    // a reader nobody reads alive, nor the reader the client.
    std::weak_ptr<detail::reader_state> weak = state;
    std::lock_guard lock(state->mu);  // the first item waits until `stream` is set
    state->stream = open_stream(
        service, method, p,
        [weak](received item) {
            stream_read r;
            r.item = std::move(item);
            if (auto s = weak.lock()) s->add(std::move(r));
        },
        [weak](std::error_code error, std::string_view text) {
            stream_read r;
            r.end = true;
            r.error = error;
            r.text = std::string(text);
            if (auto s = weak.lock()) s->add(std::move(r));
        },
        options);
    return stream_reader(std::move(state));
}

void stream_reader::cancel() {
    if (!state_) return;
    stream_handle stream;
    {
        std::lock_guard lock(state_->mu);
        stream = state_->stream;
    }
    stream.cancel();
}

void detail::reader_state::read(std::function<void(stream_read)> done) {
    std::unique_lock lock(mu);
    if (ready.empty()) {
        if (waiting) {
            lock.unlock();
            stream_read r;
            r.end = true;
            r.error = make_error_code(errc::invalid_argument);
            r.text = "a read is already waiting on this stream";
            return done(std::move(r));
        }
        waiting = std::move(done);
        return;
    }
    stream_read r = ready.front();  // the end stays for the reads after it
    if (!r.end) ready.pop_front();
    stream_handle s = stream;
    lock.unlock();
    if (!r.end) s.consume(1);
    done(std::move(r));
}

void detail::reader_state::add(stream_read r) {
    std::unique_lock lock(mu);
    if (ended) return;
    ended = r.end;
    if (!waiting) {
        ready.push_back(std::move(r));
        return;
    }
    auto done = std::move(waiting);
    waiting = nullptr;
    if (r.end) ready.push_back(r);
    stream_handle s = stream;
    lock.unlock();
    if (!r.end) s.consume(1);
    done(std::move(r));
}

void client::when_ready(std::function<void(std::error_code)> done) { core_->when_ready(std::move(done)); }

std::future<std::error_code> client::refresh_token(std::string_view token) {
    auto promise = std::make_shared<std::promise<std::error_code>>();
    auto future = promise->get_future();
    core_->refresh_token(token, [promise](std::error_code e) { promise->set_value(e); });
    return future;
}

void client::refresh_token(std::string_view token, std::function<void(std::error_code)> done) {
    core_->refresh_token(token, core_->where_handlers_run(std::move(done)));
}

void client::on_direct(direct_handler handler) {
    core_->host().post([c = core_.get(), handler = std::move(handler)](client_engine&, time_ms) mutable {
        c->direct = std::move(handler);
    });
}

void client::request(std::string_view service, std::string_view method, payload p,
                     std::chrono::milliseconds timeout, std::function<void(response)> done) {
    if (timeout.count() <= 0) timeout = core_->opts.request_timeout;
    auto deliver = core_->where_handlers_run(std::move(done));
    core_->host().post([c = core_.get(), s = std::string(service), m = std::string(method),
                       bytes = detail::copy_of(p.bytes), flags = detail::flags_of(p), timeout,
                       deliver = std::move(deliver)](client_engine& engine, time_ms now) mutable {
        const call_result r = engine.request(s, m, bytes, static_cast<std::uint32_t>(timeout.count()), now, flags);
        if (r.error) {
            response out;
            out.error = r.error;
            deliver(std::move(out));
            return;
        }
        c->pending_requests[r.id] = std::move(deliver);
    });
}

std::future<response> client::request(std::string_view service, std::string_view method, payload p,
                                       std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0) timeout = core_->opts.request_timeout;
    auto promise = std::make_shared<std::promise<response>>();
    auto future = promise->get_future();
    core_->host().post([c = core_.get(), s = std::string(service), m = std::string(method),
                       bytes = detail::copy_of(p.bytes), flags = detail::flags_of(p), timeout,
                       promise](client_engine& engine, time_ms now) {
        const call_result r = engine.request(s, m, bytes, static_cast<std::uint32_t>(timeout.count()), now, flags);
        if (r.error) {
            response out;
            out.error = r.error;
            promise->set_value(std::move(out));
            return;
        }
        // A future needs no executor: set it on the I/O thread.
        c->pending_requests[r.id] = [promise](response out) { promise->set_value(std::move(out)); };
    });
    return future;
}

std::future<services_result> client::services() {
    auto promise = std::make_shared<std::promise<services_result>>();
    auto future = promise->get_future();
    core_->list_services([promise](services_result r) { promise->set_value(std::move(r)); });
    return future;
}

void client::services(std::function<void(services_result)> done) {
    core_->list_services(core_->where_handlers_run(std::move(done)));
}

std::future<presence_result> client::presence(std::string_view channel) {
    auto promise = std::make_shared<std::promise<presence_result>>();
    auto future = promise->get_future();
    core_->ask_presence(channel, [promise](presence_result r) { promise->set_value(std::move(r)); });
    return future;
}

void client::presence(std::string_view channel, std::function<void(presence_result)> done) {
    core_->ask_presence(channel, core_->where_handlers_run(std::move(done)));
}

std::future<std::error_code> client::subscribe_client(std::string_view address, std::string_view pattern,
                                                     slow_policy policy) {
    auto promise = std::make_shared<std::promise<std::error_code>>();
    auto future = promise->get_future();
    core_->client_subscription(true, address, pattern, policy, [promise](std::error_code e) { promise->set_value(e); });
    return future;
}

void client::subscribe_client(std::string_view address, std::string_view pattern, slow_policy policy,
                              std::function<void(std::error_code)> done) {
    core_->client_subscription(true, address, pattern, policy, core_->where_handlers_run(std::move(done)));
}

std::future<std::error_code> client::unsubscribe_client(std::string_view address, std::string_view pattern) {
    auto promise = std::make_shared<std::promise<std::error_code>>();
    auto future = promise->get_future();
    core_->client_subscription(false, address, pattern, slow_policy::router_default,
                               [promise](std::error_code e) { promise->set_value(e); });
    return future;
}

void client::unsubscribe_client(std::string_view address, std::string_view pattern,
                                std::function<void(std::error_code)> done) {
    core_->client_subscription(false, address, pattern, slow_policy::router_default,
                               core_->where_handlers_run(std::move(done)));
}

void client::close() { core_->shut(); }

}  // namespace hyperstreams::backend
