#pragma once
/// \file
/// What a parameter-server replica counts: its pushes and fetches, the staleness of each push (a histogram),
/// how far ahead of the slowest replica it ran, the pushes dropped after it was declared lost, and the
/// replicas the run lost, with when and why.

#include <array>
#include <cstddef>
#include <cstdint>

#include "tether/core/stats.hpp"

namespace tether::ps {

/// Staleness of pushes: `count[k]` pushes had staleness k (the last bin: `bins - 1` or more), `max` the
/// largest seen. The staleness of a push on a shard is the number of updates other replicas made to the
/// shard between this replica's last fetch of it and the moment the push was applied; a push's staleness is
/// the largest over its shards. A bulk-synchronous push always has staleness 0.
struct staleness_histogram {
  static constexpr std::size_t bins = 64;
  std::array<std::uint64_t, bins> count{};
  std::uint64_t max = 0;

  void add(std::uint64_t s) noexcept {
    ++count[s < bins - 1 ? s : bins - 1];
    if (s > max) max = s;
  }
  /// Pushes recorded.
  [[nodiscard]] std::uint64_t total() const noexcept {
    std::uint64_t t = 0;
    for (auto c : count) t += c;
    return t;
  }
  /// Mean staleness (the last bin counted as `bins - 1`).
  [[nodiscard]] double mean() const noexcept {
    double s = 0.0;
    for (std::size_t k = 0; k < bins; ++k) s += static_cast<double>(k) * static_cast<double>(count[k]);
    const auto t = total();
    return t == 0 ? 0.0 : s / static_cast<double>(t);
  }
};

/// Why a replica was declared lost.
enum class loss_reason : std::uint8_t {
  failed,         ///< its optimizer was destroyed by an exception before finish() (the thread team)
  lease_expired,  ///< nothing from it for longer than the lease: it stalled, or (MPI) its rank died
};

/// A replica the run lost: which, why, when, and how far it had come.
struct replica_loss {
  int replica = -1;               ///< the replica's rank
  loss_reason reason = loss_reason::failed;
  double seconds = 0.0;           ///< when it was declared lost, seconds after the store opened
  std::uint64_t steps = 0;        ///< steps it had taken, as last reported to the store
  std::uint64_t pushes_applied = 0;  ///< its pushes that the shards applied (on shard 0)
};

/// What a replica's store learnt of its pushes so far (on MPI, from the servers' acknowledgements, which arrive
/// a push or two later; all of them by finish()).
struct push_tally {
  std::uint64_t acknowledged = 0;    ///< pushes whose outcome is known
  std::uint64_t dropped = 0;         ///< of those, refused by a shard: the replica had been declared lost
  std::uint64_t max_lead = 0;        ///< most pushes ahead of the slowest live replica at an applied push
  staleness_histogram staleness{};   ///< staleness of the applied ones

  /// Records one push's outcome.
  void add(bool was_dropped, std::uint64_t staleness_of_push, std::uint64_t lead) noexcept {
    ++acknowledged;
    if (was_dropped) {
      ++dropped;
      return;
    }
    staleness.add(staleness_of_push);
    if (lead > max_lead) max_lead = lead;
  }
};

/// A replica's counters (`opt.stats()`): a worker_stats (steps, rounds = steps that pushed or fetched, bytes,
/// seconds; excluded_nonfinite = pushes not sent because their accrued gradient was not finite) and the
/// parameter server's own.
struct replica_stats : worker_stats {
  std::uint64_t pushes = 0;          ///< pushes sent
  std::uint64_t pushes_dropped = 0;  ///< pushes a shard refused because this replica had been declared lost
  std::uint64_t fetches = 0;         ///< fetches of the parameters (joins and finish() included)
  std::uint64_t max_lead = 0;        ///< most pushes it was ahead of the slowest live replica when a push applied
  staleness_histogram staleness{};   ///< staleness of its applied pushes
  double seconds_waiting = 0.0;      ///< time blocked by the consistency rule, the warm start or replay turns
  bool lost = false;                 ///< this replica was declared lost (its later pushes are dropped)
};

}  // namespace tether::ps
