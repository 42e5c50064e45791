# CTest driver of the demo (tests/fashion_mnist registers it as `fmnist_demo`):
#   cmake -DDEMO=<tether_demo> -DOUT=<folder> [-DARGS=<extra flags, a ;-list>] [-DNAME=<file stem>] -P demo_test.cmake
# Runs a tiny training (2000 images, 1 epoch, 4 workers, tau 4) and checks that the demo succeeds and that its CSV
# log has the header and one row per epoch (0 and 1) with an accuracy in [0, 1]. Passes with a message when the
# Fashion-MNIST files are not installed, like the other tests of tests/fashion_mnist.
cmake_minimum_required(VERSION 3.21)
include("${CMAKE_CURRENT_LIST_DIR}/data_dir.cmake")

if(NOT DEMO OR NOT OUT)
  message(FATAL_ERROR "demo_test.cmake: pass -DDEMO=<tether_demo> -DOUT=<folder>")
endif()

fmnist_data_dir(data_dir fmnist_demo)
if(data_dir STREQUAL "")
  return()
endif()

if(NOT NAME)
  set(NAME fmnist_demo_test)
endif()
set(csv "${OUT}/${NAME}.csv")
set(png "${OUT}/${NAME}.png")
file(REMOVE "${csv}" "${png}")
execute_process(
  COMMAND "${DEMO}" --limit 2000 --epochs 1 --period 4 --workers 4 --seed 3 --csv "${csv}" --png "${png}" ${ARGS}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message(STATUS "tether_demo output:\n${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fmnist_demo: tether_demo exited with ${rc}")
endif()
if(NOT EXISTS "${csv}")
  message(FATAL_ERROR "fmnist_demo: tether_demo did not write ${csv}")
endif()

file(STRINGS "${csv}" lines)
list(LENGTH lines n)
if(NOT n EQUAL 3)
  message(FATAL_ERROR "fmnist_demo: expected a header and 2 rows (epochs 0 and 1) in ${csv}, got ${n} lines")
endif()
list(GET lines 0 header)
if(NOT header MATCHES "^epoch,step,train_loss,test_accuracy,")
  message(FATAL_ERROR "fmnist_demo: unexpected CSV header '${header}'")
endif()
foreach(i 1 2)
  list(GET lines ${i} row)
  string(REPLACE "," ";" fields "${row}")
  list(GET fields 0 epoch)
  list(GET fields 3 accuracy)
  math(EXPR expected "${i} - 1")
  if(NOT epoch EQUAL expected)
    message(FATAL_ERROR "fmnist_demo: row ${i} has epoch '${epoch}', expected ${expected}")
  endif()
  if(NOT accuracy MATCHES "^(0\\.[0-9]+|1\\.0+)$")
    message(FATAL_ERROR "fmnist_demo: row ${i} has test accuracy '${accuracy}', expected a number in [0, 1]")
  endif()
endforeach()
# After 1 epoch on 2000 images (7 steps per worker) the model must beat chance (10%) clearly.
list(GET lines 2 last)
string(REPLACE "," ";" fields "${last}")
list(GET fields 3 accuracy)
if(accuracy LESS 0.3)
  message(FATAL_ERROR "fmnist_demo: test accuracy ${accuracy} after one epoch is not above chance")
endif()
message(STATUS "fmnist_demo: passed (${csv})")
