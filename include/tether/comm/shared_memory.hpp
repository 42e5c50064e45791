#pragma once
/// \file
/// comm::shared_memory: a team of p threads in one process, each a worker with rank() and size() and the
/// collectives the pulls need. The embedded default communicator: no MPI needed.
///
///     tether::comm::shared_memory team(4);              // 4 workers, one group
///     tether::comm::shared_memory team(4, {.group_size = 2});  // 2 groups of 2 (LSGD local leaders)
///     team.run([&](tether::comm::shared_memory::worker& w) { ... per-worker code ... });
///
/// Every collective must be called by every worker of its group in the same order (as with MPI). Results are
/// deterministic: reductions add the workers' values in rank order, whatever the thread timing.
/// If a worker throws, the others are released from any collective with tether::aborted and run() rethrows
/// the original exception on the caller's thread.
///
/// Non-blocking collectives (iallreduce_sum, ibroadcast, imin_loc) are posted by each worker and carried out
/// by the team's progress thread once every worker of the group has posted; test() never blocks. For
/// protocols that run in the background (asynchronous LSGD), duplicate() gives a private handle whose
/// operations never pair with the program's own; open_center() shares one buffer among the workers
/// (asynchronous EASGD). Both follow the fault rules above. See docs/algorithms/async.md.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "tether/core/collectives.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/request.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/view.hpp"

namespace tether::comm {

namespace detail {

/// A non-blocking collective in flight (all-reduce, broadcast, election): posted by each worker, carried out
/// by the team's progress thread once every worker has posted.
struct pending_reduction {
  enum class phase { collecting, queued, running, done, cancelled };
  std::vector<const void*> send;
  std::vector<void*> recv;
  std::size_t count = 0;
  long tag = 0;                      // must agree across workers too (a broadcast's root)
  const char* what = "iallreduce_sum";  // the operation, for error messages
  int posted = 0;
  phase state = phase::collecting;
  std::function<void(pending_reduction&)> reduce;
  std::string failure;  // set when the workers disagreed on the size or the tag
};

template <class T>
void reduce_in_rank_order(pending_reduction& op) {
  constexpr std::size_t block = 4096;
  T acc[block];
  const std::size_t p = op.send.size();
  for (std::size_t lo = 0; lo < op.count; lo += block) {
    const std::size_t len = std::min(block, op.count - lo);
    const T* s0 = static_cast<const T*>(op.send[0]) + lo;
    for (std::size_t i = 0; i < len; ++i) acc[i] = s0[i];
    for (std::size_t r = 1; r < p; ++r) {
      const T* s = static_cast<const T*>(op.send[r]) + lo;
      for (std::size_t i = 0; i < len; ++i) acc[i] += s[i];
    }
    for (std::size_t r = 0; r < p; ++r) std::memcpy(static_cast<T*>(op.recv[r]) + lo, acc, len * sizeof(T));
  }
}

/// The rank-order sum of a pending reduction by kernels of an execution space (buffers in its memory):
/// recv[0] = send[0] + send[1] + ..., then copied into every other recv buffer.
template <class T, class Exec>
void reduce_in_rank_order_on(const Exec& exec, pending_reduction& op) {
  const std::size_t p = op.send.size();
  if (op.count == 0) return;
  T* dst = static_cast<T*>(op.recv[0]);
  std::vector<const T*> src(p);
  for (std::size_t r = 0; r < p; ++r) src[r] = static_cast<const T*>(op.send[r]);
  exec.parallel_for(op.count, kernels::copy<T>{src[0], dst});
  tether::detail::accumulate_in_order<T>(exec, op.count, dst, std::span<const T* const>(src).subspan(1));
  for (std::size_t r = 1; r < p; ++r)
    exec.parallel_for(op.count, kernels::copy<T>{dst, static_cast<T*>(op.recv[r])});
  tether::detail::fence(exec);
}

/// The shared state of one group of workers (the whole team is a group too).
class team_state {
 public:
  explicit team_state(int size)
      : size_(size), ptrs_(static_cast<std::size_t>(size)), sizes_(static_cast<std::size_t>(size)),
        scores_(static_cast<std::size_t>(size)), next_op_(static_cast<std::size_t>(size)),
        finished_flag_(static_cast<std::size_t>(size)) {}
  team_state(const team_state&) = delete;
  team_state& operator=(const team_state&) = delete;
  ~team_state() { stop_progress(); }

