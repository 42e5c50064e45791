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
  /// running sum stays in the L1 cache while every worker's slice is added into it. Chosen by
  /// bench_team (BM_team_iallreduce/<block>).
  std::size_t reduce_block = 4096;
  /// Elements per lock of a shared store (team_store): small enough that workers exchanging at once rarely
  /// wait for the same lock, large enough that taking the lock costs little next to the block's copy and
  /// addition. Chosen by bench_team (BM_team_store_exchange/<block>).
  std::size_t store_block = 16384;
};

}  // namespace tether::comm
