#pragma once
/// \file
/// step::adam: Adam with bias correction (Kingma and Ba; the PyTorch arithmetic).
///
///   m <- b1*m + (1-b1)*g;   v <- b2*v + (1-b2)*g^2
///   x <- x - (lr / (1-b1^k)) * m / (sqrt(v) / sqrt(1-b2^k) + eps)

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/value_range.hpp"

namespace tether::step {

/// Adam. Two state buffers: first moment m and second moment v.
struct adam {
  struct options {
    /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
    static constexpr const char* field_names[] = {"beta1", "beta2", "eps"};
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
  };
  options opt{};

  static constexpr std::size_t state_size = 2;

  template <class T>
  struct context {
    T b1, one_minus_b1, b2, one_minus_b2;
    T step_size;     ///< lr / (1 - b1^k)
    T inv_sqrt_bc2;  ///< 1 / sqrt(1 - b2^k)
    T eps;
  };

  void validate() const {
    detail::require(std::isfinite(opt.beta1) && opt.beta1 >= 0.0f && opt.beta1 < 1.0f,
                    "adam beta1 must be in [0, 1), got beta1 = ", opt.beta1);
    detail::require(std::isfinite(opt.beta2) && opt.beta2 >= 0.0f && opt.beta2 < 1.0f,
                    "adam beta2 must be in [0, 1), got beta2 = ", opt.beta2);
    detail::require(std::isfinite(opt.eps) && opt.eps > 0.0f, "adam eps must be finite and > 0, got eps = ",
                    opt.eps);
  }

  template <class T>
  [[nodiscard]] T initial(std::size_t /*k*/) const {
    return T(0);
  }

  /// Bias corrections for the k-th applied step are computed here, once per step, in double precision. The step
  /// size lr/(1-beta1^k) can exceed T's range when lr fits it (1e38 with beta1 = 0.9 in float): tether::error.
  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t k, T lr) const {
    const double kd = static_cast<double>(k);
    const double bc1 = 1.0 - std::pow(static_cast<double>(opt.beta1), kd);
    const double bc2 = 1.0 - std::pow(static_cast<double>(opt.beta2), kd);
    detail::require(detail::fits_value_type<T>(double(lr) / bc1), "adam: the step size lr/(1-beta1^k) = ",
                    double(lr) / bc1, " at applied step ", k, " does not fit the value type ",
                    detail::value_type_name<T>(), " (lr = ", double(lr), ", beta1 = ", opt.beta1, ")");
    return {T(opt.beta1),           T(1.0 - double(opt.beta1)),
            T(opt.beta2),           T(1.0 - double(opt.beta2)),
            T(double(lr) / bc1),    T(1.0 / std::sqrt(bc2)),
            T(opt.eps)};
  }

  template <class T>
  TETHER_HOST_DEVICE static T delta(const context<T>& c, T /*x*/, T g, T& m, T& v) {
    const T mn = c.b1 * m + c.one_minus_b1 * g;
    const T vn = c.b2 * v + c.one_minus_b2 * g * g;
    m = mn;
    v = vn;
    return c.step_size * mn / (std::sqrt(vn) * c.inv_sqrt_bc2 + c.eps);
  }
};

}  // namespace tether::step