  [[nodiscard]] int size() const noexcept { return size_; }

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
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
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
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
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
  std::vector<float>& scores() noexcept { return scores_; }

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
    return post(rank, send, recv, n, 0, "iallreduce_sum",
                reduce ? std::move(reduce) : std::function<void(pending_reduction&)>(&reduce_in_rank_order<T>));
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
        if (!progress_.joinable()) progress_ = std::thread([this] { progress_loop(); });
      } else {
        self->state = pending_reduction::phase::cancelled;
      }
      cv_.notify_all();
    }
    return self;
  }

  /// Blocks until the operation has completed; throws if it failed or never can complete.
  void wait_reduction(int rank, const std::shared_ptr<pending_reduction>& op, std::uint64_t seq) {
    using ph = pending_reduction::phase;
    std::unique_lock lk(m_);
    cv_.wait(lk, [&] {
      return op->state == ph::done || op->state == ph::cancelled ||
             (op->state == ph::collecting && (aborted_ || missing_poster(seq)));
    });
    if (op->state == ph::done) return;
    if (!op->failure.empty()) throw error(op->failure);
    if (aborted_)
      throw aborted(tether::detail::concat("tether: ", op->what, " interrupted: another worker of the team failed"));
    throw runtime_error(tether::detail::concat("tether: ", op->what, " on rank ", rank,
                                               " cannot complete: a worker of the group returned without posting"));
  }

  [[nodiscard]] bool reduction_done(const std::shared_ptr<pending_reduction>& op) {
    std::lock_guard lk(m_);
    return op->state == pending_reduction::phase::done || op->state == pending_reduction::phase::cancelled;
  }

  [[nodiscard]] std::uint64_t current_op(int rank) {
    std::lock_guard lk(m_);
    return next_op_[static_cast<std::size_t>(rank)];
  }

 private:
  bool missing_poster(std::uint64_t seq) const {
    for (std::size_t r = 0; r < finished_flag_.size(); ++r)
      if (finished_flag_[r] && next_op_[r] <= seq) return true;
    return false;
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
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  std::uint64_t generation_ = 0;
  bool aborted_ = false;
  int finished_ = 0;
  bool stop_ = false;
  std::vector<const void*> ptrs_;
  std::vector<std::size_t> sizes_;
  std::vector<float> scores_;
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

/// Options of a thread team.
struct shared_memory_options {
  int group_size = 0;  ///< workers per group (LSGD's local leaders); 0 = one group of all workers
};

namespace detail {

/// The storage of a center shared by a team (asynchronous EASGD): the values and one lock per block.
template <class T>
struct center_store {
  static constexpr std::size_t block = 16384;  ///< elements per lock (64 KiB of floats)
  explicit center_store(std::span<const T> initial)
      : data(initial.begin(), initial.end()), locks(new std::mutex[(initial.size() + block - 1) / block]) {}
  [[nodiscard]] std::size_t blocks() const noexcept { return (data.size() + block - 1) / block; }
  std::vector<T> data;
  std::unique_ptr<std::mutex[]> locks;
};

}  // namespace detail

/// A team of threads in one process. Each thread is a worker; see the file comment.
class shared_memory {
 public:
  using options = shared_memory_options;

  template <class T>
  class center;

  /// A worker's handle: its rank, the team size, and the collectives. Passed to the function given to run().
  class worker {
   public:
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;
    worker(worker&&) = delete;
    worker& operator=(worker&&) = delete;
    ~worker() = default;

    [[nodiscard]] int rank() const noexcept { return rank_; }
    [[nodiscard]] int size() const noexcept { return state_->size(); }

    /// This worker's group (a node, in LSGD's multi-leader setting); the team itself when there is one group.
    [[nodiscard]] worker& group() noexcept { return group_ ? *group_ : *this; }
    /// Index of this worker's group and the number of groups.
    [[nodiscard]] int group_id() const noexcept { return group_id_; }
    [[nodiscard]] int group_count() const noexcept { return group_count_; }

    /// Bytes moved by this worker's collectives (its group's included).
    [[nodiscard]] const comm_counters& counters() const noexcept { return *counters_; }
    /// Adds traffic done outside the collectives (protocols built on the team, such as a shared center).
    void count(std::uint64_t sent, std::uint64_t received) noexcept {
      counters_->bytes_sent += sent;
      counters_->bytes_received += received;
      ++counters_->collectives;
    }

    void barrier() { state_->barrier(); }

    /// A new handle over the same workers with its own collectives (collective: every worker of this handle's
    /// group calls it, in the same order as its other collectives). Its operations never pair with this
    /// handle's, so a protocol can run non-blocking collectives in the background while the program runs its
    /// own (asynchronous LSGD and EASGD do). Its traffic counts on this handle's counters; it follows the
    /// team's fault rules (released when a worker throws or returns early) and must not outlive the team.
    [[nodiscard]] std::unique_ptr<worker> duplicate() {
      auto& st = *state_;
      std::shared_ptr<detail::team_state> fresh;
      if (rank_ == 0) {
        fresh = std::make_shared<detail::team_state>(size());
        st.adopt(fresh);
      }
      st.ptrs()[static_cast<std::size_t>(rank_)] = &fresh;
      st.barrier();
      {
        detail::collective_phase phase(st, 1);
        if (rank_ != 0) fresh = *static_cast<const std::shared_ptr<detail::team_state>*>(st.ptrs()[0]);
        phase.sync();  // rank 0's `fresh` is read until here
      }
      std::unique_ptr<worker> d(new worker(fresh.get(), rank_, counters_));
      d->owned_ = std::move(fresh);
      d->group_id_ = group_id_;
      d->group_count_ = group_count_;
      return d;
    }

    /// Marks this handle's group as failed: every worker's collectives on it, pending or future, throw
    /// tether::aborted (what run() does to the whole team when a worker throws). A protocol calls it on its
    /// private duplicate() when its own worker fails, so that no other worker waits for it there.
    void abort() noexcept { state_->abort(); }

    /// In-place sum over the workers, added in rank order (the same bits on every worker).
    template <class T>
    void allreduce_sum(std::span<T> data) {
      static_assert(std::is_arithmetic_v<T>, "allreduce_sum needs an arithmetic element type");
      auto& st = *state_;
      const std::size_t p = static_cast<std::size_t>(size());
      const std::size_t me = static_cast<std::size_t>(rank_);
      const std::size_t n = data.size();
      st.ptrs()[me] = data.data();
      st.sizes()[me] = n;
      st.scratch(n * sizeof(T));
      st.barrier();
      detail::collective_phase phase(st, 2);
      check_sizes("allreduce_sum");
      T* scratch = static_cast<T*>(st.scratch_data());
      const std::size_t lo = n * me / p;
      const std::size_t hi = n * (me + 1) / p;
      const T* first = static_cast<const T*>(st.ptrs()[0]);
      for (std::size_t i = lo; i < hi; ++i) scratch[i] = first[i];
      for (std::size_t r = 1; r < p; ++r) {
        const T* src = static_cast<const T*>(st.ptrs()[r]);
        for (std::size_t i = lo; i < hi; ++i) scratch[i] += src[i];
      }
      phase.sync();
      if (n != 0) std::memcpy(data.data(), scratch, n * sizeof(T));  // data() and scratch may be null when n = 0
      phase.sync();
      // Reduce-scatter then all-gather: (p-1)/p of the buffer in, and as much out, in each phase.
      const std::uint64_t moved = 2 * (n - (hi - lo)) * sizeof(T);
      count(moved, moved);
    }

    /// Non-blocking sum: `recv` receives the rank-order sum of every worker's `send` when the request
    /// completes. The team's progress thread does the arithmetic while the workers compute. Neither buffer
    /// may be touched until wait() returns.
    template <class T>
    [[nodiscard]] request iallreduce_sum(std::span<const T> send, std::span<T> recv) {
      static_assert(std::is_arithmetic_v<T>, "iallreduce_sum needs an arithmetic element type");
      tether::detail::require(send.size() == recv.size(), "iallreduce_sum: send and recv sizes differ: send has ",
                              send.size(), ", recv has ", recv.size());
      auto* st = state_;
      const std::uint64_t seq = st->current_op(rank_);
      auto op = st->post_reduction<T>(rank_, send.data(), recv.data(), send.size());
      const std::uint64_t bytes = send.size() * sizeof(T);
      count(bytes, bytes);
      const int r = rank_;
      return request([st, op, r, seq] { st->wait_reduction(r, op, seq); },
                     [st, op] { return st->reduction_done(op); });
    }

    /// In-place sum of a buffer in an execution space's memory (GPU memory shared by the team's threads):
    /// each worker adds one slice of every worker's buffer in rank order with `exec`'s kernels and writes the
    /// sum into all of them. No host copy; the same bits as the host overload.
    template <class T, class Space, class Exec>
    void allreduce_sum(view<T, Space> data, const Exec& exec) {
      static_assert(std::is_arithmetic_v<T>, "allreduce_sum needs an arithmetic element type");
      auto& st = *state_;
      const std::size_t p = static_cast<std::size_t>(size());
      const std::size_t me = static_cast<std::size_t>(rank_);
      const std::size_t n = data.size();
      tether::detail::fence(exec);  // this worker's kernels that wrote `data` are complete
      st.ptrs()[me] = data.data();
      st.sizes()[me] = n;
      st.barrier();
      detail::collective_phase phase(st, 1);
      check_sizes("allreduce_sum");
      const std::size_t lo = n * me / p;
      const std::size_t hi = n * (me + 1) / p;
      if (hi > lo) {
        // Only this worker touches [lo, hi) of any buffer until the closing barrier.
        std::vector<T*> bufs(p);
        for (std::size_t r = 0; r < p; ++r)
          bufs[r] = const_cast<T*>(static_cast<const T*>(st.ptrs()[r])) + lo;
        const std::vector<const T*> rest(bufs.begin() + 1, bufs.end());
        tether::detail::accumulate_in_order<T>(exec, hi - lo, bufs[0], rest);
        for (std::size_t r = 1; r < p; ++r) exec.parallel_for(hi - lo, kernels::copy<T>{bufs[0], bufs[r]});
        tether::detail::fence(exec);
      }
      phase.sync();
      const std::uint64_t moved = 2 * (n - (hi - lo)) * sizeof(T);
      count(moved, moved);
    }

    /// Non-blocking sum of buffers in an execution space's memory; the team's progress thread runs `exec`'s
    /// kernels (device reductions, no host copy). Neither buffer may be touched until wait() returns.
    template <class T, class Space, class Exec>
    [[nodiscard]] request iallreduce_sum(view<const T, Space> send, view<T, Space> recv, const Exec& exec) {
      static_assert(std::is_arithmetic_v<T>, "iallreduce_sum needs an arithmetic element type");
      tether::detail::require(send.size() == recv.size(),
                              "iallreduce_sum: send and recv sizes differ: send has ", send.size(),
                              ", recv has ", recv.size());
      tether::detail::fence(exec);  // `send` is complete before the progress thread reads it
      auto* st = state_;
      const std::uint64_t seq = st->current_op(rank_);
      auto op = st->post_reduction<T>(
          rank_, send.data(), recv.data(), send.size(),
          [exec](detail::pending_reduction& o) { detail::reduce_in_rank_order_on<T>(exec, o); });
      const std::uint64_t bytes = send.size() * sizeof(T);
      count(bytes, bytes);
      const int r = rank_;
      return request([st, op, r, seq] { st->wait_reduction(r, op, seq); },
                     [st, op] { return st->reduction_done(op); });
    }

    /// Copies `root`'s buffer in an execution space's memory into every other worker's (device-to-device).
    template <class T, class Space, class Exec>
    void broadcast(view<T, Space> data, int root, const Exec& exec) {
      auto& st = *state_;
      tether::detail::require(root >= 0 && root < size(), "broadcast: root must be in [0, ", size(),
                              "), got root = ", root);
      const std::size_t me = static_cast<std::size_t>(rank_);
      tether::detail::fence(exec);
      st.ptrs()[me] = data.data();
      st.sizes()[me] = data.size();
      st.barrier();
      detail::collective_phase phase(st, 1);
      check_sizes("broadcast");
      const std::uint64_t bytes = data.size() * sizeof(T);
      if (rank_ != root) {
        if (!data.empty()) {
          exec.parallel_for(data.size(),
                            kernels::copy<T>{static_cast<const T*>(st.ptrs()[static_cast<std::size_t>(root)]),
                                             data.data()});
          tether::detail::fence(exec);
        }
        count(0, bytes);
      } else {
        count(bytes * static_cast<std::uint64_t>(size() - 1), 0);
      }
      phase.sync();
    }

    /// Copies `root`'s buffer into every other worker's buffer.
    template <class T>
    void broadcast(std::span<T> data, int root) {
      auto& st = *state_;
      tether::detail::require(root >= 0 && root < size(), "broadcast: root must be in [0, ", size(),
                              "), got root = ", root);
      const std::size_t me = static_cast<std::size_t>(rank_);
      st.ptrs()[me] = data.data();
      st.sizes()[me] = data.size();
      st.barrier();
      detail::collective_phase phase(st, 1);
      check_sizes("broadcast");
      const std::uint64_t bytes = data.size() * sizeof(T);
      if (rank_ != root) {
        if (!data.empty())
          std::memcpy(data.data(), st.ptrs()[static_cast<std::size_t>(root)], data.size() * sizeof(T));
        count(0, bytes);
      } else {
        count(bytes * static_cast<std::uint64_t>(size() - 1), 0);
      }
      phase.sync();
    }

    /// The (score, rank) min-reduction of an election: the lowest finite score wins, ties go to the lowest
    /// rank, and a non-finite score never wins (rank = -1 when no score is finite). 8 bytes each way.
    [[nodiscard]] election min_loc(float score) {
      auto& st = *state_;
      st.scores()[static_cast<std::size_t>(rank_)] = score;
      st.barrier();
      detail::collective_phase phase(st, 1);
      election best;
      for (int r = 0; r < size(); ++r) {
        const float s = st.scores()[static_cast<std::size_t>(r)];
        if (std::isfinite(s) && (best.rank < 0 || s < best.score)) best = {s, r};
      }
      phase.sync();
      count(8, 8);
      return best;
    }

    /// Non-blocking election: `out` receives the (score, rank) minimum of min_loc() when the request
    /// completes (the team's progress thread computes it once every worker has posted). `out` must not be
    /// touched until then. 8 bytes each way.
    [[nodiscard]] request imin_loc(float score, election& out) {
      auto* st = state_;
      out = {score, -1};
      const std::uint64_t seq = st->current_op(rank_);
      auto op = st->post(rank_, &out.score, &out, 1, 0, "imin_loc", [](detail::pending_reduction& o) {
        election best;
        for (std::size_t r = 0; r < o.send.size(); ++r) {
          const float s = *static_cast<const float*>(o.send[r]);
          if (std::isfinite(s) && (best.rank < 0 || s < best.score)) best = {s, static_cast<int>(r)};
        }
        for (void* dst : o.recv) *static_cast<election*>(dst) = best;  // after every score was read
      });
      count(8, 8);
      const int r = rank_;
      return request([st, op, r, seq] { st->wait_reduction(r, op, seq); },
                     [st, op] { return st->reduction_done(op); });
    }

    /// Non-blocking broadcast: when the request completes, every worker's `data` holds `root`'s (the team's
    /// progress thread copies it once every worker has posted). No worker may touch its buffer until then.
    /// Bytes as broadcast().
    template <class T>
    [[nodiscard]] request ibroadcast(std::span<T> data, int root) {
      static_assert(std::is_trivially_copyable_v<T>, "ibroadcast needs a trivially copyable element type");
      tether::detail::require(root >= 0 && root < size(), "ibroadcast: root must be in [0, ", size(),
                              "), got root = ", root);
      auto* st = state_;
      const std::uint64_t seq = st->current_op(rank_);
      auto op = st->post(rank_, data.data(), data.data(), data.size(), root, "ibroadcast",
                         [root](detail::pending_reduction& o) {
                           if (o.count == 0) return;
                           const void* src = o.send[static_cast<std::size_t>(root)];
                           for (std::size_t r = 0; r < o.recv.size(); ++r)
                             if (static_cast<int>(r) != root) std::memcpy(o.recv[r], src, o.count * sizeof(T));
                         });
      const std::uint64_t bytes = data.size() * sizeof(T);
      if (rank_ == root)
        count(bytes * static_cast<std::uint64_t>(size() - 1), 0);
      else
        count(0, bytes);
      const int r = rank_;
      return request([st, op, r, seq] { st->wait_reduction(r, op, seq); },
                     [st, op] { return st->reduction_done(op); });
    }

    /// Opens a center shared by the workers of this handle's group (collective): every worker gets a handle
    /// on the same values, `owner`'s `initial`. See shared_memory::center.
    template <class T>
    [[nodiscard]] center<T> open_center(std::span<const T> initial, int owner);

   private:
    friend class shared_memory;
    worker(detail::team_state* st, int rank, comm_counters* counters) : state_(st), rank_(rank), counters_(counters) {}

    void check_sizes(const char* what) const {
      const auto& s = state_->sizes();
      for (std::size_t r = 1; r < s.size(); ++r) {
        if (s[r] != s[0])
          throw error(tether::detail::concat("tether: ", what, ": buffer sizes differ across workers: rank 0 has ",
                                             s[0], ", rank ", r, " has ", s[r]));
      }
    }
    detail::team_state* state_;
    std::shared_ptr<detail::team_state> owned_;  // a duplicate's own state
    int rank_;
    comm_counters* counters_;
    worker* group_ = nullptr;
    int group_id_ = 0;
    int group_count_ = 1;
  };

  /// A team of `workers` threads, optionally split into groups of `o.group_size`.
  explicit shared_memory(int workers, options o = {}) : size_(workers), group_size_(o.group_size) {
    tether::detail::require(workers >= 1, "shared_memory: workers must be >= 1, got workers = ", workers);
    tether::detail::require(o.group_size >= 0, "shared_memory: group_size must be >= 0, got group_size = ",
                            o.group_size);
    if (group_size_ == 0) group_size_ = workers;
    tether::detail::require(workers % group_size_ == 0, "shared_memory: workers (", workers,
                            ") must be a multiple of group_size (", group_size_, ")");
    world_ = std::make_unique<detail::team_state>(workers);
    counters_.resize(static_cast<std::size_t>(workers));
    const int groups = workers / group_size_;
    for (int r = 0; r < workers; ++r)
      handles_.emplace_back(new worker(world_.get(), r, &counters_[static_cast<std::size_t>(r)]));
    if (groups > 1) {
      for (int g = 0; g < groups; ++g) group_states_.push_back(std::make_unique<detail::team_state>(group_size_));
      for (int r = 0; r < workers; ++r) {
        const int g = r / group_size_;
        auto* gh = new worker(group_states_[static_cast<std::size_t>(g)].get(), r % group_size_,
                              &counters_[static_cast<std::size_t>(r)]);
        group_handles_.emplace_back(gh);
        handles_[static_cast<std::size_t>(r)]->group_ = gh;
      }
    }
    for (int r = 0; r < workers; ++r) {
      auto& h = *handles_[static_cast<std::size_t>(r)];
      h.group_id_ = r / group_size_;
      h.group_count_ = groups;
      if (h.group_ != nullptr) {
        h.group_->group_id_ = h.group_id_;
        h.group_->group_count_ = groups;
      }
    }
  }

  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] int group_size() const noexcept { return group_size_; }

  /// Bytes moved so far by worker `rank`.
  [[nodiscard]] const comm_counters& counters(int rank) const { return counters_.at(static_cast<std::size_t>(rank)); }

  /// Runs `f(worker&)` on size() threads and returns when all are done. If any worker throws, every other
  /// worker is released from its collectives and the first exception is rethrown here.
  template <class F>
  void run(F&& f) {
    world_->reset();
    for (auto& g : group_states_) g->reset();
    std::mutex em;
    std::exception_ptr first;
    bool first_is_abort = false;
    {
      std::vector<std::jthread> threads;
      threads.reserve(static_cast<std::size_t>(size_));
      for (int r = 0; r < size_; ++r) {
        threads.emplace_back([&, r] {
          worker& w = *handles_[static_cast<std::size_t>(r)];
          try {
            f(w);
            mark_finished(r);
          } catch (...) {
            const bool is_abort = is_aborted(std::current_exception());
            {
              std::lock_guard lk(em);
              if (!first || (first_is_abort && !is_abort)) {
                first = std::current_exception();
                first_is_abort = is_abort;
              }
            }
            abort_all();
            mark_finished(r);
          }
        });
      }
    }
    if (first) std::rethrow_exception(first);
  }

 private:
  static bool is_aborted(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const aborted&) {
      return true;
    } catch (...) {
      return false;
    }
  }
  void abort_all() {
    world_->abort();
    for (auto& g : group_states_) g->abort();
  }
  void mark_finished(int r) {
    world_->finish(r);
    if (!group_states_.empty())
      group_states_[static_cast<std::size_t>(r / group_size_)]->finish(r % group_size_);
  }

  int size_;
  int group_size_;
  std::unique_ptr<detail::team_state> world_;
  std::vector<std::unique_ptr<detail::team_state>> group_states_;
  std::vector<comm_counters> counters_;
  std::vector<std::unique_ptr<worker>> handles_;
  std::vector<std::unique_ptr<worker>> group_handles_;
};

