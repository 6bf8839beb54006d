// The messages routers that are one publish to each other on Redis pub/sub,
// written as a router (or Lua script) writes them, for the fuzz targets that
// feed them to a router (fuzz_router's redis_message step) or check their
// reader (fuzz_publication_batch). The formats are the product's:
// publication_batch.hpp, redis_log.hpp (one publication), redis_bus.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "publication_batch.hpp"

namespace hyperstreams::fuzzing {

inline void put_le(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// A batch's header; its `count` entries follow (batch_entry).
inline std::string batch_header(std::uint32_t epoch, std::uint64_t first_seq, std::uint32_t count) {
    std::string out{static_cast<char>(router::publication_batch_marker[0]),
                    static_cast<char>(router::publication_batch_marker[1])};
    put_le(out, epoch, 4);
    put_le(out, first_seq, 8);
    put_le(out, count, 4);
    return out;
}

inline void batch_entry(std::string& out, std::uint8_t flags, std::string_view payload) {
    out.push_back(static_cast<char>(flags));
    put_le(out, payload.size(), 4);
    out += payload;
}

// One publication, as the publish script sends it: [flags u8][epoch u32 LE][seq u64 LE][payload].
inline std::string one_publication(std::uint8_t flags, std::uint32_t epoch, std::uint64_t seq, std::string_view payload) {
    std::string out(1, static_cast<char>(flags));
    put_le(out, epoch, 4);
    put_le(out, seq, 8);
    out += payload;
    return out;
}

// A name of the router bus's messages: [length u8][bytes] (cut at 255).
inline void bus_name(std::string& out, std::string_view name) {
    if (name.size() > 255) name = name.substr(0, 255);
    out.push_back(static_cast<char>(name.size()));
    out += name;
}

}  // namespace hyperstreams::fuzzing
