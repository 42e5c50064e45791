# find_package(tether COMPONENTS thrust): tether::thrust, exec::thrust<Policy> (docs/exec.md).
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
include(CMakeFindDependencyMacro)
find_dependency(CCCLHeaders)
include("${CMAKE_CURRENT_LIST_DIR}/tether-thrustTargets.cmake")
