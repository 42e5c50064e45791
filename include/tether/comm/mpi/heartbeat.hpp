#pragma once
/// \file
/// comm::mpi::heartbeat: how the ranks of a protocol in which nobody waits for anybody (asynchronous EASGD)
/// learn that one of them died. Every rank sends every other rank a one-byte note ("alive") at most every
/// quarter of the timeout while it steps, and "finished" when its run ends, on a private duplicate of the
/// communicator; each beat first takes in the notes that arrived (MPI_Iprobe, MPI_Recv). A rank not heard
/// from for the timeout, and not finished, is silent: it died, or stalled that long.

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tether/comm/mpi/support.hpp"
#include "tether/core/error.hpp"

namespace tether::comm::detail {

/// The notes of one run (see the file comment). Collective to construct.
class heartbeat {
 public:
  static constexpr int tag = 11;

  /// Collective over `comm`: duplicates it. `timeout` > 0, in seconds.
  heartbeat(MPI_Comm comm, double timeout) : timeout_(timeout) {
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup (heartbeat)");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    int size = 1;
    MPI_Comm_size(comm_, &size);
    const auto now = clock::now();
    heard_.assign(static_cast<std::size_t>(size), now);
    finished_.assign(static_cast<std::size_t>(size), false);
    sent_ = now;
    send(alive_note);
  }
  heartbeat(const heartbeat&) = delete;
  heartbeat& operator=(const heartbeat&) = delete;
  heartbeat(heartbeat&&) = delete;
  heartbeat& operator=(heartbeat&&) = delete;

  ~heartbeat() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) return;
    MPI_Comm_free(&comm_);  // the notes not received are dropped with it
  }

  /// Takes in the notes that arrived, and sends "alive" when a quarter of the timeout has passed since the last.
  void beat() {
    receive();
    const auto now = clock::now();
    if (now - sent_ >= seconds(timeout_ / 4)) {
      sent_ = now;
      send(alive_note);
    }
  }

  /// Tells every other rank that this one's run ended (it will not beat again).
  void finished() { send(finished_note); }

  /// The lowest rank not heard from for the timeout and not finished, or -1.
  [[nodiscard]] int silent() const {
    const auto now = clock::now();
    for (std::size_t r = 0; r < heard_.size(); ++r)
      if (static_cast<int>(r) != rank_ && !finished_[r] && now - heard_[r] >= seconds(timeout_))
        return static_cast<int>(r);
    return -1;
  }

  /// Seconds since rank r was last heard from.
  [[nodiscard]] double silent_for(int r) const {
    return std::chrono::duration<double>(clock::now() - heard_[static_cast<std::size_t>(r)]).count();
  }

 private:
  using clock = std::chrono::steady_clock;
  static constexpr unsigned char alive_note = 0;
  static constexpr unsigned char finished_note = 1;

  static clock::duration seconds(double s) {
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
  }
  static void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS)
      throw runtime_error(tether::detail::concat("tether: comm::mpi: ", call, " failed: ", mpi_error_text(rc)));
  }

  /// One note to every other rank. The sends are freed at once: a note is a static byte and small enough to
  /// leave eagerly, and one to a dead rank must not be waited for.
  void send(const unsigned char& note) {
    for (int r = 0; r < static_cast<int>(heard_.size()); ++r) {
      if (r == rank_) continue;
      MPI_Request req = MPI_REQUEST_NULL;
      check(MPI_Isend(&note, 1, MPI_UNSIGNED_CHAR, r, tag, comm_, &req), "MPI_Isend (heartbeat)");
      check(MPI_Request_free(&req), "MPI_Request_free (heartbeat)");
    }
  }

  void receive() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      check(MPI_Iprobe(MPI_ANY_SOURCE, tag, comm_, &flag, &st), "MPI_Iprobe (heartbeat)");
      if (flag == 0) return;
      unsigned char note = 0;
      check(MPI_Recv(&note, 1, MPI_UNSIGNED_CHAR, st.MPI_SOURCE, tag, comm_, MPI_STATUS_IGNORE),
            "MPI_Recv (heartbeat)");
      const auto r = static_cast<std::size_t>(st.MPI_SOURCE);
      heard_[r] = clock::now();
      if (note == finished_note) finished_[r] = true;
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  double timeout_;
  int rank_ = 0;
  clock::time_point sent_{};
  std::vector<clock::time_point> heard_;
  std::vector<bool> finished_;
};

}  // namespace tether::comm::detail
