# CTest driver of the demo's bad-input and output-fault cases (tests/fashion_mnist registers it as
# `fmnist_demo_faults`):
#   cmake -DDEMO=<tether_demo> -DOUT=<folder> -P demo_faults_test.cmake
# Flags the library would refuse exit with status 2 naming the flag, before anything is written; a write error
# is status 1 and leaves no temporary file; a path with a quote and a newline is a file name, never gnuplot code;
# an empty test set is an error, not a -nan% accuracy. Passes with a message when the Fashion-MNIST files are
# not installed.
cmake_minimum_required(VERSION 3.21)
include("${CMAKE_CURRENT_LIST_DIR}/data_dir.cmake")

if(NOT DEMO OR NOT OUT)
  message(FATAL_ERROR "demo_faults_test.cmake: pass -DDEMO=<tether_demo> -DOUT=<folder>")
endif()
fmnist_data_dir(data_dir fmnist_demo_faults GZ)  # the faults below link the .gz files
if(data_dir STREQUAL "")
  return()
endif()

set(dir "${OUT}/demo_faults")
file(REMOVE_RECURSE "${dir}")
file(MAKE_DIRECTORY "${dir}")
set(small --limit 2000 --epochs 1 --workers 2 --period 4)

# run(<expected status> <regex the output must match> args...)
function(run expect regex)
  execute_process(COMMAND "${DEMO}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect)
    message(FATAL_ERROR "tether_demo ${ARGN}: exit status ${rc}, expected ${expect}:\n${out}${err}")
  endif()
  if(NOT "${out}${err}" MATCHES "${regex}")
    message(FATAL_ERROR "tether_demo ${ARGN}: output does not match '${regex}':\n${out}${err}")
  endif()
  message(STATUS "ok (${rc}): ${ARGN}")
endfunction()

# Usage errors: status 2, the flag named, nothing written.
run(2 "--png: must not be the --csv file" ${small} --csv "${dir}/same" --png "${dir}/./same")
run(2 "--csv: is a folder, not a file" ${small} --csv "${dir}" --png "${dir}/p.png")
run(2 "--momentum: must be in \\[0, 1\\) as a float, got '0.999999999'" ${small} --momentum 0.999999999 --csv "${dir}/m.csv")
run(2 "--leader-pull: must be a float >= 0, got '1e39'" ${small} --leader-pull 1e39 --csv "${dir}/l.csv")
run(2 "--period: 4 \\* --period \\(the default --global-period\\) must be below 2\\^32"
    ${small} --algorithm lsgd-grouped --period 1073741824 --csv "${dir}/g.csv")
foreach(f same m.csv l.csv g.csv)
  if(EXISTS "${dir}/${f}")
    message(FATAL_ERROR "a refused command line wrote ${dir}/${f}")
  endif()
endforeach()

# A write error: status 1, named, and no temporary file left next to the outputs.
if(EXISTS /dev/full)
  run(1 "/dev/full: write failed" ${small} --csv /dev/full --png "${dir}/full.png")
  file(GLOB leftovers "${dir}/*.tmp-*")
  if(leftovers)
    message(FATAL_ERROR "temporary files left behind: ${leftovers}")
  endif()
endif()

# A path with a quote and newlines is only a name: the plot is written under it and no gnuplot command runs.
set(evil "${dir}/evil'\nsystem(\"touch PWNED\")\n.png")
run(0 "wrote" ${small} --csv "${dir}/evil.csv" --png "${evil}")
if(NOT EXISTS "${evil}")
  message(FATAL_ERROR "the plot was not written under the name given")
endif()
if(EXISTS "${dir}/PWNED" OR EXISTS "${CMAKE_CURRENT_BINARY_DIR}/PWNED" OR EXISTS "PWNED")
  message(FATAL_ERROR "a path given to --png ran a gnuplot command")
endif()

# An empty test set: the training files, and test files that hold no image.
set(empty "${dir}/data")
file(MAKE_DIRECTORY "${empty}")
file(CREATE_LINK "${data_dir}/train-images-idx3-ubyte.gz" "${empty}/train-images-idx3-ubyte.gz" SYMBOLIC)
file(CREATE_LINK "${data_dir}/train-labels-idx1-ubyte.gz" "${empty}/train-labels-idx1-ubyte.gz" SYMBOLIC)
# IDX headers with a count of 0 (and 28 x 28 for the images), big-endian, no payload; printf writes the bytes.
execute_process(COMMAND sh -c "printf '\\000\\000\\010\\003\\000\\000\\000\\000\\000\\000\\000\\034\\000\\000\\000\\034' > t10k-images-idx3-ubyte && printf '\\000\\000\\010\\001\\000\\000\\000\\000' > t10k-labels-idx1-ubyte"
                WORKING_DIRECTORY "${empty}" RESULT_VARIABLE rc)
file(SIZE "${empty}/t10k-images-idx3-ubyte" isize)
file(SIZE "${empty}/t10k-labels-idx1-ubyte" lsize)
if(NOT rc EQUAL 0 OR NOT isize EQUAL 16 OR NOT lsize EQUAL 8)
  message(FATAL_ERROR "could not write the empty test files (${rc}, ${isize}, ${lsize} bytes)")
endif()
run(1 "the test set has no images" ${small} --data-dir "${empty}" --csv "${dir}/e.csv" --png "${dir}/e.png")
message(STATUS "fmnist_demo_faults: passed")
