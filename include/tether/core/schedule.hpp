#pragma once
/// \file
/// Learning-rate schedules: the rate of step t from the base rate. Evaluated once per step on the host.

#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>

#include "tether/core/error.hpp"

namespace tether {

/// A learning-rate schedule. Built-in kinds cover the usual cases; `custom` takes any callable.
struct schedule {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"type", "every", "factor", "total", "floor", "warmup", "fn"};
  enum class kind { constant, step_decay, cosine, custom };
  kind type = kind::constant;
  std::uint64_t every = 0;         ///< step_decay: decay period in steps
  double factor = 0.1;             ///< step_decay: multiplier per period
  std::uint64_t total = 0;         ///< cosine: steps to reach the floor
  double floor = 0.0;              ///< cosine: final fraction of the base rate
  std::uint64_t warmup = 0;        ///< linear warm-up steps before any kind (0 = none)
  std::function<double(std::uint64_t step, double base)> fn{};  ///< custom: rate of a step

  /// The constant schedule.
  [[nodiscard]] static schedule constant() { return {}; }
  /// Multiply the rate by `factor` every `every` steps.
  [[nodiscard]] static schedule step_decay(std::uint64_t every, double factor) {
    schedule s;
    s.type = kind::step_decay;
    s.every = every;
    s.factor = factor;
    return s;
  }
  /// Cosine from the base rate down to `floor * base` over `total` steps, then flat.
  [[nodiscard]] static schedule cosine(std::uint64_t total, double floor = 0.0) {
    schedule s;
    s.type = kind::cosine;
    s.total = total;
    s.floor = floor;
    return s;
  }
  /// Any callable (step, base) -> rate.
  [[nodiscard]] static schedule custom(std::function<double(std::uint64_t, double)> f) {
    schedule s;
    s.type = kind::custom;
    s.fn = std::move(f);
    return s;
  }

  void validate() const {
    switch (type) {
      case kind::constant: break;
      case kind::step_decay:
        detail::require(every > 0, "schedule step_decay: every must be > 0, got every = ", every);
        detail::require(std::isfinite(factor) && factor > 0.0, "schedule step_decay: factor must be > 0, got ",
                        factor);
        break;
      case kind::cosine:
        detail::require(total > 0, "schedule cosine: total must be > 0, got total = ", total);
        detail::require(std::isfinite(floor) && floor >= 0.0 && floor <= 1.0,
                        "schedule cosine: floor must be in [0, 1], got floor = ", floor);
        break;
      case kind::custom: detail::require(static_cast<bool>(fn), "schedule custom: fn is empty"); break;
    }
  }

  /// Rate at step t (0-based) for base rate `base`.
  [[nodiscard]] double operator()(std::uint64_t t, double base) const {
    double r = base;
    switch (type) {
      case kind::constant: break;
      case kind::step_decay: r = base * std::pow(factor, static_cast<double>(t / every)); break;
      case kind::cosine: {
        const double u = t >= total ? 1.0 : static_cast<double>(t) / static_cast<double>(total);
        r = base * (floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * u)));
        break;
      }
      case kind::custom: r = fn(t, base); break;
    }
    if (warmup > 0 && t < warmup) r *= static_cast<double>(t + 1) / static_cast<double>(warmup);
    return r;
  }
};

}  // namespace tether
