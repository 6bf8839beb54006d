// The ZeroMQ ROUTER endpoint for backends. Backends connect with DEALER
// sockets; every ZeroMQ message is [routing id][one batch of frames] (a
// DEALER sends and receives one part: the batch).
//
// The ROUTER socket is served by one of the router's Asio I/O threads: its
// ZMQ_FD (and those of the monitor and ZAP sockets) are watched by that
// thread's io_context, as the backend client does (native/client/
// zmq_transport.cpp), so a request from a WebSocket on the same thread
// reaches libzmq without a thread hand-off of the router's own. That thread
// runs the routing core (through core_runner) on every message it receives,
// then sends what the core queued for backends; a call to the core that
// queues frames for a backend posts a flush to it. It coalesces a backend's
// frames into one message per send.
//
// A session is bound to its connection, not to its routing id (which the
// peer may choose, and anyone may present): the ZAP handler numbers every
// connection during its handshake, libzmq puts the number on every message
// of the connection, and a number the router has not seen starts a new
// session, which must say hello first. The routing id only addresses what
// is sent; it is never shown (status, metrics, logs).
//
// A dead backend is found three ways: the socket monitor reports the end of
// its connection (by descriptor, which the session knows from its first
// message), a send fails with EHOSTUNREACH (ZMQ_ROUTER_MANDATORY: libzmq
// dropped the peer's pipe), and the protocol's heartbeat timeout for a
// backend whose TCP connection lives on but which answers nothing. ZeroMQ's
// own heartbeats (ZMQ_HEARTBEAT_IVL/TIMEOUT) close dead TCP connections
// underneath.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "config.hpp"
#include "core_runner.hpp"
#include "metrics.hpp"

namespace boost::asio {
class io_context;
}

namespace hyperstreams::router {

class zmq_transport {
public:
    // `io` serves the sockets; it is run by one thread only.
    zmq_transport(const router_config& cfg, metrics& m, core_runner& core, boost::asio::io_context& io);
    ~zmq_transport();
    zmq_transport(const zmq_transport&) = delete;
    zmq_transport& operator=(const zmq_transport&) = delete;

    // Binds the ROUTER socket; returns the bound endpoint (the real port for
    // tcp://HOST:* or :0). Throws std::runtime_error naming the problem.
    std::string bind(const std::string& endpoint);
    // Starts serving the sockets once `io` runs.
    void start();
    // Once `io` no longer runs: lets libzmq send what it holds (the
    // goodbyes) for at most `linger`, then closes the sockets.
    void stop(std::chrono::milliseconds linger);
    // Backends with a connection or unsent frames.
    std::size_t peer_count() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace hyperstreams::router
