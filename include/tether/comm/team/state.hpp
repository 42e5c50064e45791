#pragma once
/// \file
/// The shared state of one group of the thread team (barriers, aborts, workers that returned, the slots of
/// the blocking collectives, the progress thread of the non-blocking ones) and the data phase of a blocking
/// collective.

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "tether/comm/team/reduction.hpp"
#include "tether/comm/team/thread_start.hpp"
#include "tether/comm/team/tuning.hpp"
#include "tether/core/error.hpp"

namespace tether::comm {

namespace detail {

/// The shared state of one group of workers (the whole team is a group too).
class team_state {
 public:
  explicit team_state(int size, team_tuning tuning = {})
      : size_(size), tuning_(tuning), ptrs_(static_cast<std::size_t>(size)), sizes_(static_cast<std::size_t>(size)),
        scores_(static_cast<std::size_t>(size)), next_op_(static_cast<std::size_t>(size)),
        finished_flag_(static_cast<std::size_t>(size)) {}
  team_state(const team_state&) = delete;
  team_state& operator=(const team_state&) = delete;
  ~team_state() { stop_progress(); }

  [[nodiscard]] int size() const noexcept { return size_; }
  /// The team's tuning constants.
  [[nodiscard]] const team_tuning& tuning() const noexcept { return tuning_; }

  /// Resets per-run state (called by the team before it starts its threads), its duplicates' too.
  void reset() {
    std::lock_guard lk(m_);
    arrived_ = 0;
    aborted_ = false;
    finished_ = 0;
    std::fill(finished_flag_.begin(), finished_flag_.end(), false);
    std::fill(next_op_.begin(), next_op_.end(), 0);
    collecting_.clear();
    std::erase_if(children_, [](const std::weak_ptr<team_state>& c) { return c.expired(); });
    for (auto& c : children_)
      if (auto child = c.lock()) child->reset();
  }

  /// Registers a duplicate of this group (same workers, its own collectives): it is aborted with this state
  /// and learns which workers finished, so its collectives follow the team's fault rules.
  void adopt(const std::shared_ptr<team_state>& child) {
    std::lock_guard lk(m_);
    std::erase_if(children_, [](const std::weak_ptr<team_state>& c) { return c.expired(); });
    children_.push_back(child);
    for (std::size_t r = 0; r < finished_flag_.size(); ++r)
      if (finished_flag_[r]) child->finish(static_cast<int>(r));
    if (aborted_) child->abort();
  }

  /// Every worker of the group waits here; throws when the group cannot complete the barrier.
  void barrier() {
    std::unique_lock lk(m_);
    if (aborted_) throw aborted("tether: collective interrupted: another worker of the team failed");
    const std::uint64_t gen = generation_;
    if (arrive()) return;
    cv_.wait(lk, [&] { return generation_ != gen || aborted_ || arrived_ + finished_ >= size_; });
    if (generation_ != gen) return;
    --arrived_;
    if (aborted_) throw aborted("tether: collective interrupted: another worker of the team failed");
    throw runtime_error(tether::detail::concat("tether: collective cannot complete: ", finished_,
                                               " worker(s) of the group returned while others wait"));
  }

  /// A barrier inside a collective, after its opening barrier() (see collective_phase). Every worker of the
  /// group passed the opening barrier and is known to reach it, so it is not interrupted by abort(): until
  /// all have arrived, workers may still be reading each other's buffers, and one that left on an abort could
  /// free a buffer another worker is reading.
  void inner_barrier() {
    std::unique_lock lk(m_);
    const std::uint64_t gen = generation_;
    if (arrive()) return;
    cv_.wait(lk, [&] { return generation_ != gen; });
  }

  /// Marks the team as failed and wakes every waiting worker (its duplicates' too).
  void abort() {
    std::lock_guard lk(m_);
    aborted_ = true;
    cv_.notify_all();
    for (auto& c : children_)
      if (auto child = c.lock()) child->abort();
  }

  /// A worker's function returned: collectives that still need it cannot complete (nor its duplicates').
  void finish(int rank) {
    std::lock_guard lk(m_);
    if (!finished_flag_[static_cast<std::size_t>(rank)]) {
      ++finished_;
      finished_flag_[static_cast<std::size_t>(rank)] = true;
    }
    cv_.notify_all();
    for (auto& c : children_)
      if (auto child = c.lock()) child->finish(rank);
  }

