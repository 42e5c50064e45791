#pragma once
/// \file
/// pull::async_elastic: asynchronous EASGD (Zhang, Choromanska, LeCun, NeurIPS 2015) on any communicator that
/// can open a shared center: comm::mpi (the center in an MPI window on an owner rank, one-sided operations) and
/// the thread team (one center in the process, a lock per block). A worker's round is one exchange with the
/// center and nobody waits for anybody else. Every `period` steps, with the pre-step parameters x:
///
///     read xc
///     delta = alpha * (x - xc)
///     x  <- x - eta*d(g) - delta   (fused with the gradient step)
///     xc <- xc + delta             (atomic at the center: per element on MPI, per block on the team)
///
/// On MPI another worker's addition may land between a worker's read and its addition (that is the
/// asynchrony of the algorithm); on the team each block is read and updated under one lock. With p workers
/// alpha defaults to beta/p. The center starts at the mean of the workers' starting points; finish() waits
/// for every worker (one barrier) and leaves the final center in target(0) on every worker.
///
/// What the communicator provides (docs/algorithms/async.md): `duplicate()`, a private channel (collective)
/// with `allreduce_sum`, `rank`, `size` and `open_center<T>(initial, owner)`, whose handle has
/// `exchange(read, delta, compute)`, `release()`, `poll()` and `close(out)`.

#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/view.hpp"

namespace tether::pull {

namespace detail_async {

/// d[i] = a * (x[i] - c[i]): a worker's elastic difference.
template <class T>
struct elastic_delta {
  const T* x;
  const T* c;
  T* d;
  T a;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { d[i] = a * (x[i] - c[i]); }
};

/// The private channel a communicator's duplicate() returns.
template <class Comm>
using channel_t = typename std::remove_cvref_t<decltype(*std::declval<Comm&>().duplicate())>;

/// The handle of a center of T opened on channel C.
template <class C, class T>
using center_t = std::remove_cvref_t<decltype(std::declval<C&>().template open_center<T>(
    std::declval<std::span<const T>>(), 0))>;

/// A channel that can open a center of T: a shared center with one-sided exchanges.
template <class C, class T>
concept center_channel = requires(C& c, std::span<T> v) {
  { c.rank() } -> std::convertible_to<int>;
  { c.size() } -> std::convertible_to<int>;
  c.allreduce_sum(v);
  typename center_t<C, T>;
} && requires(center_t<C, T>& h, std::span<T> v, void (*f)(std::size_t, std::size_t)) {
  h.exchange(v, v, f);
  h.release();
  h.poll();
  h.close(v);
};

/// The center of a running asynchronous EASGD, with the channel it was opened on.
class center_link {
 public:
  virtual ~center_link() = default;
  /// One exchange: `read` <- center, delta filled by `compute(ctx, lo, hi)`, center += delta.
  virtual void exchange(void* read, void* delta, void (*compute)(const void*, std::size_t, std::size_t),
                        const void* ctx) = 0;
  virtual void release() = 0;
  virtual void poll() = 0;
  virtual void close(void* out) = 0;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
};

template <class C, class T>
class center_link_of final : public center_link {
 public:
  center_link_of(std::unique_ptr<C> channel, std::span<const T> initial, int owner)
      : channel_(std::move(channel)), center_(channel_->template open_center<T>(initial, owner)),
        n_(initial.size()) {}
  void exchange(void* read, void* delta, void (*compute)(const void*, std::size_t, std::size_t),
                const void* ctx) override {
    center_.exchange(std::span<T>(static_cast<T*>(read), n_), std::span<T>(static_cast<T*>(delta), n_),
                     [compute, ctx](std::size_t lo, std::size_t hi) { compute(ctx, lo, hi); });
  }
  void release() override { center_.release(); }
  void poll() override { center_.poll(); }
  void close(void* out) override { center_.close(std::span<T>(static_cast<T*>(out), n_)); }
  [[nodiscard]] int rank() const override { return channel_->rank(); }
  [[nodiscard]] int size() const override { return channel_->size(); }

 private:
  std::unique_ptr<C> channel_;
  // Declared after the channel, so destroyed before it.
  center_t<C, T> center_;
  std::size_t n_;
};

}  // namespace detail_async

/// A communicator whose workers can run asynchronous EASGD on T: `duplicate()` gives a channel that can open
/// a shared center (comm::mpi, the thread team's worker).
template <class Comm, class T>
concept async_center_communicator = requires { typename detail_async::channel_t<Comm>; } &&
                                    detail_async::center_channel<detail_async::channel_t<Comm>, T>;

/// Options of the asynchronous elastic pull.
struct async_elastic_options {
  std::uint32_t period = 10;  ///< tau: steps between a worker's exchanges with the center
  float beta = 0.9f;          ///< moving rate of the center, beta = p*alpha
  float alpha = 0.0f;         ///< elastic coefficient; 0 = beta/p
  int owner = 0;              ///< worker that holds the center (MPI: its window; the team: counted as its holder)
};

/// Asynchronous EASGD's pull. See the file comment.
struct async_elastic {
  using options = async_elastic_options;
  options opt{};

