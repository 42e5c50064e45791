#pragma once
/// \file
/// comm::team_pairs: the thread team's pairwise link (the pairwise tier, docs/concepts.md#pairwise-tier),
/// opened collectively by `team_worker::open_pairs(bytes, options)`.
///
/// A board shared by the workers holds one mailbox per worker (its inbox of requests, its phase, when it last
/// called the link) under one mutex, with a condition variable per worker. An exchange posts a request (the
/// initiator's message and reply buffers, no copy) into the peer's inbox; the peer takes it at a step boundary
/// (`poll`, or while it waits for its own exchange) and its serve callback reads the message and writes the
/// reply straight into the initiator's buffers. A request is withdrawn only while nobody has taken it, so an
/// exchange is applied on both sides or on neither. Two workers that start exchanges with each other meet: the
/// second one to start takes the first one's request as its answer and gives its own message as the reply
/// (a crossing: no serve on either side). No global lock is held while messages are read or written.
///
/// A peer that is closed (its handle destroyed: its thread returned or threw; or finished), that refuses (its
/// serve threw), or that does not take the request within the timeout gives pair_status::lost.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "tether/comm/pairwise.hpp"
#include "tether/comm/team/state.hpp"
#include "tether/comm/team/worker.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/error.hpp"

namespace tether::comm {

namespace detail {

/// Where a posted request stands. Its initiator owns it; the board's mutex guards its state.
enum class pair_state : std::uint8_t {
  idle,       ///< not posted
  posted,     ///< in the peer's inbox, not taken: may be withdrawn
  taken,      ///< the peer is reading the message and writing the reply: wait
  answered,   ///< the reply is in the initiator's buffer
  refused,    ///< the peer could not answer (closed, or its serve threw): nothing applied
};

/// A request of one worker to another: buffers of the initiator, read and written by the peer.
struct pair_request {
  int from = -1;
  int to = -1;
  bool swap = false;     ///< an agreed swap: matched only by the peer's own swap with this worker
  bool crossed = false;  ///< answered by the peer's own exchange (no serve)
  std::span<const std::byte> message;
  std::span<std::byte> reply;
  pair_state state = pair_state::idle;
};

/// A worker's place on the board.
enum class pair_phase : std::uint8_t {
  active,     ///< steps, starts exchanges, serves at its step boundaries
  finishing,  ///< starts no more exchanges, serves until every other worker finished
  closed,     ///< answers nothing: requests to it are refused
};

/// The board one link shares between the workers of a team.
class pair_board {
 public:
  using clock = std::chrono::steady_clock;

  struct mailbox {
    std::condition_variable cv;
    std::deque<pair_request*> inbox;
    pair_phase phase = pair_phase::active;
    std::uint64_t arrived = 0;  ///< sync() calls made
    clock::time_point seen = clock::now();
    std::size_t bytes = 0;      ///< the largest message this worker takes
  };

  explicit pair_board(int size) {
    boxes_.reserve(static_cast<std::size_t>(size));
    for (int r = 0; r < size; ++r) boxes_.push_back(std::make_unique<mailbox>());
  }

  [[nodiscard]] int size() const noexcept { return static_cast<int>(boxes_.size()); }
  [[nodiscard]] std::mutex& mutex() noexcept { return m_; }
  [[nodiscard]] mailbox& box(int r) noexcept { return *boxes_[static_cast<std::size_t>(r)]; }
  /// Wakes every worker waiting on the board (a phase or a sync count changed). Call with the mutex held.
  void wake_all() noexcept {
    for (auto& b : boxes_) b->cv.notify_all();
  }

 private:
  std::mutex m_;
  std::vector<std::unique_ptr<mailbox>> boxes_;
};

}  // namespace detail

/// One worker's pairwise link over its team (see the file comment). Not copyable; movable while no exchange is
/// in flight. Destroying it (the worker returned or threw) closes it: the others see this worker as lost.
class team_pairs {
 public:
  using clock = std::chrono::steady_clock;

