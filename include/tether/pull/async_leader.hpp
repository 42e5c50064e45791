#pragma once
/// \file
/// pull::async_leader: asynchronous LSGD on comm::mpi and on the thread team. Elections and leader broadcasts
/// progress in the background while the workers keep stepping; a worker never waits for a round and always
/// pulls toward the freshest leader copy it has (at most one round stale):
///
///     x <- x - eta*d(g) - (strength/period) * (x - x_leader)       (every step, once a copy has arrived)
///
/// plus `jump * (x - x_leader)` once, in the step where a new copy arrives. The leader does not pull toward
/// its own copy.
///
/// Protocol. Round k is due at step k*period. When it is due and the previous round is over, the worker
/// posts a non-blocking election (imin_loc of its (score, rank)); when that completes the winner snapshots
/// its parameters into a staging buffer and every worker posts a non-blocking broadcast (ibroadcast) of it;
/// when that completes the staging buffer becomes the leader copy. Rounds are started one after another,
/// so every worker posts the same non-blocking collectives in the same order, whatever its speed. Progress:
/// on MPI each step() polls the operation in flight with MPI_Test (no progress thread; docs/mpi.md says
/// why); on the thread team the team's progress thread carries the operations out once every worker has
/// posted, and step() only tests them (docs/algorithms/async.md). The operations run on a private duplicate
/// of the communicator, so they never interleave with the user's own collectives. finish() (or the
/// destructor) runs the rounds still due, blocking, so that every worker has taken part in the same
/// operations: every worker must take the same number of steps, as in synchronous LSGD. A worker destroyed
/// by an exception does not wait for the others: on the team it aborts the private channel (every worker's
/// next round operation throws tether::aborted), so no worker waits for it.
///
/// What the communicator provides: `duplicate()` (collective) returning a channel with `rank()`,
/// `imin_loc(score, election&) -> request` and `ibroadcast(span<T>, root) -> request`; optionally `abort()`.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/request.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/view.hpp"

namespace tether::pull {

namespace detail_leader {

/// The private channel a communicator's duplicate() returns.
template <class Comm>
using channel_t = typename std::remove_cvref_t<decltype(*std::declval<Comm&>().duplicate())>;

/// A channel with non-blocking elections and broadcasts of T.
template <class C, class T>
concept leader_channel = requires(C& c, float score, election& e, std::span<T> v) {
  { c.rank() } -> std::convertible_to<int>;
  { c.imin_loc(score, e) } -> std::same_as<request>;
  { c.ibroadcast(v, 0) } -> std::same_as<request>;
};

/// The channel of a running asynchronous LSGD (type-erased: the pull is not a template of the communicator).
class channel_link {
 public:
  virtual ~channel_link() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual request imin_loc(float score, election& out) = 0;
  /// Makes every worker's pending and future operations on the channel fail, so nobody waits for this worker
  /// any more. False when the channel cannot (comm::mpi: the other ranks' timeouts bound their waits).
  virtual bool abort() noexcept = 0;
};

template <class C>
class channel_link_of final : public channel_link {
 public:
  explicit channel_link_of(std::unique_ptr<C> c) : comm(std::move(c)) {}
  [[nodiscard]] int rank() const override { return comm->rank(); }
  [[nodiscard]] request imin_loc(float score, election& out) override { return comm->imin_loc(score, out); }
  bool abort() noexcept override {
    if constexpr (requires { comm->abort(); }) {
      comm->abort();
      return true;
    } else {
      return false;
    }
  }
  std::unique_ptr<C> comm;
};

}  // namespace detail_leader

/// A communicator whose workers can run asynchronous LSGD on T: `duplicate()` gives a channel with
/// non-blocking elections and broadcasts (comm::mpi, the thread team's worker).
template <class Comm, class T>
concept async_leader_communicator = requires { typename detail_leader::channel_t<Comm>; } &&
                                    detail_leader::leader_channel<detail_leader::channel_t<Comm>, T>;

/// Options of the asynchronous leader pull.
struct async_leader_options {
  std::uint32_t period = 16;        ///< tau: a round (election + broadcast) is due every period steps
  float strength = 0.1f;            ///< p: proximal pull per step is strength/period
  float jump = 0.0f;                ///< c: extra pull in the step where a new leader copy arrives, 0 = off
  std::uint32_t score_window = 10;  ///< k: the score is the mean of the last k losses
};

/// Asynchronous LSGD's pull. See the file comment.
struct async_leader {
  using options = async_leader_options;
  options opt{};

