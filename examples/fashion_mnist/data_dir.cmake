# The Fashion-MNIST folder of the CTest drivers run with `cmake -P` (demo_test.cmake, demo_faults_test.cmake,
# bench/fashion_mnist/mpi_vs_team_test.cmake): they include this file.

# fmnist_data_dir(<var> <test name> [GZ]): sets <var> to $TETHER_FASHION_MNIST_DIR, else Debian's folder
# (dataset-fashion-mnist). When its training images are not there (gzipped or not; with GZ, gzipped), sets
# <var> to "" after a "<test name>: skipped" message: the caller then returns, and the test passes.
function(fmnist_data_dir var name)
  if(DEFINED ENV{TETHER_FASHION_MNIST_DIR} AND NOT "$ENV{TETHER_FASHION_MNIST_DIR}" STREQUAL "")
    set(dir "$ENV{TETHER_FASHION_MNIST_DIR}")
  else()
    set(dir "/usr/share/datasets/fashion-mnist")
  endif()
  set(found FALSE)
  if(EXISTS "${dir}/train-images-idx3-ubyte.gz" OR (NOT "GZ" IN_LIST ARGN AND EXISTS "${dir}/train-images-idx3-ubyte"))
    set(found TRUE)
  endif()
  if(NOT found)
    message(STATUS "${name}: skipped, no Fashion-MNIST files in ${dir} (Debian: dataset-fashion-mnist)")
    set(dir "")
  endif()
  set(${var} "${dir}" PARENT_SCOPE)
endfunction()
