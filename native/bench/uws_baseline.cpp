// hyperstreams-bench-uws: uWebSockets' pub/sub speaking the baseline's
// protocol (baseline.cpp), so that `hyperstreams-bench fanout --targets
// router,baseline,uws` measures the fastest WebSocket server there is in the
// same run as the router (issue 20's reference: uWebSockets v20.79, one
// thread, a publisher's message published to the topic as it came).
//
// /broadcast: subscribed to one topic; each message is published to it and
// so reaches every other /broadcast connection (WebSocket::publish leaves
// out its sender), written at the end of the event loop's iteration with
// the socket corked. /echo: each message sent back. Each connection first
// gets one byte 0, "you are registered". No compression, no idle timeout,
// no automatic pings, and a backpressure bound of 1 GiB (the baseline has
// none; the tool's window bounds what is in flight).
//
// Not part of the build: uWebSockets is not a dependency of the product
// and Debian does not ship it. Built only when CMake is given a checkout of
// it (with its uSockets submodule), docs/BENCHMARKS.md:
//   cmake --preset native-release -DHYPERSTREAMS_UWS_DIR=/path/to/uWebSockets
//   cmake --build --preset native-release --target hyperstreams-bench-uws
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "App.h"

namespace {

struct per_socket {
    bool echo = false;
};

}  // namespace

int main() {
    uWS::App app;
    app.ws<per_socket>(
           "/*",
           {
               .compression = uWS::DISABLED,
               .maxPayloadLength = 64 * 1024 * 1024,
               .idleTimeout = 0,
               .maxBackpressure = 1024u * 1024u * 1024u,
               .closeOnBackpressureLimit = false,
               .resetIdleTimeoutOnSend = false,
               .sendPingsAutomatically = false,
               .upgrade =
                   [](auto* res, auto* req, auto* context) {
                       res->template upgrade<per_socket>({req->getUrl() == "/echo"},
                                                         req->getHeader("sec-websocket-key"),
                                                         req->getHeader("sec-websocket-protocol"),
                                                         req->getHeader("sec-websocket-extensions"), context);
                   },
               .open =
                   [](auto* ws) {
                       if (!ws->getUserData()->echo) ws->subscribe("b");
                       ws->send(std::string_view("\0", 1), uWS::BINARY);
                   },
               .message =
                   [](auto* ws, std::string_view message, uWS::OpCode op) {
                       if (ws->getUserData()->echo)
                           ws->send(message, op);
                       else
                           ws->publish("b", message, op);
                   },
           })
        .listen("127.0.0.1", 0, [](auto* listen_socket) {
            if (listen_socket == nullptr) {
                std::fprintf(stderr, "hyperstreams-bench-uws: cannot listen on 127.0.0.1\n");
                std::exit(1);
            }
            std::printf("ready %d\n", us_socket_local_port(0, reinterpret_cast<us_socket_t*>(listen_socket)));
            std::fflush(stdout);
        });
    app.run();
    return 0;
}
