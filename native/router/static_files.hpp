// Mapping of an HTTP request target to a file under the --web directory, and
// the content type of a file. Socket-free so that the traversal rules are
// tested on their own.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace hyperstreams::router {

// The file `target` names under `root` (an absolute, canonical directory),
// or nothing when the target is malformed or would leave the root (".."
// segments, percent-encoded separators or NUL, backslashes, symlinks that
// point outside). A target ending in '/' names its index.html. The query
// string is ignored.
std::optional<std::filesystem::path> resolve_static(const std::filesystem::path& root,
                                                    std::string_view target);

// "text/html; charset=utf-8", "application/wasm", ...; by extension.
std::string_view content_type(const std::filesystem::path& file) noexcept;

}  // namespace hyperstreams::router
