// The README's example: a backend that serves greeter/hello and publishes a tick.
#include <chrono>
#include <hyperstreams/backend.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    namespace hs = hyperstreams::backend;
    hs::client client({
        .url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7071",
        .name = "hello",
        .on_state = [](std::string_view state) { std::cerr << "hello: " << state << '\n'; },
        .on_error = [](std::error_code error, std::string_view text) {
            std::cerr << "hello: " << error.message() << ": " << text << '\n';
        },
    });
    client.provide("greeter", "hello", [](hs::request req, hs::reply reply) {
        // JSON built by a JSON library: the caller's text may hold quotes.
        reply.send_json(nlohmann::json{{"greeting", "hello, " + std::string(req.text())}}.dump());
    });
    client.start();
    for (int tick = 1;; ++tick) {
        client.publish("greeter.ticks", hs::json(nlohmann::json{{"tick", tick}}.dump()));
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
}
