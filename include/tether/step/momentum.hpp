#pragma once
/// \file
/// step::momentum: heavy-ball or Nesterov momentum (the PyTorch convention, no dampening).
///
///   v <- mu*v + g;   d = nesterov ? g + mu*v : v;   x <- x - lr*d

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"

namespace tether::step {

/// Momentum SGD with a Nesterov flag. One state buffer: the velocity v.
struct momentum {
  struct options {
    /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
    static constexpr const char* field_names[] = {"momentum", "nesterov"};
    float momentum = 0.9f;  ///< mu in [0, 1)
    bool nesterov = false;  ///< Nesterov's look-ahead form
  };
  options opt{};

  static constexpr std::size_t state_size = 1;

  template <class T>
  struct context {
    T lr;
    T mu;
    bool nesterov;
  };

  void validate() const {
    detail::require(std::isfinite(opt.momentum) && opt.momentum >= 0.0f && opt.momentum < 1.0f,
                    "momentum must be in [0, 1), got momentum = ", opt.momentum);
  }

  template <class T>
  [[nodiscard]] T initial(std::size_t /*k*/) const {
    return T(0);
  }

  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t /*k*/, T lr) const {
    return {lr, T(opt.momentum), opt.nesterov};
  }

  template <class T>
  TETHER_HOST_DEVICE static T delta(const context<T>& c, T /*x*/, T g, T& v) {
    const T vn = c.mu * v + g;
    v = vn;
    return c.nesterov ? c.lr * (g + c.mu * vn) : c.lr * vn;
  }
};

/// Nesterov momentum with the given coefficient (EAMSGD's local step uses 0.99).
[[nodiscard]] inline momentum nesterov(float mu = 0.9f) { return momentum{{.momentum = mu, .nesterov = true}}; }

}  // namespace tether::step
