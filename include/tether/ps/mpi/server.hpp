#pragma once
/// \file
/// ps::mpi_server: a server rank of the MPI placement. It holds shards s with s % servers == its index and runs
/// a service loop: it receives the replicas' messages (any source), applies pushes with the shards' step
/// policy, answers fetches, holds what the consistency rule does not allow yet (each replica's messages in
/// arrival order), declares lost the replicas whose lease expired, and once every replica finished or was lost,
/// sends each one the final parameters and the losses, then returns. At a checkpoint's cut (every replica sent
/// `cut`, after its earlier messages) it writes its shards' file and answers each replica. Single-threaded.

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tether/comm/mpi/communicator.hpp"
#include "tether/core/checkpoint.hpp"
#include "tether/core/error.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/ps/membership.hpp"
#include "tether/ps/mpi/wire.hpp"
#include "tether/ps/shard.hpp"
#include "tether/ps/shard_clocks.hpp"
#include "tether/ps/stats.hpp"
#include "tether/ps/store_options.hpp"
#include "tether/ps/sync_round.hpp"

namespace tether::ps {

/// A server rank. See the file comment.
template <class Step, class Exec, class T>
class mpi_server {
 public:
  /// Server `index` of `servers` on `channel` (ranks [0, replicas) are the replicas, then the servers).
  mpi_server(comm::mpi& channel, const Exec& exec, const Step& step, shard_layout layout, int index, int servers,
             int replicas, const store_options& o, double lease, double timeout)
      : ch_(&channel), layout_(layout), index_(index), servers_(servers), replicas_(replicas), opt_(o),
        timeout_(timeout), members_(replicas, lease, o.warm_start > 0), warm_over_(o.warm_start == 0),
        queues_(static_cast<std::size_t>(replicas)), heard_(static_cast<std::size_t>(replicas)),
        wants_final_(static_cast<std::size_t>(replicas), 0), got_final_(static_cast<std::size_t>(replicas), 0),
        cut_in_(static_cast<std::size_t>(replicas), 0), cut_steps_(static_cast<std::size_t>(replicas), 0) {
    for (std::size_t s = static_cast<std::size_t>(index); s < layout_.shards(); s += static_cast<std::size_t>(servers))
      shards_.push_back(std::make_unique<held_shard>(s, exec, step, layout_.count(s), replicas));
    const auto now = clock::now();
    for (auto& h : heard_) h = now;
  }

  mpi_server(const mpi_server&) = delete;
  mpi_server& operator=(const mpi_server&) = delete;

  /// The service loop: returns once every replica finished or was lost and has its final parameters.
  void serve() {
    tether::detail::require(!served_, "downpour::serve: called twice");
    served_ = true;
    auto last_check = clock::now();
    std::uint64_t idle = 0;
    for (;;) {
      bool progressed = false;
      while (receive_one()) progressed = true;
      // While a checkpoint's cut fills, a message held after the last change (a fetch of a replica that has not
      // arrived, waiting for a round the arrived ones will not close) must still be released by the cut.
      if (changed_ || cut_arrived_ > 0) retry_queues();
      progress_sends();
      const auto now = clock::now();
      if (seconds(last_check, now) >= tick()) {
        last_check = now;
        for (int r : members_.expired()) lose(r, loss_reason::lease_expired);
        if (changed_) retry_queues();
        if (cut_arrived_ > 0) complete_cut();
        send_alive(now);
      }
      if (members_.settled() && !finals_sent_) send_finals();
      if (finals_sent_ && outgoing_.empty() && !lingering(now)) break;
      if (progressed) {
        idle = 0;
      } else if (++idle > 64) {
        std::this_thread::sleep_for(std::chrono::microseconds(idle > 4096 ? 200 : 20));
      }
    }
  }

  /// The replicas this server declared lost.
  [[nodiscard]] std::vector<replica_loss> losses() const { return members_.losses(); }

  // --- checkpoints (algo::downpour::save/load) -------------------------------------------------------------

