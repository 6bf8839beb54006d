// The control-body contract the fuzz targets check (fuzz_decode on bodies
// inside frames, fuzz_bodies on bodies alone): a body that decodes
// re-encodes, decoding that gives the same body, and a service list and a
// presence list take the bytes encoded_size says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "hyperstreams/body.hpp"
#include "script.hpp"

namespace hyperstreams::fuzzing {

inline void require_body(bool condition, const char* what) {
    if (!condition) fail("control body", what);
}

inline bool same_methods(const std::vector<method_info>& a, const std::vector<method_info>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].kind != b[i].kind) return false;
    return true;
}

inline bool same_body(const hello_body& a, const hello_body& b) {
    return a.min_version == b.min_version && a.max_version == b.max_version &&
           a.role == b.role && a.name == b.name && a.token == b.token &&
           a.resume_session == b.resume_session;
}

inline bool same_body(const welcome_body& a, const welcome_body& b) {
    return a.version == b.version && a.session_id == b.session_id &&
           a.router_id == b.router_id && a.heartbeat_ms == b.heartbeat_ms &&
           a.max_payload == b.max_payload && a.max_subscriptions == b.max_subscriptions &&
           a.resumed == b.resumed;
}

inline bool same_body(const register_body& a, const register_body& b) {
    return same_methods(a.methods, b.methods);
}

inline bool same_body(const service_list_body& a, const service_list_body& b) {
    if (a.services.size() != b.services.size()) return false;
    for (std::size_t i = 0; i < a.services.size(); ++i) {
        const service_info& x = a.services[i];
        const service_info& y = b.services[i];
        if (x.name != y.name || x.instances != y.instances || !same_methods(x.methods, y.methods))
            return false;
    }
    return true;
}

inline bool same_body(const routers_body& a, const routers_body& b) {
    if (a.routers.size() != b.routers.size()) return false;
    for (std::size_t i = 0; i < a.routers.size(); ++i)
        if (a.routers[i].id != b.routers[i].id || a.routers[i].backend != b.routers[i].backend) return false;
    return true;
}

inline bool same_body(const presence_member& a, const presence_member& b) {
    return a.address == b.address && a.subject == b.subject && a.name == b.name;
}

inline bool same_body(const presence_list_body& a, const presence_list_body& b) {
    if (a.count != b.count || a.members.size() != b.members.size()) return false;
    for (std::size_t i = 0; i < a.members.size(); ++i)
        if (!same_body(a.members[i], b.members[i])) return false;
    return true;
}

// Decodes `payload` as a Body; when it decodes, checks the contract above.
template <typename Body>
void check_body(bytes_view payload) {
    Body body;
    if (decode_body(payload, body)) return;
    std::vector<std::uint8_t> encoded;
    require_body(!encode_body(body, encoded), "a decoded body encodes");
    if constexpr (std::is_same_v<Body, service_list_body>) {
        std::size_t size = service_list_header_size;
        for (const service_info& s : body.services) size += encoded_size(s);
        require_body(size == encoded.size(), "a service list takes the bytes encoded_size gives");
    }
    if constexpr (std::is_same_v<Body, presence_list_body>) {
        std::size_t size = presence_list_header_size;
        for (const presence_member& m : body.members) size += encoded_size(m);
        require_body(size == encoded.size(), "a presence list takes the bytes encoded_size gives");
    }
    Body again;
    require_body(!decode_body(encoded, again), "a re-encoded body decodes");
    require_body(same_body(body, again), "a body survives decode, encode, decode");
}

}  // namespace hyperstreams::fuzzing
