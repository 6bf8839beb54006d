#include "ws_frame_tracker.hpp"

#include <algorithm>

namespace hyperstreams::router {

void ws_frame_tracker::add(const std::uint8_t* p, std::size_t n) noexcept {
    while (n > 0) {
        at_message_end_ = false;
        if (in_payload_) {
            const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, n));
            payload_left_ -= take;
            p += take;
            n -= take;
            if (payload_left_ == 0) end_frame();
            continue;
        }
        header_[header_have_++] = *p++;
        --n;
        if (header_have_ == 2) {
            const std::uint8_t length7 = header_[1] & 0x7f;
            const bool masked = (header_[1] & 0x80) != 0;
            header_need_ = static_cast<std::uint8_t>(2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) +
                                                     (masked ? 4 : 0));
        }
        if (header_have_ < header_need_) continue;

        const std::uint8_t length7 = header_[1] & 0x7f;
        std::uint64_t length = length7;
        if (length7 == 126) {
            length = (std::uint64_t{header_[2]} << 8) | header_[3];
        } else if (length7 == 127) {
            length = 0;
            for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | header_[i];
        }
        const bool fin = (header_[0] & 0x80) != 0;
        const std::uint8_t opcode = header_[0] & 0x0f;
        ends_message_ = fin && opcode < 0x8;  // control frames are 0x8 and up
        header_have_ = 0;
        header_need_ = 2;
        payload_left_ = length;
        in_payload_ = length > 0;
        if (!in_payload_) end_frame();
    }
}

void ws_frame_tracker::end_frame() noexcept {
    in_payload_ = false;
    if (ends_message_) {
        ++messages_ended_;
        at_message_end_ = true;
    }
}

}  // namespace hyperstreams::router
