#pragma once
/// \file
/// step::clipped<Step>: clipping by the global norm of the gradient (optax's clip_by_global_norm), composed with
/// any step policy. With ||g|| the Euclidean norm of this worker's whole gradient,
///
///     g' = g * max_norm / max(||g||, max_norm)        (g unchanged while ||g|| <= max_norm)
///
/// and the wrapped step descends along g' (Adam's moments, momentum's velocity see g'). ||g||^2 is a per-step
/// reduction (core/step_reductions.hpp) that the optimizer computes in the same pass over g as its finite
/// check: no extra read of g. Needs an execution space with reduce() (every tether space has it).
///
///     tether::optimizer<tether::step::clipped<tether::step::adam>, P, C> opt(w, n,
///         {.lr = 1e-3, .step = {.max_norm = 1.0f, .step = {.beta2 = 0.99f}}});

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/step_reductions.hpp"

namespace tether::step {

/// Step policy Step applied to the gradient clipped to a global norm of at most `max_norm`.
template <class Step>
struct clipped {
  struct options {
    /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
    static constexpr const char* field_names[] = {"max_norm", "step"};
    float max_norm = 1.0f;          ///< the largest global norm of g; larger gradients are scaled down to it
    typename Step::options step{};  ///< the wrapped step's options
  };
  options opt{};

  static constexpr std::size_t state_size = Step::state_size;  ///< the wrapped step's state buffers
  /// ||g||^2, and whatever the wrapped step asks for.
  static constexpr reduction_request reductions = reductions_of<Step>() | reduction_request{.g_norm2 = true};

  template <class T>
  struct context {
    typename Step::template context<T> inner;  ///< the wrapped step's context
    T scale;                                   ///< max_norm / max(||g||, max_norm)
  };

  void validate() const {
    detail::require(std::isfinite(opt.max_norm) && opt.max_norm > 0.0f,
                    "clipped step: max_norm must be finite and > 0, got max_norm = ", opt.max_norm);
    inner().validate();
  }

  template <class T>
  [[nodiscard]] T initial(std::size_t k) const {
    return inner().template initial<T>(k);
  }

  /// The clipping factor, computed once per step on the host in double precision.
  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t k, T lr, const step_reductions& r) const {
    const double norm = std::sqrt(r.g_norm2);
    const double max_norm = static_cast<double>(opt.max_norm);
    return {detail::prepare_step(inner(), k, lr, r), T(norm > max_norm ? max_norm / norm : 1.0)};
  }

  template <class T, class... State>
  TETHER_HOST_DEVICE static T delta(const context<T>& c, T x, T g, State&... s) {
    return Step::delta(c.inner, x, c.scale * g, s...);
  }

 private:
  [[nodiscard]] Step inner() const {
    Step s{};
    s.opt = opt.step;
    return s;
  }
};

}  // namespace tether::step
