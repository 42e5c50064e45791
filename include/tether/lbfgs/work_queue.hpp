#pragma once
/// \file
/// lbfgs::work_queue: the coordinator's queue of the portions of a batch. Portions go, in order, to the
/// replicas as they become free (load balancing); once none is left to hand out, idle replicas get backup
/// copies of the portions still outstanding (MapReduce's backup tasks); the first result of a portion wins
/// and later copies are dropped by portion id. Pure bookkeeping: the engine sends what it decides.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "tether/core/error.hpp"

namespace tether::lbfgs {

/// See the file comment. Every assignment a replica receives is answered exactly once (a result, or
/// `skipped` when the replica dropped it for a newer batch), so a replica that never answers (a dead rank)
/// stays busy and gets no more work.
class work_queue {
 public:
  using clock = std::chrono::steady_clock;

  /// One portion handed to one replica.
  struct assignment {
    int replica = 0;
    std::size_t portion = 0;
    bool backup = false;
  };

  /// What a reported result is to the batch.
  enum class report : std::uint8_t {
    first,      ///< the portion's first result: it counts
    duplicate,  ///< another copy of this portion already counted
    stale,      ///< a result of an earlier batch
  };

  struct settings {
    std::size_t depth = 2;  ///< assignments a replica holds at once
    bool backups = true;
    double backup_threshold = 0.0;  ///< fraction of the batch done before backups
    std::size_t max_copies = 2;     ///< copies of a portion at most
    double backup_after = 1.5;      ///< a portion gets a backup once outstanding this many typical times
  };

  work_queue(int replicas, settings s) : s_(s), held_(static_cast<std::size_t>(replicas)) {
    detail::require(replicas >= 1, "work_queue: replicas must be >= 1, got ", replicas);
  }

  /// Starts batch `batch` of `portions` portions. Assignments of earlier batches still held by replicas stay
  /// until those replicas answer them.
  void start(std::uint64_t batch, std::size_t portions) {
    if (!times_.empty()) previous_times_ = std::move(times_);
    times_.clear();
    batch_ = batch;
    portions_ = portions;
    done_.assign(portions, false);
    copies_.assign(portions, 0);
    first_assigned_.assign(portions, clock::time_point{});
    done_count_ = 0;
    unassigned_.clear();
    for (std::size_t k = 0; k < portions; ++k) unassigned_.push_back(k);
  }

  /// Hands out what can be handed out now (appended to `out`): queued portions to replicas holding fewer than
  /// `depth` assignments, the least loaded first; then, with backups on, no portion left to hand out and at
  /// least backup_threshold of the batch done, one backup copy to each idle replica (holding nothing): among
  /// the outstanding portions handed out more than backup_after typical times ago (the median time from
  /// handing a portion out to its first result, in this batch and the one before), the one with the fewest
  /// copies, the one handed out first among those.
  void schedule(std::vector<assignment>& out, clock::time_point now) {
    while (!unassigned_.empty()) {
      const int r = least_loaded();
      if (r < 0) break;
      const std::size_t k = unassigned_.front();
      unassigned_.pop_front();
      give(r, k, false, now, out);
    }
    if (!s_.backups || !unassigned_.empty() || complete()) return;
    if (static_cast<double>(done_count_) < s_.backup_threshold * static_cast<double>(portions_)) return;
    bool idle = false;
    for (const auto& h : held_) idle = idle || h.empty();
    if (!idle) return;
    const auto typical = typical_time();
    if (!typical) return;
    const auto due = now - std::chrono::duration_cast<clock::duration>(s_.backup_after * *typical);
    for (std::size_t r = 0; r < held_.size(); ++r) {
      if (!held_[r].empty()) continue;
      std::size_t best = portions_;
      for (std::size_t k = 0; k < portions_; ++k) {
        if (done_[k] || copies_[k] == 0 || copies_[k] >= s_.max_copies ||
            (s_.backup_after > 0.0 && first_assigned_[k] >= due))
          continue;
        if (best == portions_ || copies_[k] < copies_[best] ||
            (copies_[k] == copies_[best] && first_assigned_[k] < first_assigned_[best]))
          best = k;
      }
      if (best == portions_) break;
      give(static_cast<int>(r), best, true, now, out);
    }
  }

  /// When the next backup copy falls due, if one can: the coordinator waits for messages until then at most.
  [[nodiscard]] std::optional<clock::time_point> backup_due() const {
    if (!s_.backups || !unassigned_.empty() || complete()) return std::nullopt;
    if (static_cast<double>(done_count_) < s_.backup_threshold * static_cast<double>(portions_))
      return std::nullopt;
    bool idle = false;
    for (const auto& h : held_) idle = idle || h.empty();
    const auto typical = typical_time();
    if (!idle || !typical) return std::nullopt;
    std::optional<clock::time_point> due;
    const auto wait = std::chrono::duration_cast<clock::duration>(s_.backup_after * *typical);
    for (std::size_t k = 0; k < portions_; ++k) {
      if (done_[k] || copies_[k] == 0 || copies_[k] >= s_.max_copies) continue;
      const auto t = first_assigned_[k] + wait;
      if (!due || t < *due) due = t;
    }
    return due;
  }

