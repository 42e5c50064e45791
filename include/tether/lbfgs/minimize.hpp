#pragma once
/// \file
/// lbfgs::minimize: Sandblaster L-BFGS (DistBelief's batch method, docs/algorithms/sandblaster_lbfgs.md),
/// called by every worker of a thread team or every rank of comm::mpi (include tether/lbfgs/mpi.hpp for MPI).
///
///     tether::team team(4);
///     team.run([&](tether::team::worker& w) {
///       std::vector<double> x(problem.dimension());         // the same start point on every worker
///       auto r = tether::lbfgs::minimize(w, problem, x, {.history = 6, .epsilon = 1e-6});
///       // every worker: x is the minimiser, r.status, r.iterations, r.history ...
///     });

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "tether/core/checkpoint.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/fnv1a.hpp"
#include "tether/core/objective.hpp"
#include "tether/core/options_description.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"
#include "tether/lbfgs/checkpoint.hpp"
#include "tether/lbfgs/engine.hpp"
#include "tether/lbfgs/options.hpp"
#include "tether/lbfgs/portions.hpp"
#include "tether/lbfgs/team_channel.hpp"

namespace tether::lbfgs {

/// A fingerprint of the options every worker must share.
[[nodiscard]] inline std::uint64_t fingerprint(const options& o) {
  std::uint64_t h = tether::detail::fnv1a_offset;
  using tether::detail::fingerprint_impl::hash_into;
  hash_into(h, o.history);
  hash_into(h, o.epsilon);
  hash_into(h, o.past);
  hash_into(h, o.delta);
  hash_into(h, o.max_iterations);
  hash_into(h, o.line_search);
  hash_into(h, o.curvature_epsilon);
  hash_into(h, o.portions);
  hash_into(h, o.shards);
  hash_into(h, o.queue_depth);
  hash_into(h, o.backups);
  hash_into(h, o.backup_threshold);
  hash_into(h, o.max_copies);
  hash_into(h, o.backup_after);
  hash_into(h, o.timeout);
  hash_into(h, o.coordinator);
  hash_into(h, o.seed);
  hash_into(h, o.checkpoint.every);
  h = tether::detail::fnv1a(o.checkpoint.path, h);
  h = tether::detail::fnv1a_u64(o.checkpoint.path.size(), h);
  h = tether::detail::fnv1a(o.checkpoint.resume_from, h);
  h = tether::detail::fnv1a_u64(o.checkpoint.resume_from.size(), h);
  return h;
}

namespace detail {

/// A 64-bit hash of a vector's bytes (the start point every worker must share).
template <class T>
[[nodiscard]] std::uint64_t hash_values(std::span<const T> v) {
  std::uint64_t h = 0x9e3779b97f4a7c15ull ^ v.size();
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  const std::size_t bytes = v.size_bytes();
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p + i, 8);
    h = tether::detail::fnv1a_word(w, h);
    h ^= h >> 29;
  }
  return tether::detail::fnv1a(std::span(p + i, bytes - i), h);
}

/// Collective: throws tether::error on every worker when the workers disagree on one of the items. Uses the
/// communicator's own check (comm::mpi) or, for a communicator without one, two sums.
template <class Comm>
void check_agreement(Comm& comm, std::span<const consistency_item> items) {
  if constexpr (requires { comm.check_consistent(items); }) {
    comm.check_consistent(items);
  } else {
    const std::size_t k = items.size();
    std::vector<std::uint64_t> halves(2 * k);
    for (std::size_t i = 0; i < k; ++i) {
      halves[2 * i] = items[i].value & 0xffffffffull;
      halves[2 * i + 1] = items[i].value >> 32;
    }
    std::vector<std::uint64_t> sums = halves;
    comm.allreduce_sum(std::span<std::uint64_t>(sums));
    const auto p = static_cast<std::uint64_t>(comm.size());
    // Each worker flags the items where it differs from the mean; when not all agree, some worker differs.
    std::vector<std::uint64_t> differ(k, 0);
    for (std::size_t i = 0; i < k; ++i)
      differ[i] = (sums[2 * i] != p * halves[2 * i] || sums[2 * i + 1] != p * halves[2 * i + 1]) ? 1 : 0;
    comm.allreduce_sum(std::span<std::uint64_t>(differ));
    for (std::size_t i = 0; i < k; ++i)
      if (differ[i] != 0)
        throw error(tether::detail::concat("tether: worker ", comm.rank(), ": workers disagree on ",
                                           items[i].what, " (this worker has ", items[i].value, ")"));
  }
}

/// Collective, after each worker read its checkpoint (a failure kept in `failure`): the workers agree that
/// they read checkpoints of the same iteration, in one bounded collective, so that a missing, damaged or
/// mismatched file on one worker is an error on every worker (that worker's own error on it) instead of a
/// hang in the first batch.
template <class Comm>
void agree_on_resume(Comm& comm, const std::exception_ptr& failure, std::uint64_t iteration) {
  if constexpr (requires(std::span<const consistency_item> s) { comm.check_consistent(s); }) {
    tether::detail::agree_on_checkpoint_step(comm, failure, iteration);
  } else {
    // The thread team: the same agreement over check_agreement's sums.
    const consistency_item items[] = {
        {failure ? ~std::uint64_t{0} : iteration,
         "the iteration of their checkpoints (all ones: the worker could not read its checkpoint)"}};
    try {
      check_agreement(comm, items);
    } catch (const error&) {
      if (failure) std::rethrow_exception(failure);
      throw;
    }
    if (failure) std::rethrow_exception(failure);
  }
}

}  // namespace detail

