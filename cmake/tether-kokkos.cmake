# find_package(tether COMPONENTS kokkos): tether::kokkos, exec::kokkos<ExecSpace> (docs/exec.md).
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
include(CMakeFindDependencyMacro)
find_dependency(KokkosTrilinos)
include("${CMAKE_CURRENT_LIST_DIR}/tether-kokkosTargets.cmake")
