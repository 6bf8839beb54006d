// Support for the backend, simulator and CLI suites: real processes (the
// router, the simulator, the CLI, the README example) started on free
// loopback ports and stopped by pid with bounded waits, and small bounded
// waiting helpers. No mocks: every test talks to the real router binary.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hyperstreams/native/engine_host.hpp"

extern char** environ;

namespace hyperstreams::backend_testing {

using namespace std::chrono_literals;

// Paths of the binaries under test, given by CMake.
#ifndef HYPERSTREAMS_ROUTER_BIN
#error "HYPERSTREAMS_ROUTER_BIN must name the router binary"
#endif

inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = 10s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return condition();
}

// A child process with its stdout piped (read with read_line) and its stderr
// in a file of the test's temporary directory (or inherited).
class process {
public:
    process() = default;
    process(const std::vector<std::string>& argv, const std::string& stderr_file = {},
            const std::string& stdin_file = {}) {
        int out[2];
        if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        if (!stderr_file.empty())
            posix_spawn_file_actions_addopen(&actions, 2, stderr_file.c_str(),
                                             O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (!stdin_file.empty())
            posix_spawn_file_actions_addopen(&actions, 0, stdin_file.c_str(), O_RDONLY, 0);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        if (rc != 0) {
            ::close(out[0]);
            throw std::runtime_error("cannot start " + argv[0]);
        }
        out_ = out[0];
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    process(process&& o) noexcept { *this = std::move(o); }
    process& operator=(process&& o) noexcept {
        std::swap(pid_, o.pid_);
        std::swap(out_, o.out_);
        std::swap(buffer_, o.buffer_);
        std::swap(status_, o.status_);
        return *this;
    }
    ~process() {
        stop();
        if (out_ >= 0) ::close(out_);
    }

    pid_t pid() const { return pid_; }
    bool running() { return pid_ > 0 && !reap(false); }

    // The next line of stdout, or nothing when none came within `timeout`
    // (or the process closed its stdout).
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = 10s) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0 || out_ < 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char chunk[4096];
            const ssize_t n = ::read(out_, chunk, sizeof chunk);
            if (n <= 0) {
                ::close(out_);
                out_ = -1;
                if (!buffer_.empty()) {
                    std::string rest;
                    rest.swap(buffer_);
                    return rest;
                }
                return std::nullopt;
            }
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    // Everything on stdout until it closes (bounded).
    std::string read_all(std::chrono::milliseconds timeout = 20s) {
        std::string all;
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            auto line = read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now()));
            if (!line) break;
            all += *line + "\n";
        }
        return all;
    }

    // The exit code (128 + signal when killed); waits at most `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout = 20s) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (!reap(false)) {
            if (std::chrono::steady_clock::now() >= until) return std::nullopt;
            std::this_thread::sleep_for(5ms);
        }
        return status_;
    }

    // SIGTERM, a bounded wait, then SIGKILL.
    void stop(std::chrono::milliseconds grace = 5s) {
        if (pid_ <= 0 || reap(false)) return;
        ::kill(pid_, SIGTERM);
        if (wait(grace)) return;
        ::kill(pid_, SIGKILL);
        reap(true);
    }
    void kill_hard() {
        if (pid_ <= 0 || reap(false)) return;
        ::kill(pid_, SIGKILL);
        reap(true);
    }

private:
    bool reap(bool block) {
        if (pid_ <= 0) return true;
        if (status_) return true;
        int st = 0;
        const pid_t r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return true;
        }
        return r < 0;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
    std::optional<int> status_;
};