/// A center variable shared by the workers of a team (asynchronous EASGD's `xc`): one copy in the process,
/// guarded by a lock per block of 16384 elements, so workers exchange with different blocks at once and no
/// worker ever waits for another's round. Opened collectively by worker::open_center; the handle is cheap to
/// move and keeps the storage alive. Bytes follow the communication model with `owner` as the center's
/// holder: an exchange counts N*s each way for every worker but the owner (whose exchanges are local).
template <class T>
class shared_memory::center {
 public:
  center() = default;

  /// Number of values.
  [[nodiscard]] std::size_t size() const noexcept { return store_ ? store_->data.size() : 0; }
  /// True until close().
  [[nodiscard]] bool is_open() const noexcept { return static_cast<bool>(store_); }

  /// One exchange, block by block, each block under its lock: `read` receives the center's values,
  /// `compute(lo, hi)` fills `delta[lo, hi)` (it may read `read[lo, hi)`), and `delta[lo, hi)` is added to
  /// the center. So every addition is atomic per block and is applied to exactly the values read.
  template <class F>
  void exchange(std::span<T> read, std::span<T> delta, F&& compute) {
    tether::detail::require(is_open(), "shared_memory::center: exchange on a closed center");
    auto& st = *store_;
    const std::size_t n = st.data.size();
    tether::detail::require(read.size() == n && delta.size() == n, "shared_memory::center: exchange buffers have ",
                            read.size(), " and ", delta.size(), " elements, the center has ", n);
    for (std::size_t b = 0; b < st.blocks(); ++b) {
      const std::size_t lo = b * detail::center_store<T>::block;
      const std::size_t hi = std::min(n, lo + detail::center_store<T>::block);
      std::lock_guard lk(st.locks[b]);
      std::memcpy(read.data() + lo, st.data.data() + lo, (hi - lo) * sizeof(T));
      compute(lo, hi);
      for (std::size_t i = lo; i < hi; ++i) st.data[i] += delta[i];
    }
    const std::uint64_t bytes = comm_->rank() == owner_ ? 0 : n * sizeof(T);
    comm_->count(bytes, bytes);
  }

