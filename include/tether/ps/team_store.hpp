#pragma once
/// \file
/// The parameter server inside one process, on the thread team (the embedded placement): the S shards live in
/// shared memory (the execution space's), each behind its own lock; a push is applied by the pushing replica's
/// own thread, shard by shard, each shard under its lock and never two locks at once, so replicas that push
/// to different shards never wait for each other. ps::team_store is one replica's handle on it; it models
/// tether::shared_store and ps::parameter_store. A checkpoint (algo::downpour::save/load) is a cut every replica
/// arrives at: the shared state is saved or restored while all wait in it (docs/algorithms/downpour.md#checkpoints).
/// See docs/algorithms/downpour.md#the-store-and-its-placements.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tether/comm/team/worker.hpp"
#include "tether/core/checkpoint.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/rng.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/ps/concepts.hpp"
#include "tether/ps/membership.hpp"
#include "tether/ps/placement.hpp"
#include "tether/ps/shard.hpp"
#include "tether/ps/shard_clocks.hpp"
#include "tether/ps/stats.hpp"
#include "tether/ps/store_options.hpp"
#include "tether/ps/sync_round.hpp"

namespace tether::ps {

namespace detail_team {

/// The seconds of the team's default lease (a replica not heard from for that long is declared lost).
inline constexpr double default_lease = 300.0;

/// The shared state of a store on the thread team: shards, membership, initialisation, warm start, turns.
template <class Step, class Exec, class T>
class server {
 public:
  /// One shard with its lock, its waiters and its bookkeeping.
  struct slot {
    slot(const Exec& exec, const Step& step, std::size_t count, int replicas)
        : data(exec, step, count), clocks(replicas), round(replicas) {}
    std::mutex m;
    std::condition_variable cv;
    shard<Step, Exec, T> data;
    shard_clocks clocks;
    sync_round<Step, Exec, T> round;
  };

  server(const Exec& exec, const Step& step, std::size_t n, int replicas, const store_options& o)
      : layout_(n, o.shards), opt_(o), members_(replicas, o.lease > 0.0 ? o.lease : default_lease, o.warm_start > 0),
        warm_over_(o.warm_start == 0), rng_(o.replay.seed),
        held_at_(new std::atomic<std::uint64_t>[static_cast<std::size_t>(replicas)]),
        in_cut_(new std::atomic<char>[static_cast<std::size_t>(replicas)]) {
    for (int r = 0; r < replicas; ++r) {
      held_at_[static_cast<std::size_t>(r)].store(not_held, std::memory_order_relaxed);
      in_cut_[static_cast<std::size_t>(r)].store(0, std::memory_order_relaxed);
    }
    slots_.reserve(layout_.shards());
    for (std::size_t s = 0; s < layout_.shards(); ++s)
      slots_.push_back(std::make_unique<slot>(exec, step, layout_.count(s), replicas));
    const double lease = members_.lease();
    tick_ = std::chrono::microseconds(static_cast<std::int64_t>(std::clamp(lease / 8.0, 1e-3, 0.05) * 1e6));
    if (opt_.replay.enabled) draw_turn();
  }

  [[nodiscard]] const shard_layout& layout() const noexcept { return layout_; }
  [[nodiscard]] const store_options& options() const noexcept { return opt_; }
  [[nodiscard]] membership& members() noexcept { return members_; }

  // --- joining ---------------------------------------------------------------------------------------------

  /// Blocks until replica r may take its first step. True when r initialised the shards from `x` (replica 0,
  /// or the lowest replica still there if replica 0 left first); false when it must fetch.
  bool join(int r, const T* x, double& waited) {
    std::unique_lock lk(m_);
    waited += wait(cv_, lk, r, [&] {
      return (!initialized_ && r == candidate()) || (initialized_ && (warm_over_ || r == initializer_)) ||
             members_.lost(r);
    });
    if (initialized_ || members_.lost(r)) return false;
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      std::lock_guard sl(slots_[s]->m);
      slots_[s]->data.assign(x + layout_.begin(s));
    }
    initialized_ = true;
    initializer_ = r;
    cv_.notify_all();
    return true;
  }

  /// Replica r took `steps` steps and made `pushes` pushes: its lease is renewed, and the warm start ends
  /// when replica 0 has taken W steps.
  void stepped(int r, std::uint64_t steps, std::uint64_t pushes) {
    members_.renew(r, steps);
    if (r != 0) return;
    std::lock_guard lk(m_);
    warm_pushes_ = pushes;
    if (!warm_over_ && steps >= opt_.warm_start) end_warm_start();
  }

  // --- pushes and fetches ----------------------------------------------------------------------------------

