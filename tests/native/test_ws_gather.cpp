// ws_gather: the buffers a batch is written from, counted in the write_some
// calls Asio makes for them when Beast writes the message.
#include <gtest/gtest.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ws_gather.hpp"

namespace hyperstreams::router {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

// A blocking stream that takes every write_some whole and records each call:
// one call here is one sendmsg on a socket with room in its buffer.
struct counting_stream {
    std::vector<std::size_t> calls;  // bytes of each write_some
    std::vector<std::uint8_t> written;

    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
        ec = {};
        std::size_t n = 0;
        for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
            const asio::const_buffer b = *it;
            const auto* p = static_cast<const std::uint8_t*>(b.data());
            written.insert(written.end(), p, p + b.size());
            n += b.size();
        }
        calls.push_back(n);
        return n;
    }
    template <class ConstBuffers>
    std::size_t write_some(const ConstBuffers& buffers) {
        boost::system::error_code ec;
        return write_some(buffers, ec);
    }
};

// A server's (unmasked) binary frame header for `length` payload bytes.
std::vector<std::uint8_t> ws_header(std::size_t length) {
    std::vector<std::uint8_t> h{0x82};
    if (length < 126) {
        h.push_back(static_cast<std::uint8_t>(length));
    } else if (length <= 0xffff) {
        h.push_back(126);
        h.push_back(static_cast<std::uint8_t>(length >> 8));
        h.push_back(static_cast<std::uint8_t>(length));
    } else {
        h.push_back(127);
        for (int shift = 56; shift >= 0; shift -= 8) h.push_back(static_cast<std::uint8_t>(length >> shift));
    }
    return h;
}

// Writes `buffers` as one WebSocket message the way Beast 1.81's
// websocket::stream::async_write does for a server without compression
// (websocket/impl/write.hpp, do_nomask_nofrag): one asio::write of the
// header followed by the message's buffers.
counting_stream write_message(const std::vector<asio::const_buffer>& buffers) {
    const std::vector<std::uint8_t> header = ws_header(asio::buffer_size(buffers));
    const beast::buffers_suffix<std::vector<asio::const_buffer>> cb(buffers);
    counting_stream s;
    boost::system::error_code ec;
    asio::write(s,
                beast::buffers_cat(asio::const_buffer(header.data(), header.size()), asio::const_buffer(nullptr, 0),
                                   cb, beast::buffers_prefix(0, cb)),
                ec);
    EXPECT_FALSE(ec);
    return s;
}

// A batch of message frames with these payload sizes, in order; each payload
// byte says which frame it belongs to.
outbox_batch batch_of(const std::vector<std::size_t>& payloads) {
    outbox_batch b;
    std::uint64_t seq = 1;
    for (std::size_t size : payloads) {
        std::vector<std::uint8_t> body(size, static_cast<std::uint8_t>(seq));
        frame f;
        f.kind = frame_kind::message;
        f.name = "bench.fanout";
        f.epoch = 1;
        f.seq = seq++;
        f.payload = body;
        shared_bytes bytes = encode_shared(f);
        b.bytes += bytes->size();
        b.spans.push_back(std::move(bytes));
    }
    return b;
}

std::vector<std::uint8_t> concatenation(const outbox_batch& b) {
    std::vector<std::uint8_t> out;
    for (const shared_bytes& f : b.spans) out.insert(out.end(), f->begin(), f->end());
    return out;
}

// `buffers` write one WebSocket message of `batch`'s bytes; how the writes went.
counting_stream expect_written(const outbox_batch& batch, const std::vector<asio::const_buffer>& buffers) {
    const counting_stream s = write_message(buffers);
    std::vector<std::uint8_t> expected = ws_header(batch.bytes);
    const std::vector<std::uint8_t> frames = concatenation(batch);
    expected.insert(expected.end(), frames.begin(), frames.end());
    EXPECT_EQ(s.written, expected);
    return s;
}

// What one write_some can carry at most (Asio's transfer_all).
constexpr std::size_t most_per_call = 65536;

std::size_t fewest_calls(std::size_t bytes) { return (bytes + most_per_call - 1) / most_per_call; }

