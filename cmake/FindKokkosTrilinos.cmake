# FindKokkosTrilinos
# ------------------
# Finds Kokkos' core library as Trilinos packages it (Debian/Ubuntu: libtrilinos-kokkos-dev), whose own CMake
# package is unusable (its Kokkos::kokkos target points at a nonexistent include directory).
#
# If the project already has a working Kokkos::kokkos target (a standalone Kokkos found with find_package(Kokkos)
# before this module runs), that one is used. Otherwise the headers and the library are searched for:
#
#   Kokkos_Core.hpp           in <prefix>/include/trilinos, <prefix>/include/kokkos, <prefix>/include
#   trilinos_kokkoscore       (or kokkoscore) in the usual library directories
#
# Hints: KokkosTrilinos_ROOT, Kokkos_ROOT, Trilinos_ROOT (CMake variables or environment variables).
#
# Result variables:
#   KokkosTrilinos_FOUND, KokkosTrilinos_VERSION, KokkosTrilinos_INCLUDE_DIR, KokkosTrilinos_LIBRARY
# Imported target:
#   KokkosTrilinos::kokkoscore   headers (as SYSTEM includes) and library
include_guard(GLOBAL)
include(FindPackageHandleStandardArgs)

set(_kokkos_trilinos_from_target FALSE)
if(TARGET Kokkos::kokkos)
  get_target_property(_kt_incs Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
  foreach(_kt_dir IN LISTS _kt_incs)
    if(EXISTS "${_kt_dir}/Kokkos_Core.hpp")
      set(_kokkos_trilinos_from_target TRUE)
      set(KokkosTrilinos_INCLUDE_DIR "${_kt_dir}")
    endif()
  endforeach()
  unset(_kt_incs)
  unset(_kt_dir)
endif()

if(_kokkos_trilinos_from_target)
  set(KokkosTrilinos_LIBRARY Kokkos::kokkos)
else()
  set(_kt_hints)
  foreach(_kt_var KokkosTrilinos_ROOT Kokkos_ROOT Trilinos_ROOT)
    if(DEFINED ${_kt_var})
      list(APPEND _kt_hints "${${_kt_var}}")
    endif()
    if(DEFINED ENV{${_kt_var}})
      list(APPEND _kt_hints "$ENV{${_kt_var}}")
    endif()
  endforeach()
  find_path(KokkosTrilinos_INCLUDE_DIR
    NAMES Kokkos_Core.hpp
    HINTS ${_kt_hints}
    PATH_SUFFIXES include/trilinos include/kokkos include trilinos kokkos
    DOC "Directory of Kokkos_Core.hpp (Trilinos' Kokkos)")
  find_library(KokkosTrilinos_LIBRARY
    NAMES trilinos_kokkoscore kokkoscore
    HINTS ${_kt_hints}
    PATH_SUFFIXES lib lib64 lib/trilinos
    DOC "Kokkos core library (Trilinos' libtrilinos_kokkoscore)")
  unset(_kt_hints)
  unset(_kt_var)
endif()

# The version, from KOKKOS_VERSION (major*10000 + minor*100 + patch) in KokkosCore_config.h.
if(KokkosTrilinos_INCLUDE_DIR AND EXISTS "${KokkosTrilinos_INCLUDE_DIR}/KokkosCore_config.h")
  file(STRINGS "${KokkosTrilinos_INCLUDE_DIR}/KokkosCore_config.h" _kt_version_line
    REGEX "^#define KOKKOS_VERSION [0-9]+")
  if(_kt_version_line MATCHES "KOKKOS_VERSION ([0-9]+)")
    math(EXPR _kt_major "${CMAKE_MATCH_1} / 10000")
    math(EXPR _kt_minor "${CMAKE_MATCH_1} / 100 % 100")
    math(EXPR _kt_patch "${CMAKE_MATCH_1} % 100")
    set(KokkosTrilinos_VERSION "${_kt_major}.${_kt_minor}.${_kt_patch}")
  endif()
  unset(_kt_version_line)
  unset(_kt_major)
  unset(_kt_minor)
  unset(_kt_patch)
endif()

find_package_handle_standard_args(KokkosTrilinos
  REQUIRED_VARS KokkosTrilinos_LIBRARY KokkosTrilinos_INCLUDE_DIR
  VERSION_VAR KokkosTrilinos_VERSION)

if(KokkosTrilinos_FOUND AND NOT TARGET KokkosTrilinos::kokkoscore)
  add_library(KokkosTrilinos::kokkoscore INTERFACE IMPORTED)
  if(_kokkos_trilinos_from_target)
    target_link_libraries(KokkosTrilinos::kokkoscore INTERFACE Kokkos::kokkos)
  else()
    find_package(Threads QUIET)
    # Imported targets' include directories are SYSTEM includes: Kokkos' headers warn under -Wpedantic.
    set_target_properties(KokkosTrilinos::kokkoscore PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${KokkosTrilinos_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${KokkosTrilinos_LIBRARY};$<$<TARGET_EXISTS:Threads::Threads>:Threads::Threads>;${CMAKE_DL_LIBS}")
  endif()
endif()
mark_as_advanced(KokkosTrilinos_INCLUDE_DIR KokkosTrilinos_LIBRARY)
unset(_kokkos_trilinos_from_target)
