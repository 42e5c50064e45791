#pragma once
/// \file
/// tether::team::worker (comm::team_worker): one thread's handle on its team, with the blocking and
/// non-blocking collectives on host memory and on an execution space's memory, duplicate() and abort().

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/comm/team/state.hpp"
#include "tether/core/collectives.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/request.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/view.hpp"

namespace tether::comm {

class shared_memory;
template <class T>
class team_store;
class team_pairs;     // comm/team/pairwise.hpp
struct pair_options;  // comm/pairwise.hpp

/// A worker of a thread team (tether::team::worker): its rank, the team size, and the collectives. Passed to the
/// function given to shared_memory::run().
class team_worker {
 public:
  team_worker(const team_worker&) = delete;
  team_worker& operator=(const team_worker&) = delete;
  team_worker(team_worker&&) = delete;
  team_worker& operator=(team_worker&&) = delete;
  ~team_worker() = default;

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return state_->size(); }

  /// This worker's group (a node, in LSGD's multi-leader setting); the team itself when there is one group.
  [[nodiscard]] team_worker& group() noexcept { return group_ ? *group_ : *this; }
  /// Index of this worker's group and the number of groups.
  [[nodiscard]] int group_id() const noexcept { return group_id_; }
  [[nodiscard]] int group_count() const noexcept { return group_count_; }

  /// Bytes moved by this worker's collectives (its group's included).
  [[nodiscard]] const comm_counters& counters() const noexcept { return *counters_; }
  /// Adds traffic done outside the collectives (protocols built on the team, such as a shared center).
  void count(std::uint64_t sent, std::uint64_t received) noexcept { counters_->add(sent, received); }

  void barrier() { state_->barrier(); }

  /// A new handle over the same workers with its own collectives (collective: every worker of this handle's
  /// group calls it, in the same order as its other collectives). Its operations never pair with this
  /// handle's, so a protocol can run non-blocking collectives in the background while the program runs its
  /// own (asynchronous LSGD and EASGD do). Its traffic counts on this handle's counters; it follows the
  /// team's fault rules (released when a worker throws or returns early) and must not outlive the team.
  [[nodiscard]] std::unique_ptr<team_worker> duplicate() {
    auto& st = *state_;
    std::shared_ptr<detail::team_state> fresh;
    if (rank_ == 0) {
      fresh = std::make_shared<detail::team_state>(size(), st.tuning());
      st.adopt(fresh);
    }
    st.ptrs()[static_cast<std::size_t>(rank_)] = &fresh;
    st.barrier();
    {
      detail::collective_phase phase(st, 1);
      if (rank_ != 0) fresh = *static_cast<const std::shared_ptr<detail::team_state>*>(st.ptrs()[0]);
      phase.sync();  // rank 0's `fresh` is read until here
    }
    std::unique_ptr<team_worker> d(new team_worker(fresh.get(), rank_, counters_));
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
    tether::detail::require_send_recv(send.size(), recv.size());
    auto op = state_->post_reduction<T>(rank_, send.data(), recv.data(), send.size());
    const std::uint64_t bytes = send.size() * sizeof(T);
    count(bytes, bytes);
    return track(std::move(op));
  }

