#pragma once
/// \file
/// comm::shared_memory: a team of p threads in one process, each a worker with rank() and size() and the
/// collectives the pulls need. The embedded default communicator: no MPI needed.
///
///     tether::comm::shared_memory team(4);              // 4 workers, one group
///     tether::comm::shared_memory team(4, {.group_size = 2});  // 2 groups of 2 (LSGD local leaders)
///     team.run([&](tether::comm::shared_memory::worker& w) { ... per-worker code ... });
///
/// Every collective must be called by every worker of its group in the same order (as with MPI). Results are
/// deterministic: reductions add the workers' values in rank order, whatever the thread timing.
/// If a worker throws, the others are released from any collective with tether::aborted and run() rethrows
/// the original exception on the caller's thread.
///
/// Non-blocking collectives (iallreduce_sum, ibroadcast, imin_loc) are posted by each worker and carried out
/// by the team's progress thread once every worker of the group has posted; test() never blocks. For
/// protocols that run in the background (asynchronous LSGD), duplicate() gives a private handle whose
/// operations never pair with the program's own (the non-blocking tier); open_store() shares N values among
/// the workers, in shards (the one-sided tier: asynchronous EASGD's center). Both follow the fault rules
/// above. See docs/algorithms/async.md and docs/concepts.md#communicator-tiers.
///
/// This is the public header; the parts live in comm/team/: the worker's collectives (worker.hpp), the
/// group state and progress thread (state.hpp, reduction.hpp), the tuning constants (tuning.hpp), the team
/// and run() (team.hpp), the shared store (store.hpp).

#include "tether/comm/team/store.hpp"
#include "tether/comm/team/team.hpp"

namespace tether {
/// The shared-memory team is tether's default communicator.
using team = comm::shared_memory;
}  // namespace tether
