# What `cmake --install` puts under the prefix (DESIGN.md: only include/glqjit/ of the sources):
# libglqjit.so with its SONAME link, the public headers, the three tools, a CMake package
# (find_package(glqjit) -> glqjit::glqjit) and glqjit.pc for pkg-config. The static layers are
# linked into the library and the tools, so none of them is installed.
include(CMakePackageConfigHelpers)

install(TARGETS glqjit EXPORT glqjitTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/glqjit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")
install(TARGETS glq-dump glq-tune glq-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(package_dir ${CMAKE_INSTALL_LIBDIR}/cmake/glqjit)
install(EXPORT glqjitTargets NAMESPACE glqjit:: DESTINATION ${package_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/glqjitConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/glqjitConfig.cmake INSTALL_DESTINATION ${package_dir})
# Before 1.0 a new minor version may change the ABI (the C structs), so only 0.1.x satisfies 0.1.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/glqjitConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/glqjitConfig.cmake ${PROJECT_BINARY_DIR}/glqjitConfigVersion.cmake
        DESTINATION ${package_dir})

# glqjit.pc names its prefix relative to its own folder, so that the package works wherever
# `cmake --install --prefix` puts it.
file(RELATIVE_PATH pkgconfig_to_prefix /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" pkgconfig_to_prefix "${pkgconfig_to_prefix}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/glqjit.pc.in ${PROJECT_BINARY_DIR}/glqjit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/glqjit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
