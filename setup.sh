#!/usr/bin/env bash
# Installs every build and test dependency of HyperStreams on Debian 12:
# apt packages (as root, through sudo when not root) and the npm packages of
# package-lock.json. Safe to run again: it checks before it installs, and
# takes well under a second when everything is already there.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
    # build
    build-essential g++ cmake ninja-build ccache git ca-certificates
    # fuzzing: clang's libFuzzer and sanitizer runtimes
    clang libclang-rt-14-dev
    # LLVM's linker for the debug and sanitizer presets (links 2-3x faster than ld.bfd)
    lld
    # WebAssembly: Debian's Emscripten, and Node to run the wasm tests
    emscripten node-acorn nodejs npm
    # unit tests and benchmarks (googletest: sources, built in every preset)
    googletest libgtest-dev libgmock-dev libbenchmark-dev
    # router and native backend client (Boost 1.81, not Debian's default
    # 1.74: Beast's per-message compression threshold came after 1.74)
    libboost1.81-dev libboost-system1.81-dev libzmq3-dev cppzmq-dev libcereal-dev
    nlohmann-json3-dev libssl-dev libhiredis-dev
    # the router's allocator (CMake option HYPERSTREAMS_JEMALLOC)
    libjemalloc-dev
    # integration tests (several routers) and browser tests
    redis-server nats-server chromium
)

started=${EPOCHREALTIME//[!0-9]/}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "setup: need root or sudo to run: $*" >&2
        exit 1
    fi
}

missing_apt_packages() {
    local -A installed=()
    local name status
    while read -r name status; do
        [[ $status == ii ]] && installed[$name]=1
    done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${APT_PACKAGES[@]}" 2>/dev/null || true)
    for name in "${APT_PACKAGES[@]}"; do
        # NodeSource's nodejs package ships npm itself and conflicts with
        # Debian's npm package: any working npm will do.
        if [[ $name == npm ]] && command -v npm >/dev/null; then
            continue
        fi
        [[ -n ${installed[$name]:-} ]] || echo "$name"
    done
}

mapfile -t missing < <(missing_apt_packages)
if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    mapfile -t still_missing < <(missing_apt_packages)
    if ((${#still_missing[@]} > 0)); then
        echo "setup: still missing after apt-get install: ${still_missing[*]}" >&2
        exit 1
    fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 18)); then
    echo "setup: Node $(node --version) is too old; HyperStreams needs Node 18 or newer" >&2
    exit 1
fi

# Every npm project with a committed lock file: the npm package at the root
# and the dashboard in web/. npm ci wipes and reinstalls node_modules, so it
# runs only when the lock file (or the Node version) changed since its last
# successful run.
NPM_PROJECTS=(. web)
for project in "${NPM_PROJECTS[@]}"; do
    [[ -f $project/package-lock.json ]] || continue
    stamp=$project/node_modules/.hyperstreams-setup-stamp
    wanted=$({ sha256sum "$project/package-lock.json"; node --version; } | sha256sum | cut -d' ' -f1)
    if [[ ! -f $stamp || $(<"$stamp") != "$wanted" ]]; then
        echo "setup: npm ci in $project"
        (cd "$project" && npm ci --no-audit --no-fund)
        echo "$wanted" >"$stamp"
    fi
done

echo "setup: ${#APT_PACKAGES[@]} apt packages and npm packages up to date" \
    "($(((${EPOCHREALTIME//[!0-9]/} - started) / 1000)) ms)"
