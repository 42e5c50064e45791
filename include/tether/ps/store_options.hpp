#pragma once
/// \file
/// The options of a parameter server's store (shards, consistency, leases, server ranks, replay, warm start)
/// and what a push reports back to its replica.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tether/core/error.hpp"
#include "tether/ps/consistency.hpp"

namespace tether::ps {

/// Replay mode (thread team, asynchronous consistency): the replicas take turns, one step (or finish()) per
/// turn, in an order drawn from `seed`; the same seed gives the same interleaving and bit-identical results.
struct replay_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"enabled", "seed"};
  bool enabled = false;
  std::uint64_t seed = 0;
};

/// How a store is laid out and run. Every replica (every rank under MPI) passes the same values.
struct store_options {
  std::size_t shards = 1;         ///< S: shards of the N parameters (tether::shard_layout; S > N leaves empty shards)
  ps::consistency consistency{};  ///< asynchronous (Downpour's), bounded staleness or bulk-synchronous
  double lease = 0.0;             ///< seconds without news before a replica is declared lost; 0: the default
  int servers = 1;                ///< MPI: the last `servers` ranks hold the shards (ignored by the thread team)
  replay_options replay{};        ///< thread team: replicas take turns in a seeded order
  std::uint64_t warm_start = 0;   ///< W: replica 0 takes W steps alone before the others join

  /// tether::error naming the field and value. `ranks` is the communicator's size (MPI: servers + replicas).
  void validate() const {
    detail::require(shards > 0, "downpour: shards must be > 0, got shards = ", shards);
    consistency.validate();
    detail::require(std::isfinite(lease) && lease >= 0.0, "downpour: lease must be a finite number of seconds >= 0, "
                    "got lease = ", lease);
    detail::require(!replay.enabled || consistency.mode == consistency_mode::asynchronous,
                    "downpour: replay runs the asynchronous mode only, got replay with consistency mode ",
                    static_cast<int>(consistency.mode));
  }
};

/// What one push did, as its replica learns it.
struct push_report {
  bool dropped = false;         ///< a shard refused it: the replica had been declared lost
  std::uint64_t staleness = 0;  ///< the largest staleness over its shards (docs: staleness_histogram)
  std::uint64_t lead = 0;       ///< the most pushes the replica was ahead of the slowest live one, over its shards
  double seconds_waiting = 0.0; ///< time held by the consistency rule
};

}  // namespace tether::ps
