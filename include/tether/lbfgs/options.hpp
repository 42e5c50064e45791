#pragma once
/// \file
/// lbfgs::options, lbfgs::result and their checks: what Sandblaster L-BFGS is asked to do and what it reports
/// (docs/algorithms/sandblaster_lbfgs.md#options).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tether/core/error.hpp"

namespace tether::lbfgs {

/// Largest history m: the coordinator's dot-product matrix is (2m+1)^2 and a shard's direction kernel
/// combines at most 2m+1 vectors.
inline constexpr std::size_t max_history = 32;

/// The More-Thuente line search's parameters (the defaults are libLBFGS's).
struct line_search_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"ftol", "gtol", "xtol", "min_step", "max_step", "max_evaluations"};
  double ftol = 1e-4;                ///< sufficient decrease: f(a) <= f(0) + ftol * a * f'(0); in (0, 0.5)
  double gtol = 0.9;                 ///< curvature (strong Wolfe): |f'(a)| <= gtol * |f'(0)|; in (ftol, 1)
  double xtol = 1e-16;               ///< smallest relative width of the interval of uncertainty; >= 0
  double min_step = 1e-20;           ///< smallest step; > 0
  double max_step = 1e20;            ///< largest step; > min_step
  std::size_t max_evaluations = 40;  ///< evaluations of one line search before it fails; > 0
};

/// Checkpoints of a run (docs/algorithms/sandblaster_lbfgs.md#checkpoints): every worker writes its own file
/// `path + ".rank" + r` after every `every`-th iteration, and a run given `resume_from` starts from the files
/// `resume_from + ".rank" + r` instead of x.
struct checkpoint_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"path", "every", "resume_from"};
  std::string path{};         ///< the files' stem; empty: no checkpoints are written
  std::size_t every = 0;      ///< write after iterations every, 2 every, ...; 0 = never (path must be empty)
  std::string resume_from{};  ///< empty: start from x; otherwise the stem of the files to resume from
};

/// One iteration (one accepted line search) as the coordinator saw it.
struct iteration_record {
  std::size_t iteration = 0;            ///< 1, 2, ...
  double f = 0.0;                       ///< objective at the accepted point
  double gradient_norm = 0.0;           ///< |g| there
  double step = 0.0;                    ///< the accepted step along the direction
  std::size_t evaluations = 0;          ///< batches (line-search trials) of this iteration
  std::size_t portions = 0;             ///< portion results added (portions x batches)
  std::size_t duplicates = 0;           ///< portion results dropped: a copy already counted, or a stale batch
  std::size_t backups = 0;              ///< backup copies handed out
  std::uint64_t coordinator_bytes = 0;  ///< bytes the coordinator's commands and replies moved (scalars only)
  double seconds = 0.0;                 ///< wall time of the iteration
  bool restarted = false;     ///< the history was dropped before this iteration (failed search, ascent)
  bool pair_skipped = false;  ///< the curvature guard dropped this iteration's (s, y)
};

/// What Sandblaster L-BFGS is asked to do. Every worker passes the same options (checked under MPI).
struct options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {
      "history", "epsilon", "past", "delta", "max_iterations", "line_search", "curvature_epsilon", "portions",
      "shards", "queue_depth", "backups", "backup_threshold", "max_copies", "backup_after", "timeout",
      "coordinator", "seed", "checkpoint", "on_iteration"};
  std::size_t history = 6;         ///< m: the (s, y) pairs kept, 1..max_history
  double epsilon = 1e-5;           ///< converged when |g| <= epsilon * max(1, |x|) (libLBFGS's test); >= 0
  std::size_t past = 0;            ///< 0, or stop when |f(k - past) - f(k)| / |f(k)| < delta
  double delta = 0.0;              ///< the relative decrease of the `past` test; >= 0
  std::size_t max_iterations = 0;  ///< iterations (accepted line searches) before stopping; 0 = no limit
  line_search_options line_search{};
  double curvature_epsilon = 2.220446049250313e-16;  ///< a pair is kept only if s'y > curvature_epsilon * y'y
  std::size_t portions =
      32;                  ///< portions of the data per batch, >= 1 (more than the samples: one sample each)
  std::size_t shards = 0;  ///< shards of every vector, shard s on worker s % p; 0 = one per worker
  std::size_t queue_depth = 2;  ///< portions a replica holds at once (one computing, the others queued); >= 1
  bool backups = true;          ///< backup copies of outstanding portions near the end of a batch
  double backup_threshold = 0.0;  ///< fraction of a batch's portions done before backups start, in [0, 1]
  std::size_t max_copies = 2;     ///< copies of one portion at most (the first and its backups); >= 1
  double backup_after = 1.5;      ///< a backup once a portion is out this many times the typical time; >= 0
  double timeout = 300.0;         ///< seconds a worker waits for a message before it fails; > 0
  int coordinator = 0;            ///< the coordinating worker
  std::uint64_t seed = 0;         ///< batch::seed of every evaluation (objectives with noise)
  /// Writing checkpoints, and resuming from them (docs/algorithms/sandblaster_lbfgs.md#checkpoints).
  checkpoint_options checkpoint{};
  /// Called on the coordinator after each iteration (progress, logging); not compared across workers.
  std::function<void(const iteration_record&)> on_iteration{};
};

/// How a run ended.
enum class outcome : std::uint8_t {
  converged,           ///< |g| <= epsilon * max(1, |x|)
  stalled,             ///< the `past`/`delta` decrease test held
  max_iterations,      ///< options::max_iterations reached
  line_search_failed,  ///< the line search failed from steepest descent too (x is the last accepted point)
  non_finite_start,    ///< f or the gradient is not finite at the start point (x is unchanged)
};