/// Minimises `objective` from `x` by Sandblaster L-BFGS on the workers of `comm` (every worker calls it with
/// the same options, objective data and start point), with the shards' kernels on `exec`. On return, `x`
/// holds the result on every worker and `g` (same size, or empty) the gradient there. Bad input throws
/// tether::error on every worker; a worker that fails makes every other one fail within options::timeout
/// (tether::aborted, or tether::runtime_error naming what it waited for).
template <class Exec, class Comm, class O, class X, class G>
requires execution_space<Exec> && buffer<X> && buffer<G> result minimize(const Exec& exec, Comm& comm,
                                                                         O& objective, X&& x, G&& g,
                                                                         const options& o) {
  using xtraits = buffer_traits<std::remove_cvref_t<X>>;
  using gtraits = buffer_traits<std::remove_cvref_t<G>>;
  using T = typename xtraits::value_type;
  static_assert(!std::is_const_v<T>, "lbfgs::minimize: x must be mutable (it receives the result)");
  static_assert(std::is_floating_point_v<T>, "lbfgs::minimize: x must hold float or double");
  static_assert(std::is_same_v<std::remove_const_t<typename gtraits::value_type>, T> &&
                    !std::is_const_v<typename gtraits::value_type>,
                "lbfgs::minimize: g must be a mutable buffer of x's value type");
  static_assert(
      std::is_same_v<typename xtraits::memory_space, mem::host> &&
          std::is_same_v<typename gtraits::memory_space, mem::host>,
      "lbfgs::minimize: x and g live in host memory (the replicas evaluate the objective on the host)");
  static_assert(tether::objective<O, T>,
                "lbfgs::minimize: the objective must satisfy tether::objective<O, T> "
                "(see docs/concepts.md#objective)");
  static_assert(reducing_execution_space<Exec>,
                "lbfgs::minimize: the execution space must have reduce() (tether::reducing_execution_space, "
                "see docs/concepts.md#execution-space)");
  static_assert(std::is_same_v<typename Exec::memory_space, mem::host>,
                "lbfgs::minimize: the shards' execution space must work on host memory "
                "(see docs/algorithms/sandblaster_lbfgs.md#execution-spaces)");
  static_assert(
      requires { typename channel_for<Comm>::type; },
      "lbfgs::minimize: runs on tether::team::worker and comm::mpi (include tether/lbfgs/mpi.hpp); "
      "see docs/algorithms/sandblaster_lbfgs.md#communicators");

  std::span<T> xs(xtraits::data(x), xtraits::size(x));
  std::span<T> gs(gtraits::data(g), gtraits::size(g));
  const std::size_t dim = static_cast<std::size_t>(objective.dimension());
  std::uint64_t samples = 1;
  if constexpr (sampled_objective<O, T>) samples = static_cast<std::uint64_t>(objective.samples());
  const consistency_item items[] = {
      {xs.size(), "the size of x"},
      {dim, "the objective's dimension"},
      {samples, "the objective's samples()"},
      options_item(fingerprint(o), o, "the lbfgs::options"),
      {detail::hash_values(std::span<const T>(xs)), "the start point x (a hash of its values)"},
  };
  detail::check_agreement(comm, items);

  validate(o);
  tether::detail::require(dim > 0, "sandblaster_lbfgs: the objective has dimension 0");
  tether::detail::require(xs.size() == dim, "sandblaster_lbfgs: x has ", xs.size(),
                          " elements, the objective's dimension is ", dim);
  tether::detail::require(gs.empty() || gs.size() == dim, "sandblaster_lbfgs: g has ", gs.size(),
                          " elements, expected 0 or ", dim);
  tether::detail::require(o.coordinator >= 0 && o.coordinator < comm.size(),
                          "sandblaster_lbfgs: coordinator must "
                          "be in [0, ",
                          comm.size(), "), got coordinator = ", o.coordinator);
  const portion_plan<std::remove_reference_t<O>, T> plan(objective, o.portions);
  using engine_type = engine<Exec, typename channel_for<Comm>::type, std::remove_reference_t<O>, T>;

  const checkpoint_identity id{sizeof(T),
                               dim,
                               o.history,
                               comm.rank(),
                               comm.size(),
                               o.coordinator,
                               shard_count(dim, comm.size(), o),
                               plan.count(),
                               samples,
                               iterate_fingerprint(o)};
  std::optional<worker_checkpoint<T>> resume;
  if (!o.checkpoint.resume_from.empty()) {
    std::exception_ptr failure;
    try {
      const auto held = engine_type::held_shards(dim, comm.size(), comm.rank(), o);
      resume.emplace(read_worker_checkpoint<T>(checkpoint_file(o.checkpoint.resume_from, comm.rank()), id, o,
                                               std::span<const held_shard>(held)));
    } catch (const std::exception&) {
      failure = std::current_exception();
    }
    detail::agree_on_resume(comm, failure, resume ? resume->iteration : 0);
  }

  typename channel_for<Comm>::type channel(comm);
  engine_type e(exec, channel, objective, xs, gs, o, plan, id, resume ? &*resume : nullptr);
  return e.run();
}

/// minimize without the final gradient.
template <class Exec, class Comm, class O, class X>
requires execution_space<Exec> && buffer<X> result minimize(const Exec& exec, Comm& comm, O& objective, X&& x,
                                                            const options& o = {}) {
  using T = typename buffer_traits<std::remove_cvref_t<X>>::value_type;
  return minimize(exec, comm, objective, std::forward<X>(x), std::span<T>{}, o);
}

/// minimize with the shards' kernels on exec::serial.
template <class Comm, class O, class X>
requires communicator<Comm> && buffer<X> result minimize(Comm& comm, O& objective, X&& x,
                                                         const options& o = {}) {
  return minimize(exec::serial{}, comm, objective, std::forward<X>(x), o);
}

}  // namespace tether::lbfgs
