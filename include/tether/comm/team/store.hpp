#pragma once
/// \file
/// comm::team_store (tether::team::store): the thread team's model of the one-sided tier, N values shared by
/// the workers of a team and cut into the shards of a tether::shard_layout, and team_worker::open_store.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

#include "tether/comm/team/worker.hpp"
#include "tether/core/error.hpp"
#include "tether/core/shard_layout.hpp"

namespace tether::comm {

namespace detail {

/// The values of a store shared by a team and one lock per block of `block` elements.
template <class T>
struct store_values {
  store_values(std::span<const T> initial, std::size_t block_size)
      : data(initial.begin(), initial.end()), block(block_size), locks(new std::mutex[count_blocks()]) {}
  [[nodiscard]] std::size_t count_blocks() const noexcept { return (data.size() + block - 1) / block; }
  std::vector<T> data;
  std::size_t block;
  std::unique_ptr<std::mutex[]> locks;
};

}  // namespace detail

/// N values shared by the workers of a team (tether::shared_store, the one-sided tier: asynchronous EASGD's
/// center when S = 1): one copy in the process, guarded by a lock per block of `team_tuning::store_block`
/// elements, so workers read and add into different blocks at once and no worker ever waits for another's
/// round. Opened collectively by worker::open_store; the handle is cheap to move and keeps the values alive.
///
/// Shard s of the layout is held by worker (owner + s) % size(). Memory is shared, so holding a shard only
/// decides the bytes counted, by the model of a store whose shards live on their holders: a read counts the
/// values of the shards this worker does not hold as received, an addition counts them as sent, an exchange
/// both (with S = 1: N*s each way for every worker but the owner, whose exchanges are local); close() counts
/// a broadcast of each shard from its holder.
template <class T>
class team_store {
 public:
  team_store() = default;

  /// Number of values N.
  [[nodiscard]] std::size_t size() const noexcept { return layout_.size(); }
  /// The layout of the shards.
  [[nodiscard]] const shard_layout& layout() const noexcept { return layout_; }
  /// The worker that holds shard `s`.
  [[nodiscard]] int holder(std::size_t s) const noexcept {
    return static_cast<int>((static_cast<std::size_t>(owner_) + s) % static_cast<std::size_t>(comm_->size()));
  }
  /// True until close().
  [[nodiscard]] bool is_open() const noexcept { return static_cast<bool>(values_); }

  /// Copies the values into `out`, block by block, each block under its lock.
  void read(std::span<T> out) {
    check(out.size(), "read");
    for_each_block([&](std::size_t lo, std::size_t hi) {
      std::memcpy(out.data() + lo, values_->data.data() + lo, (hi - lo) * sizeof(T));
    });
    comm_->count(0, remote_bytes());
  }

  /// Adds `in` to the values element-wise, block by block under each block's lock: concurrent additions
  /// are never lost.
  void accumulate(std::span<const T> in) {
    check(in.size(), "accumulate");
    T* v = values_->data.data();
    for_each_block([&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) v[i] += in[i];
    });
    comm_->count(remote_bytes(), 0);
  }

  /// One exchange, block by block, each block under its lock: `read` receives the values, `compute(lo, hi)`
  /// fills `delta[lo, hi)` (it may read `read[lo, hi)`), and `delta[lo, hi)` is added to the values. So every
  /// addition is atomic per block and is applied to exactly the values read.
  template <class F>
  void exchange(std::span<T> read, std::span<T> delta, F&& compute) {
    check(read.size(), "exchange");
    check(delta.size(), "exchange");
    T* v = values_->data.data();
    for_each_block([&](std::size_t lo, std::size_t hi) {
      std::memcpy(read.data() + lo, v + lo, (hi - lo) * sizeof(T));
      compute(lo, hi);
      for (std::size_t i = lo; i < hi; ++i) v[i] += delta[i];
    });
    const std::uint64_t bytes = remote_bytes();
    comm_->count(bytes, bytes);
  }

  /// Nothing to complete: an addition is over when it returns (the interface of a store on MPI).
  void release() const noexcept {}
  /// Nothing to progress: the workers' threads do all the work.
  void poll() const noexcept {}

