// Serves consumer/ping, calls it through the router, prints the answer.
#include <hyperstreams/backend.hpp>
#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: consumer ROUTER_BACKEND_URL\n";
        return 2;
    }
    namespace hs = hyperstreams::backend;
    hs::client client({.url = argv[1], .name = "consumer"});
    client.provide("consumer", "ping", [](hs::request req, hs::reply reply) {
        reply.send("pong:" + std::string(req.text()));
    });
    client.start();
    if (!client.wait_ready(std::chrono::seconds(10))) {
        std::cerr << "consumer: not connected\n";
        return 1;
    }
    const hs::response r = client.request("consumer", "ping", "42", std::chrono::seconds(5)).get();
    if (r.error) {
        std::cerr << "consumer: " << hyperstreams::errc_name(static_cast<std::uint16_t>(r.error.value())) << "\n";
        return 1;
    }
    std::cout << r.data.text() << "\n";
    return 0;
}
