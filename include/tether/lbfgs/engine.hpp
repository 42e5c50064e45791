#pragma once
/// \file
/// lbfgs::engine: what one worker runs in Sandblaster L-BFGS. Every worker is a replica (it computes
/// portions), holds the shards s with s % p == its rank, and one worker is also the coordinator. A loop
/// takes the worker's messages in order, does one portion of work when it has one, and otherwise waits for
/// the next message (at most the timeout). See docs/algorithms/sandblaster_lbfgs.md#protocol.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/lbfgs/checkpoint.hpp"
#include "tether/lbfgs/coordinator.hpp"
#include "tether/lbfgs/options.hpp"
#include "tether/lbfgs/portions.hpp"
#include "tether/lbfgs/shard.hpp"
#include "tether/lbfgs/wire.hpp"
#include "tether/lbfgs/work_queue.hpp"

namespace tether::lbfgs {

/// The number of shards of every vector: options::shards (0: one per worker), at most n.
[[nodiscard]] inline std::size_t shard_count(std::size_t n, int workers, const options& o) noexcept {
  return std::min<std::size_t>(o.shards == 0 ? static_cast<std::size_t>(workers) : o.shards, n);
}

/// One worker's part of a run; see the file comment. `Channel` carries the point-to-point messages
/// (team_channel, mpi_channel).
template <class Exec, class Channel, class O, class T>
class engine {
 public:
  using clock = std::chrono::steady_clock;

  /// `x` is the start point (the same on every worker) and receives the result; `g`, if not empty, receives
  /// the gradient at the result. `id` is what this worker's checkpoints record; `resume`, if not null, the
  /// checkpoint this worker starts from instead of x (read and checked by read_worker_checkpoint).
  engine(const Exec& exec, Channel& ch, O& objective, std::span<T> x, std::span<T> g, const options& o,
         const portion_plan<O, T>& plan, const checkpoint_identity& id,
         worker_checkpoint<T>* resume = nullptr)
      : exec_(exec),
        ch_(ch),
        obj_(objective),
        o_(o),
        plan_(plan),
        x_out_(x),
        g_out_(g),
        n_(x.size()),
        p_(ch.size()),
        me_(ch.rank()),
        coord_(o.coordinator),
        layout_(n_, shard_count(n_, p_, o)),
        portions_(plan.count()),
        x_full_(n_),
        contribution_(n_),
        have_piece_(layout_.shards(), false),
        final_have_(layout_.shards(), false),
        bye_(static_cast<std::size_t>(p_), false),
        last_sent_(static_cast<std::size_t>(p_), clock::now()),
        id_(id) {
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      if (holder(s) != me_) continue;
      shards_.emplace_back(exec_, s, layout_.begin(s),
                           std::span<const T>(x.data() + layout_.begin(s), layout_.count(s)), o.history,
                           portions_);
    }
    if (is_coordinator()) {
      logic_.emplace(o);
      queue_.emplace(p_, work_queue::settings{o.queue_depth, o.backups, o.backup_threshold, o.max_copies,
                                              o.backup_after});
    }
    if (resume != nullptr) restore(*resume);
  }

  /// The shards this worker holds under the options' layout (what its checkpoint must hold).
  [[nodiscard]] static std::vector<held_shard> held_shards(std::size_t n, int workers, int rank,
                                                           const options& o) {
    const shard_layout layout(n, shard_count(n, workers, o));
    std::vector<held_shard> held;
    for (std::size_t s = static_cast<std::size_t>(rank); s < layout.shards();
         s += static_cast<std::size_t>(workers))
      held.push_back({s, layout.count(s)});
    return held;
  }

  /// Runs this worker's part until the coordinator stops the run; returns the run's result.
  result run() {
    started_ = clock::now();
    last_heard_ = started_;
    try {
      if (is_coordinator()) issue(resumed_ ? logic_->resume(std::move(*resumed_)) : logic_->start());
      loop();
    } catch (const std::exception& e) {
      ch_.abort(detail::concat("worker ", me_, " failed: ", e.what()));
      throw;
    }
    ch_.close(lost_);
    result r = std::move(result_);
    r.lost_workers = lost_.size();
    r.bytes_sent = ch_.bytes_sent();
    r.bytes_received = ch_.bytes_received();
    return r;
  }

