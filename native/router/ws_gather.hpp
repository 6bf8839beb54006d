// The buffers of the WebSocket message that carries one outbox batch: the
// write path's choice between copying a frame and writing it in place.
//
// Beast writes a message as Asio's async_write of the frame header followed
// by the message's buffers, and Asio (Boost 1.81) hands the socket at most
// 16 buffers and 64 KiB per write_some: one sendmsg per 16 buffers. A frame
// in a buffer of its own therefore costs a system call per 15 frames, and a
// copy into one block costs a memmove per frame. Measured on the fan-out
// benchmark (docs/BENCHMARKS.md, issue 20): at 1 KiB the calls cost more (a
// batch of 32 took three sendmsg calls instead of one, and the copy halved
// the CPU per delivery); at 2,000 bytes the two cost the same; at 3,000 the
// copy cost more. Frames of 2 KiB and more are written from the block they
// share with their other recipients.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "outbox.hpp"

namespace hyperstreams::router {

// Frames under this size are copied into one block with their neighbours.
inline constexpr std::size_t copy_below = 2048;

// Replaces `out` with the buffers of one WebSocket message holding every
// frame of `batch` in order: runs of frames under copy_below as one buffer
// each in `scratch`, larger frames as their own. `out` views `scratch` and
// the batch's frames: both must outlive the write.
void gather(const outbox_batch& batch, std::vector<std::uint8_t>& scratch,
            std::vector<boost::asio::const_buffer>& out);

}  // namespace hyperstreams::router
