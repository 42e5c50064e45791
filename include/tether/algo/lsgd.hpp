#pragma once
/// \file
/// algo::lsgd: Leader SGD, synchronous (docs/algorithms/lsgd.md). A step policy pulled toward the best
/// worker; `lsgd_grouped` adds local leaders per group (threads of a node) under a global leader.

#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/leader.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Synchronous LSGD with one leader.
template <class Comm, class Step = step::sgd, class Exec = exec::serial, class T = float>
using lsgd = optimizer<Step, pull::leader, Comm, Exec, T>;

/// Synchronous LSGD with local leaders (per group) and a global leader.
template <class Comm, class Step = step::sgd, class Exec = exec::serial, class T = float>
using lsgd_grouped = optimizer<Step, pull::group_leader, Comm, Exec, T>;

}  // namespace tether::algo
