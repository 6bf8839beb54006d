// What the test servers' children (routers, redis-server) do between fork
// and exec: async-signal-safe only.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

namespace hyperstreams::testing {

// Called in the child right after fork(), `parent` being the test's pid
// taken before it: a test that dies (a sanitizer's abort, a crash) takes its
// servers with it, so none is left running to disturb the next test or a
// benchmark. A parent gone before the prctl is answered as its signal would.
inline void die_with_parent(pid_t parent) noexcept {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::raise(SIGKILL);
}

}  // namespace hyperstreams::testing
