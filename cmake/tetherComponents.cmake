# Helpers for tether's optional components (tether::mpi, tether::kokkos, tether::thrust, tether::cuda).
#
# A component <comp> is:
#   1. an INTERFACE target named tether_<comp> with EXPORT_NAME <comp> and an alias tether::<comp>,
#      defined in the top-level CMakeLists.txt (or a cmake/ file it includes) before the tests;
#   2. a file cmake/tether-<comp>.cmake, installed next to tetherConfig.cmake, that find_package(tether
#      COMPONENTS <comp>) includes. It finds the component's dependencies and loads its targets, e.g.
#
#        include(CMakeFindDependencyMacro)
#        find_dependency(MPI COMPONENTS CXX)
#        include("${CMAKE_CURRENT_LIST_DIR}/tether-mpiTargets.cmake")
#
#      find_dependency() failing there marks only that component as not found (tetherConfig.cmake takes
#      care of it), and it is REQUIRED only when the component was requested as required. To ship a
#      find module (e.g. cmake/FindKokkosDebian.cmake), pass it in FILES and, in tether-<comp>.cmake, do
#      list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}") before find_dependency().
#
# tether_install_component(<comp> TARGETS <target>... [FILES <file>...])
#   Installs <target>s in their own export set tether-<comp>Targets (namespace tether::), the file
#   cmake/tether-<comp>.cmake and any extra FILES, all into TETHER_INSTALL_CMAKEDIR.
#   Does nothing when TETHER_INSTALL is OFF.
include_guard(GLOBAL)

function(tether_install_component comp)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "TARGETS;FILES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "tether_install_component(${comp}): unexpected arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TARGETS)
    message(FATAL_ERROR "tether_install_component(${comp}): TARGETS is required")
  endif()
  set(comp_file "${PROJECT_SOURCE_DIR}/cmake/tether-${comp}.cmake")
  if(NOT EXISTS "${comp_file}")
    message(FATAL_ERROR "tether_install_component(${comp}): ${comp_file} does not exist")
  endif()
  if(NOT TETHER_INSTALL)
    return()
  endif()
  install(TARGETS ${arg_TARGETS} EXPORT tether-${comp}Targets)
  install(EXPORT tether-${comp}Targets
    NAMESPACE tether::
    DESTINATION ${TETHER_INSTALL_CMAKEDIR})
  install(FILES "${comp_file}" ${arg_FILES} DESTINATION ${TETHER_INSTALL_CMAKEDIR})
endfunction()
