// A request/response service: factory/machines lists the machines,
// factory/machine answers one by name or fails with a named error. Prints
// "ready" once the router serves it; runs until SIGINT or SIGTERM.
//
//   request_service [ROUTER_URL]
#include <csignal>
#include <hyperstreams/backend.hpp>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

int main(int argc, char** argv) {
    namespace hs = hyperstreams::backend;
    // Blocked before the client starts its threads, which inherit the mask:
    // sigwait() below is the only one to take them.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    const std::map<std::string, nlohmann::json> machines{
        {"press", {{"name", "press"}, {"state", "running"}}},
        {"lathe", {{"name", "lathe"}, {"state", "idle"}}},
    };
    hs::client client({
        .url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7071",
        .name = "factory",
        .on_error = [](std::error_code error, std::string_view text) {
            std::cerr << "factory: " << error.message() << ": " << text << '\n';
        },
    });
    client.provide("factory", "machines", [&](hs::request, hs::reply reply) {
        nlohmann::json names = nlohmann::json::array();
        for (const auto& [name, machine] : machines) names.push_back(name);
        reply.send_json(names.dump());
    });
    client.provide("factory", "machine", [&](hs::request req, hs::reply reply) {
        const auto it = machines.find(std::string(req.text()));
        if (it == machines.end()) {
            reply.fail(hyperstreams::errc::invalid_argument, "no machine named '" + std::string(req.text()) + "'");
            return;
        }
        reply.send_json(it->second.dump());
    });
    client.start();
    if (!client.wait_ready(std::chrono::seconds(30))) return 1;
    std::cout << "ready" << std::endl;
    int signal = 0;
    sigwait(&stop, &signal);
    return 0;
}
