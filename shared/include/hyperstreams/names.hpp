// Channel names, subscription patterns and service addresses.
//
// A channel is one or more dot-separated tokens ("factory.line1.m3.telemetry").
// A token is 1..255 bytes of printable ASCII other than '.', '*', '>', '/' and
// space. A pattern is a channel in which a token may be "*" (exactly one
// token) and the last token may be ">" (one or more remaining tokens): the
// NATS convention.
#pragma once

#include <string_view>

namespace hyperstreams {

bool is_valid_channel(std::string_view channel) noexcept;
bool is_valid_pattern(std::string_view pattern) noexcept;

// What is wrong with `channel` as a channel name (within max_name_size), or
// with `pattern` as a pattern, in words for an error message: the predicate
// of a sentence about the name, e.g. "has an empty token (...)". Empty when
// the name is valid.
std::string_view channel_problem(std::string_view channel) noexcept;
std::string_view pattern_problem(std::string_view pattern) noexcept;

// True when `channel` (a valid channel) is matched by `pattern` (a valid pattern).
bool pattern_matches(std::string_view pattern, std::string_view channel) noexcept;

// The name of request and stream_open frames is "service/method". Both parts
// are non-empty; the service may contain dots, neither part contains '/'.
struct service_method {
    std::string_view service;
    std::string_view method;
};

// Splits "service/method"; false when the name is not of that form.
bool split_service_method(std::string_view name, service_method& out) noexcept;

}  // namespace hyperstreams
