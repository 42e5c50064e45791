#pragma once
/// \file
/// The concepts that constrain tether's template parameters. docs/concepts.md explains each with a
/// copy-paste skeleton: objective, step_policy, pull_policy, communicator (and its tiers: non-blocking,
/// one-sided, pairwise), execution_space.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>

#include "tether/core/objective.hpp"
#include "tether/core/request.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/sums.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/step_reductions.hpp"
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
/// a per-step `context<T>` computed once by `prepare(k, lr)` (k = applied steps, from 1; or
/// `prepare(k, lr, reductions)` when the step declares `reductions`, see core/step_reductions.hpp), the
/// initial value of each state buffer, and a static per-element `delta(ctx, x, g, state&...)`: the amount to
/// subtract from x. See docs/concepts.md#step-policy.
template <class S, class T = float>
concept step_policy = std::default_initializable<S> &&
    requires(const S& s, std::uint64_t k, T lr, const step_reductions& r) {
  typename S::options;
  requires std::same_as<std::remove_cvref_t<decltype(s.opt)>, typename S::options>;
  { S::state_size } -> std::convertible_to<std::size_t>;
  typename S::template context<T>;
  s.validate();
  { s.template initial<T>(std::size_t{}) } -> std::convertible_to<T>;
  { detail::prepare_step(s, k, lr, r) } -> std::same_as<typename S::template context<T>>;
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

/// The pull an optimizer holds for pull policy P on communicator Comm, execution space Exec and value type T:
/// `P::bind<Comm, Exec, T>` when P declares it, P itself otherwise. A pull whose per-run state depends on the
/// communicator (the private channel of asynchronous LSGD, the shared center of asynchronous EASGD) declares
/// `bind` and keeps that state with its concrete type, as ensmallen builds `UpdatePolicy::Policy<MatType>`
/// inside `Optimize`; the bound type has the same `options`, `opt`, `buffers`, `context` and `force`.
/// See docs/concepts.md#pull-state-bound-to-its-environment.
template <class P, class Comm, class Exec, class T>
struct bound_pull {
  using type = P;
};
template <class P, class Comm, class Exec, class T>
  requires requires { typename P::template bind<Comm, Exec, T>; }
struct bound_pull<P, Comm, Exec, T> {
  using type = typename P::template bind<Comm, Exec, T>;
};
template <class P, class Comm, class Exec, class T>
using bound_pull_t = typename bound_pull<P, Comm, Exec, T>::type;

/// A communicator handle: one worker's view of its team (threads, MPI ranks, or both), with the
/// collectives pulls need. See docs/concepts.md#communicator.
template <class C>
concept communicator = requires(C& c, std::span<float> f, std::span<double> d, std::span<const float> cf,
                                double score) {
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

// --- Communicator tiers ------------------------------------------------------------------------------------
// `communicator` above is the collective tier every algorithm needs. Protocols that do more than a pull's
// rounds ask for one of three tiers on top of it; docs/concepts.md#communicator-tiers has the table of which
// algorithm needs which tier on which communicator.

/// The private handle a communicator's `duplicate()` returns (a channel of the same workers whose operations
/// never pair with the communicator's own).
template <class C>
using channel_t = std::remove_cvref_t<decltype(*std::declval<C&>().duplicate())>;

/// Non-blocking tier, the channel: elections, broadcasts and sums that return a tether::request and progress
/// in the background (a progress thread, or polls of MPI_Test). Every worker posts the same operations in the
/// same order. Asynchronous LSGD runs on it. See docs/concepts.md#non-blocking-tier.
template <class C, class T = float>
concept nonblocking_channel = requires(C& c, double score, election& e, std::span<T> v, std::span<const T> cv) {
  { c.rank() } -> std::convertible_to<int>;
  { c.size() } -> std::convertible_to<int>;
  { c.imin_loc(score, e) } -> std::same_as<request>;
  { c.ibroadcast(v, 0) } -> std::same_as<request>;
  { c.iallreduce_sum(cv, v) } -> std::same_as<request>;
};

/// Non-blocking tier: a communicator whose `duplicate()` (collective) gives a nonblocking_channel.
/// See docs/concepts.md#non-blocking-tier.
template <class C, class T = float>
concept nonblocking_communicator = communicator<C> && requires(C& c) { c.duplicate(); } &&
                                   nonblocking_channel<channel_t<C>, T>;

/// One-sided tier, the store: N values of T shared by the workers, held by one owner (EASGD's center) or by
/// the S shards of a shard_layout (Downpour's parameter server), which any worker reads and adds into without
/// the others taking part. `read(out)` copies the values; `accumulate(in)` adds `in` element-wise (atomic per
/// element: concurrent additions are never lost); `exchange(read, delta, compute)` reads, lets `compute(lo,
/// hi)` fill `delta[lo, hi)` from what was read, and adds it (EASGD's round); `release()` completes the
/// additions still in flight; `close(out)` is collective: every worker waits for the others, gets the final
/// values and the store closes. See docs/concepts.md#one-sided-tier.
template <class S, class T = float>
concept shared_store = requires(S& s, std::span<T> v, std::span<const T> cv, void (*compute)(std::size_t, std::size_t)) {
  { s.size() } -> std::convertible_to<std::size_t>;
  { s.layout() } -> std::convertible_to<shard_layout>;
  s.read(v);
  s.accumulate(cv);
  s.exchange(v, v, compute);
  s.release();
  s.close(v);
};

/// One-sided tier: a communicator that opens a shared_store (collective): `open_store<T>(initial, layout,
/// owner)` places shard s of `layout` on worker `(owner + s) % size()`; every worker's store starts as
/// `owner`'s `initial`. See docs/concepts.md#one-sided-tier.
template <class C, class T = float>
concept one_sided_communicator = communicator<C> && requires(C& c, std::span<const T> initial, const shard_layout& l) {
  { c.template open_store<T>(initial, l, 0) } -> shared_store<T>;
};

/// What a pairwise exchange brought back: the peer's message, or that the peer is gone.
enum class pair_status {
  done,  ///< the peer answered; the reply buffer holds its message
  lost,  ///< the peer failed, returned or timed out: it is dropped, nothing was applied on either side
};

/// Pairwise tier, the link: exchange a message with one chosen peer, symmetric (both ends send and both
/// receive) and without a global matching or barrier. `exchange(peer, send, recv, serve)` sends `send` to
/// `peer` and waits (bounded) for its reply in `recv`; while it waits, and at every `poll(serve)`, messages
/// that other workers started with this one are answered: `serve(from, message, reply)` reads a peer's
/// message and writes this worker's reply (SwarmSGD averages there). So two workers that pick each other, or
/// a cycle of them, never deadlock. See docs/concepts.md#pairwise-tier.
template <class L>
concept pairwise_link =
    requires(L& l, int peer, std::span<const std::byte> send, std::span<std::byte> recv,
             void (*serve)(int, std::span<const std::byte>, std::span<std::byte>)) {
      { l.rank() } -> std::convertible_to<int>;
      { l.size() } -> std::convertible_to<int>;
      { l.exchange(peer, send, recv, serve) } -> std::same_as<pair_status>;
      l.poll(serve);
    };

/// Pairwise tier: a communicator that opens a pairwise_link (collective) for messages of at most `bytes`
/// bytes. See docs/concepts.md#pairwise-tier.
template <class C>
concept pairwise_communicator = communicator<C> && requires(C& c, std::size_t bytes) {
  { c.open_pairs(bytes) } -> pairwise_link;
};

namespace detail {
struct probe_kernel {
  void operator()(std::size_t) const {}
};
struct probe_pred {
  bool operator()(std::size_t) const { return false; }
};
struct probe_value {
  double operator()(std::size_t) const { return 0.0; }
};
struct probe_sums {
  sums<double, 2> operator()(std::size_t) const { return {}; }
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

/// An execution space that can also sum over an index range: `reduce(n, init, f)` returns init + f(0) + ... +
/// f(n-1) for R = float, double or tether::sums<T, K> (several sums in one pass), the same bits on every run of
/// a given configuration. Sandblaster's dot products and the steps' per-step reductions need it.
/// See docs/concepts.md#execution-space.
template <class E>
concept reducing_execution_space = execution_space<E> && requires(const E& e, std::size_t n) {
  { e.reduce(n, 0.0, detail::probe_value{}) } -> std::same_as<double>;
  { e.reduce(n, sums<double, 2>{}, detail::probe_sums{}) } -> std::same_as<sums<double, 2>>;
};

}  // namespace tether
