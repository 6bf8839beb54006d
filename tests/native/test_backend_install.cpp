// `cmake --install` into a temporary prefix, then a project outside the tree
// (tests/native/consumer) finds the package with find_package(hyperstreams),
// builds against hyperstreams::backend and runs against the real router.
#include <gtest/gtest.h>

#include "test_backend_support.hpp"

namespace {

using namespace std::chrono_literals;
using hyperstreams::backend_testing::process;
using hyperstreams::backend_testing::router_process;
using hyperstreams::backend_testing::temp_dir;

// Runs a command to completion; its output goes to `log`.
int run(const std::vector<std::string>& argv, const std::string& log) {
    process p(argv, log);
    const std::string out = p.read_all(280s);
    if (!out.empty()) {
        FILE* f = std::fopen(log.c_str(), "a");
        if (f) {
            std::fputs(out.c_str(), f);
            std::fclose(f);
        }
    }
    return p.wait(10s).value_or(-1);
}

TEST(Install, AConsumerBuildsWithFindPackageAndTalksToTheRouter) {
    const std::string prefix = (temp_dir() / "prefix").string();
    const std::string build = (temp_dir() / "consumer-build").string();
    const std::string log = (temp_dir() / "install.log").string();

    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "--install", HYPERSTREAMS_BUILD_DIR, "--prefix", prefix}, log), 0)
        << "see " << log;
    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "-S", HYPERSTREAMS_CONSUMER_DIR, "-B", build, "-G", "Ninja",
                   "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Debug",
                   "-DCMAKE_CXX_COMPILER=" HYPERSTREAMS_CXX_COMPILER,
                   "-DCMAKE_CXX_FLAGS=" HYPERSTREAMS_CXX_FLAGS,
                   "-DCMAKE_EXE_LINKER_FLAGS=" HYPERSTREAMS_EXE_LINKER_FLAGS},
                  log),
              0)
        << "see " << log;
    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "--build", build}, log), 0) << "see " << log;

    router_process router;
    process consumer({build + "/consumer", router.backend_url()}, log);
    const auto line = consumer.read_line(30s);
    ASSERT_TRUE(line.has_value()) << "see " << log;
    EXPECT_EQ(*line, "pong:42");
    EXPECT_EQ(consumer.wait(10s).value_or(-1), 0);
}

}  // namespace
