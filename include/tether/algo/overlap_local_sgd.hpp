#pragma once
/// \file
/// algo::overlap_local_sgd: Overlap-Local-SGD (docs/algorithms/overlap_local_sgd.md). The anchor's average
/// runs as a non-blocking all-reduce behind the next `period` local steps.

#include "tether/core/compose.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/anchor.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Overlap-Local-SGD: pull toward an anchor whose average overlaps the local steps. Args: optionally a step
/// policy, an execution space and a value type, in any order (core/compose.hpp).
template <class Comm, class... Args>
using overlap_local_sgd = compose_t<pull::anchor, Comm, Args...>;

}  // namespace tether::algo
