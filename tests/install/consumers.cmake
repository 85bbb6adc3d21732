# Installs the build folder as it is into a scratch prefix, checks what lands there (the library
# and its SONAME link, headers, tools, the CMake and pkg-config packages; a RUNPATH with the
# toolkit's library folder but not the build folder), then builds and runs examples/c_consumer
# with pkg-config and examples/cxx_consumer with find_package. Each must exit 0 and print the
# library's version first.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DVERSION=X.Y.Z -DLIBDIR=lib
#         -DINCLUDEDIR=include -DBINDIR=bin -DCUDA_LIBRARY_DIR=... -DREADELF=... -DPKG_CONFIG=...
#         -DC_COMPILER=... -DCXX_COMPILER=... -P consumers.cmake
cmake_minimum_required(VERSION 3.19)

set(prefix ${WORK_DIR}/prefix)
set(libdir ${prefix}/${LIBDIR})
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# run(what COMMAND ...): runs the command, fails the test with its output unless it exits 0;
# its standard output is left in `run_output`.
function(run what)
  execute_process(${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

string(REGEX MATCH "^[0-9]+" major "${VERSION}")
set(tools ${prefix}/${BINDIR}/glq-dump ${prefix}/${BINDIR}/glq-tune ${prefix}/${BINDIR}/glq-bench)
foreach(path ${libdir}/libglqjit.so ${libdir}/libglqjit.so.${major} ${libdir}/libglqjit.so.${VERSION}
             ${prefix}/${INCLUDEDIR}/glqjit/glqjit.h ${prefix}/${INCLUDEDIR}/glqjit/glqjit.hpp
             ${prefix}/${INCLUDEDIR}/glqjit/error.hpp ${tools}
             ${libdir}/cmake/glqjit/glqjitConfig.cmake ${libdir}/cmake/glqjit/glqjitConfigVersion.cmake
             ${libdir}/cmake/glqjit/glqjitTargets.cmake ${libdir}/pkgconfig/glqjit.pc)
  if(NOT EXISTS ${path})
    message(FATAL_ERROR "cmake --install did not install ${path}")
  endif()
endforeach()
foreach(link libglqjit.so libglqjit.so.${major})
  if(NOT IS_SYMLINK ${libdir}/${link})
    message(FATAL_ERROR "${libdir}/${link} is not a symbolic link to libglqjit.so.${VERSION}")
  endif()
endforeach()

# Each installed binary finds NVRTC in the toolkit's library folder and nothing in the build folder.
foreach(binary ${libdir}/libglqjit.so.${VERSION} ${tools})
  run("readelf -d ${binary}" COMMAND ${READELF} -d ${binary})
  string(REGEX MATCHALL "\\((RUNPATH|RPATH)\\)[^\n]*" search_paths "${run_output}")
  string(FIND "${search_paths}" "${BUILD_DIR}" build_dir_at)
  string(FIND "${search_paths}" "${CUDA_LIBRARY_DIR}" cuda_dir_at)
  if(NOT build_dir_at EQUAL -1)
    message(FATAL_ERROR "the installed ${binary} still searches the build folder: ${search_paths}")
  endif()
  if(cuda_dir_at EQUAL -1)
    message(FATAL_ERROR "the installed ${binary} does not search ${CUDA_LIBRARY_DIR} for NVRTC: ${search_paths}")
  endif()
endforeach()

# Without a GPU both consumers report GLQJIT_NO_DRIVER; with one they open a context, whose
# kernel store goes here rather than to ~/.cache.
set(run_environment LD_LIBRARY_PATH=${libdir} GLQJIT_CACHE=${WORK_DIR}/glqjit.db)
function(run_consumer program)
  run("${program}" COMMAND ${CMAKE_COMMAND} -E env ${run_environment} ${program})
  if(NOT run_output MATCHES "^glqjit ${VERSION}\n")
    message(FATAL_ERROR "${program} did not print \"glqjit ${VERSION}\" first:\n${run_output}")
  endif()
  message(STATUS "${program}:\n${run_output}")
endfunction()

run("pkg-config glqjit" COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${libdir}/pkgconfig
                        ${PKG_CONFIG} --cflags --libs glqjit)
separate_arguments(pkg_config_flags UNIX_COMMAND "${run_output}")
run("building examples/c_consumer"
    COMMAND ${C_COMPILER} ${SOURCE_DIR}/examples/c_consumer/main.c ${pkg_config_flags} -o ${WORK_DIR}/c_consumer)
run_consumer(${WORK_DIR}/c_consumer)

run("configuring examples/cxx_consumer"
    COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/cxx_consumer -B ${WORK_DIR}/cxx -DCMAKE_PREFIX_PATH=${prefix}
            -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
run("building examples/cxx_consumer" COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/cxx)
run_consumer(${WORK_DIR}/cxx/cxx_consumer)
