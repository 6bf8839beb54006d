# Install and export rules of the whole project, included by the top level
# when HYPERSTREAMS_INSTALL is on (by default only when HyperStreams is the
# top-level project: one that embeds it with add_subdirectory() links the
# libraries into its own programs and installs those).
#
# `cmake --install` puts into the prefix the libraries (hyperstreams::shared,
# hyperstreams::backend and the internal host the backend links), their
# public headers, the CMake package (find_package(hyperstreams)) and the
# programs that were built. The build tree holds the same package, for
# find_package(hyperstreams) with hyperstreams_DIR set to the build tree.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(HYPERSTREAMS_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/hyperstreams")

# The libraries are static: each carries its private link dependencies
# (cppzmq/libzmq, Threads), which hyperstreamsConfig.cmake finds.
install(TARGETS hyperstreams_shared hyperstreams_client_host hyperstreams_backend
    EXPORT hyperstreamsTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY "${PROJECT_SOURCE_DIR}/shared/include/hyperstreams"
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES "${PROJECT_SOURCE_DIR}/native/backend/include/hyperstreams/backend.hpp"
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hyperstreams)

install(EXPORT hyperstreamsTargets
    NAMESPACE hyperstreams::
    DESTINATION ${HYPERSTREAMS_CMAKE_INSTALL_DIR})
export(EXPORT hyperstreamsTargets
    NAMESPACE hyperstreams::
    FILE "${PROJECT_BINARY_DIR}/hyperstreamsTargets.cmake")

# One config serves the prefix and the build tree: it includes the targets
# file beside it and uses no path relative to the prefix.
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/hyperstreamsConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/hyperstreamsConfig.cmake"
    INSTALL_DESTINATION ${HYPERSTREAMS_CMAKE_INSTALL_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/hyperstreamsConfigVersion.cmake"
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY SameMinorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/hyperstreamsConfig.cmake"
    "${PROJECT_BINARY_DIR}/hyperstreamsConfigVersion.cmake"
    DESTINATION ${HYPERSTREAMS_CMAKE_INSTALL_DIR})

# OPTIONAL: the programs that were built (./run.sh builds no benchmark tool).
set(_hyperstreams_programs hyperstreams-router hyperstreams-cli hyperstreams-factory)
if(HYPERSTREAMS_BUILD_BENCH)
    list(APPEND _hyperstreams_programs hyperstreams-bench)
endif()
install(TARGETS ${_hyperstreams_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} OPTIONAL)
