// A backend process on the real backend client, for tests that kill it
// while a router of a cluster (not the one it first reached) waits for its
// answer. It serves SERVICE/hang, which never answers, follows the cluster,
// prints "ready" once its first router acknowledged the service and
// "request" when a request arrives, from whichever router. The test
// SIGKILLs it.
//
//   hyperstreams_test_cluster_backend tcp://127.0.0.1:PORT SERVICE
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "hyperstreams/backend.hpp"

int main(int argc, char** argv) {
    namespace hs = hyperstreams::backend;
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s ENDPOINT SERVICE\n", argv[0]);
        return 2;
    }
    hs::client backend({.url = argv[1], .name = "doomed-cluster-backend"});
    std::mutex mu;
    std::vector<hs::reply> kept;  // never answered
    backend.provide(argv[2], "hang", [&](hs::request, hs::reply r) {
        std::lock_guard lock(mu);
        kept.push_back(std::move(r));
        std::printf("request\n");
        std::fflush(stdout);
    });
    backend.start();
    if (!backend.wait_ready(std::chrono::seconds(10))) return 1;
    std::printf("ready\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds(60));
    return 0;
}