 private:
  [[nodiscard]] bool is_coordinator() const noexcept { return me_ == coord_; }
  [[nodiscard]] int holder(std::size_t s) const noexcept {
    return static_cast<int>(s % static_cast<std::size_t>(p_));
  }
  [[nodiscard]] double timeout() const noexcept { return o_.timeout; }

  // --- the loop -------------------------------------------------------------------------------------------

  void loop() {
    while (!finished_) {
      while (!finished_) {
        std::optional<wire::message> m = next_now();
        if (!m) break;
        handle(*m);
      }
      if (finished_) break;
      if (is_coordinator() && !stopping_) schedule();
      if (replica_ready()) {
        if (is_coordinator() && !stopping_) heartbeats(clock::now());  // it cannot answer while it computes
        compute_portion();
        last_heard_ = clock::now();  // this worker's own progress: the timeout counts from its last work
        continue;
      }
      if (!local_.empty()) continue;
      const auto now = clock::now();
      auto deadline = last_heard_ + seconds(timeout());
      if (is_coordinator() && !stopping_) {
        heartbeats(now);
        deadline = std::min(deadline, now + seconds(timeout() / 4));
        // Wake up when a backup copy falls due (schedule() hands it out).
        if (const auto due = queue_->backup_due())
          deadline = std::min(deadline, std::max(*due, now) + std::chrono::microseconds(1));
      }
      std::optional<wire::message> m = ch_.receive(deadline);
      if (m) {
        last_heard_ = clock::now();
        handle(*m);
      } else if (clock::now() - last_heard_ > seconds(timeout())) {
        timed_out();
      }
    }
  }

  /// The next message already there: this worker's own first, then the channel's.
  std::optional<wire::message> next_now() {
    if (!local_.empty()) {
      wire::message m = std::move(local_.front());
      local_.pop_front();
      last_heard_ = clock::now();
      return m;
    }
    auto m = ch_.try_receive();
    if (m) last_heard_ = clock::now();
    return m;
  }

  void send(int to, wire::tag kind, std::vector<std::byte> bytes) {
    if (to == me_) {
      local_.push_back(wire::message{kind, me_, std::move(bytes)});
      return;
    }
    if (is_coordinator() &&
        (kind == wire::tag::trial || kind == wire::tag::assign || kind == wire::tag::stop ||
         kind == wire::tag::heartbeat || kind == wire::tag::cancel))
      coordinator_bytes_ += bytes.size();
    last_sent_[static_cast<std::size_t>(to)] = clock::now();
    ch_.send(to, kind, std::move(bytes));
  }

  void send_all(wire::tag kind, const std::vector<std::byte>& bytes) {
    for (int r = 0; r < p_; ++r) send(r, kind, bytes);
  }

  void handle(wire::message& m) {
    if (is_coordinator() && m.from != me_ &&
        (m.kind == wire::tag::done || m.kind == wire::tag::skipped || m.kind == wire::tag::dots))
      coordinator_bytes_ += m.bytes.size();
    switch (m.kind) {
      case wire::tag::trial:
        return on_trial(m);
      case wire::tag::params:
        return on_params(m);
      case wire::tag::assign:
        return on_assign(m);
      case wire::tag::grad:
        return on_grad(m);
      case wire::tag::done:
        return on_done(m);
      case wire::tag::skipped:
        return on_skipped(m);
      case wire::tag::dots:
        return on_dots(m);
      case wire::tag::stop:
        return on_stop(m);
      case wire::tag::final:
        return on_final(m);
      case wire::tag::bye:
        return on_bye(m);
      case wire::tag::heartbeat:
        return;
      case wire::tag::cancel:
        return on_cancel(m);
      case wire::tag::save:
        return on_save(m);
      case wire::tag::abort: {
        wire::reader r(m);
        throw aborted(detail::concat("tether: worker ", me_, ": sandblaster_lbfgs: ", r.get_string()));
      }
    }
    throw runtime_error(detail::concat("tether: worker ", me_,
                                       ": sandblaster_lbfgs: a message of unknown kind ",
                                       static_cast<int>(m.kind), " from worker ", m.from));
  }

