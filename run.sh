#!/usr/bin/env bash
# Sets up the machine, builds the native release and runs the product.
# Ctrl-C stops everything this script started.
#
# Today that is what exists: the router once native/ builds it, else a report
# of what was built. The demo backend and the dashboard join here as they land.
set -euo pipefail
cd "$(dirname "$0")"

./setup.sh
cmake --preset native-release --log-level=WARNING
cmake --build --preset native-release

bin=build/native-release
router=$bin/native/hyperstreams-router

pids=()
stop_all() {
    trap - INT TERM EXIT
    ((${#pids[@]} > 0)) || return 0
    echo "run: stopping ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Give the router its graceful drain, then insist.
    for _ in {1..50}; do
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a built program in the background; the script ends when any of them does.
start() {
    echo "run: $*"
    "$@" &
    pids+=("$!")
}

if [[ -x $router ]]; then
    start "$router" "$@"
    wait -n "${pids[@]}"
else
    echo
    echo "Built in $bin:"
    find "$bin" -path "$bin/_deps" -prune -o -path "$bin/CMakeFiles" -prune -o \
        -type f \( -name '*.a' -o -perm -u+x \) -print | sed "s|^|  |" | sort
    echo
    echo "The router ($router) lands with the native/ part of a later issue;"
    echo "until then ./run.sh builds the libraries and tools that exist."
fi
