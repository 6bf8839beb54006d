# The smoke test of hyperstreams-bench's deflate scenario (registered by
# tests/CMakeLists.txt): the simulator's telemetry to 5 subscribers offering
# permessage-deflate, from a router with it off and one with it on. Fails
# when the tool exits non-zero (which it does when the router with it on
# did not negotiate it with every subscriber, or the one with it off did),
# or a row of the table is missing.
#   cmake -DBENCH=path/to/hyperstreams-bench -P deflate_smoke_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/bench_smoke.cmake)
bench_smoke_run(deflate deflate --subscribers 5 --seconds 0.3)
foreach(batch IN ITEMS 100 1)
    foreach(row IN ITEMS "off \\| 0" "on \\| 5")
        if(NOT out MATCHES "\\| 5 \\| ${batch} \\| ${row} \\| [0-9]+ \\| [0-9.]+ \\| [0-9.]+ \\| [0-9]+ \\|")
            message(FATAL_ERROR "hyperstreams-bench printed no row for batch ${batch}, deflate ${row}")
        endif()
    endforeach()
endforeach()
