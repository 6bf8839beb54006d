# Test, benchmark and fuzz plumbing, shared by native and wasm builds.
#
#   hyperstreams_add_test(NAME test_frame SOURCES tests/shared/test_frame.cpp
#                         LIBS hyperstreams::shared [TIMEOUT 60] [LABELS shared])
#       A GoogleTest executable registered with CTest. In the wasm preset it is
#       built with Emscripten and CTest runs it under Node (the toolchain's
#       CMAKE_CROSSCOMPILING_EMULATOR).
#   hyperstreams_add_benchmark(NAME ... SOURCES ... LIBS ...)
#       Google Benchmark natively; in wasm the shim in tests/bench/wasm_benchmark_shim.
#   hyperstreams_add_fuzzer(NAME ... SOURCES ... LIBS ... CORPUS <dir> SECONDS <n>)
#       A libFuzzer target plus a CTest smoke run of <n> seconds on <dir>;
#       the target hyperstreams_fuzzers builds them all.
#
# Relative SOURCES are resolved against the calling CMakeLists.txt, as usual.

include_guard(GLOBAL)

set(HYPERSTREAMS_VECTORS_DIR "${PROJECT_SOURCE_DIR}/tests/vectors")

# GoogleTest is built from the sources of Debian's googletest package in every
# preset (native, sanitizers, wasm), so all builds run the same GoogleTest
# compiled with the same flags as the tests.
if(HYPERSTREAMS_BUILD_TESTS AND NOT TARGET GTest::gtest)
    set(HYPERSTREAMS_GTEST_SOURCE_DIR "/usr/src/googletest" CACHE PATH
        "GoogleTest sources (Debian package googletest)")
    if(NOT EXISTS "${HYPERSTREAMS_GTEST_SOURCE_DIR}/CMakeLists.txt")
        message(FATAL_ERROR "GoogleTest sources not found in ${HYPERSTREAMS_GTEST_SOURCE_DIR}: "
            "run ./setup.sh (package googletest) or set HYPERSTREAMS_GTEST_SOURCE_DIR")
    endif()
    set(CMAKE_POLICY_DEFAULT_CMP0077 NEW)
    set(BUILD_GMOCK ON)
    set(INSTALL_GTEST OFF)
    if(EMSCRIPTEN)
        set(gtest_disable_pthreads ON)
    endif()
    add_subdirectory("${HYPERSTREAMS_GTEST_SOURCE_DIR}" "${PROJECT_BINARY_DIR}/_deps/googletest"
        EXCLUDE_FROM_ALL SYSTEM)
endif()

if(HYPERSTREAMS_BUILD_TESTS AND NOT TARGET nlohmann_json::nlohmann_json)
    find_package(nlohmann_json 3.2 CONFIG REQUIRED)
endif()

