# What the smoke tests of hyperstreams-bench share (included by each
# *smoke_test.cmake, run with -DBENCH=path/to/hyperstreams-bench -P).

# Ends the including script, as skipped, when redis-server is not on PATH;
# sets REDIS_SERVER otherwise.
macro(bench_smoke_need_redis)
    find_program(REDIS_SERVER redis-server)
    if(NOT REDIS_SERVER)
        message("SKIPPED: redis-server is not on PATH (setup.sh installs Debian's redis-server)")
        return()
    endif()
endmacro()

# Runs ${BENCH} with the arguments after `what` (60 s at most), shows what it
# printed and fails unless it exits 0 ("hyperstreams-bench <what> exited
# with ..."); sets `out` to its standard output.
function(bench_smoke_run what)
    execute_process(
        COMMAND "${BENCH}" ${ARGN}
        OUTPUT_VARIABLE out
        ERROR_VARIABLE err
        RESULT_VARIABLE status
        TIMEOUT 60)
    message("${out}${err}")
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "hyperstreams-bench ${what} exited with ${status}")
    endif()
    set(out "${out}" PARENT_SCOPE)
endfunction()

# Fails unless `out` matches every regular expression after `who`
# ("<who> printed no line matching: ...").
function(bench_smoke_expect_lines who)
    foreach(expected IN LISTS ARGN)
        if(NOT out MATCHES "${expected}")
            message(FATAL_ERROR "${who} printed no line matching: ${expected}")
        endif()
    endforeach()
endfunction()
