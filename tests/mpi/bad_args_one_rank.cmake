# An MPI example launched with a command line that only rank 1 refuses (MPMD: `mpirun -np 1 EXE good : -np 1
# EXE bad`): the job must end within a bounded time with exit status 2 and rank 1's message naming the flag.
#   cmake -DRUN=<mpiexec> -DFLAGS=<flags> -DEXE=<example> -DNAME=<example name> -P bad_args_one_rank.cmake
execute_process(
  COMMAND ${RUN} ${FLAGS} -np 1 ${EXE} --steps 10 --timeout 30 : ${FLAGS} -np 1 ${EXE} --steps many --timeout 30
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 90)
message(STATUS "${out}${err}")
if(rc MATCHES "timeout|Process terminated")
  message(FATAL_ERROR "${NAME}: the job hung (${rc})")
endif()
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "${NAME}: exit status ${rc}, expected 2")
endif()
if(NOT "${out}${err}" MATCHES "${NAME}: rank 1: --steps expects a whole number, got 'many'")
  message(FATAL_ERROR "${NAME}: rank 1's message is missing")
endif()
