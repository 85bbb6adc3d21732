# Run at every build (tools/CMakeLists.txt): writes OUTPUT, a header defining GLQJIT_SOURCE_COMMIT
# as the commit of SOURCE_DIR being built ("+dirty" when tracked files differ from it; "" outside a
# git checkout), so that glq-bench's reports name the code they measured wherever the binary runs.
# The file is rewritten only when that changes, so an unchanged tree rebuilds nothing.
execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
if(failed)
  set(commit "")
else()
  execute_process(COMMAND git -C "${SOURCE_DIR}" status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE changes ERROR_QUIET)
  if(changes)
    string(APPEND commit "+dirty")
  endif()
endif()
set(text "// Generated at build time by cmake/write_commit.cmake.\n#pragma once\n#define GLQJIT_SOURCE_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
