#pragma once
/// \file
/// ps::membership: the replicas of a parameter server as the shards see them: waiting (for the warm start),
/// live, done (finished) or lost; each replica's lease (renewed whenever it is heard from) and the record of
/// the replicas declared lost. Thread-safe: the state of a replica changes by one atomic transition, so a
/// replica is declared lost at most once and a finished one never.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "tether/ps/stats.hpp"

namespace tether::ps {

/// Where a replica stands.
enum class replica_state : std::uint8_t {
  waiting,  ///< registered, waiting for the warm start to end (not counted by the consistency rule)
  live,     ///< taking steps
  done,     ///< finished (finish() called)
  lost,     ///< declared lost: failed, or its lease expired; its later pushes are dropped
};

/// The replicas of one store: states, clock bases, leases, losses. See the file comment.
class membership {
 public:
  using clock = std::chrono::steady_clock;

  /// `replicas` replicas, all live, or only `first_live` when `warm` (the others wait for the warm start).
  /// `lease` seconds without news makes a replica lost (<= 0: never).
  membership(int replicas, double lease, bool warm, int first_live = 0)
      : n_(replicas), lease_(lease), start_(clock::now()), slots_(new slot[static_cast<std::size_t>(replicas)]) {
    for (int r = 0; r < n_; ++r) {
      auto& s = at(r);
      s.state.store(!warm || r == first_live ? replica_state::live : replica_state::waiting,
                    std::memory_order_relaxed);
      s.seen.store(now_ns(), std::memory_order_relaxed);
    }
  }

  [[nodiscard]] int size() const noexcept { return n_; }
  [[nodiscard]] double lease() const noexcept { return lease_; }
  [[nodiscard]] replica_state state(int r) const noexcept { return at(r).state.load(std::memory_order_acquire); }
  [[nodiscard]] bool live(int r) const noexcept { return state(r) == replica_state::live; }
  [[nodiscard]] bool lost(int r) const noexcept { return state(r) == replica_state::lost; }
  /// Done or lost: the replica takes no more steps that count.
  [[nodiscard]] bool gone(int r) const noexcept {
    const auto s = state(r);
    return s == replica_state::done || s == replica_state::lost;
  }
  /// The replica's clock base: the pushes the store counts for it before it became live (the warm start's).
  [[nodiscard]] std::uint64_t base(int r) const noexcept { return at(r).base.load(std::memory_order_acquire); }
  /// Steps the replica reported with its last renewal.
  [[nodiscard]] std::uint64_t steps(int r) const noexcept { return at(r).steps.load(std::memory_order_relaxed); }

  /// Waiting -> live, its clock starting at `base`. False when it was not waiting.
  bool make_live(int r, std::uint64_t base) noexcept {
    auto& s = at(r);
    s.base.store(base, std::memory_order_relaxed);
    auto expected = replica_state::waiting;
    return s.state.compare_exchange_strong(expected, replica_state::live, std::memory_order_acq_rel);
  }

  /// Waiting or live -> live, with clock base `base` and `steps` steps, its lease renewed (a checkpoint's replica
  /// restored into a new store). False when it was done or lost.
  bool restore_live(int r, std::uint64_t base, std::uint64_t steps) noexcept {
    auto& s = at(r);
    auto cur = s.state.load(std::memory_order_acquire);
    if (cur != replica_state::waiting && cur != replica_state::live) return false;
    s.base.store(base, std::memory_order_release);
    renew(r, steps);
    return s.state.compare_exchange_strong(cur, replica_state::live, std::memory_order_acq_rel);
  }

  /// Waiting or live -> done. False when it was lost (or already done).
  bool finish(int r) noexcept { return leave(r, replica_state::done); }

  /// Waiting or live -> lost, recorded with `why`, its steps and `pushes_applied`. False when it was
  /// already done or lost (a replica is declared lost at most once).
  bool lose(int r, loss_reason why, std::uint64_t pushes_applied) {
    if (!leave(r, replica_state::lost)) return false;
    std::lock_guard lk(m_);
    losses_.push_back({r, why, seconds(), steps(r), pushes_applied});
    return true;
  }

  /// The replica was heard from, having taken `steps` steps.
  void renew(int r, std::uint64_t steps) noexcept {
    auto& s = at(r);
    s.steps.store(steps, std::memory_order_relaxed);
    s.seen.store(now_ns(), std::memory_order_relaxed);
  }
  /// The replica was heard from (its step count unchanged).
  void renew(int r) noexcept { at(r).seen.store(now_ns(), std::memory_order_relaxed); }

  /// The waiting or live replicas not heard from for longer than the lease.
  [[nodiscard]] std::vector<int> expired() const {
    std::vector<int> out;
    if (lease_ <= 0.0) return out;
    const auto limit = static_cast<std::int64_t>(lease_ * 1e9);
    const std::int64_t now = now_ns();
    for (int r = 0; r < n_; ++r) {
      const auto s = state(r);
      if ((s == replica_state::live || s == replica_state::waiting) &&
          now - at(r).seen.load(std::memory_order_relaxed) > limit)
        out.push_back(r);
    }
    return out;
  }

  /// Every replica done or lost.
  [[nodiscard]] bool settled() const noexcept {
    for (int r = 0; r < n_; ++r)
      if (!gone(r)) return false;
    return true;
  }

  /// The replicas declared lost so far, in the order they were.
  [[nodiscard]] std::vector<replica_loss> losses() const {
    std::lock_guard lk(m_);
    return losses_;
  }

  /// Seconds since the store opened.
  [[nodiscard]] double seconds() const noexcept {
    return std::chrono::duration<double>(clock::now() - start_).count();
  }

 private:
  struct slot {
    std::atomic<replica_state> state{replica_state::live};
    std::atomic<std::uint64_t> base{0};
    std::atomic<std::uint64_t> steps{0};
    std::atomic<std::int64_t> seen{0};
  };

  bool leave(int r, replica_state to) noexcept {
    auto& s = at(r).state;
    auto cur = s.load(std::memory_order_acquire);
    while (cur == replica_state::waiting || cur == replica_state::live)
      if (s.compare_exchange_weak(cur, to, std::memory_order_acq_rel)) return true;
    return false;
  }

  [[nodiscard]] std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - start_).count();
  }
  [[nodiscard]] slot& at(int r) const noexcept { return slots_[static_cast<std::size_t>(r)]; }

  int n_;
  double lease_;
  clock::time_point start_;
  std::unique_ptr<slot[]> slots_;
  mutable std::mutex m_;
  std::vector<replica_loss> losses_;
};

}  // namespace tether::ps
