# tether::nccl: comm::nccl, a communicator over NCCL, one GPU per worker (include/tether/comm/nccl.hpp,
# docs/nccl.md). Needs the CUDA runtime (CUDA::cudart) and the NCCL library (FindNCCL: NCCL_ROOT, or the CUDA
# toolkit's copy). The header has no kernels: any C++ compiler builds the code that uses it.
#
# Included by the top-level CMakeLists.txt after tetherExecSpaces.cmake; defines tether_nccl (alias
# tether::nccl, export name nccl) when both are found.
include_guard(GLOBAL)

if(NOT CUDAToolkit_FOUND)
  find_package(CUDAToolkit QUIET)
endif()
if(CUDAToolkit_FOUND)
  find_package(NCCL QUIET)
endif()

if(CUDAToolkit_FOUND AND NCCL_FOUND AND TARGET CUDA::cudart)
  add_library(tether_nccl INTERFACE)
  add_library(tether::nccl ALIAS tether_nccl)
  set_target_properties(tether_nccl PROPERTIES EXPORT_NAME nccl)
  target_link_libraries(tether_nccl INTERFACE tether CUDA::cudart NCCL::nccl)
  tether_install_component(nccl TARGETS tether_nccl FILES "${CMAKE_CURRENT_LIST_DIR}/FindNCCL.cmake")
  message(STATUS "tether: NCCL ${NCCL_VERSION} (${NCCL_LIBRARY}): tether::nccl")
else()
  message(STATUS "tether: NCCL or the CUDA runtime not found (set NCCL_ROOT); no tether::nccl")
endif()
