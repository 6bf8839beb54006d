// The real hyperstreams-router binary, started for one test on free loopback
// ports (--listen 127.0.0.1:0, --backend tcp://127.0.0.1:0, --admin-listen
// 127.0.0.1:0) and stopped by
// its pid: SIGTERM, then SIGKILL if it has not exited within a bound. Its
// stderr (the logs) goes to a file that failing tests print.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hyperstreams::testing {

// How a router is started, beyond its flags.
struct launch_options {
    // > 0: the router's RLIMIT_NOFILE (soft and hard), to run it out of descriptors.
    unsigned max_open_files = 0;
    // Set: the router's stdout is a full pipe when it prints its ready line,
    // and this runs (with its pid) once it has logged router.ready, while
    // the line waits in the pipe; the line is read afterwards.
    std::function<void(pid_t)> before_ready_line;
};

class router_process {
public:
    // Starts the router with `args` added after the port flags and waits for
    // its ready line. Fails the test (ADD_FAILURE) when it does not come.
    explicit router_process(std::vector<std::string> args = {}, launch_options options = {});
    ~router_process();
    router_process(const router_process&) = delete;
    router_process& operator=(const router_process&) = delete;

    bool ready() const noexcept { return ready_; }
    pid_t pid() const noexcept { return pid_; }
    const std::string& http_address() const noexcept { return http_; }  // 127.0.0.1:PORT
    std::string ws_url() const { return "ws://" + http_ + "/ws"; }
    const std::string& backend_url() const noexcept { return backend_; }  // tcp://127.0.0.1:PORT
    // Where /metrics and /status are: 127.0.0.1:PORT (the HTTP address with
    // --admin-listen same), or "off".
    const std::string& admin_address() const noexcept { return admin_; }
    unsigned short http_port() const;

    // Sends `signal`; returns the exit status once the process ended within
    // `timeout` (the status from waitpid's WEXITSTATUS, or 128 + signal).
    std::optional<int> signal_and_wait(int signal, std::chrono::milliseconds timeout);
    // Waits for the process to end by itself; its exit status, as above.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // SIGTERM, then SIGKILL after `grace`. Returns the exit status.
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

    std::string log() const;
    // Polls the log until it contains `needle` or `timeout` passes; the log
    // as it then stands. Lines about one connection's end are written after
    // its client saw the end, so tests wait for them rather than read once.
    std::string wait_for_log(const std::string& needle,
                             std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
    // Resident set size in KiB (from /proc), 0 if unknown.
    long rss_kib() const;

private:
    pid_t pid_ = -1;
    bool ready_ = false;
    std::optional<int> status_;
    std::string http_;
    std::string backend_;
    std::string admin_;
    std::string log_path_;
};

// Any other program a test starts (a backend process to kill): stdout is
// read line by line with a deadline; the destructor kills what still runs.
class child_process {
public:
    child_process(std::string program, std::vector<std::string> args);
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const noexcept { return pid_; }
    // The next line of its stdout, without the newline.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    // Sends `signal` and reaps it (bounded). Returns the exit status.
    std::optional<int> kill_and_wait(int signal, std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    std::string pending_;
    std::optional<int> status_;
};

// Path of the router binary under test (a compile definition from CMake).
const char* router_binary();

// Runs the binary to completion with `args` (for --help and bad flags):
// exit status, stdout and stderr. Bounded by `timeout`.
struct run_result {
    int status = -1;
    std::string out;
    std::string err;
};
run_result run_router_once(const std::vector<std::string>& args,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

// How many times `needle` stands in `text`.
std::size_t occurrences(const std::string& text, const std::string& needle);
// The router logged `needle` at least `times` times within `timeout`.
bool logged(const router_process& r, const std::string& needle, std::size_t times,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Heartbeats quick enough that a membership or a presence expires within a
// test (2 s), with `more` flags after them. Slack for a loaded machine: a
// client declares its link dead after three intervals (1.2 s) of silence, and
// the router pings at most 1.25 intervals (500 ms) apart; a membership beaten
// every 400 ms lives 2 s; another router's answer is awaited 2 s.
std::vector<std::string> quick_heartbeats(std::vector<std::string> more = {});

// A router of a cluster over Redis (`redis`: HOST:PORT each, or with its
// scheme (rediss://), the server or a Redis Cluster's seeds), with `extra`
// flags, once its Redis side is up.
std::unique_ptr<router_process> cluster_router(const std::vector<std::string>& redis,
                                               std::vector<std::string> extra = {});

}  // namespace hyperstreams::testing
