// A project that builds HyperStreams inside itself (tests/native/consumer
// with -DHYPERSTREAMS_SOURCE_DIR: add_subdirectory of this repository) gets
// hyperstreams::backend, talks to the real router, and installs nothing of
// HyperStreams.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "consumer_support.hpp"

namespace {

using hyperstreams::backend_testing::consumer_talks_to_router;
using hyperstreams::backend_testing::run;
using hyperstreams::backend_testing::temp_dir;

std::string jobs() {
    const char* env = std::getenv("HYPERSTREAMS_JOBS");
    return env != nullptr && *env != '\0' ? env : "2";
}

std::size_t files_under(const std::filesystem::path& dir) {
    std::size_t n = 0;
    if (std::filesystem::exists(dir))
        for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) n += entry.is_regular_file();
    return n;
}

TEST(Subdirectory, AProjectEmbeddingTheRepositoryLinksTheBackendClientAndTalksToTheRouter) {
    // Kept between runs, so that a rerun only builds what changed; --fresh
    // drops the cache, so that HyperStreams' defaults are read anew.
    const std::string tree = HYPERSTREAMS_CONSUMER_TREE;
    const std::string log = (temp_dir() / "subdirectory.log").string();

    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "--fresh", "-S", HYPERSTREAMS_CONSUMER_DIR, "-B", tree,
                   "-G", HYPERSTREAMS_CMAKE_GENERATOR,
                   "-DHYPERSTREAMS_SOURCE_DIR=" HYPERSTREAMS_SOURCE_DIR,
                   // The flags of the native-release preset: ccache then
                   // finds the objects of ./run.sh's build.
                   "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_EXTENSIONS=OFF",
                   "-DCMAKE_CXX_COMPILER=" HYPERSTREAMS_CXX_COMPILER,
                   "-DCMAKE_CXX_COMPILER_LAUNCHER=" HYPERSTREAMS_CXX_COMPILER_LAUNCHER},
                  log),
              0)
        << "see " << log;
    // Only the consumer and what it links: not the router and the tools.
    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "--build", tree, "--target", "consumer", "--parallel", jobs()}, log,
                  std::chrono::seconds(800)),
              0)
        << "see " << log;
    EXPECT_TRUE(consumer_talks_to_router(tree + "/consumer", log));

    const auto prefix = temp_dir() / "prefix";
    ASSERT_EQ(run({HYPERSTREAMS_CMAKE, "--install", tree, "--prefix", prefix.string()}, log), 0) << "see " << log;
    EXPECT_EQ(files_under(prefix), 0u) << "installing the embedding project installed HyperStreams' files into "
                                       << prefix << " (HYPERSTREAMS_INSTALL should be off)";
}

}  // namespace
