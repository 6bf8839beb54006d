#!/usr/bin/env bash
# Sets up the machine, builds everything and runs the factory demo: the
# router serving the dashboard (web/) and the factory simulator behind it,
# both on their embedded defaults. Prints the address to open; Ctrl-C stops
# everything this script started.
#
#   ./run.sh                         the demo on http://127.0.0.1:7070/
#   ./run.sh --listen 0.0.0.0:8080   extra arguments go to the router
set -euo pipefail
cd "$(dirname "$0")"

./setup.sh
# Debian's Emscripten finds acorn (package node-acorn) through NODE_PATH.
export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"

cmake --preset native-release --log-level=WARNING
cmake --build --preset native-release --target hyperstreams-router hyperstreams-factory hyperstreams-cli
npm run --silent build               # the npm package: wasm build + JS layer in dist/
npm run --silent build --prefix web  # the dashboard, on that package, in web/dist

bin=build/native-release/native
router=$bin/router/hyperstreams-router
factory=$bin/simulator/hyperstreams-factory
logs=build/run
mkdir -p "$logs"

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
    echo "run: stopped"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a built program in the background, its output in $logs/<name>.log;
# the script ends when any of them does.
start() {
    local name=$1
    shift
    echo "run: $* (log: $logs/$name.log)"
    "$@" >"$logs/$name.log" 2>&1 &
    pids+=("$!")
}

# The router prints one line once it listens:
#   hyperstreams-router ready http=HOST:PORT ws=ws://HOST:PORT/ws backend=ENDPOINT admin=HOST:PORT
# factory.>: each machine's last telemetry is kept for a dashboard that opens.
start router "$router" --web web/dist --channels-namespaces '[{"pattern": "factory.>", "latest": true}]' "$@"
ready=""
for _ in {1..150}; do
    ready=$(grep -m1 '^hyperstreams-router ready ' "$logs/router.log" || true)
    [[ -n $ready || ! -d /proc/${pids[0]} ]] && break
    sleep 0.1
done
if [[ -z $ready ]]; then
    echo "run: the router did not start:" >&2
    cat "$logs/router.log" >&2
    exit 1
fi
http=${ready#* http=}
http=${http%% *}
backend=${ready#* backend=}
backend=${backend%% *}
admin=${ready##* admin=}
# Listening on every interface: this machine is reachable on loopback too.
[[ $http == 0.0.0.0:* ]] && http=127.0.0.1:${http#0.0.0.0:}
[[ $admin == 0.0.0.0:* ]] && admin=127.0.0.1:${admin#0.0.0.0:}

start factory "$factory" --router "$backend"

echo
echo "  Open http://$http/"
[[ $admin != off ]] && echo "  Router status: http://$admin/status and /metrics"
echo "  Command-line client: $bin/cli/hyperstreams --help"
echo
echo "  Ctrl-C stops the router and the simulator."
echo
status=0
wait -n "${pids[@]}" || status=$?
echo "run: a process ended by itself (status $status); see $logs/" >&2
exit "$status"
