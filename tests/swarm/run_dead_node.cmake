# Runs swarm_mpi_dead_node under mpiexec and checks that every surviving rank finished all its steps near the
# optimum, and that the dead rank's ring neighbours (and only they) report it lost. Arguments (-D):
#   MPIEXEC, NUMPROC_FLAG, FLAGS (a ;-list), EXE, RANKS, TIMEOUT (seconds, given to the program)
execute_process(
  COMMAND ${MPIEXEC} ${NUMPROC_FLAG} ${RANKS} ${FLAGS} --mca orte_abort_on_non_zero_status 0 ${EXE} ${TIMEOUT}
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  RESULT_VARIABLE rc
  TIMEOUT 150)
message("${out}")
message("${err}")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "mpiexec did not return within 150 s: the survivors hung")
endif()
math(EXPR victim "${RANKS} - 1")
math(EXPR last "${RANKS} - 2")
foreach(r RANGE 0 ${last})
  if(NOT out MATCHES "survivor rank ${r} finished 1500 steps: lost \\[([0-9,]*)\\], distance ([0-9.]+)")
    message(FATAL_ERROR "rank ${r} did not finish its steps")
  endif()
  set(lost "${CMAKE_MATCH_1}")
  set(distance "${CMAKE_MATCH_2}")
  if(r EQUAL 0 OR r EQUAL ${last})
    if(NOT lost STREQUAL "${victim}")
      message(FATAL_ERROR "rank ${r}, a neighbour of the dead rank ${victim}, reports lost [${lost}]")
    endif()
  elseif(NOT lost STREQUAL "")
    message(FATAL_ERROR "rank ${r} reports lost [${lost}] but is not a neighbour of the dead rank")
  endif()
  if(distance GREATER 0.01)
    message(FATAL_ERROR "rank ${r} ended at mean squared distance ${distance} from the optimum")
  endif()
endforeach()
