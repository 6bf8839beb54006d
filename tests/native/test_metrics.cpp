// metrics: the traffic counts every thread keeps on its own are summed
// when read, on /metrics too, and belong to the metrics object they were
// counted on.
#include "metrics.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace hyperstreams::router {
namespace {

TEST(Metrics, EveryThreadsTrafficIsSummedWhenRead) {
    metrics m;
    constexpr int threads = 4;
    constexpr int adds = 10'000;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&m] {
            for (int i = 0; i < adds; ++i) {
                m.local(transport_kind::websocket).frames_out.add(2);
                m.local(transport_kind::zeromq).bytes_in.add(3);
            }
        });
    }
    // Read while they count: a sum never exceeds what was added.
    EXPECT_LE(m.total(transport_kind::websocket, &metrics::traffic::frames_out), 2u * threads * adds);
    for (std::thread& w : workers) w.join();
    EXPECT_EQ(m.total(transport_kind::websocket, &metrics::traffic::frames_out), 2u * threads * adds);
    EXPECT_EQ(m.total(transport_kind::zeromq, &metrics::traffic::bytes_in), 3u * threads * adds);
    EXPECT_EQ(m.total(transport_kind::zeromq, &metrics::traffic::frames_out), 0u);
    EXPECT_EQ(m.total(transport_kind::websocket, &metrics::traffic::bytes_in), 0u);

    const std::string text = m.render();
    EXPECT_NE(text.find("hyperstreams_frames_sent_total{transport=\"websocket\"} " +
                        std::to_string(2 * threads * adds) + "\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("hyperstreams_bytes_received_total{transport=\"zeromq\"} " +
                        std::to_string(3 * threads * adds) + "\n"),
              std::string::npos)
        << text;
}

TEST(Metrics, AThreadCountsIntoTheObjectItNames) {
    metrics a;
    metrics b;
    a.local(transport_kind::websocket).gaps.add(1);
    b.local(transport_kind::websocket).gaps.add(5);
    a.local(transport_kind::websocket).gaps.add(1);
    EXPECT_EQ(a.total(transport_kind::websocket, &metrics::traffic::gaps), 2u);
    EXPECT_EQ(b.total(transport_kind::websocket, &metrics::traffic::gaps), 5u);

    // One made where another was (often the same address) starts at zero.
    for (int i = 0; i < 3; ++i) {
        auto m = std::make_unique<metrics>();
        EXPECT_EQ(m->total(transport_kind::websocket, &metrics::traffic::dropped), 0u);
        m->local(transport_kind::websocket).dropped.add(7);
        EXPECT_EQ(m->total(transport_kind::websocket, &metrics::traffic::dropped), 7u);
    }
}

TEST(Metrics, AThreadThatEndedKeepsItsCounts) {
    metrics m;
    std::thread([&m] { m.local(transport_kind::websocket).messages_out.add(9); }).join();
    std::thread([&m] { m.local(transport_kind::websocket).messages_out.add(1); }).join();
    EXPECT_EQ(m.total(transport_kind::websocket, &metrics::traffic::messages_out), 10u);
}

}  // namespace
}  // namespace hyperstreams::router
