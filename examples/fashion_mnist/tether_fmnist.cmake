# Defines the INTERFACE library `tether_fmnist`: the Fashion-MNIST reader, shards and MLP headers of this folder,
# with zlib, OpenBLAS and tether. Included by this folder's CMakeLists.txt and by tests/fashion_mnist, whichever
# comes first; later inclusions do nothing.
if(TARGET tether_fmnist)
  return()
endif()

find_package(ZLIB REQUIRED)
find_library(TETHER_OPENBLAS_LIBRARY NAMES openblas DOC "OpenBLAS library for the Fashion-MNIST MLP")
find_path(TETHER_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas openblas-pthread DOC "directory of OpenBLAS's cblas.h")
if(NOT TETHER_OPENBLAS_LIBRARY OR NOT TETHER_CBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "tether_fmnist needs OpenBLAS (library and cblas.h), e.g. Debian's libopenblas-dev")
endif()

add_library(tether_fmnist INTERFACE)
target_include_directories(tether_fmnist INTERFACE "${CMAKE_CURRENT_LIST_DIR}")
target_include_directories(tether_fmnist SYSTEM INTERFACE "${TETHER_CBLAS_INCLUDE_DIR}")
target_compile_features(tether_fmnist INTERFACE cxx_std_20)
target_link_libraries(tether_fmnist INTERFACE tether::tether ZLIB::ZLIB "${TETHER_OPENBLAS_LIBRARY}")
