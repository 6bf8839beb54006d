#include "static_files.hpp"

#include <string>
#include <system_error>

namespace hyperstreams::router {
namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) return false;
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

bool inside(const std::filesystem::path& root, const std::filesystem::path& p) {
    auto r = root.begin();
    auto q = p.begin();
    for (; r != root.end(); ++r, ++q)
        if (q == p.end() || *r != *q) return false;
    return true;
}

}  // namespace

std::optional<std::filesystem::path> resolve_static(const std::filesystem::path& root,
                                                    std::string_view target) {
    target = target.substr(0, target.find('?'));
    target = target.substr(0, target.find('#'));
    if (target.empty() || target.front() != '/') return std::nullopt;
    std::string path;
    if (!percent_decode(target, path)) return std::nullopt;

    // Every segment is checked after decoding: "%2e%2e" is "..".
    std::string_view rest(path);
    rest.remove_prefix(1);
    std::filesystem::path relative;
    while (!rest.empty()) {
        const std::size_t slash = rest.find('/');
        std::string_view segment = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (segment.empty()) continue;
        if (segment == "." || segment == "..") return std::nullopt;
        for (char c : segment)
            if (c == '\0' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return std::nullopt;
        relative /= std::string(segment);
    }
    if (path.back() == '/' || relative.empty()) relative /= "index.html";

    std::error_code ec;
    const std::filesystem::path full = std::filesystem::weakly_canonical(root / relative, ec);
    if (ec || !inside(root, full)) return std::nullopt;
    return full;
}

std::string_view content_type(const std::filesystem::path& file) noexcept {
    const std::string ext = file.extension().string();
    struct entry {
        std::string_view ext, type;
    };
    static constexpr entry types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".wasm", "application/wasm"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff", "font/woff"},
        {".woff2", "font/woff2"},
        {".ttf", "font/ttf"},
    };
    for (const entry& e : types)
        if (ext == e.ext) return e.type;
    return "application/octet-stream";
}

}  // namespace hyperstreams::router