  /// Replica r's push of `g` (N values) at rate `lr`, shard by shard under each shard's lock.
  push_report push(int r, const T* g, T lr) {
    push_report rep;
    const auto mode = opt_.consistency.mode;
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      auto& sl = *slots_[s];
      std::unique_lock lk(sl.m);
      if (mode != consistency_mode::asynchronous) {
        rep.seconds_waiting += wait(sl.cv, lk, r, [&] {
          if (members_.lost(r)) return true;
          if (!(mode == consistency_mode::bulk_synchronous && sl.round.staged(r)) &&
              opt_.consistency.may_push(sl.clocks.clock(members_, r), sl.clocks.slowest(members_)))
            return true;
          return held(r);
        });
        not_held_now(r);
        // Released by a checkpoint's cut with its last push still staged: that round is applied as it stands.
        if (mode == consistency_mode::bulk_synchronous && sl.round.staged(r) && !members_.lost(r))
          sl.round.apply(sl.data, sl.clocks);
      }
      if (members_.lost(r)) {
        rep.dropped = true;
        continue;
      }
      const std::uint64_t mine = sl.clocks.clock(members_, r);
      const std::uint64_t slowest = std::min(mine, sl.clocks.slowest(members_));
      rep.lead = std::max(rep.lead, mine - slowest);
      rep.staleness = std::max(rep.staleness, sl.clocks.staleness(r, sl.data.version()));
      const T* gs = g + layout_.begin(s);
      progress_.fetch_add(1, std::memory_order_acq_rel);  // before the lock goes: a held replica re-evaluates
      if (mode == consistency_mode::bulk_synchronous) {
        sl.round.stage(sl.data, r, gs, lr);
        if (!sl.round.complete(members_)) continue;
        sl.round.apply(sl.data, sl.clocks);
      } else {
        sl.data.apply(gs, lr);
        sl.clocks.applied(r);
      }
      if (mode != consistency_mode::asynchronous) sl.cv.notify_all();
    }
    return rep;
  }

