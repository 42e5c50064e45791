#pragma once
/// \file
/// algo::overlap_local_sgd: Overlap-Local-SGD (docs/algorithms/overlap_local_sgd.md). The anchor's average
/// runs as a non-blocking all-reduce behind the next `period` local steps.

#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/anchor.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Overlap-Local-SGD: pull toward an anchor whose average overlaps the local steps.
template <class Comm, class Step = step::sgd, class Exec = exec::serial, class T = float>
using overlap_local_sgd = optimizer<Step, pull::anchor, Comm, Exec, T>;

}  // namespace tether::algo
