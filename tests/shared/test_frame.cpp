// The frame codec: every kind round-trips, limits hold at their boundaries,
// and a batch reader yields what it can and then stays failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "hyperstreams/frame.hpp"

namespace hs = hyperstreams;

namespace {

constexpr std::uint32_t u32_max = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

constexpr std::array all_kinds = {
    hs::frame_kind::hello,          hs::frame_kind::welcome,
    hs::frame_kind::goodbye,        hs::frame_kind::ping,
    hs::frame_kind::pong,           hs::frame_kind::redirect,
    hs::frame_kind::token_refresh,  hs::frame_kind::ack,
    hs::frame_kind::error,          hs::frame_kind::routers,
    hs::frame_kind::subscribe,
    hs::frame_kind::unsubscribe,    hs::frame_kind::publish,
    hs::frame_kind::message,        hs::frame_kind::gap,
    hs::frame_kind::presence,       hs::frame_kind::presence_list,
    hs::frame_kind::join,           hs::frame_kind::leave,
    hs::frame_kind::subscribed,     hs::frame_kind::unsubscribed,
    hs::frame_kind::subscribe_client, hs::frame_kind::unsubscribe_client,
    hs::frame_kind::request,        hs::frame_kind::response,
    hs::frame_kind::stream_open,    hs::frame_kind::stream_item,
    hs::frame_kind::stream_end,     hs::frame_kind::stream_credit,
    hs::frame_kind::cancel,         hs::frame_kind::direct,
    hs::frame_kind::broadcast,      hs::frame_kind::register_service,
    hs::frame_kind::unregister_service, hs::frame_kind::discover,
    hs::frame_kind::service_list,
};

// Which fixed fields each kind carries (docs/PROTOCOL.md, "Frame kinds").
struct carried {
    bool code = false;
    bool position = false;  // epoch + seq
    bool count = false;
    bool deadline = false;
    bool credit = false;
};

carried fields_of(hs::frame_kind k) {
    switch (k) {
        case hs::frame_kind::goodbye:
        case hs::frame_kind::redirect:
        case hs::frame_kind::error:
        case hs::frame_kind::unsubscribed: return {.code = true};
        case hs::frame_kind::ack:
        case hs::frame_kind::subscribe:
        case hs::frame_kind::message: return {.position = true};
        case hs::frame_kind::gap: return {.position = true, .count = true};
        case hs::frame_kind::request: return {.deadline = true};
        case hs::frame_kind::stream_open: return {.deadline = true, .credit = true};
        case hs::frame_kind::stream_credit: return {.credit = true};
        default: return {};
    }
}

std::size_t expected_ext_size(hs::frame_kind k) {
    const carried c = fields_of(k);
    return (c.code ? 2u : 0u) + (c.position ? 12u : 0u) + (c.count ? 4u : 0u) +
           (c.deadline ? 4u : 0u) + (c.credit ? 4u : 0u);
}

hs::bytes_view bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A frame with every field set, so a round trip shows which ones travel.
// `name` and `payload` must outlive the frame, which views them.
hs::frame full_frame(hs::frame_kind kind, std::string_view name, const std::string& payload) {
    hs::frame f;
    f.kind = kind;
    f.flags = 0xA5;
    f.id = 0xDEADBEEF;
    f.name = name;
    f.payload = bytes_of(payload);
    f.epoch = 0x01020304;
    f.seq = 0x1122334455667788;
    f.count = 0x0A0B0C0D;
    f.deadline_ms = 0x00C0FFEE;
    f.credit = 0x7FFFFFFF;
    f.code = 0x1234;
    return f;
}

std::vector<std::uint8_t> encode(const hs::frame& f) {
    std::vector<std::uint8_t> out;
    EXPECT_FALSE(hs::append(out, f));
    return out;
}

hs::frame decode_one(const std::vector<std::uint8_t>& bytes, const hs::decode_limits& limits = {}) {
    hs::frame f;
    std::size_t consumed = 0;
    const std::error_code ec = hs::decode(bytes, f, consumed, limits);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(consumed, bytes.size());
    return f;
}

// ---------------------------------------------------------------- kind table

TEST(FrameKinds, ExactlyTheDefinedKindsAreKnown) {
    std::size_t known = 0;
    for (int k = 0; k < 256; ++k) {
        const auto byte = static_cast<std::uint8_t>(k);
        if (!hs::is_known_kind(byte)) {
            EXPECT_EQ(hs::kind_name(static_cast<hs::frame_kind>(byte)), "unknown") << k;
            EXPECT_EQ(hs::ext_size(static_cast<hs::frame_kind>(byte)), 0u) << k;
            continue;
        }
        ++known;
    }
    EXPECT_EQ(known, all_kinds.size());
    for (hs::frame_kind k : all_kinds) {
        EXPECT_TRUE(hs::is_known_kind(static_cast<std::uint8_t>(k)));
        EXPECT_NE(hs::kind_name(k), "unknown");
        EXPECT_EQ(hs::ext_size(k), expected_ext_size(k)) << hs::kind_name(k);
    }
}

TEST(FrameKinds, NamesAreDistinct) {
    for (std::size_t i = 0; i < all_kinds.size(); ++i)
        for (std::size_t j = i + 1; j < all_kinds.size(); ++j)
            EXPECT_NE(hs::kind_name(all_kinds[i]), hs::kind_name(all_kinds[j]));
}

// ---------------------------------------------------------------- round trips

class EveryKind : public testing::TestWithParam<hs::frame_kind> {};

TEST_P(EveryKind, RoundTripsTheFieldsItCarriesAndZeroesTheOthers) {
    const hs::frame_kind kind = GetParam();
    const std::string name = "factory.line1.m3";
    const std::string payload = std::string("pay\0load", 8);
    const hs::frame in = full_frame(kind, name, payload);

    const std::vector<std::uint8_t> bytes = encode(in);
    ASSERT_EQ(bytes.size(), hs::encoded_size(in));
    ASSERT_EQ(bytes.size(), hs::header_size + hs::ext_size(kind) + name.size() + payload.size());

    const hs::frame out = decode_one(bytes);
    const carried c = fields_of(kind);
    EXPECT_EQ(out.kind, kind);
    EXPECT_EQ(out.flags, in.flags);
    EXPECT_EQ(out.id, in.id);
    EXPECT_EQ(out.name, name);
    EXPECT_EQ(std::string(out.payload.begin(), out.payload.end()), payload);
    EXPECT_EQ(out.code, c.code ? in.code : 0);
    EXPECT_EQ(out.epoch, c.position ? in.epoch : 0);
    EXPECT_EQ(out.seq, c.position ? in.seq : 0);
    EXPECT_EQ(out.count, c.count ? in.count : 0);
    EXPECT_EQ(out.deadline_ms, c.deadline ? in.deadline_ms : 0);
    EXPECT_EQ(out.credit, c.credit ? in.credit : 0);
}

TEST_P(EveryKind, RoundTripsExtremeValues) {
    hs::frame in;
    in.kind = GetParam();
    in.flags = 0xFF;
    in.id = u32_max;
    in.epoch = u32_max;
    in.seq = u64_max;
    in.count = u32_max;
    in.deadline_ms = u32_max;
    in.credit = u32_max;
    in.code = std::numeric_limits<std::uint16_t>::max();
    const hs::frame out = decode_one(encode(in));
    const carried c = fields_of(in.kind);
    EXPECT_EQ(out.flags, 0xFF);
    EXPECT_EQ(out.id, u32_max);
    EXPECT_TRUE(out.name.empty());
    EXPECT_TRUE(out.payload.empty());
    EXPECT_EQ(out.epoch, c.position ? u32_max : 0);
    EXPECT_EQ(out.seq, c.position ? u64_max : 0);
    EXPECT_EQ(out.count, c.count ? u32_max : 0);
    EXPECT_EQ(out.deadline_ms, c.deadline ? u32_max : 0);
    EXPECT_EQ(out.credit, c.credit ? u32_max : 0);
    EXPECT_EQ(out.code, c.code ? 0xFFFF : 0);
}

TEST_P(EveryKind, EmptyFrameHasTheHeaderAndExtOnly) {
    hs::frame in;
    in.kind = GetParam();
    const std::vector<std::uint8_t> bytes = encode(in);
    ASSERT_EQ(bytes.size(), hs::header_size + hs::ext_size(in.kind));
    EXPECT_EQ(bytes[0], hs::protocol_version);
    EXPECT_EQ(bytes[1], static_cast<std::uint8_t>(in.kind));
    // body_len (offset 8, little-endian) is the ext size
    EXPECT_EQ(bytes[8], hs::ext_size(in.kind));
    EXPECT_EQ(bytes[9] | bytes[10] | bytes[11], 0);
}

TEST_P(EveryKind, EncodedFrameSizeIsItsSizeOnTheWire) {
    const std::string payload = "payload";
    const std::vector<std::uint8_t> bytes = encode(full_frame(GetParam(), "a.b", payload));
    EXPECT_EQ(hs::encoded_frame_size(bytes), bytes.size());
}

TEST_P(EveryKind, EncodedPayloadIsTheDecodedPayload) {
    const std::string payload = "payload";
    const std::vector<std::uint8_t> bytes = encode(full_frame(GetParam(), "a.b", payload));
    const hs::bytes_view p = hs::encoded_payload(bytes);
    EXPECT_EQ(std::string(p.begin(), p.end()), payload);
    EXPECT_EQ(p.data(), decode_one(bytes).payload.data()) << "a view into the frame, where the decoder finds it";
    EXPECT_TRUE(hs::encoded_payload(hs::bytes_view(bytes).first(bytes.size() - 1)).empty()) << "cut short";
}

TEST_P(EveryKind, AddFlagsSetsTheBitsAndChangesNothingElse) {
    const std::string payload = "payload";
    hs::frame in = full_frame(GetParam(), "a.b", payload);
    in.flags = hs::frame_flags::json;
    std::vector<std::uint8_t> bytes = encode(in);
    ASSERT_FALSE(hs::add_flags(bytes, hs::frame_flags::replayed | hs::frame_flags::json));
    in.flags = hs::frame_flags::json | hs::frame_flags::replayed;
    EXPECT_EQ(bytes, encode(in));
}

TEST_P(EveryKind, SetDeadlineRewritesTheDeadlineOfCallsAndRefusesTheRest) {
    const std::string payload = "payload";
    hs::frame in = full_frame(GetParam(), "svc/get", payload);
    std::vector<std::uint8_t> bytes = encode(in);
    const std::error_code ec = hs::set_deadline(bytes, 1234);
    if (fields_of(in.kind).deadline) {
        ASSERT_FALSE(ec) << ec.message();
        in.deadline_ms = 1234;
        EXPECT_EQ(bytes, encode(in));
    } else {
        EXPECT_EQ(ec, hs::errc::invalid_argument);
        EXPECT_EQ(bytes, encode(in));
    }
}

std::string kind_param_name(const testing::TestParamInfo<hs::frame_kind>& info) {
    return std::string(hs::kind_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Frame, EveryKind, testing::ValuesIn(all_kinds), kind_param_name);

// ---------------------------------------------------------------- layout

TEST(FrameLayout, HeaderFieldsAreLittleEndianAtTheirOffsets) {
    hs::frame f;
    f.kind = hs::frame_kind::message;
    f.flags = hs::frame_flags::json;
    f.id = 0x04030201;
    f.name = "ab";
    const std::string payload = "xyz";
    f.payload = bytes_of(payload);
    f.epoch = 0x0D0C0B0A;
    f.seq = 0x1817161514131211;
    const std::vector<std::uint8_t> expected = {
        0x01, 0x13, 0x01, 0x02,                          // version, kind, flags, name_len
        0x01, 0x02, 0x03, 0x04,                          // id
        0x0F, 0x00, 0x00, 0x00,                          // body_len = 12 ext + 3 payload
        0x0A, 0x0B, 0x0C, 0x0D,                          // epoch
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  // seq
        'a',  'b',  'x',  'y',  'z'};
    EXPECT_EQ(encode(f), expected);
}

TEST(FrameLayout, DecodedNameAndPayloadViewTheInput) {
    hs::frame f;
    f.kind = hs::frame_kind::publish;
    f.name = "a.b";
    const std::string payload = "hello";
    f.payload = bytes_of(payload);
    const std::vector<std::uint8_t> bytes = encode(f);
    const hs::frame out = decode_one(bytes);
    EXPECT_EQ(reinterpret_cast<const std::uint8_t*>(out.name.data()), bytes.data() + 12);
    EXPECT_EQ(out.payload.data(), bytes.data() + 15);
}

TEST(FrameLayout, UnknownFlagBitsArePreserved) {
    for (unsigned flags : {0x40u, 0x80u, 0xC0u, 0xFFu}) {
        hs::frame f;
        f.kind = hs::frame_kind::publish;
        f.flags = static_cast<std::uint8_t>(flags);
        EXPECT_EQ(decode_one(encode(f)).flags, flags);
    }
}

TEST(FrameLayout, SlowConsumerPolicyLivesInFlagBits4And5) {
    for (auto p : {hs::slow_policy::router_default, hs::slow_policy::drop_oldest,
                   hs::slow_policy::keep_latest, hs::slow_policy::disconnect}) {
        const std::uint8_t flags = hs::policy_flags(p) | hs::frame_flags::since;
        EXPECT_EQ(flags & ~hs::frame_flags::policy_mask, hs::frame_flags::since);
        EXPECT_EQ(hs::policy_of(flags), p);
    }
    EXPECT_EQ(hs::policy_flags(hs::slow_policy::disconnect), 0x30);
    EXPECT_EQ(hs::policy_of(0xFF), hs::slow_policy::disconnect);
}

TEST(FrameLayout, HasTestsOneFlag) {
    hs::frame f;
    f.flags = hs::frame_flags::json | hs::frame_flags::replayed;
    EXPECT_TRUE(f.has(hs::frame_flags::json));
    EXPECT_TRUE(f.has(hs::frame_flags::replayed));
    EXPECT_FALSE(f.has(hs::frame_flags::ack_requested));
}

// ---------------------------------------------------------------- encoded frames in place

TEST(EncodedFrame, TheSizeOfABatchIsThatOfItsFirstFrame) {
    hs::frame a;
    a.kind = hs::frame_kind::publish;
    a.name = "a.b";
    std::vector<std::uint8_t> bytes = encode(a);
    const std::size_t first = bytes.size();
    a.name = "a.b.c.d";
    ASSERT_FALSE(hs::append(bytes, a));
    EXPECT_EQ(hs::encoded_frame_size(bytes), first);
    EXPECT_EQ(hs::encoded_frame_size(hs::bytes_view(bytes).subspan(first)), bytes.size() - first);
}

TEST(EncodedFrame, LessThanAHeaderHasNoSize) {
    const std::vector<std::uint8_t> bytes = encode(full_frame(hs::frame_kind::publish, "a", "p"));
    for (std::size_t n = 0; n < hs::header_size; ++n)
        EXPECT_EQ(hs::encoded_frame_size(hs::bytes_view(bytes.data(), n)), 0u) << n;
    EXPECT_EQ(hs::encoded_frame_size(hs::bytes_view(bytes.data(), hs::header_size)), bytes.size());
}

TEST(EncodedFrame, TheLargestSizeAHeaderCanStateDoesNotWrap) {
    std::vector<std::uint8_t> header(hs::header_size, 0xFF);
    EXPECT_EQ(hs::encoded_frame_size(header), std::uint64_t{hs::header_size} + 255 + u32_max);
}

TEST(EncodedFrame, AddFlagsToLessThanAHeaderIsTruncatedAndWritesNothing) {
    std::vector<std::uint8_t> bytes(hs::header_size - 1, 0);
    EXPECT_EQ(hs::add_flags(bytes, hs::frame_flags::replayed), hs::errc::truncated);
    EXPECT_EQ(bytes, std::vector<std::uint8_t>(bytes.size(), 0));
}

TEST(EncodedFrame, SetDeadlineRefusesAnotherKindShorterThanADeadline) {
    hs::frame f;
    f.kind = hs::frame_kind::ping;
    std::vector<std::uint8_t> bytes = encode(f);
    ASSERT_EQ(bytes.size(), hs::header_size);
    EXPECT_EQ(hs::set_deadline(bytes, 9), hs::errc::invalid_argument);
    EXPECT_EQ(bytes, encode(f));
}

TEST(EncodedFrame, SetDeadlineNeedsTheWholeFieldAndWritesNothingWithout) {
    hs::frame f;
    f.kind = hs::frame_kind::request;
    f.deadline_ms = 7;
    const std::vector<std::uint8_t> bytes = encode(f);
    for (std::size_t n = 0; n < hs::header_size + 4; ++n) {
        std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_EQ(hs::set_deadline(prefix, 9), hs::errc::truncated) << n;
        EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), bytes.begin())) << n;
    }
}

