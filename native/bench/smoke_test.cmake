# The smoke test of hyperstreams-bench (registered by tests/CMakeLists.txt):
# every scenario with tiny parameters, nats-server included. Fails when the
# tool exits non-zero or a table is missing from what it printed.
#   cmake -DBENCH=path/to/hyperstreams-bench -P smoke_test.cmake
execute_process(
    COMMAND "${BENCH}" suite --subscribers 10 --payloads 64 --seconds 0.5
            --concurrency 1,4 --connections 200 --hold 0.2 --core-seconds 0.05
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err
    RESULT_VARIABLE status
    TIMEOUT 60)
message("${out}${err}")
if(NOT status EQUAL 0)
    message(FATAL_ERROR "hyperstreams-bench suite exited with ${status}")
endif()
foreach(expected IN ITEMS
        "\\| 10 \\| 64 B \\| [0-9]+ \\| [0-9]+ \\| [0-9]+ \\| [0-9.]+x \\| [0-9.]+x \\|"
        "\\| 10 \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\|"
        "\\| 4 \\| [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9.]+x \\|"
        "\\| 200 \\| 200 \\| [0-9]+/s \\| [0-9]+ KiB \\| [0-9]+ KiB \\| [0-9.-]+ \\|"
        "\\| client engine: receive \\+ poll_event, 1 message [^|]*\\| [0-9.]+ \\|")
    if(NOT out MATCHES "${expected}")
        message(FATAL_ERROR "hyperstreams-bench printed no line matching: ${expected}")
    endif()
endforeach()
