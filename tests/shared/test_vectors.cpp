// The golden vectors of tests/vectors (written by an independent Python
// implementation) against the C++ codec: encoding the fields gives exactly the
// bytes, decoding the bytes gives exactly the fields, every malformed input
// fails with its named code, and decoding never allocates.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyperstreams/body.hpp"
#include "hyperstreams/errc.hpp"
#include "hyperstreams/frame.hpp"

#ifndef HYPERSTREAMS_VECTORS_DIR
#error "HYPERSTREAMS_VECTORS_DIR must name the tests/vectors directory as a string literal"
#endif

// Every allocation of this test binary goes through here, so a test can prove
// a code path allocates nothing. Single-threaded by design (wasm has no threads
// in this build), so a plain counter is enough.
namespace {
std::size_t allocations = 0;
}  // namespace

// noinline: GCC otherwise inlines the free() into callers and mistakes the
// malloc/free pairing of this replacement for a new/free mismatch.
[[gnu::noinline]] void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    std::abort();
}
[[gnu::noinline]] void* operator new[](std::size_t size) { return ::operator new(size); }
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace hs = hyperstreams;
using json = nlohmann::json;

namespace {

json load(const char* file) {
    std::ifstream in(std::string(HYPERSTREAMS_VECTORS_DIR) + "/" + file);
    if (!in) return json::object();
    return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

const json& good_file() {
    static const json j = load("frames.json");
    return j;
}

const json& bad_file() {
    static const json j = load("bad_frames.json");
    return j;
}

std::vector<json> vectors_of(const json& file) {
    std::vector<json> out;
    if (file.is_object() && file.contains("vectors"))
        for (const json& v : file["vectors"]) out.push_back(v);
    return out;
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        ADD_FAILURE() << "not a lowercase hex digit: " << c;
        return 0;
    };
    EXPECT_EQ(hex.size() % 2, 0u);
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    return out;
}

std::string to_hex(hs::bytes_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::uint8_t b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 0xF];
    }
    return out;
}

std::optional<hs::frame_kind> kind_from_name(const std::string& name) {
    for (int k = 0; k < 256; ++k) {
        auto kind = static_cast<hs::frame_kind>(k);
        if (hs::is_known_kind(static_cast<std::uint8_t>(k)) && hs::kind_name(kind) == name)
            return kind;
    }
    return std::nullopt;
}

std::optional<hs::errc> errc_from_name(const std::string& name) {
    for (int v = 1; v <= std::numeric_limits<std::uint16_t>::max(); ++v)
        if (hs::errc_name(static_cast<std::uint16_t>(v)) == name) return static_cast<hs::errc>(v);
    return std::nullopt;
}

std::vector<std::uint8_t> payload_of(const json& f) {
    if (f.contains("payload_hex")) return from_hex(f["payload_hex"].get<std::string>());
    const std::string text = f["payload_text"].get<std::string>();
    return {text.begin(), text.end()};
}

hs::client_role role_from(const json& v) {
    return v == "backend" ? hs::client_role::backend : hs::client_role::frontend;
}
std::string role_name(hs::client_role r) {
    return r == hs::client_role::backend ? "backend" : "frontend";
}
hs::method_kind method_kind_from(const json& v) {
    return v == "stream" ? hs::method_kind::stream : hs::method_kind::unary;
}
std::string method_kind_name(hs::method_kind k) {
    return k == hs::method_kind::stream ? "stream" : "unary";
}

std::vector<hs::method_info> methods_from(const json& j) {
    std::vector<hs::method_info> out;
    for (const json& m : j)
        out.push_back({m["name"].get_ref<const std::string&>(), method_kind_from(m["kind"])});
    return out;
}

json methods_to_json(const std::vector<hs::method_info>& methods) {
    json out = json::array();
    for (const hs::method_info& m : methods)
        out.push_back({{"name", std::string(m.name)}, {"kind", method_kind_name(m.kind)}});
    return out;
}

hs::presence_member member_from(const json& m) {
    return {m["address"].get_ref<const std::string&>(), m["subject"].get_ref<const std::string&>(),
            m["name"].get_ref<const std::string&>()};
}

json member_to_json(const hs::presence_member& m) {
    return {{"address", std::string(m.address)}, {"subject", std::string(m.subject)}, {"name", std::string(m.name)}};
}

