// The README's example: a backend that serves greeter/hello and publishes a tick.
#include <hyperstreams/backend.hpp>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    namespace hs = hyperstreams::backend;
    hs::client client({.url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7071", .name = "hello"});
    client.provide("greeter", "hello", [](hs::request req, hs::reply reply) {
        reply.send_json(R"({"greeting":"hello, )" + std::string(req.text()) + R"("})");
    });
    client.start();
    for (int tick = 1;; ++tick) {
        client.publish("greeter.ticks", hs::json(R"({"tick":)" + std::to_string(tick) + "}"));
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
}
