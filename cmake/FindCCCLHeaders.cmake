# FindCCCLHeaders
# ---------------
# Finds the headers of NVIDIA's CCCL (Thrust, CUB, libcu++), preferring the copy shipped with the CUDA toolkit
# (<toolkit>/include/cccl since CUDA 13) over older system copies. Only headers: Thrust's host systems (cpp, omp)
# need nothing else, and nvcc brings the CUDA runtime for the CUDA system.
#
# Hints: CCCL_ROOT, Thrust_ROOT, CUDAToolkit_ROOT (variables or environment), the toolkit that
# find_package(CUDAToolkit) finds (nvcc on PATH, CUDA_PATH).
#
# Result variables:
#   CCCLHeaders_FOUND, CCCLHeaders_VERSION (Thrust's), CCCLHeaders_INCLUDE_DIR
# Imported target:
#   CCCLHeaders::CCCLHeaders   the include directory (as a SYSTEM include)
include_guard(GLOBAL)
include(FindPackageHandleStandardArgs)

if(NOT DEFINED CUDAToolkit_INCLUDE_DIRS)
  find_package(CUDAToolkit QUIET)
endif()

set(_cccl_hints)
foreach(_cccl_var CCCL_ROOT Thrust_ROOT CUDAToolkit_ROOT CUDA_PATH)
  if(DEFINED ${_cccl_var})
    list(APPEND _cccl_hints "${${_cccl_var}}")
  endif()
  if(DEFINED ENV{${_cccl_var}})
    list(APPEND _cccl_hints "$ENV{${_cccl_var}}")
  endif()
endforeach()
foreach(_cccl_dir IN LISTS CUDAToolkit_INCLUDE_DIRS)
  list(APPEND _cccl_hints "${_cccl_dir}/cccl" "${_cccl_dir}")
endforeach()

find_path(CCCLHeaders_INCLUDE_DIR
  NAMES thrust/version.h
  HINTS ${_cccl_hints}
  PATH_SUFFIXES include/cccl cccl include
  DOC "Directory holding thrust/, cub/ and cuda/ (CCCL)")
unset(_cccl_hints)
unset(_cccl_var)
unset(_cccl_dir)

if(CCCLHeaders_INCLUDE_DIR AND EXISTS "${CCCLHeaders_INCLUDE_DIR}/thrust/version.h")
  file(STRINGS "${CCCLHeaders_INCLUDE_DIR}/thrust/version.h" _cccl_version_line
    REGEX "^#define THRUST_VERSION [0-9]+")
  if(_cccl_version_line MATCHES "THRUST_VERSION ([0-9]+)")
    # THRUST_VERSION = major*100000 + minor*100 + patch
    math(EXPR _cccl_major "${CMAKE_MATCH_1} / 100000")
    math(EXPR _cccl_minor "${CMAKE_MATCH_1} / 100 % 1000")
    math(EXPR _cccl_patch "${CMAKE_MATCH_1} % 100")
    set(CCCLHeaders_VERSION "${_cccl_major}.${_cccl_minor}.${_cccl_patch}")
  endif()
  unset(_cccl_version_line)
  unset(_cccl_major)
  unset(_cccl_minor)
  unset(_cccl_patch)
endif()

find_package_handle_standard_args(CCCLHeaders
  REQUIRED_VARS CCCLHeaders_INCLUDE_DIR
  VERSION_VAR CCCLHeaders_VERSION)

if(CCCLHeaders_FOUND AND NOT TARGET CCCLHeaders::CCCLHeaders)
  add_library(CCCLHeaders::CCCLHeaders INTERFACE IMPORTED)
  set_target_properties(CCCLHeaders::CCCLHeaders PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CCCLHeaders_INCLUDE_DIR}")
endif()
mark_as_advanced(CCCLHeaders_INCLUDE_DIR)