TEST(WsGather, ABatchOfKilobyteMessagesIsOneWrite) {
    // The fan-out benchmark's batch at 1,000 subscribers x 1 KiB.
    const outbox_batch batch = batch_of(std::vector<std::size_t>(32, 1024));
    std::vector<std::uint8_t> scratch;
    std::vector<asio::const_buffer> buffers;
    gather(batch, scratch, buffers);
    EXPECT_EQ(expect_written(batch, buffers).calls.size(), 1u);
}

TEST(WsGather, LargeFramesAreWrittenFromTheirSharedBlocks) {
    const outbox_batch batch = batch_of({5000, 100, 200, 70000, 4096, 10});
    std::vector<std::uint8_t> scratch;
    std::vector<asio::const_buffer> buffers;
    gather(batch, scratch, buffers);
    // 5000, [100 200], 70000, 4096, [10]: the small ones copied in runs.
    ASSERT_EQ(buffers.size(), 5u);
    EXPECT_EQ(buffers[0].data(), batch.spans[0]->data());
    EXPECT_EQ(buffers[2].data(), batch.spans[3]->data());
    EXPECT_EQ(buffers[3].data(), batch.spans[4]->data());
    EXPECT_EQ(scratch.size(), batch.spans[1]->size() + batch.spans[2]->size() + batch.spans[5]->size());
    expect_written(batch, buffers);
}

// Whatever the frames' size, a batch takes at most twice the write_some
// calls its bytes need.
TEST(WsGather, NoBatchTakesMoreThanTwiceTheFewestWrites) {
    const std::vector<std::vector<std::size_t>> batches = {
        std::vector<std::size_t>(1000, 64),
        std::vector<std::size_t>(100, 1024),
        std::vector<std::size_t>(32, 1024),
        std::vector<std::size_t>(200, 2000),
        std::vector<std::size_t>(100, 2100),
        std::vector<std::size_t>(100, 3000),
        std::vector<std::size_t>(60, 4000),
        std::vector<std::size_t>(60, 4096),
        std::vector<std::size_t>(40, 16384),
        std::vector<std::size_t>(4, 65536),
        {10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096,
         10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096, 10, 4096},
    };
    for (const auto& payloads : batches) {
        const outbox_batch batch = batch_of(payloads);
        std::vector<std::uint8_t> scratch;
        std::vector<asio::const_buffer> buffers;
        gather(batch, scratch, buffers);
        const counting_stream s = write_message(buffers);
        const std::size_t total = ws_header(batch.bytes).size() + batch.bytes;
        EXPECT_EQ(s.written.size(), total);
        EXPECT_LE(s.calls.size(), 2 * fewest_calls(total))
            << payloads.size() << " frames, the first of " << payloads.front() << " payload bytes";
    }
}

// The frames of a run, laid out in one block as the core hands a run over
// (frame_run::laid_out), as the slices a subscriber's batch holds.
outbox_batch run_of(const std::vector<std::size_t>& payloads) {
    outbox_batch b = batch_of(payloads);
    lay_out(b.spans);
    return b;
}

// `b`'s frames but those at `dropped`, as a batch after the outbox dropped them.
outbox_batch without(const outbox_batch& b, const std::vector<std::size_t>& dropped) {
    outbox_batch out;
    for (std::size_t i = 0; i < b.spans.size(); ++i) {
        if (std::find(dropped.begin(), dropped.end(), i) != dropped.end()) continue;
        out.bytes += b.spans[i].size();
        out.spans.push_back(b.spans[i]);
    }
    return out;
}

TEST(WsGather, AWholeRunIsOneBufferIntoItsSharedBlock) {
    for (const std::size_t payload : {std::size_t{64}, std::size_t{1024}}) {
        const outbox_batch batch = run_of(std::vector<std::size_t>(32, payload));
        std::vector<std::uint8_t> scratch;
        std::vector<asio::const_buffer> buffers;
        gather(batch, scratch, buffers);
        ASSERT_EQ(buffers.size(), 1u) << payload;
        EXPECT_EQ(buffers[0].data(), batch.spans.front()->data()) << "no copy: the block itself";
        EXPECT_EQ(buffers[0].size(), batch.bytes);
        EXPECT_TRUE(scratch.empty());
        expect_written(batch, buffers);
    }
}

