// libFuzzer target: the router's configuration file (config.hpp), as an
// operator writes it or a tool generates it. An input is the file's text.
//
// Besides "no crash", it checks:
//   - apply_json accepts the text or names what is wrong in one line;
//   - validate() passes a configuration or names its problem in one line;
//   - a configuration apply_json accepted is written by to_json (what
//     --print-config prints) as a file that apply_json accepts again and
//     that means the same (to_json of it is the same text).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config.hpp"
#include "log.hpp"
#include "script.hpp"

namespace {

using namespace hyperstreams::router;

void require(bool condition, const char* what) {
    if (!condition) hyperstreams::fuzzing::fail("fuzz_config", what);
}

bool one_line(const std::string& message) {
    return !message.empty() && message.find('\n') == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    hyperstreams::router::log::configure(log::level::off, log::format::text);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    router_config cfg;
    const std::string refused = apply_json(cfg, text);
    if (!refused.empty()) {
        require(one_line(refused), "a refused file's message is not one line");
        return 0;
    }
    const std::string problem = validate(cfg);
    require(problem.empty() || one_line(problem), "a configuration's problem is not one line");

    const std::string printed = to_json(cfg);
    router_config again;
    const std::string refused_again = apply_json(again, printed);
    require(refused_again.empty(), "what --print-config prints is not a file the router accepts");
    require(to_json(again) == printed, "what --print-config prints does not mean the same read back");
    require(validate(again) == problem, "what --print-config prints validates otherwise");
    return 0;
}
