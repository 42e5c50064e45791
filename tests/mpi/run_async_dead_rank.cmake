# Runs mpi_async_dead_rank under mpiexec and checks every survivor's report: with MODE=raise each failed with
# asynchronous LSGD's lost-round error during its steps, within the timeout plus a margin of the victim's
# death; with MODE=go_on each took all its steps, saw the round lost, and left finish() at once; with
# MODE=easgd each failed with asynchronous EASGD's silent-rank error during its steps, within the same bound;
# with MODE=easgd_go_on each took all its steps, saw the rank lost, and left finish() at once.
# Arguments (-D): MPIEXEC, NUMPROC_FLAG, FLAGS (a ;-list), EXE, RANKS, TIMEOUT (seconds), MODE
# (raise|go_on|easgd|easgd_go_on)
execute_process(
  COMMAND ${MPIEXEC} ${NUMPROC_FLAG} ${RANKS} ${FLAGS} --mca orte_abort_on_non_zero_status 0 ${EXE} ${MODE} ${TIMEOUT}
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
math(EXPR victim "${RANKS} - 1")

# Rank r's report must match "survivor rank r failed at step S after W s: <error>", with S below the run's
# `steps` (found during the run, not in finish()) and W within the timeout plus a margin for scheduling (the
# victim dies about 0.1 s in).
function(require_raised r error steps what)
  if(NOT out MATCHES "survivor rank ${r} failed at step ([0-9]+) after ([0-9.]+) s: tether: rank ${r}: ${error}")
    message(FATAL_ERROR "rank ${r} did not report ${what} during its steps")
  endif()
  set(step "${CMAKE_MATCH_1}")
  set(waited "${CMAKE_MATCH_2}")
  if(step GREATER_EQUAL ${steps})
    message(FATAL_ERROR "rank ${r} reported ${what} only after its steps")
  endif()
  math(EXPR bound "${TIMEOUT} + 15")
  if(waited GREATER ${bound})
    message(FATAL_ERROR "rank ${r} took ${waited} s to report ${what} (timeout ${TIMEOUT} s)")
  endif()
endfunction()

foreach(r RANGE 0 ${last})
  if(MODE STREQUAL "easgd")
    require_raised(${r} "asynchronous EASGD: rank ${victim} has not been heard from for [0-9.]+ s: it may have died or stalled"
                   5000 "the silent rank")
  elseif(MODE STREQUAL "raise")
    require_raised(${r} "asynchronous LSGD: round [0-9]+ \\(its (election|leader's broadcast)\\) did not complete within ${TIMEOUT} s: a rank may have died"
                   600 "the lost round")
  else()
    if(MODE STREQUAL "easgd_go_on")
      set(steps 5000)
    else()
      set(steps 600)
    endif()
    if(NOT out MATCHES "survivor rank ${r} went on: ${steps} steps, round lost 1, [0-9]+ rounds completed, ([0-9.]+) s in finish, finite 1")
      message(FATAL_ERROR "rank ${r} did not go on without the lost rank")
    endif()
    if(CMAKE_MATCH_1 GREATER 1)
      message(FATAL_ERROR "rank ${r} waited ${CMAKE_MATCH_1} s in finish() for the lost round")
    endif()
  endif()
endforeach()
