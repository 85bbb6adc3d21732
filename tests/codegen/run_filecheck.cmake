# One FileCheck golden: runs the command after "--" (glq-dump kernel ... --emit source|ptx) with
# `-o OUTPUT`, then FileCheck CHECK_FILE on what it wrote.
#   FILECHECK    the FileCheck program
#   CHECK_FILE   the .check file
#   OUTPUT       where the command writes (removed first)
#   PREFIXES     FileCheck check prefixes: one FileCheck pass per @@-separated item, each item
#                comma separated prefixes (default: one pass with CHECK)
#   DEFINES      FileCheck -D variables, NAME=VALUE separated by @@
cmake_minimum_required(VERSION 3.19)

include(${CMAKE_CURRENT_LIST_DIR}/../command_after_separator.cmake)
command_after_separator(command)
string(REPLACE ";" " " shown "${command}")

file(REMOVE "${OUTPUT}")
execute_process(COMMAND ${command} -o "${OUTPUT}" RESULT_VARIABLE rc ERROR_VARIABLE err TIMEOUT 300)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "${shown} -o ${OUTPUT} failed (${rc}):\n${err}")
endif()

set(filecheck_args "${CHECK_FILE}" "--input-file=${OUTPUT}")
if(DEFINED DEFINES)
  string(REPLACE "@@" ";" defines "${DEFINES}")
  foreach(define IN LISTS defines)
    list(APPEND filecheck_args "-D${define}")
  endforeach()
endif()
if(NOT DEFINED PREFIXES)
  set(PREFIXES CHECK)
endif()
string(REPLACE "@@" ";" passes "${PREFIXES}")
foreach(prefixes IN LISTS passes)
  execute_process(COMMAND "${FILECHECK}" ${filecheck_args} "--check-prefixes=${prefixes}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "FileCheck ${CHECK_FILE} (prefixes ${prefixes}) failed on the output of\n  ${shown}\n${out}${err}")
  endif()
endforeach()
message(STATUS "ok: ${shown} | FileCheck ${CHECK_FILE}")
