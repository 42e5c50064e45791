#pragma once
/// \file
/// problems::softmax: multinomial logistic regression (softmax, L2-regularised, convex) on a data set of
/// feature vectors and class labels: Fashion-MNIST in examples/softmax, generated data in tests and
/// benchmarks. A `sampled_objective`: it evaluates any set of sample indices (Sandblaster L-BFGS's portions).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/core/objective.hpp"
#include "tether/core/rng.hpp"

namespace tether::problems {

/// loss(W, b) = mean over the samples of -log softmax(W'x_s + b)[y_s] + l2/2 |W|^2, with D features and C
/// classes. Parameters: W feature-major (weight of feature j for class c at j*C + c), then the C biases:
/// N = (D + 1) C. The data (M x D floats, row-major, and M labels in [0, C)) is shared by copies of the
/// object.
template <class T = float>
class softmax {
 public:
  struct options {
    std::size_t classes = 10;  ///< C >= 2
    double l2 = 1e-4;          ///< weight decay of W (not of the biases); >= 0
  };

  /// A view of external data that must outlive the object: `labels.size()` samples of `features` values each.
  softmax(std::span<const float> x, std::span<const std::uint8_t> labels, std::size_t features,
          options o = {})
      : o_(o), d_(features), x_(x), y_(labels) {
    check();
  }

  /// Generated data: M samples of D standard-normal features, labels drawn from a softmax of a hidden linear
  /// model (so the classes overlap and the optimum is finite even with l2 = 0 in practice).
  static softmax generated(std::size_t samples, std::size_t features, options o = {},
                           std::uint64_t seed = 1) {
    detail::require(o.classes >= 2 && o.classes <= 256,
                    "softmax: classes must be in [2, 256], got classes = ", o.classes);
    auto own = std::make_shared<owned>();
    rng r(seed);
    std::vector<double> w(features * o.classes);
    for (auto& v : w) v = r.normal() / std::sqrt(static_cast<double>(features));
    own->x.resize(samples * features);
    own->y.resize(samples);
    std::vector<double> z(o.classes);
    for (std::size_t s = 0; s < samples; ++s) {
      for (std::size_t j = 0; j < features; ++j) own->x[s * features + j] = static_cast<float>(r.normal());
      double zmax = -1e300;
      for (std::size_t c = 0; c < o.classes; ++c) {
        z[c] = 0.0;
        for (std::size_t j = 0; j < features; ++j)
          z[c] += 2.0 * w[j * o.classes + c] * own->x[s * features + j];
        zmax = std::max(zmax, z[c]);
      }
      double total = 0.0;
      for (auto& v : z) total += (v = std::exp(v - zmax));
      double u = r.uniform() * total;
      std::size_t label = o.classes - 1;
      for (std::size_t c = 0; c < o.classes; ++c) {
        if (u < z[c]) {
          label = c;
          break;
        }
        u -= z[c];
      }
      own->y[s] = static_cast<std::uint8_t>(label);
    }
    softmax p(own->x, own->y, features, o);
    p.own_ = std::move(own);
    return p;
  }

  [[nodiscard]] std::size_t dimension() const noexcept { return (d_ + 1) * o_.classes; }
  [[nodiscard]] std::size_t samples() const noexcept { return y_.size(); }
  [[nodiscard]] std::size_t features() const noexcept { return d_; }
  [[nodiscard]] std::size_t classes() const noexcept { return o_.classes; }

  /// Mean loss and its gradient over `b.samples` (over all samples when it is empty), plus the L2 term.
  /// Samples are processed in blocks of 8 (each row of W and of the gradient is read once per block); the
  /// common class counts 2..16 run a kernel compiled for that count.
  double evaluate(std::span<const T> w, std::span<T> g, const batch& b) const {
    detail::require(w.size() == dimension() && g.size() == dimension(), "softmax::evaluate: w has ", w.size(),
                    " and g has ", g.size(), " elements, expected ", dimension());
    const std::size_t m = b.samples.empty() ? samples() : b.samples.size();
    for (std::size_t k = 0; k < b.samples.size(); ++k)
      detail::require(b.samples[k] < samples(), "softmax::evaluate: sample index ", b.samples[k],
                      " out of range [0, ", samples(), ")");
    std::fill(g.begin(), g.end(), T(0));
    double loss = 0.0;
    if (m > 0) loss = dispatch<2>(w, g, b, m);
    double reg = 0.0;
    const auto l2 = static_cast<T>(o_.l2);
    for (std::size_t i = 0; i < d_ * o_.classes; ++i) {
      g[i] += l2 * w[i];
      reg += static_cast<double>(w[i]) * static_cast<double>(w[i]);
    }
    return loss + 0.5 * o_.l2 * reg;
  }

  /// The class with the highest score for sample s.
  [[nodiscard]] std::size_t predict(std::span<const T> w, std::size_t s) const {
    const std::size_t c_count = o_.classes;
    const float* xs = x_.data() + s * d_;
    std::vector<double> z(c_count);
    for (std::size_t c = 0; c < c_count; ++c) z[c] = static_cast<double>(w[d_ * c_count + c]);
    for (std::size_t j = 0; j < d_; ++j)
      for (std::size_t c = 0; c < c_count; ++c) z[c] += static_cast<double>(w[j * c_count + c]) * xs[j];
    return static_cast<std::size_t>(std::max_element(z.begin(), z.end()) - z.begin());
  }

