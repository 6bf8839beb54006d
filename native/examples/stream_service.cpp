// A streaming service: factory/readings sends N readings (N: the request's
// text, 10 by default) as fast as the caller's credit allows, then ends the
// stream. Each stream gets a thread of its own, so that a slow caller slows
// only its own stream. Prints "ready" once served; runs until SIGINT or SIGTERM.
//
//   stream_service [ROUTER_URL]
#include <charconv>
#include <csignal>
#include <hyperstreams/backend.hpp>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    namespace hs = hyperstreams::backend;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    hs::client client({.url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7071", .name = "readings"});
    std::mutex mu;
    std::vector<std::jthread> writers;  // joined before the client goes (declared after it)
    client.provide_stream("factory", "readings", [&](hs::request req, hs::stream_writer out) {
        int count = 10;
        const std::string_view text = req.text();
        if (!text.empty() && std::from_chars(text.data(), text.data() + text.size(), count).ec != std::errc()) {
            out.fail(hyperstreams::errc::invalid_argument, "the count is not a number");
            return;
        }
        std::lock_guard lock(mu);
        writers.emplace_back([count, out = std::move(out)]() mutable {
            for (int i = 1; i <= count; ++i) {
                // Waits for the caller's credit; gives up on a caller that left.
                const hs::write_status s = out.write_json(nlohmann::json{{"reading", i}}.dump());
                if (s != hs::write_status::ok) return;
            }
            out.end();
        });
    });
    client.start();
    if (!client.wait_ready(std::chrono::seconds(30))) return 1;
    std::cout << "ready" << std::endl;
    int signal = 0;
    sigwait(&stop, &signal);
    client.close();  // the writers still waiting for credit see cancelled
    return 0;
}