  /// Buffers: [leader copy]. (The staging buffer of the broadcast in flight is the pull's own: the fused
  /// kernel must not read a buffer the team's progress thread may be writing.)
  static constexpr std::size_t buffers = 1;

  template <class T>
  struct context {
    T a;  ///< coefficient of (x - x_leader)
  };

  async_leader() = default;
  async_leader(const async_leader&) = delete;
  async_leader& operator=(const async_leader&) = delete;
  async_leader(async_leader&& o) noexcept = default;
  async_leader& operator=(async_leader&& o) noexcept = default;
  ~async_leader() {
    if (!channel_) return;
    // A failing worker must not wait for the others' rounds (they may be blocked in a collective it will
    // never join): where the channel can, it releases them instead (the thread team).
    if (std::uncaught_exceptions() > exceptions_at_start_ && channel_->abort()) return;
    try {
      complete(due_at_end(), nullptr, false);  // the parameters may be gone: the leader re-sends its last snapshot
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; call finish() to see errors
    }
  }

  void validate(int /*workers*/) const {
    detail::require(opt.period > 0, "async leader pull: period must be > 0, got period = ", opt.period);
    detail::require(std::isfinite(opt.strength) && opt.strength >= 0.0f,
                    "async leader pull: strength must be finite and >= 0, got strength = ", opt.strength);
    detail::require(std::isfinite(opt.jump) && opt.jump >= 0.0f && opt.jump <= 1.0f,
                    "async leader pull: jump must be in [0, 1], got jump = ", opt.jump);
    detail::require(opt.score_window > 0, "async leader pull: score_window must be > 0, got score_window = ",
                    opt.score_window);
  }

  /// The worker's score: mean of the last score_window losses.
  [[nodiscard]] double score() const noexcept {
    if (filled_ == 0) return std::numeric_limits<double>::infinity();
    double s = 0.0;
    for (std::size_t i = 0; i < filled_; ++i) s += window_[i];
    return s / static_cast<double>(filled_);
  }
  /// Rank whose parameters the leader copy holds (-1 before the first copy arrived).
  [[nodiscard]] int leader() const noexcept { return copy_owner_; }
  /// Rounds started and completed by this worker.
  [[nodiscard]] std::uint64_t rounds_started() const noexcept { return started_; }
  [[nodiscard]] std::uint64_t rounds_completed() const noexcept { return completed_; }
  /// True while a round is in flight.
  [[nodiscard]] bool in_flight() const noexcept { return phase_ != phase::idle; }

  template <class Env, class T, class S>
    requires async_leader_communicator<typename Env::comm_type, T> && std::same_as<S, mem::host>
  void start(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    using channel = detail_leader::channel_t<typename Env::comm_type>;
    window_.assign(opt.score_window, 0.0);
    filled_ = 0;
    pos_ = 0;
    copy_owner_ = -1;
    started_ = completed_ = 0;
    steps_ = 0;
    phase_ = phase::idle;
    exceptions_at_start_ = std::uncaught_exceptions();
    channel_ = std::make_unique<detail_leader::channel_link_of<channel>>(env.comm.duplicate());
    election_ = std::make_unique<election>();
    rank_ = channel_->rank();
    auto staging = std::make_shared<std::vector<T>>(x.size());
    x_ = {x.data(), x.size()};
    copy_ = {b[0].data(), b[0].size()};
    staging_ = {staging->data(), staging->size()};
    staging_owner_ = std::move(staging);
    copy_kernel_ = [](const void* src, void* dst, std::size_t n, const void* exec) {
      static_cast<const typename Env::exec_type*>(exec)->parallel_for(
          n, kernels::copy<T>{static_cast<const T*>(src), static_cast<T*>(dst)});
    };
    exec_ = &env.exec;
    bcast_ = [](detail_leader::channel_link& c, void* data, std::size_t n, int root) {
      return static_cast<detail_leader::channel_link_of<channel>&>(c).comm->ibroadcast(
          std::span<T>(static_cast<T*>(data), n), root);
    };
  }

  template <class Env, class T, class S>
    requires async_leader_communicator<typename Env::comm_type, T> && std::same_as<S, mem::host>
  bool before(Env& env, view<T, S> x, pull_buffers<T, buffers, S> /*b*/, context<T>& c) {
    record(env.loss);
    x_ = {x.data(), x.size()};
    exec_ = &env.exec;
    steps_ = env.step + 1;
    bool arrived = progress(env.stats);
    if (phase_ == phase::idle && started_ < env.step / opt.period) {
      begin_round();
      // At most one round completes per step (the step's counters see one round); else test the new one now.
      if (!arrived) arrived = progress(env.stats);
    }
    env.round = arrived;
    env.stats.leader = copy_owner_;
    env.stats.score = score();
    c.a = T(0);
    if (copy_owner_ >= 0 && copy_owner_ != rank_)
      c.a = T(opt.strength / static_cast<float>(opt.period)) + (arrived ? T(opt.jump) : T(0));
    return c.a != T(0);
  }

