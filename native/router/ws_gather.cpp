#include "ws_gather.hpp"

namespace hyperstreams::router {

void gather(const outbox_batch& batch, std::vector<std::uint8_t>& scratch,
            std::vector<boost::asio::const_buffer>& out) {
    out.clear();
    scratch.clear();
    std::size_t small = 0;
    for (const shared_bytes& f : batch.frames)
        if (f->size() < copy_below) small += f->size();
    scratch.reserve(small);  // never reallocates below: `out` views it
    std::size_t run = 0;
    for (const shared_bytes& f : batch.frames) {
        if (f->size() < copy_below) {
            scratch.insert(scratch.end(), f->begin(), f->end());
            continue;
        }
        if (scratch.size() > run) out.emplace_back(scratch.data() + run, scratch.size() - run);
        run = scratch.size();
        out.emplace_back(f->data(), f->size());
    }
    if (scratch.size() > run) out.emplace_back(scratch.data() + run, scratch.size() - run);
}

}  // namespace hyperstreams::router