  team_pairs(std::shared_ptr<detail::pair_board> board, team_worker& w, std::size_t bytes, pair_options o)
      : board_(std::move(board)), worker_(&w), rank_(w.rank()), bytes_(bytes), opt_(o),
        out_(std::make_unique<detail::pair_request>()) {
    std::lock_guard lk(board_->mutex());
    auto& me = board_->box(rank_);
    me.bytes = bytes;
    me.seen = clock::now();
  }
  team_pairs(const team_pairs&) = delete;
  team_pairs& operator=(const team_pairs&) = delete;
  team_pairs(team_pairs&&) noexcept = default;
  team_pairs& operator=(team_pairs&&) = delete;
  ~team_pairs() { close(); }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return board_ ? board_->size() : 0; }
  /// The largest message this link carries.
  [[nodiscard]] std::size_t max_bytes() const noexcept { return bytes_; }
  [[nodiscard]] const pair_options& options() const noexcept { return opt_; }
  [[nodiscard]] const pair_counters& counters() const noexcept { return counters_; }
  /// Whether an exchange started by start() has not completed yet.
  [[nodiscard]] bool in_flight() const noexcept { return in_flight_; }

  /// Exchanges `send` for `peer`'s reply in `recv` (exactly recv.size() bytes), serving requests of other
  /// workers while it waits. done: `recv` holds the peer's message; lost: nothing applied on either side.
  template <class Serve>
  pair_status exchange(int peer, std::span<const std::byte> send, std::span<std::byte> recv, Serve&& serve) {
    if (auto r = start(peer, send, recv)) return *r;
    return wait(serve);
  }

  /// Starts an exchange without waiting: nullopt while it is in flight (then `send` and `recv` must stay
  /// untouched until test() or wait() returns its status), or its status at once (the peer is gone, or the
  /// peer had already started an exchange with this worker: a crossing, done at once).
  std::optional<pair_status> start(int peer, std::span<const std::byte> send, std::span<std::byte> recv) {
    check_open("exchange");
    tether::detail::require(!in_flight_, "exchange: worker ", rank_, " already has an exchange in flight with peer ",
                            out_->to, " (one at a time)");
    check_peer(peer, "exchange");
    check_size(send.size(), "exchange: send");
    check_size(recv.size(), "exchange: recv");
    std::unique_lock lk(board_->mutex());
    auto& me = board_->box(rank_);
    me.seen = clock::now();
    tether::detail::require(me.phase == detail::pair_phase::active, "exchange: worker ", rank_,
                            " called finish() and starts no more exchanges");
    ++counters_.started;
    if (board_->box(peer).phase == detail::pair_phase::closed) {
      ++counters_.lost;
      return pair_status::lost;
    }
    if (detail::pair_request* q = take(me, peer, /*swap=*/false)) {
      lk.unlock();
      meet(q, send, recv, "exchange");
      ++counters_.done;
      ++counters_.crossed;
      return pair_status::done;
    }
    post(peer, send, recv, /*swap=*/false);
    return std::nullopt;
  }

  /// Progresses the exchange in flight without blocking: serves the requests waiting for this worker and returns
  /// the exchange's status once it completed (nullopt while it has not; lost once it timed out).
  template <class Serve>
  std::optional<pair_status> test(Serve&& serve) {
    check_open("test");
    if (auto r = settle_outgoing()) return record(*r);
    serve_inbox(serve);
    if (auto r = settle_outgoing()) return record(*r);
    return std::nullopt;
  }

  /// Waits for the exchange in flight, serving others meanwhile; its status.
  template <class Serve>
  pair_status wait(Serve&& serve) {
    tether::detail::require(in_flight_, "wait: worker ", rank_, " has no exchange in flight");
    for (;;) {
      if (auto r = test(serve)) return *r;
      std::unique_lock lk(board_->mutex());
      auto& me = board_->box(rank_);
      const auto ready = [&] {
        return out_->state == detail::pair_state::answered || out_->state == detail::pair_state::refused ||
               has_request(me, false) || board_->box(out_->to).phase == detail::pair_phase::closed;
      };
      if (out_->state == detail::pair_state::taken)
        me.cv.wait(lk, ready);  // the peer is serving: its answer comes without any wait of its own
      else
        me.cv.wait_until(lk, deadline_, ready);
    }
  }

  /// Serves the requests waiting for this worker (call at step boundaries).
  template <class Serve>
  void poll(Serve&& serve) {
    check_open("poll");
    {
      std::lock_guard lk(board_->mutex());
      board_->box(rank_).seen = clock::now();
    }
    serve_inbox(serve);
  }

