#pragma once
/// \file
/// lbfgs::coordinator: Sandblaster's coordinator as scalars only. It holds the dot-product matrix of the
/// history, the line search and the stopping tests; it turns the result of each batch (the loss, summed over
/// the portions, and the shards' dot products, summed over the shards) into the next command: another trial
/// point for the shards, or stop. It never sees a vector.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/lbfgs/more_thuente.hpp"
#include "tether/lbfgs/options.hpp"
#include "tether/lbfgs/shard.hpp"
#include "tether/lbfgs/two_loop.hpp"

namespace tether::lbfgs {

/// The coordinator's state at the end of an iteration, what a checkpoint keeps of it: the history's dot
/// products and ring, the counters, the loss, |g|, |x|, the `past` window and the iteration records. The line
/// search starts afresh at every iteration, so it has no state there.
struct coordinator_state {
  std::size_t count = 0;       ///< pairs stored
  std::size_t newest = 0;      ///< the newest pair's slot
  std::vector<double> matrix;  ///< dot_matrix::values()
  std::uint64_t batch = 0;     ///< the last batch number
  std::size_t iterations = 0;
  std::size_t evaluations = 0;
  std::size_t restarts = 0;
  std::size_t pairs_skipped = 0;
  double f = 0.0;
  double gradient_norm = 0.0;
  double x_norm = 0.0;
  std::vector<double> past;  ///< the `past` window (options::past values)
  std::vector<iteration_record> history;
};

/// The coordinator's next command: evaluate a trial point (a `trial_command` for every shard) or stop.
struct command {
  bool stop = false;
  trial_command trial{};  ///< when !stop; when stop, `store` and `slot` of the accepted trial's pair
  bool commit = false;    ///< when stop: the last trial was accepted and is the result
  outcome status = outcome::max_iterations;  ///< when stop
  std::string message;                       ///< when stop
  /// Set when a checkpoint is due (the iteration just accepted ends a checkpoint interval): the state there.
  std::optional<coordinator_state> checkpoint;
};

/// See the file comment. Usage: `start()`, then `on_batch(f, dots)` with every batch's result until the
/// command says stop; `summary()` and `history()` describe the run.
class coordinator {
 public:
  using clock = std::chrono::steady_clock;

  explicit coordinator(const options& o) : o_(o), b_(o.history) {}

  /// The first command: evaluate the start point.
  [[nodiscard]] command start() {
    started_ = clock::now();
    iteration_started_ = started_;
    command c;
    c.trial.batch = batch_;
    c.trial.initial = true;
    return c;
  }

  /// The result of the batch of the last command: f (summed over the portions in portion order) and the dot
  /// products of dot_index (summed over the shards in shard order). Returns the next command.
  [[nodiscard]] command on_batch(double f, std::span<const double> dots) {
    detail::require(dots.size() == dot_index::count(o_.history),
                    "sandblaster_lbfgs: coordinator: ", dots.size(), " dot products, expected ",
                    dot_index::count(o_.history));
    ++evaluations_;
    ++iteration_evaluations_;
    if (!search_) return after_start(f, dots);
    const search_state st = search_->update(f, dots[dot_index::gt_d]);
    if (st == search_state::evaluate) return trial(search_->step(), {});
    if (st == search_state::converged) return accept(f, dots);
    // The search failed: from steepest descent already, stop; otherwise drop the history and retry from -g.
    if (b_.count() == 0) {
      return stop(false, outcome::line_search_failed,
                  detail::concat("the line search failed from steepest descent: ", search_->failure(),
                                 "; x is the last accepted point (f = ", f_, ", |g| = ", gnorm_, ")"));
    }
    ++restarts_;
    restarted_ = true;
    b_.clear();
    return steepest_descent(false, false, 0);
  }

  /// Starts from a checkpoint's state (taken by state() at the end of an iteration): the first command is the
  /// one the uninterrupted run sent after that iteration, without its commit (the shards hold that point).
  [[nodiscard]] command resume(coordinator_state st) {
    started_ = clock::now();
    iteration_started_ = started_;
    b_.restore(st.count, st.newest, std::move(st.matrix));
    batch_ = st.batch;
    iterations_ = st.iterations;
    evaluations_ = st.evaluations;
    restarts_ = st.restarts;
    pairs_skipped_ = st.pairs_skipped;
    f_ = st.f;
    gnorm_ = st.gradient_norm;
    xnorm_ = st.x_norm;
    past_ = std::move(st.past);
    history_ = std::move(st.history);
    if (reached_max_iterations()) return stop_at_max_iterations(false);
    return descend(false, false, 0);
  }

