#pragma once
/// \file
/// Small named element-wise kernels the pulls run between steps (copies, scalings, center and anchor
/// updates). Functors, not lambdas, so every execution space (host loops, OpenMP, Thrust, Kokkos, CUDA) can
/// run them.

#include <array>
#include <cstddef>

#include "tether/core/config.hpp"

namespace tether::kernels {

/// dst[i] = src[i]
template <class T>
struct copy {
  const T* src;
  T* dst;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { dst[i] = src[i]; }
};

/// dst[i] += src[0][i] + ... + src[count-1][i], added in order (rank-order sums of the team's collectives).
template <class T>
struct accumulate {
  static constexpr std::size_t max_sources = 8;
  T* dst;
  std::array<const T*, max_sources> src;
  std::size_t count;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    T a = dst[i];
    for (std::size_t k = 0; k < count; ++k) a += src[k][i];
    dst[i] = a;
  }
};

/// x[i] = a
template <class T>
struct fill {
  T* x;
  T a;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { x[i] = a; }
};

/// Predicate of an element that is NaN or infinite (v - v is 0 exactly for every finite v).
template <class T>
struct nonfinite {
  const T* v;
  TETHER_HOST_DEVICE bool operator()(std::size_t i) const { return !(v[i] - v[i] == T(0)); }
};

/// x[i] *= a
template <class T>
struct scale {
  T* x;
  T a;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { x[i] *= a; }
};

/// EASGD's center: c[i] += alpha * (sum[i] - p*c[i]), i.e. c += alpha * sum_j (x_j - c).
template <class T>
struct elastic_center {
  T* c;
  const T* sum;
  T alpha;
  T p;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { c[i] += alpha * (sum[i] - p * c[i]); }
};

/// Overlap-Local-SGD's anchor from a completed sum: avg = sum*inv_p; v = m*v + (avg - z); z += v.
/// With m = 0 this is z = avg up to rounding; `first` sets z = avg exactly.
template <class T>
struct anchor_update {
  T* z;
  T* v;
  const T* sum;
  T inv_p;
  T m;
  bool first;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    const T avg = sum[i] * inv_p;
    if (first || m == T(0)) {
      z[i] = avg;
      return;
    }
    const T vn = m * v[i] + (avg - z[i]);
    v[i] = vn;
    z[i] += vn;
  }
};

}  // namespace tether::kernels
