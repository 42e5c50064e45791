#pragma once
/// \file
/// The notices by which comm::mpi's ranks learn that another rank finished its run (the step-count agreement
/// of docs/reliability.md#a-rank-that-stops-early). A rank that calls check_finish sends every other rank a
/// notice (its steps and how many collectives it completed) on a private duplicate of the communicator; every
/// rank keeps one receive posted there, tested while it waits in a collective, so a rank waiting in a
/// collective that a finished rank never joins knows it at once instead of after its timeout.

#include <mpi.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tether/comm/mpi/support.hpp"
#include "tether/core/error.hpp"

namespace tether::comm::detail {

/// A finished rank's notice: its steps, the collectives it completed on the communicator and on its group,
/// and its group's index.
struct finish_notice {
  std::uint64_t steps = 0;
  std::uint64_t ops = 0;
  std::uint64_t group_id = 0;
  std::uint64_t group_ops = 0;
};

/// The notice channel of one comm::mpi (shared by its group): a duplicate communicator, one receive posted on
/// it, and the notices received so far (one per rank at most).
class finish_board {
 public:
  static constexpr int tag = 7;

  /// Collective over `comm`: duplicates it and posts the first receive.
  explicit finish_board(MPI_Comm comm) {
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup (finish notices)");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    int size = 1;
    MPI_Comm_size(comm_, &size);
    notices_.resize(static_cast<std::size_t>(size));
    has_.assign(static_cast<std::size_t>(size), false);
    if (size > 1) post();
  }
  finish_board(const finish_board&) = delete;
  finish_board& operator=(const finish_board&) = delete;
  finish_board(finish_board&&) = delete;
  finish_board& operator=(finish_board&&) = delete;

  ~finish_board() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) return;
    if (pending_ != MPI_REQUEST_NULL) {
      MPI_Cancel(&pending_);
      MPI_Wait(&pending_, MPI_STATUS_IGNORE);
    }
    for (auto& r : sends_)
      if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
    MPI_Comm_free(&comm_);
  }

  [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }

  /// Records the notices that arrived (MPI_Test of the posted receive; reposted after each).
  void poll() {
    while (pending_ != MPI_REQUEST_NULL) {
      int done = 0;
      MPI_Status st;
      check(MPI_Test(&pending_, &done, &st), "MPI_Test (finish notices)");
      if (done == 0) return;
      record(st.MPI_SOURCE);
      if (received_ + 1 < static_cast<int>(notices_.size())) post();
    }
  }

  /// True once every other rank's notice has arrived (records those that came; the caller polls it).
  [[nodiscard]] bool all_received() {
    poll();
    return received_ + 1 >= static_cast<int>(notices_.size());
  }

  /// Starts the next run on this communicator (after an agreement that collected every notice): forgets the
  /// notices of the run that ended, keeps those of the next run that came early, reposts the receive.
  void next_run() {
    std::fill(has_.begin(), has_.end(), false);
    received_ = 0;
    auto early = std::move(later_);
    later_.clear();
    for (const auto& [r, n] : early) {
      const auto k = static_cast<std::size_t>(r);
      if (has_[k]) {
        later_.emplace_back(r, n);
        continue;
      }
      notices_[k] = n;
      has_[k] = true;
      ++received_;
    }
    if (pending_ == MPI_REQUEST_NULL && received_ + 1 < size()) post();
  }

  /// The notice of `rank`, if it finished.
  [[nodiscard]] const finish_notice* notice(int rank) const noexcept {
    const auto r = static_cast<std::size_t>(rank);
    return has_[r] ? &notices_[r] : nullptr;
  }
  [[nodiscard]] int size() const noexcept { return static_cast<int>(notices_.size()); }

  /// Sends `n` to every rank but `self` (MPI_Isend; completed by sends_done).
  void announce(int self, const finish_notice& n) {
    outgoing_ = {n.steps, n.ops, n.group_id, n.group_ops};
    for (int r = 0; r < size(); ++r) {
      if (r == self) continue;
      sends_.push_back(MPI_REQUEST_NULL);
      check(MPI_Isend(outgoing_.data(), 4, MPI_UINT64_T, r, tag, comm_, &sends_.back()), "MPI_Isend (finish notice)");
    }
  }
  /// True when the notices sent have left (MPI_Testall).
  [[nodiscard]] bool sends_done() {
    if (sends_.empty()) return true;
    int done = 0;
    check(MPI_Testall(static_cast<int>(sends_.size()), sends_.data(), &done, MPI_STATUSES_IGNORE),
          "MPI_Testall (finish notices)");
    if (done != 0) sends_.clear();
    return done != 0;
  }

 private:
  static void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS)
      throw runtime_error(tether::detail::concat("tether: comm::mpi: ", call, " failed: ", mpi_error_text(rc)));
  }
  void post() {
    check(MPI_Irecv(incoming_.data(), 4, MPI_UINT64_T, MPI_ANY_SOURCE, tag, comm_, &pending_),
          "MPI_Irecv (finish notices)");
  }
  void record(int source) {
    const auto r = static_cast<std::size_t>(source);
    if (r >= notices_.size()) return;
    const finish_notice n{incoming_[0], incoming_[1], incoming_[2], incoming_[3]};
    if (has_[r]) {
      later_.emplace_back(source, n);  // a notice of the next run (MPI keeps each sender's order)
      return;
    }
    notices_[r] = n;
    has_[r] = true;
    ++received_;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Request pending_ = MPI_REQUEST_NULL;
  std::array<std::uint64_t, 4> incoming_{};
  std::array<std::uint64_t, 4> outgoing_{};
  std::vector<MPI_Request> sends_;
  std::vector<finish_notice> notices_;
  std::vector<bool> has_;
  std::vector<std::pair<int, finish_notice>> later_;
  int received_ = 0;
};

/// The verdict of the step-count agreement from every worker's (steps, waiting) pair, in worker order: empty
/// when every worker finished after the same steps, else the message every worker raises. `noun` names a
/// worker in general ("rank", or "worker" on comm::hierarchical) and `name(k)` worker k.
template <class Name>
[[nodiscard]] std::string finish_verdict(std::span<const std::uint64_t> all, const char* noun, Name&& name) {
  const std::size_t p = all.size() / 2;
  std::uint64_t most = 0;
  bool all_finished = true;
  for (std::size_t k = 0; k < p; ++k) {
    most = std::max(most, all[2 * k]);
    all_finished = all_finished && all[2 * k + 1] == 0;
  }
  std::size_t early = p;
  for (std::size_t k = 0; k < p; ++k)
    if (all[2 * k] < most && (early == p || all[2 * k] < all[2 * early])) early = k;
  if (all_finished && early == p) return {};
  std::size_t reached = 0;
  while (reached < p && all[2 * reached] != most) ++reached;
  std::string listing;
  const std::size_t shown = std::min<std::size_t>(p, 8);
  for (std::size_t k = 0; k < shown; ++k)
    listing += tether::detail::concat(k == 0 ? "" : ", ", name(k), " ", all[2 * k],
                                      all[2 * k + 1] == 0 ? " (finished)" : " (waiting in a collective)");
  if (shown < p) listing += ", ...";
  if (early == p)
    return tether::detail::concat("the ", noun, "s took the same steps but not the same collectives (a ", noun,
                                  " waits in one that a finished ", noun, " never joined); steps per ", noun, ": ",
                                  listing);
  return tether::detail::concat(name(early), " stopped early: it finished its run after ", all[2 * early],
                                " steps, while ", name(reached), " reached step ", most, " (every ", noun,
                                " must take the same steps); steps per ", noun, ": ", listing);
}

}  // namespace tether::comm::detail
