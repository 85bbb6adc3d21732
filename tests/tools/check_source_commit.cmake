# The commit glq-bench's reports name (the header cmake/write_commit.cmake wrote at build time) is
# the checkout's HEAD, with "+dirty" exactly when tracked files differ from it.
execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE head OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
file(READ "${HEADER}" header)
if(failed)
  set(expected "")
else()
  execute_process(COMMAND git -C "${SOURCE_DIR}" status --porcelain --untracked-files=no OUTPUT_VARIABLE changes)
  set(expected "${head}")
  if(changes)
    string(APPEND expected "+dirty")
  endif()
endif()
string(FIND "${header}" "#define GLQJIT_SOURCE_COMMIT \"${expected}\"\n" found)
if(found EQUAL -1)
  message(FATAL_ERROR "${HEADER} does not name \"${expected}\":\n${header}")
endif()
message(STATUS "glq-bench names \"${expected}\"")
