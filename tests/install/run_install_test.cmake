# cmake -P script behind the CTest tests install_consumer, install_consumer_subdirectory and
# install_consumer_fetchcontent (see tests/CMakeLists.txt). In a fresh WORK_DIR it
#   package:      installs the tether build tree TETHER_BINARY_DIR into WORK_DIR/prefix, adds a stub
#                 component file to check the COMPONENTS machinery, then builds the consumer against it;
#   subdirectory, fetchcontent: builds the consumer with tether's source tree inside it;
# and runs the consumer through its own ctest.
# Inputs: MODE CONFIG TETHER_SOURCE_DIR TETHER_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR MAKE_PROGRAM
#         CXX_COMPILER
cmake_minimum_required(VERSION 3.21)

foreach(var MODE TETHER_SOURCE_DIR TETHER_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run)
  string(REPLACE ";" " " line "${ARGN}")
  message(STATUS "run: ${line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${line}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(config_args -DTETHER_CONSUMER_MODE=${MODE})
set(build_config_args)
set(ctest_config_args)
if(CONFIG)
  list(APPEND config_args -DCMAKE_BUILD_TYPE=${CONFIG})
  set(build_config_args --config ${CONFIG})
  set(ctest_config_args -C ${CONFIG})
endif()
if(MAKE_PROGRAM)
  list(APPEND config_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(CXX_COMPILER)
  list(APPEND config_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()

if(MODE STREQUAL "package")
  set(prefix "${WORK_DIR}/prefix")
  run("${CMAKE_COMMAND}" --install "${TETHER_BINARY_DIR}" --prefix "${prefix}" ${build_config_args})
  file(GLOB_RECURSE config_file "${prefix}/*/tetherConfig.cmake")
  if(NOT config_file)
    message(FATAL_ERROR "no tetherConfig.cmake installed under ${prefix}")
  endif()
  if(NOT EXISTS "${prefix}/include/tether/core/error.hpp")
    message(FATAL_ERROR "headers not installed under ${prefix}/include")
  endif()
  # A stub component, as tether-<comp>.cmake files of real components will be, to check that
  # find_package(tether COMPONENTS ...) loads it.
  get_filename_component(config_dir "${config_file}" DIRECTORY)
  file(WRITE "${config_dir}/tether-selftest.cmake"
    "if(NOT TARGET tether::selftest)\n"
    "  add_library(tether::selftest INTERFACE IMPORTED)\n"
    "endif()\n")
  list(APPEND config_args
    "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DTETHER_EXPECTED_PREFIX=${prefix}"
    -DTETHER_CONSUMER_COMPONENT=selftest)
elseif(MODE STREQUAL "subdirectory" OR MODE STREQUAL "fetchcontent")
  list(APPEND config_args "-DTETHER_SOURCE_DIR=${TETHER_SOURCE_DIR}")
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()

set(build "${WORK_DIR}/build")
run("${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${build}" -G "${GENERATOR}" ${config_args})
run("${CMAKE_COMMAND}" --build "${build}" --parallel 2 ${build_config_args})
run("${CMAKE_CTEST_COMMAND}" --test-dir "${build}" --output-on-failure --no-tests=error ${ctest_config_args})
