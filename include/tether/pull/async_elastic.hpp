#pragma once
/// \file
/// pull::async_elastic: asynchronous EASGD (Zhang, Choromanska, LeCun, NeurIPS 2015) on communicators of the
/// one-sided tier (comm::mpi: the center in an MPI window; the thread team: one center in the process, a lock
/// per block). The center is a shared store (docs/concepts.md#one-sided-tier) of one shard by default, or
/// of `shards` shards held by different workers. A worker's round is one exchange with the center and nobody
/// waits for anybody else. Every `period` steps, with the pre-step parameters x:
///
///     read xc
///     delta = alpha * (x - xc)
///     x  <- x - eta*d(g) - delta   (fused with the gradient step)
///     xc <- xc + delta             (atomic at the center: per element on MPI, per block on the team)
///
/// On MPI another worker's addition may land between a worker's read and its addition (that is the
/// asynchrony of the algorithm); on the team each block is read and updated under one lock. With p workers
/// alpha defaults to beta/p. The center starts at the mean of the workers' finite starting points (a worker
/// whose start is not finite is left out and counted in stats().excluded_nonfinite); finish() waits
/// for every worker (one barrier) and leaves the final center in target(0) on every worker. On comm::mpi
/// the workers send each other a heartbeat (comm/mpi/heartbeat.hpp): a rank not heard from for the timeout
/// (dead, or stalled that long) is lost; with `on_lost_rank = raise` every other rank's step() throws
/// tether::timeout naming it, with `go_on` each goes on alone (no more exchanges, no pull; finish() returns
/// at once and target(0) keeps the center as last read).
///
/// The run state is bound to the optimizer's communicator, execution space and value type
/// (async_elastic::bind, docs/concepts.md#pull-state-bound-to-its-environment): the private channel and the
/// store have their concrete types. Parameters in device memory: the store holds host values, so an exchange
/// stages each block through host memory the execution space provides; the elastic difference is computed
/// by the execution space's kernels.

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/collectives.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/keep_forever.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/view.hpp"
#include "tether/pull/elastic_rules.hpp"
#include "tether/pull/lost_round_policy.hpp"

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

/// The heartbeat of a channel that has none (the thread team: a worker that fails aborts the team).
struct no_heartbeat {
  void beat() {}
  void finished() {}
  [[nodiscard]] int silent() const { return -1; }
  [[nodiscard]] double silent_for(int) const { return 0.0; }
};

/// The channel's heartbeat (comm::mpi: comm/mpi/heartbeat.hpp; collective), or none.
template <class C>
auto open_heartbeat(C& c) {
  if constexpr (requires { c.open_heartbeat(); })
    return c.open_heartbeat();
  else
    return std::unique_ptr<no_heartbeat>{};
}

}  // namespace detail_async

/// A communicator whose workers can run asynchronous EASGD on T: the one-sided tier, on the communicator and
/// on the private channel its `duplicate()` gives (comm::mpi, the thread team's worker).
template <class C, class T>
concept async_store_communicator = one_sided_communicator<C, T> && requires(C& c) { *c.duplicate(); } &&
                                   one_sided_communicator<channel_t<C>, T>;

/// Options of the asynchronous elastic pull.
struct async_elastic_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"period", "beta", "alpha", "owner", "shards", "on_lost_rank"};
  std::uint32_t period = 10;  ///< tau: steps between a worker's exchanges with the center
  float beta = 0.9f;          ///< moving rate of the center, beta = p*alpha
  float alpha = 0.0f;         ///< elastic coefficient; 0 = beta/p
  int owner = 0;              ///< worker that holds the center (its first shard: shard s on (owner + s) % p)
  std::uint32_t shards = 1;   ///< S: the center is cut into S shards held by different workers (>= 1)
  /// comm::mpi: a rank not heard from for the timeout (or an exchange with the center that timed out)
  lost_round_policy on_lost_rank = lost_round_policy::raise;
};

template <class Comm, class Exec, class T>
class async_elastic_run;

/// Asynchronous EASGD's pull: its options, buffers and force. The optimizer holds its run state,
/// async_elastic_run<Comm, Exec, T> (see bind). See the file comment.
struct async_elastic {
  /// Workers take their steps independently (they may end at different counts): no step-count agreement.
  static constexpr bool independent_steps = true;
  using options = async_elastic_options;
  options opt{};

