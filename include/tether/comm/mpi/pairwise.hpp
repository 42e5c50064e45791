#pragma once
/// \file
/// comm::mpi_pairs: comm::mpi's pairwise link (the pairwise tier, docs/concepts.md#pairwise-tier), opened
/// collectively by `mpi::open_pairs(bytes, options)`. Include this header next to <tether/comm/mpi.hpp>.
///
/// Active messages on a duplicate of the communicator, served at step boundaries (docs/algorithms/swarm_sgd.md
/// says why this and not a busy flag taken with MPI_Compare_and_swap): an exchange sends a request (a 16-byte
/// envelope: kind, the reply's length, a sequence number; then the message) with MPI_Isend; the peer takes it
/// when it polls (MPI_Improbe + MPI_Mrecv), its serve callback writes the reply, and the reply goes back with the
/// request's sequence number. While a rank waits for its reply it serves the others, so no cycle of waiting
/// ranks deadlocks. All messages between two ranks share one tag, so MPI's ordering between a pair of ranks
/// holds: a rank that waits for peer q and receives q's own request before any reply knows that q is waiting for
/// it too (q would have replied first otherwise), and both take the other's request as their answer (a
/// crossing, no serve on either side). Agreed swaps (the replay mode) use a second tag. `finish` and `sync` send
/// a small note to every rank and serve until every rank sent its own; a rank that waits there gets a
/// keep-alive note from the ranks still stepping, so that only a rank that died, or stalled for the timeout,
/// counts as silent.
///
/// A peer that does not answer within the timeout is lost: the request stays unanswered and its reply, should
/// it come later, is discarded. A rank that died never answers; a live rank that answers after the timeout has
/// applied the exchange on its side alone (the only case where one side applies and the other does not).

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "tether/comm/mpi/communicator.hpp"
#include "tether/comm/mpi/support.hpp"
#include "tether/comm/pairwise.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/error.hpp"

namespace tether::comm {

namespace detail {

/// The envelope of a pairwise message.
struct pair_envelope {
  std::uint32_t kind = 0;         ///< pair_kind
  std::uint32_t reply_bytes = 0;  ///< a request: the length of the reply it expects
  std::uint64_t seq = 0;          ///< a request/reply/refusal: the initiator's exchange number; a sync note: its count
};
static_assert(sizeof(pair_envelope) == 16);

enum pair_kind : std::uint32_t {
  pair_request_kind = 1,  ///< an exchange's request: the initiator's message
  pair_reply = 2,         ///< the served rank's reply
  pair_refuse = 3,        ///< the request was not served (the served rank's serve threw): nothing applied
  pair_done = 4,          ///< the sender called finish(): it starts no more exchanges and still serves
  pair_arrive = 5,        ///< the sender reached its seq-th sync()
  pair_alive = 6,         ///< the sender is stepping (to a rank that waits in finish or sync)
  pair_gone = 7,          ///< the sender closed its link: it answers nothing from now on
};

/// A message sent with MPI_Isend and the buffer it reads until it completes.
struct pair_send {
  std::vector<std::byte> buffer;
  MPI_Request request = MPI_REQUEST_NULL;
};

}  // namespace detail

/// One rank's pairwise link over a comm::mpi (see the file comment). The communicator must outlive it.
class mpi_pairs {
 public:
  using clock = std::chrono::steady_clock;

