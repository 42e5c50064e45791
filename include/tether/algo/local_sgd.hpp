#pragma once
/// \file
/// algo::local_sgd: local SGD / model averaging with optional post-local warm-up
/// (docs/algorithms/local_sgd.md). With period 1 it is synchronous SGD with an all-reduce.

#include "tether/core/compose.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/average.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Local SGD: average the parameters every `period` steps (every step during `warmup`). Args: optionally a
/// step policy, an execution space and a value type, in any order (core/compose.hpp).
template <class Comm, class... Args>
using local_sgd = compose_t<pull::average, Comm, Args...>;

}  // namespace tether::algo