  // Slots for the blocking collectives: each worker writes its own slot before a barrier and reads the
  // others' after it; a closing barrier keeps the next collective from overwriting a slot still being read.
  std::vector<const void*>& ptrs() noexcept { return ptrs_; }
  std::vector<std::size_t>& sizes() noexcept { return sizes_; }
  std::vector<double>& scores() noexcept { return scores_; }

  /// Grows the shared scratch buffer (call only while posting, before the first barrier of a collective).
  void* scratch(std::size_t bytes) {
    std::lock_guard lk(m_);
    if (scratch_.size() * sizeof(double) < bytes) scratch_.resize((bytes + sizeof(double) - 1) / sizeof(double));
    return scratch_.data();
  }
  void* scratch_data() noexcept { return scratch_.data(); }

  /// Posts this worker's part of a non-blocking all-reduce; returns the operation.
  /// `reduce` does the arithmetic on the progress thread (the host loop, or kernels of an execution space).
  template <class T>
  std::shared_ptr<pending_reduction> post_reduction(int rank, const T* send, T* recv, std::size_t n,
                                                    std::function<void(pending_reduction&)> reduce = {}) {
    if (!reduce) reduce = [block = tuning_.reduce_block](pending_reduction& op) { reduce_in_rank_order<T>(op, block); };
    return post(rank, send, recv, n, 0, "iallreduce_sum", std::move(reduce));
  }

  /// Posts this worker's part of a non-blocking collective `what` (its buffers, element count and tag, which
  /// must agree across workers); the first poster's `run` carries it out on the progress thread once every
  /// worker has posted. Returns the operation.
  std::shared_ptr<pending_reduction> post(int rank, const void* send, void* recv, std::size_t n, long tag,
                                          const char* what, std::function<void(pending_reduction&)> run) {
    std::unique_lock lk(m_);
    if (aborted_) throw aborted(tether::detail::concat("tether: ", what, ": another worker of the team failed"));
    const std::uint64_t seq = next_op_[static_cast<std::size_t>(rank)]++;
    auto& op = collecting_[seq];
    if (!op) {
      op = std::make_shared<pending_reduction>();
      op->send.resize(static_cast<std::size_t>(size_));
      op->recv.resize(static_cast<std::size_t>(size_));
      op->count = n;
      op->seq = seq;
      op->tag = tag;
      op->what = what;
      op->reduce = std::move(run);
    }
    auto self = op;
    if (op->failure.empty()) {
      if (std::string_view(what) != op->what)
        op->failure = tether::detail::concat("tether: ", what, ": workers called different non-blocking ",
                                             "collectives: rank ", rank, " called ", what, ", another rank called ",
                                             op->what);
      else if (n != op->count)
        op->failure = tether::detail::concat("tether: ", what, ": buffer sizes differ across workers: rank ", rank,
                                             " has ", n, ", another rank has ", op->count);
      else if (tag != op->tag)
        op->failure = tether::detail::concat("tether: ", what, ": workers disagree: rank ", rank, " gave ", tag,
                                             ", another rank gave ", op->tag);
    }
    op->send[static_cast<std::size_t>(rank)] = send;
    op->recv[static_cast<std::size_t>(rank)] = recv;
    if (++op->posted == size_) {
      collecting_.erase(seq);
      if (self->failure.empty()) {
        self->state = pending_reduction::phase::queued;
        queue_.push_back(self);
        start_progress(*self);
      } else {
        self->state = pending_reduction::phase::cancelled;
      }
      cv_.notify_all();
    }
    return self;
  }

  /// Blocks until the operation has completed; throws if it failed or never can complete.
  void wait_reduction(int rank, const std::shared_ptr<pending_reduction>& op) {
    const std::uint64_t seq = op->seq;
    using ph = pending_reduction::phase;
    std::unique_lock lk(m_);
    cv_.wait(lk, [&] {
      return op->state == ph::done || op->state == ph::cancelled ||
             (op->state == ph::collecting && (aborted_ || missing_poster(seq)));
    });
    if (op->state == ph::done) return;
    if (!op->failure.empty()) {
      if (op->fault) throw runtime_error(op->failure);
      throw error(op->failure);
    }
    if (aborted_)
      throw aborted(tether::detail::concat("tether: ", op->what, " interrupted: another worker of the team failed"));
    throw runtime_error(tether::detail::concat("tether: ", op->what, " on rank ", rank,
                                               " cannot complete: a worker of the group returned without posting"));
  }