  /// Nothing to complete: an exchange is over when it returns (the interface of a center on MPI).
  void release() const noexcept {}
  /// Nothing to progress: the workers' threads do all the work.
  void poll() const noexcept {}

  /// Copies the current values into `out` (each block under its lock; not counted).
  void read(std::span<T> out) const {
    tether::detail::require(is_open(), "shared_memory::center: read of a closed center");
    auto& st = *store_;
    tether::detail::require(out.size() == st.data.size(), "shared_memory::center: read into ", out.size(),
                            " elements, the center has ", st.data.size());
    for (std::size_t b = 0; b < st.blocks(); ++b) {
      const std::size_t lo = b * detail::center_store<T>::block;
      const std::size_t hi = std::min(st.data.size(), lo + detail::center_store<T>::block);
      std::lock_guard lk(st.locks[b]);
      std::memcpy(out.data() + lo, st.data.data() + lo, (hi - lo) * sizeof(T));
    }
  }

  /// Collective: waits for every worker (a barrier of the handle that opened the center), then copies the
  /// final center into `out` on every worker and releases this handle (counted as a broadcast from the owner).
  void close(std::span<T> out) {
    tether::detail::require(is_open(), "shared_memory::center: close of a closed center");
    comm_->barrier();
    read(out);
    const std::uint64_t bytes = out.size() * sizeof(T);
    if (comm_->rank() == owner_)
      comm_->count(bytes * static_cast<std::uint64_t>(comm_->size() - 1), 0);
    else
      comm_->count(0, bytes);
    store_.reset();
  }

