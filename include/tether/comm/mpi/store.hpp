#pragma once
/// \file
/// comm::mpi::store: comm::mpi's model of the one-sided tier, N values in one MPI window, each rank exposing
/// the slices of the shards it holds, and mpi::open_store.

#include <mpi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/comm/mpi/communicator.hpp"
#include "tether/comm/mpi/support.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/shard_layout.hpp"

namespace tether::comm {

/// N values shared by the ranks of a communicator (tether::shared_store, the one-sided tier: asynchronous
/// EASGD's center when S = 1), in one window (MPI_Win_allocate on the communicator that opened it): shard s
/// of the layout lives on rank (owner + s) % size(), whose window holds the slices of its shards one after
/// another. Every rank reads and adds by one-sided operations, without any barrier: a read is
/// MPI_Rget_accumulate with MPI_NO_OP, an addition MPI_Accumulate with MPI_SUM (element-wise atomic at the
/// holder, so concurrent additions are never lost), each polled with the communicator's timeout. Additions
/// complete at release(), which the caller may delay while it computes.
///
/// Bytes: a read counts the values of the shards other ranks hold as received, an addition counts them as
/// sent, an exchange both (with S = 1: N*s each way for every rank but the owner, whose exchanges are
/// local); close() counts a broadcast of each shard from its holder. The communicator that opened the store
/// must outlive it.
template <class T>
class mpi::store {
 public:
  store() = default;
  store(const store&) = delete;
  store& operator=(const store&) = delete;
  store(store&& o) noexcept
      : comm_(o.comm_), win_(std::exchange(o.win_, MPI_WIN_NULL)), base_(o.base_),
        locked_(std::exchange(o.locked_, false)), layout_(o.layout_), owner_(o.owner_),
        disp_(std::move(o.disp_)), remote_(o.remote_) {}
  store& operator=(store&&) = delete;
  /// Frees the window if close() was not called: collective (one barrier; a rank that is gone leaves the
  /// window to MPI_Finalize).
  ~store() {
    if (win_ == MPI_WIN_NULL) return;
    try {
      release();
      comm_->barrier();
      MPI_Win_free(&win_);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a rank is gone; the window is left to MPI_Finalize
    }
  }

  /// Number of values N.
  [[nodiscard]] std::size_t size() const noexcept { return layout_.size(); }
  /// The layout of the shards.
  [[nodiscard]] const shard_layout& layout() const noexcept { return layout_; }
  /// The rank that holds shard `s`.
  [[nodiscard]] int holder(std::size_t s) const noexcept {
    return static_cast<int>((static_cast<std::size_t>(owner_) + s) % static_cast<std::size_t>(comm_->size()));
  }
  [[nodiscard]] bool is_open() const noexcept { return win_ != MPI_WIN_NULL; }

  /// Copies the values into `out` (complete when it returns).
  void read(std::span<T> out) {
    check(out.size(), "read");
    release();
    lock_all();
    get(out);
    release();
    comm_->count(0, remote_bytes());
  }

  /// Adds `in` to the values element-wise (MPI_Accumulate with MPI_SUM); complete at release().
  void accumulate(std::span<const T> in) {
    check(in.size(), "accumulate");
    release();
    lock_all();
    add(in);
    comm_->count(remote_bytes(), 0);
  }

  /// One exchange: `read` receives the values (complete before `compute` runs), `compute(0, N)` fills
  /// `delta`, and `delta` is added to the values (complete at release()). Another rank's addition may land
  /// between this rank's read and its addition (the asynchrony of asynchronous EASGD).
  template <class F>
  void exchange(std::span<T> read, std::span<T> delta, F&& compute) {
    check(read.size(), "exchange");
    check(delta.size(), "exchange");
    release();
    lock_all();
    get(read, delta.data());
    compute(std::size_t{0}, size());
    add(std::span<const T>(delta.data(), delta.size()));
    const std::uint64_t bytes = remote_bytes();
    comm_->count(bytes, bytes);
  }

  /// Completes the last additions (they reach their holders): MPI_Win_unlock_all.
  void release() {
    if (!locked_) return;
    locked_ = false;
    comm_->check(MPI_Win_unlock_all(win_), "MPI_Win_unlock_all");
  }

