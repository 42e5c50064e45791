#pragma once
/// \file
/// algo::lsgd: Leader SGD, synchronous (docs/algorithms/lsgd.md). A step policy pulled toward the best
/// worker; `lsgd_grouped` adds local leaders per group (threads of a node) under a global leader.

#include "tether/core/compose.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/leader.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Synchronous LSGD with one leader. Args: optionally a step policy (step::sgd), an execution space
/// (exec::serial) and a value type (float), in any order: lsgd<W, double>, lsgd<W, step::adam, exec::openmp>.
template <class Comm, class... Args>
using lsgd = compose_t<pull::leader, Comm, Args...>;

/// Synchronous LSGD with local leaders (per group) and a global leader. Args as lsgd's.
template <class Comm, class... Args>
using lsgd_grouped = compose_t<pull::group_leader, Comm, Args...>;

}  // namespace tether::algo