// ---------------------------------------------------------------- encoder limits

TEST(FrameEncode, NameOf255BytesIsAccepted) {
    const std::string name(255, 'n');
    hs::frame f;
    f.kind = hs::frame_kind::publish;
    f.name = name;
    const std::vector<std::uint8_t> bytes = encode(f);
    EXPECT_EQ(bytes[3], 255);
    EXPECT_EQ(decode_one(bytes).name, name);
}

TEST(FrameEncode, NameOf256BytesIsRefusedAndNothingIsWritten) {
    const std::string name(256, 'n');
    hs::frame f;
    f.kind = hs::frame_kind::publish;
    f.name = name;
    std::vector<std::uint8_t> out = {0xAA, 0xBB};
    EXPECT_EQ(hs::append(out, f), hs::errc::name_too_long);
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0xAA, 0xBB}));

    std::vector<std::uint8_t> buffer(hs::encoded_size(f), 0x5A);
    EXPECT_EQ(hs::encode_to(f, buffer), hs::errc::name_too_long);
    EXPECT_EQ(buffer, std::vector<std::uint8_t>(buffer.size(), 0x5A));
}

TEST(FrameEncode, UnknownKindIsRefused) {
    hs::frame f;
    f.kind = static_cast<hs::frame_kind>(0x1D);
    std::vector<std::uint8_t> out;
    EXPECT_EQ(hs::append(out, f), hs::errc::unknown_kind);
    EXPECT_TRUE(out.empty());
}

