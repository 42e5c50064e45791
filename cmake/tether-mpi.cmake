# Component mpi of tether's package: tether::mpi (comm::mpi, comm::hierarchical, async LSGD and EASGD).
# Loaded by find_package(tether COMPONENTS mpi); finds MPI's C++ interface first.
include(CMakeFindDependencyMacro)
find_dependency(MPI COMPONENTS CXX)
include("${CMAKE_CURRENT_LIST_DIR}/tether-mpiTargets.cmake")
