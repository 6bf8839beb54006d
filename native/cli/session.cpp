#include "session.hpp"

namespace hyperstreams::cli {

session::session(client_config config) {
    host_ = std::make_unique<native::engine_host>(
        std::move(config), [this](client_engine&, const client_event& e) { push(e); });
}

session::~session() { host_.reset(); }

void session::push(const client_event& e) {
    switch (e.kind) {
        case event_kind::open_transport:
        case event_kind::close_transport: return;
        default: break;
    }
    event x;
    x.kind = e.kind;
    x.op = e.op;
    x.state = e.state;
    x.flags = e.flags;
    x.code = e.code;
    x.id = e.id;
    x.subscription = e.subscription;
    x.epoch = e.epoch;
    x.seq = e.seq;
    x.count = e.count;
    x.name = std::string(e.name);
    x.text = std::string(e.text);
    x.payload.assign(e.payload.begin(), e.payload.end());
    if (e.services != nullptr) {
        for (const service_info& s : e.services->services) {
            service_entry entry{std::string(s.name), s.instances, {}};
            for (const method_info& m : s.methods)
                entry.methods.emplace_back(std::string(m.name), m.kind == method_kind::stream);
            x.services.push_back(std::move(entry));
        }
    }
    {
        std::lock_guard lock(mu_);
        if (e.kind == event_kind::welcome) address_ = x.name;
        events_.push_back(std::move(x));
    }
    cv_.notify_one();
}

std::optional<event> session::next(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return !events_.empty(); })) return std::nullopt;
    event e = std::move(events_.front());
    events_.pop_front();
    return e;
}

std::string session::address() const {
    std::lock_guard lock(mu_);
    return address_;
}

}  // namespace hyperstreams::cli
