#pragma once
/// \file
/// comm::mpi: one worker per MPI rank (see comm/mpi.hpp for the whole picture): groups, the blocking and
/// non-blocking collectives on host and device memory, elections, consistency checks.

#include <mpi.h>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <concepts>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/comm/mpi/finish_board.hpp"
#include "tether/comm/mpi/heartbeat.hpp"
#include "tether/comm/mpi/option_agreement.hpp"
#include "tether/comm/mpi/options.hpp"
#include "tether/comm/mpi/ring.hpp"
#include "tether/comm/mpi/support.hpp"
#include "tether/core/collectives.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/options_description.hpp"
#include "tether/core/poll.hpp"
#include "tether/core/request.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/view.hpp"

namespace tether::comm {

class mpi_pairs;      // comm/mpi/pairwise.hpp
struct pair_options;  // comm/pairwise.hpp

/// One worker per MPI rank. Satisfies tether::communicator; see the file comment.
class mpi {
 public:
  using options = mpi_options;

  template <class T>
  class store;

  /// Wraps (a duplicate of) `comm`. Collective over `comm`: duplicates it, checks that every rank gave the
  /// same options, and splits the groups.
  explicit mpi(MPI_Comm comm = MPI_COMM_WORLD, options o = {}) : opt_(o), counters_(&own_counters_) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized == 0)
      throw runtime_error("tether: comm::mpi: MPI is not initialized (call MPI_Init_thread or create a "
                          "tether::comm::mpi_environment first)");
    // The ranks agree on their options' validity first (bounded), so a rank with a bad option does not leave
    // the others waiting forever in MPI_Comm_dup: every rank raises the same error.
    const std::array<detail::option_check, 3> checks{{
        {"timeout", o.timeout, !std::isnan(o.timeout), "must be a number of seconds (<= 0 waits forever)"},
        {"group_size", static_cast<double>(o.group_size), o.group_size >= 0, "must be >= 0 (0: one group per node)"},
        {"device_direct", static_cast<double>(static_cast<int>(o.device_direct)),
         o.device_direct == mpi_device_direct::automatic || o.device_direct == mpi_device_direct::never ||
             o.device_direct == mpi_device_direct::always,
         "must be automatic (0), never (1) or always (2)"},
    }};
    detail::agree_on_options(comm, "comm::mpi", checks, detail::agreement_wait(o.timeout, options{}.timeout));
    const int rc = MPI_Comm_dup(comm, &comm_);
    if (rc != MPI_SUCCESS)
      throw runtime_error(tether::detail::concat("tether: comm::mpi: MPI_Comm_dup failed: ",
                                                 detail::mpi_error_text(rc)));
    try {
      init_handle();
      board_owned_ = std::make_unique<detail::finish_board>(comm_);
      board_ = board_owned_.get();
      const std::array<consistency_item, 1> items{{options_item(opt_, "the comm::mpi options")}};
      check_consistent(std::span<const consistency_item>(items));
      tether::detail::require(opt_.group_size == 0 || size_ % opt_.group_size == 0, "comm::mpi: the ", size_,
                              " ranks must be a multiple of group_size (", opt_.group_size, ")");
      make_groups();
    } catch (...) {
      board_owned_.reset();
      MPI_Comm_free(&comm_);
      throw;
    }
  }

  mpi(const mpi&) = delete;
  mpi& operator=(const mpi&) = delete;
  mpi(mpi&&) = delete;
  mpi& operator=(mpi&&) = delete;

  ~mpi() {
    group_.reset();
    board_owned_.reset();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0 && ring_ready_) MPI_Comm_free(&ring_comm_);
    if (finalized == 0 && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  /// This rank's group: the ranks of its node (or of `group_size` consecutive ranks). The communicator
  /// itself when the group is every rank.
  [[nodiscard]] mpi& group() noexcept { return group_ ? *group_ : *this; }
  /// Index of this rank's group (groups are numbered by their lowest rank) and the number of groups.
  [[nodiscard]] int group_id() const noexcept { return group_id_; }
  [[nodiscard]] int group_count() const noexcept { return group_count_; }

  /// Payload bytes moved by this rank (its group's collectives included).
  [[nodiscard]] const comm_counters& counters() const noexcept { return *counters_; }
  /// Adds traffic done directly on native() (one-sided protocols built on this communicator).
  void count(std::uint64_t sent, std::uint64_t received) noexcept { counters_->add(sent, received); }

  /// The duplicated communicator (MPI_ERRORS_RETURN). Owned by this object.
  [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }
  [[nodiscard]] const options& opts() const noexcept { return opt_; }
  /// Largest element count of one MPI call.
  [[nodiscard]] std::size_t max_count() const noexcept {
    return opt_.max_count == 0 ? static_cast<std::size_t>(INT_MAX) : opt_.max_count;
  }

  /// A new communicator over the same ranks with the same options (collective), whose traffic counts on
  /// this communicator's counters (it must not outlive this one). For protocols whose non-blocking traffic
  /// must not interleave with this communicator's collectives (asynchronous LSGD and EASGD).
  [[nodiscard]] std::unique_ptr<mpi> duplicate() const {
    auto d = std::make_unique<mpi>(comm_, opt_);
    d->counters_ = counters_;
    if (d->group_) d->group_->counters_ = counters_;
    return d;
  }

  /// The heartbeat of a run in which nobody waits for anybody (asynchronous EASGD; collective): a rank not heard
  /// from for the timeout is reported (comm/mpi/heartbeat.hpp). Null with the timeout off.
  [[nodiscard]] std::unique_ptr<detail::heartbeat> open_heartbeat() const {
    if (!polling()) return nullptr;
    return std::make_unique<detail::heartbeat>(comm_, opt_.timeout);
  }

  void barrier() {
    const std::uint64_t op = ++ops_;
    if (!polling()) {
      check(MPI_Barrier(comm_), "MPI_Barrier");
      return;
    }
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Ibarrier(comm_, &r), "MPI_Ibarrier");
    wait_all(std::span<MPI_Request>(&r, 1), "MPI_Barrier", op);
  }

  /// In-place sum over the ranks of a buffer in host memory (no copy of the buffer). With the timeout on, a
  /// floating-point buffer of 64 KiB or more takes a ring of point-to-point messages polled against the
  /// timeout (comm/mpi/ring.hpp), smaller ones MPI_Iallreduce; with the timeout off, MPI_Allreduce.
  template <class T>
  void allreduce_sum(std::span<T> data) {
    allreduce_sum(std::span<const T>(data.data(), data.size()), data);
  }

  /// Sum of every rank's `send` into `recv` (host memory; in place when both are the same buffer), as
  /// allreduce_sum(data): a pull that sums a copy of its parameters reads them straight from `send`.
  template <class T>
  void allreduce_sum(std::span<const T> send, std::span<T> recv) {
    allreduce_scaled_sum(send, recv, T(1));
  }

  /// `recv` <- `factor` * the sum of every rank's `send` (host memory; in place when both are the same
  /// buffer): the same bits as allreduce_sum then `recv[i] *= factor`, with the multiplication fused into the
  /// ring's last addition (local SGD's average: factor 1/size).
  template <class T>
  void allreduce_scaled_sum(std::span<const T> send, std::span<T> recv, T factor) {
    static_assert(std::is_arithmetic_v<T>, "allreduce_sum needs an arithmetic element type");
    tether::detail::require_send_recv(send.size(), recv.size());
    const std::uint64_t op = ++ops_;
    if constexpr (std::is_floating_point_v<T>) {
      if (polling() && size_ > 1 && recv.size() * sizeof(T) >= detail::ring_allreduce_min_bytes) {
        detail::ring_allreduce_sum(
            ring_comm(), rank_, size_, send.data(), recv.data(), recv.size(), max_count(), ring_scratch_,
            [this, op](std::span<MPI_Request> r, const char* what) { wait_all(r, what, op); },
            [this](int rc, const char* call) { check(rc, call); }, factor);
        const std::uint64_t moved = allreduce_bytes(recv.size(), sizeof(T));
        count(moved, moved);
        return;
      }
    }
    mpi_allreduce_sum(send, recv, op);
    if (factor != T(1))
      for (T& v : recv) v *= factor;
  }

  /// Non-blocking sum: `recv` receives the sum of every rank's `send` when the request completes
  /// (MPI_Iallreduce; in place when both are the same buffer). Neither buffer may be touched, and this
  /// communicator must live, until wait() returns. wait() honours the timeout.
  template <class T>
  [[nodiscard]] request iallreduce_sum(std::span<const T> send, std::span<T> recv) {
    static_assert(std::is_arithmetic_v<T>, "iallreduce_sum needs an arithmetic element type");
    tether::detail::require_send_recv(send.size(), recv.size());
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    auto op = std::make_shared<detail::pending_mpi>();
    const bool in_place = static_cast<const void*>(send.data()) == static_cast<const void*>(recv.data());
    detail::for_each_chunk(recv.size(), max_count(), [&](std::size_t lo, int len) {
      op->requests.push_back(MPI_REQUEST_NULL);
      check(MPI_Iallreduce(in_place ? MPI_IN_PLACE : static_cast<const void*>(send.data() + lo),
                           recv.data() + lo, len, dt, MPI_SUM, comm_, &op->requests.back()),
            "MPI_Iallreduce");
    });
    const std::uint64_t moved = allreduce_bytes(recv.size(), sizeof(T));
    count(moved, moved);
    return make_request(std::move(op), "MPI_Iallreduce", ++ops_);
  }

  /// Copies `root`'s buffer into every other rank's buffer (MPI_Bcast, in place).
  template <class T>
  void broadcast(std::span<T> data, int root) {
    check_root(root, "broadcast");
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    const std::uint64_t op = ++ops_;
    if (!polling()) {
      detail::for_each_chunk(data.size(), max_count(), [&](std::size_t lo, int len) {
        check(MPI_Bcast(data.data() + lo, len, dt, root, comm_), "MPI_Bcast");
      });
    } else {
      std::vector<MPI_Request> reqs;
      detail::for_each_chunk(data.size(), max_count(), [&](std::size_t lo, int len) {
        reqs.push_back(MPI_REQUEST_NULL);
        check(MPI_Ibcast(data.data() + lo, len, dt, root, comm_, &reqs.back()), "MPI_Ibcast");
      });
      wait_all(reqs, "MPI_Bcast", op);
    }
    count_broadcast(data.size() * sizeof(T), root);
  }

  /// Non-blocking broadcast (MPI_Ibcast): `data` must stay untouched until the request completes.
  template <class T>
  [[nodiscard]] request ibroadcast(std::span<T> data, int root) {
    check_root(root, "ibroadcast");
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    auto op = std::make_shared<detail::pending_mpi>();
    detail::for_each_chunk(data.size(), max_count(), [&](std::size_t lo, int len) {
      op->requests.push_back(MPI_REQUEST_NULL);
      check(MPI_Ibcast(data.data() + lo, len, dt, root, comm_, &op->requests.back()), "MPI_Ibcast");
    });
    count_broadcast(data.size() * sizeof(T), root);
    return make_request(std::move(op), "MPI_Ibcast", ++ops_);
  }

  /// True when MPI accepts pointers into `Space` directly: always for host memory; for CUDA memory when the
  /// MPI library is CUDA-aware, asked at run time (Open MPI's MPIX_Query_cuda_support; false for other
  /// MPIs); never for other memory spaces.
  template <class Space>
  [[nodiscard]] bool device_aware(Space = {}) const noexcept {
    if constexpr (std::same_as<Space, mem::host>) return true;
    else if constexpr (std::same_as<Space, mem::cuda>) return cuda_aware_;
    else return false;
  }

  /// True when the `(exec, view)` collectives pass a pointer into `Space` straight to MPI (device_aware and
  /// the device_direct option); false when they stage it through host memory. Throws tether::error when
  /// device_direct is `always` and MPI cannot take `Space`'s pointers.
  template <class Space>
  [[nodiscard]] bool device_direct(Space = {}) const {
    if constexpr (std::same_as<Space, mem::host>) return true;
    switch (opt_.device_direct) {
      case mpi_device_direct::never:
        return false;
      case mpi_device_direct::always:
        tether::detail::require(device_aware(Space{}), "rank ", rank_,
                                ": comm::mpi: device_direct = always, but this MPI library cannot take "
                                "pointers into the buffer's memory space (not CUDA-aware, or not CUDA memory); "
                                "use device_direct = automatic or never to stage through host memory");
        return true;
      case mpi_device_direct::automatic:
        break;
    }
    return device_aware(Space{});
  }

  /// In-place sum of a buffer in device memory: the device pointer goes to MPI_Allreduce when
  /// device_direct(Space) (after `exec.fence()`, so queued kernels have written it), otherwise it is staged
  /// through host memory as tether::detail::allreduce_sum does. Counters as for host buffers.
  template <class T, class Space, class Exec>
    requires(!std::same_as<Space, mem::host> && tether::detail::stages_through_host<Exec, T>)
  void allreduce_sum(const Exec& exec, view<T, Space> v) {
    if (device_direct(Space{})) {
      tether::detail::fence(exec);
      mpi_allreduce_sum(std::span<const T>(v.data(), v.size()), std::span<T>(v.data(), v.size()), ++ops_);
    } else {
      tether::detail::staged_allreduce_sum(exec, *this, v);
    }
  }

  /// Broadcast of a buffer in device memory: direct or staged, as allreduce_sum(exec, view).
  template <class T, class Space, class Exec>
    requires(!std::same_as<Space, mem::host> && tether::detail::stages_through_host<Exec, T>)
  void broadcast(const Exec& exec, view<T, Space> v, int root) {
    if (device_direct(Space{})) {
      tether::detail::fence(exec);
      broadcast(std::span<T>(v.data(), v.size()), root);
    } else {
      tether::detail::staged_broadcast(exec, *this, v, root);
    }
  }

  /// Non-blocking sum of buffers in device memory: direct (MPI_Iallreduce on the device pointers, which must
  /// stay untouched until the request completes) or staged (`send` is copied out now, `recv` written when
  /// the request is waited on), as allreduce_sum(exec, view).
  template <class T, class Space, class Exec>
    requires(!std::same_as<Space, mem::host> && tether::detail::stages_through_host<Exec, T>)
  [[nodiscard]] request iallreduce_sum(const Exec& exec, view<const T, Space> send, view<T, Space> recv) {
    if (device_direct(Space{})) {
      tether::detail::fence(exec);
      return iallreduce_sum(std::span<const T>(send.data(), send.size()), std::span<T>(recv.data(), recv.size()));
    }
    return tether::detail::staged_iallreduce_sum(exec, *this, send, recv);
  }

  /// The (score, rank) min-reduction of an election (MPI_Allreduce of MPI_DOUBLE_INT with MPI_MINLOC): the
  /// lowest finite score wins (compared as doubles), ties go to the lowest rank, a non-finite score never
  /// wins (rank -1 and score 0 when no score is finite). 12 bytes each way.
  [[nodiscard]] election min_loc(double score) { return min_loc(score, rank_); }

  /// min_loc with an explicit index per rank (ties go to the lowest index): hierarchical elections over
  /// threads inside ranks pass the global worker rank.
  [[nodiscard]] election min_loc(double score, int index) {
    detail::double_int in{std::isfinite(score) ? score : std::numeric_limits<double>::infinity(), index};
    detail::double_int out{};
    const std::uint64_t op = ++ops_;
    if (!polling()) {
      check(MPI_Allreduce(&in, &out, 1, MPI_DOUBLE_INT, MPI_MINLOC, comm_), "MPI_Allreduce");
    } else {
      MPI_Request r = MPI_REQUEST_NULL;
      check(MPI_Iallreduce(&in, &out, 1, MPI_DOUBLE_INT, MPI_MINLOC, comm_, &r), "MPI_Iallreduce");
      wait_all(std::span<MPI_Request>(&r, 1), "MPI_Allreduce (election)", op);
    }
    count(12, 12);
    return to_election(out);
  }

  /// Non-blocking election: `out` receives the result when the request completes (it must outlive the
  /// request).
  [[nodiscard]] request imin_loc(double score, election& out) {
    auto op = std::make_shared<detail::pending_mpi>();
    op->in = {std::isfinite(score) ? score : std::numeric_limits<double>::infinity(), rank_};
    op->requests.push_back(MPI_REQUEST_NULL);
    check(MPI_Iallreduce(&op->in, &op->out, 1, MPI_DOUBLE_INT, MPI_MINLOC, comm_, &op->requests.back()),
          "MPI_Iallreduce");
    election* target = &out;
    detail::pending_mpi* raw = op.get();
    op->on_complete = [raw, target] { *target = to_election(raw->out); };
    count(12, 12);
    return make_request(std::move(op), "MPI_Iallreduce (election)", ++ops_);
  }

  /// Opens a store of `initial.size()` values shared by the ranks, cut into the shards of `layout`, shard s
  /// in the window of rank (owner + s) % size() (collective; the one-sided tier, see
  /// docs/concepts.md#one-sided-tier): every rank gets a handle on the same values, `owner`'s `initial`.
  /// Every rank must pass the same size, layout and owner (tether::error on every rank otherwise). See
  /// mpi::store.
  template <class T>
  [[nodiscard]] store<T> open_store(std::span<const T> initial, const shard_layout& layout, int owner);

  /// Opens a pairwise link for messages of at most `bytes` bytes (collective; SwarmSGD). Defined in
  /// comm/mpi/pairwise.hpp (include it): see mpi_pairs.
  [[nodiscard]] mpi_pairs open_pairs(std::size_t bytes, const pair_options& o);
  [[nodiscard]] mpi_pairs open_pairs(std::size_t bytes);

  /// Collective check that every rank holds the same values: one MPI_Allreduce (MPI_MIN of v and ~v). On a
  /// mismatch every rank throws tether::error naming the value and what each rank holds.
  void check_consistent(std::span<const consistency_item> items) {
    const std::size_t k = items.size();
    std::vector<std::uint64_t> v(2 * k);
    for (std::size_t i = 0; i < k; ++i) {
      v[2 * i] = items[i].value;
      v[2 * i + 1] = ~items[i].value;
    }
    run_collective("MPI_Allreduce (consistency check)", [&](MPI_Request* r) {
      return r == nullptr ? MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_UINT64_T, MPI_MIN,
                                          comm_)
                          : MPI_Iallreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_UINT64_T,
                                           MPI_MIN, comm_, r);
    });
    std::size_t bad = k;
    for (std::size_t i = 0; i < k && bad == k; ++i)
      if (v[2 * i] != ~v[2 * i + 1]) bad = i;
    if (bad == k) return;
    // Every rank saw the mismatch: gather each rank's value to name them.
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
    std::uint64_t mine = items[bad].value;
    run_collective("MPI_Allgather (consistency check)", [&](MPI_Request* r) {
      return r == nullptr ? MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_)
                          : MPI_Iallgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_, r);
    });
    if (items[bad].describe == nullptr) tether::detail::throw_inconsistent(rank_, items[bad].what, all);
    // Options: every rank's description, to name the first field that differs (rank 0 against the lowest rank
    // whose fingerprint differs from rank 0's).
    const std::string text = items[bad].describe(items[bad].subject);
    const auto texts = gather_text(text);
    int other = 0;
    while (other < size_ && all[static_cast<std::size_t>(other)] == all[0]) ++other;
    const auto diff =
        other < size_ ? tether::detail::first_difference(texts[0], texts[static_cast<std::size_t>(other)], 0, other)
                      : std::nullopt;
    if (!diff) tether::detail::throw_inconsistent(rank_, items[bad].what, all);
    throw error(tether::detail::concat("tether: rank ", rank_, ": ranks disagree on ", items[bad].what,
                                       ": the first option that differs is ", *diff));
  }
  /// check_consistent for one value.
  void check_consistent(std::uint64_t value, const char* what) {
    const consistency_item item{value, what};
    check_consistent(std::span<const consistency_item>(&item, 1));
  }

  /// Waits for `reqs` (MPI_Testall polled by tether::detail::poll_until, bounded by the timeout: past it,
  /// tether::timeout; MPI_Waitall when the timeout is off). `what` names the operation in the error. `op`, when
  /// not 0, is the collective's index on this communicator: a rank that finished its run before it (its
  /// notice says so, see check_finish) never joins, and the wait throws tether::peer_finished at once.
  void wait_all(std::span<MPI_Request> reqs, const char* what, std::uint64_t op = 0) const {
    if (reqs.empty()) return;
    if (!polling()) {
      check(MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
      return;
    }
    std::uint64_t polls = 0;
    tether::detail::poll_until(
        opt_.timeout,
        [&] {
          if (test_all(reqs)) return true;
          if (op != 0 && board_ != nullptr && ++polls % 64 == 0) check_peers(what, op);
          return false;
        },
        [&] {
          return tether::detail::concat("tether: rank ", rank_, ": ", what, " did not complete within ",
                                        opt_.timeout, " s: a rank may have died (comm::mpi timeout)");
        });
  }

  /// The step-count agreement at the end of a run (collective; the optimizer's finish() calls it, see
  /// docs/reliability.md): every rank reports its `steps` on the notice channel, and when they differ every rank
  /// throws the same tether::error naming the rank that stopped early, its steps and the others'. A rank that
  /// finished (`finished`) first sends each other rank a notice, so a rank still waiting in a collective it will
  /// never complete learns it at once (its wait throws tether::peer_finished) and joins the agreement with
  /// `finished = false` and the step it is in: it always throws. Bounded by the timeout. Once per run (every
  /// rank calls it once); after a successful agreement the communicator is ready for the next run.
  void check_finish(std::uint64_t steps, bool finished = true) {
    const std::array<std::uint64_t, 2> mine{steps, finished ? 0u : 1u};
    const std::vector<std::uint64_t> all = gather_finish(mine, steps, finished);
    const std::string verdict =
        detail::finish_verdict(all, "rank", [](std::size_t k) { return tether::detail::concat("rank ", k); });
    if (verdict.empty()) {
      finish_agreed();
      return;
    }
    throw error(tether::detail::concat("tether: rank ", rank_, ": ", verdict));
  }

  /// The exchange of check_finish, for a caller that reports several workers per rank (comm::hierarchical):
  /// sends the finish notices (with `steps`) when `finished`, then gathers `mine` (as many values on every
  /// rank) from every rank on the notice channel; returns them in rank order. Bounded by the timeout. The
  /// caller decides: finish_agreed() when every rank finished after the same steps; otherwise the
  /// communicator is unusable.
  [[nodiscard]] std::vector<std::uint64_t> gather_finish(std::span<const std::uint64_t> mine,
                                                         std::uint64_t steps, bool finished) {
    tether::detail::require(
        !finish_checked_,
        "comm::mpi::check_finish: a previous agreement on this communicator failed; it is unusable");
    tether::detail::require(
        board_owned_ != nullptr,
        "comm::mpi::check_finish: call it on the communicator the run uses, not on a group");
    finish_checked_ = true;
    if (finished && size_ > 1)
      board_->announce(rank_,
                       {steps, ops_, static_cast<std::uint64_t>(group_id_), group_ ? group_->ops_ : ops_});
    const int k = static_cast<int>(mine.size());
    std::vector<std::uint64_t> all(mine.size() * static_cast<std::size_t>(size_));
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Iallgather(mine.data(), k, MPI_UINT64_T, all.data(), k, MPI_UINT64_T, board_->native(), &r),
          "MPI_Iallgather (step counts)");
    finish_wait([&] { return test_all(std::span<MPI_Request>(&r, 1)); },
                "the step-count agreement at the end of the run");
    finish_wait([&] { return board_->sends_done(); }, "sending the finish notices");
    return all;
  }

  /// Ends a successful agreement (every rank finished after the same steps): collects the notices still in
  /// flight, so none is left behind, and readies the communicator for the next run.
  void finish_agreed() {
    finish_wait([&] { return board_->all_received(); }, "collecting the finish notices");
    board_->next_run();
    finish_checked_ = false;
  }

  /// True when every request has completed (MPI_Testall; drives MPI's progress).
  [[nodiscard]] bool test_all(std::span<MPI_Request> reqs) const {
    int done = 0;
    check(MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
    return done != 0;
  }

  /// Throws tether::runtime_error naming `call` when `rc` is not MPI_SUCCESS.
  void check(int rc, const char* call) const {
    if (rc != MPI_SUCCESS)
      throw runtime_error(tether::detail::concat("tether: rank ", rank_, ": ", call, " failed: ",
                                                 detail::mpi_error_text(rc)));
  }

  /// True when blocking operations are polled against the timeout.
  [[nodiscard]] bool polling() const noexcept { return opt_.timeout > 0; }

 private:
  // The sum through MPI's own all-reduce (in place when send and recv are the same buffer): MPI_Allreduce
  // with the timeout off, MPI_Iallreduce polled against it otherwise. Device pointers (CUDA-aware MPI) come
  // here too: the ring reduces on the host.
  template <class T>
  void mpi_allreduce_sum(std::span<const T> send, std::span<T> recv, std::uint64_t op) {
    const MPI_Datatype dt = detail::mpi_datatype<T>();
    const bool in_place = static_cast<const void*>(send.data()) == static_cast<const void*>(recv.data());
    auto from = [&](std::size_t lo) { return in_place ? MPI_IN_PLACE : static_cast<const void*>(send.data() + lo); };
    if (!polling()) {
      detail::for_each_chunk(recv.size(), max_count(), [&](std::size_t lo, int len) {
        check(MPI_Allreduce(from(lo), recv.data() + lo, len, dt, MPI_SUM, comm_), "MPI_Allreduce");
      });
    } else {
      std::vector<MPI_Request> reqs;
      detail::for_each_chunk(recv.size(), max_count(), [&](std::size_t lo, int len) {
        reqs.push_back(MPI_REQUEST_NULL);
        check(MPI_Iallreduce(from(lo), recv.data() + lo, len, dt, MPI_SUM, comm_, &reqs.back()), "MPI_Iallreduce");
      });
      wait_all(reqs, "MPI_Allreduce", op);
    }
    const std::uint64_t moved = allreduce_bytes(recv.size(), sizeof(T));
    count(moved, moved);
  }

  // The ring all-reduce's own communicator (a duplicate, made by the first ring: collective, polled against
  // the timeout), so its point-to-point messages never meet anyone else's (a channel's MPI_ANY_TAG probes).
  // MPI_Comm_idup completes into the member, which outlives a request abandoned by a timeout.
  MPI_Comm ring_comm() {
    if (ring_ready_) return ring_comm_;
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Comm_idup(comm_, &ring_comm_, &r), "MPI_Comm_idup");
    wait_all(std::span<MPI_Request>(&r, 1), "MPI_Comm_idup (ring all-reduce)");
    ring_ready_ = true;
    return ring_comm_;
  }

  // Polls `done` against the timeout (forever when it is off): the waits of the step-count agreement.
  template <class Done>
  void finish_wait(Done&& done, const char* what) const {
    if (!polling()) {
      while (!done()) {
      }
      return;
    }
    tether::detail::poll_until(opt_.timeout, done, [&] {
      return tether::detail::concat("tether: rank ", rank_, ": ", what, " did not complete within ",
                                    opt_.timeout,
                                    " s: a rank may have died, or may still be running (comm::mpi timeout)");
    });
  }

  // Throws tether::peer_finished when a rank that finished its run completed fewer collectives on this
  // communicator than `op`, the one this rank waits in: that rank never joins it.
  void check_peers(const char* what, std::uint64_t op) const {
    board_->poll();
    const bool is_group = board_owned_ == nullptr;
    for (int r = 0; r < board_->size(); ++r) {
      const detail::finish_notice* n = board_->notice(r);
      if (n == nullptr || (is_group && n->group_id != static_cast<std::uint64_t>(group_id_))) continue;
      const std::uint64_t done = is_group ? n->group_ops : n->ops;
      if (done >= op) continue;
      throw peer_finished(tether::detail::concat(
          "tether: rank ", top_rank_, ": rank ", r, " finished its run after ", n->steps, " steps and never joins ",
          what, " (collective ", op, " of this ", is_group ? "group" : "communicator", "; rank ", r, " completed ",
          done, "): rank ", r, " stopped early"));
    }
  }

  // Every rank's `text` (MPI_Allgather of the lengths, MPI_Allgatherv of the characters), bounded by the timeout.
  std::vector<std::string> gather_text(const std::string& text) {
    const auto p = static_cast<std::size_t>(size_);
    std::vector<int> lengths(p);
    int mine = static_cast<int>(text.size());
    run_collective("MPI_Allgather (consistency check)", [&](MPI_Request* r) {
      return r == nullptr ? MPI_Allgather(&mine, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm_)
                          : MPI_Iallgather(&mine, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm_, r);
    });
    std::vector<int> offsets(p);
    int total = 0;
    for (std::size_t r = 0; r < p; ++r) {
      offsets[r] = total;
      total += lengths[r];
    }
    std::vector<char> chars(static_cast<std::size_t>(total) + 1);
    run_collective("MPI_Allgatherv (consistency check)", [&](MPI_Request* r) {
      return r == nullptr ? MPI_Allgatherv(text.data(), mine, MPI_CHAR, chars.data(), lengths.data(), offsets.data(),
                                           MPI_CHAR, comm_)
                          : MPI_Iallgatherv(text.data(), mine, MPI_CHAR, chars.data(), lengths.data(),
                                            offsets.data(), MPI_CHAR, comm_, r);
    });
    std::vector<std::string> out(p);
    for (std::size_t r = 0; r < p; ++r)
      out[r].assign(chars.data() + offsets[r], static_cast<std::size_t>(lengths[r]));
    return out;
  }

  // A group: owns `comm` (already split), shares the parent's options and counters.
  mpi(MPI_Comm comm, const options& o, comm_counters* counters) : comm_(comm), opt_(o), counters_(counters) {
    init_handle();
  }

  void init_handle() {
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    top_rank_ = rank_;
    cuda_aware_ = detail::mpi_cuda_aware();
  }

  void make_groups() {
    MPI_Comm split = MPI_COMM_NULL;
    if (opt_.group_size == 0) {
      check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &split), "MPI_Comm_split_type");
    } else {
      check(MPI_Comm_split(comm_, rank_ / opt_.group_size, rank_, &split), "MPI_Comm_split");
    }
    int gsize = 0;
    int grank = 0;
    int leader = 0;  // the group's lowest rank (split keys are ranks, so it is the group's rank 0)
    MPI_Group whole = MPI_GROUP_NULL;
    MPI_Group part = MPI_GROUP_NULL;
    std::vector<int> is_first(static_cast<std::size_t>(size_));
    try {
      check(MPI_Comm_set_errhandler(split, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
      check(MPI_Comm_size(split, &gsize), "MPI_Comm_size");
      check(MPI_Comm_rank(split, &grank), "MPI_Comm_rank");
      check(MPI_Comm_group(comm_, &whole), "MPI_Comm_group");
      check(MPI_Comm_group(split, &part), "MPI_Comm_group");
      const int zero = 0;
      const int rc = MPI_Group_translate_ranks(part, 1, &zero, whole, &leader);
      MPI_Group_free(&part);
      MPI_Group_free(&whole);
      check(rc, "MPI_Group_translate_ranks");
      // Number the groups by their lowest rank.
      int mine = grank == 0 ? 1 : 0;
      run_collective("MPI_Allgather (groups)", [&](MPI_Request* r) {
        return r == nullptr ? MPI_Allgather(&mine, 1, MPI_INT, is_first.data(), 1, MPI_INT, comm_)
                            : MPI_Iallgather(&mine, 1, MPI_INT, is_first.data(), 1, MPI_INT, comm_, r);
      });
    } catch (...) {
      MPI_Comm_free(&split);
      throw;
    }
    group_count_ = 0;
    group_id_ = 0;
    for (int r = 0; r < size_; ++r) {
      if (is_first[static_cast<std::size_t>(r)] == 0) continue;
      if (r < leader) ++group_id_;
      ++group_count_;
    }
    if (gsize == size_) {
      MPI_Comm_free(&split);
      return;
    }
    group_.reset(new mpi(split, opt_, counters_));
    group_->board_ = board_;
    group_->top_rank_ = rank_;
    group_->group_id_ = group_id_;
    group_->group_count_ = group_count_;
  }

  template <class Start>
  void run_collective(const char* what, Start&& start) {
    const std::uint64_t op = ++ops_;
    if (!polling()) {
      check(start(nullptr), what);
      return;
    }
    MPI_Request r = MPI_REQUEST_NULL;
    check(start(&r), what);
    wait_all(std::span<MPI_Request>(&r, 1), what, op);
  }

  [[nodiscard]] request make_request(std::shared_ptr<detail::pending_mpi> op, const char* what, std::uint64_t index) {
    const mpi* self = this;
    auto finish = [](detail::pending_mpi& o) {
      if (!o.completed) {
        o.completed = true;
        if (o.on_complete) o.on_complete();
      }
    };
    return request(
        [self, op, what, finish, index] {
          self->wait_all(op->requests, what, index);
          finish(*op);
        },
        [self, op, finish] {
          if (op->completed) return true;
          if (!self->test_all(op->requests)) return false;
          finish(*op);
          return true;
        });
  }

  static election to_election(const detail::double_int& r) noexcept {
    if (!std::isfinite(r.value)) return {};
    return {r.value, r.index};
  }

  void check_root(int root, const char* what) const {
    tether::detail::require(root >= 0 && root < size_, what, ": root must be in [0, ", size_, "), got root = ", root);
  }

  [[nodiscard]] std::uint64_t allreduce_bytes(std::size_t n, std::size_t s) const noexcept {
    return tether::detail::allreduce_payload_bytes(n, s, rank_, size_);
  }
  void count_broadcast(std::uint64_t bytes, int root) noexcept {
    tether::detail::count_broadcast(*counters_, bytes, rank_, root, size_);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  options opt_;
  int rank_ = 0;
  int size_ = 1;
  int group_id_ = 0;
  int group_count_ = 1;
  std::unique_ptr<mpi> group_;
  std::unique_ptr<detail::finish_board> board_owned_;  // the notices of finished ranks (top level only)
  detail::finish_board* board_ = nullptr;              // this communicator's, or its parent's for a group
  std::uint64_t ops_ = 0;                              // collectives started on this communicator
  bool finish_checked_ = false;
  int top_rank_ = 0;                                   // this process's rank on the top-level communicator
  comm_counters own_counters_{};
  comm_counters* counters_;
  bool cuda_aware_ = false;
  MPI_Comm ring_comm_ = MPI_COMM_NULL;      // see ring_comm()
  bool ring_ready_ = false;
  std::vector<std::byte> ring_scratch_;     // one shard of the ring all-reduce
};

}  // namespace tether::comm