  /// True when wait_reduction will not block: the operation completed, failed, or never can complete (the team
  /// was aborted, or a worker returned without posting), so a worker that polls learns it too.
  [[nodiscard]] bool reduction_done(const std::shared_ptr<pending_reduction>& op) {
    using ph = pending_reduction::phase;
    std::lock_guard lk(m_);
    return op->state == ph::done || op->state == ph::cancelled ||
           (op->state == ph::collecting && (aborted_ || missing_poster(op->seq)));
  }

 private:
  /// Counts this worker in at a barrier (under the lock). True when it was the last to arrive: the barrier's
  /// generation advanced and every waiting worker was woken.
  bool arrive() {
    if (++arrived_ != size_) return false;
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return true;
  }

  bool missing_poster(std::uint64_t seq) const {
    for (std::size_t r = 0; r < finished_flag_.size(); ++r)
      if (finished_flag_[r] && next_op_[r] <= seq) return true;
    return false;
  }

  /// Starts the progress thread if it is not running (under the lock). If the system refuses the thread, the
  /// operation just queued is cancelled with a runtime fault, so every worker's wait throws instead of waiting
  /// forever; the next operation tries again.
  void start_progress(pending_reduction& op) {
    if (progress_.joinable()) return;
    try {
      progress_ = start_team_thread<std::thread>(team_thread::progress, -1, [this] { progress_loop(); });
    } catch (const std::system_error& e) {
      queue_.pop_back();
      op.state = pending_reduction::phase::cancelled;
      op.fault = true;
      op.failure = tether::detail::concat("tether: ", op.what, ": the system could not start the team's progress ",
                                          "thread for non-blocking collectives: ", e.what());
    }
  }

  void progress_loop() {
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      auto op = queue_.front();
      queue_.pop_front();
      if (aborted_) {
        op->state = pending_reduction::phase::cancelled;
        cv_.notify_all();
        continue;
      }
      op->state = pending_reduction::phase::running;
      lk.unlock();
      op->reduce(*op);
      lk.lock();
      op->state = pending_reduction::phase::done;
      cv_.notify_all();
    }
  }

  void stop_progress() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
      cv_.notify_all();
    }
    if (progress_.joinable()) progress_.join();
  }

  int size_;
  team_tuning tuning_;
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  std::uint64_t generation_ = 0;
  bool aborted_ = false;
  int finished_ = 0;
  bool stop_ = false;
  std::vector<const void*> ptrs_;
  std::vector<std::size_t> sizes_;
  std::vector<double> scores_;
  std::vector<double> scratch_;
  std::vector<std::uint64_t> next_op_;
  std::vector<bool> finished_flag_;
  std::map<std::uint64_t, std::shared_ptr<pending_reduction>> collecting_;
  std::deque<std::shared_ptr<pending_reduction>> queue_;
  std::vector<std::weak_ptr<team_state>> children_;
  std::thread progress_;
};

/// The data phase of a blocking collective: from its opening barrier() to its last inner barrier. Workers
/// read and write each other's buffers in it, so none may leave it early: the inner barriers ignore an
/// abort, and a worker that throws inside the phase (a size check, a failed kernel) still takes its place in
/// the remaining inner barriers on the way out, so the others neither read its freed buffers nor wait for it
/// forever. Construct it right after the opening barrier has returned.
class collective_phase {
 public:
  collective_phase(team_state& st, int inner_barriers) noexcept : st_(&st), left_(inner_barriers) {}
  collective_phase(const collective_phase&) = delete;
  collective_phase& operator=(const collective_phase&) = delete;
  ~collective_phase() {
    while (left_ > 0) sync();
  }
  /// The next inner barrier.
  void sync() {
    --left_;
    st_->inner_barrier();
  }

 private:
  team_state* st_;
  int left_;
};

}  // namespace detail

}  // namespace tether::comm
