# Component nccl of tether's package: tether::nccl (comm::nccl, docs/nccl.md). Loaded by
# find_package(tether COMPONENTS nccl); finds the CUDA runtime and NCCL (FindNCCL.cmake, installed beside this
# file: set NCCL_ROOT when NCCL is neither in the CUDA toolkit nor in the system paths).
include(CMakeFindDependencyMacro)
find_dependency(CUDAToolkit)
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
find_dependency(NCCL)
include("${CMAKE_CURRENT_LIST_DIR}/tether-ncclTargets.cmake")