  /// An agreed swap: `peer` calls swap() naming this worker, and each receives the other's message (the replay
  /// mode: a schedule both ends know). Serves nobody while it waits; lost when the peer finished, closed or does
  /// not come within the timeout.
  pair_status swap(int peer, std::span<const std::byte> send, std::span<std::byte> recv) {
    check_open("swap");
    tether::detail::require(!in_flight_, "swap: worker ", rank_, " has an exchange in flight");
    check_peer(peer, "swap");
    check_size(send.size(), "swap: send");
    check_size(recv.size(), "swap: recv");
    std::unique_lock lk(board_->mutex());
    auto& me = board_->box(rank_);
    me.seen = clock::now();
    // A peer that finished swaps no more (the replay's schedule has passed its end).
    if (board_->box(peer).phase != detail::pair_phase::active) return pair_status::lost;
    if (detail::pair_request* q = take(me, peer, /*swap=*/true)) {
      lk.unlock();
      meet(q, send, recv, "swap");
      ++counters_.swaps;
      return pair_status::done;
    }
    post(peer, send, recv, /*swap=*/true);
    for (;;) {
      me.cv.wait_until(lk, deadline_, [&] {
        return out_->state == detail::pair_state::answered || out_->state == detail::pair_state::refused ||
               board_->box(peer).phase != detail::pair_phase::active;
      });
      lk.unlock();
      if (auto r = settle_outgoing()) {
        if (*r == pair_status::done) ++counters_.swaps;
        return *r;
      }
      lk.lock();
    }
  }

  /// A barrier that keeps serving: returns once every other worker has called sync() as often, finished, closed,
  /// or been silent (no call to its link) for the timeout. No exchange may be in flight. After it, nobody
  /// exchanges until the workers move on: a point where the models hold still (to evaluate them, say).
  template <class Serve>
  void sync(Serve&& serve) {
    check_open("sync");
    tether::detail::require(!in_flight_, "sync: worker ", rank_, " has an exchange in flight");
    std::uint64_t gen = 0;
    {
      std::lock_guard lk(board_->mutex());
      auto& me = board_->box(rank_);
      gen = ++me.arrived;
      me.seen = clock::now();
      board_->wake_all();
    }
    // A worker reaches sync() with no exchange in flight, so a request from one that has reached it was started
    // after it passed: it belongs to the next phase and waits for this worker's next step boundary.
    wait_for_others(serve, gen, [gen](const detail::pair_board::mailbox& b) {
      return b.phase != detail::pair_phase::active || b.arrived >= gen;
    });
  }

  /// Starts no more exchanges and serves the others until each has finished, closed, or been silent for the
  /// timeout; then closes. No exchange may be in flight (wait for it first).
  template <class Serve>
  void finish(Serve&& serve) {
    check_open("finish");
    tether::detail::require(!in_flight_, "finish: worker ", rank_, " has an exchange in flight");
    {
      std::lock_guard lk(board_->mutex());
      auto& me = board_->box(rank_);
      if (me.phase == detail::pair_phase::active) me.phase = detail::pair_phase::finishing;
      me.seen = clock::now();
      board_->wake_all();
    }
    wait_for_others(serve, 0, [](const detail::pair_board::mailbox& b) { return b.phase != detail::pair_phase::active; });
    close();
  }

  /// Closes the link (the destructor does it): settles the exchange in flight (withdrawn, or its answer awaited
  /// if the peer is writing it), refuses every request waiting here, and answers nothing from now on.
  void close() noexcept {
    if (!board_) return;
    std::unique_lock lk(board_->mutex());
    auto& me = board_->box(rank_);
    if (me.phase == detail::pair_phase::closed) return;
    if (in_flight_ || out_->state == detail::pair_state::posted || out_->state == detail::pair_state::taken) {
      if (out_->state == detail::pair_state::posted) {
        unlink(out_.get());
        out_->state = detail::pair_state::refused;
      }
      me.cv.wait(lk, [&] { return out_->state != detail::pair_state::taken; });
      in_flight_ = false;
    }
    me.phase = detail::pair_phase::closed;
    for (detail::pair_request* q : me.inbox) {
      q->state = detail::pair_state::refused;
      board_->box(q->from).cv.notify_all();
    }
    me.inbox.clear();
    board_->wake_all();
  }

