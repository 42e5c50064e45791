#pragma once
/// \file
/// tether::optimizer: a step policy, a pull policy, a communicator and an execution space composed at
/// compile time. Each worker owns one optimizer and calls step(x, g, loss) after computing its gradient;
/// the step and the pull are applied in one fused pass over the parameters:
///
///     x[i] <- x[i] - delta(step_ctx, x[i], g[i], state[i]...) - force(pull_ctx, x[i], target[i]...)
///
/// Per-step scalars (decayed rates, bias corrections, pull coefficients) are computed once on the host.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <string>
#include <typeinfo>
#include <type_traits>
#include <optional>
#include <utility>

#include "tether/core/checkpoint.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/config.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/fnv1a.hpp"
#include "tether/core/fused_update.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/options_description.hpp"
#include "tether/core/schedule.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/step_env.hpp"
#include "tether/core/step_reductions.hpp"
#include "tether/core/sums.hpp"
#include "tether/core/value_range.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"

namespace tether {

namespace detail {
/// The state a pull's read_state() gives when it drains to be saved (optimizer::load); an empty struct otherwise.
template <class P, bool Drains>
struct pull_record_of {
  struct type {};
};
template <class P>
struct pull_record_of<P, true> {
  using type = decltype(std::declval<const P&>().read_state(std::declval<checkpoint_reader&>(), std::size_t{}));
};
}  // namespace detail

/// What to do with a non-finite loss or gradient.
enum class nonfinite_policy {
  skip,   ///< skip the gradient step and count it (the pull still takes part in rounds)
  raise,  ///< throw tether::runtime_error
};

/// Predicate of a non-finite element.
template <class T>
using nonfinite_element = kernels::nonfinite<T>;

/// Options of an optimizer, filled with designated initializers: `{.lr = 0.05, .pull = {.period = 16}}`.
template <class Step, class Pull>
struct optimizer_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {
      "lr", "step", "pull", "schedule", "on_nonfinite", "skip_limit", "check_gradient", "on_round"};
  double lr = 0.01;                                     ///< base learning rate (eta)
  typename Step::options step{};                        ///< the step policy's options
  typename Pull::options pull{};                        ///< the pull policy's options
  tether::schedule schedule{};                          ///< learning-rate schedule over steps
  nonfinite_policy on_nonfinite = nonfinite_policy::skip;
  /// With `skip`: the most consecutive steps skipped for a non-finite loss or gradient; one more in a row
  /// throws tether::runtime_error naming the worker (a worker that can no longer compute anything finite is
  /// broken, not unlucky). 0 = skip without limit.
  std::uint32_t skip_limit = 100;
  bool check_gradient = true;                           ///< scan g for NaN/Inf (one extra read of g)
  std::function<void(const worker_stats&)> on_round{};  ///< called after each communication round
};

/// A distributed optimizer for one worker. See docs/concepts.md and docs/architecture.md.
template <class Step, class Pull, class Comm, class Exec = exec::serial, class T = float>
class optimizer {
  static_assert(std::is_floating_point_v<T>, "tether::optimizer: T must be float or double");
  static_assert(step_policy<Step, T>,
                "tether::optimizer: Step does not satisfy tether::step_policy (see docs/concepts.md#step-policy)");
  static_assert(pull_policy<Pull, T>,
                "tether::optimizer: Pull does not satisfy tether::pull_policy (see docs/concepts.md#pull-policy)");
  static_assert(communicator<Comm>,
                "tether::optimizer: Comm does not satisfy tether::communicator (see docs/concepts.md#communicator)");
  static_assert(execution_space<Exec>, "tether::optimizer: Exec does not satisfy tether::execution_space "
                                       "(see docs/concepts.md#execution-space)");

