# The smoke test of hyperstreams-bench's cluster scenario (registered by
# tests/CMakeLists.txt): redis-server, three routers over it and one on its
# own, tiny parameters. Fails when the tool exits non-zero or a table is
# missing from what it printed; skipped when redis-server is not on PATH.
#   cmake -DBENCH=path/to/hyperstreams-bench -P cluster_smoke_test.cmake
find_program(REDIS_SERVER redis-server)
if(NOT REDIS_SERVER)
    message("SKIPPED: redis-server is not on PATH (setup.sh installs Debian's redis-server)")
    return()
endif()
execute_process(
    COMMAND "${BENCH}" cluster --redis "${REDIS_SERVER}" --subscribers 3 --payloads 64 --seconds 0.3
            --concurrency 1
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err
    RESULT_VARIABLE status
    TIMEOUT 60)
message("${out}${err}")
if(NOT status EQUAL 0)
    message(FATAL_ERROR "hyperstreams-bench cluster exited with ${status}")
endif()
set(p50_p99 "[0-9]+ / [0-9]+")
set(call "[0-9]+ / [0-9]+ / [0-9]+ \\([0-9]+ calls/s\\)")
foreach(expected IN ITEMS
        "Redis round trip \\(PING[^\n]*p50 [0-9]+ us"
        "\\| 3 \\| 64 B \\| [0-9]+ \\| [0-9]+ \\| [0-9.]+x \\| [0-9-]+ \\| [0-9-]+ \\| [0-9.x-]+ \\| [0-9-]+ \\| [0-9.]+ \\([a-z]+ [0-9.]+[^|]*\\) \\| [0-9]+ / [0-9]+ \\|"
        "\\| 3 \\| 64 B \\| ${p50_p99} \\| ${p50_p99} \\| ${p50_p99} \\|"
        "\\| 3 \\| ${p50_p99} \\| ${p50_p99} \\| ${p50_p99} \\| -?[0-9]+ us \\| -?[0-9.]+ \\| [0-9.]+ [^|]*\\|"
        "\\| 1 \\| ${call} \\| ${call} \\| [0-9.]+x \\|")
    if(NOT out MATCHES "${expected}")
        message(FATAL_ERROR "hyperstreams-bench cluster printed no line matching: ${expected}")
    endif()
endforeach()