  /// In-place sum of a buffer in an execution space's memory (GPU memory shared by the team's threads):
  /// each worker adds one slice of every worker's buffer in rank order with `exec`'s kernels and writes the
  /// sum into all of them. No host copy; the same bits as the host overload.
  template <class Exec, class T, class Space>
  void allreduce_sum(const Exec& exec, view<T, Space> data) {
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
  template <class Exec, class T, class Space>
  [[nodiscard]] request iallreduce_sum(const Exec& exec, view<const T, Space> send, view<T, Space> recv) {
    static_assert(std::is_arithmetic_v<T>, "iallreduce_sum needs an arithmetic element type");
    tether::detail::require_send_recv(send.size(), recv.size());
    tether::detail::fence(exec);  // `send` is complete before the progress thread reads it
    auto op = state_->post_reduction<T>(
        rank_, send.data(), recv.data(), send.size(),
        [exec](detail::pending_reduction& o) { detail::reduce_in_rank_order_on<T>(exec, o); });
    const std::uint64_t bytes = send.size() * sizeof(T);
    count(bytes, bytes);
    return track(std::move(op));
  }

  /// Copies `root`'s buffer in an execution space's memory into every other worker's (device-to-device).
  template <class Exec, class T, class Space>
  void broadcast(const Exec& exec, view<T, Space> data, int root) {
    tether::detail::fence(exec);  // the root's kernels that wrote `data` are complete
    broadcast_with(data.data(), data.size(), root, [&](const T* src, T* dst, std::size_t n) {
      exec.parallel_for(n, kernels::copy<T>{src, dst});
      tether::detail::fence(exec);
    });
  }

  /// Copies `root`'s buffer into every other worker's buffer.
  template <class T>
  void broadcast(std::span<T> data, int root) {
    broadcast_with(data.data(), data.size(), root,
                   [](const T* src, T* dst, std::size_t n) { std::memcpy(dst, src, n * sizeof(T)); });
  }

  /// The (score, rank) min-reduction of an election: the lowest finite score wins, ties go to the lowest
  /// rank, and a non-finite score never wins (rank = -1 when no score is finite). Scores compare as doubles.
  /// 12 bytes each way (a double and an int).
  [[nodiscard]] election min_loc(double score) {
    auto& st = *state_;
    st.scores()[static_cast<std::size_t>(rank_)] = score;
    st.barrier();
    detail::collective_phase phase(st, 1);
    election best;
    for (int r = 0; r < size(); ++r) {
      const double s = st.scores()[static_cast<std::size_t>(r)];
      if (std::isfinite(s) && (best.rank < 0 || s < best.score)) best = {s, r};
    }
    phase.sync();
    count(12, 12);
    return best;
  }

  /// Non-blocking election: `out` receives the (score, rank) minimum of min_loc() when the request
  /// completes (the team's progress thread computes it once every worker has posted). `out` must not be
  /// touched until then. 12 bytes each way.
  [[nodiscard]] request imin_loc(double score, election& out) {
    out = {score, -1};
    auto op = state_->post(rank_, &out.score, &out, 1, 0, "imin_loc", [](detail::pending_reduction& o) {
      election best;
      for (std::size_t r = 0; r < o.send.size(); ++r) {
        const double s = *static_cast<const double*>(o.send[r]);
        if (std::isfinite(s) && (best.rank < 0 || s < best.score)) best = {s, static_cast<int>(r)};
      }
      for (void* dst : o.recv) *static_cast<election*>(dst) = best;  // after every score was read
    });
    count(12, 12);
    return track(std::move(op));
  }

  /// Non-blocking broadcast: when the request completes, every worker's `data` holds `root`'s (the team's
  /// progress thread copies it once every worker has posted). No worker may touch its buffer until then.
  /// Bytes as broadcast().
  template <class T>
  [[nodiscard]] request ibroadcast(std::span<T> data, int root) {
    static_assert(std::is_trivially_copyable_v<T>, "ibroadcast needs a trivially copyable element type");
    return post_broadcast<T>(data.data(), data.size(), root, [root](detail::pending_reduction& o) {
      if (o.count == 0) return;
      const void* src = o.send[static_cast<std::size_t>(root)];
      for (std::size_t r = 0; r < o.recv.size(); ++r)
        if (static_cast<int>(r) != root) std::memcpy(o.recv[r], src, o.count * sizeof(T));
    });
  }

  /// Non-blocking broadcast of buffers in an execution space's memory: the team's progress thread copies
  /// `root`'s buffer into the others with `exec`'s kernels (device-to-device, no host copy). Bytes as
  /// broadcast().
  template <class Exec, class T, class Space>
  [[nodiscard]] request ibroadcast(const Exec& exec, view<T, Space> data, int root) {
    tether::detail::fence(exec);  // the root's buffer is complete before the progress thread reads it
    return post_broadcast<T>(data.data(), data.size(), root, [root, exec](detail::pending_reduction& o) {
      if (o.count == 0) return;
      const T* src = static_cast<const T*>(o.send[static_cast<std::size_t>(root)]);
      for (std::size_t r = 0; r < o.recv.size(); ++r)
        if (static_cast<int>(r) != root) exec.parallel_for(o.count, kernels::copy<T>{src, static_cast<T*>(o.recv[r])});
      tether::detail::fence(exec);
    });
  }

  /// Opens a store of `initial.size()` values shared by the workers of this handle's group, cut into the
  /// shards of `layout`, shard s held by worker (owner + s) % size() (collective; the one-sided tier, see
  /// docs/concepts.md#one-sided-tier): every worker gets a handle on the same values, `owner`'s `initial`.
  /// Every worker must pass the same size, layout and owner (tether::error on every worker otherwise). See
  /// team_store.
  template <class T>
  [[nodiscard]] team_store<T> open_store(std::span<const T> initial, const shard_layout& layout, int owner);

  /// Opens a pairwise link over this handle's group for messages of at most `bytes` bytes (collective; SwarmSGD).
  /// Defined in comm/team/pairwise.hpp: see team_pairs.
  [[nodiscard]] team_pairs open_pairs(std::size_t bytes, const pair_options& o);
  [[nodiscard]] team_pairs open_pairs(std::size_t bytes);

 private:
  friend class shared_memory;
  team_worker(detail::team_state* st, int rank, comm_counters* counters)
      : state_(st), rank_(rank), counters_(counters) {}

  /// A blocking broadcast of `n` values of T from `root`: every other worker runs `copy(root's data, its data,
  /// n)` inside the collective's data phase.
  template <class T, class Copy>
  void broadcast_with(T* data, std::size_t n, int root, Copy&& copy) {
    auto& st = *state_;
    tether::detail::require(root >= 0 && root < size(), "broadcast: root must be in [0, ", size(),
                            "), got root = ", root);
    const std::size_t me = static_cast<std::size_t>(rank_);
    st.ptrs()[me] = data;
    st.sizes()[me] = n;
    st.barrier();
    detail::collective_phase phase(st, 1);
    check_sizes("broadcast");
    const std::uint64_t bytes = n * sizeof(T);
    if (rank_ != root) {
      if (n != 0) copy(static_cast<const T*>(st.ptrs()[static_cast<std::size_t>(root)]), data, n);
      count(0, bytes);
    } else {
      count(bytes * static_cast<std::uint64_t>(size() - 1), 0);
    }
    phase.sync();
  }

  /// The request of a non-blocking operation this worker posted.
  [[nodiscard]] request track(std::shared_ptr<detail::pending_reduction> op) {
    auto* st = state_;
    const int r = rank_;
    return request([st, op, r] { st->wait_reduction(r, op); }, [st, op] { return st->reduction_done(op); });
  }

  /// Posts this worker's part of a broadcast of `n` values of T from `root`, carried out by `copy`.
  template <class T, class Copy>
  [[nodiscard]] request post_broadcast(T* data, std::size_t n, int root, Copy&& copy) {
    tether::detail::require(root >= 0 && root < size(), "ibroadcast: root must be in [0, ", size(),
                            "), got root = ", root);
    auto op = state_->post(rank_, data, data, n, root, "ibroadcast", std::forward<Copy>(copy));
    const std::uint64_t bytes = n * sizeof(T);
    if (rank_ == root)
      count(bytes * static_cast<std::uint64_t>(size() - 1), 0);
    else
      count(0, bytes);
    return track(std::move(op));
  }

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
  team_worker* group_ = nullptr;
  int group_id_ = 0;
  int group_count_ = 1;
};

}  // namespace tether::comm
