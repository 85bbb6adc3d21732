# For the test scripts run as `cmake -D... -P script.cmake -- program args...`: sets OUT to the
# list of arguments after "--".
macro(command_after_separator OUT)
  set(${OUT} "")
  set(_after_separator FALSE)
  math(EXPR _last "${CMAKE_ARGC} - 1")
  foreach(_i RANGE ${_last})
    if(_after_separator)
      list(APPEND ${OUT} "${CMAKE_ARGV${_i}}")
    elseif("${CMAKE_ARGV${_i}}" STREQUAL "--")
      set(_after_separator TRUE)
    endif()
  endforeach()
endmacro()
