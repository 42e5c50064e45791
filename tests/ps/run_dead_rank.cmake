# Runs mpi_dead_rank under mpiexec (Open MPI told not to kill the job when a rank exits) and checks the reports.
# Arguments (-D): MPIEXEC, NUMPROC_FLAG, FLAGS (a ;-list), EXE, RANKS, MODE (replica or server), TIMEOUT, LEASE.
#   replica: replica 1 dies at step 50; the other replicas finish all their steps and every live rank reports
#            replica 1 lost (lease expired) after 49 or 50 steps (the last step count it sent).
#   server:  the server (last rank) dies; every replica fails with an error naming it, within the timeout.
execute_process(
  COMMAND ${MPIEXEC} ${NUMPROC_FLAG} ${RANKS} ${FLAGS} --mca orte_abort_on_non_zero_status 0 ${EXE} ${MODE} ${TIMEOUT}
          ${LEASE}
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  RESULT_VARIABLE rc
  TIMEOUT 90)
message("${out}")
message("${err}")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "mpiexec did not return within 90 s: a rank hung")
endif()
math(EXPR server "${RANKS} - 1")
math(EXPR last_replica "${RANKS} - 2")
if(MODE STREQUAL "replica")
  foreach(r RANGE 0 ${last_replica})
    if(r EQUAL 1)
      continue()
    endif()
    if(NOT out MATCHES "replica rank ${r}: finished all 400 steps; losses: replica 1 \\(lease expired\\) after (49|50) steps; ")
      message(FATAL_ERROR "replica rank ${r} did not finish with replica 1 reported lost")
    endif()
  endforeach()
  if(NOT out MATCHES "server rank ${server}: served; losses: replica 1 \\(lease expired\\) after (49|50) steps; ")
    message(FATAL_ERROR "the server did not report replica 1 lost")
  endif()
else()
  foreach(r RANGE 0 ${last_replica})
    if(NOT out MATCHES "replica rank ${r} failed after ([0-9.]+) s: tether: rank ${r}: downpour: [^\n]*server rank ${server} did not answer within ${TIMEOUT} s")
      message(FATAL_ERROR "replica rank ${r} did not report the dead server")
    endif()
    set(waited "${CMAKE_MATCH_1}")
    if(waited GREATER 30)
      message(FATAL_ERROR "replica rank ${r} took ${waited} s to fail (timeout ${TIMEOUT} s)")
    endif()
  endforeach()
  if(out MATCHES "finished all")
    message(FATAL_ERROR "a replica did not notice the dead server")
  endif()
endif()
