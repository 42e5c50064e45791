#pragma once
/// \file
/// problems::logistic: L2-regularised logistic regression on generated data. Labels come from a hidden
/// weight vector through a noisy sigmoid, so the data is realistic (not separable) and reproducible.
/// Parameters: `features` weights then one bias.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/core/objective.hpp"
#include "tether/core/rng.hpp"

namespace tether::problems {

/// Binary logistic regression: loss = mean log(1 + exp(-y * (w.x + b))) + l2/2 |w|^2, y in {-1, +1}.
template <class T = float>
class logistic {
 public:
  struct options {
    std::size_t samples = 4096;
    std::size_t features = 32;
    double l2 = 1e-4;
    std::uint64_t seed = 7;
  };

  explicit logistic(options o = {}) : o_(o) {
    detail::require(o.samples > 0, "logistic: samples must be > 0, got samples = ", o.samples);
    detail::require(o.features > 0, "logistic: features must be > 0, got features = ", o.features);
    detail::require(o.l2 >= 0.0, "logistic: l2 must be >= 0, got l2 = ", o.l2);
    rng r(o.seed);
    std::vector<double> w(o.features);
    for (auto& v : w) v = r.normal();
    const double bias = 0.5 * r.normal();
    x_.resize(o.samples * o.features);
    y_.resize(o.samples);
    for (std::size_t s = 0; s < o.samples; ++s) {
      double z = bias;
      for (std::size_t j = 0; j < o.features; ++j) {
        const double v = r.normal();
        x_[s * o.features + j] = static_cast<T>(v);
        z += v * w[j] / std::sqrt(double(o.features));
      }
      y_[s] = r.uniform() < 1.0 / (1.0 + std::exp(-4.0 * z)) ? T(1) : T(-1);
    }
  }

  [[nodiscard]] std::size_t dimension() const noexcept { return o_.features + 1; }
  [[nodiscard]] std::size_t samples() const noexcept { return o_.samples; }
  [[nodiscard]] std::span<const T> features_of(std::size_t s) const { return {x_.data() + s * o_.features, o_.features}; }
  [[nodiscard]] T label(std::size_t s) const { return y_[s]; }

  /// Mean loss and gradient over `b.samples` (over all samples when it is empty).
  double evaluate(std::span<const T> w, std::span<T> g, const batch& b) const {
    detail::require(w.size() == dimension() && g.size() == dimension(), "logistic::evaluate: w has ", w.size(),
                    " and g has ", g.size(), " elements, expected ", dimension());
    const std::size_t d = o_.features;
    for (auto& v : g) v = T(0);
    double loss = 0.0;
    const std::size_t m = b.samples.empty() ? o_.samples : b.samples.size();
    for (std::size_t k = 0; k < m; ++k) {
      const std::size_t s = b.samples.empty() ? k : b.samples[k];
      detail::require(s < o_.samples, "logistic::evaluate: sample index ", s, " out of range [0, ", o_.samples, ")");
      const T* xs = x_.data() + s * d;
      double z = double(w[d]);
      for (std::size_t j = 0; j < d; ++j) z += double(w[j]) * double(xs[j]);
      const double yz = double(y_[s]) * z;
      loss += yz > 0 ? std::log1p(std::exp(-yz)) : -yz + std::log1p(std::exp(yz));
      const double coef = -double(y_[s]) / (1.0 + std::exp(yz)) / double(m);
      for (std::size_t j = 0; j < d; ++j) g[j] += static_cast<T>(coef * double(xs[j]));
      g[d] += static_cast<T>(coef);
    }
    double reg = 0.0;
    for (std::size_t j = 0; j < d; ++j) {
      g[j] += static_cast<T>(o_.l2 * double(w[j]));
      reg += double(w[j]) * double(w[j]);
    }
    return loss / double(m) + 0.5 * o_.l2 * reg;
  }

  /// Fraction of samples classified correctly.
  [[nodiscard]] double accuracy(std::span<const T> w) const {
    const std::size_t d = o_.features;
    std::size_t ok = 0;
    for (std::size_t s = 0; s < o_.samples; ++s) {
      double z = double(w[d]);
      for (std::size_t j = 0; j < d; ++j) z += double(w[j]) * double(x_[s * d + j]);
      ok += (z >= 0) == (y_[s] > 0);
    }
    return double(ok) / double(o_.samples);
  }

 private:
  options o_;
  std::vector<T> x_;
  std::vector<T> y_;
};

}  // namespace tether::problems
