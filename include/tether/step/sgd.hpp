#pragma once
/// \file
/// step::sgd: plain stochastic gradient descent, x -= lr * g.

#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"

namespace tether::step {

/// Plain SGD. No per-element state.
struct sgd {
  struct options {};
  options opt{};

  static constexpr std::size_t state_size = 0;  ///< per-element state buffers

  /// Per-step scalars, computed once on the host.
  template <class T>
  struct context {
    T lr;
  };

  void validate() const {}

  /// Initial value of state buffer k (none here).
  template <class T>
  [[nodiscard]] T initial(std::size_t /*k*/) const {
    return T(0);
  }

  /// Scalars for the k-th applied step (k >= 1) at learning rate lr.
  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t /*k*/, T lr) const {
    return {lr};
  }

  /// The amount to subtract from x for one element.
  template <class T>
  TETHER_HOST_DEVICE static T delta(const context<T>& c, T /*x*/, T g) {
    return c.lr * g;
  }
};

}  // namespace tether::step
