#pragma once
/// \file
/// algo::async_easgd: asynchronous Elastic Averaging SGD (docs/algorithms/async.md). Every `period` steps a
/// worker reads the center and adds its elastic difference to it, without any barrier. On MPI ranks (the
/// default communicator: the center in an MPI window on an owner rank; include <tether/comm/mpi.hpp>,
/// component tether::mpi) or on the thread team (one center in the process, a lock per block):
///
///     tether::comm::mpi comm(MPI_COMM_WORLD);
///     tether::algo::async_easgd<> opt(comm, n, {.lr = 0.05, .pull = {.period = 10, .beta = 0.9f}});
///     for (...) opt.step(x, g, loss);
///     opt.finish(x);   // every worker: one barrier; the final center is then in opt.target(0)
///
///     team.run([&](tether::team::worker& w) {
///       tether::algo::async_easgd<tether::team::worker> opt(w, n, {.lr = 0.05, .pull = {.period = 10}});
///       ... the same loop, then opt.finish(x) ...
///     });

#include "tether/core/compose.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/async_elastic.hpp"
#include "tether/step/momentum.hpp"
#include "tether/step/sgd.hpp"

namespace tether::comm {
class mpi;  // <tether/comm/mpi.hpp>
}  // namespace tether::comm

namespace tether::algo {

/// Asynchronous EASGD: a step policy with an elastic pull toward a center shared by the workers. Args:
/// optionally a step policy, an execution space and a value type, in any order (core/compose.hpp).
template <class Comm = comm::mpi, class... Args>
using async_easgd = compose_t<pull::async_elastic, Comm, Args...>;

/// Asynchronous EAMSGD: the same with a momentum step (the paper: Nesterov momentum 0.99). Args: optionally an
/// execution space and a value type, in any order.
template <class Comm = comm::mpi, class... Args>
using async_eamsgd = compose_t<pull::async_elastic, Comm, step::momentum, Args...>;

}  // namespace tether::algo
