// libFuzzer target: everything the router and the clients do with the bytes
// of one transport message from an untrusted peer before a state machine sees
// them. Any crash, sanitizer report, leak or broken invariant is a finding.
//
// Besides "no crash", it checks the contracts stated in the headers:
//   - a decoded frame re-encodes, and decoding that gives the same frame;
//   - a decoded control body re-encodes, and decoding that gives the same body;
//   - every valid channel is a valid pattern that matches itself, and ">"
//     matches every valid channel;
//   - split_service_method yields two non-empty parts around the one '/'.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "hyperstreams/body.hpp"
#include "hyperstreams/frame.hpp"
#include "hyperstreams/names.hpp"

namespace {

using namespace hyperstreams;

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_decode: invariant broken: %s\n", what);
        std::abort();
    }
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

bool same_methods(const std::vector<method_info>& a, const std::vector<method_info>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].kind != b[i].kind) return false;
    return true;
}

bool same_body(const hello_body& a, const hello_body& b) {
    return a.min_version == b.min_version && a.max_version == b.max_version &&
           a.role == b.role && a.name == b.name && a.token == b.token &&
           a.resume_session == b.resume_session;
}

bool same_body(const welcome_body& a, const welcome_body& b) {
    return a.version == b.version && a.session_id == b.session_id &&
           a.router_id == b.router_id && a.heartbeat_ms == b.heartbeat_ms &&
           a.max_payload == b.max_payload && a.max_subscriptions == b.max_subscriptions &&
           a.resumed == b.resumed;
}

bool same_body(const register_body& a, const register_body& b) {
    return same_methods(a.methods, b.methods);
}

bool same_body(const service_list_body& a, const service_list_body& b) {
    if (a.services.size() != b.services.size()) return false;
    for (std::size_t i = 0; i < a.services.size(); ++i) {
        const service_info& x = a.services[i];
        const service_info& y = b.services[i];
        if (x.name != y.name || x.instances != y.instances || !same_methods(x.methods, y.methods))
            return false;
    }
    return true;
}

template <typename Body>
void check_body(bytes_view payload) {
    Body body;
    if (decode_body(payload, body)) return;
    std::vector<std::uint8_t> encoded;
    require(!encode_body(body, encoded), "a decoded body encodes");
    Body again;
    require(!decode_body(encoded, again), "a re-encoded body decodes");
    require(same_body(body, again), "a body survives decode, encode, decode");
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
    while (reader.next(f)) {
        check_frame_round_trip(f);
        check_names(f.name);
        // Pairs of names from one batch exercise matching beyond the identity.
        if (is_valid_pattern(previous_name) && is_valid_channel(f.name))
            (void)pattern_matches(previous_name, f.name);
        previous_name = f.name;

        switch (f.kind) {
            case frame_kind::hello: check_body<hello_body>(f.payload); break;
            case frame_kind::welcome: check_body<welcome_body>(f.payload); break;
            case frame_kind::register_service: check_body<register_body>(f.payload); break;
            case frame_kind::service_list: check_body<service_list_body>(f.payload); break;
            default: break;
        }
    }
    require(reader.error() || reader.frames_read() > 0, "a batch yields a frame or an error");
    return 0;
}