  /// What a shards' file starts with (the downpour's identity), written before each cut's state.
  void checkpoint_header(std::vector<unsigned char> h) { cut_header_ = std::move(h); }
  /// This server's shards' file for replica 0's checkpoint `path`.
  [[nodiscard]] std::string shards_path(const std::string& path) const {
    return path + ".shards." + std::to_string(index_);
  }

  /// This server's state as a checkpoint holds it: its shards (initialised flag, parameters, step state,
  /// version, clocks, staged round), the replicas' clock bases and steps, the warm start.
  struct saved {
    std::vector<std::uint8_t> initialized;
    std::vector<typename shard<Step, Exec, T>::saved> shards;
    std::vector<shard_clocks> clocks;
    std::vector<typename sync_round<Step, Exec, T>::saved> rounds;
    std::vector<std::uint64_t> bases, steps;
    std::uint8_t warm_over = 0;
  };
  /// Reads what a cut wrote after the header and step, checking sizes; changes nothing.
  [[nodiscard]] saved read(checkpoint_reader& r) const {
    saved s;
    for (const auto& sh : shards_) {
      s.initialized.push_back(r.get<std::uint8_t>("a shard's initialised flag"));
      s.shards.push_back(sh->data.read(r));
      s.clocks.push_back(sh->clocks);
      sh->clocks.read(r, s.clocks.back());
      s.rounds.push_back(sh->round.read(r, sh->data.size()));
    }
    s.bases.resize(static_cast<std::size_t>(replicas_));
    s.steps.resize(static_cast<std::size_t>(replicas_));
    r.get_array<std::uint64_t>(std::span<std::uint64_t>(s.bases), "the replicas' clock bases");
    r.get_array<std::uint64_t>(std::span<std::uint64_t>(s.steps), "the replicas' steps");
    s.warm_over = r.get<std::uint8_t>("the warm-start flag");
    return s;
  }
  /// Sets the state read by read() (before serve()).
  void restore(const saved& s) {
    for (std::size_t k = 0; k < shards_.size(); ++k) {
      auto& sh = *shards_[k];
      sh.initialized = s.initialized[k] != 0;
      sh.data.restore(s.shards[k]);
      sh.clocks = s.clocks[k];
      sh.round.restore(sh.data, s.rounds[k]);
    }
    for (int r = 0; r < replicas_; ++r)
      members_.restore_live(r, s.bases[at(r)], s.steps[at(r)]);
    warm_over_ = s.warm_over != 0;
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  struct held_shard {
    held_shard(std::size_t s, const Exec& exec, const Step& step, std::size_t count, int replicas)
        : index(s), data(exec, step, count), clocks(replicas), round(replicas) {}
    std::size_t index;
    shard<Step, Exec, T> data;
    shard_clocks clocks;
    sync_round<Step, Exec, T> round;
    bool initialized = false;
  };

  /// A received message: its header and its values (8-byte aligned storage).
  struct message {
    int source = 0;
    int tag = 0;
    mpi_wire::header h{};
    std::size_t bytes = 0;  // after the header
    std::vector<double> storage;
    [[nodiscard]] const T* values() const noexcept {
      return reinterpret_cast<const T*>(reinterpret_cast<const std::byte*>(storage.data()) + sizeof(mpi_wire::header));
    }
  };

  /// A send in flight, with what it sends.
  struct outgoing {
    MPI_Request req = MPI_REQUEST_NULL;
    int peer = 0;
    clock::time_point posted;
    mpi_wire::header h{};
    std::vector<T> values;
    std::vector<mpi_wire::loss_record> records;
  };

  [[nodiscard]] double tick() const noexcept { return std::clamp(members_.lease() / 8.0, 1e-3, 0.05); }

  // --- receiving -------------------------------------------------------------------------------------------

  bool receive_one() {
    int flag = 0;
    MPI_Status st;
    ch_->check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, ch_->native(), &flag, &st), "MPI_Iprobe");
    if (flag == 0) return false;
    int bytes = 0;
    ch_->check(MPI_Get_count(&st, MPI_BYTE, &bytes), "MPI_Get_count");
    message m;
    m.source = st.MPI_SOURCE;
    m.tag = st.MPI_TAG;
    m.storage.resize((static_cast<std::size_t>(bytes) + sizeof(double) - 1) / sizeof(double) + 1);
    ch_->check(MPI_Recv(m.storage.data(), bytes, MPI_BYTE, m.source, m.tag, ch_->native(), MPI_STATUS_IGNORE),
               "MPI_Recv");
    if (static_cast<std::size_t>(bytes) < sizeof(mpi_wire::header) || m.source >= replicas_) return true;  // not ours
    std::memcpy(static_cast<void*>(&m.h), m.storage.data(), sizeof(mpi_wire::header));
    m.h.replica = m.source;
    m.bytes = static_cast<std::size_t>(bytes) - sizeof(mpi_wire::header);
    if (bytes > static_cast<int>(sizeof(mpi_wire::header)))
      ch_->count(0, static_cast<std::uint64_t>(bytes) - sizeof(mpi_wire::header));
    dispatch(std::move(m));
    return true;
  }

