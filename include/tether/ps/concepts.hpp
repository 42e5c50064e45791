#pragma once
/// \file
/// ps::parameter_store: the one-sided tier's tether::shared_store plus what a parameter server's replica needs
/// on top of it: versions of what it read, a push at a given rate that reports staleness and drops, joins and
/// leases. Both placements (ps/team_store.hpp, ps/mpi_store.hpp) model it.
/// See docs/algorithms/downpour.md#the-store-and-its-placements.

#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

#include "tether/core/concepts.hpp"
#include "tether/ps/stats.hpp"
#include "tether/ps/store_options.hpp"

namespace tether::ps {

/// A replica's handle on a parameter server: a tether::shared_store whose addition applies the shards' step
/// policy (`accumulate(g)` is a push at the store's base rate, `read(x)` a fetch), and:
/// `join(x)` (first step: true when this replica initialised the store from x, false when it must fetch),
/// `push(g, lr)`, `tally()` (what is known of its pushes: staleness, drops, lead), `fetch(x)`, `versions()` (what the last fetch read, one per shard),
/// `renew(steps)` (lease), `stepped(steps, pushes)` (warm-start progress), `finish(x)` (done; waits for every
/// replica to finish or be lost, then leaves the final parameters in x), `abandon()` (this replica failed),
/// `losses()` (the replicas declared lost). Buffers are pointers into the execution space's memory.
template <class S, class T = float>
concept parameter_store =
    shared_store<S, T> && requires(S& s, T* x, const T* g, T lr, std::uint64_t k) {
      { s.join(x) } -> std::same_as<bool>;
      s.push(g, lr);
      { s.tally() } -> std::convertible_to<const push_tally&>;
      s.fetch(x);
      { s.versions() } -> std::convertible_to<std::span<const std::uint64_t>>;
      s.renew(k);
      s.stepped(k, k);
      s.finish(x);
      s.abandon();
      { s.losses() } -> std::same_as<std::vector<replica_loss>>;
    };

}  // namespace tether::ps
