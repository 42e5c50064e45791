#pragma once
/// \file
/// The options of comm::nccl: the device, the timeout of host waits, the groups.

namespace tether::comm {

/// Options of comm::nccl. Workers built from a host communicator must pass the same options (checked).
struct nccl_options {
  int device = -1;         ///< this worker's CUDA device; -1: its rank modulo the number of visible devices
  double timeout = 300.0;  ///< seconds a host wait may take before the communicator is aborted; <= 0: forever
  int group_size = 0;      ///< workers per group (LSGD's local leaders; ncclCommSplit); 0: one group of all
};

}  // namespace tether::comm
