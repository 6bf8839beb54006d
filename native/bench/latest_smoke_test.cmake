# The smoke test of hyperstreams-bench's latest scenario (registered by
# tests/CMakeLists.txt): 200 channels on one router, then on one router over
# redis-server. Fails when the tool exits non-zero or a run's line is
# missing; skipped when redis-server is not on PATH.
#   cmake -DBENCH=path/to/hyperstreams-bench -P latest_smoke_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/bench_smoke.cmake)
bench_smoke_need_redis()
bench_smoke_run(latest latest --redis "${REDIS_SERVER}" --channels 200)
foreach(mode IN ITEMS "one router" "one router over Redis")
    if(NOT out MATCHES "latest channels=200 payload=64 \\(${mode}\\): published in [0-9.]+ s; router RSS [0-9]+ KiB -> [0-9]+ KiB, [0-9-]+ bytes per channel kept; subscribe to its ack [0-9. /]+ ms, to the last latest value [0-9. /]+ ms")
        message(FATAL_ERROR "hyperstreams-bench printed no run of latest (${mode})")
    endif()
endforeach()
