#pragma once
/// \file
/// lbfgs::portion_plan: how a batch (the whole data set) is cut into portions and what a replica computes for
/// one portion (docs/concepts.md#objective, docs/algorithms/sandblaster_lbfgs.md#portions).

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/core/objective.hpp"
#include "tether/core/shard_layout.hpp"

namespace tether::lbfgs {

/// The portions of a batch. A `sampled_objective` with M samples is cut into P' = min(P, M) contiguous ranges
/// of sample indices (a shard_layout of the M samples), portion k holding n_k of them; its contribution is
///
///     f_k = (n_k / M) * evaluate(x, g_k, {samples = the range})      and      c_k[i] = T((n_k / M) *
///     g_k[i]),
///
/// the weight applied in double and rounded to T once. The batch loss is the sum of the f_k and the batch
/// gradient the sum of the c_k, both added in portion order (k = 0, 1, ...), so the result does not depend on
/// which replica computed which portion, nor in which order they finished. An objective without `samples()`
/// is one portion of weight 1, evaluated with an empty batch.
template <class O, class T>
class portion_plan {
 public:
  static constexpr bool sampled = sampled_objective<O, T>;

  /// The plan for `portions` portions (>= 1) of `o`'s data. tether::error when the objective has no samples.
  portion_plan(O& o, std::size_t portions) {
    detail::require(portions >= 1, "sandblaster_lbfgs: portions must be >= 1, got portions = 0");
    if constexpr (sampled) {
      samples_ = static_cast<std::size_t>(o.samples());
      detail::require(samples_ > 0, "sandblaster_lbfgs: the objective has no samples (samples() = 0)");
      layout_ = shard_layout(samples_, portions < samples_ ? portions : samples_);
    } else {
      samples_ = 1;
      layout_ = shard_layout(1, 1);
    }
  }

  /// Number of portions P'.
  [[nodiscard]] std::size_t count() const noexcept { return layout_.shards(); }
  /// Number of samples M (1 for an objective without samples).
  [[nodiscard]] std::size_t samples() const noexcept { return samples_; }
  /// First sample of portion k and the number of its samples.
  [[nodiscard]] std::size_t begin(std::size_t k) const noexcept { return layout_.begin(k); }
  [[nodiscard]] std::size_t size(std::size_t k) const noexcept { return layout_.count(k); }
  /// n_k / M.
  [[nodiscard]] double weight(std::size_t k) const noexcept {
    return static_cast<double>(layout_.count(k)) / static_cast<double>(samples_);
  }

  /// Evaluates portion k at x: writes its contribution c_k into `c` (N values) and returns f_k. `indices` is
  /// scratch for the sample indices.
  double evaluate(O& o, std::span<const T> x, std::span<T> c, std::size_t k, std::uint64_t seed,
                  std::vector<std::size_t>& indices) const {
    const double w = weight(k);
    double f = 0.0;
    if constexpr (sampled) {
      indices.resize(size(k));
      std::iota(indices.begin(), indices.end(), begin(k));
      f = static_cast<double>(o.evaluate(x, c, batch{.samples = indices, .seed = seed}));
    } else {
      f = static_cast<double>(o.evaluate(x, c, batch{.samples = {}, .seed = seed}));
    }
    if (w != 1.0)
      for (auto& v : c) v = static_cast<T>(w * static_cast<double>(v));
    return w * f;
  }

 private:
  std::size_t samples_ = 0;
  shard_layout layout_{};
};

}  // namespace tether::lbfgs
