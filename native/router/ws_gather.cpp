#include "ws_gather.hpp"

namespace hyperstreams::router {
namespace {

// The end of the span that starts at `first`: the frames that follow one
// another in the same block.
template <class It>
It span_end(It first, It last, std::size_t& bytes) {
    bytes = first->size();
    It next = first + 1;
    for (; next != last && (next - 1)->followed_by(*next); ++next) bytes += next->size();
    return next;
}

}  // namespace

void gather(const outbox_batch& batch, std::vector<std::uint8_t>& scratch,
            std::vector<boost::asio::const_buffer>& out) {
    out.clear();
    scratch.clear();
    const auto first = batch.spans.begin();
    const auto last = batch.spans.end();
    std::size_t small = 0;
    std::size_t bytes = 0;
    for (auto it = first; it != last;) {
        const auto end = span_end(it, last, bytes);
        if (bytes < copy_below) small += bytes;
        it = end;
    }
    scratch.reserve(small);  // never reallocates below: `out` views it
    std::size_t run = 0;
    for (auto it = first; it != last;) {
        const auto end = span_end(it, last, bytes);
        if (bytes < copy_below) {
            for (; it != end; ++it) scratch.insert(scratch.end(), it->begin(), it->end());
            continue;
        }
        if (scratch.size() > run) out.emplace_back(scratch.data() + run, scratch.size() - run);
        run = scratch.size();
        out.emplace_back(it->data(), bytes);
        it = end;
    }
    if (scratch.size() > run) out.emplace_back(scratch.data() + run, scratch.size() - run);
}

}  // namespace hyperstreams::router
