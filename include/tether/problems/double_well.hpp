#pragma once
/// \file
/// problems::double_well: f(x) = 1/4 sum_i (x_i^2 - 1)^2, symmetric, minima at x_i = +-1 and a stationary
/// point at 0: the landscape where averaging workers from both wells stalls and a leader breaks symmetry.

#include <cstddef>
#include <cstdint>
#include <span>

#include "tether/core/error.hpp"
#include "tether/core/objective.hpp"
#include "tether/core/rng.hpp"

namespace tether::problems {

/// The symmetric double well, with optional gradient noise.
template <class T = float>
class double_well {
 public:
  explicit double_well(std::size_t n, double noise = 0.0, std::uint64_t seed = 1) : n_(n), noise_(noise), seed_(seed) {
    detail::require(n > 0, "double_well: n must be > 0, got n = ", n);
    detail::require(noise >= 0.0, "double_well: noise must be >= 0, got noise = ", noise);
  }
  [[nodiscard]] std::size_t dimension() const noexcept { return n_; }

  [[nodiscard]] double value(std::span<const T> x) const {
    double f = 0.0;
    for (std::size_t i = 0; i < n_; ++i) {
      const double d = double(x[i]) * double(x[i]) - 1.0;
      f += 0.25 * d * d;
    }
    return f;
  }

  double evaluate(std::span<const T> x, std::span<T> g, const batch& b) const {
    detail::require(x.size() == n_ && g.size() == n_, "double_well::evaluate: x has ", x.size(), " and g has ",
                    g.size(), " elements, expected ", n_);
    rng r(derive_seed(seed_, b.seed));
    for (std::size_t i = 0; i < n_; ++i) {
      g[i] = x[i] * (x[i] * x[i] - T(1));
      if (noise_ > 0.0) g[i] += static_cast<T>(noise_ * r.normal());
    }
    return value(x);
  }

 private:
  std::size_t n_;
  double noise_;
  std::uint64_t seed_;
};

}  // namespace tether::problems
