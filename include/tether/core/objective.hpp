#pragma once
/// \file
/// The objective concept: what a user's model provides to tether (see docs/concepts.md#objective).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace tether {

/// A minibatch: the sample indices to evaluate (empty for analytic objectives) and a seed for any noise.
struct batch {
  std::span<const std::size_t> samples{};  ///< indices into the objective's data; empty = no data
  std::uint64_t seed = 0;                   ///< seed of this minibatch's randomness (noise, dropout)
};

/// A model: its parameter count, and the loss with its gradient at a point for a minibatch.
/// `evaluate(x, g, b)` returns the mean loss over the batch and writes the gradient into `g`.
template <class O, class T = float>
concept objective = requires(O& o, std::span<const T> x, std::span<T> g, const batch& b) {
  { o.dimension() } -> std::convertible_to<std::size_t>;
  { o.evaluate(x, g, b) } -> std::convertible_to<double>;
};

/// An objective over a data set of `samples()` samples, whose `evaluate` takes any set of sample indices: the
/// mean loss and gradient over those samples. Sandblaster L-BFGS cuts the data into portions, contiguous
/// index ranges (a tether::shard_layout of the samples), evaluates each on a replica, and weighs it by its
/// share of the samples.
template <class O, class T = float>
concept sampled_objective = objective<O, T> && requires(O& o) {
  { o.samples() } -> std::convertible_to<std::size_t>;
};

}  // namespace tether