  template <class Env, class T, class S>
  void after(Env&, view<T, S>, pull_buffers<T, buffers, S>) {}

  /// Runs the rounds still due (blocking, bounded by the communicator's timeout), so that every rank has
  /// taken part in the same operations; afterwards every worker holds the same leader copy.
  template <class Env, class T, class S>
  void finish(Env& env, view<T, S> x, pull_buffers<T, buffers, S>) {
    if (!channel_) return;
    x_ = {x.data(), x.size()};
    exec_ = &env.exec;
    const std::uint64_t before_rounds = completed_;
    complete(due_at_end(), &env.stats, true);
    env.stats.leader = copy_owner_;
    env.stats.rounds += completed_ - before_rounds;
  }

  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T leader_copy) {
    return c.a * (x - leader_copy);
  }

 private:
  enum class phase { idle, electing, sharing };

  struct raw_view {
    void* ptr = nullptr;
    std::size_t len = 0;
  };

  [[nodiscard]] std::uint64_t due_at_end() const noexcept { return steps_ == 0 ? 0 : (steps_ - 1) / opt.period; }

  void record(double loss) {
    window_[pos_] = loss;
    pos_ = (pos_ + 1) % window_.size();
    if (filled_ < window_.size()) ++filled_;
  }

  void begin_round() {
    ++started_;
    *election_ = {};
    elect_ = channel_->imin_loc(static_cast<float>(score()), *election_);
    phase_ = phase::electing;
  }

  /// Advances the round in flight without blocking. True when a new leader copy arrived.
  /// `have_x`: the parameters are valid (false in the destructor).
  bool progress(worker_stats& stats, bool have_x = true) {
    if (phase_ == phase::electing && elect_.test()) {
      elect_.wait();
      if (election_->rank < 0) {  // no finite score anywhere: nothing to share
        phase_ = phase::idle;
        ++completed_;
        return false;
      }
      winner_ = election_->rank;
      if (winner_ == rank_ && have_x) copy_kernel_(x_.ptr, staging_.ptr, x_.len, exec_);
      share_ = bcast_(*channel_, staging_.ptr, staging_.len, winner_);
      phase_ = phase::sharing;
    }
    if (phase_ == phase::sharing && share_.test()) {
      share_.wait();
      copy_kernel_(staging_.ptr, copy_.ptr, copy_.len, exec_);
      if (copy_owner_ >= 0 && copy_owner_ != winner_) ++stats.leader_changes;
      copy_owner_ = winner_;
      phase_ = phase::idle;
      ++completed_;
      return true;
    }
    return false;
  }

  /// Blocks until `rounds` rounds have completed.
  void complete(std::uint64_t rounds, worker_stats* stats, bool have_x) {
    worker_stats scratch;
    worker_stats& st = stats != nullptr ? *stats : scratch;
    while (phase_ != phase::idle || started_ < rounds) {
      if (phase_ == phase::idle) begin_round();
      if (phase_ == phase::electing) elect_.wait();
      if (phase_ == phase::sharing) share_.wait();
      progress(st, have_x);
    }
  }

  std::vector<double> window_;
  std::size_t filled_ = 0;
  std::size_t pos_ = 0;
  int copy_owner_ = -1;
  int winner_ = -1;
  int rank_ = 0;
  std::uint64_t started_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t steps_ = 0;
  int exceptions_at_start_ = 0;
  phase phase_ = phase::idle;
  std::unique_ptr<election> election_;  // on the heap: the election in flight writes here, even after a move
  raw_view x_{};
  raw_view copy_{};
  raw_view staging_{};
  std::shared_ptr<void> staging_owner_;  // a std::vector<T>: its data stays put when the pull moves
  void (*copy_kernel_)(const void*, void*, std::size_t, const void*) = nullptr;
  const void* exec_ = nullptr;
  request (*bcast_)(detail_leader::channel_link&, void*, std::size_t, int) = nullptr;
  std::unique_ptr<detail_leader::channel_link> channel_;
  // Declared after the channel, so destroyed before it: requests in flight complete while it lives.
  request elect_;
  request share_;
};

}  // namespace tether::pull
