# Runs mpi_dead_rank under mpiexec and checks that every surviving rank failed with comm::mpi's timeout
# error, within the timeout plus a margin, instead of hanging. Arguments (-D):
#   MPIEXEC, NUMPROC_FLAG, FLAGS (a ;-list), EXE, RANKS, TIMEOUT (seconds, given to the program),
#   DIMENSION (optional: the number of parameters, given to the program)
execute_process(
  COMMAND ${MPIEXEC} ${NUMPROC_FLAG} ${RANKS} ${FLAGS} --mca orte_abort_on_non_zero_status 0 ${EXE} ${TIMEOUT} ${DIMENSION}
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  RESULT_VARIABLE rc
  TIMEOUT 90)
message("${out}")
message("${err}")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "mpiexec did not return within 90 s: the survivors hung")
endif()
math(EXPR last "${RANKS} - 2")
foreach(r RANGE 0 ${last})
  if(NOT out MATCHES "survivor rank ${r} failed after ([0-9.]+) s: tether: rank ${r}: MPI_Allreduce did not complete within ${TIMEOUT} s: a rank may have died")
    message(FATAL_ERROR "rank ${r} did not report the timeout error")
  endif()
  set(waited "${CMAKE_MATCH_1}")
  if(waited GREATER 30)
    message(FATAL_ERROR "rank ${r} took ${waited} s to fail (timeout ${TIMEOUT} s)")
  endif()
endforeach()
if(out MATCHES "finished all steps")
  message(FATAL_ERROR "a survivor did not notice the dead rank")
endif()