TEST(FrameEncode, ABufferTooSmallIsRefusedAndNothingIsWritten) {
    hs::frame f;
    f.kind = hs::frame_kind::ping;
    std::vector<std::uint8_t> buffer(hs::header_size - 1, 0x5A);
    EXPECT_EQ(hs::encode_to(f, buffer), hs::errc::length_out_of_bounds);
    EXPECT_EQ(buffer, std::vector<std::uint8_t>(buffer.size(), 0x5A));
}

TEST(FrameEncode, EncodeToWritesExactlyEncodedSizeBytes) {
    hs::frame f;
    f.kind = hs::frame_kind::gap;
    f.name = "a.b";
    std::vector<std::uint8_t> buffer(hs::encoded_size(f) + 4, 0x5A);
    ASSERT_FALSE(hs::encode_to(f, buffer));
    for (std::size_t i = hs::encoded_size(f); i < buffer.size(); ++i) EXPECT_EQ(buffer[i], 0x5A);
}

// ---------------------------------------------------------------- decoder limits

std::vector<std::uint8_t> publish_with_payload(std::size_t size) {
    const std::string payload(size, 'p');
    hs::frame f;
    f.kind = hs::frame_kind::publish;
    f.name = "big";
    f.payload = bytes_of(payload);
    return encode(f);
}