  void dispatch(message m) {
    const int r = m.source;
    heard_[at(r)] = clock::now();
    switch (m.tag) {
      case mpi_wire::heartbeat: members_.renew(r, m.h.value); return;
      case mpi_wire::leave: lose(r, loss_reason::failed); return;
      case mpi_wire::push: members_.renew(r, m.h.value); break;
      default: members_.renew(r); break;
    }
    auto& q = queues_[at(r)];
    if (!q.empty() || !handle(m)) q.push_back(std::move(m));
  }

  /// Handles one message; false when the consistency rule, the warm start or the initialisation holds it.
  bool handle(const message& m) {
    const int r = m.source;
    switch (m.tag) {
      case mpi_wire::init: {
        auto* sh = find(m.h.shard);
        if (sh != nullptr && !sh->initialized) {
          sh->data.assign(m.values());
          sh->initialized = true;
          changed_ = true;
        }
        return true;
      }
      case mpi_wire::join: {
        if (all_initialized() && warm_over_) {
          reply_header(r, mpi_wire::joined, {.replica = r, .value = mpi_wire::role_fetch});
          return true;
        }
        if (!all_initialized() && members_.gone(0) && r == candidate()) {
          reply_header(r, mpi_wire::joined, {.replica = r, .value = mpi_wire::role_initialise});
          return true;
        }
        return false;
      }
      case mpi_wire::warm:
        if (!warm_over_) end_warm_start(m.h.value);
        return true;
      case mpi_wire::push: return handle_push(m);
      case mpi_wire::fetch: {
        auto* sh = find(m.h.shard);
        if (sh == nullptr) return true;
        if (opt_.consistency.mode == consistency_mode::bulk_synchronous && sh->round.staged(r) && !members_.lost(r) &&
            !released_by_cut(r))
          return false;
        const std::uint64_t v = sh->data.version();
        sh->clocks.read(r, v);
        reply_values(r, mpi_wire::data, {.replica = r, .shard = m.h.shard, .value = v,
                                          .flags = members_.lost(r) ? 1u : 0u}, sh->data);
        return true;
      }
      case mpi_wire::cut: {
        if (cut_in_[at(r)] != 0) return false;  // its next cut, before this one is over
        cut_in_[at(r)] = 1;
        cut_steps_[at(r)] = m.h.value;
        ++cut_arrived_;
        if (r == 0) cut_path_.assign(reinterpret_cast<const char*>(m.values()), m.bytes);
        changed_ = true;  // a replica held for the ones now at the cut may pass
        return true;
      }
      case mpi_wire::done:
        if (members_.finish(r)) after_leave(r);
        wants_final_[at(r)] = 1;
        if (finals_sent_) send_final(r);
        return true;
      default: return true;  // unknown tags are ignored
    }
  }

