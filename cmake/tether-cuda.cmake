# find_package(tether COMPONENTS cuda): tether::cuda, exec::cuda (docs/exec.md). Compile the files that include
# tether/exec/cuda.hpp with nvcc (enable_language(CUDA)).
include(CMakeFindDependencyMacro)
find_dependency(CUDAToolkit)
include("${CMAKE_CURRENT_LIST_DIR}/tether-cudaTargets.cmake")
