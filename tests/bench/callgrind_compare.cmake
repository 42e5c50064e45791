# Compares the instructions of two counted functions of one program under callgrind.
#
#   cmake -DEXE=<program> -DA=<mode a> -DB=<mode b> -DFA=<function a> -DFB=<function b> -DPERMILLE=20
#         -DARGS="N;K" -P callgrind_compare.cmake
#
# Runs `<program> <mode> ARGS...` under `valgrind --tool=callgrind --toggle-collect=*<function>*` for each
# side and fails when the counts differ by more than PERMILLE thousandths (relative). Prints "SKIP" and returns without
# failing where valgrind is not installed (the test's SKIP_REGULAR_EXPRESSION).
find_program(VALGRIND valgrind)
if(NOT VALGRIND)
  message("SKIP: valgrind not found")
  return()
endif()
set(counts)
foreach(side A B)
  set(mode ${${side}})
  set(fn ${F${side}})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/callgrind.${mode}.out")
  execute_process(
    COMMAND ${VALGRIND} --tool=callgrind --callgrind-out-file=${out} "--toggle-collect=*${fn}*" ${EXE} ${mode} ${ARGS}
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "callgrind of ${EXE} ${mode} failed (${rc}):\n${err}")
  endif()
  file(STRINGS "${out}" summary REGEX "^summary:")
  string(REGEX MATCH "[0-9]+" ir "${summary}")
  if(NOT ir OR ir EQUAL 0)
    message(FATAL_ERROR "no instructions counted in ${fn}")
  endif()
  list(APPEND counts ${ir})
endforeach()
list(GET counts 0 a)
list(GET counts 1 b)
math(EXPR diff "${a} - ${b}")
if(diff LESS 0)
  math(EXPR diff "-${diff}")
endif()
# |a - b| <= PERMILLE/1000 * b, in integers.
math(EXPR lhs "${diff} * 1000")
math(EXPR rhs "${PERMILLE} * ${b}")
message("instructions: ${A} ${a}, ${B} ${b}, difference ${diff} (tolerance ${PERMILLE} per mille)")
if(lhs GREATER rhs)
  message(FATAL_ERROR "${A} and ${B} differ by more than ${PERMILLE} per mille: ${a} vs ${b}")
endif()