  bool handle_push(const message& m) {
    const int r = m.source;
    auto* sh = find(m.h.shard);
    if (sh == nullptr) return true;
    const auto mode = opt_.consistency.mode;
    if (members_.lost(r)) {
      reply_header(r, mpi_wire::ack, {.replica = r, .shard = m.h.shard, .flags = 1});
      return true;
    }
    const std::uint64_t mine = sh->clocks.clock(members_, r);
    const std::uint64_t slowest = sh->clocks.slowest(members_);
    const bool released = released_by_cut(r);
    if (mode == consistency_mode::bulk_synchronous && sh->round.staged(r)) {
      if (!released) return false;
      sh->round.apply(sh->data, sh->clocks);  // released by a cut: the round it must close, as it stands
    }
    if (!opt_.consistency.may_push(mine, slowest) && !released) return false;
    const std::uint64_t stale = sh->clocks.staleness(r, sh->data.version());
    const std::uint64_t lead = mine - std::min(mine, slowest);
    const T lr = static_cast<T>(m.h.lr);
    if (mode == consistency_mode::bulk_synchronous) {
      sh->round.stage(sh->data, r, m.values(), lr);
      if (sh->round.complete(members_)) sh->round.apply(sh->data, sh->clocks);
    } else {
      sh->data.apply(m.values(), lr);
      sh->clocks.applied(r);
    }
    changed_ = true;
    reply_header(r, mpi_wire::ack, {.replica = r, .shard = m.h.shard, .value = stale, .extra = lead});
    return true;
  }

  /// Handles the held messages that now may pass, each replica's in arrival order, until nothing moves. While a
  /// checkpoint's cut fills and nothing else can move, the cut releases held messages one at a time.
  void retry_queues() {
    for (;;) {
      while (changed_) {
        changed_ = false;
        for (auto& q : queues_) {
          while (!q.empty() && handle(q.front())) q.pop_front();
        }
      }
      if (!release_one()) break;
    }
    if (cut_arrived_ > 0) complete_cut();
  }

  // --- checkpoints -----------------------------------------------------------------------------------------

  /// True for the held message the cut is releasing (release_one()).
  [[nodiscard]] bool released_by_cut(int r) const noexcept { return releasing_ == r; }

  /// While a checkpoint's cut fills and every live replica either arrived or has a message held by the
  /// consistency rule (nothing can move but by the cut), handles the lowest such replica's held message as
  /// released (as on the thread team: ps/team_store.hpp), so that every replica reaches the cut. True when it did.
  bool release_one() {
    if (cut_arrived_ == 0) return false;
    int lowest = -1;
    for (int q = 0; q < replicas_; ++q) {
      if (!members_.live(q) || cut_in_[at(q)] != 0) continue;
      if (queues_[at(q)].empty()) return false;
      if (lowest < 0) lowest = q;
    }
    if (lowest < 0) return false;
    auto& q = queues_[at(lowest)];
    releasing_ = lowest;
    const bool handled = handle(q.front());
    releasing_ = -1;
    if (!handled) return false;
    q.pop_front();
    changed_ = true;
    return true;
  }

  /// Once every replica arrived (each one's earlier messages handled first: they are queued in order), writes
  /// this server's shards' file and tells each replica; a replica gone before it arrived fails the cut.
  void complete_cut() {
    std::uint64_t flags = 0;
    bool all = true;
    for (int r = 0; r < replicas_; ++r) {
      if (cut_in_[at(r)] != 0) continue;
      all = false;
      if (members_.gone(r)) flags |= mpi_wire::cut_replica_gone;
    }
    if (!all && flags == 0) return;
    if (all) {
      for (int r = 0; r < replicas_; ++r)
        if (cut_steps_[at(r)] != cut_steps_[0]) flags |= mpi_wire::cut_steps_differ;
      if (flags == 0) {
        try {
          checkpoint_writer w;
          for (const unsigned char b : cut_header_) w.put<unsigned char>(b);
          w.put<std::uint64_t>(cut_steps_[0]);
          for (const auto& sh : shards_) {
            w.put<std::uint8_t>(sh->initialized ? 1 : 0);
            sh->data.save(w);
            sh->clocks.save(w);
            sh->round.save(w);
          }
          std::vector<std::uint64_t> bases(at(replicas_)), steps(at(replicas_));
          for (int r = 0; r < replicas_; ++r) {
            bases[at(r)] = members_.base(r);
            steps[at(r)] = members_.steps(r);
          }
          w.put_array<std::uint64_t>(std::span<const std::uint64_t>(bases));
          w.put_array<std::uint64_t>(std::span<const std::uint64_t>(steps));
          w.put<std::uint8_t>(warm_over_ ? 1 : 0);
          write_checkpoint_file(shards_path(cut_path_), w.bytes());
        } catch (const std::exception&) {
          flags |= mpi_wire::cut_write_failed;
        }
      }
    }
    for (int r = 0; r < replicas_; ++r) {
      if (cut_in_[at(r)] == 0) continue;
      reply_header(r, mpi_wire::cut_done, {.replica = r, .value = cut_steps_[at(r)], .flags = flags});
      cut_in_[at(r)] = 0;
    }
    cut_arrived_ = 0;
    changed_ = true;
  }

