#pragma once
/// \file
/// comm::team_center (tether::team::center): a center variable shared by the workers of a thread team
/// (asynchronous EASGD), and team_worker::open_center.

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

namespace tether::comm {

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

/// A center variable shared by the workers of a team (asynchronous EASGD's `xc`): one copy in the process,
/// guarded by a lock per block of 16384 elements, so workers exchange with different blocks at once and no
/// worker ever waits for another's round. Opened collectively by worker::open_center; the handle is cheap to
/// move and keeps the storage alive. Bytes follow the communication model with `owner` as the center's
/// holder: an exchange counts N*s each way for every worker but the owner (whose exchanges are local).
template <class T>
class team_center {
 public:
  team_center() = default;

  /// Number of values.
  [[nodiscard]] std::size_t size() const noexcept { return store_ ? store_->data.size() : 0; }
  /// True until close().
  [[nodiscard]] bool is_open() const noexcept { return static_cast<bool>(store_); }

  /// One exchange, block by block, each block under its lock: `read` receives the center's values,
  /// `compute(lo, hi)` fills `delta[lo, hi)` (it may read `read[lo, hi)`), and `delta[lo, hi)` is added to
  /// the center. So every addition is atomic per block and is applied to exactly the values read.
  template <class F>
  void exchange(std::span<T> read, std::span<T> delta, F&& compute) {
    tether::detail::require(is_open(), "team_center: exchange on a closed center");
    auto& st = *store_;
    const std::size_t n = st.data.size();
    tether::detail::require(read.size() == n && delta.size() == n, "team_center: exchange buffers have ",
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
    tether::detail::require(is_open(), "team_center: read of a closed center");
    auto& st = *store_;
    tether::detail::require(out.size() == st.data.size(), "team_center: read into ", out.size(),
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
    tether::detail::require(is_open(), "team_center: close of a closed center");
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
  friend class team_worker;
  team_center(std::shared_ptr<detail::center_store<T>> store, team_worker* comm, int owner)
      : store_(std::move(store)), comm_(comm), owner_(owner) {}

  std::shared_ptr<detail::center_store<T>> store_;
  team_worker* comm_ = nullptr;
  int owner_ = 0;
};

template <class T>
team_center<T> team_worker::open_center(std::span<const T> initial, int owner) {
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
  return team_center<T>(std::move(store), this, owner);
}

}  // namespace tether::comm