  /// Buffers: [center as read at the last exchange (the final center after finish()), the last delta].
  static constexpr std::size_t buffers = 2;
  /// Which buffers force() reads (the byte model of tether/bench/byte_model.hpp).
  static constexpr std::array<bool, buffers> force_reads{false, true};

  template <class T>
  struct context {};

  /// The run state an optimizer on communicator Comm, execution space Exec and value type T holds.
  template <class Comm, class Exec, class T>
  using bind = async_elastic_run<Comm, Exec, T>;

  void validate(int workers) const {
    detail::validate_elastic("async elastic pull", opt, workers);
    detail::require(opt.owner >= 0 && opt.owner < workers, "async elastic pull: owner must be a worker in [0, ",
                    workers, "), got owner = ", opt.owner);
    detail::require(opt.shards >= 1, "async elastic pull: shards must be >= 1, got shards = ", opt.shards);
    detail::require(opt.on_lost_rank == lost_round_policy::raise || opt.on_lost_rank == lost_round_policy::go_on,
                    "async elastic pull: on_lost_rank must be raise or go_on, got on_lost_rank = ",
                    static_cast<int>(opt.on_lost_rank));
  }

  [[nodiscard]] float alpha(int workers) const noexcept { return detail::elastic_alpha(opt, workers); }

  /// The force is the delta sent to the center in this step: the worker moves by exactly what the center gains.
  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>&, T /*x*/, T /*center*/, T delta) {
    return delta;
  }
};

/// The run state of asynchronous EASGD on communicator Comm (of the one-sided tier), execution space Exec and
/// value type T: the private channel, the store that holds the center, host staging for device memory.
template <class Comm, class Exec, class T>
class async_elastic_run : public async_elastic {
  static_assert(async_store_communicator<Comm, T>,
                "tether::pull::async_elastic (asynchronous EASGD) needs a communicator of the one-sided tier: "
                "open_store<T>(initial, layout, owner) on it and on the channel its duplicate() gives (see "
                "docs/concepts.md#one-sided-tier)");
  using channel = channel_t<Comm>;
  using store = std::remove_cvref_t<decltype(std::declval<channel&>().template open_store<T>(
      std::declval<std::span<const T>>(), std::declval<const shard_layout&>(), 0))>;
  using space = typename Exec::memory_space;
  static constexpr bool on_host = std::same_as<space, mem::host>;
  static_assert(on_host || detail::stages_through_host<Exec, T>,
                "tether::pull::async_elastic: the center is in host memory and this execution space cannot stage "
                "its device memory through host memory (see docs/exec.md)");
  using host_buffer = typename detail::staging_buffer<Exec, T, on_host>::type;

 public:
  /// Exchanges with the center done by this worker.
  [[nodiscard]] std::uint64_t exchanges() const noexcept { return exchanges_; }
  /// True once a rank was lost with `on_lost_rank = go_on`: this worker exchanges no more.
  [[nodiscard]] bool lost() const noexcept { return lost_; }

  template <class Env>
  void start(Env& env, view<T, space> x, pull_buffers<T, buffers, space> b) {
    exec_.emplace(env.exec);
    const Exec& e = *exec_;
    channel_ = env.comm.duplicate();
    rank_ = channel_->rank();
    const std::size_t n = x.size();
    saved_center_.clear();
    lost_ = false;
    exchanges_ = 0;
    // The center starts at the mean of the finite starting points (synchronous EASGD's rule). A non-finite
    // start makes the sum non-finite on every worker; only then do they count the finite ones and sum again
    // with zeros for the others (no finite start: the center starts at 0).
    e.parallel_for(n, kernels::copy<T>{x.data(), b[1].data()});
    tether::allreduce_sum(e, *channel_, b[1]);
    T count = T(channel_->size());
    if (e.any(n, kernels::nonfinite<T>{b[1].data()})) {
      const bool finite = !e.any(n, kernels::nonfinite<T>{x.data()});
      if (!finite) ++env.stats.excluded_nonfinite;
      count = finite ? T(1) : T(0);
      channel_->allreduce_sum(std::span<T>(&count, 1));
      e.parallel_for(n, kernels::copy<T>{x.data(), b[1].data()});
      if (!finite) e.parallel_for(n, kernels::fill<T>{b[1].data(), T(0)});
      tether::allreduce_sum(e, *channel_, b[1]);
    }
    e.parallel_for(n, kernels::copy<T>{b[1].data(), b[0].data()});
    e.parallel_for(n, kernels::scale<T>{b[0].data(), count > T(0) ? T(1) / count : T(1)});
    heartbeat_ = detail_async::open_heartbeat(*channel_);
    if constexpr (on_host) {
      open_center(std::span<const T>(b[0].data(), n));
    } else {
      read_ = e.template allocate_host<T>(n);
      delta_ = e.template allocate_host<T>(n);
      detail::fence(e);
      e.copy_to_host(b[0].data(), read_.data(), n);
      open_center(std::span<const T>(read_.data(), n));
    }
  }