  // --- shard holder ---------------------------------------------------------------------------------------

  void on_trial(const wire::message& m) {
    if (stopping_) return;
    const trial_command c = wire::decode_trial(m);
    for (auto& sh : shards_) {
      sh.start_trial(c);
      wire::writer w;
      w.reserve(32 + sh.size() * sizeof(T));
      w.put(c.batch).put<std::uint64_t>(sh.index()).put_span(sh.trial_point());
      send_all(wire::tag::params, w.take());
    }
  }

  void on_grad(const wire::message& m) {
    if (stopping_) return;
    wire::reader r(m);
    const auto batch = r.get<std::uint64_t>();
    const auto k = static_cast<std::size_t>(r.get<std::uint64_t>());
    const auto s = static_cast<std::size_t>(r.get<std::uint64_t>());
    r.get_span(scratch_);
    auto* sh = local_shard(s);
    if (sh == nullptr)
      throw runtime_error(detail::concat("tether: worker ", me_,
                                         ": sandblaster_lbfgs: a contribution to shard ", s, " from worker ",
                                         m.from, ", which this worker does not hold"));
    const bool was_complete = sh->complete() && sh->batch() == batch;
    (void)sh->add(batch, k, scratch_);
    if (!was_complete && sh->batch() == batch && sh->complete()) {
      wire::writer w;
      const std::vector<double> d = sh->dot_products();
      w.put(batch).put<std::uint64_t>(s).put_span(std::span<const double>(d));
      send(coord_, wire::tag::dots, w.take());
    }
  }

  shard<Exec, T>* local_shard(std::size_t s) {
    for (auto& sh : shards_)
      if (sh.index() == s) return &sh;
    return nullptr;
  }

  // --- replica --------------------------------------------------------------------------------------------

  /// A newer batch: the pieces of the trial point start over, and assignments of older batches are dropped
  /// (answered `skipped`, so the coordinator knows this replica is free).
  void switch_batch(std::uint64_t batch) {
    replica_batch_ = batch;
    std::fill(have_piece_.begin(), have_piece_.end(), false);
    pieces_ = 0;
    std::deque<std::pair<std::uint64_t, std::size_t>> keep;
    for (const auto& a : assigned_) {
      if (a.first >= batch) {
        keep.push_back(a);
      } else {
        wire::writer w;
        w.put(a.first).put<std::uint64_t>(a.second);
        send(coord_, wire::tag::skipped, w.take());
      }
    }
    assigned_ = std::move(keep);
  }

  void on_params(const wire::message& m) {
    if (stopping_) return;
    wire::reader r(m);
    const auto batch = r.get<std::uint64_t>();
    const auto s = static_cast<std::size_t>(r.get<std::uint64_t>());
    if (batch < replica_batch_) return;
    if (batch > replica_batch_) switch_batch(batch);
    r.get_span(scratch_);
    if (s >= layout_.shards() || scratch_.size() != layout_.count(s))
      throw runtime_error(detail::concat("tether: worker ", me_, ": sandblaster_lbfgs: a slice of ",
                                         scratch_.size(), " values for shard ", s, " from worker ", m.from));
    std::copy(scratch_.begin(), scratch_.end(),
              x_full_.begin() + static_cast<std::ptrdiff_t>(layout_.begin(s)));
    if (!have_piece_[s]) {
      have_piece_[s] = true;
      ++pieces_;
    }
  }

  void on_assign(const wire::message& m) {
    if (stopping_) return;
    wire::reader r(m);
    const auto batch = r.get<std::uint64_t>();
    const auto k = static_cast<std::size_t>(r.get<std::uint64_t>());
    if (batch < replica_batch_) {
      wire::writer w;
      w.put(batch).put<std::uint64_t>(k);
      send(coord_, wire::tag::skipped, w.take());
      return;
    }
    if (batch > replica_batch_) switch_batch(batch);
    assigned_.emplace_back(batch, k);
  }