TEST(FrameDecode, PayloadExactlyAtTheDefaultCapIsAccepted) {
    const hs::decode_limits limits;
    ASSERT_EQ(limits.max_payload, 1u << 20);
    const std::vector<std::uint8_t> bytes = publish_with_payload(limits.max_payload);
    EXPECT_EQ(decode_one(bytes).payload.size(), limits.max_payload);
}

TEST(FrameDecode, PayloadOneOverTheDefaultCapIsTooLarge) {
    const std::vector<std::uint8_t> bytes = publish_with_payload((1u << 20) + 1);
    hs::frame f;
    std::size_t consumed = 7;
    EXPECT_EQ(hs::decode(bytes, f, consumed), hs::errc::frame_too_large);
    EXPECT_EQ(consumed, 0u);
}

TEST(FrameDecode, TheCapCountsPayloadNotExt) {
    const std::string payload(64, 'p');
    hs::frame f;
    f.kind = hs::frame_kind::gap;  // 16 bytes of ext
    f.payload = bytes_of(payload);
    const std::vector<std::uint8_t> bytes = encode(f);
    hs::frame out;
    std::size_t consumed = 0;
    EXPECT_FALSE(hs::decode(bytes, out, consumed, {.max_payload = 64}));
    EXPECT_EQ(hs::decode(bytes, out, consumed, {.max_payload = 63}), hs::errc::frame_too_large);
}

