// A caller written as an Asio coroutine on its own io_context: asks
// factory/machines for the list, then factory/machine for each one, and
// prints each answer (or the named error) on a line. Exits 0 when every call
// succeeded.
//
//   coroutine_caller [ROUTER_URL]
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <hyperstreams/backend.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

namespace asio = boost::asio;
namespace hs = hyperstreams::backend;

namespace {

asio::awaitable<int> list_machines(hs::client& hs) {
    const hs::response list = co_await hs.request("factory", "machines", {}, asio::use_awaitable);
    if (list.error) {
        std::cout << "machines: " << hyperstreams::errc_name(static_cast<std::uint16_t>(list.error.value())) << ' '
                  << list.error_text << std::endl;
        co_return 1;
    }
    std::cout << "machines: " << list.data.text() << std::endl;
    int failed = 0;
    for (const auto& name : nlohmann::json::parse(list.data.text())) {
        const hs::response machine =
            co_await hs.request("factory", "machine", name.get<std::string>(), asio::use_awaitable);
        if (machine.error) ++failed;
        std::cout << name.get<std::string>() << ": "
                  << (machine.error ? std::string(hyperstreams::errc_name(
                                          static_cast<std::uint16_t>(machine.error.value())))
                                    : std::string(machine.data.text()))
                  << std::endl;
    }
    co_return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    asio::io_context io;
    // The client's connection runs on this io_context too: one thread for all.
    hs::client hs({.url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7071", .name = "caller", .io_context = &io});
    hs.start();
    int status = 1;
    asio::co_spawn(io, list_machines(hs), [&](std::exception_ptr, int result) {
        status = result;
        hs.close();  // on the io_context's thread: starts closing, and io.run() returns once it is done
    });
    io.run();
    return status;
}