  /// Another copy of a portion this replica holds came first: drop it if it is still queued.
  void on_cancel(const wire::message& m) {
    if (stopping_) return;
    wire::reader r(m);
    const auto batch = r.get<std::uint64_t>();
    const auto k = static_cast<std::size_t>(r.get<std::uint64_t>());
    const auto it =
        std::find(assigned_.begin(), assigned_.end(), std::pair<std::uint64_t, std::size_t>{batch, k});
    if (it == assigned_.end()) return;
    assigned_.erase(it);
    wire::writer w;
    w.put(batch).put<std::uint64_t>(k);
    send(coord_, wire::tag::skipped, w.take());
  }

  [[nodiscard]] bool replica_ready() const noexcept {
    return !stopping_ && !assigned_.empty() && pieces_ == layout_.shards() &&
           assigned_.front().first == replica_batch_;
  }

  /// Computes the first queued portion at the trial point and sends each shard its slice of the
  /// contribution, then the loss to the coordinator.
  void compute_portion() {
    const auto [batch, k] = assigned_.front();
    assigned_.pop_front();
    const double f =
        plan_.evaluate(obj_, std::span<const T>(x_full_), std::span<T>(contribution_), k, o_.seed, indices_);
    for (std::size_t s = 0; s < layout_.shards(); ++s) {
      wire::writer w;
      w.reserve(48 + layout_.count(s) * sizeof(T));
      w.put(batch).put<std::uint64_t>(k).put<std::uint64_t>(s);
      w.put_span(std::span<const T>(contribution_.data() + layout_.begin(s), layout_.count(s)));
      send(holder(s), wire::tag::grad, w.take());
    }
    wire::writer w;
    w.put(batch).put<std::uint64_t>(k).put(f);
    send(coord_, wire::tag::done, w.take());
  }

  // --- coordinator ----------------------------------------------------------------------------------------

  void issue(const command& c) {
    if (c.checkpoint) {
      saved_ =
          coordinator_checkpoint{*c.checkpoint, portions_total_, duplicates_, backups(), coordinator_bytes_};
      // The iteration's record as batch_complete completed it (its portions, backups, bytes).
      if (!saved_->logic.history.empty()) saved_->logic.history.back() = logic_->history().back();
    }
    if (c.stop) {
      stop(c);
    } else {
      queue_->start(c.trial.batch, portions_);
      batch_f_.assign(portions_, 0.0);
      batch_dots_.assign(layout_.shards(), {});
      dots_count_ = 0;
      send_all(wire::tag::trial, wire::encode(c.trial));
    }
    // After the trial (or stop) that commits the iteration: every worker then holds it and writes its file.
    // After a stop, the shards keep the last pair too (a stop commits without storing it).
    if (c.checkpoint) {
      wire::writer w;
      w.put<std::uint64_t>(c.checkpoint->iterations);
      w.put<std::uint8_t>(c.stop && c.trial.store ? 1 : 0).put<std::uint64_t>(c.trial.slot);
      send_all(wire::tag::save, w.take());
    }
    if (!c.stop) schedule();
  }

  /// Backup copies over the run (a resumed run's include those before its checkpoint).
  [[nodiscard]] std::size_t backups() const { return backups_before_ + queue_->backups(); }

  void schedule() {
    if (!queue_ || queue_->complete()) return;
    std::vector<work_queue::assignment> out;
    queue_->schedule(out, clock::now());
    for (const auto& a : out) {
      wire::writer w;
      w.put(queue_->batch()).put<std::uint64_t>(a.portion);
      send(a.replica, wire::tag::assign, w.take());
    }
  }

  void heartbeats(clock::time_point now) {
    for (int r = 0; r < p_; ++r)
      if (r != me_ && now - last_sent_[static_cast<std::size_t>(r)] > seconds(timeout() / 4))
        send(r, wire::tag::heartbeat, {});
  }

