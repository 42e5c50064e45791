#pragma once
/// \file
/// The concepts that constrain tether's template parameters. docs/concepts.md explains each with a
/// copy-paste skeleton: objective, step_policy, pull_policy, communicator, execution_space.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "tether/core/objective.hpp"
#include "tether/core/request.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/view.hpp"

namespace tether {

namespace detail {

template <class S, class T, std::size_t... I>
constexpr bool delta_callable(std::index_sequence<I...>) {
  return requires(const typename S::template context<T>& c, T x, T g, std::array<T, sizeof...(I) + 1>& st) {
    { S::delta(c, x, g, st[I]...) } -> std::convertible_to<T>;
  };
}

template <class P, class T, std::size_t... I>
constexpr bool force_callable(std::index_sequence<I...>) {
  return requires(const typename P::template context<T>& c, T x, std::array<T, sizeof...(I) + 1>& b) {
    { P::force(c, x, b[I]...) } -> std::convertible_to<T>;
  };
}

}  // namespace detail

/// A step policy: how one worker descends. It has `options opt`, `state_size` per-element state buffers,
/// a per-step `context<T>` computed once by `prepare(k, lr)` (k = applied steps, from 1), the initial value
/// of each state buffer, and a static per-element `delta(ctx, x, g, state&...)`: the amount to subtract
/// from x. See docs/concepts.md#step-policy.
template <class S, class T = float>
concept step_policy = std::default_initializable<S> && requires(const S& s, std::uint64_t k, T lr) {
  typename S::options;
  requires std::same_as<std::remove_cvref_t<decltype(s.opt)>, typename S::options>;
  { S::state_size } -> std::convertible_to<std::size_t>;
  typename S::template context<T>;
  s.validate();
  { s.template initial<T>(std::size_t{}) } -> std::convertible_to<T>;
  { s.prepare(k, lr) } -> std::same_as<typename S::template context<T>>;
  requires detail::delta_callable<S, T>(std::make_index_sequence<S::state_size>{});
};

/// A pull policy: the force that ties workers together. It has `options opt`, `buffers` per-element target
/// buffers (leader copy, center, anchor...), a per-step `context<T>`, `validate(workers)`, and a static
/// per-element `force(ctx, x, target...)` subtracted from x in the same pass as the step. Its hooks
/// `start`, `before` (returns whether the force acts in this step) and `after` run the collectives.
/// See docs/concepts.md#pull-policy.
template <class P, class T = float>
concept pull_policy = std::default_initializable<P> && requires(const P& p, int workers) {
  typename P::options;
  requires std::same_as<std::remove_cvref_t<decltype(p.opt)>, typename P::options>;
  { P::buffers } -> std::convertible_to<std::size_t>;
  typename P::template context<T>;
  p.validate(workers);
  requires detail::force_callable<P, T>(std::make_index_sequence<P::buffers>{});
};

/// A pull policy whose round hooks work with a given step environment (communicator and execution space).
template <class P, class T, class Env, class Space = mem::host>
concept pull_policy_for = pull_policy<P, T> &&
    requires(P& p, Env& env, view<T, Space> x, pull_buffers<T, P::buffers, Space> b,
             typename P::template context<T>& c) {
      p.start(env, x, b);
      { p.before(env, x, b, c) } -> std::convertible_to<bool>;
      p.after(env, x, b);
    };

/// A communicator handle: one worker's view of its team (threads, MPI ranks, or both), with the
/// collectives pulls need. See docs/concepts.md#communicator.
template <class C>
concept communicator = requires(C& c, std::span<float> f, std::span<double> d, std::span<const float> cf,
                                float score) {
  { c.rank() } -> std::convertible_to<int>;
  { c.size() } -> std::convertible_to<int>;
  c.barrier();
  c.allreduce_sum(f);
  c.allreduce_sum(d);
  { c.iallreduce_sum(cf, f) } -> std::same_as<request>;
  c.broadcast(f, 0);
  { c.min_loc(score) } -> std::same_as<election>;
  { c.group().rank() } -> std::convertible_to<int>;
  { c.counters() } -> std::convertible_to<const comm_counters&>;
};

namespace detail {
struct probe_kernel {
  void operator()(std::size_t) const {}
};
struct probe_pred {
  bool operator()(std::size_t) const { return false; }
};
}  // namespace detail

/// An execution space: where kernels run and state lives. See docs/concepts.md#execution-space.
template <class E>
concept execution_space = std::copy_constructible<E> && requires(const E& e, std::size_t n) {
  typename E::memory_space;
  typename E::template buffer<float>;
  e.parallel_for(n, detail::probe_kernel{});
  { e.any(n, detail::probe_pred{}) } -> std::convertible_to<bool>;
  { e.template allocate<float>(n) } -> std::same_as<typename E::template buffer<float>>;
};

}  // namespace tether
