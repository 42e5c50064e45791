#pragma once
/// \file
/// comm::mpi::center: a center variable held by one owner rank in an MPI window (asynchronous EASGD), and
/// mpi::open_center.

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/comm/mpi/communicator.hpp"
#include "tether/comm/mpi/support.hpp"
#include "tether/core/error.hpp"

namespace tether::comm {

/// A center variable held by one owner rank in an MPI window (MPI_Win_allocate on the communicator that
/// opened it), for asynchronous EASGD: every rank exchanges with it by one-sided operations, without any
/// barrier. Bytes: an exchange counts N*s each way for every rank but the owner (local); close() counts a
/// broadcast from the owner. The communicator that opened it must outlive it.
template <class T>
class mpi::center {
 public:
  center() = default;
  center(const center&) = delete;
  center& operator=(const center&) = delete;
  center(center&& o) noexcept
      : comm_(o.comm_), win_(std::exchange(o.win_, MPI_WIN_NULL)), base_(o.base_),
        locked_(std::exchange(o.locked_, false)), n_(o.n_), owner_(o.owner_) {}
  center& operator=(center&&) = delete;
  /// Frees the window if close() was not called: collective (one barrier; a rank that is gone leaves the
  /// window to MPI_Finalize).
  ~center() {
    if (win_ == MPI_WIN_NULL) return;
    try {
      release();
      comm_->barrier();
      MPI_Win_free(&win_);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a rank is gone; the window is left to MPI_Finalize
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] bool is_open() const noexcept { return win_ != MPI_WIN_NULL; }

  /// One exchange: under a shared lock of the owner's window, `read` receives the center
  /// (MPI_Rget_accumulate with MPI_NO_OP, polled with the timeout), `compute(0, n)` fills `delta`, and
  /// `delta` is added to the center (MPI_Accumulate with MPI_SUM, element-wise atomic at the owner). The
  /// addition completes at release(), which the caller may delay while it computes.
  template <class F>
  void exchange(std::span<T> read, std::span<T> delta, F&& compute) {
    tether::detail::require(is_open(), "mpi::center: exchange on a closed center");
    tether::detail::require(read.size() == n_ && delta.size() == n_, "mpi::center: exchange buffers have ",
                            read.size(), " and ", delta.size(), " elements, the center has ", n_);
    auto& c = *comm_;
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    c.check(MPI_Win_lock(MPI_LOCK_SHARED, owner_, 0, win_), "MPI_Win_lock");
    locked_ = true;
    std::vector<MPI_Request> reqs;
    detail::for_each_chunk(n_, c.max_count(), [&](std::size_t lo, int len) {
      reqs.push_back(MPI_REQUEST_NULL);
      // MPI_NO_OP ignores the origin buffer (which must still be disjoint from the result buffer).
      c.check(MPI_Rget_accumulate(delta.data() + lo, len, dt, read.data() + lo, len, dt, owner_,
                                  static_cast<MPI_Aint>(lo), len, dt, MPI_NO_OP, win_, &reqs.back()),
              "MPI_Rget_accumulate");
    });
    c.wait_all(reqs, "MPI_Rget_accumulate (read of the center)");
    compute(std::size_t{0}, n_);
    detail::for_each_chunk(n_, c.max_count(), [&](std::size_t lo, int len) {
      c.check(MPI_Accumulate(delta.data() + lo, len, dt, owner_, static_cast<MPI_Aint>(lo), len, dt, MPI_SUM, win_),
              "MPI_Accumulate");
    });
    // One read and one write of N values, across the wire unless this rank is the owner.
    const std::uint64_t bytes = c.rank() == owner_ ? 0 : n_ * sizeof(T);
    c.count(bytes, bytes);
  }

  /// Completes the last exchange (its addition reaches the owner): MPI_Win_unlock.
  void release() {
    if (!locked_) return;
    locked_ = false;
    comm_->check(MPI_Win_unlock(owner_, win_), "MPI_Win_unlock");
  }

  /// On the owner, one MPI_Iprobe: lets one-sided traffic progress on networks that need the target's help.
  void poll() const {
    if (comm_ == nullptr || comm_->rank() != owner_) return;
    int flag = 0;
    comm_->check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_->native(), &flag, MPI_STATUS_IGNORE), "MPI_Iprobe");
  }

  /// Collective: waits for every rank (one barrier, bounded by the timeout), copies the final center into
  /// `out` on every rank (a broadcast from the owner) and frees the window.
  void close(std::span<T> out) {
    tether::detail::require(is_open(), "mpi::center: close of a closed center");
    tether::detail::require(out.size() == n_, "mpi::center: close into ", out.size(), " elements, the center has ",
                            n_);
    auto& c = *comm_;
    release();
    c.barrier();
    if (c.rank() == owner_) {
      c.check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, owner_, 0, win_), "MPI_Win_lock");
      if (n_ > 0) std::memcpy(out.data(), base_, n_ * sizeof(T));
      c.check(MPI_Win_unlock(owner_, win_), "MPI_Win_unlock");
    }
    c.broadcast(out, owner_);
    c.check(MPI_Win_free(&win_), "MPI_Win_free");
    win_ = MPI_WIN_NULL;
  }

 private:
  friend class mpi;

  mpi* comm_ = nullptr;
  MPI_Win win_ = MPI_WIN_NULL;
  void* base_ = nullptr;
  bool locked_ = false;
  std::size_t n_ = 0;
  int owner_ = 0;
};

template <class T>
mpi::center<T> mpi::open_center(std::span<const T> initial, int owner) {
  static_assert(std::is_arithmetic_v<T>, "open_center needs an arithmetic element type");
  check_root(owner, "open_center");
  center<T> c;
  c.comm_ = this;
  c.n_ = initial.size();
  c.owner_ = owner;
  const bool own = rank_ == owner;
  const auto bytes = static_cast<MPI_Aint>(own ? c.n_ * sizeof(T) : 0);
  check(MPI_Win_allocate(bytes, static_cast<int>(sizeof(T)), MPI_INFO_NULL, comm_, &c.base_, &c.win_),
        "MPI_Win_allocate");
  check(MPI_Win_set_errhandler(c.win_, MPI_ERRORS_RETURN), "MPI_Win_set_errhandler");
  if (own) {
    check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, owner, 0, c.win_), "MPI_Win_lock");
    if (c.n_ > 0) std::memcpy(c.base_, initial.data(), c.n_ * sizeof(T));
    check(MPI_Win_unlock(owner, c.win_), "MPI_Win_unlock");
  }
  barrier();  // nobody reads the center before the owner wrote it
  return c;
}

}  // namespace tether::comm