 public:
  using value_type = T;
  using step_type = Step;
  using pull_type = Pull;
  using comm_type = Comm;
  using exec_type = Exec;
  using memory_space = typename Exec::memory_space;
  using env_type = step_env<Comm, Exec>;
  /// The pull as this optimizer holds it: Pull, or its per-run state for Comm, Exec and T (Pull::bind).
  using bound_pull_type = bound_pull_t<Pull, Comm, Exec, T>;
  static_assert(pull_policy<bound_pull_type, T> &&
                    std::same_as<typename bound_pull_type::options, typename Pull::options> &&
                    bound_pull_type::buffers == Pull::buffers,
                "tether::optimizer: Pull::bind<Comm, Exec, T> must be a pull policy with Pull's options and "
                "buffers (see docs/concepts.md#pull-state-bound-to-its-environment)");
  static_assert(pull_policy_for<bound_pull_type, T, env_type, memory_space>,
                "tether::optimizer: Pull's start/before/after hooks do not accept this communicator and "
                "execution space (see docs/concepts.md#pull-policy)");
  /// True when the pull has communication in flight between steps that save() completes first
  /// (drain(env, x, b)), and whose state it writes (save(w)), reads without changing anything
  /// (read_state(r, n), for n parameters) and sets (restore(env, x, b, record), which opens what start()
  /// would have where this optimizer has not started yet: the asynchronous pulls' private channel).
  static constexpr bool drains_to_save =
      requires(const bound_pull_type& cp, bound_pull_type& p, checkpoint_writer& w, checkpoint_reader& r,
               env_type& e, view<T, memory_space> x, pull_buffers<T, Pull::buffers, memory_space> b) {
        p.drain(e, x, b);
        cp.save(w);
        p.restore(e, x, b, cp.read_state(r, std::size_t{}));
      };

  using options = optimizer_options<Step, Pull>;

 private:
  /// The per-step reductions the step asks for (none for most steps).
  static constexpr reduction_request wanted = reductions_of<Step>();
  static_assert(!wanted.any() || reducing_execution_space<Exec>,
                "tether::optimizer: the step asks for per-step reductions (core/step_reductions.hpp), but the "
                "execution space has no reduce(n, init, f) (see docs/concepts.md#execution-space)");

 public:

  /// An optimizer for `n` parameters on worker `comm` whose kernels run on `exec` (the execution space comes
  /// first, as in every tether function that takes one). Validates every option (tether::error on bad input).
  optimizer(Exec exec, Comm& comm, std::size_t n, options o = {})
      : comm_(&comm), exec_(std::move(exec)), n_(n), opt_(std::move(o)) {
    // Communicators across processes (comm::mpi, comm::hierarchical) check in one collective that every
    // rank has the same parameter count and options, so a mismatch is a clear error, not a hang.
    if constexpr (requires(std::span<const consistency_item> s) { comm.check_consistent(s); }) {
      const std::array<consistency_item, 2> items{{{n, "the parameter count n"},
                                                   options_item(opt_, "the optimizer options")}};
      comm.check_consistent(std::span<const consistency_item>(items));
    }
    detail::require(std::isfinite(opt_.lr) && opt_.lr >= 0.0, "optimizer: lr must be finite and >= 0, got lr = ",
                    opt_.lr);
    detail::require(detail::fits_value_type<T>(opt_.lr), "optimizer: lr must fit the optimizer's value type ",
                    detail::value_type_name<T>(), " (at most ", std::numeric_limits<T>::max(), "), got lr = ",
                    opt_.lr);
    opt_.schedule.validate();
    step_.opt = opt_.step;
    pull_.opt = opt_.pull;
    step_.validate();
    pull_.validate(comm.size());
    for (std::size_t k = 0; k != Step::state_size; ++k)
      state_[k] = exec_.template allocate<T>(n, step_.template initial<T>(k));
    for (std::size_t k = 0; k != Pull::buffers; ++k) targets_[k] = exec_.template allocate<T>(n, T(0));
  }

  /// An optimizer for `n` parameters on worker `comm`, on a default-constructed execution space.
  optimizer(Comm& comm, std::size_t n, options o = {}) : optimizer(Exec{}, comm, n, std::move(o)) {}

  /// The execution space last: the spelling of earlier releases, kept so that their code compiles.
  optimizer(Comm& comm, std::size_t n, options o, Exec exec) : optimizer(std::move(exec), comm, n, std::move(o)) {}

  optimizer(const optimizer&) = delete;
  optimizer& operator=(const optimizer&) = delete;
  optimizer(optimizer&&) noexcept = default;
  optimizer& operator=(optimizer&&) noexcept = default;
  ~optimizer() = default;