/// A readable name of an outcome.
[[nodiscard]] inline const char* to_string(outcome o) noexcept {
  switch (o) {
    case outcome::converged:
      return "converged";
    case outcome::stalled:
      return "stalled";
    case outcome::max_iterations:
      return "max_iterations";
    case outcome::line_search_failed:
      return "line_search_failed";
    case outcome::non_finite_start:
      return "non_finite_start";
  }
  return "unknown";
}

/// What a run did. Every worker gets the same result, except its own `bytes_sent` and `bytes_received`.
struct result {
  outcome status = outcome::max_iterations;
  std::string message;  ///< the outcome in words, naming the values that decided it
  std::size_t iterations = 0;
  std::size_t function_evaluations = 0;  ///< batches: the start point and every line-search trial
  std::size_t gradient_evaluations = 0;  ///< the same: every batch computes f and the gradient
  double f = 0.0;                        ///< objective at the returned x
  double gradient_norm = 0.0;            ///< |g| at the returned x
  std::size_t restarts = 0;       ///< steepest-descent restarts (failed line search, non-descent direction)
  std::size_t pairs_skipped = 0;  ///< (s, y) pairs dropped by the curvature guard
  std::size_t portions = 0;       ///< portion results added, over the run
  std::size_t duplicates = 0;     ///< portion results dropped as duplicates or stale, over the run
  std::size_t backups = 0;        ///< backup copies handed out, over the run
  std::size_t lost_workers = 0;   ///< replicas that never answered and were left behind (MPI: a dead rank)
  std::uint64_t coordinator_bytes = 0;  ///< bytes of the coordinator's commands and of the replies to it
  std::uint64_t bytes_sent = 0;         ///< this worker's payload bytes sent
  std::uint64_t bytes_received = 0;     ///< this worker's payload bytes received
  double seconds = 0.0;
  std::vector<iteration_record> history;  ///< one record per iteration
};

/// Throws tether::error naming the first option that cannot work.
inline void validate(const options& o) {
  using detail::require;
  require(o.history >= 1 && o.history <= max_history, "sandblaster_lbfgs: history (m) must be in [1, ",
          max_history, "], got history = ", o.history);
  require(std::isfinite(o.epsilon) && o.epsilon >= 0.0,
          "sandblaster_lbfgs: epsilon must be finite and >= 0, got epsilon = ", o.epsilon);
  require(std::isfinite(o.delta) && o.delta >= 0.0,
          "sandblaster_lbfgs: delta must be finite and >= 0, got delta = ", o.delta);
  require(std::isfinite(o.curvature_epsilon) && o.curvature_epsilon >= 0.0,
          "sandblaster_lbfgs: curvature_epsilon must be finite and >= 0, got curvature_epsilon = ",
          o.curvature_epsilon);
  const auto& ls = o.line_search;
  require(std::isfinite(ls.ftol) && ls.ftol > 0.0 && ls.ftol < 0.5,
          "sandblaster_lbfgs: line_search.ftol must be in (0, 0.5), got ftol = ", ls.ftol);
  require(std::isfinite(ls.gtol) && ls.gtol > ls.ftol && ls.gtol < 1.0,
          "sandblaster_lbfgs: line_search.gtol must be in (ftol, 1), got gtol = ", ls.gtol,
          " (ftol = ", ls.ftol, ")");
  require(std::isfinite(ls.xtol) && ls.xtol >= 0.0,
          "sandblaster_lbfgs: line_search.xtol must be finite and >= 0, "
          "got xtol = ",
          ls.xtol);
  require(std::isfinite(ls.min_step) && ls.min_step > 0.0,
          "sandblaster_lbfgs: line_search.min_step must be finite and > 0, got min_step = ", ls.min_step);
  require(std::isfinite(ls.max_step) && ls.max_step > ls.min_step,
          "sandblaster_lbfgs: line_search.max_step must be finite and > min_step, got max_step = ",
          ls.max_step, " (min_step = ", ls.min_step, ")");
  require(ls.max_evaluations >= 1, "sandblaster_lbfgs: line_search.max_evaluations must be >= 1, got 0");
  require(o.portions >= 1, "sandblaster_lbfgs: portions must be >= 1, got portions = 0");
  require(o.queue_depth >= 1, "sandblaster_lbfgs: queue_depth must be >= 1, got queue_depth = 0");
  require(
      std::isfinite(o.backup_threshold) && o.backup_threshold >= 0.0 && o.backup_threshold <= 1.0,
      "sandblaster_lbfgs: backup_threshold must be in [0, 1], got backup_threshold = ", o.backup_threshold);
  require(std::isfinite(o.backup_after) && o.backup_after >= 0.0,
          "sandblaster_lbfgs: backup_after must be finite and >= 0, got backup_after = ", o.backup_after);
  require(o.max_copies >= 1, "sandblaster_lbfgs: max_copies must be >= 1, got max_copies = 0");
  require(std::isfinite(o.timeout) && o.timeout > 0.0,
          "sandblaster_lbfgs: timeout must be a finite number of seconds > 0, got timeout = ", o.timeout);
  require(o.checkpoint.every == 0 || !o.checkpoint.path.empty(),
          "sandblaster_lbfgs: checkpoint.every = ", o.checkpoint.every,
          " needs a checkpoint.path (it is empty)");
  require(o.checkpoint.every > 0 || o.checkpoint.path.empty(), "sandblaster_lbfgs: checkpoint.path = \"",
          o.checkpoint.path, "\" needs checkpoint.every > 0 (it is 0: no checkpoint would be written)");
}

}  // namespace tether::lbfgs
