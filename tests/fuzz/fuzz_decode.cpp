// libFuzzer target: everything the router and the clients do with the bytes
// of one transport message from an untrusted peer before a state machine sees
// them. Any crash, sanitizer report, leak or broken invariant is a finding.
//
// Besides "no crash", it checks the contracts stated in the headers:
//   - a decoded frame re-encodes, and decoding that gives the same frame;
//   - the in-place helpers agree with the decoder: encoded_frame_size is
//     the size decoded, and add_flags and set_deadline change that one
//     field of a copy (set_deadline only for the kinds that carry one);
//   - a decoded control body re-encodes, and decoding that gives the same
//     body (body_checks.hpp);
//   - every valid channel is a valid pattern that matches itself, and ">"
//     matches every valid channel;
//   - split_service_method yields two non-empty parts around the one '/'.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "body_checks.hpp"
#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"
#include "hyperstreams/names.hpp"
#include "script.hpp"

namespace {

using namespace hyperstreams;

void require(bool condition, const char* what) {
    if (!condition) fuzzing::fail("fuzz_decode", what);
}

bool same_bytes(bytes_view a, bytes_view b) {
    return std::string_view(reinterpret_cast<const char*>(a.data()), a.size()) ==
           std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

bool same_frame(const frame& a, const frame& b) {
    return a.kind == b.kind && a.flags == b.flags && a.id == b.id && a.name == b.name &&
           same_bytes(a.payload, b.payload) && a.epoch == b.epoch && a.seq == b.seq &&
           a.count == b.count && a.deadline_ms == b.deadline_ms && a.credit == b.credit &&
           a.code == b.code;
}

void check_frame_round_trip(const frame& f) {
    std::vector<std::uint8_t> encoded;
    require(!append(encoded, f), "a decoded frame encodes");
    require(encoded.size() == encoded_size(f), "encoded_size matches the encoding");
    frame again;
    std::size_t consumed = 0;
    const decode_limits no_cap{UINT32_MAX, UINT32_MAX};
    require(!decode(encoded, again, consumed, no_cap), "a re-encoded frame decodes");
    require(consumed == encoded.size(), "a re-encoded frame is consumed whole");
    require(same_frame(f, again), "a frame survives decode, encode, decode");
}

frame decode_copy(const std::vector<std::uint8_t>& bytes) {
    frame f;
    std::size_t consumed = 0;
    require(!decode(bytes, f, consumed, decode_limits{UINT32_MAX, UINT32_MAX}), "a changed copy decodes");
    return f;
}

// `encoded`: the bytes `f` was decoded from.
void check_in_place(const frame& f, bytes_view encoded) {
    require(encoded_frame_size(encoded) == encoded_size(f), "encoded_frame_size is the size decoded");
    const std::vector<std::uint8_t> original(encoded.begin(), encoded.begin() + static_cast<std::ptrdiff_t>(encoded_size(f)));

    std::vector<std::uint8_t> copy = original;
    const auto flags = static_cast<std::uint8_t>(f.id);
    require(!add_flags(copy, flags), "add_flags sets flags on a frame");
    frame expected = f;
    expected.flags = static_cast<std::uint8_t>(f.flags | flags);
    require(same_frame(decode_copy(copy), expected), "add_flags changes the flags alone");

    copy = original;
    const std::uint32_t deadline = ~f.deadline_ms;
    const std::error_code ec = set_deadline(copy, deadline);
    if (f.kind == frame_kind::request || f.kind == frame_kind::stream_open) {
        require(!ec, "set_deadline sets the deadline of a call");
        expected = f;
        expected.deadline_ms = deadline;
        require(same_frame(decode_copy(copy), expected), "set_deadline changes the deadline alone");
    } else {
        require(ec == errc::invalid_argument && copy == original, "set_deadline refuses other kinds and writes nothing");
    }
}

void check_names(std::string_view name) {
    if (is_valid_channel(name)) {
        require(is_valid_pattern(name), "a valid channel is a valid pattern");
        require(pattern_matches(name, name), "a channel matches itself as a pattern");
        require(pattern_matches(">", name), "\">\" matches every channel");
    }
    service_method sm;
    if (split_service_method(name, sm)) {
        require(!sm.service.empty() && !sm.method.empty(), "service and method are non-empty");
        require(sm.service.size() + 1 + sm.method.size() == name.size() &&
                    name[sm.service.size()] == '/',
                "service/method split at the one slash");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const bytes_view input(data, size);
    batch_reader reader(input);
    frame f;
    std::string_view previous_name;
    std::size_t offset = 0;
    while (reader.next(f)) {
        check_frame_round_trip(f);
        check_in_place(f, input.subspan(offset));
        offset += encoded_size(f);
        check_names(f.name);
        // Pairs of names from one batch exercise matching beyond the identity.
        if (is_valid_pattern(previous_name) && is_valid_channel(f.name))
            (void)pattern_matches(previous_name, f.name);
        previous_name = f.name;

        switch (f.kind) {
            case frame_kind::hello: fuzzing::check_body<hello_body>(f.payload); break;
            case frame_kind::welcome: fuzzing::check_body<welcome_body>(f.payload); break;
            case frame_kind::register_service: fuzzing::check_body<register_body>(f.payload); break;
            case frame_kind::service_list: fuzzing::check_body<service_list_body>(f.payload); break;
            case frame_kind::presence_list: fuzzing::check_body<presence_list_body>(f.payload); break;
            case frame_kind::join:
            case frame_kind::leave: fuzzing::check_body<presence_member>(f.payload); break;
            default: break;
        }
    }
    require(reader.error() || reader.frames_read() > 0, "a batch yields a frame or an error");
    return 0;
}
