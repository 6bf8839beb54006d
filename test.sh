#!/usr/bin/env bash
# Sets up the machine, then runs every test of HyperStreams, stage by stage;
# stops at the first failure. CI runs exactly this (.ci/run).
#
#   ./test.sh                 all stages
#   ./test.sh wasm fuzz       only the named stages (set-up still runs)
#
# HYPERSTREAMS_JOBS sets build and test parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")"

jobs=${HYPERSTREAMS_JOBS:-$(nproc)}

# Configure, build and test one CMake preset (see CMakePresets.json).
cmake_preset() {
    cmake --preset "$1" --log-level=WARNING
    cmake --build --preset "$1" --parallel "$jobs"
    ctest --preset "$1" --parallel "$jobs"
}

# Run an npm script of package.json; a stage whose script is not written yet
# is skipped, not failed.
npm_script() {
    if ! node -e 'const p = JSON.parse(require("fs").readFileSync("package.json", "utf8"));
                  process.exit(p.scripts && p.scripts[process.argv[1]] ? 0 : 1)' "$1"; then
        echo "(skipped: package.json has no \"$1\" script yet)"
        return
    fi
    npm run --silent "$1"
}

# The stages, in order: a name, then the command. Adding a stage is adding a
# line. The wasm build comes before the npm stages, which load its output.
STAGES=(
    "native-asan  cmake_preset native-asan"     # every native test, under ASan + UBSan
    "wasm         cmake_preset wasm"            # the shared core's suites built with Emscripten, run by Node
    "fuzz         cmake_preset native-fuzz"     # libFuzzer run of each fuzz target (10-40 s, two at a time)
    "npm-test     npm_script test"              # Node tests of the npm package (tests/node)
    "browser      npm_script test:browser"      # headless Chromium end-to-end tests (tests/browser)
)

stage_names=" "
for line in "${STAGES[@]}"; do
    read -r name _ <<<"$line"
    stage_names+="$name "
done
for name in "$@"; do
    if [[ $stage_names != *" $name "* ]]; then
        echo "test.sh: unknown stage '$name'; stages:$stage_names" >&2
        exit 2
    fi
done

started=$SECONDS
./setup.sh
# Debian's Emscripten finds acorn (package node-acorn) through NODE_PATH.
export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"

selected=" $* "
timings=()
current=""
trap '[[ -z $current ]] || echo "== $current: FAILED after $((SECONDS - stage_start)) s" >&2' EXIT

for line in "${STAGES[@]}"; do
    read -r name command <<<"$line"
    [[ $selected == "  " || $selected == *" $name "* ]] || continue
    current=$name
    stage_start=$SECONDS
    echo
    echo "== $name: $command"
    # Not inside an `if`, so that set -e stays in force within the stage.
    $command
    timings+=("$(printf '%-14s %4d s' "$name" $((SECONDS - stage_start)))")
    echo "== $name: $((SECONDS - stage_start)) s"
    current=""
done

echo
echo "== summary"
printf '%s\n' "${timings[@]}"
echo "== total: $((SECONDS - started)) s (including set-up)"