// Encodes the `body` fields of a control frame with the C++ body encoder.
std::vector<std::uint8_t> encode_body_from(hs::frame_kind kind, const json& b) {
    std::vector<std::uint8_t> out;
    std::error_code ec;
    switch (kind) {
        case hs::frame_kind::hello: {
            hs::hello_body h;
            h.min_version = b["min_version"];
            h.max_version = b["max_version"];
            h.role = role_from(b["role"]);
            h.name = b["name"].get_ref<const std::string&>();
            h.token = b["token"].get_ref<const std::string&>();
            h.resume_session = b["resume_session"].get_ref<const std::string&>();
            ec = hs::encode_body(h, out);
            break;
        }
        case hs::frame_kind::welcome: {
            hs::welcome_body w;
            w.version = b["version"];
            w.session_id = b["session_id"].get_ref<const std::string&>();
            w.router_id = b["router_id"].get_ref<const std::string&>();
            w.heartbeat_ms = b["heartbeat_ms"];
            w.max_payload = b["max_payload"];
            w.max_subscriptions = b["max_subscriptions"];
            w.resumed = b["resumed"];
            ec = hs::encode_body(w, out);
            break;
        }
        case hs::frame_kind::register_service: {
            hs::register_body r;
            r.methods = methods_from(b["methods"]);
            ec = hs::encode_body(r, out);
            break;
        }
        case hs::frame_kind::service_list: {
            hs::service_list_body l;
            for (const json& s : b["services"])
                l.services.push_back({s["name"].get_ref<const std::string&>(), s["instances"],
                                      methods_from(s["methods"])});
            ec = hs::encode_body(l, out);
            break;
        }
        case hs::frame_kind::routers: {
            hs::routers_body r;
            for (const json& e : b["routers"])
                r.routers.push_back({e["id"].get_ref<const std::string&>(), e["backend"].get_ref<const std::string&>()});
            ec = hs::encode_body(r, out);
            break;
        }
        case hs::frame_kind::presence_list: {
            hs::presence_list_body l;
            l.count = b["count"];
            for (const json& m : b["members"]) l.members.push_back(member_from(m));
            ec = hs::encode_body(l, out);
            break;
        }
        case hs::frame_kind::join:
        case hs::frame_kind::leave:
            ec = hs::encode_body(member_from(b), out);
            break;
        default:
            ADD_FAILURE() << "no body for kind " << hs::kind_name(kind);
    }
    EXPECT_FALSE(ec) << ec.message();
    return out;
}

// Decodes the payload of a control frame with the C++ body decoder, into the
// JSON form of the vectors.
json decode_body_to_json(hs::frame_kind kind, hs::bytes_view payload) {
    std::error_code ec;
    json out;
    switch (kind) {
        case hs::frame_kind::hello: {
            hs::hello_body h;
            ec = hs::decode_body(payload, h);
            out = {{"min_version", h.min_version}, {"max_version", h.max_version},
                   {"role", role_name(h.role)}, {"name", std::string(h.name)},
                   {"token", std::string(h.token)},
                   {"resume_session", std::string(h.resume_session)}};
            break;
        }
        case hs::frame_kind::welcome: {
            hs::welcome_body w;
            ec = hs::decode_body(payload, w);
            out = {{"version", w.version}, {"session_id", std::string(w.session_id)},
                   {"router_id", std::string(w.router_id)}, {"heartbeat_ms", w.heartbeat_ms},
                   {"max_payload", w.max_payload}, {"max_subscriptions", w.max_subscriptions},
                   {"resumed", w.resumed}};
            break;
        }
        case hs::frame_kind::register_service: {
            hs::register_body r;
            ec = hs::decode_body(payload, r);
            out = {{"methods", methods_to_json(r.methods)}};
            break;
        }
        case hs::frame_kind::service_list: {
            hs::service_list_body l;
            ec = hs::decode_body(payload, l);
            out = {{"services", json::array()}};
            for (const hs::service_info& s : l.services)
                out["services"].push_back({{"name", std::string(s.name)},
                                           {"instances", s.instances},
                                           {"methods", methods_to_json(s.methods)}});
            break;
        }
        case hs::frame_kind::routers: {
            hs::routers_body r;
            ec = hs::decode_body(payload, r);
            out = {{"routers", json::array()}};
            for (const hs::router_endpoint& e : r.routers)
                out["routers"].push_back({{"id", std::string(e.id)}, {"backend", std::string(e.backend)}});
            break;
        }
        case hs::frame_kind::presence_list: {
            hs::presence_list_body l;
            ec = hs::decode_body(payload, l);
            out = {{"count", l.count}, {"members", json::array()}};
            for (const hs::presence_member& m : l.members) out["members"].push_back(member_to_json(m));
            break;
        }
        case hs::frame_kind::join:
        case hs::frame_kind::leave: {
            hs::presence_member m;
            ec = hs::decode_body(payload, m);
            out = member_to_json(m);
            break;
        }
        default:
            ADD_FAILURE() << "no body for kind " << hs::kind_name(kind);
    }
    EXPECT_FALSE(ec) << ec.message();
    return out;
}