  /// Replica `r` returned the result of portion k of `batch`.
  report done(int r, std::uint64_t batch, std::size_t k, clock::time_point now = clock::now()) {
    const auto since = release(r, batch, k);
    if (batch != batch_ || k >= portions_) return report::stale;
    if (done_[k]) return report::duplicate;
    if (since) times_.push_back(now - *since);
    done_[k] = true;
    ++done_count_;
    return report::first;
  }

  /// Replica `r` dropped its assignment of portion k of `batch` unanswered (a newer batch had started).
  void skipped(int r, std::uint64_t batch, std::size_t k) { release(r, batch, k); }

  /// True when every portion of the current batch has a result.
  [[nodiscard]] bool complete() const noexcept { return done_count_ == portions_; }
  [[nodiscard]] std::size_t done_count() const noexcept { return done_count_; }
  [[nodiscard]] std::uint64_t batch() const noexcept { return batch_; }
  /// Backup copies handed out so far.
  [[nodiscard]] std::size_t backups() const noexcept { return backups_; }

  /// The assignments replica r holds: (batch, portion, when).
  struct held {
    std::uint64_t batch;
    std::size_t portion;
    clock::time_point since;
  };
  [[nodiscard]] const std::vector<held>& holding(int r) const { return held_[static_cast<std::size_t>(r)]; }

  /// The replicas holding a copy of portion k of `batch` (to tell them it is done).
  [[nodiscard]] std::vector<int> holders(std::uint64_t batch, std::size_t k) const {
    std::vector<int> out;
    for (std::size_t r = 0; r < held_.size(); ++r)
      for (const auto& h : held_[r])
        if (h.batch == batch && h.portion == k) {
          out.push_back(static_cast<int>(r));
          break;
        }
    return out;
  }

  /// Replicas holding an assignment older than `age`: they never answered (dead, or stalled that long).
  [[nodiscard]] std::vector<int> silent(clock::time_point now, clock::duration age) const {
    std::vector<int> out;
    for (std::size_t r = 0; r < held_.size(); ++r)
      for (const auto& h : held_[r])
        if (now - h.since > age) {
          out.push_back(static_cast<int>(r));
          break;
        }
    return out;
  }

  /// The portions of the current batch without a result yet.
  [[nodiscard]] std::vector<std::size_t> outstanding() const {
    std::vector<std::size_t> out;
    for (std::size_t k = 0; k < portions_; ++k)
      if (!done_[k]) out.push_back(k);
    return out;
  }

 private:
  int least_loaded() const {
    int best = -1;
    for (std::size_t r = 0; r < held_.size(); ++r) {
      if (held_[r].size() >= s_.depth) continue;
      if (best < 0 || held_[r].size() < held_[static_cast<std::size_t>(best)].size())
        best = static_cast<int>(r);
    }
    return best;
  }

  void give(int r, std::size_t k, bool backup, clock::time_point now, std::vector<assignment>& out) {
    held_[static_cast<std::size_t>(r)].push_back({batch_, k, now});
    if (copies_[k] == 0) first_assigned_[k] = now;
    ++copies_[k];
    if (backup) ++backups_;
    out.push_back({r, k, backup});
  }

  /// Removes replica r's assignment (batch, k); returns when it was handed out, if r held it.
  std::optional<clock::time_point> release(int r, std::uint64_t batch, std::size_t k) {
    auto& h = held_.at(static_cast<std::size_t>(r));
    const auto it =
        std::find_if(h.begin(), h.end(), [&](const held& a) { return a.batch == batch && a.portion == k; });
    if (it == h.end()) return std::nullopt;
    const auto since = it->since;
    h.erase(it);
    return since;
  }

  /// The median time from handing a portion out to its first result, over this batch and the one before;
  /// none before the first result.
  std::optional<std::chrono::duration<double>> typical_time() const {
    std::vector<clock::duration> all(times_.begin(), times_.end());
    all.insert(all.end(), previous_times_.begin(), previous_times_.end());
    if (all.empty()) return std::nullopt;
    const auto mid = all.begin() + static_cast<std::ptrdiff_t>(all.size() / 2);
    std::nth_element(all.begin(), mid, all.end());
    return std::chrono::duration<double>(*mid);
  }

  settings s_;
  std::vector<std::vector<held>> held_;
  std::uint64_t batch_ = 0;
  std::size_t portions_ = 0;
  std::vector<bool> done_;
  std::vector<std::size_t> copies_;
  std::vector<clock::time_point> first_assigned_;
  std::size_t done_count_ = 0;
  std::deque<std::size_t> unassigned_;
  std::size_t backups_ = 0;
  std::vector<clock::duration> times_;           // hand-out to first result, this batch
  std::vector<clock::duration> previous_times_;  // and the batch before
};

}  // namespace tether::lbfgs