  /// Buffers: [center as read at the last exchange (the final center after finish()), the last delta].
  static constexpr std::size_t buffers = 2;
  /// Which buffers force() reads (the byte model of tether/bench/byte_model.hpp).
  static constexpr std::array<bool, buffers> force_reads{false, true};

  template <class T>
  struct context {};

  void validate(int workers) const {
    detail::require(opt.period > 0, "async elastic pull: period must be > 0, got period = ", opt.period);
    detail::require(std::isfinite(opt.beta) && opt.beta >= 0.0f && opt.beta <= 1.0f,
                    "async elastic pull: beta must be in [0, 1], got beta = ", opt.beta);
    detail::require(std::isfinite(opt.alpha) && opt.alpha >= 0.0f && opt.alpha <= 1.0f,
                    "async elastic pull: alpha must be in [0, 1], got alpha = ", opt.alpha);
    detail::require(alpha(workers) * static_cast<float>(workers) <= 1.0f + 1e-6f,
                    "async elastic pull: p*alpha must be <= 1 for a stable center, got p = ", workers,
                    ", alpha = ", alpha(workers));
    detail::require(opt.owner >= 0 && opt.owner < workers, "async elastic pull: owner must be a worker in [0, ",
                    workers, "), got owner = ", opt.owner);
  }

  [[nodiscard]] float alpha(int workers) const noexcept {
    return opt.alpha > 0.0f ? opt.alpha : opt.beta / static_cast<float>(workers);
  }
  /// Exchanges with the center done by this worker.
  [[nodiscard]] std::uint64_t exchanges() const noexcept { return exchanges_; }

  template <class Env, class T, class S>
    requires async_center_communicator<typename Env::comm_type, T> && std::same_as<S, mem::host>
  void start(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    auto channel = env.comm.duplicate();
    auto& c = *channel;
    n_ = x.size();
    exchanges_ = 0;
    // The center starts at the mean of the starting points.
    env.exec.parallel_for(n_, kernels::copy<T>{x.data(), b[1].data()});
    c.allreduce_sum(b[1].span());
    env.exec.parallel_for(n_, kernels::copy<T>{b[1].data(), b[0].data()});
    env.exec.parallel_for(n_, kernels::scale<T>{b[0].data(), T(1) / static_cast<T>(c.size())});
    using link = detail_async::center_link_of<detail_async::channel_t<typename Env::comm_type>, T>;
    center_ = std::make_unique<link>(std::move(channel), std::span<const T>(b[0].data(), n_), opt.owner);
  }

  template <class Env, class T, class S>
    requires async_center_communicator<typename Env::comm_type, T> && std::same_as<S, mem::host>
  bool before(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b, context<T>&) {
    detail::require(center_ != nullptr, "async elastic pull: step after finish()");
    center_->poll();
    if (env.step == 0 || env.step % opt.period != 0) return false;
    struct compute_ctx {
      const typename Env::exec_type* exec;
      detail_async::elastic_delta<T> k;
    };
    const compute_ctx ctx{&env.exec, {x.data(), b[0].data(), b[1].data(), T(alpha(center_->size()))}};
    center_->exchange(b[0].data(), b[1].data(),
                      [](const void* p, std::size_t lo, std::size_t hi) {
                        const auto& cx = *static_cast<const compute_ctx*>(p);
                        cx.exec->parallel_for(hi - lo, detail_async::elastic_delta<T>{cx.k.x + lo, cx.k.c + lo,
                                                                                      cx.k.d + lo, cx.k.a});
                      },
                      &ctx);
    ++exchanges_;
    env.round = true;
    return true;
  }

  /// Completes the exchange (on MPI the addition reaches the owner) while the step's kernel has run.
  template <class Env, class T, class S>
  void after(Env&, view<T, S>, pull_buffers<T, buffers, S>) {
    if (center_) center_->release();
  }

  /// Waits for every worker (one barrier of the private channel), then leaves the final center in target(0)
  /// on every worker and closes the center.
  template <class Env, class T, class S>
  void finish(Env&, view<T, S>, pull_buffers<T, buffers, S> b) {
    if (!center_) return;
    auto link = std::move(center_);
    link->close(b[0].data());
  }

  /// The force is the delta sent to the center in this step: the worker moves by exactly what the center gains.
  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>&, T /*x*/, T /*center*/, T delta) {
    return delta;
  }

 private:
  std::unique_ptr<detail_async::center_link> center_;
  std::size_t n_ = 0;
  std::uint64_t exchanges_ = 0;
};

}  // namespace tether::pull
