// A project outside the tree (tests/native/consumer) finds the package with
// find_package(hyperstreams), builds against hyperstreams::backend and runs
// against the real router: once from a prefix that `cmake --install` filled,
// once from this build tree's own export.
#include <gtest/gtest.h>

#include "consumer_support.hpp"

namespace {

using hyperstreams::backend_testing::consumer_talks_to_router;
using hyperstreams::backend_testing::run;
using hyperstreams::backend_testing::temp_dir;

// Configures and builds the consumer in `build` with `find_option` telling
// find_package where to look.
void build_consumer(const std::string& build, const std::string& find_option, const std::string& log) {
    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "-S", HYPERSTREAMS_CONSUMER_DIR, "-B", build, "-G", "Ninja", find_option,
                   "-DCMAKE_BUILD_TYPE=Debug",
                   "-DCMAKE_CXX_COMPILER=" HYPERSTREAMS_CXX_COMPILER,
                   "-DCMAKE_CXX_FLAGS=" HYPERSTREAMS_CXX_FLAGS,
                   "-DCMAKE_EXE_LINKER_FLAGS=" HYPERSTREAMS_EXE_LINKER_FLAGS},
                  log),
              0)
        << "see " << log;
    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "--build", build}, log), 0) << "see " << log;
}

TEST(Install, AConsumerBuildsWithFindPackageAndTalksToTheRouter) {
    const std::string prefix = (temp_dir() / "prefix").string();
    const std::string build = (temp_dir() / "consumer-build").string();
    const std::string log = (temp_dir() / "install.log").string();

    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "--install", HYPERSTREAMS_BUILD_DIR, "--prefix", prefix}, log), 0)
        << "see " << log;
    build_consumer(build, "-DCMAKE_PREFIX_PATH=" + prefix, log);
    if (HasFatalFailure()) return;
    EXPECT_TRUE(consumer_talks_to_router(build + "/consumer", log));
}

TEST(Install, AConsumerFindsThePackageOfTheBuildTree) {
    const std::string build = (temp_dir() / "build-tree-consumer").string();
    const std::string log = (temp_dir() / "build-tree.log").string();

    build_consumer(build, "-Dhyperstreams_DIR=" HYPERSTREAMS_BUILD_DIR, log);
    if (HasFatalFailure()) return;
    EXPECT_TRUE(consumer_talks_to_router(build + "/consumer", log));
}

}  // namespace
