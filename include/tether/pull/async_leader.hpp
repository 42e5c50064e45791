#pragma once
/// \file
/// pull::async_leader: asynchronous LSGD on communicators of the non-blocking tier (comm::mpi, the thread
/// team). Elections and leader broadcasts progress in the background while the workers keep stepping; a
/// worker never waits for a round and always pulls toward the freshest leader copy it has (at most one round
/// stale):
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
/// Bounded staleness. A worker whose leader copy is more than `max_staleness` rounds behind the rounds due
/// (a slower worker has not posted them yet) waits for the rounds in its step, sleeping between polls so
/// that the others get the cores, for at most `staleness_wait` seconds per step; then it steps on. On an
/// oversubscribed machine this is what lets the rounds complete during the run rather than in finish().
/// `max_staleness = 0` never waits.
///
/// Lost rounds. A round that has not completed within the channel's timeout (comm::mpi's `timeout`: a rank
/// died, or stalled that long) is lost; nothing waits for it again. With `on_lost_round = raise` step()
/// throws tether::timeout naming the round; with `go_on` the worker goes on alone (no more rounds, no pull)
/// and finish() returns at once. Like finish(), this treats a rank more than the timeout behind the others as
/// dead.
///
/// The run state is bound to the optimizer's communicator, execution space and value type
/// (async_leader::bind, docs/concepts.md#pull-state-bound-to-its-environment): the channel and the staging
/// buffer have their concrete types. Parameters in device memory: the staging buffer lives in the execution
/// space's memory and the broadcast runs on the channel's `ibroadcast(exec, view, root)` where it has one (the
/// team: device-to-device copies on the progress thread), otherwise through host memory the execution space
/// provides (comm::mpi).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/collectives.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/keep_forever.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/request.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/view.hpp"
#include "tether/pull/leader_rules.hpp"
#include "tether/pull/loss_window.hpp"
#include "tether/pull/lost_round_policy.hpp"

namespace tether::pull {

/// Options of the asynchronous leader pull.
struct async_leader_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"period",        "strength",       "jump",
                                                 "score_window",  "max_staleness",  "staleness_wait",
                                                 "on_lost_round"};
  std::uint32_t period = 16;        ///< tau: a round (election + broadcast) is due every period steps
  float strength = 0.1f;            ///< p: proximal pull per step is strength/period
  float jump = 0.0f;                ///< c: extra pull in the step where a new leader copy arrives, 0 = off
  std::uint32_t score_window = 10;  ///< k: the score is the mean of the last k losses
  /// s: a worker whose leader copy is more than s rounds behind the rounds due waits for the rounds in flight
  /// (bounded staleness: the slower workers catch up); 0 never waits
  std::uint32_t max_staleness = 4;
  /// the longest a step waits for the rounds when more than max_staleness behind, in seconds (so a worker
  /// never waits long for a slow or descheduled one, nor for ever for one blocked in the user's own code)
  double staleness_wait = 0.01;
  lost_round_policy on_lost_round = lost_round_policy::raise;  ///< a round not completed within the timeout
};

template <class Comm, class Exec, class T>
class async_leader_run;

/// Asynchronous LSGD's pull: its options, buffers and force. The optimizer holds its run state,
/// async_leader_run<Comm, Exec, T> (see bind). See the file comment.
struct async_leader {
  /// Workers take their steps independently (they may end at different counts): no step-count agreement.
  static constexpr bool independent_steps = true;
  using options = async_leader_options;
  options opt{};

  /// Buffers: [leader copy]. (The staging buffer of the broadcast in flight is the run state's own: the
  /// fused kernel must not read a buffer the team's progress thread may be writing.)
  static constexpr std::size_t buffers = 1;

  template <class T>
  struct context {
    T a;  ///< coefficient of (x - x_leader)
  };

  /// The run state an optimizer on communicator Comm, execution space Exec and value type T holds.
  template <class Comm, class Exec, class T>
  using bind = async_leader_run<Comm, Exec, T>;