// The publish options of a vector (its `options`), as the C++ type, and
// the message bytes they carry in front of.
hs::publish_options options_from(const json& o) {
    hs::publish_options out;
    if (o.contains("key")) out.key = o["key"].get_ref<const std::string&>();
    if (o.contains("ttl_s")) out.ttl_s = o["ttl_s"].get<std::uint32_t>();
    return out;
}
std::vector<std::uint8_t> message_of(const json& o) {
    if (o.contains("message_hex")) return from_hex(o["message_hex"].get<std::string>());
    const std::string text = o["message_text"].get<std::string>();
    return {text.begin(), text.end()};
}

// The C++ decoder splits the payload as the vector says.
void expect_options(const hs::frame& f, const json& o) {
    hs::publish_options got;
    hs::bytes_view message;
    ASSERT_FALSE(hs::decode_publish_options(f.flags, f.payload, got, message));
    const hs::publish_options want = options_from(o);
    EXPECT_EQ(got.key, want.key);
    EXPECT_EQ(got.ttl_s, want.ttl_s);
    EXPECT_EQ(to_hex(message), to_hex(message_of(o)));
}

bool has_body(hs::frame_kind k) {
    return k == hs::frame_kind::hello || k == hs::frame_kind::welcome ||
           k == hs::frame_kind::register_service || k == hs::frame_kind::service_list ||
           k == hs::frame_kind::routers || k == hs::frame_kind::presence_list || k == hs::frame_kind::join ||
           k == hs::frame_kind::leave;
}

// Payload bytes of a control frame are derived from its `body` fields, so the
// body encoder is checked as well as the frame encoder.
struct expected_frame {
    hs::frame fields;
    std::string name;
    std::vector<std::uint8_t> payload;
};

expected_frame expected_from(const json& j) {
    expected_frame e;
    const auto kind = kind_from_name(j["kind"].get<std::string>());
    EXPECT_TRUE(kind.has_value()) << j["kind"];
    e.fields.kind = kind.value_or(hs::frame_kind::ping);
    e.fields.flags = j["flags"];
    e.fields.id = j["id"];
    e.name = j["name"].get<std::string>();
    e.payload = payload_of(j);
    e.fields.epoch = j["epoch"];
    e.fields.seq = std::stoull(j["seq"].get<std::string>());
    e.fields.count = j["count"];
    e.fields.deadline_ms = j["deadline_ms"];
    e.fields.credit = j["credit"];
    e.fields.code = j["code"];
    if (j.contains("body")) {
        EXPECT_TRUE(has_body(e.fields.kind));
        EXPECT_EQ(to_hex(encode_body_from(e.fields.kind, j["body"])), to_hex(e.payload))
            << "body encoder disagrees with the vector's payload";
    }
    if (j.contains("options")) {
        const hs::publish_options o = options_from(j["options"]);
        EXPECT_EQ(hs::publish_option_flags(o), e.fields.flags & (hs::frame_flags::idempotency_key | hs::frame_flags::ttl));
        std::vector<std::uint8_t> payload;
        EXPECT_FALSE(hs::encode_publish_payload(o, message_of(j["options"]), payload));
        EXPECT_EQ(to_hex(payload), to_hex(e.payload)) << "publish options encoder disagrees with the vector's payload";
    }
    return e;
}

std::string vector_name(const testing::TestParamInfo<json>& info) {
    return info.param["name"].get<std::string>();
}

// ---------------------------------------------------------------- files