TEST(FrameDecode, ACapOfZeroAllowsOnlyEmptyPayloads) {
    hs::frame f;
    f.kind = hs::frame_kind::ping;
    EXPECT_TRUE(decode_one(encode(f), {.max_payload = 0}).payload.empty());
    const std::vector<std::uint8_t> one = publish_with_payload(1);
    hs::frame out;
    std::size_t consumed = 0;
    EXPECT_EQ(hs::decode(one, out, consumed, {.max_payload = 0}), hs::errc::frame_too_large);
}

TEST(FrameDecode, EveryTruncationOfAFrameFails) {
    const std::string payload = "{\"temp\":21.5}";
    hs::frame f = full_frame(hs::frame_kind::message, "factory.line1", payload);
    const std::vector<std::uint8_t> bytes = encode(f);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        const hs::bytes_view prefix(bytes.data(), n);
        hs::frame out;
        std::size_t consumed = 0;
        const std::error_code ec = hs::decode(prefix, out, consumed);
        EXPECT_EQ(ec, n < hs::header_size ? hs::errc::truncated : hs::errc::length_out_of_bounds)
            << n;
        EXPECT_EQ(consumed, 0u);
    }
}

TEST(FrameDecode, OnlyTheFirstFrameIsDecoded) {
    hs::frame a;
    a.kind = hs::frame_kind::ping;
    a.id = 1;
    std::vector<std::uint8_t> bytes = encode(a);
    const std::size_t first = bytes.size();
    a.id = 2;
    ASSERT_FALSE(hs::append(bytes, a));
    hs::frame out;
    std::size_t consumed = 0;
    ASSERT_FALSE(hs::decode(bytes, out, consumed));
    EXPECT_EQ(consumed, first);
    EXPECT_EQ(out.id, 1u);
}