  /// Replica r's fetch into `x` (N values); `versions[s]` receives the version of shard s it read. In
  /// bulk-synchronous mode it first waits for the round of its own last push.
  double fetch(int r, T* x, std::span<std::uint64_t> versions) {
    double waited = 0.0;
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      auto& sl = *slots_[s];
      std::unique_lock lk(sl.m);
      if (opt_.consistency.mode == consistency_mode::bulk_synchronous) {
        waited += wait(sl.cv, lk, r, [&] { return !sl.round.staged(r) || members_.lost(r) || held(r); });
        not_held_now(r);
      }
      sl.data.read(x + layout_.begin(s));
      sl.clocks.read(r, sl.data.version());
      versions[s] = sl.data.version();
    }
    return waited;
  }

  /// The shards' current values into `x`, outside the protocol (no versions recorded, no waiting).
  void peek(T* x) {
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      std::lock_guard lk(slots_[s]->m);
      slots_[s]->data.read(x + layout_.begin(s));
    }
  }

  /// Replica r's shard-by-shard exchange: under shard s's lock, `read[lo, hi)` <- shard, `compute(lo, hi)`,
  /// then `delta[lo, hi)` pushed at `lr` (asynchronous consistency: the other modes push through push()).
  template <class F>
  push_report exchange(int r, T* read, const T* delta, T lr, F&& compute, std::span<std::uint64_t> versions) {
    push_report rep;
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      auto& sl = *slots_[s];
      const std::size_t lo = layout_.begin(s);
      std::lock_guard lk(sl.m);
      sl.data.read(read + lo);
      sl.clocks.read(r, sl.data.version());
      versions[s] = sl.data.version();
      compute(lo, layout_.end(s));
      if (members_.lost(r)) {
        rep.dropped = true;
        continue;
      }
      sl.data.apply(delta + lo, lr);
      sl.clocks.applied(r);
    }
    return rep;
  }

  // --- leaving ---------------------------------------------------------------------------------------------

  /// Replica r finished: it no longer counts for the consistency rule; waits (checking leases) until every
  /// replica finished or was lost. Returns the seconds waited.
  double finish(int r) {
    if (members_.finish(r)) after_leave(r);
    std::unique_lock lk(m_);
    return wait(cv_, lk, r, [&] { return members_.settled(); });
  }

  /// Replica r failed (its optimizer was destroyed by an exception).
  void abandon(int r) { lose(r, loss_reason::failed); }

  /// Declares lost every replica whose lease expired.
  void check_leases() {
    for (int r : members_.expired()) lose(r, loss_reason::lease_expired);
  }

  // --- checkpoints ---------------------------------------------------------------------------------------

  /// The shared state a checkpoint holds (host memory): every shard's parameters, step state and version, its
  /// clocks and staged round; each replica's clock base and steps; initialisation, warm start and the replay
  /// generator.
  struct saved {
    std::vector<typename shard<Step, Exec, T>::saved> shards;
    std::vector<shard_clocks> clocks;
    std::vector<typename sync_round<Step, Exec, T>::saved> rounds;
    std::vector<std::uint64_t> bases, steps;
    std::uint8_t initialized = 0, warm_over = 0;
    std::int32_t initializer = -1;
    std::uint64_t warm_pushes = 0;
    rng gen{0};
  };

  /// Writes the shared state (during a cut, when no replica takes steps).
  void save(checkpoint_writer& w) {
    for (auto& sp : slots_) {
      std::lock_guard lk(sp->m);
      sp->data.save(w);
      sp->clocks.save(w);
      sp->round.save(w);
    }
    std::lock_guard lk(m_);
    const auto p = static_cast<std::size_t>(members_.size());
    std::vector<std::uint64_t> bases(p), steps(p);
    for (int r = 0; r < members_.size(); ++r) {
      bases[static_cast<std::size_t>(r)] = members_.base(r);
      steps[static_cast<std::size_t>(r)] = members_.steps(r);
    }
    w.put_array<std::uint64_t>(std::span<const std::uint64_t>(bases));
    w.put_array<std::uint64_t>(std::span<const std::uint64_t>(steps));
    w.put<std::uint8_t>(initialized_ ? 1 : 0);
    w.put<std::int32_t>(initializer_);
    w.put<std::uint8_t>(warm_over_ ? 1 : 0);
    w.put<std::uint64_t>(warm_pushes_);
    w.put<rng>(rng_);
  }

  /// Reads what save() wrote, checking its sizes against this store's; changes nothing here.
  [[nodiscard]] saved read(checkpoint_reader& r) {
    saved s;
    const auto p = static_cast<std::size_t>(members_.size());
    for (auto& sp : slots_) {
      std::lock_guard lk(sp->m);
      s.shards.push_back(sp->data.read(r));
      s.clocks.push_back(sp->clocks);
      sp->clocks.read(r, s.clocks.back());
      s.rounds.push_back(sp->round.read(r, sp->data.size()));
    }
    s.bases.resize(p);
    s.steps.resize(p);
    r.get_array<std::uint64_t>(std::span<std::uint64_t>(s.bases), "the replicas' clock bases");
    r.get_array<std::uint64_t>(std::span<std::uint64_t>(s.steps), "the replicas' steps");
    s.initialized = r.get<std::uint8_t>("the initialised flag");
    s.initializer = r.get<std::int32_t>("the initialising replica");
    s.warm_over = r.get<std::uint8_t>("the warm-start flag");
    s.warm_pushes = r.get<std::uint64_t>("the warm start's pushes");
    s.gen = r.get<rng>("the replay generator");
    if (s.initialized > 1 || s.warm_over > 1 || s.initializer < -1 || s.initializer >= members_.size() ||
        (s.initialized != 0) != (s.initializer >= 0))
      throw error(tether::detail::concat("tether: checkpoint ", r.path(), ": its initialisation state (initialised = ",
                                         int{s.initialized}, ", by replica ", s.initializer,
                                         ") does not fit this store of ", members_.size(), " replicas"));
    return s;
  }

  /// Sets the state read by read() (during a cut: every replica waits in it).
  void restore(const saved& s) {
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      auto& sl = *slots_[k];
      std::lock_guard lk(sl.m);
      sl.data.restore(s.shards[k]);
      sl.clocks = s.clocks[k];
      sl.round.restore(sl.data, s.rounds[k]);
    }
    std::lock_guard lk(m_);
    for (int r = 0; r < members_.size(); ++r)
      members_.restore_live(r, s.bases[static_cast<std::size_t>(r)], s.steps[static_cast<std::size_t>(r)]);
    initialized_ = s.initialized != 0;
    initializer_ = s.initializer;
    warm_over_ = s.warm_over != 0;
    warm_pushes_ = s.warm_pushes;
    rng_ = s.gen;
  }

  /// A checkpoint's cut (`saving`: save, else load), collective over every replica; `op` names it in errors. A save
  /// during the warm start is refused at once (the joiners wait for its end in their first step). Replica r
  /// arrives after `steps` steps, with `failure` when it could not do its part so far (load: read its files); in
  /// replay mode it holds the turn and hands it to a replica not yet arrived. When all arrived: any failure, or
  /// steps that differ, is a tether::error on every replica (its own, or one naming the failing replica's). Else
  /// each runs `work()` (save: write its file, and replica 0 the shards'; load: replica 0 restores the shards),
  /// which returns its failure; once all are done, any failure is an error on every replica. The last to
  /// leave draws the next replay turn. A replica that finished or was lost before all arrived fails the cut
  /// on every replica waiting in it (their leases are renewed while they wait).
  template <class Work>
  void cut(int r, bool saving, std::uint64_t steps, std::exception_ptr failure, const std::string& op, Work&& work) {
    const auto p = static_cast<std::size_t>(members_.size());
    const auto me = static_cast<std::size_t>(r);
    std::unique_lock lk(m_);
    wait(cv_, lk, r, [&] { return cut_.arrived < members_.size() && cut_.left == 0; });  // the last cut is over
    if (saving && !warm_over_) {  // the joiners wait in their first step for the warm start to end: they cannot arrive
      if (opt_.replay.enabled && turn_ == r) draw_turn();
      throw error(tether::detail::concat("tether: downpour::", op, ": during the warm start (replica 0 has taken ",
                                         members_.steps(0), " of warm_start = ", opt_.warm_start,
                                         " steps): a checkpoint needs every replica joined"));
    }
    if (cut_.steps.size() != p) {
      cut_.steps.assign(p, 0);
      cut_.why.assign(p, std::string());
      cut_.in.assign(p, 0);
    }
    cut_.steps[me] = steps;
    cut_.why[me] = message_of(failure);
    cut_.in[me] = 1;
    in_cut_[me].store(1, std::memory_order_release);
    cut_count_.store(++cut_.arrived, std::memory_order_release);
    if (opt_.replay.enabled && turn_ == r) draw_turn();
    cv_.notify_all();
    lk.unlock();
    notify_slots();  // a replica the consistency rule holds back may be released by this arrival
    lk.lock();
    int gone = -1;
    wait(cv_, lk, r, [&] {
      if (cut_.arrived == members_.size()) return true;
      for (int q = 0; q < members_.size(); ++q)
        if (members_.gone(q)) gone = q;
      return gone >= 0;
    });
    if (cut_.arrived != members_.size()) {  // a replica is gone: this cut can never complete
      cut_.in[me] = 0;
      in_cut_[me].store(0, std::memory_order_release);
      cut_count_.store(--cut_.arrived, std::memory_order_release);
      if (opt_.replay.enabled && turn_ < 0) draw_turn();
      throw error(tether::detail::concat("tether: downpour::", op, ": replica ", gone, " ",
                                         members_.lost(gone) ? "was lost" : "finished",
                                         " before every replica arrived: a checkpoint takes every replica"));
    }
    if (opt_.replay.enabled) turn_ = -1;  // no turn until the cut is over
    cut_count_.store(0, std::memory_order_release);  // every replica arrived: nobody is to be released
    leave_guard leave{*this, lk};
    check_verdict(failure, op, "could not load its checkpoint", true);
    lk.unlock();
    std::exception_ptr mine;
    try {
      mine = work();
    } catch (const std::exception&) {
      mine = std::current_exception();
    }
    std::string why = message_of(mine);
    lk.lock();
    cut_.why[me] = std::move(why);
    ++cut_.done;
    cv_.notify_all();
    wait(cv_, lk, r, [&] { return cut_.done == members_.size(); });
    check_verdict(mine, op, "failed", false);
  }

  // --- replay turns ----------------------------------------------------------------------------------------

  /// Blocks until it is replica r's turn (replay mode). Returns the seconds waited.
  double acquire_turn(int r) {
    std::unique_lock lk(m_);
    return wait(cv_, lk, r, [&] { return turn_ == r || members_.gone(r); });
  }
  /// Replica r's turn is over: the next replica is drawn.
  void release_turn(int r) {
    std::lock_guard lk(m_);
    if (turn_ == r) draw_turn();
  }

 private:
  /// A checkpoint cut in progress (under m_).
  struct cut_board {
    int arrived = 0, done = 0, left = 0;
    std::vector<std::uint64_t> steps;
    std::vector<std::string> why;  // each replica's failure ("": none); the exceptions stay with their threads
    std::vector<char> in;          // arrived at the cut in progress
  };

  /// Leaves a cut that every replica arrived at (normally or by an exception): the last one out clears it and
  /// draws the next replay turn.
  struct leave_guard {
    server& s;
    std::unique_lock<std::mutex>& lk;
    leave_guard(server& sv, std::unique_lock<std::mutex>& l) : s(sv), lk(l) {}
    leave_guard(const leave_guard&) = delete;
    leave_guard& operator=(const leave_guard&) = delete;
    ~leave_guard() {
      if (!lk.owns_lock()) lk.lock();
      if (++s.cut_.left == s.members_.size()) {
        s.cut_ = {.steps = std::move(s.cut_.steps), .why = {}, .in = {}};
        s.cut_.why.assign(s.cut_.steps.size(), std::string());
        s.cut_.in.assign(s.cut_.steps.size(), 0);
        for (std::size_t q = 0; q < s.cut_.steps.size(); ++q) s.in_cut_[q].store(0, std::memory_order_release);
        s.cut_count_.store(0, std::memory_order_release);
        if (s.opt_.replay.enabled) s.draw_turn();
      }
      s.cv_.notify_all();
    }
  };

  /// Replica r's consistency rule holds it (called from its wait's predicate, under the shard's lock, once the
  /// rule said no): it is recorded as held at the current progress, and true when the cut releases it.
  bool held(int r) noexcept {
    held_at_[static_cast<std::size_t>(r)].store(progress_.load(std::memory_order_acquire), std::memory_order_release);
    return released_by_cut(r);
  }
  void not_held_now(int r) noexcept { held_at_[static_cast<std::size_t>(r)].store(not_held, std::memory_order_release); }

  /// True while a checkpoint's cut is filling and every live replica either waits in it or is held by the
  /// consistency rule with nothing changed since it found so (the shards' progress count), r being the lowest
  /// held one: then nothing can move but by the cut, which releases the held replicas one at a time, lowest
  /// first (bulk-synchronous: a fetch reads the shards without the round it pushed, and a round to close before
  /// the next push is applied as it stands; bounded: a push is applied beyond the bound), so that they reach the
  /// cut too, in an order the timing does not choose.
  [[nodiscard]] bool released_by_cut(int r) const noexcept {
    if (cut_count_.load(std::memory_order_acquire) == 0 || !members_.live(r)) return false;
    const std::uint64_t now = progress_.load(std::memory_order_acquire);
    int lowest = -1;
    for (int q = 0; q < members_.size(); ++q) {
      const auto u = static_cast<std::size_t>(q);
      if (!members_.live(q) || in_cut_[u].load(std::memory_order_acquire) != 0) continue;
      if (held_at_[u].load(std::memory_order_acquire) != now) return false;
      if (lowest < 0) lowest = q;
    }
    return lowest == r;
  }

  /// Wakes the replicas waiting on a shard.
  void notify_slots() {
    for (auto& sp : slots_) {
      std::lock_guard lk(sp->m);
      sp->cv.notify_all();
    }
  }

  /// What a failure says ("" for none).
  static std::string message_of(const std::exception_ptr& failure) {
    if (!failure) return {};
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      const std::string w = e.what();
      return w.empty() ? std::string("unknown error") : w;
    } catch (...) {
      return "unknown error";
    }
  }

  /// After every replica reported (under m_): this replica's own failure `mine` rethrown, another's named, or
  /// (`steps`) the replicas' steps that differ, as a tether::error on every replica.
  void check_verdict(const std::exception_ptr& mine, const std::string& op, const char* what, bool steps) const {
    if (mine) std::rethrow_exception(mine);
    for (std::size_t q = 0; q < cut_.why.size(); ++q)
      if (!cut_.why[q].empty())
        throw error(tether::detail::concat("tether: downpour::", op, ": replica ", q, " ", what, ": ", cut_.why[q]));
    if (!steps) return;
    bool same = true;
    for (const auto k : cut_.steps) same = same && k == cut_.steps[0];
    if (same) return;
    std::string list;
    for (std::size_t q = 0; q < cut_.steps.size(); ++q)
      list += tether::detail::concat(q == 0 ? "" : ", ", "replica ", q, " at step ", cut_.steps[q]);
    throw error(tether::detail::concat("tether: downpour::", op, ": the replicas are at different steps (", list,
                                       "): every replica must save, and load, the checkpoint of the same step"));
  }

  /// Waits on `cv` until `pred` holds; every tick renews r's lease and declares lost the replicas whose lease
  /// expired (with `lk` released). Returns the seconds waited.
  template <class Lock, class Pred>
  double wait(std::condition_variable& cv, Lock& lk, int r, Pred pred) {
    if (pred()) return 0.0;
    const auto t0 = membership::clock::now();
    while (!pred()) {
      if (cv.wait_for(lk, tick_) == std::cv_status::timeout) {
        lk.unlock();
        members_.renew(r);
        check_leases();
        lk.lock();
      }
    }
    return std::chrono::duration<double>(membership::clock::now() - t0).count();
  }

  void lose(int r, loss_reason why) {
    std::uint64_t applied = 0;
    {
      std::lock_guard lk(slots_[0]->m);
      applied = slots_[0]->clocks.applied_count(r);
    }
    if (members_.lose(r, why, applied)) after_leave(r);
  }

  /// After replica r finished or was lost: the warm start ends if r was replica 0, its turn passes, waiters
  /// are woken, and bulk-synchronous rounds that only waited for r are applied.
  void after_leave(int r) {
    progress_.fetch_add(1, std::memory_order_acq_rel);
    {
      std::lock_guard lk(m_);
      if (r == 0 && !warm_over_) end_warm_start();
      if (opt_.replay.enabled && turn_ == r) draw_turn();
      cv_.notify_all();
    }
    for (auto& sp : slots_) {
      std::lock_guard lk(sp->m);
      if (opt_.consistency.mode == consistency_mode::bulk_synchronous && sp->round.complete(members_))
        sp->round.apply(sp->data, sp->clocks);
      sp->cv.notify_all();
    }
  }

  /// The replica that initialises the shards: the lowest one still there. (Under m_.)
  [[nodiscard]] int candidate() const noexcept {
    for (int r = 0; r < members_.size(); ++r)
      if (!members_.gone(r)) return r;
    return -1;
  }

  /// Every waiting replica becomes live, its clock starting at replica 0's pushes. (Under m_.)
  void end_warm_start() {
    progress_.fetch_add(1, std::memory_order_acq_rel);
    warm_over_ = true;
    for (int r = 0; r < members_.size(); ++r) members_.make_live(r, warm_pushes_);
    if (opt_.replay.enabled && turn_ < 0) draw_turn();
    cv_.notify_all();
  }

  /// Replay: the next turn goes to a live replica drawn from the seeded generator (before the shards are
  /// initialised, only to the initialising candidate). (Under m_.)
  void draw_turn() {
    std::vector<int> eligible;
    const bool cut = cut_.arrived > 0 && cut_.left == 0;  // a checkpoint's cut: to a replica not yet arrived
    for (int r = 0; r < members_.size(); ++r)
      if (members_.live(r) && (cut ? cut_.in[static_cast<std::size_t>(r)] == 0 : initialized_ || r == candidate()))
        eligible.push_back(r);
    turn_ = eligible.empty() ? -1 : eligible[static_cast<std::size_t>(rng_.below(eligible.size()))];
    cv_.notify_all();
  }

  shard_layout layout_;
  store_options opt_;
  membership members_;
  std::vector<std::unique_ptr<slot>> slots_;
  std::chrono::microseconds tick_{1000};
  std::mutex m_;
  std::condition_variable cv_;
  bool initialized_ = false;
  int initializer_ = -1;
  bool warm_over_;
  std::uint64_t warm_pushes_ = 0;
  int turn_ = -1;
  rng rng_;
  cut_board cut_;
  std::atomic<int> cut_count_{0};  // cut_.arrived while the cut fills, for the shards' waits (which do not hold m_)
  // The cut's release: the shards' changes so far; per replica, the progress at which the consistency rule last
  // held it (not_held outside such a wait), and whether it is at the cut.
  static constexpr std::uint64_t not_held = ~std::uint64_t{0};
  std::atomic<std::uint64_t> progress_{0};
  std::unique_ptr<std::atomic<std::uint64_t>[]> held_at_;
  std::unique_ptr<std::atomic<char>[]> in_cut_;
};

}  // namespace detail_team

