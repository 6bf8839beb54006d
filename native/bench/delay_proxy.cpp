// A Redis some distance away, for the cluster scenario's --redis-delay-us:
// a TCP forwarder on loopback that holds every chunk it forwards, each way,
// for a set time before it writes it on, in order. Its own thread.
#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange

#include <sys/prctl.h>

#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio.hpp>

#include "bench.hpp"

namespace hyperstreams::bench {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// Reading stops while this much waits to be written on one way.
constexpr std::size_t max_held_bytes = std::size_t{16} << 20;
constexpr std::size_t read_size = 64 * 1024;

class link;

// One way of a link: read from `from`, held `delay`, written to `to`. The
// end of `from` is passed on (a shutdown of `to`) once what was held before
// it is written; an error on either socket ends the link.
class one_way {
public:
    one_way(link& owner, tcp::socket& from, tcp::socket& to, std::chrono::microseconds delay)
        : owner_(owner), from_(from), to_(to), timer_(from.get_executor()), delay_(delay) {}

    void start() { read(); }
    void cancel() { timer_.cancel(); }
    bool done() const noexcept { return ended_ && held_.empty(); }

private:
    struct chunk {
        clock_type::time_point due;
        std::vector<char> bytes;
    };

    void read();
    void write_due();
    void arm();
    void pass_on_end();

    link& owner_;
    tcp::socket& from_;
    tcp::socket& to_;
    asio::steady_timer timer_;
    std::chrono::microseconds delay_;
    std::vector<char> read_buf_ = std::vector<char>(read_size);
    std::deque<chunk> held_;
    std::size_t held_bytes_ = 0;
    std::size_t writing_ = 0;  // chunks at the front of held_ being written
    bool reading_ = false;
    bool armed_ = false;
    bool ended_ = false;  // `from` ended (EOF)
};

class link : public std::enable_shared_from_this<link> {
public:
    link(tcp::socket client, tcp::socket server, std::chrono::microseconds delay)
        : client_(std::move(client)),
          server_(std::move(server)),
          up_(*this, client_, server_, delay),
          down_(*this, server_, client_, delay) {}

    void start() {
        up_.start();
        down_.start();
    }
    // Both ways ended, or an error on either.
    void way_done() {
        if (up_.done() && down_.done()) close();
    }
    void close() {
        error_code ignored;
        client_.close(ignored);
        server_.close(ignored);
        up_.cancel();
        down_.cancel();
    }

private:
    tcp::socket client_;
    tcp::socket server_;
    one_way up_;
    one_way down_;
};

void one_way::read() {
    if (reading_ || ended_ || held_bytes_ >= max_held_bytes) return;
    reading_ = true;
    from_.async_read_some(asio::buffer(read_buf_), [this, keep = owner_.shared_from_this()](const error_code& ec,
                                                                                           std::size_t n) {
        reading_ = false;
        if (ec == asio::error::eof) {
            ended_ = true;
            if (held_.empty()) pass_on_end();
            return;
        }
        if (ec) {
            owner_.close();
            return;
        }
        held_bytes_ += n;
        held_.push_back({clock_type::now() + delay_, std::vector<char>(read_buf_.data(), read_buf_.data() + n)});
        arm();
        read();
    });
}

void one_way::arm() {
    if (armed_ || writing_ != 0 || held_.empty()) return;
    armed_ = true;
    timer_.expires_at(held_.front().due);
    timer_.async_wait([this, keep = owner_.shared_from_this()](const error_code& ec) {
        armed_ = false;
        if (ec) return;
        write_due();
    });
}

void one_way::write_due() {
    const auto now = clock_type::now();
    std::vector<asio::const_buffer> out;
    for (const chunk& c : held_) {
        if (c.due > now) break;
        out.push_back(asio::buffer(c.bytes));
    }
    if (out.empty()) {
        arm();
        return;
    }
    writing_ = out.size();
    asio::async_write(to_, out, [this, keep = owner_.shared_from_this()](const error_code& ec, std::size_t) {
        if (ec) {
            owner_.close();
            return;
        }
        for (; writing_ > 0; --writing_) {
            held_bytes_ -= held_.front().bytes.size();
            held_.pop_front();
        }
        read();  // if it had stopped at the bound
        if (held_.empty() && ended_)
            pass_on_end();
        else if (!held_.empty() && held_.front().due <= clock_type::now())
            write_due();
        else
            arm();
    });
}

void one_way::pass_on_end() {
    error_code ignored;
    to_.shutdown(tcp::socket::shutdown_send, ignored);
    owner_.way_done();
}

}  // namespace

struct delay_proxy::impl {
    asio::io_context io;
    tcp::acceptor acceptor{io};
    unsigned short target = 0;
    std::chrono::microseconds delay{0};
    std::thread thread;

    void accept() {
        acceptor.async_accept([this](const error_code& ec, tcp::socket client) {
            if (ec) return;  // closed: the proxy stops
            error_code ignored;
            client.set_option(tcp::no_delay(true), ignored);
            tcp::socket server(io);
            error_code unreachable;
            server.connect({asio::ip::address_v4::loopback(), target}, unreachable);
            if (!unreachable) {  // else `client` closes here: as if the target had refused it
                server.set_option(tcp::no_delay(true), ignored);
                std::make_shared<link>(std::move(client), std::move(server), delay)->start();
            }
            accept();
        });
    }
};

delay_proxy::delay_proxy(unsigned short target_port, std::chrono::microseconds delay) : impl_(new impl) {
    impl_->target = target_port;
    impl_->delay = delay;
    const tcp::endpoint at(asio::ip::address_v4::loopback(), 0);
    impl_->acceptor.open(at.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(at);
    impl_->acceptor.listen();
    impl_->accept();
    impl_->thread = std::thread([io = &impl_->io] {
        // The timers' own precision, not the default 50 us of slack.
        ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        io->run();
    });
}

delay_proxy::~delay_proxy() {
    impl_->io.stop();
    impl_->thread.join();
}

unsigned short delay_proxy::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace hyperstreams::bench
