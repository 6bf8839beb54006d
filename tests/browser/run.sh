#!/usr/bin/env bash
# The browser stage of ./test.sh: builds what the dashboard test drives (the
# router and the simulator, the npm package, the page) and runs tests/browser/
# in Debian's headless Chromium. Each build step is a no-op when up to date.
#
# HYPERSTREAMS_BROWSER_PRESET picks the native build (default native-asan,
# which ./test.sh has built by then: the router runs under the sanitizers).
set -euo pipefail
cd "$(dirname "$0")/../.."

preset=${HYPERSTREAMS_BROWSER_PRESET:-native-asan}
jobs=${HYPERSTREAMS_JOBS:-$(nproc)}

cmake --preset "$preset" --log-level=WARNING >/dev/null
cmake --build --preset "$preset" --parallel "$jobs" --target hyperstreams-router hyperstreams-factory
npm run --silent build
npm run --silent build --prefix web

HYPERSTREAMS_BROWSER_PRESET=$preset node --test --test-concurrency=1 tests/browser/