TEST(VectorFiles, LoadAndCoverEveryKind) {
    const std::vector<json> good = vectors_of(good_file());
    const std::vector<json> bad = vectors_of(bad_file());
    ASSERT_FALSE(good.empty()) << "cannot read " HYPERSTREAMS_VECTORS_DIR "/frames.json";
    ASSERT_FALSE(bad.empty()) << "cannot read " HYPERSTREAMS_VECTORS_DIR "/bad_frames.json";
    EXPECT_EQ(good_file()["protocol_version"], hs::protocol_version);

    std::array<bool, 256> covered{};
    for (const json& v : good)
        for (const json& f : v["frames"])
            if (auto k = kind_from_name(f["kind"].get<std::string>()))
                covered[static_cast<std::uint8_t>(*k)] = true;
    for (std::size_t k = 0; k < covered.size(); ++k) {
        const auto byte = static_cast<std::uint8_t>(k);
        if (hs::is_known_kind(byte)) {
            EXPECT_TRUE(covered[k]) << "no golden vector for kind "
                                    << hs::kind_name(static_cast<hs::frame_kind>(byte));
        }
    }
}

// docs/PROTOCOL.md shows a worked example for every kind; each example's hex
// line must be a golden vector, so the document cannot drift from the codec.
TEST(VectorFiles, ProtocolExamplesAreGoldenVectorsCoveringEveryKind) {
    std::ifstream doc(std::string(HYPERSTREAMS_VECTORS_DIR) + "/../../docs/PROTOCOL.md");
    ASSERT_TRUE(doc) << "cannot read docs/PROTOCOL.md";
    const std::vector<json> good = vectors_of(good_file());
    std::array<bool, 256> shown{};
    std::size_t examples = 0;
    for (std::string line; std::getline(doc, line);) {
        const bool hex_line = line.size() >= 2 * hs::header_size &&
                              line.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!hex_line) continue;
        ++examples;
        const json* match = nullptr;
        for (const json& v : good)
            if (v["hex"] == line) match = &v;
        ASSERT_NE(match, nullptr) << "PROTOCOL.md example is not a golden vector: " << line;
        for (const json& f : (*match)["frames"])
            if (auto k = kind_from_name(f["kind"].get<std::string>()))
                shown[static_cast<std::uint8_t>(*k)] = true;
    }
    EXPECT_GT(examples, 0u);
    for (std::size_t k = 0; k < shown.size(); ++k) {
        const auto byte = static_cast<std::uint8_t>(k);
        if (hs::is_known_kind(byte)) {
            EXPECT_TRUE(shown[k]) << "PROTOCOL.md has no example of "
                                  << hs::kind_name(static_cast<hs::frame_kind>(byte));
        }
    }
}

// Every error code the implementation knows has its row in the table of
// docs/PROTOCOL.md section 10, with its number and name.
TEST(VectorFiles, ProtocolDocumentsEveryErrorCode) {
    std::ifstream doc(std::string(HYPERSTREAMS_VECTORS_DIR) + "/../../docs/PROTOCOL.md");
    ASSERT_TRUE(doc) << "cannot read docs/PROTOCOL.md";
    const std::string text{std::istreambuf_iterator<char>(doc), std::istreambuf_iterator<char>()};
    std::size_t codes = 0;
    for (int v = 1; v <= std::numeric_limits<std::uint16_t>::max(); ++v) {
        const std::string_view name = hs::errc_name(static_cast<std::uint16_t>(v));
        if (name == "unknown") continue;
        ++codes;
        const std::string row = "| " + std::to_string(v) + " | `" + std::string(name) + "` |";
        EXPECT_NE(text.find(row), std::string::npos) << "PROTOCOL.md lacks the row " << row;
    }
    EXPECT_GT(codes, 40u);
}

// ---------------------------------------------------------------- good vectors

class GoodVector : public testing::TestWithParam<json> {};

TEST_P(GoodVector, EncodingTheFieldsGivesTheBytes) {
    const json& v = GetParam();
    std::vector<std::uint8_t> batch;
    std::size_t expected_size = 0;
    for (const json& j : v["frames"]) {
        const expected_frame e = expected_from(j);
        hs::frame f = e.fields;
        f.name = e.name;
        f.payload = e.payload;
        expected_size += hs::encoded_size(f);
        ASSERT_FALSE(hs::append(batch, f));
    }
    EXPECT_EQ(to_hex(batch), v["hex"].get<std::string>());
    EXPECT_EQ(batch.size(), expected_size);
}