  void validate(int /*workers*/) const {
    detail::validate_leader("async leader pull", opt);
    detail::require(std::isfinite(opt.staleness_wait) && opt.staleness_wait >= 0.0,
                    "async leader pull: staleness_wait must be finite and >= 0 (seconds), got staleness_wait = ",
                    opt.staleness_wait);
    detail::require(opt.on_lost_round == lost_round_policy::raise || opt.on_lost_round == lost_round_policy::go_on,
                    "async leader pull: on_lost_round must be raise or go_on, got on_lost_round = ",
                    static_cast<int>(opt.on_lost_round));
  }

  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T leader_copy) {
    return c.a * (x - leader_copy);
  }
};

/// The run state of asynchronous LSGD on communicator Comm (of the non-blocking tier), execution space Exec
/// and value type T: the private channel, the election and broadcast in flight, the staging buffer.
template <class Comm, class Exec, class T>
class async_leader_run : public async_leader {
  static_assert(nonblocking_communicator<Comm, T>,
                "tether::pull::async_leader (asynchronous LSGD) needs a communicator of the non-blocking tier: "
                "duplicate() giving a channel with imin_loc, ibroadcast and iallreduce_sum (see "
                "docs/concepts.md#non-blocking-tier)");
  using channel = channel_t<Comm>;
  using space = typename Exec::memory_space;
  /// The broadcast runs on the staging buffer in the execution space's memory (host memory, or a channel
  /// with device broadcasts), or through host staging the execution space provides.
  static constexpr bool direct =
      std::same_as<space, mem::host> || requires(channel& c, const Exec& e, view<T, space> v) {
        { c.ibroadcast(e, v, 0) } -> std::same_as<request>;
      };
  static_assert(direct || detail::stages_through_host<Exec, T>,
                "tether::pull::async_leader: the channel has no broadcast for this memory space and the execution "
                "space cannot stage through host memory (see docs/exec.md)");
  using staging_buffer = typename detail::staging_buffer<Exec, T, direct>::type;