// ---------------------------------------------------------------- batches

std::vector<std::uint8_t> pings(std::size_t n) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < n; ++i) {
        hs::frame f;
        f.kind = hs::frame_kind::ping;
        f.id = static_cast<std::uint32_t>(i);
        EXPECT_FALSE(hs::append(out, f));
    }
    return out;
}

TEST(BatchReader, YieldsEveryFrameInOrder) {
    const std::vector<std::uint8_t> bytes = pings(5);
    hs::batch_reader reader{bytes};
    hs::frame f;
    std::uint32_t expected = 0;
    while (reader.next(f)) EXPECT_EQ(f.id, expected++);
    EXPECT_EQ(expected, 5u);
    EXPECT_FALSE(reader.error());
    EXPECT_EQ(reader.frames_read(), 5u);
    EXPECT_FALSE(reader.next(f));
    EXPECT_FALSE(reader.error());
}

TEST(BatchReader, AnEmptyMessageIsAnEmptyBatch) {
    hs::batch_reader reader{hs::bytes_view{}};
    hs::frame f;
    EXPECT_FALSE(reader.next(f));
    EXPECT_EQ(reader.error(), hs::errc::empty_batch);
    EXPECT_EQ(reader.frames_read(), 0u);
}

TEST(BatchReader, MaxFramesIsAllowedAndOneMoreIsTooLarge) {
    const hs::decode_limits limits;
    ASSERT_EQ(limits.max_frames, 65536u);
    const std::vector<std::uint8_t> at_limit = pings(limits.max_frames);
    hs::batch_reader ok{at_limit};
    hs::frame f;
    while (ok.next(f)) {
    }
    EXPECT_FALSE(ok.error());
    EXPECT_EQ(ok.frames_read(), limits.max_frames);

    std::vector<std::uint8_t> over = at_limit;
    const std::vector<std::uint8_t> one = pings(1);
    over.insert(over.end(), one.begin(), one.end());
    hs::batch_reader too_many{over};
    while (too_many.next(f)) {
    }
    EXPECT_EQ(too_many.error(), hs::errc::frame_too_large);
    EXPECT_EQ(too_many.frames_read(), limits.max_frames);
}

