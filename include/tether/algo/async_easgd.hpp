#pragma once
/// \file
/// algo::async_easgd: asynchronous Elastic Averaging SGD over MPI ranks (docs/mpi.md). The center lives on an
/// owner rank in an MPI window; every `period` steps a worker reads it and adds its elastic difference with
/// one-sided operations, without any barrier. Opt-in (component tether::mpi).
///
///     tether::comm::mpi comm(MPI_COMM_WORLD);
///     tether::algo::async_easgd<> opt(comm, n, {.lr = 0.05, .pull = {.period = 10, .beta = 0.9f}});
///     for (...) opt.step(x, g, loss);
///     opt.finish(x);   // every rank: one barrier; the final center is then in opt.target(0)

#include "tether/comm/mpi.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/async_elastic.hpp"
#include "tether/step/momentum.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Asynchronous EASGD: a step policy with an elastic pull toward a center held by one rank.
template <class Comm = comm::mpi, class Step = step::sgd, class Exec = exec::serial, class T = float>
using async_easgd = optimizer<Step, pull::async_elastic, Comm, Exec, T>;

/// Asynchronous EAMSGD: the same with a momentum step (the paper: Nesterov momentum 0.99).
template <class Comm = comm::mpi, class Exec = exec::serial, class T = float>
using async_eamsgd = optimizer<step::momentum, pull::async_elastic, Comm, Exec, T>;

}  // namespace tether::algo