 private:
  void check_open(const char* what) const {
    tether::detail::require(static_cast<bool>(board_), what, ": the link was moved from");
    (void)what;
  }
  void check_peer(int peer, const char* what) const {
    tether::detail::require(peer >= 0 && peer < size() && peer != rank_, what, ": worker ", rank_,
                            ": peer must be another worker in [0, ", size(), "), got peer = ", peer);
  }
  void check_size(std::size_t n, const char* what) const {
    tether::detail::require(n <= bytes_, what, " has ", n, " bytes, more than the link's ", bytes_,
                            "-byte messages (worker ", rank_, ")");
  }

  bool has_request(const detail::pair_board::mailbox& me, bool swap, std::uint64_t before = 0) const {
    return std::any_of(me.inbox.begin(), me.inbox.end(), [&](const detail::pair_request* q) {
      return q->swap == swap && q->state == detail::pair_state::posted &&
             (before == 0 || board_->box(q->from).arrived < before);
    });
  }

  // Takes (mutex held) the posted request of `from` (any sender when from < 0) of the given kind, if any; with
  // `before` > 0, only from a sender that has made fewer than `before` sync() calls.
  detail::pair_request* take(detail::pair_board::mailbox& me, int from, bool swap, std::uint64_t before = 0) {
    for (auto it = me.inbox.begin(); it != me.inbox.end(); ++it) {
      detail::pair_request* q = *it;
      if (q->swap != swap || q->state != detail::pair_state::posted || (from >= 0 && q->from != from)) continue;
      if (before > 0 && board_->box(q->from).arrived >= before) continue;
      me.inbox.erase(it);
      q->state = detail::pair_state::taken;
      return q;
    }
    return nullptr;
  }

  // Removes a posted request from its peer's inbox (mutex held).
  void unlink(detail::pair_request* q) {
    auto& in = board_->box(q->to).inbox;
    in.erase(std::remove(in.begin(), in.end(), q), in.end());
  }

