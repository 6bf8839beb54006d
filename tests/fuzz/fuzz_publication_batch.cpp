// libFuzzer target: the batch of publications a router reads from Redis
// pub/sub (publication_batch.hpp), which any client of the Redis server may
// publish on a channel's pub/sub channel.
//
// Two checks on every input:
//   - as a message: read_publication_batch accepts it or refuses it; what it
//     accepts, written again from what it read (header, then each entry
//     take_batch_entry gives), is the input byte for byte, and the seqs it
//     names do not wrap;
//   - as the makings of one: the input cut into payloads (each a length
//     byte, then that many bytes) is written as a batch, which must be
//     accepted and give back those payloads, in order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "publication_batch.hpp"
#include "redis_messages.hpp"
#include "script.hpp"

namespace {

using namespace hyperstreams::router;

void require(bool condition, const char* what) {
    if (!condition) hyperstreams::fuzzing::fail("fuzz_publication_batch", what);
}

using hyperstreams::fuzzing::batch_entry;
using hyperstreams::fuzzing::batch_header;

void as_message(std::string_view input) {
    publication_batch b;
    if (read_publication_batch(input, b)) return;
    require(b.count > 0 && b.epoch != 0 && b.first_seq != 0, "accepted an empty batch or a zero position");
    require(b.first_seq + (b.count - 1) >= b.first_seq, "accepted seqs that wrap");
    std::string again = batch_header(b.epoch, b.first_seq, b.count);
    std::string_view entries = b.entries;
    for (std::uint32_t i = 0; i < b.count; ++i) {
        const batched_publication p = take_batch_entry(entries);
        batch_entry(again, p.flags, p.payload);
    }
    require(entries.empty(), "entries left after count");
    require(again == input, "a batch read is not its bytes written again");
}

void as_makings(std::string_view input) {
    std::vector<std::string_view> payloads;
    for (std::size_t at = 0; at < input.size();) {
        const std::size_t length = std::min<std::size_t>(static_cast<unsigned char>(input[at]), input.size() - at - 1);
        payloads.push_back(input.substr(at + 1, length));
        at += 1 + length;
    }
    if (payloads.empty()) return;
    const auto count = static_cast<std::uint32_t>(payloads.size());
    std::string message = batch_header(7, 0xFFFFFFFFFFFFFFFFull - count + 1, count);
    for (std::size_t i = 0; i < payloads.size(); ++i) batch_entry(message, static_cast<std::uint8_t>(i), payloads[i]);
    publication_batch b;
    require(!read_publication_batch(message, b), "a batch written whole was refused");
    require(b.count == count && b.epoch == 7, "a batch's header read wrong");
    std::string_view entries = b.entries;
    for (std::size_t i = 0; i < payloads.size(); ++i) {
        const batched_publication p = take_batch_entry(entries);
        require(p.flags == static_cast<std::uint8_t>(i) && p.payload == payloads[i], "an entry read wrong");
    }
    require(entries.empty(), "entries left after count");
    message.pop_back();
    require(static_cast<bool>(read_publication_batch(message, b)), "a batch cut short was accepted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    as_message(input);
    as_makings(input);
    return 0;
}