  /// The state now; a command's `checkpoint` holds it as it was at the end of its iteration.
  [[nodiscard]] coordinator_state state() const {
    coordinator_state st;
    st.count = b_.count();
    st.newest = b_.newest();
    st.matrix = b_.values();
    st.batch = batch_;
    st.iterations = iterations_;
    st.evaluations = evaluations_;
    st.restarts = restarts_;
    st.pairs_skipped = pairs_skipped_;
    st.f = f_;
    st.gradient_norm = gnorm_;
    st.x_norm = xnorm_;
    st.past = past_;
    st.history = history_;
    return st;
  }

  [[nodiscard]] std::size_t iterations() const noexcept { return iterations_; }
  [[nodiscard]] std::size_t evaluations() const noexcept { return evaluations_; }
  [[nodiscard]] double f() const noexcept { return f_; }
  [[nodiscard]] double gradient_norm() const noexcept { return gnorm_; }
  [[nodiscard]] std::size_t restarts() const noexcept { return restarts_; }
  [[nodiscard]] std::size_t pairs_skipped() const noexcept { return pairs_skipped_; }
  [[nodiscard]] const std::vector<iteration_record>& history() const noexcept { return history_; }
  [[nodiscard]] std::vector<iteration_record>& history() noexcept { return history_; }
  [[nodiscard]] const dot_matrix& matrix() const noexcept { return b_; }

 private:
  command after_start(double f, std::span<const double> dots) {
    const double gg = dots[dot_index::gt_gt];
    f_ = f;
    gnorm_ = std::sqrt(gg);
    xnorm_ = std::sqrt(dots[dot_index::xt_xt]);
    if (!std::isfinite(f) || !std::isfinite(gg))
      return stop(
          false, outcome::non_finite_start,
          detail::concat("the objective is not finite at the start point: f = ", f, ", |g|^2 = ", gg));
    if (o_.past > 0) {
      past_.assign(o_.past, 0.0);
      past_[0] = f;
    }
    b_.set(b_.g(), b_.g(), gg);
    if (gnorm_ <= o_.epsilon * std::max(1.0, xnorm_))
      return stop(true, outcome::converged,
                  detail::concat("the start point is a minimizer: |g| = ", gnorm_,
                                 " <= epsilon * max(1, |x|) = ", o_.epsilon * std::max(1.0, xnorm_)));
    return steepest_descent(true, false, 0);
  }

  /// The line search accepted the last trial.
  command accept(double f, std::span<const double> dots) {
    const double step = search_->step();
    ++iterations_;
    f_ = f;
    gnorm_ = std::sqrt(dots[dot_index::gt_gt]);
    xnorm_ = std::sqrt(dots[dot_index::xt_xt]);
    const double sy = dots[dot_index::s_y];
    const double yy = dots[dot_index::y_y];
    const bool store = std::isfinite(sy) && std::isfinite(yy) && sy > o_.curvature_epsilon * yy && yy > 0.0;
    const std::size_t slot = b_.next_slot();
    update_matrix(dots, store, slot);
    if (!store) ++pairs_skipped_;

    const auto now = clock::now();
    iteration_record rec;
    rec.iteration = iterations_;
    rec.f = f_;
    rec.gradient_norm = gnorm_;
    rec.step = step;
    rec.evaluations = iteration_evaluations_;
    rec.seconds = std::chrono::duration<double>(now - iteration_started_).count();
    rec.restarted = restarted_;
    rec.pair_skipped = !store;
    history_.push_back(rec);
    iteration_started_ = now;
    iteration_evaluations_ = 0;
    restarted_ = false;

    const double bound = o_.epsilon * std::max(1.0, xnorm_);
    if (gnorm_ <= bound)
      return stop(true, outcome::converged,
                  detail::concat("|g| = ", gnorm_, " <= epsilon * max(1, |x|) = ", bound, " after ",
                                 iterations_, " iterations"));
    if (o_.past > 0) {
      const std::size_t k = iterations_ % o_.past;
      if (o_.past <= iterations_) {
        const double rate = (past_[k] - f_) / f_;
        if (std::abs(rate) < o_.delta)
          return stop(true, outcome::stalled,
                      detail::concat("|f(k - ", o_.past, ") - f(k)| / |f(k)| = ", std::abs(rate),
                                     " < delta = ", o_.delta, " after ", iterations_, " iterations"));
      }
      past_[k] = f_;
    }
    // The end of an iteration that the run goes on from (or stops at by max_iterations): a checkpoint's
    // state.
    std::optional<coordinator_state> saved;
    if (o_.checkpoint.every != 0 && iterations_ % o_.checkpoint.every == 0) saved = state();
    command c = reached_max_iterations() ? stop_at_max_iterations(true) : descend(true, store, slot);
    if (c.stop) {  // the shards keep the last pair only for a checkpoint (the matrix holds it)
      c.trial.store = store;
      c.trial.slot = slot;
    }
    c.checkpoint = std::move(saved);
    return c;
  }

