# Runs mpi_checkpoint's jobs under mpiexec (3 ranks: 2 replicas, 1 server) and checks every rank's report.
# Arguments (-D): MPIEXEC, NUMPROC_FLAG, FLAGS (a ;-list), EXE, DIR (a scratch directory).
#   whole, part, resume: the job resumed from the checkpoints of step 15 ends bit-identical to the uninterrupted
#                        one (which saved at step 15 and went on): final x and counters, on both replicas.
#   x_only:              the control: a resume from the saved x alone ends elsewhere.
#   damaged:             replica 1's file truncated: every rank fails, replica 1 naming its file.
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
foreach(mode whole part resume x_only damaged)
  execute_process(
    COMMAND ${MPIEXEC} ${NUMPROC_FLAG} 3 ${FLAGS} ${EXE} ${mode} ${DIR}
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err
    RESULT_VARIABLE rc
    TIMEOUT 90)
  message("${mode}:\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the ${mode} job failed (${rc})")
  endif()
  if(mode STREQUAL "resume")
    foreach(r 0 1)
      if(NOT out MATCHES "replica rank ${r}: resumed bit-identical to the uninterrupted job \\(steps 40, ")
        message(FATAL_ERROR "replica rank ${r} did not resume bit-identical")
      endif()
    endforeach()
    if(NOT out MATCHES "server rank 2: served")
      message(FATAL_ERROR "the server did not serve the resumed job")
    endif()
  elseif(mode STREQUAL "x_only")
    if(NOT out MATCHES "x alone: final x differs")
      message(FATAL_ERROR "the control (x alone) resumed the same run: the test cannot tell")
    endif()
  elseif(mode STREQUAL "damaged")
    if(NOT out MATCHES "rank 1 failed: tether: checkpoint [^\n]*ckpt\\.1: truncated")
      message(FATAL_ERROR "replica rank 1 did not name its truncated file")
    endif()
    foreach(r 0 2)
      if(NOT out MATCHES "rank ${r} failed: [^\n]*the step of their checkpoints")
        message(FATAL_ERROR "rank ${r} did not fail with the step agreement's error")
      endif()
    endforeach()
  endif()
endforeach()
file(REMOVE_RECURSE "${DIR}")
