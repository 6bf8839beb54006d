// The whole router process: the routing core (core_runner: run by the
// threads that receive input, plus a thread for its timer), the worker
// threads with their io_contexts (HTTP/WebSocket; the first one also serves
// the ZeroMQ socket), and the signal handling that drains it all on SIGTERM/SIGINT.
#pragma once

#include "config.hpp"

namespace hyperstreams::router {

// Binds the endpoints, prints one line on stdout naming them
//   hyperstreams-router ready http=127.0.0.1:7070 ws=ws://127.0.0.1:7070/ws backend=tcp://127.0.0.1:7071 admin=127.0.0.1:7072
// (admin= is where /metrics and /status are: an address, or "off") and runs
// until a signal drains it. Returns the process exit code: 0 after a drain,
// 1 when an endpoint cannot be bound or a file named by the settings is unusable.
int run_server(const router_config& cfg);

}  // namespace hyperstreams::router
