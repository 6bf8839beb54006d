# What ./run.sh builds, as a new user gets it: the native-release preset in
# a tree of its own, only the targets run.sh names (read from run.sh, so the
# two cannot drift), built without a single compiler warning, then
# `cmake --install` into an empty prefix, which must hold the programs and
# the backend library that README.md promises; the installed router must
# allocate with jemalloc (HYPERSTREAMS_JEMALLOC).
#   cmake -DSOURCE_DIR=<repo> -DTREE=<build tree> -DPREFIX=<empty prefix> -P run_targets_test.cmake
# The tree is kept between runs (ccache and Ninja make a rerun cheap); the
# prefix is emptied first. Build parallelism: $HYPERSTREAMS_JOBS, else 2.
set(JOBS 2)
if(DEFINED ENV{HYPERSTREAMS_JOBS})
    set(JOBS $ENV{HYPERSTREAMS_JOBS})
endif()

file(READ "${SOURCE_DIR}/run.sh" run_sh)
if(NOT run_sh MATCHES "\ncmake --build --preset native-release --target ([^\n#]+)")
    message(FATAL_ERROR "run.sh has no line `cmake --build --preset native-release --target ...`")
endif()
separate_arguments(targets UNIX_COMMAND "${CMAKE_MATCH_1}")
message("run.sh builds: ${targets}")

function(run what)
    execute_process(COMMAND ${ARGN}
        WORKING_DIRECTORY "${SOURCE_DIR}"
        OUTPUT_VARIABLE out
        ERROR_VARIABLE out
        RESULT_VARIABLE status)
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "${what} failed (${status}):\n${out}")
    endif()
    set(out "${out}" PARENT_SCOPE)
endfunction()

run("configure" ${CMAKE_COMMAND} --preset native-release -B "${TREE}" --log-level=WARNING)
# Only what is out of date compiles; a warning replayed by ccache counts too.
run("build" ${CMAKE_COMMAND} --build "${TREE}" --parallel ${JOBS} --target ${targets})
string(REGEX MATCHALL "[^\n]*warning:[^\n]*" warnings "${out}")
if(warnings)
    list(JOIN warnings "\n" warnings)
    message(FATAL_ERROR "building run.sh's targets warned:\n${warnings}\n\nthe whole output:\n${out}")
endif()

file(REMOVE_RECURSE "${PREFIX}")
run("cmake --install" ${CMAKE_COMMAND} --install "${TREE}" --prefix "${PREFIX}")
foreach(expected IN ITEMS
        bin/hyperstreams
        bin/hyperstreams-router
        bin/hyperstreams-factory
        include/hyperstreams/backend.hpp
        lib/cmake/hyperstreams/hyperstreamsConfig.cmake)
    if(NOT EXISTS "${PREFIX}/${expected}")
        message(FATAL_ERROR "cmake --install put no ${expected} into ${PREFIX}:\n${out}")
    endif()
endforeach()
run("the installed CLI" "${PREFIX}/bin/hyperstreams" --version)
# The release router allocates with jemalloc (HYPERSTREAMS_JEMALLOC): the
# dynamic linker binds malloc to it, for the C++ runtime too.
set(ENV{LD_DEBUG} bindings)
execute_process(COMMAND "${PREFIX}/bin/hyperstreams-router" --version
    OUTPUT_VARIABLE version ERROR_VARIABLE bindings RESULT_VARIABLE status)
unset(ENV{LD_DEBUG})
if(NOT status EQUAL 0 OR NOT bindings MATCHES "libstdc[+][+][^\n]* to [^\n]*libjemalloc[^\n]*: normal symbol `malloc'")
    string(REGEX MATCHALL "[^\n]*symbol `malloc'[^\n]*" malloc_bindings "${bindings}")
    list(JOIN malloc_bindings "\n" malloc_bindings)
    message(FATAL_ERROR "the installed router's malloc is not jemalloc's (status ${status}):\n${malloc_bindings}")
endif()
message("installed into ${PREFIX}: ${out}")
