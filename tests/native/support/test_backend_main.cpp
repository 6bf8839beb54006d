// A backend process for the test that kills a backend in the middle of a
// request: it registers SERVICE/METHOD through the shared engine over
// ZeroMQ, prints "ready" once the router acknowledged, "request" when a
// request arrives, and never answers. The test SIGKILLs it.
//
//   hyperstreams_test_backend tcp://127.0.0.1:PORT SERVICE METHOD
#include <cstdio>
#include <thread>

#include "test_client.hpp"

int main(int argc, char** argv) {
    using namespace hyperstreams;
    using namespace hyperstreams::testing;
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s ENDPOINT SERVICE METHOD\n", argv[0]);
        return 2;
    }
    test_client backend(backend_config(argv[1], "doomed-backend"));
    if (!backend.wait_ready(10s)) return 1;
    const std::uint32_t reg = backend.register_service(argv[2], {{argv[3], method_kind::unary}});
    if (!backend.wait_for(is(event_kind::ack, reg), 10s)) return 1;
    std::printf("ready\n");
    std::fflush(stdout);
    if (!backend.wait_for(is(event_kind::incoming_request), 60s)) return 1;
    std::printf("request\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(60s);
    return 0;
}
