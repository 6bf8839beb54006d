// The consumer project (tests/native/consumer), as the install and
// subdirectory suites build and run it: commands run to completion with
// their output in a log, and the consumer's exchange with a real router.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "test_backend_support.hpp"

namespace hyperstreams::backend_testing {

// Runs a command to completion, its output appended to `log`. Returns its
// exit status; -1 when it did not end within `timeout`.
inline int run(const std::vector<std::string>& argv, const std::string& log,
               std::chrono::seconds timeout = std::chrono::seconds(280)) {
    process p(argv, log);
    const std::string out = p.read_all(timeout);
    if (!out.empty()) {
        FILE* f = std::fopen(log.c_str(), "a");
        if (f) {
            std::fputs(out.c_str(), f);
            std::fclose(f);
        }
    }
    return p.wait(std::chrono::seconds(10)).value_or(-1);
}

// The consumer serves consumer/ping and calls it through a real router: it
// prints the answer and exits 0.
inline ::testing::AssertionResult consumer_talks_to_router(const std::string& consumer_binary,
                                                           const std::string& log) {
    router_process router;
    process consumer({consumer_binary, router.backend_url()}, log);
    const auto line = consumer.read_line(std::chrono::seconds(30));
    if (!line) return ::testing::AssertionFailure() << "the consumer printed nothing; see " << log;
    if (*line != "pong:42") return ::testing::AssertionFailure() << "the consumer printed '" << *line << "'";
    const int status = consumer.wait(std::chrono::seconds(10)).value_or(-1);
    if (status != 0) return ::testing::AssertionFailure() << "the consumer exited with " << status << "; see " << log;
    return ::testing::AssertionSuccess();
}

}  // namespace hyperstreams::backend_testing
