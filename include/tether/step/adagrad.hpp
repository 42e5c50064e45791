#pragma once
/// \file
/// step::adagrad: per-coordinate rates, h <- h + g^2, x <- x - lr * g / (sqrt(h) + eps).

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"

namespace tether::step {

/// Adagrad (Duchi et al.), the update Downpour's shards apply. One state buffer: the sum of squares h.
struct adagrad {
  struct options {
    /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
    static constexpr const char* field_names[] = {"eps", "initial_accumulator"};
    float eps = 1e-10f;                ///< added to sqrt(h)
    float initial_accumulator = 0.0f;  ///< h at the start
  };
  options opt{};

  static constexpr std::size_t state_size = 1;

  template <class T>
  struct context {
    T lr;
    T eps;
  };

  void validate() const {
    detail::require(std::isfinite(opt.eps) && opt.eps > 0.0f, "adagrad eps must be finite and > 0, got eps = ",
                    opt.eps);
    detail::require(std::isfinite(opt.initial_accumulator) && opt.initial_accumulator >= 0.0f,
                    "adagrad initial_accumulator must be finite and >= 0, got initial_accumulator = ",
                    opt.initial_accumulator);
  }

  template <class T>
  [[nodiscard]] T initial(std::size_t /*k*/) const {
    return T(opt.initial_accumulator);
  }

  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t /*k*/, T lr) const {
    return {lr, T(opt.eps)};
  }

  template <class T>
  TETHER_HOST_DEVICE static T delta(const context<T>& c, T /*x*/, T g, T& h) {
    const T hn = h + g * g;
    h = hn;
    return c.lr * g / (std::sqrt(hn) + c.eps);
  }
};

}  // namespace tether::step
