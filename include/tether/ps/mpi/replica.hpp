#pragma once
/// \file
/// ps::mpi_replica: a replica rank of the MPI placement. A push sends each shard's slice of the accrued gradient
/// to its server in place (the header and the values in one message) from one half of a double buffer while the
/// replica accrues into the other; it waits for the push before last (its sends and acknowledgements) only when
/// it needs that half again, so one push is always in flight. A fetch asks every shard and waits for the values,
/// straight into x. Every wait is bounded: a server that neither answers nor says it is alive within the
/// communicator's timeout is reported dead, naming its rank. The replica renews its lease with a heartbeat when
/// it has sent a server nothing for a quarter of the lease. A checkpoint's cut completes its pushes, tells
/// every server it arrived and waits for their verdicts.

#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tether/comm/mpi/communicator.hpp"
#include "tether/core/checkpoint.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/exec/serial.hpp"
#include "tether/ps/mpi/wire.hpp"
#include "tether/ps/stats.hpp"
#include "tether/ps/store_options.hpp"

namespace tether::ps {

/// A replica rank. See the file comment. Buffers are host memory.
template <class T>
class mpi_replica {
 public:
  mpi_replica(comm::mpi& channel, shard_layout layout, int servers, int replicas, const store_options& o, double lease,
              double timeout)
      : ch_(&channel), layout_(layout), servers_(servers), replicas_(replicas), opt_(o), lease_(lease),
        timeout_(timeout), rank_(channel.rank()), versions_(layout.shards(), 0),
        last_sent_(static_cast<std::size_t>(servers)), heard_(static_cast<std::size_t>(servers)) {
    for (auto& b : bufs_) b.assign(layout_.size(), T(0));
    for (auto& h : push_head_) h.resize(layout_.shards());
    for (auto& a : acks_) a.resize(layout_.shards());
    fetch_req_.resize(layout_.shards());
    fetch_head_.resize(layout_.shards());
    const auto now = clock::now();
    for (auto& t : last_sent_) t = now;
    for (auto& t : heard_) t = now;
  }

  mpi_replica(const mpi_replica&) = delete;
  mpi_replica& operator=(const mpi_replica&) = delete;
  ~mpi_replica() { cancel_all(); }

  /// The rank of the server that holds shard s.
  [[nodiscard]] int server_of(std::size_t s) const noexcept {
    return replicas_ + static_cast<int>(s % static_cast<std::size_t>(servers_));
  }

  /// First step. Replica 0 sends the shards their initial values (its x) and returns true; the others ask every
  /// server whether they may start (held during the warm start), initialise the shards of a server that asks
  /// them to (replica 0 was lost before it could), and return false (they must fetch).
  bool join(const T* x) {
    if (rank_ == 0) {
      send_init(x, -1);
      return true;
    }
    std::vector<mpi_wire::header> answers(static_cast<std::size_t>(servers_));
    std::vector<pending> reqs;
    join_head_ = {.replica = rank_};
    for (int j = 0; j < servers_; ++j) {
      recv_header(answers[static_cast<std::size_t>(j)], replicas_ + j, mpi_wire::joined, reqs);
      send_header(join_head_, replicas_ + j, mpi_wire::join, reqs);
    }
    wait(reqs, "joining (warm start, initialisation)");
    for (int j = 0; j < servers_; ++j)
      if (answers[static_cast<std::size_t>(j)].value == mpi_wire::role_initialise) send_init(x, replicas_ + j);
    return false;
  }

  /// The half of the double buffer the replica accrues into (not in flight).
  [[nodiscard]] T* accumulator() noexcept { return bufs_[cur_].data(); }

  /// Pushes `g` (the accumulator, or another buffer, copied) at rate `lr`: one message per shard. Then waits
  /// for the push before last, whose buffer becomes the accumulator.
  void push(const T* g, T lr) {
    const std::size_t slot = cur_;
    T* buf = bufs_[slot].data();
    if (g != buf && layout_.size() > 0) std::memcpy(buf, g, layout_.size() * sizeof(T));
    auto& reqs = push_reqs_[slot];
    reqs.clear();
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      push_head_[slot][s] = {.replica = rank_, .shard = static_cast<std::int64_t>(s), .value = steps_,
                             .lr = static_cast<double>(lr)};
      recv_header(acks_[slot][s], server_of(s), mpi_wire::ack, reqs);
      send_values(push_head_[slot][s], buf + layout_.begin(s), layout_.count(s), server_of(s), mpi_wire::push, reqs);
    }
    ch_->count(layout_.size() * sizeof(T), 0);
    in_flight_[slot] = true;
    cur_ ^= 1u;
    complete(cur_);
  }

