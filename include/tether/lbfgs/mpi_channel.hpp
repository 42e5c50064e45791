#pragma once
/// \file
/// lbfgs::mpi_channel: Sandblaster's point-to-point messages on comm::mpi, over a private duplicate of its
/// communicator (so a run's messages never meet the program's): MPI_Isend of byte messages, MPI_Improbe and
/// MPI_Mrecv in arrival order (non-overtaking between two ranks), polled with a short sleep so idle ranks
/// leave the cores to the ones computing. A rank that died (a replica without a shard) is left behind: sends
/// to it are released unfinished and their buffers kept, never freed under MPI's feet.

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tether/comm/mpi.hpp"
#include "tether/lbfgs/team_channel.hpp"
#include "tether/lbfgs/wire.hpp"

namespace tether::lbfgs {

/// See the file comment. Opened collectively by every rank of the communicator.
class mpi_channel {
 public:
  using clock = std::chrono::steady_clock;

  /// Collective: duplicates `c`'s communicator.
  explicit mpi_channel(comm::mpi& c) : parent_(&c), rank_(c.rank()), size_(c.size()) {
    c.check(MPI_Comm_dup(c.native(), &comm_), "MPI_Comm_dup");
    c.check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  }
  mpi_channel(const mpi_channel&) = delete;
  mpi_channel& operator=(const mpi_channel&) = delete;
  mpi_channel(mpi_channel&&) = delete;
  mpi_channel& operator=(mpi_channel&&) = delete;

  /// Without close() (a failed run): sends still in flight are released and their buffers kept; the
  /// communicator is left to MPI_Finalize (freeing it could wait for a rank that is gone).
  ~mpi_channel() {
    if (comm_ == MPI_COMM_NULL) return;
    abandon_sends();
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  /// Starts sending a message to rank `to` (MPI_Isend; the buffer is kept until the send completes).
  void send(int to, wire::tag kind, std::vector<std::byte> bytes) {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX))
      throw error(tether::detail::concat("tether: rank ", rank_, ": sandblaster_lbfgs: a message of ",
                                         bytes.size(),
                                         " bytes is above MPI's limit of INT_MAX bytes; use more shards"));
    pending_.push_back({MPI_REQUEST_NULL, std::move(bytes), to});
    auto& p = pending_.back();
    parent_->check(MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, to,
                             static_cast<int>(kind), comm_, &p.request),
                   "MPI_Isend");
    sent_ += p.bytes.size();
    parent_->count(p.bytes.size(), 0);
    progress();
  }

  /// The next message that arrived, if any (MPI_Improbe then MPI_Mrecv).
  [[nodiscard]] std::optional<wire::message> try_receive() {
    progress();
    int flag = 0;
    MPI_Message handle = MPI_MESSAGE_NULL;
    MPI_Status status;
    parent_->check(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, &handle, &status), "MPI_Improbe");
    if (flag == 0) return std::nullopt;
    int count = 0;
    parent_->check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
    wire::message m;
    m.kind = static_cast<wire::tag>(status.MPI_TAG);
    m.from = status.MPI_SOURCE;
    m.bytes.resize(static_cast<std::size_t>(count));
    parent_->check(MPI_Mrecv(m.bytes.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE), "MPI_Mrecv");
    received_ += m.bytes.size();
    parent_->count(0, m.bytes.size());
    return m;
  }

  /// The next message, polling until `deadline` at most (nullopt then): a few yields, then sleeps growing
  /// from 20 us to 1 ms.
  [[nodiscard]] std::optional<wire::message> receive(clock::time_point deadline) {
    auto nap = std::chrono::microseconds(20);
    for (int spin = 0;; ++spin) {
      if (auto m = try_receive()) return m;
      if (clock::now() >= deadline) return std::nullopt;
      if (spin < 32) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(nap);
        nap = std::min(nap * 2, std::chrono::microseconds(1000));
      }
    }
  }

  /// Best effort: tells every other rank that this one failed.
  void abort(const std::string& why) noexcept {
    try {
      wire::writer w;
      w.put_string(why);
      const auto bytes = w.take();
      for (int r = 0; r < size_; ++r)
        if (r != rank_) send(r, wire::tag::abort, bytes);
    } catch (...) {  // NOLINT(bugprone-empty-catch): the failure being reported is what matters
    }
  }

  /// The end of a run (every rank that is not `lost` said goodbye): waits a moment for the last sends to
  /// complete, leaves those to lost ranks behind, and frees the communicator when nobody was lost.
  void close(std::span<const int> lost) {
    const auto until = clock::now() + std::chrono::seconds(10);
    for (;;) {
      progress(true);
      const bool waiting = std::any_of(pending_.begin(), pending_.end(), [&](const pending& p) {
        return std::find(lost.begin(), lost.end(), p.to) == lost.end();
      });
      if (!waiting || clock::now() > until) break;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    const bool clean = pending_.empty() && lost.empty();
    abandon_sends();
    if (clean) MPI_Comm_free(&comm_);
    comm_ = MPI_COMM_NULL;
  }

  [[nodiscard]] std::uint64_t bytes_sent() const noexcept { return sent_; }
  [[nodiscard]] std::uint64_t bytes_received() const noexcept { return received_; }

 private:
  struct pending {
    MPI_Request request;
    std::vector<std::byte> bytes;
    int to;
  };

  /// Forgets completed sends: those at the front, and every 32nd call (or when many wait) all of them, since
  /// sends to different ranks complete out of order (one to a rank that died never does).
  void progress(bool all = false) {
    while (!pending_.empty()) {
      int done = 0;
      parent_->check(MPI_Test(&pending_.front().request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done == 0) break;
      pending_.pop_front();
    }
    if (!all && (++polls_ % 32 != 0 || pending_.size() < 2)) return;
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      parent_->check(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      it = done != 0 ? pending_.erase(it) : std::next(it);
    }
  }

  /// Releases the sends still in flight; their buffers are kept for the rest of the process, since MPI may
  /// still read them (a send to a rank that died never completes).
  void abandon_sends() noexcept {
    for (auto& p : pending_) {
      if (p.request != MPI_REQUEST_NULL) MPI_Request_free(&p.request);
      static std::vector<std::vector<std::byte>>* kept = new std::vector<std::vector<std::byte>>();  // NOLINT
      try {
        kept->push_back(std::move(p.bytes));
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the buffer then leaks with the deque
        new std::vector<std::byte>(std::move(p.bytes));  // NOLINT
      }
    }
    pending_.clear();
  }

  comm::mpi* parent_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_;
  int size_;
  std::deque<pending> pending_;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t polls_ = 0;
};

template <>
struct channel_for<comm::mpi> {
  using type = mpi_channel;
};

}  // namespace tether::lbfgs