TEST_P(GoodVector, DecodingTheBytesGivesTheFields) {
    const json& v = GetParam();
    const std::vector<std::uint8_t> bytes = from_hex(v["hex"].get<std::string>());
    hs::batch_reader reader{bytes};
    hs::frame f;
    for (const json& j : v["frames"]) {
        SCOPED_TRACE(j.dump());
        ASSERT_TRUE(reader.next(f)) << reader.error().message();
        const expected_frame e = expected_from(j);
        EXPECT_EQ(f.kind, e.fields.kind);
        EXPECT_EQ(f.flags, e.fields.flags);
        EXPECT_EQ(f.id, e.fields.id);
        EXPECT_EQ(f.name, e.name);
        EXPECT_EQ(to_hex(f.payload), to_hex(e.payload));
        EXPECT_EQ(f.epoch, e.fields.epoch);
        EXPECT_EQ(f.seq, e.fields.seq);
        EXPECT_EQ(f.count, e.fields.count);
        EXPECT_EQ(f.deadline_ms, e.fields.deadline_ms);
        EXPECT_EQ(f.credit, e.fields.credit);
        EXPECT_EQ(f.code, e.fields.code);
        if (j.contains("body")) {
            EXPECT_EQ(decode_body_to_json(f.kind, f.payload), j["body"]);
        }
        if (j.contains("options")) expect_options(f, j["options"]);
    }
    EXPECT_FALSE(reader.next(f));
    EXPECT_FALSE(reader.error()) << reader.error().message();
    EXPECT_EQ(reader.frames_read(), v["frames"].size());
}

INSTANTIATE_TEST_SUITE_P(Golden, GoodVector, testing::ValuesIn(vectors_of(good_file())),
                         vector_name);

// ---------------------------------------------------------------- bad vectors

hs::decode_limits limits_of(const json& v) {
    hs::decode_limits limits;
    if (v.contains("limits")) {
        limits.max_payload = v["limits"].value("max_payload", limits.max_payload);
        limits.max_frames = v["limits"].value("max_frames", limits.max_frames);
    }
    return limits;
}

std::error_code decode_named_body(hs::frame_kind kind, hs::bytes_view payload) {
    switch (kind) {
        case hs::frame_kind::hello: {
            hs::hello_body b;
            return hs::decode_body(payload, b);
        }
        case hs::frame_kind::welcome: {
            hs::welcome_body b;
            return hs::decode_body(payload, b);
        }
        case hs::frame_kind::register_service: {
            hs::register_body b;
            return hs::decode_body(payload, b);
        }
        case hs::frame_kind::service_list: {
            hs::service_list_body b;
            return hs::decode_body(payload, b);
        }
        case hs::frame_kind::routers: {
            hs::routers_body b;
            return hs::decode_body(payload, b);
        }
        case hs::frame_kind::presence_list: {
            hs::presence_list_body b;
            return hs::decode_body(payload, b);
        }
        case hs::frame_kind::join:
        case hs::frame_kind::leave: {
            hs::presence_member b;
            return hs::decode_body(payload, b);
        }
        default:
            ADD_FAILURE() << "no body for kind " << hs::kind_name(kind);
            return {};
    }
}

class BadVector : public testing::TestWithParam<json> {};

TEST_P(BadVector, FailsWithItsNamedCode) {
    const json& v = GetParam();
    const auto expected = errc_from_name(v["error"].get<std::string>());
    ASSERT_TRUE(expected.has_value()) << "no error code named " << v["error"];
    const std::vector<std::uint8_t> bytes = from_hex(v["hex"].get<std::string>());
    hs::batch_reader reader{bytes, limits_of(v)};
    hs::frame f;

    if (v["stage"] == "body") {
        ASSERT_TRUE(reader.next(f)) << reader.error().message();
        EXPECT_FALSE(reader.next(f));
        EXPECT_FALSE(reader.error());
        if (f.kind == hs::frame_kind::publish) {
            hs::publish_options o;
            hs::bytes_view message;
            EXPECT_EQ(hs::decode_publish_options(f.flags, f.payload, o, message), *expected);
            return;
        }
        EXPECT_EQ(decode_named_body(f.kind, f.payload), *expected);
        return;
    }

    ASSERT_EQ(v["stage"], "batch");
    std::size_t yielded = 0;
    while (reader.next(f)) ++yielded;
    EXPECT_EQ(yielded, v["frames_before_error"].get<std::size_t>());
    EXPECT_EQ(reader.error(), *expected) << reader.error().message();
    EXPECT_FALSE(reader.next(f)) << "a failed reader must stay failed";
    EXPECT_EQ(reader.error(), *expected);

    // A single-frame decode reports the same code for the frame the batch
    // stopped at (batch-level conditions excepted).
    if (yielded == 0 && *expected != hs::errc::empty_batch &&
        *expected != hs::errc::trailing_bytes && !v.contains("limits")) {
        std::size_t consumed = 99;
        EXPECT_EQ(hs::decode(bytes, f, consumed), *expected);
        EXPECT_EQ(consumed, 0u);
    }
}

