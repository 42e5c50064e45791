#pragma once
/// \file
/// Per-worker counters: what each worker did, moved and skipped.

#include <cstdint>

namespace tether {

/// Bytes moved by a worker's communicator handle (payload only).
struct comm_counters {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t collectives = 0;
};

/// A worker's counters, kept by its optimizer and handed to the round callback.
struct worker_stats {
  std::uint64_t steps = 0;             ///< steps taken (applied or skipped)
  std::uint64_t rounds = 0;            ///< communication rounds
  std::uint64_t skipped_nonfinite = 0; ///< steps skipped for a non-finite loss or gradient
  std::uint64_t leader_changes = 0;    ///< elections whose winner differed from the previous one
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  double seconds_compute = 0.0;        ///< time in the fused update kernels
  double seconds_comm = 0.0;           ///< time in collectives (waiting included)
  int leader = -1;                     ///< last elected (global) leader, -1 before the first election
  double score = 0.0;                  ///< this worker's current score (mean of recent losses)
};

}  // namespace tether
