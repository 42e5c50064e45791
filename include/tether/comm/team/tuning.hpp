#pragma once
/// \file
/// comm::team_tuning: the thread team's tuning constants, one aggregate a user may override as CUB's tuning
/// policies are (tether::team team(4, {.tuning = {.store_block = 4096}})). docs/benchmarks.md#tuning says
/// which benchmark chose each value.

#include <cstddef>

namespace tether::comm {

/// Tuning of the thread team. Every value must be > 0.
struct team_tuning {
  /// Elements per block of the progress thread's rank-order sums on the host (iallreduce_sum): the block's
  /// running sum stays in the L1 cache while every worker's slice is added into it, then is copied to every
  /// receive buffer. Chosen by bench_tuning (BM_team_reduce/<block>: 4 workers, 2^20 floats): 64 took a third
  /// of the CPU time of the former 4096 (docs/benchmarks.md#tuning). The bits do not depend on it.
  std::size_t reduce_block = 64;
  /// Elements per lock of a shared store (team_store): small enough that workers exchanging at once rarely
  /// wait for the same lock, large enough that taking the lock costs little next to the block's copy and
  /// addition. bench_tuning (BM_team_store_exchange/<block>) found no block size from 1024 to 262144 better
  /// than the others beyond its noise on a shared 2-core machine (docs/benchmarks.md#tuning), so the value of
  /// the former center (16384) stays until a quieter machine decides.
  std::size_t store_block = 16384;
};

}  // namespace tether::comm
