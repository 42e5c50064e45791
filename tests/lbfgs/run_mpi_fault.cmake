# Runs lbfgs_mpi_fault under mpiexec and checks what each surviving rank reports. Arguments (-D):
#   MPIEXEC, NUMPROC_FLAG, FLAGS (a ;-list), EXE, RANKS, MODE (replica|coordinator), TIMEOUT (seconds)
execute_process(
  COMMAND ${MPIEXEC} ${NUMPROC_FLAG} ${RANKS} ${FLAGS} --mca orte_abort_on_non_zero_status 0 ${EXE} ${MODE} ${TIMEOUT}
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  RESULT_VARIABLE rc
  TIMEOUT 100)
message("${out}")
message("${err}")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "mpiexec did not return within 100 s: the survivors hung")
endif()
math(EXPR last "${RANKS} - 1")
if(MODE STREQUAL "replica")
  math(EXPR last "${RANKS} - 2")
  foreach(r RANGE 0 ${last})
    if(NOT out MATCHES "survivor rank ${r}: converged after [0-9]+ iterations, lost 1, duplicates [0-9]+, same as the team: yes")
      message(FATAL_ERROR "rank ${r} did not finish the run with the thread team's result and one lost worker")
    endif()
  endforeach()
else()
  foreach(r RANGE 1 ${last})
    if(NOT out MATCHES "survivor rank ${r} failed after ([0-9.]+) s: [^\n]*(the coordinator may have died|worker 0 failed|a worker may have died)")
      message(FATAL_ERROR "rank ${r} did not fail with a clear error about the coordinator")
    endif()
    set(waited "${CMAKE_MATCH_1}")
    if(waited GREATER 40)
      message(FATAL_ERROR "rank ${r} took ${waited} s to fail (timeout ${TIMEOUT} s)")
    endif()
  endforeach()
endif()