  /// Collective: duplicates the communicator (MPI_Comm_dup).
  mpi_pairs(mpi& comm, std::size_t bytes, pair_options o) : owner_(&comm), bytes_(bytes), opt_(o) {
    detail::validate_pair_options(o, bytes);
    comm.check(MPI_Comm_dup(comm.native(), &comm_), "MPI_Comm_dup (open_pairs)");
    comm.check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    rank_ = comm.rank();
    size_ = comm.size();
    const auto p = static_cast<std::size_t>(size_);
    done_.assign(p, 0);
    lost_.assign(p, 0);
    gone_.assign(p, 0);
    arrived_.assign(p, 0);
    heard_.assign(p, clock::now());
    alive_sent_.assign(p, clock::now());
    inbox_.resize(sizeof(detail::pair_envelope) + bytes_);
  }
  mpi_pairs(const mpi_pairs&) = delete;
  mpi_pairs& operator=(const mpi_pairs&) = delete;
  mpi_pairs(mpi_pairs&&) = delete;
  mpi_pairs& operator=(mpi_pairs&&) = delete;
  ~mpi_pairs() { close(); }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] std::size_t max_bytes() const noexcept { return bytes_; }
  [[nodiscard]] const pair_options& options() const noexcept { return opt_; }
  [[nodiscard]] const pair_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] bool in_flight() const noexcept { return in_flight_; }

  /// Exchanges `send` for `peer`'s reply in `recv` (exactly recv.size() bytes), serving others while it waits.
  template <class Serve>
  pair_status exchange(int peer, std::span<const std::byte> send, std::span<std::byte> recv, Serve&& serve) {
    if (auto r = start(peer, send, recv)) return *r;
    return wait(serve);
  }

  /// Starts an exchange: nullopt while in flight (`recv` must stay untouched until it completes; `send` is
  /// copied), or lost at once when the peer is known lost or has closed.
  std::optional<pair_status> start(int peer, std::span<const std::byte> send, std::span<std::byte> recv) {
    check_usable("exchange");
    tether::detail::require(!in_flight_, "exchange: rank ", rank_, " already has an exchange in flight with peer ",
                            out_peer_, " (one at a time)");
    check_peer(peer, "exchange");
    check_size(send.size(), "exchange: send");
    check_size(recv.size(), "exchange: recv");
    tether::detail::require(!finishing_, "exchange: rank ", rank_, " called finish() and starts no more exchanges");
    ++counters_.started;
    if (lost_[static_cast<std::size_t>(peer)] || gone_[static_cast<std::size_t>(peer)]) {
      ++counters_.lost;
      return pair_status::lost;
    }
    out_peer_ = peer;
    out_seq_ = ++seq_;
    out_recv_ = recv;
    out_sent_ = send.size();
    out_status_.reset();
    out_crossed_ = false;
    auto& s = new_send(sizeof(detail::pair_envelope) + send.size());
    write_envelope(s.buffer, {detail::pair_request_kind, static_cast<std::uint32_t>(recv.size()), out_seq_});
    if (!send.empty()) std::memcpy(s.buffer.data() + sizeof(detail::pair_envelope), send.data(), send.size());
    post(s, peer, pair_tag);
    deadline_ = clock::now() + seconds(opt_.timeout);
    in_flight_ = true;
    return std::nullopt;
  }

  /// Progresses the exchange in flight and serves the requests that arrived, without blocking: its status once
  /// it completed, nullopt while not (lost after the timeout).
  template <class Serve>
  std::optional<pair_status> test(Serve&& serve) {
    check_usable("test");
    progress(serve, true);
    if (!in_flight_) return std::nullopt;
    if (out_status_) return finish_out();
    if (clock::now() >= deadline_) {
      lost_[static_cast<std::size_t>(out_peer_)] = 1;  // its late reply, if any, is discarded
      out_status_ = pair_status::lost;
      return finish_out();
    }
    return std::nullopt;
  }

  /// Waits for the exchange in flight, serving others meanwhile.
  template <class Serve>
  pair_status wait(Serve&& serve) {
    tether::detail::require(in_flight_, "wait: rank ", rank_, " has no exchange in flight");
    for (std::uint64_t spins = 0;; ++spins) {
      if (auto r = test(serve)) return *r;
      idle(spins);
    }
  }

  /// Serves the requests that arrived (call at step boundaries).
  template <class Serve>
  void poll(Serve&& serve) {
    check_usable("poll");
    progress(serve, true);
  }

  /// An agreed swap with `peer` (which calls swap() naming this rank): each receives the other's message
  /// (exactly recv.size() bytes). Serves nobody meanwhile (requests that arrive wait for the next poll); lost
  /// when the peer finished or did not come within the timeout.
  pair_status swap(int peer, std::span<const std::byte> send, std::span<std::byte> recv) {
    check_usable("swap");
    tether::detail::require(!in_flight_, "swap: rank ", rank_, " has an exchange in flight");
    check_peer(peer, "swap");
    check_size(send.size(), "swap: send");
    check_size(recv.size(), "swap: recv");
    const auto q = static_cast<std::size_t>(peer);
    if (lost_[q] || done_[q] || gone_[q]) return pair_status::lost;
    auto& s = new_send(send.size());
    if (!send.empty()) std::memcpy(s.buffer.data(), send.data(), send.size());
    post(s, peer, swap_tag);
    MPI_Request r = MPI_REQUEST_NULL;
    owner_->check(MPI_Irecv(recv.data(), static_cast<int>(recv.size()), MPI_BYTE, peer, swap_tag, comm_, &r),
                  "MPI_Irecv (swap)");
    const auto deadline = clock::now() + seconds(opt_.timeout);
    auto noop = [](int, std::span<const std::byte>, std::span<std::byte>) {};
    for (std::uint64_t spins = 0;; ++spins) {
      int flag = 0;
      MPI_Status st;
      owner_->check(MPI_Test(&r, &flag, &st), "MPI_Test (swap)");  // (st.MPI_ERROR is not set by MPI_Test)
      if (flag != 0) {
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (static_cast<std::size_t>(count) != recv.size())
          throw runtime_error(tether::detail::concat("tether: swap: rank ", rank_, ": peer ", peer, " sent ", count,
                                                     " bytes, this rank expects ", recv.size()));
        ++counters_.swaps;
        owner_->count(send.size(), recv.size());
        return pair_status::done;
      }
      progress(noop, false);  // notes only: a peer that finished swaps no more
      if (done_[q] || gone_[q] || clock::now() >= deadline) {
        MPI_Cancel(&r);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        lost_[q] = 1;
        return pair_status::lost;
      }
      idle(spins);
    }
  }

  /// A barrier that keeps serving: returns once every other rank has called sync() as often, finished, been lost,
  /// or been silent for the timeout. No exchange may be in flight.
  template <class Serve>
  void sync(Serve&& serve) {
    check_usable("sync");
    tether::detail::require(!in_flight_, "sync: rank ", rank_, " has an exchange in flight");
    const std::uint64_t gen = ++synced_;
    notify_all({detail::pair_arrive, 0, gen});
    // A request from a rank that already arrived here was started after it passed: it is kept for this rank's
    // next poll, not served inside the barrier (its arrival note came first: MPI keeps the order of a pair).
    syncing_ = gen;
    try {
      wait_for_others(serve, [&](std::size_t r) { return arrived_[r] >= gen; });
    } catch (...) {
      syncing_ = 0;
      throw;
    }
    syncing_ = 0;
  }

  /// Starts no more exchanges and serves the others until each has finished, been lost or been silent for the
  /// timeout; then closes. No exchange may be in flight.
  template <class Serve>
  void finish(Serve&& serve) {
    check_usable("finish");
    tether::detail::require(!in_flight_, "finish: rank ", rank_, " has an exchange in flight");
    finishing_ = true;
    notify_all({detail::pair_done, 0, 0});
    wait_for_others(serve, [](std::size_t) { return false; });
    close();
  }

  /// Stops answering (the destructor does it): tells every rank this one is gone (their exchanges with it are
  /// lost at once), then takes and drops every message still coming to this rank until each rank it has not
  /// lost has said it is gone too, and waits for the messages this rank sent; at most min(timeout, 5) s for
  /// both, then frees the duplicate communicator. Freeing it with messages still in flight would let MPI match
  /// them on a later communicator that reuses its context id (seen with Open MPI: the next optimizer's collective
  /// on the same ranks hung). Past the bound (a rank that never closes: its program failed) the sends still
  /// pending are left to MPI (their buffers are kept).
  void close() noexcept {
    if (comm_ == MPI_COMM_NULL) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) return;
    try {
      for (int r = 0; r < size_; ++r)
        if (r != rank_ && !lost_[static_cast<std::size_t>(r)]) notify(r, {detail::pair_gone, 0, 0});
    } catch (...) {  // NOLINT(bugprone-empty-catch): closing anyway; the others time out instead
    }
    const auto deadline = clock::now() + seconds(std::min(opt_.timeout, 5.0));
    std::vector<std::byte> scratch;
    for (std::uint64_t spins = 0; clock::now() < deadline; ++spins) {
      reap_sends();
      if (drain_one(scratch)) {
        spins = 0;
        continue;
      }
      if (sends_.empty() && every_other_rank_gone()) break;
      idle(spins);
    }
    for (auto& s : sends_) {
      if (s->request != MPI_REQUEST_NULL) {
        MPI_Request_free(&s->request);  // completes in the background; its buffer must outlive it
        abandoned().push_back(std::move(s));
      }
    }
    sends_.clear();
    MPI_Comm_free(&comm_);
    comm_ = MPI_COMM_NULL;
  }

 private:
  static constexpr int pair_tag = 0;
  static constexpr int swap_tag = 1;

  static clock::duration seconds(double s) {
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
  }
  static std::vector<std::unique_ptr<detail::pair_send>>& abandoned() {
    static std::vector<std::unique_ptr<detail::pair_send>> a;  // buffers of sends MPI may still read
    return a;
  }

  void check_usable(const char* what) const {
    tether::detail::require(comm_ != MPI_COMM_NULL, what, ": rank ", rank_, ": the pairwise link is closed");
  }
  void check_peer(int peer, const char* what) const {
    tether::detail::require(peer >= 0 && peer < size_ && peer != rank_, what, ": rank ", rank_,
                            ": peer must be another rank in [0, ", size_, "), got peer = ", peer);
  }
  void check_size(std::size_t n, const char* what) const {
    tether::detail::require(n <= bytes_, what, " has ", n, " bytes, more than the link's ", bytes_,
                            "-byte messages (rank ", rank_, ")");
  }

  static void idle(std::uint64_t spins) {
    if (spins < 64) return;
    if (spins < 1024) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(20));  // ranks may share cores (oversubscribed)
  }

  static void write_envelope(std::vector<std::byte>& b, detail::pair_envelope e) { std::memcpy(b.data(), &e, sizeof e); }

  detail::pair_send& new_send(std::size_t n) {
    reap_sends();
    sends_.push_back(std::make_unique<detail::pair_send>());
    sends_.back()->buffer.resize(n);
    return *sends_.back();
  }
  void post(detail::pair_send& s, int peer, int tag) {
    owner_->check(MPI_Isend(s.buffer.data(), static_cast<int>(s.buffer.size()), MPI_BYTE, peer, tag, comm_, &s.request),
                  "MPI_Isend (pairwise)");
  }
  void reap_sends() {
    std::erase_if(sends_, [](const std::unique_ptr<detail::pair_send>& s) {
      if (s->request == MPI_REQUEST_NULL) return true;
      int flag = 0;
      MPI_Test(&s->request, &flag, MPI_STATUS_IGNORE);
      return flag != 0;
    });
  }

  // close(): takes one message of any tag addressed to this rank, if one has arrived, and notes a peer's
  // pair_gone; returns whether there was one. Nothing is answered any more.
  bool drain_one(std::vector<std::byte>& scratch) noexcept {
    int flag = 0;
    MPI_Message msg = MPI_MESSAGE_NULL;
    MPI_Status st;
    if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, &msg, &st) != MPI_SUCCESS || flag == 0) return false;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    scratch.resize(std::max<std::size_t>(static_cast<std::size_t>(std::max(count, 0)), 1));
    if (MPI_Mrecv(scratch.data(), count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) != MPI_SUCCESS) return false;
    detail::pair_envelope e{};
    if (st.MPI_TAG == pair_tag && static_cast<std::size_t>(count) >= sizeof e) {
      std::memcpy(&e, scratch.data(), sizeof e);
      if (e.kind == detail::pair_gone) gone_[static_cast<std::size_t>(st.MPI_SOURCE)] = 1;
    }
    return true;
  }
  // close(): whether every other rank has said it is gone or was lost.
  [[nodiscard]] bool every_other_rank_gone() const noexcept {
    for (int r = 0; r < size_; ++r) {
      const auto k = static_cast<std::size_t>(r);
      if (r != rank_ && !gone_[k] && !lost_[k]) return false;
    }
    return true;
  }

  void notify(int r, detail::pair_envelope e) {
    auto& s = new_send(sizeof e);
    write_envelope(s.buffer, e);
    post(s, r, pair_tag);
  }
  void notify_all(detail::pair_envelope e) {
    for (int r = 0; r < size_; ++r)
      if (r != rank_) notify(r, e);
  }

  pair_status finish_out() {
    in_flight_ = false;
    const pair_status st = *out_status_;
    if (st == pair_status::done) {
      ++counters_.done;
      if (out_crossed_) ++counters_.crossed;
      owner_->count(out_sent_, out_recv_.size());
    } else {
      ++counters_.lost;
    }
    return st;
  }

  // Takes every message that arrived (requests are served when `serve_requests`, kept for later otherwise) and
  // sends keep-alive notes to the ranks that wait for this one in finish() or sync().
  template <class Serve>
  void progress(Serve& serve, bool serve_requests) {
    reap_sends();
    if (serve_requests && syncing_ == 0) {
      while (!deferred_.empty()) {
        auto d = std::move(deferred_.front());
        deferred_.pop_front();
        answer(serve, d.first, std::span<const std::byte>(d.second));
      }
    }
    for (;;) {
      int flag = 0;
      MPI_Message msg = MPI_MESSAGE_NULL;
      MPI_Status st;
      owner_->check(MPI_Improbe(MPI_ANY_SOURCE, pair_tag, comm_, &flag, &msg, &st), "MPI_Improbe (pairwise)");
      if (flag == 0) break;
      int count = 0;
      MPI_Get_count(&st, MPI_BYTE, &count);
      const int from = st.MPI_SOURCE;
      std::vector<std::byte> big;
      std::byte* into = inbox_.data();
      if (static_cast<std::size_t>(count) > inbox_.size()) {  // oversized: take it, then refuse it below
        big.resize(static_cast<std::size_t>(count));
        into = big.data();
      }
      owner_->check(MPI_Mrecv(into, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE), "MPI_Mrecv (pairwise)");
      heard_[static_cast<std::size_t>(from)] = clock::now();
      if (static_cast<std::size_t>(count) < sizeof(detail::pair_envelope))
        throw runtime_error(tether::detail::concat("tether: pairwise link: rank ", rank_, ": peer ", from, " sent a ",
                                                   count, "-byte message, shorter than the 16-byte envelope"));
      detail::pair_envelope e;
      std::memcpy(&e, into, sizeof e);
      const std::span<const std::byte> payload(into + sizeof e, static_cast<std::size_t>(count) - sizeof e);
      switch (e.kind) {
        case detail::pair_request_kind:
          if (!big.empty()) {
            notify(from, {detail::pair_refuse, 0, e.seq});
            throw runtime_error(tether::detail::concat("tether: pairwise link: rank ", rank_, ": peer ", from,
                                                       " sent a ", payload.size(), "-byte message, more than this "
                                                       "link's ", bytes_, "-byte messages"));
          }
          if (in_flight_ && !out_status_ && from == out_peer_) {
            // A crossing: the peer is waiting for this rank too; its request is the answer, and this rank's
            // request is the peer's.
            if (payload.size() != out_recv_.size())
              throw runtime_error(tether::detail::concat(
                  "tether: exchange: rank ", rank_, ": peer ", from, " sent a ", payload.size(),
                  "-byte message, this rank expects ", out_recv_.size(), " (a different codec or parameter count?)"));
            if (!payload.empty()) std::memcpy(out_recv_.data(), payload.data(), payload.size());
            out_status_ = pair_status::done;
            out_crossed_ = true;
          } else if (serve_requests && !(syncing_ > 0 && arrived_[static_cast<std::size_t>(from)] >= syncing_)) {
            const std::uint32_t want = e.reply_bytes;
            answer(serve, from, payload, e.seq, want);
          } else {
            deferred_.push_back({from, std::vector<std::byte>(into, into + count)});
          }
          break;
        case detail::pair_reply:
        case detail::pair_refuse:
          if (in_flight_ && !out_status_ && from == out_peer_ && e.seq == out_seq_) {
            if (e.kind == detail::pair_refuse) {
              out_status_ = pair_status::lost;
            } else {
              if (payload.size() != out_recv_.size())
                throw runtime_error(tether::detail::concat("tether: exchange: rank ", rank_, ": peer ", from,
                                                           " replied with ", payload.size(), " bytes, this rank expects ",
                                                           out_recv_.size()));
              if (!payload.empty()) std::memcpy(out_recv_.data(), payload.data(), payload.size());
              out_status_ = pair_status::done;
            }
          }
          break;  // a late reply to an exchange that timed out: discarded
        case detail::pair_done:
          done_[static_cast<std::size_t>(from)] = 1;
          break;
        case detail::pair_arrive:
          arrived_[static_cast<std::size_t>(from)] = std::max(arrived_[static_cast<std::size_t>(from)], e.seq);
          break;
        case detail::pair_alive:
          break;
        case detail::pair_gone:
          gone_[static_cast<std::size_t>(from)] = 1;
          if (in_flight_ && !out_status_ && from == out_peer_) out_status_ = pair_status::lost;
          break;
        default:
          throw runtime_error(tether::detail::concat("tether: pairwise link: rank ", rank_, ": peer ", from,
                                                     " sent a message of unknown kind ", e.kind));
      }
    }
    // Keep-alive notes to the ranks waiting for this one (it is still stepping): a quarter of the timeout apart.
    if (!finishing_) {
      const auto now = clock::now();
      for (int r = 0; r < size_; ++r) {
        const auto k = static_cast<std::size_t>(r);
        if (r == rank_ || lost_[k] || !(done_[k] || arrived_[k] > synced_)) continue;
        if (now - alive_sent_[k] < seconds(opt_.timeout / 4)) continue;
        alive_sent_[k] = now;
        notify(r, {detail::pair_alive, 0, 0});
      }
    }
  }

  // A request, taken from the full message (its envelope first) kept while serving was not allowed.
  template <class Serve>
  void answer(Serve& serve, int from, std::span<const std::byte> whole) {
    detail::pair_envelope e;
    std::memcpy(&e, whole.data(), sizeof e);
    answer(serve, from, whole.subspan(sizeof e), e.seq, e.reply_bytes);
  }

  template <class Serve>
  void answer(Serve& serve, int from, std::span<const std::byte> payload, std::uint64_t seq, std::uint32_t want) {
    if (want > bytes_) {
      notify(from, {detail::pair_refuse, 0, seq});
      throw runtime_error(tether::detail::concat("tether: pairwise link: rank ", rank_, ": peer ", from,
                                                 " expects a ", want, "-byte reply, more than this link's ", bytes_,
                                                 "-byte messages"));
    }
    auto& s = new_send(sizeof(detail::pair_envelope) + want);
    try {
      detail::call_serve(serve, from, payload,
                         std::span<std::byte>(s.buffer.data() + sizeof(detail::pair_envelope), want));
    } catch (...) {
      write_envelope(s.buffer, {detail::pair_refuse, 0, seq});
      s.buffer.resize(sizeof(detail::pair_envelope));
      post(s, from, pair_tag);
      throw;
    }
    write_envelope(s.buffer, {detail::pair_reply, 0, seq});
    post(s, from, pair_tag);
    ++counters_.served;
    owner_->count(want, payload.size());
  }

  template <class Serve, class Passed>
  void wait_for_others(Serve& serve, Passed passed) {
    const auto since = clock::now();
    const auto timeout = seconds(opt_.timeout);
    for (std::uint64_t spins = 0;; ++spins) {
      progress(serve, true);
      const auto now = clock::now();
      bool all = true;
      for (int r = 0; r < size_ && all; ++r) {
        const auto k = static_cast<std::size_t>(r);
        if (r == rank_ || lost_[k] || done_[k] || gone_[k] || passed(k)) continue;
        if (now - std::max(heard_[k], since) >= timeout) {
          lost_[k] = 1;  // silent: died, or stalled past the timeout
          continue;
        }
        all = false;
      }
      if (all) return;
      idle(spins);
    }
  }

  mpi* owner_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  std::size_t bytes_;
  pair_options opt_;
  pair_counters counters_{};
  std::vector<std::byte> inbox_;
  std::vector<std::unique_ptr<detail::pair_send>> sends_;
  std::deque<std::pair<int, std::vector<std::byte>>> deferred_;
  std::vector<char> done_, lost_, gone_;
  std::vector<std::uint64_t> arrived_;
  std::vector<clock::time_point> heard_, alive_sent_;
  std::uint64_t seq_ = 0;
  std::uint64_t synced_ = 0;
  std::uint64_t syncing_ = 0;  // the sync() generation being waited for (0: none)
  bool finishing_ = false;
  // The exchange in flight.
  bool in_flight_ = false;
  int out_peer_ = -1;
  std::uint64_t out_seq_ = 0;
  std::span<std::byte> out_recv_;
  std::size_t out_sent_ = 0;
  std::optional<pair_status> out_status_;
  bool out_crossed_ = false;
  clock::time_point deadline_{};
};

static_assert(gossip_link<mpi_pairs>, "mpi_pairs must model comm::gossip_link (docs/algorithms/swarm_sgd.md#the-pairwise-link)");

/// Opens comm::mpi's pairwise link (collective): see mpi_pairs.
inline mpi_pairs mpi::open_pairs(std::size_t bytes, const pair_options& o) { return mpi_pairs(*this, bytes, o); }
inline mpi_pairs mpi::open_pairs(std::size_t bytes) { return mpi_pairs(*this, bytes, pair_options{}); }

}  // namespace tether::comm
