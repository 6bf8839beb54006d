// hyperstreams-router: see --help, and docs/PROTOCOL.md for the wire format.
#include <cstdio>

#include "config.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
    using hyperstreams::router::config_result;
    const config_result r = hyperstreams::router::parse_command_line(argc, argv);
    switch (r.what) {
        case config_result::action::help:
            std::fputs(hyperstreams::router::help_text(argv[0]).c_str(), stdout);
            return 0;
        case config_result::action::version:
            std::printf("hyperstreams-router %s\n", HYPERSTREAMS_VERSION);
            return 0;
        case config_result::action::print_config:
            std::printf("%s\n", hyperstreams::router::to_json(r.config).c_str());
            return 0;
        case config_result::action::fail:
            std::fprintf(stderr, "hyperstreams-router: %s\n", r.error.c_str());
            return 2;
        case config_result::action::run:
            break;
    }
    return hyperstreams::router::run_server(r.config);
}
