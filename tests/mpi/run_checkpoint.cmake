# Runs mpi_checkpoint's four jobs in WORK (see checkpoint.cpp): the uninterrupted run, a run whose last rank
# dies after the checkpoint of step 30, the restart from those checkpoints (bit-identical to the first run), and
# a restart from checkpoints of different steps (a clear error on every rank). Arguments (-D):
#   MPIEXEC, NUMPROC_FLAG, FLAGS (a ;-list), EXE, RANKS, WORK
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
function(job mode expect_ok)
  execute_process(
    COMMAND ${MPIEXEC} ${NUMPROC_FLAG} ${RANKS} ${FLAGS} ${EXE} ${mode}
    WORKING_DIRECTORY "${WORK}"
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 120)
  message("--- ${mode}: exit ${rc}\n${out}${err}")
  if(rc MATCHES "timeout")
    message(FATAL_ERROR "${mode}: mpiexec did not return within 120 s")
  endif()
  if(expect_ok AND NOT rc EQUAL 0)
    message(FATAL_ERROR "${mode}: the job failed")
  endif()
  if(NOT expect_ok AND rc EQUAL 0)
    message(FATAL_ERROR "${mode}: the job should have failed")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

job(whole TRUE)
job(crash FALSE)
job(resume TRUE)
math(EXPR last "${RANKS} - 1")
foreach(r RANGE 0 ${last})
  if(NOT out MATCHES "rank ${r}: resumed bit-identical from step 30")
    message(FATAL_ERROR "rank ${r} did not resume bit-identical from step 30")
  endif()
endforeach()
# Rank 0 restarts from its checkpoint of step 10, the others from step 30.
file(COPY_FILE "${WORK}/early.0" "${WORK}/ckpt.0")
job(mismatch TRUE)
foreach(r RANGE 0 ${last})
  if(NOT out MATCHES "rank ${r}: load failed: [^\n]*the step of their checkpoints")
    message(FATAL_ERROR "rank ${r} did not report the checkpoints of different steps")
  endif()
endforeach()
