#pragma once
/// \file
/// problems::rosenbrock: f(x) = sum_{i<n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, minimum 0 at all ones.

#include <cstddef>
#include <span>

#include "tether/core/error.hpp"
#include "tether/core/objective.hpp"

namespace tether::problems {

/// The extended Rosenbrock function (a curved, ill-conditioned valley).
template <class T = float>
class rosenbrock {
 public:
  explicit rosenbrock(std::size_t n) : n_(n) {
    detail::require(n >= 2, "rosenbrock: n must be >= 2, got n = ", n);
  }
  [[nodiscard]] std::size_t dimension() const noexcept { return n_; }

  [[nodiscard]] double value(std::span<const T> x) const {
    double f = 0.0;
    for (std::size_t i = 0; i + 1 < n_; ++i) {
      const double a = double(x[i + 1]) - double(x[i]) * double(x[i]);
      const double b = 1.0 - double(x[i]);
      f += 100.0 * a * a + b * b;
    }
    return f;
  }

  double evaluate(std::span<const T> x, std::span<T> g, const batch& /*b*/) const {
    detail::require(x.size() == n_ && g.size() == n_, "rosenbrock::evaluate: x has ", x.size(), " and g has ",
                    g.size(), " elements, expected ", n_);
    for (std::size_t i = 0; i < n_; ++i) g[i] = T(0);
    for (std::size_t i = 0; i + 1 < n_; ++i) {
      const double a = double(x[i + 1]) - double(x[i]) * double(x[i]);
      g[i] += static_cast<T>(-400.0 * double(x[i]) * a - 2.0 * (1.0 - double(x[i])));
      g[i + 1] += static_cast<T>(200.0 * a);
    }
    return value(x);
  }

 private:
  std::size_t n_;
};

}  // namespace tether::problems