  // --- membership ------------------------------------------------------------------------------------------

  void lose(int r, loss_reason why) {
    const std::uint64_t applied = shards_.empty() ? 0 : shards_.front()->clocks.applied_count(r);
    if (members_.lose(r, why, applied)) after_leave(r);
  }

  void after_leave(int r) {
    if (r == 0 && !warm_over_)
      end_warm_start(shards_.empty() ? 0 : shards_.front()->clocks.applied_count(0));
    if (opt_.consistency.mode == consistency_mode::bulk_synchronous)
      for (auto& sh : shards_)
        if (sh->round.complete(members_)) sh->round.apply(sh->data, sh->clocks);
    changed_ = true;
  }

  void end_warm_start(std::uint64_t pushes) {
    warm_over_ = true;
    for (int r = 0; r < replicas_; ++r) members_.make_live(r, pushes);
    changed_ = true;
  }

  [[nodiscard]] int candidate() const noexcept {
    for (int r = 0; r < replicas_; ++r)
      if (!members_.gone(r)) return r;
    return -1;
  }

  [[nodiscard]] bool all_initialized() const noexcept {
    return std::all_of(shards_.begin(), shards_.end(), [](const auto& s) { return s->initialized; });
  }

  [[nodiscard]] held_shard* find(std::int64_t s) noexcept {
    if (s < 0 || static_cast<std::size_t>(s) >= layout_.shards()) return nullptr;
    const auto u = static_cast<std::size_t>(s);
    if (u % static_cast<std::size_t>(servers_) != static_cast<std::size_t>(index_)) return nullptr;
    return shards_[u / static_cast<std::size_t>(servers_)].get();
  }

  /// A lost replica that is still heard from and has not asked for its final parameters: keep serving it.
  [[nodiscard]] bool lingering(clock::time_point now) const noexcept {
    for (int r = 0; r < replicas_; ++r)
      if (members_.lost(r) && wants_final_[at(r)] == 0 && seconds(heard_[at(r)], now) < members_.lease()) return true;
    return false;
  }

  // --- sending ---------------------------------------------------------------------------------------------

  outgoing& post(int peer) {
    outgoing_.push_back(std::make_unique<outgoing>());
    auto& o = *outgoing_.back();
    o.peer = peer;
    o.posted = clock::now();
    return o;
  }

  void reply_header(int r, int tag, mpi_wire::header h) {
    auto& o = post(r);
    o.h = h;
    ch_->check(MPI_Isend(&o.h, sizeof(mpi_wire::header), MPI_BYTE, r, tag, ch_->native(), &o.req), "MPI_Isend");
  }

  /// Sends the header and a copy of the shard's values (the shard may change while the send is in flight).
  void reply_values(int r, int tag, mpi_wire::header h, const shard<Step, Exec, T>& data) {
    auto& o = post(r);
    o.h = h;
    o.values.resize(data.size());
    if (data.size() > 0) data.read(o.values.data());
    const int bytes = static_cast<int>(o.values.size() * sizeof(T));
    MPI_Datatype type = MPI_DATATYPE_NULL;
    ch_->check(mpi_wire::two_part_type(&o.h, sizeof(mpi_wire::header), o.values.data(), bytes, &type),
               "MPI_Type_create_struct");
    const int rc = MPI_Isend(MPI_BOTTOM, 1, type, r, tag, ch_->native(), &o.req);
    MPI_Type_free(&type);
    ch_->check(rc, "MPI_Isend");
    ch_->count(static_cast<std::uint64_t>(bytes), 0);
  }

