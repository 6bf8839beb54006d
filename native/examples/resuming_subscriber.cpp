// A subscriber that resumes where it stopped, across its own restarts: it
// keeps its position in factory.events (epoch and seq of the last message
// it handled) in a file, subscribes from there, and so gets what was
// published while it was down from the channel's history, then the live
// messages. What the history no longer holds comes as a gap line; a router
// that lost the channel, as an epoch line. Prints a line per message and
// exits after COUNT of them.
//
//   resuming_subscriber ROUTER_URL POSITION_FILE COUNT
#include <condition_variable>
#include <fstream>
#include <hyperstreams/backend.hpp>
#include <iostream>
#include <mutex>
#include <string>

namespace hs = hyperstreams::backend;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: resuming_subscriber ROUTER_URL POSITION_FILE COUNT\n";
        return 2;
    }
    const std::string position_file = argv[2];
    const int count = std::stoi(argv[3]);

    hs::subscribe_options from;
    if (std::ifstream in(position_file); in) {
        hs::position p;
        if (in >> p.epoch >> p.seq) from.since = p;
    }
    from.on_gap = [](const hs::gap& g) {
        std::cout << "gap " << g.seq << " " << g.count << std::endl;
    };
    from.on_epoch_change = [](const hs::epoch_change& c) {
        std::cout << "epoch " << c.epoch << std::endl;
    };

    std::mutex mu;
    std::condition_variable cv;
    int handled = 0;
    hs::client client({.url = argv[1], .name = "resuming-subscriber"});
    client.subscribe(
        "factory.events",
        [&](const hs::message& m) {
            std::cout << m.seq << " " << m.data.text() << (m.replayed ? " (replayed)" : "") << std::endl;
            // Handled, then remembered: a crash in between handles it twice, never zero times.
            std::ofstream(position_file, std::ios::trunc) << m.epoch << ' ' << m.seq << '\n';
            std::lock_guard lock(mu);
            ++handled;
            cv.notify_all();
        },
        from);
    client.start();
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return handled >= count; });
    return 0;
}