  /// On a rank that holds a shard, one MPI_Iprobe: lets one-sided traffic progress on networks that need the
  /// target's help.
  void poll() const {
    if (comm_ == nullptr || local_ == 0) return;
    int flag = 0;
    comm_->check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_->native(), &flag, MPI_STATUS_IGNORE), "MPI_Iprobe");
  }

  /// Collective: waits for every rank (one barrier, bounded by the timeout), copies the final values into
  /// `out` on every rank (a broadcast of each shard from its holder) and frees the window.
  void close(std::span<T> out) {
    check(out.size(), "close");
    auto& c = *comm_;
    release();
    c.barrier();
    c.check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, c.rank(), 0, win_), "MPI_Win_lock");
    for (std::size_t s = 0; s < layout_.shards(); ++s)
      if (holder(s) == c.rank() && layout_.count(s) > 0)
        std::memcpy(out.data() + layout_.begin(s), static_cast<const T*>(base_) + disp_[s],
                    layout_.count(s) * sizeof(T));
    c.check(MPI_Win_unlock(c.rank(), win_), "MPI_Win_unlock");
    for (std::size_t s = 0; s < layout_.shards(); ++s)
      if (layout_.count(s) > 0) c.broadcast(out.subspan(layout_.begin(s), layout_.count(s)), holder(s));
    c.check(MPI_Win_free(&win_), "MPI_Win_free");
    win_ = MPI_WIN_NULL;
  }

 private:
  friend class mpi;

  void check(std::size_t n, const char* what) const {
    tether::detail::require(is_open(), "mpi::store: ", what, " on a closed store");
    tether::detail::require(n == size(), "mpi::store: ", what, " with a buffer of ", n, " elements, the store has ",
                            size());
  }

  void lock_all() {
    comm_->check(MPI_Win_lock_all(0, win_), "MPI_Win_lock_all");
    locked_ = true;
  }

  /// `f(shard, holder, displacement, offset, count)` for chunks of at most max_count() elements of every
  /// non-empty shard.
  template <class F>
  void for_each_chunk(F&& f) const {
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      const std::size_t begin = layout_.begin(s);
      detail::for_each_chunk(layout_.count(s), comm_->max_count(), [&](std::size_t lo, int len) {
        f(holder(s), static_cast<MPI_Aint>(disp_[s] + lo), begin + lo, len);
      });
    }
  }

  /// Reads every value into `out` inside the current epoch and waits (bounded) for the reads. MPI_NO_OP
  /// ignores the origin buffer, which must still be disjoint from `out`: `origin` when the caller has one.
  void get(std::span<T> out, const T* origin = nullptr) {
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    std::vector<MPI_Request> reqs;
    std::array<T, 1> none{};
    for_each_chunk([&](int rank, MPI_Aint disp, std::size_t at, int len) {
      reqs.push_back(MPI_REQUEST_NULL);
      const T* from = origin != nullptr ? origin + at : none.data();
      comm_->check(MPI_Rget_accumulate(from, origin != nullptr ? len : 0, dt, out.data() + at, len, dt, rank, disp,
                                       len, dt, MPI_NO_OP, win_, &reqs.back()),
                   "MPI_Rget_accumulate");
    });
    comm_->wait_all(reqs, "MPI_Rget_accumulate (read of a store)");
  }

  /// Adds `in` to every value inside the current epoch (complete at release()).
  void add(std::span<const T> in) {
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    for_each_chunk([&](int rank, MPI_Aint disp, std::size_t at, int len) {
      comm_->check(MPI_Accumulate(in.data() + at, len, dt, rank, disp, len, dt, MPI_SUM, win_), "MPI_Accumulate");
    });
  }

  [[nodiscard]] std::uint64_t remote_bytes() const noexcept { return remote_ * sizeof(T); }

  mpi* comm_ = nullptr;
  MPI_Win win_ = MPI_WIN_NULL;
  void* base_ = nullptr;
  bool locked_ = false;
  shard_layout layout_{};
  int owner_ = 0;
  std::vector<std::size_t> disp_;  // displacement of each shard in its holder's window
  std::size_t local_ = 0;          // values of the shards this rank holds
  std::uint64_t remote_ = 0;       // values of the shards other ranks hold
};