/// One replica's handle on a store of the thread team (see the file comment), opened by
/// `placement<team::worker>::open`. Buffers are pointers into `Exec`'s memory (host spans for the
/// tether::shared_store members). Bytes follow the communication model: a push counts N*s sent, a fetch N*s
/// received, on the worker's counters.
template <class Step, class Exec, class T>
class team_store {
 public:
  using server_type = detail_team::server<Step, Exec, T>;

  team_store() = default;
  team_store(std::shared_ptr<server_type> server, comm::team_worker& w, T base_lr)
      : server_(std::move(server)), comm_(&w), rank_(w.rank()), lr_(base_lr),
        versions_(server_->layout().shards(), 0) {}

  /// Number of parameters N.
  [[nodiscard]] std::size_t size() const noexcept { return server_ ? server_->layout().size() : 0; }
  /// The shards' layout.
  [[nodiscard]] shard_layout layout() const { return server_ ? server_->layout() : shard_layout{}; }
  /// This replica's rank.
  [[nodiscard]] int replica() const noexcept { return rank_; }

  // --- tether::shared_store --------------------------------------------------------------------------------

  /// A fetch into `out` (N values).
  void read(std::span<T> out) {
    check_size(out.size(), "read");
    fetch(out.data());
  }
  /// A push of `in` at the store's base rate.
  void accumulate(std::span<const T> in) {
    check_size(in.size(), "accumulate");
    push(in.data(), lr_);
  }
  /// Shard by shard: `read[lo, hi)` <- the shard, `compute(lo, hi)` fills `delta[lo, hi)`, which is pushed at
  /// the base rate, all under the shard's lock (asynchronous mode: the shard is updated exactly from what
  /// was read).
  template <class F>
  void exchange(std::span<T> read, std::span<T> delta, F&& compute) {
    check_size(read.size(), "exchange");
    check_size(delta.size(), "exchange");
    tether::detail::require(server_->options().consistency.mode == consistency_mode::asynchronous,
                            "ps::team_store: exchange needs the asynchronous consistency mode");
    const push_report rep = server_->exchange(rank_, read.data(), delta.data(), lr_, std::forward<F>(compute), versions_);
    tally_.add(rep.dropped, rep.staleness, rep.lead);
    count(size(), size());
  }
  /// Nothing is in flight on the team: a push is applied when it returns.
  void release() const noexcept {}
  /// finish(out): this replica is done; waits for the others; `out` receives the final parameters.
  void close(std::span<T> out) {
    check_size(out.size(), "close");
    finish(out.data());
  }