  void on_done(const wire::message& m) {
    wire::reader r(m);
    const auto batch = r.get<std::uint64_t>();
    const auto k = static_cast<std::size_t>(r.get<std::uint64_t>());
    const double f = r.get<double>();
    if (!queue_ || stopping_) return;
    if (queue_->done(m.from, batch, k) == work_queue::report::first) {
      batch_f_[k] = f;
      ++portions_total_;
      // Other copies still queued at other replicas are not needed any more.
      for (const int r : queue_->holders(batch, k)) {
        wire::writer w;
        w.put(batch).put<std::uint64_t>(k);
        send(r, wire::tag::cancel, w.take());
      }
    } else {
      ++duplicates_;
    }
    batch_complete();
  }

  void on_skipped(const wire::message& m) {
    wire::reader r(m);
    const auto batch = r.get<std::uint64_t>();
    const auto k = static_cast<std::size_t>(r.get<std::uint64_t>());
    if (queue_) queue_->skipped(m.from, batch, k);
  }

  void on_dots(const wire::message& m) {
    if (!queue_ || stopping_) return;
    wire::reader r(m);
    const auto batch = r.get<std::uint64_t>();
    const auto s = static_cast<std::size_t>(r.get<std::uint64_t>());
    if (batch != queue_->batch() || s >= layout_.shards()) return;
    r.get_span(batch_dots_[s]);
    ++dots_count_;
    batch_complete();
  }

  /// When every portion has a result and every shard sent its dot products: the batch's loss (portion order)
  /// and dot products (shard order) go to the L-BFGS logic, whose next command is sent.
  void batch_complete() {
    if (!queue_->complete() || dots_count_ != layout_.shards()) return;
    double f = 0.0;
    for (const double v : batch_f_) f += v;
    std::vector<double> d(dot_index::count(o_.history), 0.0);
    for (const auto& part : batch_dots_) {
      if (part.size() != d.size())
        throw runtime_error(detail::concat("tether: sandblaster_lbfgs: a shard sent ", part.size(),
                                           " dot products, expected ", d.size()));
      for (std::size_t i = 0; i < d.size(); ++i) d[i] += part[i];
    }
    const std::size_t before = logic_->history().size();
    const command c = logic_->on_batch(f, d);
    if (logic_->history().size() > before) {
      auto& rec = logic_->history().back();
      rec.portions = portions_total_ - recorded_.portions;
      rec.duplicates = duplicates_ - recorded_.duplicates;
      rec.backups = backups() - recorded_.backups;
      rec.coordinator_bytes = coordinator_bytes_ - recorded_.bytes;
      recorded_ = {portions_total_, duplicates_, backups(), coordinator_bytes_};
      if (o_.on_iteration) o_.on_iteration(rec);
    }
    issue(c);
  }

  void stop(const command& c) {
    result r;
    r.status = c.status;
    r.message = c.message;
    r.iterations = logic_->iterations();
    r.function_evaluations = logic_->evaluations();
    r.gradient_evaluations = logic_->evaluations();
    r.f = logic_->f();
    r.gradient_norm = logic_->gradient_norm();
    r.restarts = logic_->restarts();
    r.pairs_skipped = logic_->pairs_skipped();
    r.portions = portions_total_;
    r.duplicates = duplicates_;
    r.backups = backups();
    r.coordinator_bytes = coordinator_bytes_;
    r.seconds = std::chrono::duration<double>(clock::now() - started_).count();
    r.history = logic_->history();
    const std::vector<int> silent = queue_->silent(clock::now(), seconds(timeout()));
    wire::writer w;
    w.put<std::uint8_t>(c.commit ? 1 : 0);
    w.put_span(std::span<const int>(silent));
    wire::put_result(w, r);
    send_all(wire::tag::stop, w.take());
  }

  // --- checkpoints ----------------------------------------------------------------------------------------

  /// Writes this worker's checkpoint of the iteration just committed (its shards' x, g and history; on the
  /// coordinator also its state), to options::checkpoint.path + ".rank" + its rank.
  void on_save(const wire::message& m) {
    wire::reader r(m);
    const auto iteration = r.get<std::uint64_t>();
    const bool keep_last_pair = r.get<std::uint8_t>() != 0;
    const auto slot = static_cast<std::size_t>(r.get<std::uint64_t>());
    if (keep_last_pair && stopping_)
      for (auto& sh : shards_) sh.keep_last_pair(slot);
    if (is_coordinator() && (!saved_ || saved_->logic.iterations != iteration))
      throw runtime_error(detail::concat("tether: worker ", me_,
                                         ": sandblaster_lbfgs: a checkpoint of iteration ", iteration,
                                         " without the coordinator's state of that iteration"));
    write_worker_checkpoint<T>(checkpoint_file(o_.checkpoint.path, me_), id_, iteration, shards_,
                               is_coordinator() ? &*saved_ : nullptr);
  }

