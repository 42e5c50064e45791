#pragma once
/// \file
/// problems::quadratic: f(x) = 1/2 sum_i a_i (x_i - c_i)^2 with a known optimum c, and optional Gaussian
/// gradient noise (a stochastic gradient whose mean is the true gradient).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/core/objective.hpp"
#include "tether/core/rng.hpp"

namespace tether::problems {

/// A separable, strongly convex quadratic with curvatures in [a_min, a_max] and optimum c.
template <class T = float>
class quadratic {
 public:
  struct options {
    double a_min = 1.0;    ///< smallest curvature (> 0)
    double a_max = 10.0;   ///< largest curvature
    double noise = 0.0;    ///< standard deviation of the gradient noise per coordinate
    std::uint64_t seed = 1;
  };

  explicit quadratic(std::size_t n, options o = {}) : o_(o), a_(n), c_(n) {
    detail::require(n > 0, "quadratic: n must be > 0, got n = ", n);
    detail::require(o.a_min > 0.0 && o.a_max >= o.a_min, "quadratic: need 0 < a_min <= a_max, got a_min = ",
                    o.a_min, ", a_max = ", o.a_max);
    detail::require(o.noise >= 0.0, "quadratic: noise must be >= 0, got noise = ", o.noise);
    rng r(o.seed);
    for (std::size_t i = 0; i < n; ++i) {
      a_[i] = static_cast<T>(n == 1 ? o.a_min : o.a_min + (o.a_max - o.a_min) * static_cast<double>(i) / double(n - 1));
      c_[i] = static_cast<T>(2.0 * r.uniform() - 1.0);
    }
  }

  [[nodiscard]] std::size_t dimension() const noexcept { return a_.size(); }
  /// The minimiser.
  [[nodiscard]] std::span<const T> optimum() const noexcept { return c_; }
  [[nodiscard]] std::span<const T> curvature() const noexcept { return a_; }

  /// The loss without noise.
  [[nodiscard]] double value(std::span<const T> x) const {
    double f = 0.0;
    for (std::size_t i = 0; i < a_.size(); ++i) {
      const double d = double(x[i]) - double(c_[i]);
      f += 0.5 * double(a_[i]) * d * d;
    }
    return f;
  }

  /// Loss and (noisy, if configured) gradient; the batch's seed drives the noise.
  double evaluate(std::span<const T> x, std::span<T> g, const batch& b) const {
    detail::require(x.size() == a_.size() && g.size() == a_.size(), "quadratic::evaluate: x has ", x.size(),
                    " and g has ", g.size(), " elements, expected ", a_.size());
    rng r(derive_seed(o_.seed, b.seed));
    for (std::size_t i = 0; i < a_.size(); ++i) {
      g[i] = a_[i] * (x[i] - c_[i]);
      if (o_.noise > 0.0) g[i] += static_cast<T>(o_.noise * r.normal());
    }
    return value(x);
  }

 private:
  options o_;
  std::vector<T> a_;
  std::vector<T> c_;
};

}  // namespace tether::problems
