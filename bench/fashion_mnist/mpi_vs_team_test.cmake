# CTest driver of `fmnist_study_mpi_np2` (registered by bench/fashion_mnist/CMakeLists.txt):
#   cmake -DSTUDY=<fmnist_study> -DSTUDY_MPI=<fmnist_study_mpi> -DMPIEXEC=<mpiexec;flags> -DOUT=<folder> -P ...
# The MPI training driver (train_mpi.hpp, one worker per rank) against the thread team's (train.hpp): 2 ranks and
# 2 worker threads train the same runs of the synchronous algorithms (LSGD with and without groups, sync SGD,
# EASGD, local SGD, Overlap-Local-SGD; 3000 images, 2 epochs, tau 4), and every epoch's training loss, test
# accuracy, accuracy of the workers' mean and bytes per worker must be equal to the digit: the same shards,
# minibatches and starting point, and collectives whose results do not depend on the engine at 2 workers. The
# Downpour with one replica and its server rank equals the thread team's Downpour with one worker (a single replica
# makes it deterministic), bytes included: the evaluation's reads of the server are not counted (they were once).
# The algorithms with no thread-team twin on MPI (asynchronous LSGD and EASGD, Downpour with its server rank, SwarmSGD
# fp32 and 8-bit) must learn: test accuracy from about 10% to at least 60% in 2 epochs of 6000 images. And a
# synchronous run right after a SwarmSGD run on the same ranks must complete (within 120 s; it hung until the
# pairwise link drained its messages before freeing its communicator) and learn.
# Passes with a message when the Fashion-MNIST files are not installed.
cmake_minimum_required(VERSION 3.21)
include("${CMAKE_CURRENT_LIST_DIR}/../../examples/fashion_mnist/data_dir.cmake")

foreach(v STUDY STUDY_MPI MPIEXEC OUT)
  if(NOT ${v})
    message(FATAL_ERROR "mpi_vs_team_test.cmake: pass -D${v}=...")
  endif()
endforeach()
fmnist_data_dir(data_dir fmnist_study_mpi_np2)
if(data_dir STREQUAL "")
  return()
endif()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  message(STATUS "${what}:\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fmnist_study_mpi_np2: ${what} exited with ${rc}")
  endif()
endfunction()

# The columns compared: algorithm, lr, seed, epoch, step, train_loss, test_accuracy, average_accuracy, bytes.
function(read_curves file var)
  file(STRINGS "${file}" lines)
  list(REMOVE_AT lines 0)
  set(rows "")
  foreach(line IN LISTS lines)
    string(REPLACE "," ";" f "${line}")
    list(SUBLIST f 0 9 kept)
    list(JOIN kept "," row)
    list(APPEND rows "${row}")
  endforeach()
  set(${var} "${rows}" PARENT_SCOPE)
endfunction()

# Fails unless the team's curves (team_dir) have `rows` rows and the MPI driver's (mpi_dir) equal them.
function(require_same_curves mpi_dir team_dir rows what)
  read_curves("${mpi_dir}/curves.csv" mpi_rows)
  read_curves("${team_dir}/curves.csv" team_rows)
  list(LENGTH team_rows n_team)
  if(NOT n_team EQUAL rows)
    message(FATAL_ERROR "fmnist_study_mpi_np2: ${what}: expected ${rows} rows from the team, got ${n_team}")
  endif()
  if(NOT "${mpi_rows}" STREQUAL "${team_rows}")
    string(REPLACE ";" "\n" a "${mpi_rows}")
    string(REPLACE ";" "\n" b "${team_rows}")
    message(FATAL_ERROR "fmnist_study_mpi_np2: ${what}: the MPI driver differs from the thread team's\nMPI:\n${a}\n"
                        "team:\n${b}")
  endif()
endfunction()

set(sync_algorithms "lsgd:0.03,lsgd-grouped:0.03,sync-sgd:0.1,easgd:0.03,local-sgd:0.03,overlap-local-sgd:0.03")
set(common --limit 3000 --epochs 2 --seeds 1 --period 4)
file(REMOVE_RECURSE "${OUT}/team" "${OUT}/mpi" "${OUT}/mpi_only" "${OUT}/after_swarm" "${OUT}/downpour_team"
     "${OUT}/downpour_mpi")
run("fmnist_study_mpi on 2 ranks" ${MPIEXEC} 2 "${STUDY_MPI}" ${common} --algorithms "${sync_algorithms}"
    --out "${OUT}/mpi")
run("fmnist_study on 2 threads" "${STUDY}" --workers 2 ${common} --only grid --algorithms "${sync_algorithms}"
    --out "${OUT}/team")
require_same_curves("${OUT}/mpi" "${OUT}/team" 18 "synchronous algorithms (6 runs x 3 epochs)")

run("fmnist_study_mpi on 2 ranks, Downpour (1 replica, 1 server)" ${MPIEXEC} 2 "${STUDY_MPI}" ${common}
    --algorithms "downpour-sgd:0.1" --out "${OUT}/downpour_mpi")
run("fmnist_study on 1 thread, Downpour" "${STUDY}" --workers 1 ${common} --only grid --algorithms "downpour-sgd:0.1"
    --out "${OUT}/downpour_team")
require_same_curves("${OUT}/downpour_mpi" "${OUT}/downpour_team" 3 "Downpour (1 run x 3 epochs)")

run("fmnist_study_mpi on 2 ranks, algorithms of MPI only" ${MPIEXEC} 2 "${STUDY_MPI}" --limit 6000 --epochs 2
    --seeds 1 --period 4
    --algorithms "swarm:0.03,async-lsgd:0.03,swarm+bits=8:0.1,async-easgd:0.03,downpour-sgd:0.1" --out "${OUT}/mpi_only")
file(STRINGS "${OUT}/mpi_only/runs.csv" runs)
list(REMOVE_AT runs 0)
list(LENGTH runs n_runs)
if(NOT n_runs EQUAL 5)
  message(FATAL_ERROR "fmnist_study_mpi_np2: expected 5 runs, got ${n_runs}")
endif()
foreach(line IN LISTS runs)
  string(REPLACE "," ";" f "${line}")
  list(GET f 0 name)
  list(GET f 3 final_accuracy)
  list(GET f 6 bytes)
  if(final_accuracy LESS 0.6)
    message(FATAL_ERROR "fmnist_study_mpi_np2: ${name} reached only ${final_accuracy} test accuracy")
  endif()
  if(bytes LESS_EQUAL 0)
    message(FATAL_ERROR "fmnist_study_mpi_np2: ${name} received no bytes")
  endif()
endforeach()

run("fmnist_study_mpi on 2 ranks, LSGD after SwarmSGD" ${MPIEXEC} 2 "${STUDY_MPI}" --limit 3000 --epochs 1 --seeds 1
    --algorithms "swarm:0.03,lsgd:0.03" --out "${OUT}/after_swarm")
file(STRINGS "${OUT}/after_swarm/runs.csv" runs)
list(LENGTH runs n_runs)
if(NOT n_runs EQUAL 3)
  message(FATAL_ERROR "fmnist_study_mpi_np2: expected 2 runs (swarm, then lsgd), got ${n_runs} lines")
endif()
list(GET runs 2 line)
string(REPLACE "," ";" f "${line}")
list(GET f 3 final_accuracy)
if(final_accuracy LESS 0.5)
  message(FATAL_ERROR "fmnist_study_mpi_np2: lsgd after swarm reached only ${final_accuracy} test accuracy")
endif()