  /// Waits for every push in flight and records what the servers said of them.
  void release() {
    complete(cur_ ^ 1u);
    complete(cur_);
  }

  /// Fetches every shard into `x` (N values) and records the versions read.
  void fetch(T* x) {
    std::vector<pending> reqs;
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      recv_values(fetch_head_[s], x + layout_.begin(s), layout_.count(s), server_of(s), mpi_wire::data, reqs);
      fetch_req_[s] = {.replica = rank_, .shard = static_cast<std::int64_t>(s)};
      send_header(fetch_req_[s], server_of(s), mpi_wire::fetch, reqs);
    }
    wait(reqs, "a fetch");
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      versions_[s] = fetch_head_[s].value;
      if (fetch_head_[s].flags & 1u) lost_ = true;
    }
    ch_->count(0, layout_.size() * sizeof(T));
  }

  [[nodiscard]] std::span<const std::uint64_t> versions() const noexcept { return versions_; }
  [[nodiscard]] const push_tally& tally() const noexcept { return tally_; }
  [[nodiscard]] bool lost() const noexcept { return lost_; }

  /// The replica took `steps` steps: a heartbeat to each server it has not sent anything for a while.
  void renew(std::uint64_t steps) {
    steps_ = steps;
    heartbeat();
  }

  /// After each step: replica 0 tells the servers when its warm start is over.
  void stepped(std::uint64_t steps, std::uint64_t pushes) {
    steps_ = steps;
    if (rank_ == 0 && !warm_sent_ && opt_.warm_start > 0 && steps >= opt_.warm_start) {
      warm_sent_ = true;
      for (int j = 0; j < servers_; ++j) {
        misc_head_.push_back({.replica = rank_, .value = pushes});
        send_header(misc_head_.back(), replicas_ + j, mpi_wire::warm, misc_);
      }
    }
    heartbeat();
    reap_misc();
  }

  /// Done: completes the pushes in flight, tells every server, and waits (kept alive by the servers while they
  /// wait for the other replicas) for the final values of every shard into `x` and the losses.
  void finish(T* x) {
    release();
    std::vector<pending> reqs;
    std::vector<mpi_wire::header> finals(layout_.shards());
    // Unused entries keep replica = -1.
    std::vector<std::vector<mpi_wire::loss_record>> records(
        static_cast<std::size_t>(servers_),
        std::vector<mpi_wire::loss_record>(static_cast<std::size_t>(replicas_), {-1, 0, 0.0, 0, 0}));
    for (std::size_t s = 0; s < layout_.shards(); ++s)
      recv_values(finals[s], x + layout_.begin(s), layout_.count(s), server_of(s), mpi_wire::final, reqs);
    for (int j = 0; j < servers_; ++j) {
      auto& rec = records[static_cast<std::size_t>(j)];
      reqs.push_back({MPI_REQUEST_NULL, replicas_ + j});
      ch_->check(MPI_Irecv(rec.data(), static_cast<int>(rec.size() * sizeof(mpi_wire::loss_record)), MPI_BYTE,
                           replicas_ + j, mpi_wire::losses, ch_->native(), &reqs.back().req),
                 "MPI_Irecv");
    }
    done_head_ = {.replica = rank_, .value = steps_};
    for (int j = 0; j < servers_; ++j) send_header(done_head_, replicas_ + j, mpi_wire::done, reqs);
    wait(reqs, "finish (waiting for the other replicas)");
    for (std::size_t s = 0; s < layout_.shards(); ++s) versions_[s] = finals[s].value;
    ch_->count(0, layout_.size() * sizeof(T));
    // Every server's list; a replica appears once, at the earliest time any server declared it lost.
    losses_.clear();
    for (const auto& list : records)
      for (const auto& l : list) {
        if (l.replica < 0 || l.replica >= replicas_) continue;
        auto it = std::find_if(losses_.begin(), losses_.end(),
                               [&](const replica_loss& x2) { return x2.replica == static_cast<int>(l.replica); });
        const replica_loss rl{static_cast<int>(l.replica), static_cast<loss_reason>(l.reason), l.seconds, l.steps,
                              l.pushes_applied};
        if (it == losses_.end()) losses_.push_back(rl);
        else if (rl.seconds < it->seconds) *it = rl;
      }
    std::sort(losses_.begin(), losses_.end(), [](const auto& a, const auto& b) { return a.seconds < b.seconds; });
  }

  /// This replica failed: tells the servers (best effort, a short bounded wait), so they do not wait for its lease.
  void abandon() noexcept {
    try {
      std::vector<pending> reqs;
      leave_head_ = {.replica = rank_};
      for (int j = 0; j < servers_; ++j) send_header(leave_head_, replicas_ + j, mpi_wire::leave, reqs);
      const auto t0 = clock::now();
      while (!reqs.empty() && seconds(t0, clock::now()) < 1.0) {
        std::erase_if(reqs, [&](pending& p) {
          int done = 0;
          MPI_Test(&p.req, &done, MPI_STATUS_IGNORE);
          return done != 0;
        });
        std::this_thread::yield();
      }
      for (auto& p : reqs) MPI_Request_free(&p.req);
    } catch (...) {  // NOLINT(bugprone-empty-catch): the lease covers a replica that cannot say it leaves
    }
  }

  [[nodiscard]] std::vector<replica_loss> losses() const { return losses_; }

  // --- checkpoints (algo::downpour::save/load) -------------------------------------------------------------

  /// A checkpoint's cut: completes the pushes in flight, tells every server this replica arrived after `steps`
  /// steps (replica 0 with its file's `path`, from which the servers name theirs), and waits (bounded by the
  /// timeout; the servers say they are alive) for every server's verdict. Returns their flags, OR'ed
  /// (mpi_wire::cut_*; 0: every server wrote its shards' file).
  std::uint64_t cut(std::uint64_t steps, const std::string& path) {
    // The joiners wait in their first step for the warm start to end: they could not arrive.
    tether::detail::require(rank_ != 0 || steps >= opt_.warm_start, "downpour::save(\"", path,
                            "\"): during the warm start (replica 0 has taken ", steps, " of warm_start = ",
                            opt_.warm_start, " steps): a checkpoint needs every replica joined");
    release();
    steps_ = steps;
    cut_path_ = rank_ == 0 ? path : std::string();
    cut_head_ = {.replica = rank_, .value = steps};
    std::vector<mpi_wire::header> verdicts(static_cast<std::size_t>(servers_));
    std::vector<pending> reqs;
    for (int j = 0; j < servers_; ++j) {
      recv_header(verdicts[static_cast<std::size_t>(j)], replicas_ + j, mpi_wire::cut_done, reqs);
      MPI_Datatype type = MPI_DATATYPE_NULL;
      ch_->check(mpi_wire::two_part_type(&cut_head_, sizeof(mpi_wire::header), cut_path_.data(),
                                         static_cast<int>(cut_path_.size()), &type),
                 "MPI_Type_create_struct");
      reqs.push_back({MPI_REQUEST_NULL, replicas_ + j});
      const int rc = MPI_Isend(MPI_BOTTOM, 1, type, replicas_ + j, mpi_wire::cut, ch_->native(), &reqs.back().req);
      MPI_Type_free(&type);
      ch_->check(rc, "MPI_Isend");
      last_sent_[static_cast<std::size_t>(j)] = clock::now();
    }
    wait(reqs, "a checkpoint (waiting for the other replicas to arrive)");
    std::uint64_t flags = 0;
    for (const auto& v : verdicts) flags |= v.flags;
    return flags;
  }

  /// What a replica's checkpoint holds of this handle.
  struct saved {
    std::vector<std::uint64_t> versions;
    push_tally tally{};
    std::uint64_t steps = 0;
    std::uint8_t warm_sent = 0, lost = 0;
  };
  void save(checkpoint_writer& w) const {
    w.put_array<std::uint64_t>(std::span<const std::uint64_t>(versions_));
    w.put<push_tally>(tally_);
    w.put<std::uint64_t>(steps_);
    w.put<std::uint8_t>(warm_sent_ ? 1 : 0);
    w.put<std::uint8_t>(lost_ ? 1 : 0);
  }
  [[nodiscard]] saved read(checkpoint_reader& r) const {
    saved s;
    s.versions.resize(versions_.size());
    r.get_array<std::uint64_t>(std::span<std::uint64_t>(s.versions), "the versions last read");
    s.tally = r.get<push_tally>("the pushes' tally");
    s.steps = r.get<std::uint64_t>("the steps the servers know of");
    s.warm_sent = r.get<std::uint8_t>("the warm-start flag");
    s.lost = r.get<std::uint8_t>("the lost flag");
    return s;
  }
  void restore(saved s) {
    versions_ = std::move(s.versions);
    tally_ = s.tally;
    steps_ = s.steps;
    warm_sent_ = s.warm_sent != 0;
    lost_ = s.lost != 0;
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  /// A request and the server it waits on.
  struct pending {
    MPI_Request req = MPI_REQUEST_NULL;
    int peer = 0;
  };

  void send_init(const T* x, int only_server) {
    std::vector<pending> reqs;
    std::vector<mpi_wire::header> heads(layout_.shards());
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      if (only_server >= 0 && server_of(s) != only_server) continue;
      heads[s] = {.replica = rank_, .shard = static_cast<std::int64_t>(s)};
      send_values(heads[s], x + layout_.begin(s), layout_.count(s), server_of(s), mpi_wire::init, reqs);
    }
    wait(reqs, "initialising the shards");
  }

  void send_header(const mpi_wire::header& h, int peer, int tag, std::vector<pending>& reqs) {
    reqs.push_back({MPI_REQUEST_NULL, peer});
    ch_->check(MPI_Isend(&h, sizeof(mpi_wire::header), MPI_BYTE, peer, tag, ch_->native(), &reqs.back().req),
               "MPI_Isend");
    last_sent_[server_index(peer)] = clock::now();
  }
  void recv_header(mpi_wire::header& h, int peer, int tag, std::vector<pending>& reqs) {
    reqs.push_back({MPI_REQUEST_NULL, peer});
    ch_->check(MPI_Irecv(&h, sizeof(mpi_wire::header), MPI_BYTE, peer, tag, ch_->native(), &reqs.back().req),
               "MPI_Irecv");
  }
  void send_values(const mpi_wire::header& h, const T* v, std::size_t count, int peer, int tag,
                   std::vector<pending>& reqs) {
    MPI_Datatype type = MPI_DATATYPE_NULL;
    ch_->check(mpi_wire::two_part_type(&h, sizeof(mpi_wire::header), v, static_cast<int>(count * sizeof(T)), &type),
               "MPI_Type_create_struct");
    reqs.push_back({MPI_REQUEST_NULL, peer});
    const int rc = MPI_Isend(MPI_BOTTOM, 1, type, peer, tag, ch_->native(), &reqs.back().req);
    MPI_Type_free(&type);
    ch_->check(rc, "MPI_Isend");
    last_sent_[server_index(peer)] = clock::now();
  }
  void recv_values(mpi_wire::header& h, T* v, std::size_t count, int peer, int tag, std::vector<pending>& reqs) {
    MPI_Datatype type = MPI_DATATYPE_NULL;
    ch_->check(mpi_wire::two_part_type(&h, sizeof(mpi_wire::header), v, static_cast<int>(count * sizeof(T)), &type),
               "MPI_Type_create_struct");
    reqs.push_back({MPI_REQUEST_NULL, peer});
    const int rc = MPI_Irecv(MPI_BOTTOM, 1, type, peer, tag, ch_->native(), &reqs.back().req);
    MPI_Type_free(&type);
    ch_->check(rc, "MPI_Irecv");
  }

  [[nodiscard]] std::size_t server_index(int peer) const noexcept { return static_cast<std::size_t>(peer - replicas_); }

  /// Waits for `reqs`. A server that has neither completed one of them nor said it is alive for longer than the
  /// timeout is taken for dead: tether::runtime_error naming it. Heartbeats go out while waiting.
  void wait(std::vector<pending>& reqs, const char* what) {
    const auto start = clock::now();
    for (auto& h : heard_) h = std::max(h, start);
    std::uint64_t spins = 0;
    for (;;) {
      bool all = true;
      for (auto& p : reqs) {
        if (p.req == MPI_REQUEST_NULL) continue;
        int done = 0;
        ch_->check(MPI_Test(&p.req, &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (done != 0) heard_[server_index(p.peer)] = clock::now();
        else all = false;
      }
      if (all) return;
      drain_alive();
      heartbeat();
      if (timeout_ > 0.0 && (++spins & 63u) == 0) {
        const auto now = clock::now();
        for (const auto& p : reqs) {
          if (p.req == MPI_REQUEST_NULL || seconds(heard_[server_index(p.peer)], now) <= timeout_) continue;
          for (auto& q : reqs)
            if (q.req != MPI_REQUEST_NULL) {
              MPI_Cancel(&q.req);
              MPI_Request_free(&q.req);
            }
          throw runtime_error(tether::detail::concat(
              "tether: rank ", rank_, ": downpour: ", what, ": server rank ", p.peer, " did not answer within ",
              timeout_, " s: a server rank may have died (comm::mpi timeout)"));
        }
      }
      if (spins > 256) std::this_thread::sleep_for(std::chrono::microseconds(spins > 16384 ? 200 : 10));
      else std::this_thread::yield();
    }
  }

  /// Completes push slot `slot` if in flight, and tallies its acknowledgements.
  void complete(std::size_t slot) {
    if (!in_flight_[slot]) return;
    in_flight_[slot] = false;
    wait(push_reqs_[slot], "a push");
    bool dropped = false;
    std::uint64_t stale = 0;
    std::uint64_t lead = 0;
    for (const auto& a : acks_[slot]) {
      dropped = dropped || (a.flags & 1u) != 0;
      stale = std::max(stale, a.value);
      lead = std::max(lead, a.extra);
    }
    if (dropped) lost_ = true;
    tally_.add(dropped, stale, lead);
  }

  void drain_alive() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      ch_->check(MPI_Iprobe(MPI_ANY_SOURCE, mpi_wire::alive, ch_->native(), &flag, &st), "MPI_Iprobe");
      if (flag == 0) return;
      mpi_wire::header h;
      ch_->check(MPI_Recv(&h, sizeof(h), MPI_BYTE, st.MPI_SOURCE, mpi_wire::alive, ch_->native(), MPI_STATUS_IGNORE),
                 "MPI_Recv");
      if (st.MPI_SOURCE >= replicas_) heard_[server_index(st.MPI_SOURCE)] = clock::now();
    }
  }

  void heartbeat() {
    if (lease_ <= 0.0) return;
    const auto now = clock::now();
    for (int j = 0; j < servers_; ++j) {
      if (seconds(last_sent_[static_cast<std::size_t>(j)], now) < lease_ / 4.0) continue;
      misc_head_.push_back({.replica = rank_, .value = steps_});
      send_header(misc_head_.back(), replicas_ + j, mpi_wire::heartbeat, misc_);
    }
    reap_misc();
  }

  /// Frees the small sends (heartbeats, warm) that completed.
  void reap_misc() {
    while (!misc_.empty()) {
      int done = 0;
      ch_->check(MPI_Test(&misc_.front().req, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done == 0) return;
      misc_.erase(misc_.begin());
      misc_head_.pop_front();
    }
  }

  void cancel_all() noexcept {
    for (auto& slot : push_reqs_)
      for (auto& p : slot)
        if (p.req != MPI_REQUEST_NULL) MPI_Request_free(&p.req);
    for (auto& p : misc_)
      if (p.req != MPI_REQUEST_NULL) MPI_Request_free(&p.req);
  }

  comm::mpi* ch_;
  shard_layout layout_;
  int servers_;
  int replicas_;
  store_options opt_;
  double lease_;
  double timeout_;
  int rank_;
  std::array<exec::serial::buffer<T>, 2> bufs_{};
  std::size_t cur_ = 0;
  std::array<bool, 2> in_flight_{false, false};
  std::array<std::vector<pending>, 2> push_reqs_{};
  std::array<std::vector<mpi_wire::header>, 2> push_head_{};
  std::array<std::vector<mpi_wire::header>, 2> acks_{};
  std::vector<mpi_wire::header> fetch_req_;
  std::vector<mpi_wire::header> fetch_head_;
  mpi_wire::header join_head_{};
  mpi_wire::header done_head_{};
  mpi_wire::header leave_head_{};
  mpi_wire::header cut_head_{};
  std::string cut_path_;
  std::vector<pending> misc_;
  std::deque<mpi_wire::header> misc_head_;
  std::vector<std::uint64_t> versions_;
  std::vector<clock::time_point> last_sent_;
  std::vector<clock::time_point> heard_;
  push_tally tally_{};
  std::vector<replica_loss> losses_;
  std::uint64_t steps_ = 0;
  bool warm_sent_ = false;
  bool lost_ = false;
};

}  // namespace tether::ps