TEST(WsGather, SlicesSplitWhereTheyStopFollowingOneAnother) {
    const outbox_batch run = run_of(std::vector<std::size_t>(10, 1024));
    std::vector<std::uint8_t> scratch;
    std::vector<asio::const_buffer> buffers;

    // A message dropped in the middle: two spans of the block.
    const outbox_batch holed = without(run, {3});
    gather(holed, scratch, buffers);
    ASSERT_EQ(buffers.size(), 2u);
    EXPECT_EQ(buffers[0].data(), run.spans[0]->data());
    EXPECT_EQ(buffers[0].size(), 3 * run.spans[0].size());
    EXPECT_EQ(buffers[1].data(), run.spans[4]->data());
    EXPECT_EQ(buffers[1].size(), 6 * run.spans[0].size());
    EXPECT_TRUE(scratch.empty());
    expect_written(holed, buffers);

    // A control frame between two parts of the run, and a lone slice left
    // of its start: the small ones copied, the spans in place.
    outbox_batch mixed = without(run, {1, 2, 3});
    const outbox_batch ack = batch_of({10});
    mixed.spans.insert(mixed.spans.begin() + 4, ack.spans.front());
    mixed.bytes += ack.bytes;
    gather(mixed, scratch, buffers);
    // [0], span 4-6, [ack], span 7-9
    ASSERT_EQ(buffers.size(), 4u);
    EXPECT_EQ(buffers[0].data(), scratch.data());
    EXPECT_EQ(buffers[1].data(), run.spans[4]->data());
    EXPECT_EQ(buffers[1].size(), 3 * run.spans[0].size());
    EXPECT_EQ(buffers[2].data(), scratch.data() + run.spans[0].size());
    EXPECT_EQ(buffers[3].data(), run.spans[7]->data());
    EXPECT_EQ(scratch.size(), run.spans[0].size() + ack.bytes);
    expect_written(mixed, buffers);

    // Two runs, one after the other: their blocks are not one span.
    outbox_batch two = run_of(std::vector<std::size_t>(4, 1024));
    const outbox_batch second = run_of(std::vector<std::size_t>(4, 1024));
    two.spans.insert(two.spans.end(), second.spans.begin(), second.spans.end());
    two.bytes += second.bytes;
    gather(two, scratch, buffers);
    ASSERT_EQ(buffers.size(), 2u);
    EXPECT_EQ(buffers[0].data(), two.spans[0]->data());
    EXPECT_EQ(buffers[1].data(), second.spans[0]->data());
    expect_written(two, buffers);
}

// Asio hands the socket 16 buffers per write_some: a whole run written in
// place takes the fewest calls its bytes need, and one with holes at most
// twice that, as any batch (the holes leave small slices copied and large
// ones each in a buffer).
TEST(WsGather, ARunsSlicesTakeTheFewestWrites) {
    const std::vector<std::vector<std::size_t>> runs = {
        std::vector<std::size_t>(40, 2100),
        std::vector<std::size_t>(200, 1024),
        std::vector<std::size_t>(1000, 64),
    };
    for (const auto& payloads : runs) {
        const outbox_batch run = run_of(payloads);
        std::vector<std::size_t> every_other;
        for (std::size_t i = 1; i < payloads.size(); i += 2) every_other.push_back(i);
        for (const bool whole : {true, false}) {
            const outbox_batch batch = whole ? run : without(run, every_other);
            std::vector<std::uint8_t> scratch;
            std::vector<asio::const_buffer> buffers;
            gather(batch, scratch, buffers);
            const counting_stream s = write_message(buffers);
            const std::size_t total = ws_header(batch.bytes).size() + batch.bytes;
            EXPECT_EQ(s.written.size(), total);
            EXPECT_LE(s.calls.size(), (whole ? 1 : 2) * fewest_calls(total))
                << batch.spans.size() << " frames of " << payloads.front() << " payload bytes";
        }
    }
}

}  // namespace
}  // namespace hyperstreams::router