  // --- ps::parameter_store ---------------------------------------------------------------------------------

  bool join(T* x) {
    double waited = 0.0;
    const bool init = server_->join(rank_, x, waited);
    waited_ += waited;
    return init;
  }
  void push(const T* g, T lr) {
    const push_report rep = server_->push(rank_, g, lr);
    tally_.add(rep.dropped, rep.staleness, rep.lead);
    waited_ += rep.seconds_waiting;
    count(size(), 0);
  }
  [[nodiscard]] const push_tally& tally() const noexcept { return tally_; }
  void fetch(T* x) {
    waited_ += server_->fetch(rank_, x, versions_);
    count(0, size());
  }
  [[nodiscard]] std::span<const std::uint64_t> versions() const noexcept { return versions_; }
  void renew(std::uint64_t steps) { server_->members().renew(rank_, steps); }
  void stepped(std::uint64_t steps, std::uint64_t pushes) { server_->stepped(rank_, steps, pushes); }
  void finish(T* x) {
    waited_ += server_->finish(rank_);
    server_->peek(x);
    count(0, size());
  }
  void abandon() { server_->abandon(rank_); }
  [[nodiscard]] std::vector<replica_loss> losses() const { return server_->members().losses(); }

  // --- the thread team's own ---------------------------------------------------------------------------------

