// The buffers of the WebSocket message that carries one outbox batch: the
// write path's choice between copying a frame and writing it in place.
//
// A message is written as Asio's async_write of the frame header followed
// by the message's buffers (by Beast under TLS or permessage-deflate, past
// Beast otherwise: tracked_socket in ws_session.cpp), and Asio (Boost 1.81)
// hands the socket at most 16 buffers per write_some (and, through Beast,
// at most 64 KiB): one sendmsg per 16 buffers. A frame
// in a buffer of its own therefore costs a system call per 15 frames, and a
// copy into one block costs a memmove per frame. Measured on the fan-out
// benchmark (docs/BENCHMARKS.md, issue 20): at 1 KiB the calls cost more (a
// batch of 32 took three sendmsg calls instead of one, and the copy halved
// the CPU per delivery); at 2,000 bytes the two cost the same; at 3,000 the
// copy cost more.
//
// So the unit is a span: frames that follow one another in the same shared
// block, which is what a subscriber holds of a run of messages (the core
// lays a run's frames out in one block: frame_run::laid_out, and
// outbox::take hands them over as one slice of it), or else one frame. A span of 2 KiB and more is one buffer pointing into the
// block it shares with its other recipients, however many frames it holds:
// a subscriber that received a whole run writes it with no copy of its own.
// Smaller spans (a lone small frame, control frames, what a drop left of a
// run) are copied side by side into the session's scratch block, so every
// buffer but the copies' holds at least 2 KiB and a batch needs few calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "outbox.hpp"

namespace hyperstreams::router {

// Spans under this size are copied into one block with their neighbours.
inline constexpr std::size_t copy_below = 2048;

// Replaces `out` with the buffers of one WebSocket message holding every
// frame of `batch` in order: spans of copy_below bytes and more as one
// buffer each in their block, the smaller ones between them copied as one
// buffer in `scratch`. `out` views `scratch` and the batch's spans: both
// must outlive the write.
void gather(const outbox_batch& batch, std::vector<std::uint8_t>& scratch,
            std::vector<boost::asio::const_buffer>& out);

}  // namespace hyperstreams::router
