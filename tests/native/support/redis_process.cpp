#include "redis_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "child_process.hpp"
#include "redis_wire.hpp"

namespace hyperstreams::testing {
namespace {

using clock = std::chrono::steady_clock;

std::string find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        const auto candidate = std::filesystem::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    return name;
}

// A loopback port nothing listens on now (the kernel's pick).
std::uint16_t unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    std::uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

// A port for a Redis server of this process's, never given out again while
// the process lives, to it or to another test process (ctest runs two at
// once): each is held by an flock on a file named after it, which the
// kernel drops when the process ends. Without it a router whose Redis a
// test stopped, reconnecting to that port until its test ends, found there
// the Redis Cluster another test binary had just started on it, and joined
// that cluster's membership (the same key prefix). A server started on the
// port may still lose it to a process that takes ports otherwise, and is
// then retried.
std::uint16_t free_port() {
    static std::mutex mu;
    static std::vector<int> held;  // open for the process's life
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / "hyperstreams-test-ports";
    std::error_code ignored;
    std::filesystem::create_directories(dir, ignored);
    std::lock_guard lock(mu);
    for (int attempt = 0; attempt < 100; ++attempt) {
        const std::uint16_t port = unused_port();
        if (port == 0) continue;
        const int fd = ::open((dir / std::to_string(port)).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return port;  // no lock to be had: the kernel's pick alone
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            held.push_back(fd);
            return port;
        }
        ::close(fd);
    }
    return unused_port();
}

// fork + exec with stdout and stderr to `out_fd`. Only async-signal-safe
// calls after the fork.
pid_t spawn(const std::string& program, const std::vector<std::string>& args, int out_fd) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
        die_with_parent(parent);
        ::dup2(out_fd, 1);
        ::dup2(out_fd, 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

bool exited(pid_t pid) {
    int status = 0;
    return ::waitpid(pid, &status, WNOHANG) == pid;
}

void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGCONT);  // a stopped process takes SIGKILL too, but is reaped sooner once running
    ::kill(pid, SIGKILL);
    const auto deadline = clock::now() + std::chrono::seconds(5);
    while (!exited(pid) && clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

int connect_loopback(std::uint16_t port, clock::time_point deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    int error = 0;
    socklen_t len = sizeof error;
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool wait_fd(int fd, short events, clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    pollfd p{fd, events, 0};
    return left > 0 && ::poll(&p, 1, static_cast<int>(left)) == 1;
}

}  // namespace

redis_server::redis_server(bool cluster, std::optional<redis_tls_setup> tls, std::vector<std::string> extra)
    : cluster_(cluster), tls_(std::move(tls)), extra_(std::move(extra)) {
    static std::atomic<int> counter{0};
    dir_ = (std::filesystem::temp_directory_path() /
            ("hyperstreams-redis-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
               .string();
    std::filesystem::create_directories(dir_);
    for (int attempt = 0; attempt < 5 && !ready_; ++attempt) {
        port_ = free_port();
        bus_port_ = cluster_ ? free_port() : 0;
        tls_port_ = tls_ ? free_port() : 0;
        ready_ = launch();
    }
    if (!ready_) ADD_FAILURE() << "redis-server did not start:\n" << log();
}

redis_server::~redis_server() {
    if (pid_ > 0) kill_and_reap(pid_);
    if (::testing::Test::HasFailure())
        std::fprintf(stderr, "---- redis-server %s log ----\n%s----\n", address().c_str(), log().c_str());
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

bool redis_server::launch() {
    std::vector<std::string> args = {"--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--daemonize", "no", "--dir", dir_};
    if (cluster_) {
        args.insert(args.end(), {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port",
                                 std::to_string(bus_port_), "--cluster-node-timeout", "5000"});
    }
    if (tls_) {
        args.insert(args.end(), {"--tls-port", std::to_string(tls_port_), "--tls-cert-file", tls_->cert_file,
                                 "--tls-key-file", tls_->key_file, "--tls-ca-cert-file", tls_->ca_file,
                                 "--tls-auth-clients", tls_->auth_clients ? "yes" : "no"});
        if (cluster_) args.insert(args.end(), {"--tls-cluster", "yes"});
    }
    args.insert(args.end(), extra_.begin(), extra_.end());
    const int log_fd = ::open((dir_ + "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    static const std::string program = find_program("redis-server");
    pid_ = spawn(program, args, log_fd);
    ::close(log_fd);
    const auto deadline = clock::now() + std::chrono::seconds(5);
    while (clock::now() < deadline) {
        if (exited(pid_)) {
            pid_ = -1;
            return false;
        }
        if (reply_text(redis_call(port_, {"PING"}, std::chrono::milliseconds(200))) == "PONG") return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill_and_reap(pid_);
    pid_ = -1;
    return false;
}

void redis_server::kill() {
    if (pid_ > 0) kill_and_reap(pid_);
    pid_ = -1;
    ready_ = false;
}

void redis_server::stop() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        const auto deadline = clock::now() + std::chrono::seconds(5);
        bool gone = exited(pid_);
        for (; !gone && clock::now() < deadline; gone = exited(pid_))
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (!gone) kill_and_reap(pid_);
    }
    pid_ = -1;
    ready_ = false;
}

void redis_server::signal(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    // kill() only queues SIGSTOP: the process runs on (answers, even) until
    // one of its threads takes the signal, which a loaded machine may delay
    // by milliseconds. Frozen means every thread stopped.
    if (signal == SIGSTOP)
        EXPECT_TRUE(eventually([&] { return all_threads_stopped(pid_); }, std::chrono::seconds(5)))
            << "redis-server " << pid_ << " did not stop";
}

bool redis_server::restart() {
    kill();
    ready_ = launch();
    return ready_;
}

std::string redis_server::log() const {
    std::ifstream in(dir_ + "/log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<router::redis_reply> redis_calls(std::uint16_t port, const std::vector<std::vector<std::string>>& commands,
                                             std::chrono::milliseconds timeout) {
    std::vector<router::redis_reply> replies;
    const auto deadline = clock::now() + timeout;
    const int fd = connect_loopback(port, deadline);
    if (fd < 0) return replies;
    std::string out;
    for (const auto& c : commands) out += router::redis_format(c);
    std::size_t sent = 0;
    while (sent < out.size() && wait_fd(fd, POLLOUT, deadline)) {
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
    }
    router::redis_reader reader;
    char buf[16384];
    while (sent == out.size() && replies.size() < commands.size() && wait_fd(fd, POLLIN, deadline)) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0 || reader.feed(std::string_view(buf, static_cast<std::size_t>(n)))) break;
        std::error_code ec;
        while (router::redis_reply r = reader.next(ec)) replies.push_back(std::move(r));
        if (ec) break;
    }
    ::close(fd);
    return replies;
}

router::redis_reply redis_call(std::uint16_t port, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout) {
    auto replies = redis_calls(port, {args}, timeout);
    return replies.empty() ? nullptr : std::move(replies.front());
}

redis_subscription::redis_subscription(std::uint16_t port, const std::string& channel,
                                       std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    fd_ = connect_loopback(port, deadline);
    if (fd_ < 0) return;
    const std::string out = router::redis_format({"SUBSCRIBE", channel});
    if (!wait_fd(fd_, POLLOUT, deadline) || ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) !=
                                                 static_cast<ssize_t>(out.size()))
        return;
    router::redis_reader reader;
    char buf[4096];
    while (!ready_ && wait_fd(fd_, POLLIN, deadline)) {
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0 || reader.feed(std::string_view(buf, static_cast<std::size_t>(n)))) return;
        std::error_code ec;
        if (router::redis_reply r = reader.next(ec))
            ready_ = router::parse_push(*r).what == router::redis_push::kind::ack;
        if (ec) return;
    }
}

redis_subscription::~redis_subscription() {
    if (fd_ >= 0) ::close(fd_);
}

std::string reply_text(const router::redis_reply& r) {
    if (!r) return {};
    if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
    return std::string(router::redis_text(*r));
}

namespace {
long long subscribers(std::uint16_t port, const char* how, const std::string& channel) {
    const router::redis_reply r = redis_call(port, {"PUBSUB", how, channel});
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
}
}  // namespace

long long numsub(std::uint16_t port, const std::string& channel) { return subscribers(port, "NUMSUB", channel); }

long long shardnumsub(std::uint16_t port, const std::string& channel) {
    return subscribers(port, "SHARDNUMSUB", channel);
}

bool require_credentials(std::uint16_t port) {
    return reply_text(redis_call(port, {"ACL", "SETUSER", "router", "on", ">router-pass", "~*", "&*", "+@all"})) ==
               "OK" &&
           reply_text(redis_call(port, {"CONFIG", "SET", "requirepass", "default-pass"})) == "OK";
}

program_result run_program(const std::string& program, const std::vector<std::string>& args,
                           std::chrono::milliseconds timeout) {
    program_result result;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return result;
    const pid_t pid = spawn(find_program(program), args, fds[1]);
    ::close(fds[1]);
    const auto deadline = clock::now() + timeout;
    char buf[4096];
    while (wait_fd(fds[0], POLLIN, deadline)) {
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        result.output.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return result;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

bool all_threads_stopped(pid_t pid) {
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    bool any = false;
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
        std::ifstream in(task.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        // pid (comm) STATE ...: comm may hold spaces and parentheses; the state follows the last ')'.
        const auto close = stat.rfind(')');
        if (close == std::string::npos || close + 2 >= stat.size()) return false;
        if (stat[close + 2] != 'T') return false;
        any = true;
    }
    return any && !ec;
}

std::string replication_field(std::uint16_t port, const std::string& name) {
    std::istringstream lines(reply_text(redis_call(port, {"INFO", "replication"})));
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
    }
    return {};
}

bool wait_replicated(std::uint16_t master_port, std::uint16_t replica_port, std::chrono::milliseconds timeout) {
    const std::string written = replication_field(master_port, "master_repl_offset");
    if (written.empty()) return false;
    return eventually([&] {
        const std::string done = replication_field(replica_port, "slave_repl_offset");
        return !done.empty() && std::stoll(done) >= std::stoll(written);
    }, timeout);
}

std::vector<std::unique_ptr<redis_server>> make_redis_cluster(std::size_t masters, std::size_t replicas_each,
                                                              const std::vector<std::string>& extra) {
    std::vector<std::unique_ptr<redis_server>> nodes;
    std::vector<std::string> args = {"--cluster", "create"};
    // A replica's first sync at once, not after Redis's default 5 s wait for others.
    std::vector<std::string> options = {"--repl-diskless-sync-delay", "0"};
    options.insert(options.end(), extra.begin(), extra.end());
    for (std::size_t i = 0; i < masters * (1 + replicas_each); ++i) {
        nodes.push_back(std::make_unique<redis_server>(true, std::nullopt, options));
        if (!nodes.back()->ready()) return {};
        args.push_back(nodes.back()->address());
    }
    args.insert(args.end(), {"--cluster-replicas", std::to_string(replicas_each), "--cluster-yes"});
    const program_result created = run_program("redis-cli", args, std::chrono::seconds(30));
    if (created.status != 0) {
        ADD_FAILURE() << "redis-cli --cluster create failed:\n" << created.output;
        return {};
    }
    const bool settled = eventually([&] {
        for (const auto& n : nodes) {
            if (reply_text(redis_call(n->port(), {"CLUSTER", "INFO"})).find("cluster_state:ok") == std::string::npos)
                return false;
            const std::string role = replication_field(n->port(), "role");
            if (role == "master" &&
                replication_field(n->port(), "connected_slaves") != std::to_string(replicas_each))
                return false;
            if (role == "slave" && replication_field(n->port(), "master_link_status") != "up") return false;
        }
        return true;
    }, std::chrono::seconds(30));
    if (!settled) {
        ADD_FAILURE() << "the Redis Cluster did not settle (cluster_state:ok, replicas in sync)";
        return {};
    }
    return nodes;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

}  // namespace hyperstreams::testing