function(hyperstreams_add_test)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS")
    if(NOT arg_NAME OR NOT arg_SOURCES)
        message(FATAL_ERROR "hyperstreams_add_test: NAME and SOURCES are required")
    endif()
    if(NOT arg_TIMEOUT)
        set(arg_TIMEOUT 120)
    endif()

    add_executable(${arg_NAME} ${arg_SOURCES})
    target_link_libraries(${arg_NAME} PRIVATE ${arg_LIBS} GTest::gmock_main)
    target_compile_options(${arg_NAME} PRIVATE ${HYPERSTREAMS_TEST_WARNINGS})
    target_compile_definitions(${arg_NAME} PRIVATE
        HYPERSTREAMS_VECTORS_DIR="${HYPERSTREAMS_VECTORS_DIR}")
    if(EMSCRIPTEN)
        # Test code may use exceptions (EXPECT_THROW, std::vector::at); the
        # library under test still compiles with -fno-exceptions.
        target_compile_options(${arg_NAME} PRIVATE -fexceptions)
        target_link_options(${arg_NAME} PRIVATE -fexceptions)
        # The library under test keeps the preset's -O3; the test's own code
        # needs no optimizing, and -O0 at link skips binaryen's passes over
        # the whole program (a 2 s link instead of 15-40 s per test).
        target_compile_options(${arg_NAME} PRIVATE -O1)
        target_link_options(${arg_NAME} PRIVATE -O0)
        hyperstreams_wasm_node_program(${arg_NAME})
    endif()

    add_test(NAME ${arg_NAME} COMMAND ${arg_NAME})
    set_tests_properties(${arg_NAME} PROPERTIES
        TIMEOUT ${arg_TIMEOUT}
        LABELS "${arg_LABELS}")
    if(NOT EMSCRIPTEN)
        # Read only by sanitizer builds; a finding ends the test with a failure.
        set_property(TEST ${arg_NAME} PROPERTY ENVIRONMENT
            "ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1"
            "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
            "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
    endif()
endfunction()

function(hyperstreams_add_benchmark)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME" "SOURCES;LIBS")
    if(EMSCRIPTEN)
        add_executable(${arg_NAME} ${arg_SOURCES})
        target_include_directories(${arg_NAME} SYSTEM PRIVATE
            "${PROJECT_SOURCE_DIR}/tests/bench/wasm_benchmark_shim")
        hyperstreams_wasm_node_program(${arg_NAME})
    else()
        if(NOT TARGET benchmark::benchmark)
            find_package(benchmark CONFIG QUIET)
        endif()
        if(NOT TARGET benchmark::benchmark)
            message(WARNING "Google Benchmark not found (package libbenchmark-dev): ${arg_NAME} is not built")
            return()
        endif()
        add_executable(${arg_NAME} ${arg_SOURCES})
        target_link_libraries(${arg_NAME} PRIVATE benchmark::benchmark)
    endif()
    target_link_libraries(${arg_NAME} PRIVATE ${arg_LIBS})
    target_compile_options(${arg_NAME} PRIVATE ${HYPERSTREAMS_TEST_WARNINGS})
endfunction()

function(hyperstreams_add_fuzzer)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;CORPUS;SECONDS" "SOURCES;LIBS")
    if(NOT arg_SECONDS)
        set(arg_SECONDS 30)
    endif()

    add_executable(${arg_NAME} ${arg_SOURCES})
    target_link_libraries(${arg_NAME} PRIVATE ${arg_LIBS})
    target_compile_options(${arg_NAME} PRIVATE ${HYPERSTREAMS_WARNINGS} -fsanitize=fuzzer)
    target_link_options(${arg_NAME} PRIVATE -fsanitize=fuzzer)
    if(NOT TARGET hyperstreams_fuzzers)
        add_custom_target(hyperstreams_fuzzers)
    endif()
    add_dependencies(hyperstreams_fuzzers ${arg_NAME})

    # libFuzzer adds what it finds to the first corpus directory and only
    # reads the others: new inputs go to the build tree, the committed seeds
    # stay untouched. Crash, leak and timeout reproducers land in artifacts/.
    set(work_dir "${CMAKE_CURRENT_BINARY_DIR}/${arg_NAME}-corpus")
    set(artifact_dir "${CMAKE_CURRENT_BINARY_DIR}/${arg_NAME}-artifacts")
    file(MAKE_DIRECTORY "${work_dir}" "${artifact_dir}")
    add_test(NAME ${arg_NAME}
        COMMAND ${arg_NAME}
            -max_total_time=${arg_SECONDS}
            -timeout=10
            -rss_limit_mb=2048
            -max_len=4096
            -detect_leaks=1
            -print_final_stats=1
            -artifact_prefix=${artifact_dir}/
            "${work_dir}" "${arg_CORPUS}")
    # COST: CTest starts the longest runs first, so that two at a time end together.
    set_tests_properties(${arg_NAME} PROPERTIES
        TIMEOUT 300
        COST ${arg_SECONDS}
        LABELS fuzz
        ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()
