#pragma once
/// \file
/// The options of comm::mpi: its timeout, groups, chunking and the treatment of device buffers.

#include <cstddef>

namespace tether::comm {

/// How comm::mpi's collectives treat buffers in device memory (views whose memory space is not mem::host).
enum class mpi_device_direct {
  automatic,  ///< device pointers straight to MPI when it is CUDA-aware (asked at run time), else staging
  never,      ///< always stage through host memory the execution space provides
  always,     ///< always pass device pointers; a collective throws tether::error if MPI is not CUDA-aware
};

/// Options of comm::mpi. Every rank must pass the same options (checked at construction).
struct mpi_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"timeout", "group_size", "max_count", "device_direct"};
  double timeout = 300.0;   ///< seconds a blocking operation may take before it fails; <= 0 waits forever
  int group_size = 0;       ///< ranks per group; 0 = one group per shared-memory node (MPI_COMM_TYPE_SHARED)
  std::size_t max_count = 0;///< elements per MPI call (larger buffers go in chunks); 0 = INT_MAX
  mpi_device_direct device_direct = mpi_device_direct::automatic;  ///< device buffers: direct or staged
};

}  // namespace tether::comm
