#include "session.hpp"

namespace hyperstreams::cli {

session::session(client_config config, native::transport_options transport) {
    host_ = std::make_unique<native::engine_host>(
        std::move(config), [this](client_engine&, const client_event& e) { push(e); }, std::move(transport));
}

session::~session() { host_.reset(); }

void session::push(const client_event& e) {
    switch (e.kind) {
        case event_kind::open_transport:
        case event_kind::close_transport: return;
        default: break;
    }
    event x(e);
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