  /// Collective: waits for every worker (a barrier of the handle that opened the store), then copies the
  /// final values into `out` on every worker and releases this handle.
  void close(std::span<T> out) {
    check(out.size(), "close");
    comm_->barrier();
    for_each_block([&](std::size_t lo, std::size_t hi) {
      std::memcpy(out.data() + lo, values_->data.data() + lo, (hi - lo) * sizeof(T));
    });
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      const std::uint64_t bytes = layout_.count(s) * sizeof(T);
      if (bytes == 0) continue;
      if (comm_->rank() == holder(s))
        comm_->count(bytes * static_cast<std::uint64_t>(comm_->size() - 1), 0);
      else
        comm_->count(0, bytes);
    }
    values_.reset();
  }

 private:
  friend class team_worker;
  team_store(std::shared_ptr<detail::store_values<T>> values, team_worker* comm, shard_layout layout, int owner)
      : values_(std::move(values)), comm_(comm), layout_(layout), owner_(owner) {
    for (std::size_t s = 0; s < layout_.shards(); ++s)
      if (holder(s) != comm_->rank()) remote_ += layout_.count(s);
  }

  void check(std::size_t n, const char* what) const {
    tether::detail::require(is_open(), "team_store: ", what, " on a closed store");
    tether::detail::require(n == size(), "team_store: ", what, " with a buffer of ", n,
                            " elements, the store has ", size());
  }

  template <class F>
  void for_each_block(F&& f) {
    auto& v = *values_;
    for (std::size_t b = 0; b < v.count_blocks(); ++b) {
      const std::size_t lo = b * v.block;
      const std::size_t hi = std::min(v.data.size(), lo + v.block);
      std::lock_guard lk(v.locks[b]);
      f(lo, hi);
    }
  }

  [[nodiscard]] std::uint64_t remote_bytes() const noexcept { return remote_ * sizeof(T); }

  std::shared_ptr<detail::store_values<T>> values_;
  team_worker* comm_ = nullptr;
  shard_layout layout_{};
  int owner_ = 0;
  std::uint64_t remote_ = 0;  // values of the shards other workers hold
};

template <class T>
team_store<T> team_worker::open_store(std::span<const T> initial, const shard_layout& layout, int owner) {
  static_assert(std::is_arithmetic_v<T>, "open_store needs an arithmetic element type");
  struct args {
    std::shared_ptr<detail::store_values<T>>* values;
    std::size_t n, layout_n, shards;
    int owner;
  };
  auto& st = *state_;
  const std::size_t me = static_cast<std::size_t>(rank_);
  std::shared_ptr<detail::store_values<T>> values;
  const args mine{&values, initial.size(), layout.size(), layout.shards(), owner};
  st.ptrs()[me] = &mine;
  st.barrier();
  {
    // Every worker checks every worker's arguments, so all of them throw the same error.
    detail::collective_phase phase(st, 2);
    const auto arg = [&](std::size_t r) -> const args& { return *static_cast<const args*>(st.ptrs()[r]); };
    for (std::size_t r = 0; r < st.ptrs().size(); ++r) {
      if (arg(r).n != arg(0).n)
        throw error(tether::detail::concat("tether: open_store: buffer sizes differ across workers: rank 0 has ",
                                           arg(0).n, ", rank ", r, " has ", arg(r).n));
      if (arg(r).owner != arg(0).owner || arg(r).shards != arg(0).shards || arg(r).layout_n != arg(0).layout_n)
        throw error(tether::detail::concat(
            "tether: open_store: workers disagree on the owner or the layout: rank 0 gave owner = ", arg(0).owner,
            ", layout (", arg(0).layout_n, " values, ", arg(0).shards, " shards); rank ", r, " gave owner = ",
            arg(r).owner, ", layout (", arg(r).layout_n, " values, ", arg(r).shards, " shards)"));
    }
    tether::detail::require(owner >= 0 && owner < size(), "open_store: owner must be in [0, ", size(),
                            "), got owner = ", owner);
    tether::detail::require(layout.size() == initial.size(), "open_store: the layout covers ", layout.size(),
                            " values, the initial buffer has ", initial.size());
    if (rank_ == owner) values = std::make_shared<detail::store_values<T>>(initial, st.tuning().store_block);
    phase.sync();  // the owner's values exist from here
    if (rank_ != owner) values = *arg(static_cast<std::size_t>(owner)).values;
    phase.sync();  // the owner's `values` and every `mine` are read until here
  }
  team_store<T> store(std::move(values), this, layout, owner);
  // The owner's initial values go to the holders of the other shards (nothing with S = 1).
  for (std::size_t s = 0; s < layout.shards(); ++s) {
    const std::uint64_t bytes = layout.count(s) * sizeof(T);
    if (store.holder(s) == owner || bytes == 0) continue;
    if (rank_ == owner) count(bytes, 0);
    if (rank_ == store.holder(s)) count(0, bytes);
  }
  return store;
}

}  // namespace tether::comm
