# The smoke test of hyperstreams-bench's cluster scenario (registered by
# tests/CMakeLists.txt): redis-server, three routers over it and one on its
# own, tiny parameters. Fails when the tool exits non-zero or a table is
# missing from what it printed; skipped when redis-server is not on PATH.
# Then once more with Redis 2 ms away (--redis-delay-us): fails unless the
# round trip the tool measures through its forwarder is at least 4 ms.
# And over TLS (--redis-tls): the routers' Redis connections are rediss://.
# And with a replica of Redis (--redis-replicas 1) that every publish waits
# for (cluster.redis_wait_replicas 1): nothing lost.
#   cmake -DBENCH=path/to/hyperstreams-bench -P cluster_smoke_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/bench_smoke.cmake)
bench_smoke_need_redis()
bench_smoke_run(cluster cluster --redis "${REDIS_SERVER}" --subscribers 3 --payloads 64 --seconds 0.3
                --concurrency 1)
set(p50_p99 "[0-9]+ / [0-9]+")
set(call "[0-9]+ / [0-9]+ / [0-9]+ \\([0-9]+ calls/s\\)")
bench_smoke_expect_lines("hyperstreams-bench cluster"
        "Redis round trip \\(PING[^\n]*p50 [0-9]+ us"
        "Redis PUBLISH of 64 B to 3 subscriber connections[^\n]*p50 [0-9]+ us"
        "fanout target=single-paced subscribers=3 payload=64 batch=[0-9]+ window=[0-9]+ rate=[0-9]+: [^\n]* lost 0,"
        "\\| 3 \\| 64 B \\| [0-9]+ \\| [0-9]+ \\| [0-9.]+x \\| [0-9-]+ \\| [0-9-]+ \\| [0-9.x-]+ \\| [0-9]+ \\| [0-9-]+ \\| [0-9.x-]+ \\| [0-9-]+ \\| [0-9.]+ \\([a-z]+ [0-9.]+[^|]*\\) \\| [0-9]+ / [0-9]+ / [0-9]+ \\|"
        "\\| 3 \\| 64 B \\| ${p50_p99} \\| ${p50_p99} \\| ${p50_p99} \\|"
        "\\| 3 \\| ${p50_p99} \\| ${p50_p99} \\| ${p50_p99} \\| -?[0-9]+ us \\| -?[0-9.]+ \\| [0-9.]+ [^|]*\\|"
        "\\| 1 \\| ${call} \\| ${call} \\| [0-9.]+x \\|")

bench_smoke_run(cluster-delay cluster --redis "${REDIS_SERVER}" --subscribers 3 --payloads 64 --seconds 0.3
                --concurrency , --redis-delay-us 2000)
bench_smoke_expect_lines("hyperstreams-bench cluster --redis-delay-us 2000"
        "Redis reached through a forwarder that holds every chunk 2000 us each way"
        "Redis round trip \\(PING[^\n]*: p50 ([4-9][0-9][0-9][0-9]|[1-9][0-9][0-9][0-9][0-9]+) us"
        "fanout target=cluster subscribers=3 payload=64 batch=[0-9]+ window=[0-9]+: [^\n]* lost 0,"
        "fanout target=cluster subscribers=3 payload=64 batch=1 window=1: [^\n]* lost 0,"
        "Redis 2000 us away each way \\(--redis-delay-us\\)")

bench_smoke_run(cluster-tls cluster --redis "${REDIS_SERVER}" --subscribers 3 --payloads 64 --seconds 0.3
                --concurrency , --redis-tls)
bench_smoke_expect_lines("hyperstreams-bench cluster --redis-tls"
        "the routers reach Redis over TLS \\(rediss://127.0.0.1:[0-9]+\\)"
        "fanout target=cluster subscribers=3 payload=64 batch=[0-9]+ window=[0-9]+: [^\n]* lost 0,"
        "fanout target=cluster subscribers=3 payload=64 batch=1 window=1: [^\n]* lost 0,"
        "the routers reach Redis over TLS \\(--redis-tls\\)")

bench_smoke_run(cluster-replica cluster --redis "${REDIS_SERVER}" --subscribers 3 --payloads 64 --seconds 0.3
                --concurrency , --redis-replicas 1 --router-flag --cluster-redis-wait-replicas --router-flag 1)
bench_smoke_expect_lines("hyperstreams-bench cluster --redis-replicas 1"
        "1 replica of Redis online \\(--redis-replicas\\)"
        "fanout target=cluster subscribers=3 payload=64 batch=[0-9]+ window=[0-9]+: [^\n]* lost 0,"
        "fanout target=cluster subscribers=3 payload=64 batch=1 window=1: [^\n]* lost 0,")
