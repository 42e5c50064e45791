#pragma once
/// \file
/// The rules of EASGD's options, shared by the synchronous pull (pull::elastic) and the asynchronous one
/// (pull::async_elastic): the checks of period, beta and alpha, and the default alpha = beta/p.

#include <cmath>
#include <cstdint>

#include "tether/core/error.hpp"

namespace tether::detail {

/// EASGD's elastic coefficient for `workers` workers: `o.alpha`, or beta/p when it is 0.
template <class Options>
[[nodiscard]] float elastic_alpha(const Options& o, int workers) noexcept {
  return o.alpha > 0.0f ? o.alpha : o.beta / static_cast<float>(workers);
}

/// Checks EASGD's options (period > 0; beta and alpha in [0, 1]; p*alpha <= 1, for a stable center); `who`
/// names the pull in the tether::error.
template <class Options>
void validate_elastic(const char* who, const Options& o, int workers) {
  require(o.period > 0, who, ": period must be > 0, got period = ", o.period);
  require(std::isfinite(o.beta) && o.beta >= 0.0f && o.beta <= 1.0f, who, ": beta must be in [0, 1], got beta = ",
          o.beta);
  require(std::isfinite(o.alpha) && o.alpha >= 0.0f && o.alpha <= 1.0f, who,
          ": alpha must be in [0, 1], got alpha = ", o.alpha);
  require(elastic_alpha(o, workers) * static_cast<float>(workers) <= 1.0f + 1e-6f, who,
          ": p*alpha must be <= 1 for a stable center, got p = ", workers, ", alpha = ", elastic_alpha(o, workers));
}

}  // namespace tether::detail
