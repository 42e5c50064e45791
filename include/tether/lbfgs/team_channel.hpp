#pragma once
/// \file
/// lbfgs::team_channel: Sandblaster's point-to-point messages on a thread team: one mailbox per worker (a
/// queue under a lock, with a condition variable), shared by the team's workers for one run. Messages are
/// copied into the receiver's mailbox and counted on the workers' comm_counters as if they crossed a wire.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tether/comm/shared_memory.hpp"
#include "tether/lbfgs/wire.hpp"

namespace tether::lbfgs {

namespace detail {

/// The mailboxes of one run on a team.
struct team_mailboxes {
  struct box {
    std::mutex m;
    std::condition_variable cv;
    std::deque<wire::message> q;
  };
  explicit team_mailboxes(int p) : boxes(static_cast<std::size_t>(p)) {}
  std::vector<box> boxes;
};

}  // namespace detail

/// See the file comment. Opened collectively by every worker of the team; the mailboxes live until the last
/// worker's channel is gone.
class team_channel {
 public:
  using clock = std::chrono::steady_clock;

  /// Collective: rank 0 creates the mailboxes and the others take a share of them.
  explicit team_channel(comm::team_worker& w) : w_(&w), rank_(w.rank()), size_(w.size()) {
    std::shared_ptr<detail::team_mailboxes> made;
    if (rank_ == 0) made = std::make_shared<detail::team_mailboxes>(size_);
    std::uint64_t where = rank_ == 0 ? reinterpret_cast<std::uintptr_t>(&made) : 0;
    w.broadcast(std::span<std::uint64_t>(&where, 1), 0);
    if (rank_ == 0)
      boxes_ = made;
    else
      boxes_ = *reinterpret_cast<const std::shared_ptr<detail::team_mailboxes>*>(
          static_cast<std::uintptr_t>(where));
    w.barrier();  // rank 0's `made` is read until here
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  /// Puts a message in worker `to`'s mailbox (never blocks for long).
  void send(int to, wire::tag kind, std::vector<std::byte> bytes) {
    const std::uint64_t n = bytes.size();
    auto& b = boxes_->boxes.at(static_cast<std::size_t>(to));
    {
      std::lock_guard lk(b.m);
      b.q.push_back(wire::message{kind, rank_, std::move(bytes)});
    }
    b.cv.notify_one();
    if (to != rank_) {
      sent_ += n;
      w_->count(n, 0);
    }
  }

  /// The next message of this worker's mailbox, if any.
  [[nodiscard]] std::optional<wire::message> try_receive() { return receive(clock::time_point::min()); }

  /// The next message, waiting until `deadline` at most (nullopt then).
  [[nodiscard]] std::optional<wire::message> receive(clock::time_point deadline) {
    auto& b = boxes_->boxes[static_cast<std::size_t>(rank_)];
    std::unique_lock lk(b.m);
    if (b.q.empty() && deadline != clock::time_point::min())
      b.cv.wait_until(lk, deadline, [&] { return !b.q.empty(); });
    if (b.q.empty()) return std::nullopt;
    wire::message m = std::move(b.q.front());
    b.q.pop_front();
    lk.unlock();
    if (m.from != rank_) {
      received_ += m.bytes.size();
      w_->count(0, m.bytes.size());
    }
    return m;
  }

  /// Best effort: tells every other worker that this one failed, so none waits for it until its timeout.
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

  /// The end of a run: nothing is in flight on a team (sends complete at once).
  void close(std::span<const int> /*lost*/) noexcept {}

  [[nodiscard]] std::uint64_t bytes_sent() const noexcept { return sent_; }
  [[nodiscard]] std::uint64_t bytes_received() const noexcept { return received_; }

 private:
  comm::team_worker* w_;
  int rank_;
  int size_;
  std::shared_ptr<detail::team_mailboxes> boxes_;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
};

/// The channel Sandblaster opens on a communicator (specialised for each communicator it runs on).
template <class Comm>
struct channel_for;

template <>
struct channel_for<comm::team_worker> {
  using type = team_channel;
};

}  // namespace tether::lbfgs
