#include "router_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "child_process.hpp"

namespace hyperstreams::testing {
namespace {

using clock = std::chrono::steady_clock;

std::string temp_path(const char* what) {
    static std::atomic<int> counter{0};
    return (std::filesystem::temp_directory_path() /
            ("hyperstreams-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + what))
        .string();
}

// fork + exec with stdout to `out_fd` (the write end of a pipe) and stderr
// to `err_path`; `max_open_files` > 0 sets the program's RLIMIT_NOFILE. Only
// async-signal-safe calls happen after the fork.
pid_t spawn_program(const char* program, const std::vector<std::string>& args, int out_fd, int out_read_fd,
                    const std::string& err_path, unsigned max_open_files = 0) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
        die_with_parent(parent);
        ::dup2(out_fd, 1);
        if (err_fd >= 0) ::dup2(err_fd, 2);
        ::close(out_read_fd);
        if (max_open_files > 0) {
            const rlimit limit{max_open_files, max_open_files};
            if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(126);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    if (err_fd >= 0) ::close(err_fd);
    return pid;
}

pid_t spawn(const std::vector<std::string>& args, int out_fd, int out_read_fd, const std::string& err_path,
            unsigned max_open_files = 0) {
    return spawn_program(router_binary(), args, out_fd, out_read_fd, err_path, max_open_files);
}

// Fills the pipe whose write end is `fd`, so that the next line written to
// it waits until the other end reads; the bytes written (no newline).
std::size_t fill_pipe(int fd) {
    (void)::fcntl(fd, F_SETPIPE_SZ, 4096);  // the smallest: quick to fill and to drain
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    std::size_t total = 0;
    const std::string block(4096, '.');
    for (int i = 0; i < 1024 && ::write(fd, block.data(), block.size()) > 0; ++i) total += block.size();
    for (int i = 0; i < 4096 && ::write(fd, ".", 1) == 1; ++i) ++total;
    ::fcntl(fd, F_SETFL, flags);
    return total;
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// Reads from `fd` until `done(text)` or the deadline.
template <typename Done>
std::string read_until(int fd, clock::time_point deadline, Done done) {
    std::string text;
    char buf[4096];
    while (!done(text)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    return text;
}

std::string field(const std::string& line, const std::string& key) {
    const std::size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) return {};
    const std::size_t start = at + key.size() + 2;
    const std::size_t end = line.find_first_of(" \n", start);
    return line.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Waits for `pid` up to `timeout`; the decoded status, or nothing.
std::optional<int> reap(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) return decode_status(status);
        if (clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

}  // namespace

const char* router_binary() { return HYPERSTREAMS_ROUTER_BINARY; }

child_process::child_process(std::string program, std::vector<std::string> args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe failed";
        return;
    }
    pid_ = spawn_program(program.c_str(), args, fds[1], fds[0], "/dev/null");
    ::close(fds[1]);
    out_fd_ = fds[0];
}

child_process::~child_process() {
    if (pid_ > 0 && !status_) kill_and_wait(SIGKILL, std::chrono::seconds(5));
    if (out_fd_ >= 0) ::close(out_fd_);
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    pending_ += read_until(out_fd_, deadline, [this](const std::string& t) {
        return (pending_ + t).find('\n') != std::string::npos;
    });
    const std::size_t nl = pending_.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = pending_.substr(0, nl);
    pending_.erase(0, nl + 1);
    return line;
}

std::optional<int> child_process::kill_and_wait(int signal, std::chrono::milliseconds timeout) {
    if (status_) return status_;
    if (pid_ <= 0) return std::nullopt;
    ::kill(pid_, signal);
    status_ = reap(pid_, timeout);
    return status_;
}

router_process::router_process(std::vector<std::string> args, launch_options options) {
    std::vector<std::string> all = {"--listen", "127.0.0.1:0", "--backend", "tcp://127.0.0.1:0", "--admin-listen",
                                    "127.0.0.1:0"};
    all.insert(all.end(), args.begin(), args.end());
    log_path_ = temp_path("router.log");
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe failed";
        return;
    }
    const std::size_t filler = options.before_ready_line ? fill_pipe(fds[1]) : 0;
    pid_ = spawn(all, fds[1], fds[0], log_path_, options.max_open_files);
    ::close(fds[1]);
    if (options.before_ready_line) {
        wait_for_log("event=router.ready", std::chrono::seconds(10));
        options.before_ready_line(pid_);
    }
    std::string out = read_until(fds[0], clock::now() + std::chrono::seconds(10),
                                 [](const std::string& t) { return t.find('\n') != std::string::npos; });
    ::close(fds[0]);
    out.erase(0, std::min(filler, out.size()));
    http_ = field(out, "http");
    backend_ = field(out, "backend");
    admin_ = field(out, "admin");
    ready_ = out.rfind("hyperstreams-router ready", 0) == 0 && !http_.empty() && !backend_.empty() && !admin_.empty();
    if (!ready_) ADD_FAILURE() << "the router did not start: stdout=" << out << "\nlog:\n" << log();
}

router_process::~router_process() {
    if (pid_ > 0 && !status_) stop(std::chrono::seconds(5));
    if (!log_path_.empty()) {
        if (::testing::Test::HasFailure()) std::fprintf(stderr, "---- router log ----\n%s----\n", log().c_str());
        std::filesystem::remove(log_path_);
    }
}

unsigned short router_process::http_port() const {
    return static_cast<unsigned short>(std::stoi(http_.substr(http_.rfind(':') + 1)));
}

std::optional<int> router_process::signal_and_wait(int signal, std::chrono::milliseconds timeout) {
    if (status_) return status_;
    if (pid_ <= 0) return std::nullopt;
    ::kill(pid_, signal);
    return wait_exit(timeout);
}

std::optional<int> router_process::wait_exit(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    if (pid_ <= 0) return std::nullopt;
    const auto deadline = clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            status_ = decode_status(status);
            return status_;
        }
        if (clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

int router_process::stop(std::chrono::milliseconds grace) {
    if (auto s = signal_and_wait(SIGTERM, grace)) return *s;
    ADD_FAILURE() << "the router ignored SIGTERM for " << grace.count() << " ms; killing it";
    if (auto s = signal_and_wait(SIGKILL, std::chrono::seconds(5))) return *s;
    return -1;
}

std::string router_process::log() const { return read_file(log_path_); }

std::string router_process::wait_for_log(const std::string& needle,
                                         std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::string text = log();
        if (text.find(needle) != std::string::npos || std::chrono::steady_clock::now() >= deadline)
            return text;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

long router_process::rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return 0;
}

run_result run_router_once(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
    run_result r;
    const std::string err_path = temp_path("once.err");
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return r;
    const pid_t pid = spawn(args, fds[1], fds[0], err_path);
    ::close(fds[1]);
    const auto deadline = clock::now() + timeout;
    r.out = read_until(fds[0], deadline, [](const std::string&) { return false; });
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.status = decode_status(status);
    r.err = read_file(err_path);
    std::filesystem::remove(err_path);
    return r;
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

bool logged(const router_process& r, const std::string& needle, std::size_t times, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (occurrences(r.log(), needle) >= times) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

std::vector<std::string> quick_heartbeats(std::vector<std::string> more) {
    std::vector<std::string> flags = {"--heartbeat-interval-ms", "400", "--heartbeat-timeout-ms", "2000"};
    flags.insert(flags.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    return flags;
}

std::unique_ptr<router_process> cluster_router(const std::vector<std::string>& redis, std::vector<std::string> extra) {
    std::string seeds;
    for (const std::string& a : redis)
        seeds += (seeds.empty() ? "" : ",") + (a.find("://") == std::string::npos ? "redis://" + a : a);
    std::vector<std::string> args = {"--cluster-redis", seeds};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = std::make_unique<router_process>(std::move(args));
    if (r->ready() && r->wait_for_log("event=cluster.redis_up", std::chrono::seconds(10)).find("event=cluster.redis_up") ==
                          std::string::npos)
        ADD_FAILURE() << "the router's Redis side did not come up";
    return r;
}

}  // namespace hyperstreams::testing
