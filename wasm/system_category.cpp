// std::error_code's default constructor names std::system_category(), and
// that category's vtable brings libc++'s message(): strerror's table,
// snprintf with floating-point formatting, and the RTTI of the categories,
// about 10 KB of code and 3 KB of data in a module that never meets a system
// error (no file, no socket: the host does the I/O). The link wraps the
// function (-Wl,--wrap in CMakeLists.txt) so that a default error_code
// points at the HyperStreams category instead; the engine and the bindings
// only ever test a code for zero or compare it with an errc, which does not
// change, and the JS layer reads numbers, never categories.
#include <system_error>

#include "hyperstreams/errc.hpp"

const std::error_category& wrapped_system_category() noexcept __asm__("__wrap__ZNSt3__215system_categoryEv");

const std::error_category& wrapped_system_category() noexcept { return hyperstreams::error_category(); }
