#pragma once
/// \file
/// tether::sums<T, K>: K running sums carried through one reduction pass of an execution space (several dot
/// products of one pass over the data, the squared norms a step asks for), and the functor helpers that read
/// them.

#include <cstddef>

#include "tether/core/config.hpp"

namespace tether {

/// K sums of T added element-wise: the value type of a multi-sum `reduce`. An aggregate, so `{}` is zero.
template <class T, std::size_t K>
struct sums {
  static_assert(K > 0, "tether::sums<T, K>: K must be > 0");
  T v[K];

  TETHER_HOST_DEVICE constexpr T& operator[](std::size_t k) noexcept { return v[k]; }
  TETHER_HOST_DEVICE constexpr const T& operator[](std::size_t k) const noexcept { return v[k]; }
  [[nodiscard]] static constexpr std::size_t size() noexcept { return K; }

  TETHER_HOST_DEVICE constexpr sums& operator+=(const sums& o) noexcept {
    for (std::size_t k = 0; k < K; ++k) v[k] += o.v[k];
    return *this;
  }
  TETHER_HOST_DEVICE friend constexpr sums operator+(sums a, const sums& b) noexcept {
    a += b;
    return a;
  }
};

namespace kernels {

/// Sum of a[i]*b[i] in double: the dot product of two vectors of T (a reduction functor).
template <class T>
struct dot {
  const T* a;
  const T* b;
  TETHER_HOST_DEVICE double operator()(std::size_t i) const {
    return static_cast<double>(a[i]) * static_cast<double>(b[i]);
  }
};

}  // namespace kernels
}  // namespace tether