  /// One step of this worker: `x` its parameters, `g` the gradient at x, `loss` the minibatch loss at x.
  /// Collective at the pull's rounds: every worker of the team must call step the same number of times.
  template <buffer X, buffer G>
  void step(X&& x, G&& g, double loss) {
    auto xv = as_view(x);
    auto gv = as_view(g);
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(xv)::value_type>, T> &&
                      std::is_same_v<std::remove_const_t<typename decltype(gv)::value_type>, T>,
                  "tether::optimizer::step: x and g must hold the optimizer's value type");
    static_assert(!std::is_const_v<typename decltype(xv)::value_type>, "tether::optimizer::step: x must be mutable");
    static_assert(mem::accessible_v<memory_space, buffer_space_t<X>> &&
                      mem::accessible_v<memory_space, buffer_space_t<G>>,
                  "tether::optimizer::step: x and g must be accessible from the execution space (a host space "
                  "cannot touch GPU memory, a GPU space cannot touch host memory: see docs/exec.md)");
    detail::require(xv.size() == n_, "optimizer::step: x has ", xv.size(), " elements, expected n = ", n_);
    detail::require(gv.size() == n_, "optimizer::step: g has ", gv.size(), " elements, expected n = ", n_);
    const view<T, memory_space> xs{xv.data(), xv.size()};
    const T* gp = gv.data();

    // The finite check of g; a step that asks for reductions (core/step_reductions.hpp) gets them from the
    // same pass over g.
    bool finite = std::isfinite(loss);
    step_reductions reductions{};
    if constexpr (wanted.any()) {
      if (finite) {
        const auto r = exec_.reduce(n_, sums<double, 3>{},
                                    kernels::step_norms<T, wanted.g_norm2, wanted.x_norm2>{gp, xs.data()});
        if (opt_.check_gradient && r[2] != 0.0) finite = false;
        reductions = {r[0], r[1]};
      }
    } else {
      if (finite && opt_.check_gradient) finite = !exec_.any(n_, nonfinite_element<T>{gp});
    }
    if (!finite) {
      if (opt_.on_nonfinite == nonfinite_policy::raise)
        throw runtime_error(detail::concat("tether: optimizer::step: non-finite ",
                                           std::isfinite(loss) ? "gradient" : "loss", " on worker ", comm_->rank(),
                                           " at step ", stats_.steps, " (loss = ", loss, ")"));
      if (opt_.skip_limit != 0 && skipped_in_a_row_ >= opt_.skip_limit)
        throw runtime_error(detail::concat("tether: optimizer::step: worker ", comm_->rank(), " had a non-finite ",
                                           std::isfinite(loss) ? "gradient" : "loss", " at ", skipped_in_a_row_ + 1,
                                           " consecutive steps (the last at step ", stats_.steps, ", loss = ", loss,
                                           "), more than skip_limit = ", opt_.skip_limit,
                                           " (0 skips without limit)"));
      ++skipped_in_a_row_;
      ++stats_.skipped_nonfinite;
    } else {
      skipped_in_a_row_ = 0;
    }

    // The rate is checked before any collective or state change, so a bad schedule loses nothing.
    double lr = 0.0;
    if (finite) {
      lr = opt_.schedule(stats_.steps, opt_.lr);
      detail::require(std::isfinite(lr) && lr >= 0.0, "optimizer::step: the schedule gave lr = ", lr, " at step ",
                      stats_.steps);
      detail::require(detail::fits_value_type<T>(lr), "optimizer::step: the schedule gave lr = ", lr, " at step ",
                      stats_.steps, ", which does not fit the optimizer's value type ", detail::value_type_name<T>(),
                      " (at most ", std::numeric_limits<T>::max(), ")");
    }
    // The step's scalars too (Adam's step size lr/(1-beta1^k) can leave T's range): a step policy that refuses
    // them throws here, before any collective or change of state.
    const auto sc = finite ? detail::prepare_step(step_, applied_ + 1, static_cast<T>(lr), reductions)
                           : typename Step::template context<T>{};

    env_type env{*comm_, exec_, stats_.steps, finite ? loss : std::numeric_limits<double>::quiet_NaN(), stats_};
    const comm_counters c0 = comm_->counters();
    const auto t0 = clock::now();
    const auto bufs = target_views();
    typename bound_pull_type::template context<T> pc{};
    bool force = false;
    try {
      if (!started_) {
        pull_.start(env, xs, bufs);
        started_ = true;
      }
      force = pull_.before(env, xs, bufs, pc);
    } catch (const peer_finished&) {
      stopped_early_elsewhere(stats_.steps + 1);
      throw;
    }
    const auto t1 = clock::now();

