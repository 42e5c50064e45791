#pragma once
/// \file
/// Per-worker counters: what each worker did, moved and skipped.

#include <cstddef>
#include <cstdint>

namespace tether {

/// Bytes moved by a worker's communicator handle (payload only).
struct comm_counters {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t collectives = 0;

  /// Counts one operation that moved `sent` and `received` payload bytes.
  constexpr void add(std::uint64_t sent, std::uint64_t received) noexcept {
    bytes_sent += sent;
    bytes_received += received;
    ++collectives;
  }
};

/// The byte model of the collectives of communicators between processes (comm::mpi, comm::nccl), per worker.
namespace detail {

/// Payload bytes one worker moves in each direction in an all-reduce of n values of s bytes done as a
/// reduce-scatter then an all-gather: everything but its own share, twice.
[[nodiscard]] inline std::uint64_t allreduce_payload_bytes(std::size_t n, std::size_t s, int rank,
                                                           int size) noexcept {
  const auto p = static_cast<std::size_t>(size);
  const auto r = static_cast<std::size_t>(rank);
  const std::size_t share = n * (r + 1) / p - n * r / p;
  return 2 * static_cast<std::uint64_t>(n - share) * s;
}

/// Counts a broadcast of `bytes` on a worker's counters: the root sends them to the size - 1 others, every
/// other worker receives them once.
inline void count_broadcast(comm_counters& c, std::uint64_t bytes, int rank, int root, int size) noexcept {
  if (rank == root)
    c.add(bytes * static_cast<std::uint64_t>(size - 1), 0);
  else
    c.add(0, bytes);
}

}  // namespace detail

/// A worker's counters, kept by its optimizer and handed to the round callback.
struct worker_stats {
  std::uint64_t steps = 0;             ///< steps taken (applied or skipped)
  std::uint64_t rounds = 0;            ///< communication rounds
  std::uint64_t skipped_nonfinite = 0; ///< steps skipped for a non-finite loss or gradient
  /// rounds at which this worker's parameters were not finite, so it was neither elected nor averaged
  std::uint64_t excluded_nonfinite = 0;
  std::uint64_t leader_changes = 0;    ///< elections whose winner differed from the previous one
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  double seconds_compute = 0.0;        ///< time in the fused update kernels
  double seconds_comm = 0.0;           ///< time in collectives (waiting included)
  int leader = -1;                     ///< last elected (global) leader, -1 before the first election
  double score = 0.0;                  ///< this worker's current score (mean of recent losses)
};

}  // namespace tether
