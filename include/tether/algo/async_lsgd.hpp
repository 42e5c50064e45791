#pragma once
/// \file
/// algo::async_lsgd: asynchronous Leader SGD (docs/algorithms/async.md). Elections and the leader's broadcast
/// progress in the background (non-blocking collectives on a private channel); a worker never waits for a
/// round and pulls toward the freshest leader copy it has. On MPI ranks (the default communicator; include
/// <tether/comm/mpi.hpp>, component tether::mpi) or on the thread team:
///
///     tether::comm::mpi comm(MPI_COMM_WORLD);
///     tether::algo::async_lsgd<> opt(comm, n, {.lr = 0.05, .pull = {.period = 16, .strength = 0.1f}});
///     for (...) opt.step(x, g, loss);
///     opt.finish(x);   // every worker: completes the rounds still due
///
///     team.run([&](tether::team::worker& w) {
///       tether::algo::async_lsgd<tether::team::worker> opt(w, n, {.lr = 0.05, .pull = {.period = 16}});
///       ... the same loop, then opt.finish(x) ...
///     });

#include "tether/core/compose.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/async_leader.hpp"
#include "tether/step/sgd.hpp"

namespace tether::comm {
class mpi;  // <tether/comm/mpi.hpp>
}  // namespace tether::comm

namespace tether::algo {

/// Asynchronous LSGD: a step policy pulled toward the freshest copy of the best worker's parameters. Args:
/// optionally a step policy, an execution space and a value type, in any order (core/compose.hpp).
template <class Comm = comm::mpi, class... Args>
using async_lsgd = compose_t<pull::async_leader, Comm, Args...>;

}  // namespace tether::algo
