#pragma once
/// \file
/// pull::async_elastic: asynchronous EASGD on comm::mpi (Zhang, Choromanska, LeCun, NeurIPS 2015). The
/// center variable lives on one owner rank, in an MPI window; a worker's round is one exchange with the
/// owner and nobody waits for anybody else. Every `period` steps, with the pre-step parameters x:
///
///     read xc                      MPI_Rget_accumulate(MPI_NO_OP) under a shared lock of the owner's window
///     delta = alpha * (x - xc)
///     x  <- x - eta*d(g) - delta   (fused with the gradient step)
///     xc <- xc + delta             MPI_Accumulate(MPI_SUM), element-wise atomic at the owner
///
/// Other workers' additions may land between a worker's read and its addition (that is the asynchrony of
/// the algorithm); each addition is atomic per element. With p workers alpha defaults to beta/p.
/// The center starts at the mean of the workers' starting points; finish() waits for every worker (one
/// barrier) and leaves the final center in target(0) on every rank. The owner is a worker too; it polls MPI
/// once per step so that the one-sided traffic progresses on networks that need the target's help.

#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/comm/mpi.hpp"
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
}  // namespace detail_async

/// Options of the asynchronous elastic pull.
struct async_elastic_options {
  std::uint32_t period = 10;  ///< tau: steps between a worker's exchanges with the center
  float beta = 0.9f;          ///< moving rate of the center, beta = p*alpha
  float alpha = 0.0f;         ///< elastic coefficient; 0 = beta/p
  int owner = 0;              ///< rank that holds the center
};

/// Asynchronous EASGD's pull (needs comm::mpi). See the file comment.
struct async_elastic {
  using options = async_elastic_options;
  options opt{};

  /// Buffers: [center as read at the last exchange (the final center after finish()), the last delta].
  static constexpr std::size_t buffers = 2;

  template <class T>
  struct context {};

  async_elastic() = default;
  async_elastic(const async_elastic&) = delete;
  async_elastic& operator=(const async_elastic&) = delete;
  async_elastic(async_elastic&& o) noexcept
      : opt(o.opt), channel_(std::move(o.channel_)), win_(std::exchange(o.win_, MPI_WIN_NULL)),
        base_(o.base_), locked_(o.locked_), n_(o.n_), exchanges_(o.exchanges_) {}
  async_elastic& operator=(async_elastic&&) = delete;
  ~async_elastic() {
    if (win_ == MPI_WIN_NULL) return;
    try {
      unlock();
      channel_->barrier();
      MPI_Win_free(&win_);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a rank is gone; the window is left to MPI_Finalize
    }
  }

  void validate(int workers) const {
    detail::require(opt.period > 0, "async elastic pull: period must be > 0, got period = ", opt.period);
    detail::require(std::isfinite(opt.beta) && opt.beta >= 0.0f && opt.beta <= 1.0f,
                    "async elastic pull: beta must be in [0, 1], got beta = ", opt.beta);
    detail::require(std::isfinite(opt.alpha) && opt.alpha >= 0.0f && opt.alpha <= 1.0f,
                    "async elastic pull: alpha must be in [0, 1], got alpha = ", opt.alpha);
    detail::require(alpha(workers) * static_cast<float>(workers) <= 1.0f + 1e-6f,
                    "async elastic pull: p*alpha must be <= 1 for a stable center, got p = ", workers,
                    ", alpha = ", alpha(workers));
    detail::require(opt.owner >= 0 && opt.owner < workers, "async elastic pull: owner must be a rank in [0, ",
                    workers, "), got owner = ", opt.owner);
  }

  [[nodiscard]] float alpha(int workers) const noexcept {
    return opt.alpha > 0.0f ? opt.alpha : opt.beta / static_cast<float>(workers);
  }
  /// Exchanges with the center done by this worker.
  [[nodiscard]] std::uint64_t exchanges() const noexcept { return exchanges_; }