  void post(int peer, std::span<const std::byte> send, std::span<std::byte> recv, bool swap) {
    *out_ = detail::pair_request{rank_, peer, swap, false, send, recv, detail::pair_state::posted};
    auto& box = board_->box(peer);
    box.inbox.push_back(out_.get());
    box.cv.notify_all();
    deadline_ = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opt_.timeout));
    in_flight_ = true;
  }

  // Counts the completion of an exchange this worker started.
  pair_status record(pair_status r) {
    if (r == pair_status::done) {
      ++counters_.done;
      if (last_crossed_) ++counters_.crossed;
    } else {
      ++counters_.lost;
    }
    return r;
  }

  // The completion of the outgoing request, if it completed (mutex taken here): answered, refused, or withdrawn
  // because the timeout passed or the peer closed while nobody had taken it.
  std::optional<pair_status> settle_outgoing() {
    if (!in_flight_) return std::nullopt;
    std::lock_guard lk(board_->mutex());
    board_->box(rank_).seen = clock::now();
    switch (out_->state) {
      case detail::pair_state::answered:
        in_flight_ = false;
        last_crossed_ = out_->crossed;
        worker_->count(out_->message.size(), out_->reply.size());
        return pair_status::done;
      case detail::pair_state::refused:
        in_flight_ = false;
        return pair_status::lost;
      case detail::pair_state::posted:
        if (clock::now() >= deadline_ || board_->box(out_->to).phase == detail::pair_phase::closed ||
            (out_->swap && board_->box(out_->to).phase != detail::pair_phase::active)) {
          unlink(out_.get());
          out_->state = detail::pair_state::refused;
          in_flight_ = false;
          return pair_status::lost;
        }
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  // Both ends started toward each other: `q` (taken) is the peer's request; its message is this worker's answer
  // and `send` the peer's reply.
  void meet(detail::pair_request* q, std::span<const std::byte> send, std::span<std::byte> recv, const char* what) {
    const bool fits = q->message.size() == recv.size() && send.size() == q->reply.size();
    if (fits) {
      if (!recv.empty()) std::memcpy(recv.data(), q->message.data(), recv.size());
      if (!send.empty()) std::memcpy(q->reply.data(), send.data(), send.size());
    }
    {
      std::lock_guard lk(board_->mutex());
      q->crossed = true;
      q->state = fits ? detail::pair_state::answered : detail::pair_state::refused;
      board_->box(q->from).cv.notify_all();
    }
    if (!fits)
      throw runtime_error(tether::detail::concat(
          "tether: ", what, ": worker ", rank_, ": peer ", q->from, " sent a ", q->message.size(),
          "-byte message and expects a ", q->reply.size(), "-byte reply; this worker sends ", send.size(),
          " bytes and expects ", recv.size(), " (a different codec or parameter count?)"));
    worker_->count(send.size(), recv.size());
  }

  // Serves every request waiting in this worker's inbox, one at a time, without the mutex held while serving;
  // with `before` > 0 (inside sync number `before`), only those of workers that have not reached that sync.
  template <class Serve>
  void serve_inbox(Serve& serve, std::uint64_t before = 0) {
    for (;;) {
      detail::pair_request* q = nullptr;
      {
        std::lock_guard lk(board_->mutex());
        q = take(board_->box(rank_), -1, /*swap=*/false, before);
      }
      if (q == nullptr) return;
      try {
        if (q->message.size() > bytes_)
          throw runtime_error(tether::detail::concat("tether: pairwise link: worker ", rank_, ": peer ", q->from,
                                                     " sent a ", q->message.size(), "-byte message, more than this "
                                                     "link's ", bytes_, "-byte messages"));
        detail::call_serve(serve, q->from, q->message, q->reply);
      } catch (...) {
        std::lock_guard lk(board_->mutex());
        q->state = detail::pair_state::refused;
        board_->box(q->from).cv.notify_all();
        throw;
      }
      const std::size_t in = q->message.size();
      const std::size_t out = q->reply.size();
      {
        std::lock_guard lk(board_->mutex());
        q->state = detail::pair_state::answered;
        board_->box(q->from).cv.notify_all();  // q may be reused by its initiator from here on
      }
      ++counters_.served;
      worker_->count(out, in);
    }
  }

  // Serves until every other worker satisfies `passed`, is closed, or has been silent for the timeout.
  template <class Serve, class Passed>
  void wait_for_others(Serve& serve, std::uint64_t before, Passed passed) {
    const auto timeout = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opt_.timeout));
    const auto tick = std::min<clock::duration>(timeout, std::chrono::milliseconds(20));
    for (;;) {
      std::unique_lock lk(board_->mutex());
      auto& me = board_->box(rank_);
      me.seen = clock::now();
      const auto all_passed = [&] {
        const auto now = clock::now();
        for (int r = 0; r < size(); ++r) {
          if (r == rank_) continue;
          const auto& b = board_->box(r);
          if (!passed(b) && b.phase != detail::pair_phase::closed && now - b.seen < timeout) return false;
        }
        return true;
      };
      if (all_passed()) return;
      lk.unlock();
      serve_inbox(serve, before);
      lk.lock();
      me.cv.wait_for(lk, tick, [&] { return has_request(me, false, before) || all_passed(); });
    }
  }

  std::shared_ptr<detail::pair_board> board_;
  team_worker* worker_;
  int rank_;
  std::size_t bytes_;
  pair_options opt_;
  std::unique_ptr<detail::pair_request> out_;  // stable address: peers hold a pointer to it while it is posted
  bool in_flight_ = false;
  bool last_crossed_ = false;
  clock::time_point deadline_{};
  pair_counters counters_{};
};

static_assert(gossip_link<team_pairs>, "team_pairs must model comm::gossip_link (docs/algorithms/swarm_sgd.md#the-pairwise-link)");

/// Opens the team's pairwise link (collective over this handle's group): see team_pairs.
inline team_pairs team_worker::open_pairs(std::size_t bytes, const pair_options& o) {
  detail::validate_pair_options(o, bytes);
  auto& st = *state_;
  std::shared_ptr<detail::pair_board> board;
  if (rank_ == 0) board = std::make_shared<detail::pair_board>(size());
  st.ptrs()[static_cast<std::size_t>(rank_)] = &board;
  st.barrier();
  {
    detail::collective_phase phase(st, 1);
    if (rank_ != 0) board = *static_cast<const std::shared_ptr<detail::pair_board>*>(st.ptrs()[0]);
    phase.sync();  // rank 0's `board` is read until here
  }
  return team_pairs(std::move(board), *this, bytes, o);
}

inline team_pairs team_worker::open_pairs(std::size_t bytes) { return open_pairs(bytes, pair_options{}); }

}  // namespace tether::comm