TEST(BatchReader, ACustomFrameLimitApplies) {
    const std::vector<std::uint8_t> bytes = pings(4);
    hs::batch_reader reader{bytes, {.max_frames = 3}};
    hs::frame f;
    std::size_t yielded = 0;
    while (reader.next(f)) ++yielded;
    EXPECT_EQ(yielded, 3u);
    EXPECT_EQ(reader.error(), hs::errc::frame_too_large);
}

TEST(BatchReader, FramesBeforeAnErrorAreYieldedThenItStaysFailed) {
    std::vector<std::uint8_t> bytes = pings(2);
    const std::uint8_t unknown_kind[] = {0x01, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    bytes.insert(bytes.end(), std::begin(unknown_kind), std::end(unknown_kind));
    const std::vector<std::uint8_t> after = pings(1);
    bytes.insert(bytes.end(), after.begin(), after.end());

    hs::batch_reader reader{bytes};
    hs::frame f;
    ASSERT_TRUE(reader.next(f));
    EXPECT_EQ(f.id, 0u);
    ASSERT_TRUE(reader.next(f));
    EXPECT_EQ(f.id, 1u);
    EXPECT_FALSE(reader.next(f));
    EXPECT_EQ(reader.error(), hs::errc::unknown_kind);
    for (int i = 0; i < 3; ++i) {
        EXPECT_FALSE(reader.next(f));
        EXPECT_EQ(reader.error(), hs::errc::unknown_kind);
    }
    EXPECT_EQ(reader.frames_read(), 2u);
}

TEST(BatchReader, OneToElevenStrayBytesAreTrailingBytes) {
    for (std::size_t extra = 1; extra < hs::header_size; ++extra) {
        std::vector<std::uint8_t> bytes = pings(1);
        bytes.resize(bytes.size() + extra, 0x01);
        hs::batch_reader reader{bytes};
        hs::frame f;
        EXPECT_TRUE(reader.next(f));
        EXPECT_FALSE(reader.next(f));
        EXPECT_EQ(reader.error(), hs::errc::trailing_bytes) << extra;
    }
}

TEST(BatchReader, ALoneShortMessageIsTruncatedNotTrailing) {
    const std::vector<std::uint8_t> bytes = pings(1);
    hs::batch_reader reader{hs::bytes_view(bytes.data(), 5)};
    hs::frame f;
    EXPECT_FALSE(reader.next(f));
    EXPECT_EQ(reader.error(), hs::errc::truncated);
}

TEST(BatchReader, TheLimitsApplyToEveryFrame) {
    std::vector<std::uint8_t> bytes = publish_with_payload(8);
    const std::vector<std::uint8_t> big = publish_with_payload(9);
    bytes.insert(bytes.end(), big.begin(), big.end());
    hs::batch_reader reader{bytes, {.max_payload = 8}};
    hs::frame f;
    EXPECT_TRUE(reader.next(f));
    EXPECT_FALSE(reader.next(f));
    EXPECT_EQ(reader.error(), hs::errc::frame_too_large);
}

TEST(BatchReader, EveryKindInOneBatch) {
    std::vector<std::uint8_t> bytes;
    const std::string payload = "p";
    for (hs::frame_kind k : all_kinds) ASSERT_FALSE(hs::append(bytes, full_frame(k, "n", payload)));
    hs::batch_reader reader{bytes};
    hs::frame f;
    for (hs::frame_kind k : all_kinds) {
        ASSERT_TRUE(reader.next(f)) << reader.error().message();
        EXPECT_EQ(f.kind, k);
        EXPECT_EQ(f.name, "n");
    }
    EXPECT_FALSE(reader.next(f));
    EXPECT_FALSE(reader.error());
}

}  // namespace