  void send_final(int r) {
    if (got_final_[at(r)] != 0) return;
    got_final_[at(r)] = 1;
    for (auto& sh : shards_)
      reply_values(r, mpi_wire::final, {.replica = r, .shard = static_cast<std::int64_t>(sh->index),
                                         .value = sh->data.version(), .flags = members_.lost(r) ? 1u : 0u},
                   sh->data);
    auto& o = post(r);
    for (const auto& l : members_.losses())
      o.records.push_back({l.replica, static_cast<std::int64_t>(l.reason), l.seconds, l.steps, l.pushes_applied});
    const int bytes = static_cast<int>(o.records.size() * sizeof(mpi_wire::loss_record));
    ch_->check(MPI_Isend(o.records.empty() ? nullptr : o.records.data(), bytes, MPI_BYTE, r, mpi_wire::losses,
                         ch_->native(), &o.req),
               "MPI_Isend");
  }

  void send_finals() {
    finals_sent_ = true;
    for (int r = 0; r < replicas_; ++r)
      if (wants_final_[at(r)] != 0) send_final(r);
  }

  /// Tells the replicas this server keeps waiting (held messages, or done and waiting for the end) that it is
  /// up, every quarter of the timeout, so their bounded waits do not take it for dead.
  void send_alive(clock::time_point now) {
    if (timeout_ <= 0.0 || seconds(last_alive_, now) < timeout_ / 4.0) return;
    last_alive_ = now;
    for (int r = 0; r < replicas_; ++r) {
      const bool waiting = !queues_[at(r)].empty() || (wants_final_[at(r)] != 0 && got_final_[at(r)] == 0) ||
                           cut_in_[at(r)] != 0;
      if (waiting) reply_header(r, mpi_wire::alive, {.replica = r});
    }
  }

  /// Completes the sends that are done; a send to a replica that stays incomplete for longer than the lease is
  /// given up (its replica is lost: it never posted the receive, or died).
  void progress_sends() {
    const auto now = clock::now();
    for (auto it = outgoing_.begin(); it != outgoing_.end();) {
      auto& o = **it;
      int done = 0;
      ch_->check(MPI_Test(&o.req, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done != 0) {
        it = outgoing_.erase(it);
        continue;
      }
      if (seconds(o.posted, now) > members_.lease() && members_.lease() > 0.0) {
        lose(o.peer, loss_reason::lease_expired);
        MPI_Request_free(&o.req);
        abandoned_.push_back(std::move(*it));  // MPI may still read its buffers
        it = outgoing_.erase(it);
        continue;
      }
      ++it;
    }
  }

  static std::size_t at(int r) noexcept { return static_cast<std::size_t>(r); }

  comm::mpi* ch_;
  shard_layout layout_;
  int index_;
  int servers_;
  int replicas_;
  store_options opt_;
  double timeout_;
  membership members_;
  bool warm_over_;
  bool changed_ = false;
  bool served_ = false;
  bool finals_sent_ = false;
  std::vector<std::unique_ptr<held_shard>> shards_;
  std::vector<std::deque<message>> queues_;
  std::vector<clock::time_point> heard_;
  std::vector<char> wants_final_;
  std::vector<char> got_final_;
  std::deque<std::unique_ptr<outgoing>> outgoing_;
  std::vector<std::unique_ptr<outgoing>> abandoned_;
  clock::time_point last_alive_{};
  // A checkpoint's cut in progress: who arrived, after how many steps, replica 0's path; the file's header.
  std::vector<char> cut_in_;
  std::vector<std::uint64_t> cut_steps_;
  int cut_arrived_ = 0;
  int releasing_ = -1;  // the replica whose held message the cut releases now
  std::string cut_path_;
  std::vector<unsigned char> cut_header_;
};

}  // namespace tether::ps