  /// The shards' current values, outside the protocol (evaluations, tests): not counted, no versions.
  void peek(T* x) { server_->peek(x); }
  /// Replay mode: waits for this replica's turn / hands the turn on.
  void acquire_turn() { waited_ += server_->acquire_turn(rank_); }
  void release_turn() { server_->release_turn(rank_); }
  // --- checkpoints (algo::downpour::save/load) ---------------------------------------------------------------

  using saved_shards = typename server_type::saved;
  /// What a replica's checkpoint holds of its handle: the versions it last read, its pushes' tally, the seconds
  /// it waited.
  struct saved_replica {
    std::vector<std::uint64_t> versions;
    push_tally tally{};
    double waited = 0.0;
  };

  /// Replica 0 reads and writes the shared state's file.
  [[nodiscard]] bool holds_shards_file() const noexcept { return rank_ == 0; }
  /// The file of the shared state that goes with replica 0's checkpoint `path`.
  [[nodiscard]] std::string shards_path(const std::string& path) const { return path + ".shards"; }

  /// Collective save (server::cut): in replay mode it takes a turn; replica 0 writes `header(w)` and the shared
  /// state to shards_path(path); every replica runs `write_own()` (which writes its own file).
  template <class Header, class Own>
  void save_cut(std::uint64_t steps, const std::string& path, Header&& header, Own&& write_own) {
    if (server_->options().replay.enabled) acquire_turn();
    server_->cut(rank_, true, steps, nullptr, "save(\"" + path + "\")", [&]() -> std::exception_ptr {
      if (rank_ == 0) {
        checkpoint_writer w;
        header(w);
        server_->save(w);
        write_checkpoint_file(shards_path(path), w.bytes());
      }
      write_own();
      return nullptr;
    });
  }
  /// Reads the shared state after a shards file's header; changes nothing.
  [[nodiscard]] saved_shards read_shards(checkpoint_reader& r) { return server_->read(r); }
  /// Collective load of `path` (server::cut): every replica reports its step and whether it read its files; then replica 0
  /// (`shards` non-null) restores the shared state.
  void load_cut(std::uint64_t steps, const std::string& path, std::exception_ptr failure, const saved_shards* shards) {
    server_->cut(rank_, false, steps, std::move(failure), "load(\"" + path + "\")", [&]() -> std::exception_ptr {
      if (shards != nullptr) server_->restore(*shards);
      return nullptr;
    });
  }
  /// Writes this handle's part of the replica's checkpoint.
  void save_replica(checkpoint_writer& w) const {
    w.put_array<std::uint64_t>(std::span<const std::uint64_t>(versions_));
    w.put<push_tally>(tally_);
    w.put<double>(waited_);
  }
  /// Reads what save_replica() wrote; changes nothing.
  [[nodiscard]] saved_replica read_replica(checkpoint_reader& r) const {
    saved_replica s;
    s.versions.resize(versions_.size());
    r.get_array<std::uint64_t>(std::span<std::uint64_t>(s.versions), "the versions last read");
    s.tally = r.get<push_tally>("the pushes' tally");
    s.waited = r.get<double>("the seconds waited");
    return s;
  }
  /// Sets what read_replica() read.
  void restore_replica(saved_replica s) {
    versions_ = std::move(s.versions);
    tally_ = s.tally;
    waited_ = s.waited;
  }