// This test program's temporary directory (logs, install prefix). Removed at
// exit when every test passed; kept for the logs when one failed.
inline std::filesystem::path temp_dir() {
    static const std::filesystem::path dir = [] {
        std::string pattern = (std::filesystem::temp_directory_path() / "hyperstreams-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
        // Never destroyed: the exit handler may run after the statics are gone.
        static const std::string* const path = new std::string(pattern);
        std::atexit([] {
            if (!::testing::UnitTest::GetInstance()->Passed()) return;
            std::error_code ec;
            std::filesystem::remove_all(*path, ec);
        });
        return std::filesystem::path(pattern);
    }();
    return dir;
}

// The real router on free loopback ports; restartable on the same ports.
class router_process {
public:
    explicit router_process(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
        start("127.0.0.1:0", "tcp://127.0.0.1:0", "127.0.0.1:0");
    }

    void restart() {
        proc_.stop();
        start(http_, backend_, admin_);
    }
    void stop() { proc_.stop(); }
    void kill_hard() { proc_.kill_hard(); }
    void start_again() { start(http_, backend_, admin_); }

    const std::string& backend_url() const { return backend_; }
    std::string ws_url() const { return "ws://" + http_ + "/ws"; }
    const std::string& admin_address() const { return admin_; }
    const std::string& http_address() const { return http_; }
    process& proc() { return proc_; }

private:
    void start(const std::string& listen, const std::string& backend, const std::string& admin) {
        std::vector<std::string> argv{HYPERSTREAMS_ROUTER_BIN, "--listen", listen, "--backend", backend,
                                      "--admin-listen", admin, "--threads", "1", "--log-level", "warn"};
        argv.insert(argv.end(), extra_.begin(), extra_.end());
        const std::string log = (temp_dir() / "router.log").string();
        // The same ports may be in TIME_WAIT or not released yet: retry a little.
        for (int attempt = 0; attempt < 50; ++attempt) {
            proc_ = process(argv, log);
            auto line = proc_.read_line(10s);
            if (line && line->find("ready") != std::string::npos) {
                http_ = field(*line, "http=");
                backend_ = field(*line, "backend=");
                admin_ = field(*line, "admin=");
                return;
            }
            proc_.stop();
            std::this_thread::sleep_for(100ms);
        }
        throw std::runtime_error("the router did not start (see " + log + ")");
    }

    static std::string field(const std::string& line, const std::string& key) {
        const std::size_t at = line.find(key);
        if (at == std::string::npos) return {};
        const std::size_t begin = at + key.size();
        const std::size_t end = line.find(' ', begin);
        return line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    }

    std::vector<std::string> extra_;
    process proc_;
    std::string http_;
    std::string backend_;
    std::string admin_;  // on loopback, apart from the others' ports: kept across restarts
};

// A frontend that opens streams: the engine host itself (the library's
// client does not open streams), as the npm package would.
class stream_caller {
public:
    explicit stream_caller(const std::string& url) {
        hyperstreams::client_config c;
        c.url = url;
        c.name = "stream-caller";
        c.role = hyperstreams::native::role_for(url);
        host_ = std::make_unique<hyperstreams::native::engine_host>(
            c, [this](hyperstreams::client_engine&, const hyperstreams::client_event& e) {
                std::lock_guard lock(mu_);
                using hyperstreams::event_kind;
                if (e.kind == event_kind::state_changed) ready_ = e.state == hyperstreams::client_state::ready;
                if (e.id != stream_ || stream_ == 0) return;
                if (e.kind == event_kind::stream_item)
                    items_.emplace_back(reinterpret_cast<const char*>(e.payload.data()), e.payload.size());
                if (e.kind == event_kind::stream_end) ended_ = true;
                if (e.kind == event_kind::error) error_ = e.code;
            });
        host_->start();
    }
    bool ready() {
        std::lock_guard lock(mu_);
        return ready_;
    }
    void open(const std::string& service, const std::string& method, std::uint32_t credit,
              const std::string& payload = {}) {
        host_->call([&](hyperstreams::client_engine& engine, hyperstreams::time_ms now) {
            const hyperstreams::bytes_view body(reinterpret_cast<const std::uint8_t*>(payload.data()),
                                                payload.size());
            const auto r = engine.open_stream(service, method, body, credit, 0, now);
            std::lock_guard lock(mu_);
            stream_ = r.id;
            if (r.error) error_ = static_cast<std::uint16_t>(r.error.value());
        });
    }
    // Reports every item delivered so far as consumed.
    void consume_all() {
        host_->call([&](hyperstreams::client_engine& engine, hyperstreams::time_ms) {
            std::lock_guard lock(mu_);
            const auto n = static_cast<std::uint32_t>(items_.size()) - consumed_;
            if (n > 0) (void)engine.stream_consumed(stream_, n);
            consumed_ += n;
        });
    }
    void cancel() {
        host_->call([&](hyperstreams::client_engine& engine, hyperstreams::time_ms) {
            std::lock_guard lock(mu_);
            (void)engine.cancel(stream_);
        });
    }
    std::vector<std::string> items() {
        std::lock_guard lock(mu_);
        return items_;
    }
    bool ended() {
        std::lock_guard lock(mu_);
        return ended_;
    }
    std::uint16_t error() {
        std::lock_guard lock(mu_);
        return error_;
    }

private:
    std::mutex mu_;
    bool ready_ = false;
    std::uint32_t stream_ = 0;
    std::uint32_t consumed_ = 0;
    std::vector<std::string> items_;
    bool ended_ = false;
    std::uint16_t error_ = 0;  // the error code that ended the stream
    std::unique_ptr<hyperstreams::native::engine_host> host_;
};

}  // namespace hyperstreams::backend_testing
