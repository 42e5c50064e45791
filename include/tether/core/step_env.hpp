#pragma once
/// \file
/// What a pull policy sees around each step: the communicator, the execution space, the step index, the
/// step's loss and the worker's counters; and the collectives and kernels a pull runs on buffers in the
/// execution space's memory (host or GPU), so that a user's pull written on them runs on any space.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "tether/core/collectives.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/request.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/view.hpp"

namespace tether {

/// The environment handed to a pull's start/before/after/finish hooks. Its member functions are what a pull
/// calls on its buffers: they take views in the execution space's memory and route them (tether's
/// collectives.hpp: the communicator's device collectives, or staging through host memory), so a pull that
/// uses only them works on the GPU without change. See docs/concepts.md#pull-policy.
template <class Comm, class Exec>
struct step_env {
  using comm_type = Comm;
  using exec_type = Exec;
  Comm& comm;
  const Exec& exec;
  std::uint64_t step = 0;  ///< index of the step being taken, from 0
  double loss = 0.0;       ///< this step's loss; NaN when the step is skipped as non-finite
  worker_stats& stats;
  bool round = false;      ///< the pull sets it when it communicated in this step

  /// This worker's rank and the number of workers.
  [[nodiscard]] int rank() const { return comm.rank(); }
  [[nodiscard]] int size() const { return comm.size(); }

  /// In place: every worker's `v` becomes the element-wise sum over the workers (collective).
  template <class T, class S>
  void allreduce_sum(view<T, S> v) const {
    tether::allreduce_sum(exec, comm, v);
  }

  /// Every worker's `v` becomes a copy of worker `root`'s (collective).
  template <class T, class S>
  void broadcast(view<T, S> v, int root) const {
    tether::broadcast(exec, comm, v, root);
  }

  /// Non-blocking sum: `recv` holds the sum of every worker's `send` once the request completes (collective;
  /// neither buffer may be touched before).
  template <class U, class T, class S>
    requires std::same_as<std::remove_const_t<U>, T>
  [[nodiscard]] request iallreduce_sum(view<U, S> send, view<T, S> recv) const {
    detail::require(send.size() == recv.size(), "step_env::iallreduce_sum: send has ", send.size(),
                    " elements, recv has ", recv.size());
    return tether::iallreduce_sum(exec, comm, view<const T, S>{send.data(), send.size()}, recv);
  }

  /// The election of the workers' scores (collective): the lowest finite score wins, ties go to the lowest
  /// rank; rank -1 when no score is finite.
  [[nodiscard]] election min_loc(double score) const { return comm.min_loc(score); }

  /// True when no element of `v` is NaN or infinite: one read of v on the execution space (this worker only).
  /// Pulls ask it at their rounds, so that a worker whose parameters are not finite never leads and is never
  /// averaged (docs/architecture.md#errors-and-faults).
  template <class T, class S>
  [[nodiscard]] bool all_finite(view<T, S> v) const {
    return !exec.any(v.size(), kernels::nonfinite<std::remove_const_t<T>>{v.data()});
  }

  /// The number of workers for which `mine` is true (collective: one all-reduce of one double).
  [[nodiscard]] int count_workers(bool mine) const {
    double c = mine ? 1.0 : 0.0;
    comm.allreduce_sum(std::span<double>(&c, 1));
    return static_cast<int>(c + 0.5);
  }

  /// v <- a, on the execution space (this worker only).
  template <class T, class S>
  void fill(view<T, S> v, std::type_identity_t<T> a) const {
    exec.parallel_for(v.size(), kernels::fill<T>{v.data(), a});
  }

  /// dst <- src, on the execution space (this worker only).
  template <class U, class T, class S>
    requires std::same_as<std::remove_const_t<U>, T>
  void copy(view<U, S> src, view<T, S> dst) const {
    detail::require(src.size() == dst.size(), "step_env::copy: src has ", src.size(), " elements, dst has ",
                    dst.size());
    exec.parallel_for(dst.size(), kernels::copy<T>{src.data(), dst.data()});
  }

  /// v <- a * v, on the execution space (this worker only).
  template <class T, class S>
  void scale(view<T, S> v, std::type_identity_t<T> a) const {
    exec.parallel_for(v.size(), kernels::scale<T>{v.data(), a});
  }
};

/// The K target buffers of a pull, as views in the execution space's memory.
template <class T, std::size_t K, class Space = mem::host>
using pull_buffers = std::array<view<T, Space>, K>;

}  // namespace tether
