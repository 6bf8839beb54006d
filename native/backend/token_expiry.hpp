// When a JWT expires, read without verifying it: the client only needs to
// know when to ask options::token_provider for the next one. The router
// verifies the token; a client that misreads it merely refreshes early or
// hears token_expired.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace hyperstreams::backend::detail {

// The `exp` claim (seconds since the Unix epoch) of `token`
// (header.claims.signature, base64url); nothing when it is not a JWT or
// carries no integer `exp` at the top level of its claims.
std::optional<std::int64_t> token_expiry(std::string_view token);

}  // namespace hyperstreams::backend::detail
