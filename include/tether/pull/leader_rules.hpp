#pragma once
/// \file
/// The rules of LSGD's options, shared by the synchronous leader pulls (pull::leader, pull::group_leader) and
/// the asynchronous one (pull::async_leader): the checks of period, strength, jump and score window.

#include <cmath>

#include "tether/core/error.hpp"

namespace tether::detail {

/// Checks LSGD's options (period > 0; strength finite and >= 0; jump in [0, 1]; score_window > 0); `who` names
/// the pull in the tether::error.
template <class Options>
void validate_leader(const char* who, const Options& o) {
  require(o.period > 0, who, ": period must be > 0, got period = ", o.period);
  require(std::isfinite(o.strength) && o.strength >= 0.0f, who,
          ": strength must be finite and >= 0, got strength = ", o.strength);
  require(std::isfinite(o.jump) && o.jump >= 0.0f && o.jump <= 1.0f, who, ": jump must be in [0, 1], got jump = ",
          o.jump);
  require(o.score_window > 0, who, ": score_window must be > 0, got score_window = ", o.score_window);
}

}  // namespace tether::detail
