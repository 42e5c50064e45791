#pragma once
/// \file
/// The element-wise kernels a Sandblaster shard runs on its slices (functors, core/kernels.hpp style, so
/// every execution space can run them): the trial point, the candidate pair, the portion-ordered
/// accumulation, the direction as a linear combination, and many dot products in one reduction pass.

#include <cstddef>

#include "tether/core/config.hpp"
#include "tether/core/sums.hpp"
#include "tether/lbfgs/options.hpp"

namespace tether::lbfgs::kernels {

/// xt[i] = x[i] + a * d[i]
template <class T>
struct trial_point {
  const T* x;
  const T* d;
  T* xt;
  T a;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { xt[i] = x[i] + a * d[i]; }
};

/// dst[i] = v
template <class T>
struct fill {
  T* dst;
  T v;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { dst[i] = v; }
};

/// dst[i] += src[i]: one portion's contribution added to the batch gradient.
template <class T>
struct add {
  T* dst;
  const T* src;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { dst[i] += src[i]; }
};

/// The candidate pair of a trial: s[i] = xt[i] - x[i], y[i] = gt[i] - g[i].
template <class T>
struct pair_difference {
  const T* xt;
  const T* x;
  const T* gt;
  const T* g;
  T* s;
  T* y;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    s[i] = xt[i] - x[i];
    y[i] = gt[i] - g[i];
  }
};

/// d[i] = sum_k c[k] * v[k][i], added in double in the order of k and rounded to T once: the direction formed
/// from the shard's slices of the base vectors (at most 2 * max_history + 1 of them).
template <class T>
struct combination {
  static constexpr std::size_t max_terms = 2 * max_history + 1;
  T* d;
  const T* v[max_terms];
  double c[max_terms];
  std::size_t count;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    double acc = 0.0;
    for (std::size_t k = 0; k < count; ++k) acc += c[k] * static_cast<double>(v[k][i]);
    d[i] = static_cast<T>(acc);
  }
};

/// Up to K dot products a[k] . b[k] in one pass (a reduction functor over tether::sums<double, K>); products
/// in double. Pairs k >= count give 0.
template <class T, std::size_t K>
struct dots {
  const T* a[K];
  const T* b[K];
  std::size_t count;
  TETHER_HOST_DEVICE sums<double, K> operator()(std::size_t i) const {
    sums<double, K> r{};
    for (std::size_t k = 0; k < count; ++k)
      r[k] = static_cast<double>(a[k][i]) * static_cast<double>(b[k][i]);
    return r;
  }
};

}  // namespace tether::lbfgs::kernels
