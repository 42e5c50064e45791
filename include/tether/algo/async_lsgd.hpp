#pragma once
/// \file
/// algo::async_lsgd: asynchronous Leader SGD over MPI ranks (docs/mpi.md). Elections and the leader's
/// broadcast progress in the background (non-blocking MPI collectives polled by each step); a worker never
/// waits for a round and pulls toward the freshest leader copy it has. Opt-in (component tether::mpi).
///
///     tether::comm::mpi comm(MPI_COMM_WORLD);
///     tether::algo::async_lsgd<> opt(comm, n, {.lr = 0.05, .pull = {.period = 16, .strength = 0.1f}});
///     for (...) opt.step(x, g, loss);
///     opt.finish(x);   // every rank: completes the rounds still due

#include "tether/comm/mpi.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/async_leader.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Asynchronous LSGD: a step policy pulled toward the freshest copy of the best rank's parameters.
template <class Comm = comm::mpi, class Step = step::sgd, class Exec = exec::serial, class T = float>
using async_lsgd = optimizer<Step, pull::async_leader, Comm, Exec, T>;

}  // namespace tether::algo