  /// Starts from a checkpoint: the shards' slices, and on the coordinator its state and counters.
  void restore(worker_checkpoint<T>& c) {
    for (auto& saved : c.shards) {
      auto* sh = local_shard(static_cast<std::size_t>(saved.index));
      if (sh == nullptr)
        throw error(detail::concat("tether: worker ", me_, ": sandblaster_lbfgs: its checkpoint holds shard ",
                                   saved.index, ", which this worker does not hold"));
      sh->restore(saved.x, saved.g, saved.s, saved.y);
    }
    if (is_coordinator() && c.coordinator) {
      portions_total_ = static_cast<std::size_t>(c.coordinator->portions);
      duplicates_ = static_cast<std::size_t>(c.coordinator->duplicates);
      backups_before_ = static_cast<std::size_t>(c.coordinator->backups);
      coordinator_bytes_ = c.coordinator->coordinator_bytes;
      recorded_ = {portions_total_, duplicates_, backups_before_, coordinator_bytes_};
      resumed_ = std::move(c.coordinator->logic);
    }
  }

  // --- the end --------------------------------------------------------------------------------------------

  void on_stop(const wire::message& m) {
    if (stopping_) return;
    stopping_ = true;
    wire::reader r(m);
    const bool commit = r.get<std::uint8_t>() != 0;
    r.get_span(lost_);
    result_ = wire::get_result(r);
    assigned_.clear();
    for (auto& sh : shards_) {
      sh.finish(commit);
      wire::writer w;
      w.reserve(32 + 2 * sh.size() * sizeof(T));
      w.put<std::uint64_t>(sh.index()).put_span(sh.x()).put_span(sh.g());
      send_all(wire::tag::final, w.take());
    }
    for (int q = 0; q < p_; ++q)
      if (q != me_) send(q, wire::tag::bye, {});
    bye_[static_cast<std::size_t>(me_)] = true;
    for (const int q : lost_) bye_.at(static_cast<std::size_t>(q)) = true;
    check_finished();
  }

  void on_final(const wire::message& m) {
    wire::reader r(m);
    const auto s = static_cast<std::size_t>(r.get<std::uint64_t>());
    r.get_span(scratch_);
    if (s >= layout_.shards() || scratch_.size() != layout_.count(s))
      throw runtime_error(detail::concat("tether: worker ", me_, ": sandblaster_lbfgs: a final slice of ",
                                         scratch_.size(), " values for shard ", s));
    std::copy(scratch_.begin(), scratch_.end(),
              x_out_.begin() + static_cast<std::ptrdiff_t>(layout_.begin(s)));
    r.get_span(scratch_);
    if (!g_out_.empty())
      std::copy(scratch_.begin(), scratch_.end(),
                g_out_.begin() + static_cast<std::ptrdiff_t>(layout_.begin(s)));
    final_have_[s] = true;
    check_finished();
  }

  void on_bye(const wire::message& m) {
    bye_[static_cast<std::size_t>(m.from)] = true;
    check_finished();
  }

  void check_finished() {
    if (!stopping_) return;
    for (const bool b : final_have_)
      if (!b) return;
    for (const bool b : bye_)
      if (!b) return;
    finished_ = true;
  }