template <class T>
mpi::store<T> mpi::open_store(std::span<const T> initial, const shard_layout& layout, int owner) {
  static_assert(std::is_arithmetic_v<T>, "open_store needs an arithmetic element type");
  // Agreement first, so that every rank fails the same way instead of some waiting in MPI_Win_allocate.
  const std::array<consistency_item, 4> items{{{initial.size(), "the size of the store (open_store)"},
                                               {layout.size(), "the layout's size (open_store)"},
                                               {layout.shards(), "the layout's shard count (open_store)"},
                                               {static_cast<std::uint64_t>(owner), "the store's owner (open_store)"}}};
  check_consistent(std::span<const consistency_item>(items));
  check_root(owner, "open_store");
  tether::detail::require(layout.size() == initial.size(), "open_store: the layout covers ", layout.size(),
                          " values, the initial buffer has ", initial.size());
  store<T> st;
  st.comm_ = this;
  st.layout_ = layout;
  st.owner_ = owner;
  st.disp_.resize(layout.shards());
  for (std::size_t s = 0; s < layout.shards(); ++s) {
    if (st.holder(s) == rank_)
      st.local_ += layout.count(s);
    else
      st.remote_ += layout.count(s);
  }
  // Each shard's displacement on its holder: the shards a rank holds are s, s + p, s + 2p, ... one after
  // another in its window, so the displacement of s is the sum of the counts of its holder's earlier shards.
  std::vector<std::size_t> filled(static_cast<std::size_t>(size_), 0);
  for (std::size_t s = 0; s < layout.shards(); ++s) {
    auto& f = filled[static_cast<std::size_t>(st.holder(s))];
    st.disp_[s] = f;
    f += layout.count(s);
  }
  // A window that the MPI library cannot make across these ranks' transport is an error that says so: Open MPI
  // 4.1 over TCP between nodes (no UCX, no RDMA network) has no one-sided component that takes it under
  // MPI_THREAD_MULTIPLE (osc/rdma needs an RDMA transport, osc/pt2pt refuses that thread level); at
  // MPI_THREAD_SERIALIZED, which comm::mpi is content with, and with OMPI_MCA_osc=pt2pt it works (docs/cluster.md).
  check(MPI_Win_allocate(static_cast<MPI_Aint>(st.local_ * sizeof(T)), static_cast<int>(sizeof(T)), MPI_INFO_NULL,
                         comm_, &st.base_, &st.win_),
        "MPI_Win_allocate (the one-sided store: it needs an MPI one-sided component for the transport between "
        "these ranks: Open MPI with UCX or an RDMA network; over plain TCP between nodes, Open MPI 4.1's osc/pt2pt, "
        "which needs MPI initialised at MPI_THREAD_SERIALIZED and OMPI_MCA_osc=pt2pt)");
  check(MPI_Win_set_errhandler(st.win_, MPI_ERRORS_RETURN), "MPI_Win_set_errhandler");
  if (rank_ == owner) {
    // The owner's initial values go to every shard's holder (its own shards by a local copy).
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    for (std::size_t s = 0; s < layout.shards(); ++s) {
      const int h = st.holder(s);
      if (layout.count(s) == 0) continue;
      check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, h, 0, st.win_), "MPI_Win_lock");
      if (h == rank_) {
        std::memcpy(static_cast<T*>(st.base_) + st.disp_[s], initial.data() + layout.begin(s),
                    layout.count(s) * sizeof(T));
      } else {
        detail::for_each_chunk(layout.count(s), max_count(), [&](std::size_t lo, int len) {
          check(MPI_Put(initial.data() + layout.begin(s) + lo, len, dt, h, static_cast<MPI_Aint>(st.disp_[s] + lo),
                        len, dt, st.win_),
                "MPI_Put");
        });
        count(layout.count(s) * sizeof(T), 0);
      }
      check(MPI_Win_unlock(h, st.win_), "MPI_Win_unlock");
    }
  } else {
    for (std::size_t s = 0; s < layout.shards(); ++s)
      if (st.holder(s) == rank_ && layout.count(s) > 0) count(0, layout.count(s) * sizeof(T));
  }
  barrier();  // nobody reads the store before the owner wrote it
  return st;
}

}  // namespace tether::comm
