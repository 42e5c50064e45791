#pragma once
/// \file
/// algo::sandblaster_lbfgs: DistBelief's Sandblaster L-BFGS under its paper's name; the same function as
/// lbfgs::minimize (docs/algorithms/sandblaster_lbfgs.md). On comm::mpi, include tether/lbfgs/mpi.hpp.

#include <utility>

#include "tether/lbfgs/minimize.hpp"

namespace tether::algo {

/// Sandblaster L-BFGS's options and result.
using sandblaster_lbfgs_options = lbfgs::options;
using sandblaster_lbfgs_result = lbfgs::result;

/// lbfgs::minimize(exec, comm, objective, x, g, options).
template <class Exec, class Comm, class O, class X, class G>
requires execution_space<Exec> && buffer<X> && buffer<G> lbfgs::result sandblaster_lbfgs(
    const Exec& exec, Comm& comm, O& objective, X&& x, G&& g, const lbfgs::options& o) {
  return lbfgs::minimize(exec, comm, objective, std::forward<X>(x), std::forward<G>(g), o);
}

/// lbfgs::minimize(exec, comm, objective, x, options).
template <class Exec, class Comm, class O, class X>
requires execution_space<Exec> && buffer<X> lbfgs::result sandblaster_lbfgs(const Exec& exec, Comm& comm,
                                                                            O& objective, X&& x,
                                                                            const lbfgs::options& o = {}) {
  return lbfgs::minimize(exec, comm, objective, std::forward<X>(x), o);
}

/// lbfgs::minimize(comm, objective, x, options).
template <class Comm, class O, class X>
requires communicator<Comm> && buffer<X> lbfgs::result sandblaster_lbfgs(Comm& comm, O& objective, X&& x,
                                                                         const lbfgs::options& o = {}) {
  return lbfgs::minimize(comm, objective, std::forward<X>(x), o);
}

}  // namespace tether::algo