 public:
  async_leader_run() = default;
  async_leader_run(const async_leader_run&) = delete;
  async_leader_run& operator=(const async_leader_run&) = delete;
  async_leader_run(async_leader_run&&) noexcept = default;
  async_leader_run& operator=(async_leader_run&&) noexcept = default;
  ~async_leader_run() {
    if (!channel_) return;
    if (!lost_) {
      // A failing worker must not wait for the others' rounds (they may be blocked in a collective it will
      // never join): where the channel can, it releases them instead (the thread team).
      if (std::uncaught_exceptions() > exceptions_at_start_) {
        if constexpr (requires(channel& c) { c.abort(); }) {
          channel_->abort();
          return;
        }
      }
      try {
        complete(due_at_end(), nullptr, false);  // the parameters may be gone: the leader re-sends its last snapshot
      } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; call finish() to see errors
      }
    }
    if (lost_) abandon();
  }

  /// The worker's score: mean of the last score_window losses.
  [[nodiscard]] double score() const noexcept { return window_.score(); }
  /// Rank whose parameters the leader copy holds (-1 before the first copy arrived).
  [[nodiscard]] int leader() const noexcept { return copy_owner_; }
  /// Rounds started and completed by this worker.
  [[nodiscard]] std::uint64_t rounds_started() const noexcept { return started_; }
  [[nodiscard]] std::uint64_t rounds_completed() const noexcept { return completed_; }
  /// True while a round is in flight.
  [[nodiscard]] bool in_flight() const noexcept { return phase_ != phase::idle; }
  /// Rounds that completed in finish() (or the destructor) rather than during the steps.
  [[nodiscard]] std::uint64_t rounds_late() const noexcept { return late_; }
  /// Staleness of the leader copy at the last step: rounds due then minus rounds completed (0 or 1 while the
  /// background keeps up: the round in flight), and the largest value seen in the run.
  [[nodiscard]] std::uint64_t staleness() const noexcept { return staleness_; }
  [[nodiscard]] std::uint64_t max_staleness() const noexcept { return max_staleness_; }
  /// True once a round was lost (not completed within the channel's timeout): no more rounds are run.
  [[nodiscard]] bool lost() const noexcept { return lost_; }

  template <class Env>
  void start(Env& env, view<T, space> x, pull_buffers<T, buffers, space> b) {
    window_.reset(opt.score_window);
    copy_owner_ = -1;
    started_ = completed_ = late_ = 0;
    staleness_ = max_staleness_ = 0;
    lost_ = false;
    steps_ = 0;
    phase_ = phase::idle;
    open(env, x, b);
  }

  template <class Env>
  bool before(Env& env, view<T, space> x, pull_buffers<T, buffers, space> /*b*/, context<T>& c) {
    window_.record(env.loss);
    x_ = x;
    steps_ = env.step + 1;
    const std::uint64_t due = env.step / opt.period;
    bool arrived = false;
    if (!lost_) {
      arrived = progress(env.stats);
      if (phase_ == phase::idle && started_ < due) {
        begin_round(env.stats, true);
        // At most one round completes per step (the step's counters see one round); else test the new one now.
        if (!arrived) arrived = progress(env.stats);
      }
      check_in_flight();
      // More than max_staleness rounds behind what is due: give the others up to staleness_wait seconds to
      // catch up (without it, a worker of an oversubscribed team runs its whole loop while the others are
      // descheduled, and its rounds complete in finish()).
      if (opt.max_staleness != 0 && due > completed_ + opt.max_staleness) {
        const std::uint64_t before_wait = completed_;
        catch_up(due, env.stats);
        std::uint64_t more = completed_ - before_wait;
        if (!arrived && more > 0) {
          arrived = true;  // the step's own round (env.round)
          --more;
        }
        env.stats.rounds += more;
      }
      staleness_ = due > completed_ ? due - completed_ : 0;
      max_staleness_ = std::max(max_staleness_, staleness_);
    }
    env.round = arrived;
    env.stats.leader = copy_owner_;
    env.stats.score = score();
    c.a = T(0);
    if (copy_owner_ >= 0 && copy_owner_ != rank_ && !lost_)
      c.a = T(opt.strength / static_cast<float>(opt.period)) + (arrived ? T(opt.jump) : T(0));
    return c.a != T(0);
  }

  template <class Env>
  void after(Env&, view<T, space>, pull_buffers<T, buffers, space>) {}

  /// Checkpoints (optimizer::save/load): the rounds due complete first (blocking, bounded by the timeout, as
  /// in finish(); they count as late), so every worker must save after the same step; the state is the loss
  /// window, the leader and the round counters (the leader copy is the optimizer's buffer). A run that lost a
  /// round cannot be saved.
  template <class Env>
  void drain(Env& env, view<T, space> x, pull_buffers<T, buffers, space> b) {
    if (!channel_) return;
    detail::require(!lost_, "async leader pull: rank ", rank_, " lost round ", started_,
                    " (not completed within the timeout): a run without it cannot be checkpointed");
    x_ = x;
    copy_ = b[0];
    const std::uint64_t before_rounds = completed_;
    complete(due_at_end(), &env.stats, true);
    env.stats.leader = copy_owner_;
    env.stats.rounds += completed_ - before_rounds;
    late_ += completed_ - before_rounds;
    staleness_ = 0;
  }
  struct record {
    bool open = false;  // the run had started (its channel was open)
    loss_window window;
    std::int64_t copy_owner = -1, winner = -1;
    std::uint64_t rounds = 0, steps = 0, late = 0, max_staleness = 0;
  };
  template <class Writer>
  void save(Writer& w) const {
    w.template put<std::uint8_t>(channel_ ? 1 : 0);
    if (!channel_) return;
    window_.save(w);
    w.template put<std::int64_t>(copy_owner_);
    w.template put<std::int64_t>(winner_);
    for (const std::uint64_t v : {completed_, steps_, late_, max_staleness_}) w.template put<std::uint64_t>(v);
  }
  template <class Reader>
  [[nodiscard]] record read_state(Reader& r, std::size_t /*n*/) const {
    record rec;
    const auto open = r.template get<std::uint8_t>("the asynchronous leader's started flag");
    if (open > 1)
      throw error(detail::concat("tether: checkpoint ", r.path(), ": corrupted started flag ", int{open}));
    rec.open = open != 0;
    if (!rec.open) return rec;
    rec.window.load(r, opt.score_window);
    rec.copy_owner = r.template get<std::int64_t>("the leader");
    rec.winner = r.template get<std::int64_t>("the last winner");
    rec.rounds = r.template get<std::uint64_t>("the rounds completed");
    rec.steps = r.template get<std::uint64_t>("the steps");
    rec.late = r.template get<std::uint64_t>("the rounds completed late");
    rec.max_staleness = r.template get<std::uint64_t>("the largest staleness");
    const std::uint64_t due = rec.steps == 0 ? 0 : (rec.steps - 1) / opt.period;
    if (rec.rounds != due || rec.copy_owner < -1 || rec.winner < -1 || rec.late > rec.rounds)
      throw error(detail::concat("tether: checkpoint ", r.path(), ": corrupted asynchronous leader state (",
                                 rec.rounds, " rounds completed of ", due, " due at step ", rec.steps,
                                 ", leader ", rec.copy_owner, ")"));
    return rec;
  }
  /// Sets the saved state; opens the private channel first where this run has not started (collective).
  template <class Env>
  void restore(Env& env, view<T, space> x, pull_buffers<T, buffers, space> b, record rec) {
    if (!rec.open) return;
    if (!channel_) open(env, x, b);
    x_ = x;
    copy_ = b[0];
    window_ = std::move(rec.window);
    copy_owner_ = static_cast<int>(rec.copy_owner);
    winner_ = static_cast<int>(rec.winner);
    started_ = completed_ = rec.rounds;
    steps_ = rec.steps;
    late_ = rec.late;
    staleness_ = 0;
    max_staleness_ = rec.max_staleness;
    lost_ = false;
    phase_ = phase::idle;
  }

  /// Runs the rounds still due (blocking, bounded by the communicator's timeout), so that every rank has
  /// taken part in the same operations; afterwards every worker holds the same leader copy.
  template <class Env>
  void finish(Env& env, view<T, space> x, pull_buffers<T, buffers, space>) {
    if (!channel_ || lost_) return;
    x_ = x;
    const std::uint64_t before_rounds = completed_;
    complete(due_at_end(), &env.stats, true);
    env.stats.leader = copy_owner_;
    env.stats.rounds += completed_ - before_rounds;
    late_ += completed_ - before_rounds;
  }

 private:
  enum class phase { idle, electing, sharing };

  [[nodiscard]] std::uint64_t due_at_end() const noexcept { return steps_ == 0 ? 0 : (steps_ - 1) / opt.period; }

  /// Opens the private channel and the staging buffer (collective: duplicate()).
  template <class Env>
  void open(Env& env, view<T, space> x, pull_buffers<T, buffers, space> b) {
    exceptions_at_start_ = std::uncaught_exceptions();
    exec_.emplace(env.exec);
    channel_ = env.comm.duplicate();
    election_ = std::make_unique<election>();
    rank_ = channel_->rank();
    if constexpr (requires(const channel& ch) { ch.opts().timeout; }) timeout_ = channel_->opts().timeout;
    if constexpr (direct)
      staging_ = exec_->template allocate<T>(x.size(), T(0));
    else
      staging_ = exec_->template allocate_host<T>(x.size());
    x_ = x;
    copy_ = b[0];
  }

  /// Posts this worker's score in a new election. A worker whose parameters are not finite posts NaN, so it
  /// never leads (one read of x per round; `have_x`: the parameters are valid, false in the destructor).
  void begin_round(worker_stats& stats, bool have_x) {
    ++started_;
    *election_ = {};
    double s = score();
    if (have_x && exec_->any(x_.size(), kernels::nonfinite<T>{x_.data()})) {
      s = std::numeric_limits<double>::quiet_NaN();
      ++stats.excluded_nonfinite;
    }
    elect_ = channel_->imin_loc(s, *election_);
    phase_ = phase::electing;
    since_ = clock::now();
  }

  /// The winner's snapshot of its parameters into the staging buffer.
  void snapshot() {
    if constexpr (direct) {
      exec_->parallel_for(x_.size(), kernels::copy<T>{x_.data(), staging_.data()});
    } else {
      detail::fence(*exec_);
      exec_->copy_to_host(x_.data(), staging_.data(), x_.size());
    }
  }

  /// The broadcast of the staging buffer from `root`.
  [[nodiscard]] request share(int root) {
    if constexpr (std::same_as<space, mem::host> || !direct)
      return channel_->ibroadcast(std::span<T>(staging_.data(), staging_.size()), root);
    else
      return channel_->ibroadcast(*exec_, view<T, space>{staging_.data(), staging_.size()}, root);
  }

  /// The arrived copy, from the staging buffer into the leader copy (the pull's buffer).
  void adopt() {
    if constexpr (direct)
      exec_->parallel_for(copy_.size(), kernels::copy<T>{staging_.data(), copy_.data()});
    else
      exec_->copy_from_host(staging_.data(), copy_.data(), copy_.size());
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
      if (winner_ == rank_ && have_x) snapshot();
      share_ = share(winner_);
      phase_ = phase::sharing;
      since_ = clock::now();
    }
    if (phase_ == phase::sharing && share_.test()) {
      share_.wait();
      adopt();
      if (copy_owner_ >= 0 && copy_owner_ != winner_) ++stats.leader_changes;
      copy_owner_ = winner_;
      phase_ = phase::idle;
      ++completed_;
      return true;
    }
    return false;
  }

  /// A round in flight for longer than the channel's timeout is lost (a rank died or stalled).
  void check_in_flight() {
    if (phase_ != phase::idle && timeout_ > 0.0 && seconds_since(since_) >= timeout_) lose();
  }

  /// The round in flight is lost: nothing waits for it again; by on_lost_round, throw or go on alone.
  void lose() {
    lost_ = true;
    if (opt.on_lost_round == lost_round_policy::raise)
      throw timeout(detail::concat("tether: rank ", rank_, ": asynchronous LSGD: round ", started_, " (its ",
                                   phase_ == phase::electing ? "election" : "leader's broadcast",
                                   ") did not complete within ", timeout_,
                                   " s: a rank may have died or stalled (comm::mpi timeout; with on_lost_round = "
                                   "go_on the workers go on without rounds)"));
  }

  /// Advances the rounds, sleeping between polls (the core goes to the workers the rounds wait for), until at
  /// most max_staleness of the `due` rounds are not complete or staleness_wait seconds have passed.
  void catch_up(std::uint64_t due, worker_stats& stats) {
    const auto deadline = clock::now() + std::chrono::duration_cast<clock::duration>(
                                             std::chrono::duration<double>(opt.staleness_wait));
    while (due > completed_ + opt.max_staleness) {
      progress(stats);
      if (phase_ == phase::idle && started_ < due) begin_round(stats, true);
      check_in_flight();
      if (lost_ || clock::now() >= deadline) return;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  /// Leaves the lost round's operations and their buffers in flight for good (core/keep_forever.hpp): a rank
  /// that stalled may still join it, and must not write into freed memory.
  void abandon() noexcept {
    detail::keep_forever(std::move(channel_), std::move(election_), std::move(staging_), std::move(elect_),
                         std::move(share_));
  }

  /// Blocks until `rounds` rounds have completed.
  void complete(std::uint64_t rounds, worker_stats* stats, bool have_x) {
    worker_stats scratch;
    worker_stats& st = stats != nullptr ? *stats : scratch;
    try {
      while (phase_ != phase::idle || started_ < rounds) {
        if (phase_ == phase::idle) begin_round(st, have_x);
        if (phase_ == phase::electing) elect_.wait();
        if (phase_ == phase::sharing) share_.wait();
        progress(st, have_x);
      }
    } catch (const timeout&) {  // the channel's bounded wait: the round is lost, nothing waits for it again
      lost_ = true;
      throw;
    }
  }

  loss_window window_;
  int copy_owner_ = -1;
  int winner_ = -1;
  int rank_ = 0;
  std::uint64_t started_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t steps_ = 0;
  std::uint64_t late_ = 0;
  std::uint64_t staleness_ = 0;
  std::uint64_t max_staleness_ = 0;
  double timeout_ = 0.0;  // the channel's timeout (<= 0: none, the team)
  bool lost_ = false;
  using clock = std::chrono::steady_clock;
  clock::time_point since_{};  // when the operation in flight was posted
  [[nodiscard]] static double seconds_since(clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  }
  int exceptions_at_start_ = 0;
  phase phase_ = phase::idle;
  std::optional<Exec> exec_;  // a copy of the optimizer's: valid in the destructor too
  std::unique_ptr<election> election_;  // on the heap: the election in flight writes here, even after a move
  view<T, space> x_{};
  view<T, space> copy_{};
  staging_buffer staging_{};  // its data stays put when the run state moves
  std::unique_ptr<channel> channel_;
  // Declared after the channel and the staging buffer, so destroyed before them: requests in flight complete
  // while they live.
  request elect_;
  request share_;
};

}  // namespace tether::pull
