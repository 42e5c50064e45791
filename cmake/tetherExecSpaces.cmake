# Execution-space components of tether (include/tether/exec/, docs/exec.md):
#
#   tether::kokkos   exec::kokkos<ExecSpace>; Kokkos from FindKokkosTrilinos (a Kokkos::kokkos target already
#                    in the project, or Trilinos' Kokkos as Debian packages it)
#   tether::thrust   exec::thrust<Policy>; the CCCL headers of the CUDA toolkit (FindCCCLHeaders). Host systems
#                    (cpp, omp) work with any C++ compiler; the CUDA system needs nvcc.
#   tether::cuda     exec::cuda; kernels in .cu files compiled by nvcc (enable_language(CUDA) in your project)
#
# exec::openmp needs no component: link OpenMP::OpenMP_CXX.
#
# For tether's own tests, examples and benchmarks, CUDA is enabled when nvcc is found (TETHER_ENABLE_CUDA):
# the .cu files are then always compiled and linked, and the GPU tests run only where configure found a GPU
# (TETHER_GPU_FOUND; ctest -L gpu). Sets TETHER_CUDA_ENABLED and TETHER_GPU_FOUND.
include_guard(GLOBAL)

# --- tether::kokkos ----------------------------------------------------------------------------------------
find_package(KokkosTrilinos QUIET)
if(KokkosTrilinos_FOUND)
  add_library(tether_kokkos INTERFACE)
  add_library(tether::kokkos ALIAS tether_kokkos)
  set_target_properties(tether_kokkos PROPERTIES EXPORT_NAME kokkos)
  target_link_libraries(tether_kokkos INTERFACE tether KokkosTrilinos::kokkoscore)
  tether_install_component(kokkos TARGETS tether_kokkos FILES "${CMAKE_CURRENT_LIST_DIR}/FindKokkosTrilinos.cmake")
  message(STATUS "tether: Kokkos ${KokkosTrilinos_VERSION} (${KokkosTrilinos_INCLUDE_DIR}): tether::kokkos")
else()
  message(STATUS "tether: Kokkos not found (Debian: libtrilinos-kokkos-dev); no tether::kokkos")
endif()

# --- tether::thrust ----------------------------------------------------------------------------------------
find_package(CCCLHeaders QUIET)
if(CCCLHeaders_FOUND)
  add_library(tether_thrust INTERFACE)
  add_library(tether::thrust ALIAS tether_thrust)
  set_target_properties(tether_thrust PROPERTIES EXPORT_NAME thrust)
  target_link_libraries(tether_thrust INTERFACE tether CCCLHeaders::CCCLHeaders)
  # tether's functors use std::array and other constexpr host functions in device code.
  target_compile_options(tether_thrust INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  tether_install_component(thrust TARGETS tether_thrust FILES "${CMAKE_CURRENT_LIST_DIR}/FindCCCLHeaders.cmake")
  message(STATUS "tether: Thrust ${CCCLHeaders_VERSION} (${CCCLHeaders_INCLUDE_DIR}): tether::thrust")
else()
  message(STATUS "tether: CCCL/Thrust headers not found (the CUDA toolkit ships them); no tether::thrust")
endif()

# --- tether::cuda ------------------------------------------------------------------------------------------
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND)
  add_library(tether_cuda INTERFACE)
  add_library(tether::cuda ALIAS tether_cuda)
  set_target_properties(tether_cuda PROPERTIES EXPORT_NAME cuda)
  target_link_libraries(tether_cuda INTERFACE tether CUDA::toolkit)
  target_compile_options(tether_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  tether_install_component(cuda TARGETS tether_cuda)
  message(STATUS "tether: CUDA toolkit ${CUDAToolkit_VERSION}: tether::cuda")
else()
  message(STATUS "tether: CUDA toolkit not found; no tether::cuda")
endif()

# --- CUDA for tether's own tests, examples and benchmarks --------------------------------------------------
option(TETHER_ENABLE_CUDA "Compile tether's CUDA tests, examples and benchmarks when nvcc is found" ON)
set(TETHER_CUDA_ENABLED FALSE)
set(TETHER_GPU_FOUND FALSE)
if(TETHER_ENABLE_CUDA AND TARGET tether_cuda AND (TETHER_BUILD_TESTS OR TETHER_BUILD_EXAMPLES OR TETHER_BUILD_BENCH))
  # nvcc need not be on PATH: FindCUDAToolkit also searches CUDAToolkit_ROOT, CUDA_PATH and /usr/local/cuda.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND CUDAToolkit_NVCC_EXECUTABLE
     AND EXISTS "${CUDAToolkit_NVCC_EXECUTABLE}")
    set(CMAKE_CUDA_COMPILER "${CUDAToolkit_NVCC_EXECUTABLE}" CACHE FILEPATH "CUDA compiler (found with the toolkit)")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    find_program(TETHER_NVIDIA_SMI nvidia-smi)
    if(TETHER_NVIDIA_SMI)
      execute_process(COMMAND "${TETHER_NVIDIA_SMI}" -L OUTPUT_VARIABLE _tether_smi RESULT_VARIABLE _tether_smi_rc
                      ERROR_QUIET TIMEOUT 20)
      if(_tether_smi_rc EQUAL 0 AND _tether_smi MATCHES "GPU [0-9]+:")
        set(TETHER_GPU_FOUND TRUE)
      endif()
      unset(_tether_smi)
      unset(_tether_smi_rc)
    endif()
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # The GPU of this machine when there is one; otherwise Hopper (H100/H200), which the CI build targets.
      if(TETHER_GPU_FOUND)
        set(CMAKE_CUDA_ARCHITECTURES native)
      else()
        set(CMAKE_CUDA_ARCHITECTURES 90)
      endif()
    endif()
    enable_language(CUDA)
    set(TETHER_CUDA_ENABLED TRUE)
    message(STATUS "tether: CUDA tests/examples/benchmarks compiled for ${CMAKE_CUDA_ARCHITECTURES}; "
                   "GPU found: ${TETHER_GPU_FOUND}")
  endif()
endif()

# tether_cuda_target(<target>): C++20 for the CUDA sources of one of tether's own targets. CMake < 3.26 knows no
# CUDA20 dialect for nvcc, so the flag is passed directly there.
function(tether_cuda_target target)
  if(DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION STREQUAL "")
    set_target_properties(${target} PROPERTIES CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON CUDA_EXTENSIONS OFF)
  else()
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
  endif()
endfunction()