  /// No message for the timeout: an error naming what this worker waits for, except at the end of a run where
  /// only replicas without a shard are missing (they are then counted lost).
  void timed_out() {
    const std::string t = detail::concat("no message for ", timeout(), " s");
    if (stopping_) {
      // Every shard's final slice arrived and only replicas that hold no shard are missing: they are lost
      // (a dead rank); the run is complete without them.
      bool only_replicas = true;
      for (const bool b : final_have_) only_replicas = only_replicas && b;
      std::vector<int> missing;
      for (int q = 0; q < p_; ++q)
        if (!bye_[static_cast<std::size_t>(q)]) {
          missing.push_back(q);
          if (q == coord_ || static_cast<std::size_t>(q) < layout_.shards()) only_replicas = false;
        }
      if (only_replicas) {
        for (const int q : missing) {
          lost_.push_back(q);
          bye_[static_cast<std::size_t>(q)] = true;
        }
        finished_ = true;
        return;
      }
      throw runtime_error(detail::concat("tether: worker ", me_, ": sandblaster_lbfgs: ", t,
                                         " while finishing: a worker holding a shard, or the coordinator, "
                                         "did not finish (",
                                         describe(missing), " missing)"));
    }
    if (!is_coordinator())
      throw runtime_error(detail::concat("tether: worker ", me_, ": sandblaster_lbfgs: ", t,
                                         " (the coordinator, worker ", coord_, ", sends at least every ",
                                         timeout() / 4, " s): the coordinator may have died"));
    std::string held;
    for (int q = 0; q < p_; ++q)
      for (const auto& h : queue_->holding(q))
        if (h.batch == queue_->batch())
          held += detail::concat(held.empty() ? "" : ", ", "portion ", h.portion, " on worker ", q);
    std::vector<int> shards_missing;
    for (std::size_t s = 0; s < layout_.shards(); ++s)
      if (batch_dots_[s].empty()) shards_missing.push_back(static_cast<int>(s));
    throw runtime_error(detail::concat(
        "tether: worker ", me_, ": sandblaster_lbfgs: ", t, " while batch ", queue_->batch(), " waits for ",
        queue_->outstanding().size(), " portion result(s) (", held.empty() ? "none handed out" : held,
        ") and the dot products of shard(s) ", describe(shards_missing), ": a worker may have died"));
  }

  static std::string describe(const std::vector<int>& v) {
    std::string s;
    for (const int q : v) s += detail::concat(s.empty() ? "" : ", ", q);
    return s.empty() ? std::string("none") : s;
  }

  static clock::duration seconds(double s) {
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
  }

 private:
  struct snapshot {
    std::size_t portions = 0;
    std::size_t duplicates = 0;
    std::size_t backups = 0;
    std::uint64_t bytes = 0;
  };

  Exec exec_;
  Channel& ch_;
  O& obj_;
  options o_;
  portion_plan<O, T> plan_;
  std::span<T> x_out_;
  std::span<T> g_out_;
  std::size_t n_;
  int p_;
  int me_;
  int coord_;
  shard_layout layout_;
  std::size_t portions_;

  // shard holder
  std::vector<shard<Exec, T>> shards_;

  // replica
  std::vector<T> x_full_;
  std::vector<T> contribution_;
  std::vector<std::size_t> indices_;
  std::uint64_t replica_batch_ = 0;
  std::vector<bool> have_piece_;
  std::size_t pieces_ = 0;
  std::deque<std::pair<std::uint64_t, std::size_t>> assigned_;

  // coordinator
  std::optional<coordinator> logic_;
  std::optional<work_queue> queue_;
  std::vector<double> batch_f_;
  std::vector<std::vector<double>> batch_dots_;
  std::size_t dots_count_ = 0;
  std::size_t portions_total_ = 0;
  std::size_t duplicates_ = 0;
  std::uint64_t coordinator_bytes_ = 0;
  snapshot recorded_{};
  std::size_t backups_before_ = 0;               // a resumed run's backups before its checkpoint
  std::optional<coordinator_state> resumed_;     // the state a resumed run starts from
  std::optional<coordinator_checkpoint> saved_;  // the state of the last checkpoint's iteration

  // every worker
  std::deque<wire::message> local_;
  std::vector<T> scratch_;
  bool stopping_ = false;
  bool finished_ = false;
  std::vector<bool> final_have_;
  std::vector<bool> bye_;
  std::vector<int> lost_;
  result result_;
  std::vector<clock::time_point> last_sent_;
  clock::time_point started_{};
  clock::time_point last_heard_{};
  checkpoint_identity id_;
};

}  // namespace tether::lbfgs
