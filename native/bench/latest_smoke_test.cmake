# The smoke test of hyperstreams-bench's latest scenario (registered by
# tests/CMakeLists.txt): 200 channels on one router, then on one router over
# redis-server. Fails when the tool exits non-zero or a run's line is
# missing; skipped when redis-server is not on PATH.
#   cmake -DBENCH=path/to/hyperstreams-bench -P latest_smoke_test.cmake
find_program(REDIS_SERVER redis-server)
if(NOT REDIS_SERVER)
    message("SKIPPED: redis-server is not on PATH (setup.sh installs Debian's redis-server)")
    return()
endif()
execute_process(
    COMMAND "${BENCH}" latest --redis "${REDIS_SERVER}" --channels 200
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err
    RESULT_VARIABLE status
    TIMEOUT 60)
message("${out}${err}")
if(NOT status EQUAL 0)
    message(FATAL_ERROR "hyperstreams-bench latest exited with ${status}")
endif()
foreach(mode IN ITEMS "one router" "one router over Redis")
    if(NOT out MATCHES "latest channels=200 payload=64 \\(${mode}\\): published in [0-9.]+ s; router RSS [0-9]+ KiB -> [0-9]+ KiB, [0-9-]+ bytes per channel kept; subscribe to its ack [0-9. /]+ ms, to the last latest value [0-9. /]+ ms")
        message(FATAL_ERROR "hyperstreams-bench printed no run of latest (${mode})")
    endif()
endforeach()