    if (finite) {
      ++applied_;
      if (force)
        run<true, true>(xs.data(), gp, sc, pc);
      else
        run<true, false>(xs.data(), gp, sc, pc);
    } else if (force) {
      run<false, true>(xs.data(), gp, {}, pc);
    }
    const auto t2 = clock::now();
    try {
      pull_.after(env, xs, bufs);
    } catch (const peer_finished&) {
      stopped_early_elsewhere(stats_.steps + 1);
      throw;
    }
    const auto t3 = clock::now();

    stats_.seconds_comm += seconds(t0, t1) + seconds(t2, t3);
    stats_.seconds_compute += seconds(t1, t2);
    ++stats_.steps;
    count_bytes(c0);
    if (env.round) {
      ++stats_.rounds;
      if (opt_.on_round) opt_.on_round(stats_);
    }
  }

  /// Ends the run: completes communication still in flight (Overlap-Local-SGD's pending average; the
  /// destructor also waits), then, on a communicator across processes (comm::mpi) and for a pull whose rounds
  /// keep the workers in step, checks that every rank took the same number of steps: a rank that stopped early
  /// is a tether::error on every rank naming it and the step counts (docs/reliability.md). Call it at the end
  /// of every run, before reading the pull's buffers.
  template <buffer X>
  void finish(X&& x) {
    if constexpr (requires(env_type& e) { pull_.finish(e, view<T, memory_space>{}, target_views()); }) {
      auto xv = as_view(x);
      env_type env{*comm_, exec_, stats_.steps, 0.0, stats_};
      const comm_counters c0 = comm_->counters();
      try {
        pull_.finish(env, view<T, memory_space>{xv.data(), xv.size()}, target_views());
      } catch (const peer_finished&) {
        stopped_early_elsewhere(stats_.steps);  // all steps taken, but a round of them waits for the early rank
        throw;
      }
      count_bytes(c0);
    }
    if constexpr (lockstep && requires(std::uint64_t k) { comm_->check_finish(k, true); }) {
      if (!steps_agreed_) {
        steps_agreed_ = true;
        comm_->check_finish(stats_.steps, true);
      }
    }
  }

  /// Writes this worker's complete optimizer state to a checkpoint file at `path` (write to `path.tmp`, flush,
  /// rename: a crash mid-write never replaces the last good checkpoint): the step state, the pull's buffers
  /// and round state, the counters, the schedule's position and x (docs/reliability.md#checkpoints). Under MPI
  /// every rank saves its own file. Buffers in device memory are copied through host memory (the execution
  /// space's copy_to_host). A pull with communication in flight between steps (Overlap-Local-SGD's average,
  /// the asynchronous pulls' rounds) completes it first: then every worker must save after the same step.
  template <buffer X>
  void save(const std::string& path, X&& x) {
    if constexpr (drains_to_save) {
      auto xv = as_view(x);
      detail::require(xv.size() == n_, "optimizer::save: x has ", xv.size(), " elements, expected n = ", n_);
      env_type env{*comm_, exec_, stats_.steps, 0.0, stats_};
      const comm_counters c0 = comm_->counters();
      pull_.drain(env, view<T, memory_space>{xv.data(), xv.size()}, target_views());
      count_bytes(c0);
    }
    write_checkpoint(path, std::forward<X>(x));
  }
  /// save() of a pull with nothing in flight between steps, on a const optimizer.
  template <buffer X>
  void save(const std::string& path, X&& x) const
    requires(!drains_to_save)
  {
    write_checkpoint(path, std::forward<X>(x));
  }

  /// Restores the state that save() wrote, and x. Every field is read and checked first (the file, its
  /// version and checksum, the algorithm, the options, n, the rank and the worker count): on any mismatch or
  /// damage tether::error names the file and what differs, and nothing here or in x has changed (a pull with
  /// communication in flight completes it first). A deterministic run resumed from a checkpoint is
  /// bit-identical to the run that was not interrupted.
  template <buffer X>
  void load(const std::string& path, X&& x) {
    static_assert(checkpointable, "tether::optimizer::load: the pull cannot be checkpointed (it has no save/load, "
                                  "or no drain for what it keeps in flight), or the execution space cannot copy "
                                  "its memory to the host (docs/reliability.md#checkpoints)");
    auto xv = as_view(x);
    detail::require(xv.size() == n_, "optimizer::load: x has ", xv.size(), " elements, expected n = ", n_);
    std::uint64_t applied = 0;
    std::uint32_t skipped = 0;
    bool started = false;
    worker_stats_record stats{};
    std::array<std::vector<T>, Step::state_size> state;
    std::array<std::vector<T>, Pull::buffers> targets;
    std::optional<bound_pull_type> pull;  // a pull whose state is copied: loaded into a copy, moved in at the end
    std::optional<pull_record> record;    // one with communication in flight: its state, restored at the end
    std::vector<T> xs(n_);
    std::exception_ptr failure;
    try {
      const auto bytes = read_checkpoint_file(path);
      checkpoint_reader r(bytes, path);
      read_identity(r);
      applied = r.get<std::uint64_t>("the applied steps");
      skipped = r.get<std::uint32_t>("the skipped steps in a row");
      started = r.get<std::uint8_t>("the started flag") != 0;
      stats = r.get<worker_stats_record>("the counters");
      for (auto& b : state) {
        b.resize(n_);
        r.get_array<T>(std::span<T>(b), "a step state buffer");
      }
      for (auto& b : targets) {
        b.resize(n_);
        r.get_array<T>(std::span<T>(b), "a pull buffer");
      }
      if constexpr (drains_to_save) {
        record.emplace(pull_.read_state(r, n_));
      } else {
        pull.emplace(pull_);
        pull->load(r);
      }
      r.get_array<T>(std::span<T>(xs), "the parameters");
      r.expect_end();
    } catch (const error&) {
      failure = std::current_exception();
    }
    detail::agree_on_checkpoint_step(*comm_, failure, stats.steps);
    if constexpr (drains_to_save) {
      // An operation in flight (a run that goes back to a checkpoint) completes before any buffer changes.
      env_type env{*comm_, exec_, stats_.steps, 0.0, stats_};
      pull_.drain(env, view<T, memory_space>{xv.data(), xv.size()}, target_views());
    }
    // Everything read and checked: commit. The pull's state is set last (restore may open the private
    // channel, as start() would have).
    applied_ = applied;
    skipped_in_a_row_ = skipped;
    started_ = started;
    stats.to(stats_);
    for (std::size_t k = 0; k != Step::state_size; ++k) from_host(state[k], state_[k].data());
    for (std::size_t k = 0; k != Pull::buffers; ++k) from_host(targets[k], targets_[k].data());
    if constexpr (!drains_to_save) pull_ = std::move(*pull);
    from_host(xs, xv.data());
    if constexpr (drains_to_save) {
      const view<T, memory_space> xw{xv.data(), xv.size()};
      env_type env{*comm_, exec_, stats_.steps, 0.0, stats_};
      pull_.restore(env, xw, target_views(), std::move(*record));
    }
  }

  /// Number of parameters.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// This worker's counters.
  [[nodiscard]] const worker_stats& stats() const noexcept { return stats_; }
  /// The options in force.
  [[nodiscard]] const options& opts() const noexcept { return opt_; }
  /// The step policy (with its options) and the pull policy (with its round state: leader, score...).
  [[nodiscard]] const Step& step_policy() const noexcept { return step_; }
  [[nodiscard]] const bound_pull_type& pull_policy() const noexcept { return pull_; }
  /// Step state buffer k (velocity, Adagrad sums, Adam moments), in the execution space's memory.
  [[nodiscard]] view<T, memory_space> state(std::size_t k) {
    detail::require(k < Step::state_size, "optimizer::state: k = ", k, " but the step has ", Step::state_size,
                    " state buffers");
    return {state_[k].data(), state_[k].size()};
  }
  /// Pull buffer k (leader copies, center, anchor), in the execution space's memory.
  [[nodiscard]] view<T, memory_space> target(std::size_t k) {
    detail::require(k < Pull::buffers, "optimizer::target: k = ", k, " but the pull has ", Pull::buffers,
                    " buffers");
    return {targets_[k].data(), targets_[k].size()};
  }
  /// Steps whose gradient was applied (the step policy's k).
  [[nodiscard]] std::uint64_t applied_steps() const noexcept { return applied_; }

 private:
  using clock = std::chrono::steady_clock;

  /// True when the pull's rounds keep every worker at the same step (the synchronous pulls); an asynchronous
  /// pull declares `static constexpr bool independent_steps = true;` (its workers may take different steps).
  static constexpr bool lockstep = !requires { requires Pull::independent_steps; };

  // A collective of step `step` (1-based) waited for a rank that already finished its run: join the step-count
  // agreement with it (it throws the error every rank raises).
  void stopped_early_elsewhere(std::uint64_t step) {
    if constexpr (requires(std::uint64_t k) { comm_->check_finish(k, false); }) {
      steps_agreed_ = true;
      comm_->check_finish(step, false);
    }
  }
  static double seconds(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  /// The checkpoint file of save(): identity, counters, step and pull state, x.
  template <buffer X>
  void write_checkpoint(const std::string& path, X&& x) const {
    checkpoint_writer w;
    write_identity(w);
    w.put<std::uint64_t>(applied_);
    w.put<std::uint32_t>(skipped_in_a_row_);
    w.put<std::uint8_t>(started_ ? 1 : 0);
    w.put<worker_stats_record>(worker_stats_record::of(stats_));
    detail::fence(exec_);  // the step's kernels (an asynchronous device space) are done before the copies
    for (const auto& b : state_) put_buffer(w, b.data(), b.size());
    for (const auto& b : targets_) put_buffer(w, b.data(), b.size());
    pull_.save(w);
    auto xv = as_view(x);
    detail::require(xv.size() == n_, "optimizer::save: x has ", xv.size(), " elements, expected n = ", n_);
    put_buffer(w, xv.data(), xv.size());
    write_checkpoint_file(path, w.bytes());
  }

  /// The state read_state() gives (an empty struct for the other pulls).
  using pull_record = typename detail::pull_record_of<bound_pull_type, drains_to_save>::type;

  /// Writes a buffer of the execution space's memory to a checkpoint (through host memory for another space).
  void put_buffer(checkpoint_writer& w, const T* p, std::size_t n) const {
    if constexpr (std::is_same_v<memory_space, mem::host>) {
      w.put_array<T>(std::span<const T>(p, n));
    } else {
      auto h = exec_.template allocate_host<T>(n);
      exec_.copy_to_host(p, h.data(), n);
      w.put_array<T>(std::span<const T>(h.data(), n));
    }
  }
  /// Copies values read from a checkpoint into a buffer of the execution space's memory.
  void from_host(const std::vector<T>& h, T* p) const {
    if constexpr (std::is_same_v<memory_space, mem::host>)
      std::copy(h.begin(), h.end(), p);
    else
      exec_.copy_from_host(h.data(), p, h.size());
  }

  /// True when the pull can write and read its state between steps (save/load): its state is copyable, or it
  /// drains what is in flight first; buffers in another memory than the host's go through host memory.
  static constexpr bool checkpointable =
      (std::is_same_v<memory_space, mem::host> || detail::stages_through_host<Exec, T>) &&
      (drains_to_save ||
       (std::is_copy_assignable_v<bound_pull_type> &&
        requires(const bound_pull_type& cp, bound_pull_type& p, checkpoint_writer& w, checkpoint_reader& r) {
          cp.save(w);
          p.load(r);
        }));

  /// The counters as a trivially copyable record (worker_stats itself may grow fields).
  struct worker_stats_record {
    std::uint64_t steps, rounds, skipped_nonfinite, excluded_nonfinite, leader_changes, bytes_sent, bytes_received;
    double seconds_compute, seconds_comm, score;
    std::int64_t leader;
    static worker_stats_record of(const worker_stats& s) {
      return {s.steps, s.rounds, s.skipped_nonfinite, s.excluded_nonfinite, s.leader_changes, s.bytes_sent,
              s.bytes_received, s.seconds_compute, s.seconds_comm, s.score, s.leader};
    }
    void to(worker_stats& s) const {
      s.steps = steps;
      s.rounds = rounds;
      s.skipped_nonfinite = skipped_nonfinite;
      s.excluded_nonfinite = excluded_nonfinite;
      s.leader_changes = leader_changes;
      s.bytes_sent = bytes_sent;
      s.bytes_received = bytes_received;
      s.seconds_compute = seconds_compute;
      s.seconds_comm = seconds_comm;
      s.score = score;
      s.leader = static_cast<int>(leader);
    }
  };

  /// What a checkpoint must match: the algorithm (step, pull and value types), the options, n, the rank and
  /// the number of workers.
  static std::uint64_t algorithm_fingerprint() {
    std::uint64_t h = detail::fnv1a_offset;
    for (const char* name : {typeid(Step).name(), typeid(Pull).name(), typeid(T).name()})
      h = detail::fnv1a(name, h);
    return h;
  }
  void write_identity(checkpoint_writer& w) const {
    static_assert(checkpointable, "tether::optimizer::save: the pull cannot be checkpointed (it has no save/load, "
                                  "or no drain for what it keeps in flight), or the execution space cannot copy "
                                  "its memory to the host (docs/reliability.md#checkpoints)");
    w.put<std::uint64_t>(algorithm_fingerprint());
    w.put<std::uint64_t>(options_fingerprint(opt_));
    w.put<std::uint64_t>(n_);
    w.put<std::int32_t>(comm_->rank());
    w.put<std::int32_t>(comm_->size());
  }
  void read_identity(checkpoint_reader& r) const {
    if (r.get<std::uint64_t>("the algorithm") != algorithm_fingerprint())
      throw error(detail::concat("tether: checkpoint ", r.path(), ": written by another algorithm (step, pull or ",
                                 "value type) than this optimizer's"));
    if (r.get<std::uint64_t>("the options") != options_fingerprint(opt_))
      throw error(detail::concat("tether: checkpoint ", r.path(), ": written with other options than this "
                                 "optimizer's"));
    r.expect_equal<std::uint64_t>(r.get<std::uint64_t>("n"), n_, "n");
    r.expect_equal<std::int32_t>(r.get<std::int32_t>("the rank"), comm_->rank(), "rank");
    r.expect_equal<std::int32_t>(r.get<std::int32_t>("the worker count"), comm_->size(), "workers");
  }

  /// Adds what the communicator moved since `before` to this optimizer's byte counts: the traffic of its own
  /// steps and finish(), not the communicator's running total (another optimizer on the same communicator
  /// counts its own).
  void count_bytes(const comm_counters& before) {
    const comm_counters& now = comm_->counters();
    stats_.bytes_sent += now.bytes_sent - before.bytes_sent;
    stats_.bytes_received += now.bytes_received - before.bytes_received;
  }

  pull_buffers<T, Pull::buffers, memory_space> target_views() {
    pull_buffers<T, Pull::buffers, memory_space> v{};
    for (std::size_t k = 0; k != Pull::buffers; ++k) v[k] = {targets_[k].data(), targets_[k].size()};
    return v;
  }

  template <bool WithStep, bool WithForce>
  void run(T* x, const T* g, typename Step::template context<T> sc,
           typename bound_pull_type::template context<T> pc) {
    fused_update<Step, bound_pull_type, T, WithStep, WithForce> k{x, g, {}, {}, sc, pc};
    for (std::size_t j = 0; j != Step::state_size; ++j) k.s[j] = state_[j].data();
    for (std::size_t j = 0; j != Pull::buffers; ++j) k.b[j] = targets_[j].data();
    exec_.parallel_for(n_, k);
  }

  Comm* comm_;
  Exec exec_;
  std::size_t n_;
  options opt_;
  Step step_{};
  std::array<typename Exec::template buffer<T>, Step::state_size> state_{};
  std::array<typename Exec::template buffer<T>, Pull::buffers> targets_{};
  worker_stats stats_{};
  std::uint64_t applied_ = 0;
  std::uint32_t skipped_in_a_row_ = 0;  // consecutive non-finite steps, for skip_limit
  bool started_ = false;
  bool steps_agreed_ = false;  // finish() ran the step-count agreement (once per run)
  bound_pull_type pull_{};  // last: destroyed first, so communication in flight completes before its buffers go
};

}  // namespace tether
