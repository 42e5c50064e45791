#pragma once
/// \file
/// algo::easgd and algo::eamsgd: Elastic Averaging SGD, synchronous (docs/algorithms/easgd.md).
/// EAMSGD is EASGD with Nesterov momentum in the local step (the paper uses mu = 0.99).

#include "tether/core/compose.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/elastic.hpp"
#include "tether/step/momentum.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Synchronous EASGD. Args: optionally a step policy, an execution space and a value type, in any order
/// (core/compose.hpp).
template <class Comm, class... Args>
using easgd = compose_t<pull::elastic, Comm, Args...>;

/// Synchronous EAMSGD: EASGD with a momentum step (give it `.step = {.momentum = 0.99f, .nesterov = true}`,
/// or start from eamsgd_options()). Args: optionally an execution space and a value type, in any order.
template <class Comm, class... Args>
using eamsgd = compose_t<pull::elastic, Comm, step::momentum, Args...>;

/// EAMSGD's defaults from the paper: Nesterov momentum 0.99, tau = 10, beta = 0.9.
template <class Comm, class Exec = exec::serial, class T = float>
[[nodiscard]] optimizer_options<step::momentum, pull::elastic> eamsgd_options(double lr) {
  optimizer_options<step::momentum, pull::elastic> o;  // eamsgd<Comm, Exec, T>::options
  o.lr = lr;
  o.step = {.momentum = 0.99f, .nesterov = true};
  o.pull = {.period = 10, .beta = 0.9f};
  return o;
}

}  // namespace tether::algo
