// Two functions of libc++ that the link replaces (-Wl,--wrap in
// CMakeLists.txt) because of what they pull into a module that must stay
// small. Every call to the real function goes to the replacement, so the
// real one and what only it needed drop out of the link.
#include <cstddef>
#include <system_error>

#include "hyperstreams/errc.hpp"

// std::error_code's default constructor names std::system_category(), and
// that category's vtable brings libc++'s message(): strerror's table,
// snprintf with floating-point formatting, and the RTTI of the categories,
// about 10 KB of code and 3 KB of data in a module that never meets a system
// error (no file, no socket: the host does the I/O). A default error_code
// points at the HyperStreams category instead. The engine and the bindings
// only ever test a code for zero or compare it with an errc, which does not
// change, and the JS layer reads numbers, never categories.
const std::error_category& wrapped_system_category() noexcept __asm__("__wrap__ZNSt3__215system_categoryEv");

const std::error_category& wrapped_system_category() noexcept { return hyperstreams::error_category(); }

// std::unordered_map sizes its bucket array with __next_prime(n), 1.5 KB of
// code and a table of primes. libc++ works as well with a power of two (it
// then masks the hash instead of taking a remainder: std::hash of the
// engine's u32 ids is the id itself, dense in the low bits, and its name_hash
// mixes the high bits into the low ones), so the buckets round up to one.
std::size_t wrapped_next_prime(std::size_t n) noexcept __asm__("__wrap__ZNSt3__212__next_primeEm");

std::size_t wrapped_next_prime(std::size_t n) noexcept {
    std::size_t buckets = 2;
    while (buckets < n) buckets <<= 1;
    return buckets;
}
