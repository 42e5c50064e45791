#pragma once
/// \file
/// tether's umbrella header: the core, every step and pull policy, the shared-memory team, exec::serial,
/// the synchronous and asynchronous algorithms (Downpour on the thread team included) and the test problems. MPI,
/// Kokkos, Thrust and CUDA are opt-in headers (Downpour under MPI: <tether/ps/mpi_store.hpp>).

#include "tether/core/concepts.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/objective.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/core/request.hpp"
#include "tether/core/rng.hpp"
#include "tether/core/schedule.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/view.hpp"

#include "tether/exec/serial.hpp"

#include "tether/codec/identity.hpp"
#include "tether/codec/lattice.hpp"
#include "tether/codec/stochastic_uniform.hpp"

#include "tether/step/adagrad.hpp"
#include "tether/step/adam.hpp"
#include "tether/step/clipped.hpp"
#include "tether/step/momentum.hpp"
#include "tether/step/sgd.hpp"

#include "tether/pull/anchor.hpp"
#include "tether/pull/async_elastic.hpp"
#include "tether/pull/async_leader.hpp"
#include "tether/pull/average.hpp"
#include "tether/pull/elastic.hpp"
#include "tether/pull/leader.hpp"
#include "tether/pull/none.hpp"

#include "tether/comm/shared_memory.hpp"
#include "tether/comm/team/pairwise.hpp"
#include "tether/comm/topology.hpp"

#include "tether/algo/async_easgd.hpp"
#include "tether/algo/async_lsgd.hpp"
#include "tether/algo/downpour.hpp"
#include "tether/algo/easgd.hpp"
#include "tether/algo/local_sgd.hpp"
#include "tether/algo/lsgd.hpp"
#include "tether/algo/overlap_local_sgd.hpp"
#include "tether/algo/sandblaster_lbfgs.hpp"
#include "tether/algo/swarm_sgd.hpp"

#include "tether/problems/double_well.hpp"
#include "tether/problems/logistic.hpp"
#include "tether/problems/quadratic.hpp"
#include "tether/problems/rosenbrock.hpp"
#include "tether/problems/softmax.hpp"