  /// True when this replica was declared lost.
  [[nodiscard]] bool lost() const noexcept { return server_->members().lost(rank_); }
  /// Seconds this handle waited so far (consistency, warm start, turns, finish).
  [[nodiscard]] double seconds_waiting() const noexcept { return waited_; }

 private:
  void check_size(std::size_t got, const char* what) const {
    tether::detail::require(got == size(), "ps::team_store: ", what, " buffer has ", got, " elements, the store has ",
                            size());
  }
  void count(std::size_t sent, std::size_t received) {
    comm_->count(sent * sizeof(T), received * sizeof(T));
  }

  std::shared_ptr<server_type> server_;
  comm::team_worker* comm_ = nullptr;
  int rank_ = 0;
  T lr_ = T(0);
  std::vector<std::uint64_t> versions_;
  push_tally tally_{};
  double waited_ = 0.0;
};

/// The thread team's placement: every worker is a replica; the shards live in the process.
template <>
struct placement<comm::team_worker> {
  template <class Step, class Exec, class T>
  using store = team_store<Step, Exec, T>;

  /// The team has no server ranks.
  static constexpr bool has_servers = false;
  /// Replay mode is available.
  static constexpr bool has_replay = true;

  /// Collective: every worker has the same values in `items`; otherwise every worker throws tether::error
  /// naming the first that differs and each worker's value.
  static void check_consistent(comm::team_worker& w, std::span<const consistency_item> items) {
    const auto p = static_cast<std::size_t>(w.size());
    const std::size_t k = items.size();
    std::vector<std::uint64_t> all(p * k, 0);
    for (std::size_t i = 0; i < k; ++i) all[static_cast<std::size_t>(w.rank()) * k + i] = items[i].value;
    w.allreduce_sum(std::span<std::uint64_t>(all));  // a gather: each worker filled its own row
    for (std::size_t i = 0; i < k; ++i) {
      std::vector<std::uint64_t> column(p);
      for (std::size_t r = 0; r < p; ++r) column[r] = all[r * k + i];
      if (std::any_of(column.begin(), column.end(), [&](std::uint64_t v) { return v != column[0]; }))
        tether::detail::throw_inconsistent(w.rank(), items[i].what, column);
    }
  }

  /// Collective: rank 0 creates the store's shared state, every worker gets a handle on it.
  template <class Step, class Exec, class T>
  static store<Step, Exec, T> open(comm::team_worker& w, const Exec& exec, const Step& step, std::size_t n,
                                   const store_options& o, T base_lr) {
    using server_type = detail_team::server<Step, Exec, T>;
    std::shared_ptr<server_type> server;
    if (w.rank() == 0) server = std::make_shared<server_type>(exec, step, n, w.size(), o);
    std::array<std::uint64_t, 1> address{reinterpret_cast<std::uintptr_t>(&server)};
    w.broadcast(std::span<std::uint64_t>(address), 0);
    if (w.rank() != 0) server = *reinterpret_cast<const std::shared_ptr<server_type>*>(address[0]);
    w.barrier();  // rank 0's `server` is read until here
    return store<Step, Exec, T>(std::move(server), w, base_lr);
  }
};

}  // namespace tether::ps
