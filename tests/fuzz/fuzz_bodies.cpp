// libFuzzer target: every decoder of a control body, on bytes alone (a
// frame around them, as fuzz_decode needs, only costs the fuzzer length
// fields to get right). The first byte picks the decoder: hello,
// welcome, register_service, service_list, routers, a presence member (join,
// leave), presence_list, a publish's options (the next byte is the
// publish's flags), or a cancel's reason; the rest is the body.
//
// Besides "no crash", it checks the contract of body_checks.hpp, and that
// a cancel's reason is cancelled unless the payload is exactly a code,
// which write_cancel_reason writes back as it was, and that publish
// options that decode are written back, with their message, as they came.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "body_checks.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"

namespace {

using namespace hyperstreams;

void check_cancel_reason(bytes_view payload) {
    frame cancel;
    cancel.kind = frame_kind::cancel;
    cancel.payload = payload;
    const std::uint16_t code = cancel_reason(cancel);
    if (payload.size() != cancel_reason_size) {
        fuzzing::require_body(code == static_cast<std::uint16_t>(errc::cancelled),
                              "a cancel without a code is the caller's own");
        return;
    }
    std::uint8_t again[cancel_reason_size];
    write_cancel_reason(code, again);
    fuzzing::require_body(again[0] == payload[0] && again[1] == payload[1], "a cancel's code is written back as read");
}

void check_publish_options(bytes_view in) {
    if (in.empty()) return;
    const std::uint8_t flags = in[0];
    const bytes_view payload = in.subspan(1);
    publish_options o;
    bytes_view message;
    if (decode_publish_options(flags, payload, o, message)) return;
    fuzzing::require_body(publish_option_flags(o) == (flags & (frame_flags::idempotency_key | frame_flags::ttl)),
                          "publish options say which flags they need");
    std::vector<std::uint8_t> again;
    fuzzing::require_body(!encode_publish_payload(o, message, again), "decoded publish options encode");
    fuzzing::require_body(again.size() == payload.size() && std::equal(again.begin(), again.end(), payload.begin()),
                          "publish options and message are written back as read");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bytes_view body(data + 1, size - 1);
    switch (data[0] % 9) {
        case 0: fuzzing::check_body<hello_body>(body); break;
        case 1: fuzzing::check_body<welcome_body>(body); break;
        case 2: fuzzing::check_body<register_body>(body); break;
        case 3: fuzzing::check_body<service_list_body>(body); break;
        case 4: fuzzing::check_body<routers_body>(body); break;
        case 5: fuzzing::check_body<presence_member>(body); break;
        case 6: fuzzing::check_body<presence_list_body>(body); break;
        case 7: check_publish_options(body); break;
        default: check_cancel_reason(body); break;
    }
    return 0;
}
