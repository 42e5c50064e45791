#pragma once
/// \file
/// tether::compose_t<Pull, Comm, Args...>: the optimizer of a named algorithm, whose optional arguments (a step
/// policy, an execution space, a value type) may be given in any order and each defaults on its own:
///
///     tether::algo::lsgd<tether::team::worker, double>                       // SGD, exec::serial, double
///     tether::algo::lsgd<tether::team::worker, tether::exec::openmp>         // SGD, OpenMP, float
///     tether::algo::lsgd<tether::team::worker, tether::step::adam, double>   // Adam, exec::serial, double
///     tether::algo::lsgd<tether::team::worker, tether::step::adam, tether::exec::serial, float>   // all four
///
/// A floating-point type is the value type, an execution space (tether::execution_space) is the execution
/// space, anything else is the step policy.

#include <concepts>
#include <type_traits>

#include "tether/core/concepts.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"
#include "tether/step/sgd.hpp"

namespace tether {

namespace detail {

/// What each optional argument of a named algorithm is, collected one at a time.
template <class Step, class Exec, class T, bool HasStep, bool HasExec, bool HasT>
struct composition {
  template <class Pull, class Comm>
  using optimizer_type = optimizer<Step, Pull, Comm, Exec, T>;

  template <class A>
  static auto add() {
    if constexpr (std::floating_point<A>) {
      static_assert(!HasT, "tether: a named algorithm takes one value type (float or double)");
      return composition<Step, Exec, A, HasStep, HasExec, true>{};
    } else if constexpr (execution_space<A>) {
      static_assert(!HasExec, "tether: a named algorithm takes one execution space");
      return composition<Step, A, T, HasStep, true, HasT>{};
    } else {
      static_assert(!HasStep, "tether: a named algorithm takes one step policy (is an argument meant as the "
                              "execution space or the value type? see docs/concepts.md)");
      return composition<A, Exec, T, true, HasExec, HasT>{};
    }
  }
};

template <class C, class... Args>
struct compose_args {
  using type = C;
};
template <class C, class A, class... Args>
struct compose_args<C, A, Args...> {
  using type = typename compose_args<decltype(C::template add<A>()), Args...>::type;
};

}  // namespace detail

/// The optimizer of pull Pull on communicator Comm with the optional Args (step policy, execution space,
/// value type, in any order; defaults step::sgd, exec::serial, float). See the file comment.
template <class Pull, class Comm, class... Args>
using compose_t =
    typename detail::compose_args<detail::composition<step::sgd, exec::serial, float, false, false, false>,
                                  Args...>::type::template optimizer_type<Pull, Comm>;

}  // namespace tether