INSTANTIATE_TEST_SUITE_P(Golden, BadVector, testing::ValuesIn(vectors_of(bad_file())),
                         vector_name);

// ---------------------------------------------------------------- allocation

// Runs a batch reader over `bytes` and returns how many allocations it made.
std::size_t allocations_decoding(const std::vector<std::uint8_t>& bytes,
                                 const hs::decode_limits& limits, std::size_t& frames) {
    hs::frame f;
    const std::size_t before = allocations;
    hs::batch_reader reader{bytes, limits};
    while (reader.next(f)) ++frames;
    return allocations - before;
}

// Without this, a counter that the library's allocations bypass (or that the
// optimiser elided) would make every "allocates nothing" test pass.
TEST(Allocation, TheCounterSeesTheLibrarysAllocations) {
    hs::frame f;
    f.kind = hs::frame_kind::ping;
    std::vector<std::uint8_t> out;
    std::size_t before = allocations;
    ASSERT_FALSE(hs::append(out, f));
    EXPECT_GE(allocations - before, 1u) << "append grows the vector";

    const std::uint8_t body[] = {0x01, 0x00, 0x01, 0x00, 'm', 0x01};  // one method "m"
    hs::register_body r;
    before = allocations;
    ASSERT_FALSE(hs::decode_body(body, r));
    EXPECT_GE(allocations - before, 1u) << "the method list is allocated";
}

TEST(Allocation, DecodingAFourGiBHeaderFailsBeforeAllocating) {
    // publish, body_len 0xFFFFFFFF, nothing after the 12-byte header
    const std::uint8_t header[] = {0x01, 0x12, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
    hs::frame f;
    std::size_t consumed = 0;
    const std::size_t before = allocations;
    const std::error_code ec = hs::decode(header, f, consumed);
    const std::size_t made = allocations - before;
    EXPECT_EQ(ec, hs::errc::frame_too_large);
    EXPECT_EQ(made, 0u);
}

TEST(Allocation, DecodingEveryGoldenVectorAllocatesNothing) {
    for (const json& v : vectors_of(good_file())) {
        const std::vector<std::uint8_t> bytes = from_hex(v["hex"].get<std::string>());
        std::size_t frames = 0;
        EXPECT_EQ(allocations_decoding(bytes, {}, frames), 0u) << v["name"];
        EXPECT_EQ(frames, v["frames"].size()) << v["name"];
    }
}

TEST(Allocation, RejectingEveryBadVectorAllocatesNothing) {
    for (const json& v : vectors_of(bad_file())) {
        const std::vector<std::uint8_t> bytes = from_hex(v["hex"].get<std::string>());
        std::size_t frames = 0;
        EXPECT_EQ(allocations_decoding(bytes, limits_of(v), frames), 0u) << v["name"];
    }
}

TEST(Allocation, HelloAndWelcomeBodiesDecodeWithoutAllocating) {
    for (const json& v : vectors_of(good_file())) {
        for (const json& j : v["frames"]) {
            const std::vector<std::uint8_t> payload = payload_of(j);
            const bool hello = j["kind"] == "hello";
            const bool welcome = j["kind"] == "welcome";
            const std::size_t before = allocations;
            std::error_code ec;
            if (hello) {
                hs::hello_body b;
                ec = hs::decode_body(payload, b);
            } else if (welcome) {
                hs::welcome_body b;
                ec = hs::decode_body(payload, b);
            } else {
                continue;
            }
            const std::size_t made = allocations - before;
            EXPECT_FALSE(ec) << v["name"];
            EXPECT_EQ(made, 0u) << v["name"];
        }
    }
}

TEST(Allocation, AListCountLargerThanTheInputReservesNothing) {
    // register_service body: count 65535 and no methods; a decoder that
    // trusted the count would reserve 65535 entries before failing.
    const std::uint8_t body[] = {0xFF, 0xFF};
    hs::register_body r;
    const std::size_t before = allocations;
    const std::error_code ec = hs::decode_body(body, r);
    const std::size_t made = allocations - before;
    EXPECT_EQ(ec, hs::errc::malformed_body);
    EXPECT_EQ(made, 0u);
}

}  // namespace