  template <class Env>
  bool before(Env& env, view<T, space> x, pull_buffers<T, buffers, space> b, context<T>&) {
    if (lost_) return false;
    detail::require(store_ != nullptr, "async elastic pull: step after finish()");
    if constexpr (requires(store& s) { s.poll(); }) store_->poll();
    if (heartbeat_ && !alive()) return false;
    if (env.step == 0 || env.step % opt.period != 0) return false;
    const Exec& e = *exec_;
    // A worker whose parameters are not finite still takes part in the exchange (it reads the center) but
    // adds zeros, so it never moves the center (one read of x per exchange).
    const bool finite = !e.any(x.size(), kernels::nonfinite<T>{x.data()});
    if (!finite) ++env.stats.excluded_nonfinite;
    const detail_async::elastic_delta<T> k{x.data(), b[0].data(), b[1].data(), T(alpha(channel_->size()))};
    const auto delta_of = [&](std::size_t lo, std::size_t hi) {
      if (finite)
        e.parallel_for(hi - lo, detail_async::elastic_delta<T>{k.x + lo, k.c + lo, k.d + lo, k.a});
      else
        e.parallel_for(hi - lo, kernels::fill<T>{k.d + lo, T(0)});
    };
    try {
      if constexpr (on_host) {
        store_->exchange(b[0].span(), b[1].span(), delta_of);
      } else {
        // Each block as read is copied in, its delta computed on the device and copied out before it is added.
        store_->exchange(std::span<T>(read_.data(), read_.size()), std::span<T>(delta_.data(), delta_.size()),
                         [&](std::size_t lo, std::size_t hi) {
                           e.copy_from_host(read_.data() + lo, b[0].data() + lo, hi - lo);
                           delta_of(lo, hi);
                           detail::fence(e);
                           e.copy_to_host(b[1].data() + lo, delta_.data() + lo, hi - lo);
                         });
      }
    } catch (const timeout&) {  // a holder of the center died or stalled (the store's bounded wait)
      if (opt.on_lost_rank == lost_round_policy::raise) throw;
      lose();
      return false;
    }
    ++exchanges_;
    env.round = true;
    return true;
  }

  /// Completes the exchange (on MPI the addition reaches the center's holders) while the step's kernel has run.
  template <class Env>
  void after(Env&, view<T, space>, pull_buffers<T, buffers, space>) {
    if (!store_ || lost_) return;
    try {
      store_->release();
    } catch (const timeout&) {
      if (opt.on_lost_rank == lost_round_policy::raise) throw;
      lose();
    }
  }

