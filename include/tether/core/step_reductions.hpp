#pragma once
/// \file
/// Per-step reductions a step policy may ask for: sums over the worker's whole parameter vector (the squared
/// norms of g and x) that one element's `delta` cannot see. The optimizer computes them in the same pass over
/// g as its finite check and hands them to the step's `prepare(k, lr, reductions)`; a step that asks for none
/// keeps `prepare(k, lr)`. Global-norm clipping (step::clipped) is built on them.

#include <cstdint>
#include <utility>

#include "tether/core/config.hpp"
#include "tether/core/sums.hpp"

namespace tether {

/// Which reductions a step asks for: declare `static constexpr tether::reduction_request reductions{...};`.
struct reduction_request {
  bool g_norm2 = false;  ///< sum of g[i]^2 over this worker's parameters
  bool x_norm2 = false;  ///< sum of x[i]^2 (the pre-step parameters)

  [[nodiscard]] constexpr bool any() const noexcept { return g_norm2 || x_norm2; }
  /// Both requests: what a wrapper asks for on behalf of itself and the step it wraps.
  [[nodiscard]] friend constexpr reduction_request operator|(reduction_request a, reduction_request b) noexcept {
    return {a.g_norm2 || b.g_norm2, a.x_norm2 || b.x_norm2};
  }
};

/// The reductions of one step, in double: what `prepare(k, lr, reductions)` receives. Only the requested ones
/// are computed (the others are 0).
struct step_reductions {
  double g_norm2 = 0.0;  ///< sum of g[i]^2
  double x_norm2 = 0.0;  ///< sum of x[i]^2
};

/// The reductions step policy S asks for: S::reductions when it declares them, none otherwise.
template <class S>
[[nodiscard]] constexpr reduction_request reductions_of() noexcept {
  if constexpr (requires { S::reductions; })
    return S::reductions;
  else
    return {};
}

namespace detail {

/// The step's context for the k-th applied step: prepare(k, lr, r) when the step takes reductions,
/// prepare(k, lr) otherwise. (No overload when it has neither, so concepts can test it.)
template <class S, class T>
[[nodiscard]] auto prepare_step(const S& s, std::uint64_t k, T lr, const step_reductions& r)
    -> decltype(s.prepare(k, lr, r)) {
  return s.prepare(k, lr, r);
}
template <class S, class T>
  requires(!requires(const S& s, std::uint64_t k, T lr, const step_reductions& r) { s.prepare(k, lr, r); })
[[nodiscard]] auto prepare_step(const S& s, std::uint64_t k, T lr, const step_reductions&)
    -> decltype(s.prepare(k, lr)) {
  return s.prepare(k, lr);
}

}  // namespace detail

namespace kernels {

/// One element's share of the step's reductions and of the finite check, as a reduction functor:
/// {g[i]^2 if G, x[i]^2 if X, 1 if g[i] is not finite}, in double.
template <class T, bool G, bool X>
struct step_norms {
  const T* g;
  const T* x;
  TETHER_HOST_DEVICE sums<double, 3> operator()(std::size_t i) const {
    const double gi = static_cast<double>(g[i]);
    const double xi = X ? static_cast<double>(x[i]) : 0.0;
    return {{G ? gi * gi : 0.0, xi * xi, g[i] - g[i] == T(0) ? 0.0 : 1.0}};
  }
};

}  // namespace kernels
}  // namespace tether