 private:
  friend class shared_memory::worker;
  center(std::shared_ptr<detail::center_store<T>> store, worker* comm, int owner)
      : store_(std::move(store)), comm_(comm), owner_(owner) {}

  std::shared_ptr<detail::center_store<T>> store_;
  worker* comm_ = nullptr;
  int owner_ = 0;
};

template <class T>
shared_memory::center<T> shared_memory::worker::open_center(std::span<const T> initial, int owner) {
  static_assert(std::is_arithmetic_v<T>, "open_center needs an arithmetic element type");
  tether::detail::require(owner >= 0 && owner < size(), "open_center: owner must be in [0, ", size(),
                          "), got owner = ", owner);
  auto& st = *state_;
  const std::size_t me = static_cast<std::size_t>(rank_);
  std::shared_ptr<detail::center_store<T>> store;
  if (rank_ == owner) store = std::make_shared<detail::center_store<T>>(initial);
  st.ptrs()[me] = &store;
  st.sizes()[me] = initial.size();
  st.scores()[me] = static_cast<float>(owner);
  st.barrier();
  {
    detail::collective_phase phase(st, 1);
    check_sizes("open_center");
    for (std::size_t r = 0; r < st.scores().size(); ++r) {
      if (st.scores()[r] != st.scores()[0])
        throw error(tether::detail::concat("tether: open_center: workers disagree on the owner: rank 0 gave ",
                                           st.scores()[0], ", rank ", r, " gave ", st.scores()[r]));
    }
    if (rank_ != owner)
      store = *static_cast<const std::shared_ptr<detail::center_store<T>>*>(
          st.ptrs()[static_cast<std::size_t>(owner)]);
    phase.sync();  // the owner's `store` is read until here
  }
  return center<T>(std::move(store), this, owner);
}

/// The default communicator's worker handle, for user code that names the type.
using team_worker = shared_memory::worker;

}  // namespace tether::comm

namespace tether {
/// The shared-memory team is tether's default communicator.
using team = comm::shared_memory;
}  // namespace tether