  /// Checkpoints (optimizer::save/load), host memory: every worker stops at one barrier with its additions
  /// complete, reads the center, and waits at a second barrier before anyone adds again (so every worker
  /// must save after the same step); after finish() the center is the final one in target(0). The state is
  /// the center and the exchange count. Restoring opens the private channel where this run has not started
  /// (as start() would) and reopens the center at the saved values (collective).
  template <class Env>
  void drain(Env&, view<T, space>, pull_buffers<T, buffers, space> b) {
    static_assert(on_host, "tether::pull::async_elastic: checkpoints support host memory only");
    detail::require(!lost_, "async elastic pull: rank ", rank_,
                    " lost a rank (not heard from within the timeout): a run without it cannot be checkpointed");
    if (!channel_) return;
    saved_center_.resize(b[0].size());
    if (!store_) {  // after finish(): the final center
      std::copy(b[0].data(), b[0].data() + b[0].size(), saved_center_.begin());
      return;
    }
    store_->release();
    if (heartbeat_) {
      heartbeat_->beat();
      raise_if_silent();
    }
    channel_->barrier();
    store_->read(std::span<T>(saved_center_));
    channel_->barrier();
  }
  struct record {
    bool open = false;  // the run had started
    std::uint64_t exchanges = 0;
    std::vector<T> center;
  };
  template <class Writer>
  void save(Writer& w) const {
    w.template put<std::uint8_t>(channel_ ? 1 : 0);
    if (!channel_) return;
    w.template put<std::uint64_t>(exchanges_);
    w.template put_array<T>(std::span<const T>(saved_center_));
  }
  template <class Reader>
  [[nodiscard]] record read_state(Reader& r, std::size_t n) const {
    record rec;
    const auto open = r.template get<std::uint8_t>("the asynchronous elastic pull's started flag");
    if (open > 1)
      throw error(detail::concat("tether: checkpoint ", r.path(), ": corrupted started flag ", int{open}));
    rec.open = open != 0;
    if (!rec.open) return rec;
    rec.exchanges = r.template get<std::uint64_t>("the exchange count");
    rec.center.resize(n);
    r.template get_array<T>(std::span<T>(rec.center), "the center");
    return rec;
  }
  /// Sets the saved state: opens the private channel where this run has not started, and the center at the
  /// saved values (closing the one open; collective).
  template <class Env>
  void restore(Env& env, view<T, space>, pull_buffers<T, buffers, space>, record rec) {
    static_assert(on_host, "tether::pull::async_elastic: checkpoints support host memory only");
    if (!rec.open) return;
    if (!channel_) {
      exec_.emplace(env.exec);
      channel_ = env.comm.duplicate();
      rank_ = channel_->rank();
      heartbeat_ = detail_async::open_heartbeat(*channel_);
    }
    if (store_) {
      std::vector<T> scratch(store_->size());
      auto st = std::move(store_);
      st->close(std::span<T>(scratch));
    }
    open_center(std::span<const T>(rec.center));
    exchanges_ = rec.exchanges;
    lost_ = false;
    saved_center_.clear();
  }

  /// Waits for every worker (one barrier of the private channel), then leaves the final center in target(0)
  /// on every worker and closes the center.
  template <class Env>
  void finish(Env&, view<T, space>, pull_buffers<T, buffers, space> b) {
    if (!store_ || lost_) return;
    if (heartbeat_) heartbeat_->finished();
    auto st = std::move(store_);
    if constexpr (on_host) {
      st->close(b[0].span());
    } else {
      st->close(std::span<T>(read_.data(), read_.size()));
      exec_->copy_from_host(read_.data(), b[0].data(), read_.size());
    }
  }

 private:
  /// Beats; false when a rank has not been heard from for the timeout (it died or stalled) and this worker
  /// goes on alone (on_lost_rank = go_on); with raise, throws tether::timeout naming it.
  bool alive() {
    heartbeat_->beat();
    if (heartbeat_->silent() < 0) return true;
    if (opt.on_lost_rank == lost_round_policy::raise) raise_if_silent();
    lose();
    return false;
  }
  void raise_if_silent() const {
    const int r = heartbeat_->silent();
    if (r >= 0)
      throw timeout(detail::concat("tether: rank ", rank_, ": asynchronous EASGD: rank ", r,
                                   " has not been heard from for ", heartbeat_->silent_for(r),
                                   " s: it may have died or stalled (comm::mpi timeout; with on_lost_rank = "
                                   "go_on the workers go on alone)"));
  }
  /// A rank is lost: this worker exchanges no more, and the center, its channel and the heartbeat are kept
  /// for good (core/keep_forever.hpp): closing them would wait for the lost rank.
  void lose() noexcept {
    lost_ = true;
    detail::keep_forever(std::move(store_), std::move(heartbeat_), std::move(channel_), std::move(read_),
                         std::move(delta_));
  }

  /// Opens the center (collective) at `initial`, this worker's view of the values (the owner's are used).
  void open_center(std::span<const T> initial) {
    store_ = std::make_unique<store>(
        channel_->template open_store<T>(initial, shard_layout(initial.size(), opt.shards), opt.owner));
  }

  std::optional<Exec> exec_;
  std::vector<T> saved_center_;  // the center read by drain(), for save()
  host_buffer read_{};   // device memory only: host staging of the values read
  host_buffer delta_{};  // and of the delta added (MPI reads it until release())
  std::unique_ptr<channel> channel_;
  // Declared after the channel and the staging, so destroyed before them.
  std::unique_ptr<store> store_;
  decltype(detail_async::open_heartbeat(std::declval<channel&>())) heartbeat_;
  std::uint64_t exchanges_ = 0;
  bool lost_ = false;
  int rank_ = 0;
};

}  // namespace tether::pull
