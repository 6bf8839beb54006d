// Static files: request targets map inside --web only, with the right types.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "static_files.hpp"

namespace hyperstreams::router {
namespace {

namespace fs = std::filesystem;

class StaticFiles : public ::testing::Test {
protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() / ("hs-static-" + std::to_string(::getpid()));
        fs::create_directories(base_ / "web" / "assets");
        std::ofstream(base_ / "web" / "index.html") << "<html>";
        std::ofstream(base_ / "web" / "assets" / "app.js") << "1";
        std::ofstream(base_ / "secret.txt") << "no";
        fs::create_symlink(base_ / "secret.txt", base_ / "web" / "escape.txt");
        root_ = fs::canonical(base_ / "web");
    }
    void TearDown() override { fs::remove_all(base_); }

    fs::path base_;
    fs::path root_;
};

TEST_F(StaticFiles, MapsTargetsUnderTheRoot) {
    EXPECT_EQ(resolve_static(root_, "/"), root_ / "index.html");
    EXPECT_EQ(resolve_static(root_, "/index.html?v=3"), root_ / "index.html");
    EXPECT_EQ(resolve_static(root_, "/assets/app.js"), root_ / "assets" / "app.js");
    EXPECT_EQ(resolve_static(root_, "/assets/"), root_ / "assets" / "index.html");
    EXPECT_EQ(resolve_static(root_, "/assets//app.js"), root_ / "assets" / "app.js");
    EXPECT_EQ(resolve_static(root_, "/a%20b.txt"), root_ / "a b.txt");
}

TEST_F(StaticFiles, RefusesEverythingThatWouldLeaveTheRoot) {
    for (const char* target : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                               "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt", "/assets/..\\..\\secret.txt",
                               "/a%00b", "/%zz", "/%", "relative", "", "/escape.txt"})
        EXPECT_EQ(resolve_static(root_, target), std::nullopt) << target;
}

TEST(ContentType, ByExtension) {
    EXPECT_EQ(content_type("index.html"), "text/html; charset=utf-8");
    EXPECT_EQ(content_type("app.js"), "text/javascript; charset=utf-8");
    EXPECT_EQ(content_type("mod.mjs"), "text/javascript; charset=utf-8");
    EXPECT_EQ(content_type("client.wasm"), "application/wasm");
    EXPECT_EQ(content_type("style.css"), "text/css; charset=utf-8");
    EXPECT_EQ(content_type("data.json"), "application/json");
    EXPECT_EQ(content_type("logo.svg"), "image/svg+xml");
    EXPECT_EQ(content_type("blob.bin"), "application/octet-stream");
}

}  // namespace
}  // namespace hyperstreams::router
