#pragma once
/// \file
/// algo::local_sgd: local SGD / model averaging with optional post-local warm-up
/// (docs/algorithms/local_sgd.md). With period 1 it is synchronous SGD with an all-reduce.

#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/average.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Local SGD: average the parameters every `period` steps (every step during `warmup`).
template <class Comm, class Step = step::sgd, class Exec = exec::serial, class T = float>
using local_sgd = optimizer<Step, pull::average, Comm, Exec, T>;

}  // namespace tether::algo
