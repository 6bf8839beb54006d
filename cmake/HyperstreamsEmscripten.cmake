# Settings for the wasm preset (Emscripten toolchain). Included by the top
# level CMakeLists.txt when EMSCRIPTEN is set, before any target exists.

# Debian's emscripten runs tools/acorn-optimizer.js with the system node,
# which finds acorn (package node-acorn) only through NODE_PATH. The presets
# set it for configure and build; the launchers below also set it for every
# compile and link, so `ninja -C build/wasm` works from any shell.
set(HYPERSTREAMS_NODE_MODULES_DIR "/usr/share/nodejs" CACHE PATH
    "Directory holding Debian's node modules (acorn), for Emscripten's JS optimizer")
if(EXISTS "${HYPERSTREAMS_NODE_MODULES_DIR}/acorn")
    set(_hyperstreams_node_env
        "${CMAKE_COMMAND}" -E env "NODE_PATH=${HYPERSTREAMS_NODE_MODULES_DIR}")
    if(NOT DEFINED CMAKE_CXX_COMPILER_LAUNCHER)
        set(CMAKE_CXX_COMPILER_LAUNCHER ${_hyperstreams_node_env})
    endif()
    if(NOT DEFINED CMAKE_CXX_LINKER_LAUNCHER)
        set(CMAKE_CXX_LINKER_LAUNCHER ${_hyperstreams_node_env})
    endif()
else()
    message(WARNING "acorn not found in ${HYPERSTREAMS_NODE_MODULES_DIR}: every link fails in Emscripten's "
        "JS optimizer unless NODE_PATH finds acorn; run ./setup.sh (package node-acorn) or set "
        "HYPERSTREAMS_NODE_MODULES_DIR")
endif()

# nlohmann/json is header-only, but the host's /usr/include must never be on
# emcc's include path (its libc headers would shadow Emscripten's). Expose
# only the nlohmann directory, through a symlink in the build tree, under the
# same target name find_package(nlohmann_json) gives natively.
if(NOT TARGET nlohmann_json::nlohmann_json)
    find_path(HYPERSTREAMS_HOST_NLOHMANN_INCLUDE_DIR nlohmann/json.hpp
        PATHS /usr/include /usr/local/include
        NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
    if(HYPERSTREAMS_HOST_NLOHMANN_INCLUDE_DIR)
        set(_hyperstreams_host_headers "${CMAKE_BINARY_DIR}/host-headers")
        file(MAKE_DIRECTORY "${_hyperstreams_host_headers}")
        file(CREATE_LINK "${HYPERSTREAMS_HOST_NLOHMANN_INCLUDE_DIR}/nlohmann"
            "${_hyperstreams_host_headers}/nlohmann" SYMBOLIC)
        add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
        set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
            INTERFACE_INCLUDE_DIRECTORIES "${_hyperstreams_host_headers}")
    elseif(HYPERSTREAMS_BUILD_TESTS)
        message(FATAL_ERROR "nlohmann/json.hpp not found in /usr/include or /usr/local/include (the "
            "wasm tests read the golden vectors with it): run ./setup.sh (package nlohmann-json3-dev)")
    endif()
endif()

# Makes `target` a plain command-line program for Node: real files through
# NODERAWFS (absolute paths work as natively), the exit code of main() as the
# process exit code, and synchronous instantiation, because Emscripten
# 3.1.6's async loader calls the global fetch() on a file path when it exists
# (Node >= 18) and fails. The loader is CommonJS; the .cjs suffix keeps Node
# from reading it as an ES module under the root package.json ("type": "module").
function(hyperstreams_wasm_node_program target)
    set_target_properties(${target} PROPERTIES SUFFIX ".cjs")
    target_link_options(${target} PRIVATE
        -sENVIRONMENT=node
        -sNODERAWFS=1
        -sEXIT_RUNTIME=1
        -sALLOW_MEMORY_GROWTH=1
        -sWASM_ASYNC_COMPILATION=0)
endfunction()