  [[nodiscard]] bool reached_max_iterations() const noexcept {
    return o_.max_iterations != 0 && iterations_ >= o_.max_iterations;
  }

  command stop_at_max_iterations(bool commit) {
    return stop(commit, outcome::max_iterations,
                detail::concat("max_iterations = ", o_.max_iterations, " reached; |g| = ", gnorm_));
  }

  /// The next direction from the history (or steepest descent when it is not a descent direction) and its
  /// line search; `commit`, `store` and `slot` tell the shards what to do first with the last trial.
  command descend(bool commit, bool store, std::size_t slot) {
    std::vector<double> delta = two_loop(b_);
    const double gd = combination_dot(b_, delta, b_.g());
    if (!(gd < 0.0) || !std::isfinite(gd)) {
      // Not a descent direction (rounding in a badly conditioned history): restart from steepest descent.
      ++restarts_;
      restarted_ = true;
      b_.clear();
      return steepest_descent(commit, store, slot);
    }
    search_.emplace(o_.line_search, f_, gd, 1.0);
    command c = trial(search_->step(), std::move(delta));
    c.trial.commit = commit;
    c.trial.store = store;
    c.trial.slot = slot;
    return c;
  }

  /// d = -g, first step 1/|g| (libLBFGS's and LBFGS++'s first step).
  command steepest_descent(bool commit, bool store, std::size_t slot) {
    std::vector<double> delta(b_.size(), 0.0);
    delta[b_.g()] = -1.0;
    const double gg = b_.at(b_.g(), b_.g());
    search_.emplace(o_.line_search, f_, -gg, 1.0 / std::sqrt(gg));
    command c = trial(search_->step(), std::move(delta));
    c.trial.commit = commit;
    c.trial.store = store;
    c.trial.slot = slot;
    return c;
  }

  command trial(double alpha, std::vector<double> delta) {
    command c;
    c.trial.batch = ++batch_;
    c.trial.alpha = alpha;
    c.trial.delta = std::move(delta);
    return c;
  }

  command stop(bool commit, outcome status, std::string message) {
    command c;
    c.stop = true;
    c.commit = commit;
    c.status = status;
    c.message = std::move(message);
    return c;
  }

  /// The dot products after the last trial was accepted: its pair into `slot` (when stored) and the new g's
  /// row.
  void update_matrix(std::span<const double> d, bool store, std::size_t slot) {
    const std::size_t g = b_.g();
    // Slots that stay: every stored one but the slot the new pair overwrites.
    std::vector<std::size_t> kept;
    for (std::size_t i = 0; i < b_.count(); ++i)
      if (!store || b_.slot(i) != slot) kept.push_back(b_.slot(i));
    if (store) {
      for (const std::size_t j : kept) {
        b_.set(b_.s(slot), b_.s(j), d[dot_index::slot(j, 0)]);
        b_.set(b_.s(slot), b_.y(j), d[dot_index::slot(j, 1)]);
        b_.set(b_.y(slot), b_.s(j), d[dot_index::slot(j, 2)]);
        b_.set(b_.y(slot), b_.y(j), d[dot_index::slot(j, 3)]);
      }
      b_.set(b_.s(slot), b_.s(slot), d[dot_index::s_s]);
      b_.set(b_.s(slot), b_.y(slot), d[dot_index::s_y]);
      b_.set(b_.y(slot), b_.y(slot), d[dot_index::y_y]);
      b_.set(g, b_.s(slot), d[dot_index::s_gt]);
      b_.set(g, b_.y(slot), d[dot_index::y_gt]);
      b_.push();
    }
    for (const std::size_t j : kept) {
      b_.set(g, b_.s(j), d[dot_index::slot(j, 4)]);
      b_.set(g, b_.y(j), d[dot_index::slot(j, 5)]);
    }
    b_.set(g, g, d[dot_index::gt_gt]);
  }

  options o_;
  dot_matrix b_;
  std::optional<more_thuente> search_;
  std::uint64_t batch_ = 0;
  std::size_t iterations_ = 0;
  std::size_t evaluations_ = 0;
  std::size_t iteration_evaluations_ = 0;
  std::size_t restarts_ = 0;
  std::size_t pairs_skipped_ = 0;
  bool restarted_ = false;
  double f_ = 0.0;
  double gnorm_ = 0.0;
  double xnorm_ = 0.0;
  std::vector<double> past_;
  std::vector<iteration_record> history_;
  clock::time_point started_{};
  clock::time_point iteration_started_{};
};

}  // namespace tether::lbfgs
