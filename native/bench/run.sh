#!/bin/sh
# The benchmark suite in one command (docs/BENCHMARKS.md): builds the router
# and hyperstreams-bench in the native-release preset, then runs every
# scenario beside nats-server and the baselines and prints the tables.
#   native/bench/run.sh                 # the default suite, a few minutes on 2 cores
#   native/bench/run.sh --big           # adds 10,000 subscribers and 50,000 connections
#   native/bench/run.sh --seconds 5     # any hyperstreams-bench option (see --help)
set -eu
cd "$(dirname "$0")/../.."
cmake --preset native-release --log-level=WARNING >/dev/null
cmake --build --preset native-release --parallel "${JOBS:-2}" --target hyperstreams-router hyperstreams-bench
exec build/native-release/native/bench/hyperstreams-bench suite "$@"
