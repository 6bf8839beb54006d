# The smoke test of hyperstreams-bench (registered by tests/CMakeLists.txt):
# every scenario with tiny parameters, nats-server included, then fan-out to
# every target with the subscribers over one client thread and over three
# (an uneven share each, the publisher beside them on the first). Fails when
# the tool exits non-zero or a table is missing from what it printed.
#   cmake -DBENCH=path/to/hyperstreams-bench -P smoke_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/bench_smoke.cmake)
bench_smoke_run(suite suite --subscribers 10 --payloads 64 --seconds 0.5
                --concurrency 1,4 --connections 200 --hold 0.2 --core-seconds 0.05)
bench_smoke_expect_lines(hyperstreams-bench
        "\\| 10 \\| 64 B \\| [0-9]+ \\| [0-9]+ \\| [0-9]+ \\| [0-9.]+x \\| [0-9.]+x \\|"
        "\\| 10 \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\|"
        "\\| 4 \\| [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9]+ / [0-9]+ / [0-9]+ \\| [0-9.]+x \\|"
        "\\| 200 \\| 200 \\| [0-9]+/s \\| [0-9]+ KiB \\| [0-9]+ KiB \\| [0-9.-]+ \\|"
        "\\| client engine: receive \\+ poll_event, 1 message [^|]*\\| [0-9.]+ \\|")

foreach(threads IN ITEMS 1 3)
    bench_smoke_run("fanout --client-threads ${threads}"
                    fanout --subscribers 10 --payloads 64 --seconds 0.3 --client-threads ${threads})
    foreach(target IN ITEMS router nats baseline)
        # The throughput run, then the one-message-at-a-time run (every
        # publish waits for the last delivery, on whichever thread it is).
        foreach(batch IN ITEMS 100 1)
            if(NOT out MATCHES "fanout target=${target} subscribers=10 payload=64 batch=${batch} window=[0-9]+: [^\n]* lost 0,[^\n]*client CPU [0-9]+ ns per delivery \\([0-9]+% of a core over ${threads} threads?, the busiest [0-9]+%\\)")
                message(FATAL_ERROR "hyperstreams-bench fanout --client-threads ${threads}: no lossless ${target} run with batch ${batch}")
            endif()
        endforeach()
        if(NOT out MATCHES "\\| 10 \\| 64 B \\| ${target} \\| [0-9]+ \\| [0-9]+ \\| [0-9]+ \\| ${threads} \\| [0-9]+% \\| [0-9]+% \\|")
            message(FATAL_ERROR "hyperstreams-bench fanout --client-threads ${threads}: no CPU row for ${target}")
        endif()
    endforeach()
endforeach()

# uWebSockets (--targets uws): a server that cannot be started is named and
# fails the run; when hyperstreams-bench-uws was built beside the tool
# (-DHYPERSTREAMS_UWS_DIR), a lossless fan-out to it.
execute_process(
    COMMAND "${BENCH}" fanout --targets uws --uws /nonexistent/hyperstreams-bench-uws --subscribers 2
            --payloads 64 --seconds 0.2 --no-latency
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status TIMEOUT 60)
if(status EQUAL 0 OR NOT err MATCHES "/nonexistent/hyperstreams-bench-uws")
    message(FATAL_ERROR "hyperstreams-bench fanout --uws /nonexistent: exited with ${status}, said: ${err}")
endif()
get_filename_component(bench_dir "${BENCH}" DIRECTORY)
if(EXISTS "${bench_dir}/hyperstreams-bench-uws")
    bench_smoke_run("fanout --targets uws" fanout --targets uws --subscribers 10 --payloads 64 --seconds 0.3)
    bench_smoke_expect_lines("hyperstreams-bench fanout --targets uws"
        "fanout target=uws subscribers=10 payload=64 batch=100 window=[0-9]+: [^\n]* lost 0,")
endif()
