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

/// The arguments of a named algorithm collected so far (and whether each was given).
template <class Step, class Exec, class T, bool HasStep, bool HasExec, bool HasT>
struct composition {
  template <class Pull, class Comm>
  using optimizer_type = optimizer<Step, Pull, Comm, Exec, T>;
};

/// What an argument is: 0 a value type, 1 an execution space, 2 a step policy.
template <class A>
inline constexpr int argument_kind = std::floating_point<A> ? 0 : (execution_space<A> ? 1 : 2);

/// Composition C with argument A of kind Kind added.
template <class C, class A, int Kind>
struct with_argument;
template <class S, class E, class T, bool HS, bool HE, bool HT, class A>
struct with_argument<composition<S, E, T, HS, HE, HT>, A, 0> {
  static_assert(!HT, "tether: a named algorithm takes one value type (float or double)");
  using type = composition<S, E, A, HS, HE, true>;
};
template <class S, class E, class T, bool HS, bool HE, bool HT, class A>
struct with_argument<composition<S, E, T, HS, HE, HT>, A, 1> {
  static_assert(!HE, "tether: a named algorithm takes one execution space");
  using type = composition<S, A, T, HS, true, HT>;
};
template <class S, class E, class T, bool HS, bool HE, bool HT, class A>
struct with_argument<composition<S, E, T, HS, HE, HT>, A, 2> {
  static_assert(!HS, "tether: a named algorithm takes one step policy (is an argument meant as the execution "
                     "space or the value type? see docs/concepts.md)");
  using type = composition<A, E, T, true, HE, HT>;
};

template <class C, class... Args>
struct compose_args {
  using type = C;
};
template <class C, class A, class... Args>
struct compose_args<C, A, Args...> {
  using type = typename compose_args<typename with_argument<C, A, argument_kind<A>>::type, Args...>::type;
};

}  // namespace detail

/// The optimizer of pull Pull on communicator Comm with the optional Args (step policy, execution space,
/// value type, in any order; defaults step::sgd, exec::serial, float). See the file comment.
template <class Pull, class Comm, class... Args>
using compose_t =
    typename detail::compose_args<detail::composition<step::sgd, exec::serial, float, false, false, false>,
                                  Args...>::type::template optimizer_type<Pull, Comm>;

}  // namespace tether
