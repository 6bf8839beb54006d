# HYPERSTREAMS_WARNINGS: the warning flags every HyperStreams target adds as
# PRIVATE compile options (target_compile_options(t PRIVATE ${HYPERSTREAMS_WARNINGS})).
# Nothing is added globally, so third-party code (GoogleTest) and projects
# embedding HyperStreams keep their own flags.
#
# The set compiles clean with g++ 12, clang 14 and Emscripten 3.1.6's clang.
if(MSVC)
    set(HYPERSTREAMS_WARNINGS /W4 /permissive-)
    if(HYPERSTREAMS_WERROR)
        list(APPEND HYPERSTREAMS_WARNINGS /WX)
    endif()
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
endif()