  /// Fraction of the samples classified correctly.
  [[nodiscard]] double accuracy(std::span<const T> w) const {
    std::size_t ok = 0;
    for (std::size_t s = 0; s < samples(); ++s) ok += predict(w, s) == y_[s] ? 1 : 0;
    return static_cast<double>(ok) / static_cast<double>(std::max<std::size_t>(samples(), 1));
  }

 private:
  static constexpr std::size_t block = 8;  // samples per block

  /// The kernel for C classes: compiled for C when C is in [2, 16], otherwise the runtime count (C = 0).
  template <std::size_t C>
  double dispatch(std::span<const T> w, std::span<T> g, const batch& b, std::size_t m) const {
    if constexpr (C > 16) {
      return kernel<0>(w, g, b, m);
    } else {
      if (o_.classes == C) return kernel<C>(w, g, b, m);
      return dispatch<C + 1>(w, g, b, m);
    }
  }

  /// Mean loss over the batch; adds the mean gradient of the data term into g.
  template <std::size_t Fixed>
  double kernel(std::span<const T> w, std::span<T> g, const batch& b, std::size_t m) const {
    const std::size_t cc = Fixed == 0 ? o_.classes : Fixed;
    std::vector<T> z(block * cc);
    std::vector<T> r(block * cc);
    const float* rows[block];
    const T* bias = w.data() + d_ * cc;
    T* gbias = g.data() + d_ * cc;
    const double inv_m = 1.0 / static_cast<double>(m);
    double loss = 0.0;
    for (std::size_t k0 = 0; k0 < m; k0 += block) {
      const std::size_t nb = std::min(block, m - k0);
      for (std::size_t s = 0; s < nb; ++s) {
        const std::size_t idx = b.samples.empty() ? k0 + s : b.samples[k0 + s];
        rows[s] = x_.data() + idx * d_;
        for (std::size_t c = 0; c < cc; ++c) z[s * cc + c] = bias[c];
      }
      // Scores, one sample at a time with its C scores in local accumulators.
      for (std::size_t s = 0; s < nb; ++s) {
        T acc[Fixed == 0 ? 1 : Fixed];
        T* zs = Fixed == 0 ? z.data() + s * cc : acc;
        for (std::size_t c = 0; c < cc; ++c) zs[c] = bias[c];
        const float* xs = rows[s];
        for (std::size_t j = 0; j < d_; ++j) {
          const T xj = static_cast<T>(xs[j]);
          const T* wj = w.data() + j * cc;
          for (std::size_t c = 0; c < cc; ++c) zs[c] += wj[c] * xj;
        }
        if (Fixed != 0)
          for (std::size_t c = 0; c < cc; ++c) z[s * cc + c] = zs[c];
      }
      // Loss and d loss / d z = (softmax - one-hot) / m.
      for (std::size_t s = 0; s < nb; ++s) {
        const T* zs = z.data() + s * cc;
        T zmax = zs[0];
        for (std::size_t c = 1; c < cc; ++c) zmax = std::max(zmax, zs[c]);
        double total = 0.0;
        for (std::size_t c = 0; c < cc; ++c) total += std::exp(static_cast<double>(zs[c] - zmax));
        const std::size_t idx = b.samples.empty() ? k0 + s : b.samples[k0 + s];
        const std::size_t y = y_[idx];
        loss += std::log(total) + static_cast<double>(zmax) - static_cast<double>(zs[y]);
        T* rs = r.data() + s * cc;
        for (std::size_t c = 0; c < cc; ++c) {
          const double p = std::exp(static_cast<double>(zs[c] - zmax)) / total;
          rs[c] = static_cast<T>((p - (c == y ? 1.0 : 0.0)) * inv_m);
          gbias[c] += rs[c];
        }
      }
      // Gradient: each row of g is read and written once for the block, its C values in local accumulators.
      for (std::size_t j = 0; j < d_; ++j) {
        T acc[Fixed == 0 ? 1 : Fixed];
        T* gj = Fixed == 0 ? g.data() + j * cc : acc;
        if (Fixed != 0)
          for (std::size_t c = 0; c < cc; ++c) acc[c] = g[j * cc + c];
        for (std::size_t s = 0; s < nb; ++s) {
          const T xj = static_cast<T>(rows[s][j]);
          const T* rs = r.data() + s * cc;
          for (std::size_t c = 0; c < cc; ++c) gj[c] += rs[c] * xj;
        }
        if (Fixed != 0)
          for (std::size_t c = 0; c < cc; ++c) g[j * cc + c] = acc[c];
      }
    }
    return loss * inv_m;
  }

  struct owned {
    std::vector<float> x;
    std::vector<std::uint8_t> y;
  };

  void check() const {
    detail::require(o_.classes >= 2 && o_.classes <= 256,
                    "softmax: classes must be in [2, 256], got classes = ", o_.classes);
    detail::require(d_ > 0, "softmax: features must be > 0, got features = 0");
    detail::require(std::isfinite(o_.l2) && o_.l2 >= 0.0,
                    "softmax: l2 must be finite and >= 0, got l2 = ", o_.l2);
    detail::require(x_.size() == y_.size() * d_, "softmax: ", x_.size(), " feature values for ", y_.size(),
                    " labels of ", d_, " features each");
    for (std::size_t s = 0; s < y_.size(); ++s)
      detail::require(y_[s] < o_.classes, "softmax: label ", static_cast<int>(y_[s]), " of sample ", s,
                      " is not below classes = ", o_.classes);
  }

  options o_;
  std::size_t d_;
  std::span<const float> x_;
  std::span<const std::uint8_t> y_;
  std::shared_ptr<owned> own_;
};

}  // namespace tether::problems
