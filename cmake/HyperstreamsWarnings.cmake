# HYPERSTREAMS_WARNINGS: the warning flags every HyperStreams target adds as
# PRIVATE compile options (target_compile_options(t PRIVATE ${HYPERSTREAMS_WARNINGS})).
# Nothing is added globally, so third-party code (GoogleTest) and projects
# embedding HyperStreams keep their own flags.
#
# The set compiles clean with g++ 12, clang 14 and Emscripten 3.1.6's clang.
#
# HYPERSTREAMS_TEST_WARNINGS, for tests and benchmarks, leaves out the
# conversion and declaration checks: in test code they flag literals compared
# with sizes and file-local helpers, not defects, and -Werror on them would
# only slow the writing of tests. Everything else applies to tests too.
if(MSVC)
    set(HYPERSTREAMS_WARNINGS /W4 /permissive-)
    if(HYPERSTREAMS_WERROR)
        list(APPEND HYPERSTREAMS_WARNINGS /WX)
    endif()
    set(HYPERSTREAMS_TEST_WARNINGS ${HYPERSTREAMS_WARNINGS})
else()
    set(HYPERSTREAMS_WARNINGS
        -Wall
        -Wextra
        -Wpedantic
        -Wshadow
        -Wconversion
        -Wsign-conversion
        -Wold-style-cast
        -Wnon-virtual-dtor
        -Woverloaded-virtual
        -Wcast-align
        -Wformat=2
        -Wimplicit-fallthrough
        -Wmissing-declarations
        $<$<CXX_COMPILER_ID:GNU>:-Wduplicated-cond>
        $<$<CXX_COMPILER_ID:GNU>:-Wlogical-op>)
    if(HYPERSTREAMS_WERROR)
        list(APPEND HYPERSTREAMS_WARNINGS -Werror)
    endif()
    set(HYPERSTREAMS_TEST_WARNINGS ${HYPERSTREAMS_WARNINGS})
    list(REMOVE_ITEM HYPERSTREAMS_TEST_WARNINGS
        -Wconversion -Wsign-conversion -Wold-style-cast -Wmissing-declarations)
    # `if (c) EXPECT_TRUE(x);` is safe (GoogleTest's macros guard their own
    # else), but g++ reports the else inside the macro as dangling.
    list(APPEND HYPERSTREAMS_TEST_WARNINGS $<$<CXX_COMPILER_ID:GNU>:-Wno-dangling-else>)
    # g++ 12's -Wrestrict misreads std::string concatenations that libstdc++
    # inlines in an optimised build (GCC bug 105651, fixed in 13): the tests'
    # "prefix" + std::string(...) lines set it off, in char_traits.h.
    list(APPEND HYPERSTREAMS_TEST_WARNINGS
        $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)
endif()