  template <class Env, class T, class S>
    requires std::same_as<typename Env::comm_type, comm::mpi> && std::same_as<S, mem::host>
  void start(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    channel_ = env.comm.duplicate();
    auto& c = *channel_;
    n_ = x.size();
    exchanges_ = 0;
    // The center starts at the mean of the starting points.
    env.exec.parallel_for(n_, kernels::copy<T>{x.data(), b[1].data()});
    c.allreduce_sum(b[1].span());
    env.exec.parallel_for(n_, kernels::copy<T>{b[1].data(), b[0].data()});
    env.exec.parallel_for(n_, kernels::scale<T>{b[0].data(), T(1) / static_cast<T>(c.size())});
    const bool owner = c.rank() == opt.owner;
    const auto bytes = static_cast<MPI_Aint>(owner ? n_ * sizeof(T) : 0);
    c.check(MPI_Win_allocate(bytes, static_cast<int>(sizeof(T)), MPI_INFO_NULL, c.native(), &base_, &win_),
            "MPI_Win_allocate");
    c.check(MPI_Win_set_errhandler(win_, MPI_ERRORS_RETURN), "MPI_Win_set_errhandler");
    if (owner) {
      c.check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, opt.owner, 0, win_), "MPI_Win_lock");
      if (n_ > 0) std::memcpy(base_, b[0].data(), n_ * sizeof(T));
      c.check(MPI_Win_unlock(opt.owner, win_), "MPI_Win_unlock");
    }
    c.barrier();  // nobody reads the center before the owner wrote it
  }

  template <class Env, class T, class S>
    requires std::same_as<typename Env::comm_type, comm::mpi> && std::same_as<S, mem::host>
  bool before(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b, context<T>&) {
    auto& c = *channel_;
    if (c.rank() == opt.owner) poll();
    if (env.step == 0 || env.step % opt.period != 0) return false;
    const MPI_Datatype dt = comm::detail::mpi_datatype<T>();
    c.check(MPI_Win_lock(MPI_LOCK_SHARED, opt.owner, 0, win_), "MPI_Win_lock");
    locked_ = true;
    std::vector<MPI_Request> reqs;
    comm::detail::for_each_chunk(n_, c.max_count(), [&](std::size_t lo, int len) {
      reqs.push_back(MPI_REQUEST_NULL);
      // MPI_NO_OP ignores the origin buffer (which must still be disjoint from the result buffer).
      c.check(MPI_Rget_accumulate(b[1].data() + lo, len, dt, b[0].data() + lo, len, dt, opt.owner,
                                  static_cast<MPI_Aint>(lo), len, dt, MPI_NO_OP, win_, &reqs.back()),
              "MPI_Rget_accumulate");
    });
    c.wait_all(reqs, "MPI_Rget_accumulate (read of the center)");
    env.exec.parallel_for(n_, detail_async::elastic_delta<T>{x.data(), b[0].data(), b[1].data(),
                                                             T(alpha(c.size()))});
    comm::detail::for_each_chunk(n_, c.max_count(), [&](std::size_t lo, int len) {
      c.check(MPI_Accumulate(b[1].data() + lo, len, dt, opt.owner, static_cast<MPI_Aint>(lo), len, dt, MPI_SUM,
                             win_),
              "MPI_Accumulate");
    });
    // One read and one write of N values, across the wire unless this worker is the owner.
    const std::uint64_t bytes = c.rank() == opt.owner ? 0 : n_ * sizeof(T);
    c.count(bytes, bytes);
    ++exchanges_;
    env.round = true;
    return true;
  }

  /// Completes the exchange (the addition reaches the owner) while the step's kernel has run.
  template <class Env, class T, class S>
  void after(Env&, view<T, S>, pull_buffers<T, buffers, S>) {
    unlock();
  }

  /// Waits for every worker (one barrier, bounded by the timeout), then leaves the final center in target(0)
  /// on every rank and frees the window.
  template <class Env, class T, class S>
  void finish(Env&, view<T, S>, pull_buffers<T, buffers, S> b) {
    if (win_ == MPI_WIN_NULL) return;
    auto& c = *channel_;
    unlock();
    c.barrier();
    if (c.rank() == opt.owner) {
      c.check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, opt.owner, 0, win_), "MPI_Win_lock");
      if (n_ > 0) std::memcpy(b[0].data(), base_, n_ * sizeof(T));
      c.check(MPI_Win_unlock(opt.owner, win_), "MPI_Win_unlock");
    }
    c.broadcast(b[0].span(), opt.owner);
    c.check(MPI_Win_free(&win_), "MPI_Win_free");
    win_ = MPI_WIN_NULL;
  }

  /// The force is the delta sent to the center in this step: the worker moves by exactly what the center gains.
  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>&, T /*x*/, T /*center*/, T delta) {
    return delta;
  }

 private:
  void unlock() {
    if (!locked_) return;
    locked_ = false;
    channel_->check(MPI_Win_unlock(opt.owner, win_), "MPI_Win_unlock");
  }
  void poll() const {
    int flag = 0;
    channel_->check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, channel_->native(), &flag, MPI_STATUS_IGNORE),
                    "MPI_Iprobe");
  }

  std::unique_ptr<comm::mpi> channel_;
  MPI_Win win_ = MPI_WIN_NULL;
  void* base_ = nullptr;
  bool locked_ = false;
  std::size_t n_ = 0;
  std::uint64_t exchanges_ = 0;
};

}  // namespace tether::pull
