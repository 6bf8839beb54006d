// Follows the WebSocket frame boundaries (RFC 6455 section 5.2) in the bytes
// a connection reads from its socket, to answer one question: does the
// WebSocket stream above hold bytes it has read but not yet handed out?
//
// Beast reads up to 1,536 bytes at a time into a buffer of its own, so after
// it returned a message it may already hold the start of the next one, which
// no socket readiness would announce. The tracker sees every byte in order
// and counts the data messages whose last byte has arrived: when that count
// equals the messages the stream has returned and nothing came after the
// last one, the stream holds nothing, and waiting for the socket to become
// readable loses no data.
//
// It reads only the two to fourteen header bytes of each frame and skips
// payloads by their length. It does not validate: a malformed stream fails
// in the WebSocket layer, which ends the connection, and the tracker's
// answers no longer matter.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace hyperstreams::router {

class ws_frame_tracker {
public:
    // The next `n` bytes read from the socket.
    void add(const std::uint8_t* p, std::size_t n) noexcept;

    // True when the bytes read so far are exactly the first `messages` data
    // messages (with any control frames between them), the last one ending
    // with the last byte read.
    bool drained_after(std::uint64_t messages) const noexcept {
        return at_message_end_ && messages_ended_ == messages;
    }

    std::uint64_t messages_ended() const noexcept { return messages_ended_; }

private:
    void end_frame() noexcept;

    std::array<std::uint8_t, 14> header_{};
    std::uint8_t header_have_ = 0;
    std::uint8_t header_need_ = 2;
    bool in_payload_ = false;
    bool ends_message_ = false;  // the current frame is the final frame of a data message
    bool at_message_end_ = true;
    std::uint64_t payload_left_ = 0;
    std::uint64_t messages_ended_ = 0;
};

}  // namespace hyperstreams::router
