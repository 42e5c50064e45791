#pragma once
/// \file
/// comm::hierarchical: threads inside each MPI rank, ranks across nodes. Every rank runs a tether::team of
/// `threads` workers; worker t of rank r has the global rank r*threads + t among ranks*threads workers.
/// Opt-in header (component tether::mpi).
///
///     tether::comm::mpi_environment env(argc, argv);
///     tether::comm::hierarchical h(MPI_COMM_WORLD, {.threads = 4});
///     h.run([&](tether::comm::hierarchical::worker& w) {
///       tether::algo::lsgd_grouped<tether::comm::hierarchical::worker> opt(w, n, {...});
///       ... opt.step(x, g, loss) ...
///     });
///
/// Collectives are composed: the team reduces inside the process, the process's thread 0 does the MPI
/// call across ranks, and the team broadcasts the result back (elections: the team's (score, thread)
/// minimum, then an MPI_MINLOC over (score, global rank), so ties still go to the lowest global rank).
/// group() is the workers of one node: the ranks of one MPI_COMM_TYPE_SHARED split (or `group_size`
/// consecutive ranks) with all their threads. LSGD's local leader is then elected inside a node with cheap
/// intra-node traffic, and the global leader across nodes: the multi-leader setting of the LSGD paper.
///
/// Only thread 0 of each process calls MPI, one call at a time: MPI_THREAD_SERIALIZED is required.
/// The step-count agreement at the end of a run (worker::check_finish, docs/reliability.md) is comm::mpi's,
/// with one count per worker: the threads of a process agree first, then thread 0 runs it across ranks.
/// Counters of a worker: the team's intra-process traffic of its thread, plus, for thread 0, the MPI
/// traffic of its process (comm::mpi's conventions); `collectives` counts this handle's calls.

#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/comm/mpi.hpp"
#include "tether/comm/mpi/option_agreement.hpp"
#include "tether/comm/shared_memory.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/request.hpp"
#include "tether/core/stats.hpp"

namespace tether::comm {

/// Options of comm::hierarchical. Every rank must pass the same options (checked at construction).
struct hierarchical_options {
  int threads = 1;           ///< worker threads per rank
  int group_size = 0;        ///< ranks per group; 0 = the ranks of one shared-memory node (MPI_COMM_TYPE_SHARED)
  double timeout = 300.0;    ///< comm::mpi's timeout for the MPI part of every collective; <= 0 waits forever
  std::size_t max_count = 0; ///< comm::mpi's elements per MPI call; 0 = INT_MAX
};

/// Threads inside ranks. See the file comment.
class hierarchical {
 public:
  using options = hierarchical_options;

  /// A worker's handle (one thread of one rank). Passed to the function given to run().
  class worker {
   public:
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;
    worker(worker&&) = delete;
    worker& operator=(worker&&) = delete;
    ~worker() = default;

    /// Global rank: process rank * threads + thread.
    [[nodiscard]] int rank() const noexcept { return net_->rank() * threads() + thread_; }
    [[nodiscard]] int size() const noexcept { return net_->size() * threads(); }
    /// This worker's thread index inside its process, and the threads per process.
    [[nodiscard]] int thread() const noexcept { return thread_; }
    [[nodiscard]] int threads() const noexcept { return h_->threads_; }

    /// The workers of this worker's node (or configured group of ranks): a handle with the same collectives.
    [[nodiscard]] worker& group() noexcept { return group_ != nullptr ? *group_ : *this; }
    [[nodiscard]] int group_id() const noexcept { return net_->group_id(); }
    [[nodiscard]] int group_count() const noexcept { return net_->group_count(); }

    /// Payload bytes moved by this worker (see the file comment).
    [[nodiscard]] const comm_counters& counters() const { return h_->refresh_counters(thread_); }

    void barrier() {
      collective([&] {
        team_barrier();
        if (thread_ == 0) net_->barrier();
        team_barrier();
      });
      ++h_->calls_[idx()];
    }

    /// In-place sum over every worker: team sum, MPI_Allreduce by thread 0, team broadcast.
    template <class T>
    void allreduce_sum(std::span<T> data) {
      static_assert(std::is_arithmetic_v<T>, "allreduce_sum needs an arithmetic element type");
      collective([&] {
        if (threads() > 1) tw_->allreduce_sum(data);
        if (thread_ == 0) net_->allreduce_sum(data);
        if (threads() > 1) tw_->broadcast(data, 0);
      });
      ++h_->calls_[idx()];
    }

    /// Non-blocking sum. The team's part runs now; the MPI part (MPI_Iallreduce by thread 0) overlaps what
    /// follows; wait() completes it and broadcasts the result inside the process, so wait() is collective over
    /// the threads of a process (call it in the same order on each). test() reports the MPI part on thread 0
    /// (true elsewhere). Neither buffer may be touched until wait() returns.
    template <class T>
    [[nodiscard]] request iallreduce_sum(std::span<const T> send, std::span<T> recv) {
      static_assert(std::is_arithmetic_v<T>, "iallreduce_sum needs an arithmetic element type");
      tether::detail::require_send_recv(send.size(), recv.size());
      if (!recv.empty() && static_cast<const void*>(send.data()) != static_cast<const void*>(recv.data()))
        std::memcpy(recv.data(), send.data(), recv.size() * sizeof(T));
      auto inner = std::make_shared<request>();
      collective([&] {
        if (threads() > 1) tw_->allreduce_sum(recv);
        if (thread_ == 0) *inner = net_->iallreduce_sum(std::span<const T>(recv.data(), recv.size()), recv);
      });
      ++h_->calls_[idx()];
      worker* self = this;
      return request(
          [inner, self, recv] {
            self->collective(
                [&] {
                  inner->wait();
                  if (self->threads() > 1) self->tw_->broadcast(recv, 0);
                },
                false);
          },
          [inner] { return inner->test(); });
    }

    /// Copies worker `root`'s buffer into every other worker's: inside root's process first, then across
    /// processes by thread 0, then inside every other process.
    template <class T>
    void broadcast(std::span<T> data, int root) {
      tether::detail::require(root >= 0 && root < size(), "broadcast: root must be in [0, ", size(),
                              "), got root = ", root);
      const int root_rank = root / threads();
      const int root_thread = root % threads();
      collective([&] {
        if (net_->rank() == root_rank) {
          if (threads() > 1) tw_->broadcast(data, root_thread);
          if (thread_ == 0) net_->broadcast(data, root_rank);
        } else {
          if (thread_ == 0) net_->broadcast(data, root_rank);
          if (threads() > 1) tw_->broadcast(data, 0);
        }
      });
      ++h_->calls_[idx()];
    }

    /// The election: lowest finite score, ties to the lowest global rank, rank -1 if no score is finite.
    [[nodiscard]] election min_loc(double score) {
      election global;
      collective([&] {
        election local;
        if (threads() > 1)
          local = tw_->min_loc(score);
        else if (std::isfinite(score))
          local = {score, 0};
        if (thread_ == 0) {
          const double s = local.rank >= 0 ? local.score : std::numeric_limits<double>::infinity();
          global = net_->min_loc(s, net_->rank() * threads() + (local.rank >= 0 ? local.rank : 0));
        }
        if (threads() > 1) tw_->broadcast(std::span<election>(&global, 1), 0);
      });
      ++h_->calls_[idx()];
      return global;
    }

    /// Collective check that every worker (every thread of every rank) holds the same values: the threads
    /// compare inside the process, thread 0 runs comm::mpi's check across ranks. tether::error on a mismatch.
    void check_consistent(std::span<const consistency_item> items) {
      auto& mine = h_->slots_[idx()];
      std::size_t bad = items.size();
      collective([&] {
        mine.clear();
        for (const auto& it : items) mine.push_back(it.value);
        team_barrier();
        for (const auto& other : h_->slots_) {
          for (std::size_t i = 0; i < items.size() && i < bad; ++i)
            if (other.size() != mine.size() || other[i] != mine[i]) bad = i;
        }
        if (thread_ == 0) {
          std::vector<consistency_item> all(items.begin(), items.end());
          all.push_back({bad == items.size() ? 0u : static_cast<std::uint64_t>(net_->rank()) + 1u,
                         "whether the threads of each process agree"});
          net_->check_consistent(all);
        }
        team_barrier();
      });
      if (bad != items.size())
        throw error(tether::detail::concat("tether: rank ", net_->rank(), ": the threads of this process disagree on ",
                                           items[bad].what));
    }
    void check_consistent(std::uint64_t value, const char* what) {
      const consistency_item item{value, what};
      check_consistent(std::span<const consistency_item>(&item, 1));
    }

    /// The step-count agreement at the end of a run (collective over every worker; the optimizer's finish()
    /// calls it, see comm::mpi::check_finish and docs/reliability.md#a-rank-that-stops-early). The threads of
    /// this process report their `steps` to each other, then thread 0 runs comm::mpi's agreement across ranks
    /// with every thread's count. When the counts differ, every worker throws the same tether::error naming
    /// the worker that stopped early (its index, rank and thread), its steps and the others'. A thread that
    /// finished (`finished`) while a sibling waits in a collective it never joins stops the team, so the
    /// sibling joins at once with the step it is in (`finished = false`, from tether::peer_finished); a
    /// process with a finished thread sends comm::mpi's finish notices, so that the other ranks are released
    /// the same way. Bounded by the timeout. Once per run; after a successful agreement the communicator is
    /// ready for the next run.
    void check_finish(std::uint64_t steps, bool finished = true) { h_->agree(*this, steps, finished); }

    /// The MPI communicator of this handle's level (across ranks, or across the ranks of a group).
    [[nodiscard]] mpi& network() noexcept { return *net_; }

   private:
    friend class hierarchical;
    worker(hierarchical* h, mpi* net, int thread) : h_(h), net_(net), thread_(thread) {}
    [[nodiscard]] std::size_t idx() const noexcept { return static_cast<std::size_t>(thread_); }
    void team_barrier() {
      if (threads() > 1) tw_->barrier();
    }

    // Runs the body `f` of a collective (`counted`: it starts one; the wait of a non-blocking one does not).
    // A collective that a sibling thread which already finished its run never joins throws
    // tether::peer_finished at its start. A tether::peer_finished on this thread (that, or the MPI part
    // waiting for a rank that finished) stops the team, so the siblings waiting for this thread are released;
    // a sibling released so (tether::aborted) throws tether::peer_finished too, and each joins the agreement.
    template <class F>
    void collective(F&& f, bool counted = true) {
      try {
        if (counted) h_->enter(thread_);
        f();
      } catch (const peer_finished& e) {
        h_->stop_team(*tw_, e.what());
        throw;
      } catch (const aborted&) {
        h_->rethrow_stop();
        throw;
      }
    }

    hierarchical* h_;
    mpi* net_;
    int thread_;
    shared_memory::worker* tw_ = nullptr;
    worker* group_ = nullptr;
  };

  /// Collective over `comm`: builds the MPI communicator (a duplicate of `comm`, with its groups) and the team
  /// of threads. Needs MPI_THREAD_SERIALIZED.
  explicit hierarchical(MPI_Comm comm, options o = {})
      : opt_(o), threads_(o.threads),
        net_(agreed(comm, o), {.timeout = o.timeout, .group_size = o.group_size, .max_count = o.max_count}),
        team_(o.threads >= 1 ? o.threads : 1) {
    tether::detail::require(o.threads >= 1, "hierarchical: threads must be >= 1, got threads = ", o.threads);
    int level = MPI_THREAD_SINGLE;
    net_.check(MPI_Query_thread(&level), "MPI_Query_thread");
    if (level < MPI_THREAD_SERIALIZED)
      throw runtime_error(tether::detail::concat(
          "tether: comm::hierarchical needs MPI_THREAD_SERIALIZED (its threads take turns calling MPI), MPI provides ",
          mpi_environment::level_name(level), ": initialise MPI with MPI_Init_thread (see mpi_environment)"));
    net_.check_consistent(static_cast<std::uint64_t>(threads_), "the threads per rank of comm::hierarchical");
    fin_.reset(threads_);
    const auto t = static_cast<std::size_t>(threads_);
    slots_.resize(t);
    calls_.assign(t, 0);
    counters_.resize(t);
    mpi* group_net = &net_.group();
    for (int i = 0; i < threads_; ++i) {
      handles_.emplace_back(new worker(this, &net_, i));
      if (group_net != &net_) {
        group_handles_.emplace_back(new worker(this, group_net, i));
        handles_.back()->group_ = group_handles_.back().get();
      }
    }
  }

  hierarchical(const hierarchical&) = delete;
  hierarchical& operator=(const hierarchical&) = delete;
  hierarchical(hierarchical&&) = delete;
  hierarchical& operator=(hierarchical&&) = delete;
  ~hierarchical() = default;

  /// Workers in all: ranks * threads.
  [[nodiscard]] int size() const noexcept { return net_.size() * threads_; }
  [[nodiscard]] int threads() const noexcept { return threads_; }
  [[nodiscard]] int ranks() const noexcept { return net_.size(); }
  /// The MPI communicator across ranks.
  [[nodiscard]] mpi& network() noexcept { return net_; }
  /// Counters of this process's worker `thread`.
  [[nodiscard]] const comm_counters& counters(int thread) const {
    tether::detail::require(thread >= 0 && thread < threads_, "hierarchical::counters: thread must be in [0, ",
                            threads_, "), got ", thread);
    return refresh_counters(thread);
  }

  /// Runs `f(worker&)` on this process's threads; collective over the ranks (each rank calls run). If a
  /// worker throws, the process's other workers are released and the first exception is rethrown here; the
  /// other ranks then fail by the timeout of their next collective.
  template <class F>
  void run(F&& f) {
    fin_.reset(threads_);
    team_.run([&](shared_memory::worker& tw) {
      worker& w = *handles_[static_cast<std::size_t>(tw.rank())];
      w.tw_ = &tw;
      if (w.group_ != nullptr) w.group_->tw_ = &tw;
      try {
        f(w);
      } catch (...) {
        left(w.thread_, finish_state::failed);
        throw;
      }
      left(w.thread_, finish_state::returned);
    });
  }

 private:
  // The ranks agree on the validity of the options (bounded) before comm::mpi duplicates `comm`: a rank with a
  // bad option makes every rank raise the same error instead of leaving the others in MPI_Comm_dup.
  static MPI_Comm agreed(MPI_Comm comm, const options& o) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized == 0)
      throw runtime_error("tether: comm::hierarchical: MPI is not initialized (call MPI_Init_thread or create a "
                          "tether::comm::mpi_environment first)");
    const std::array<detail::option_check, 3> checks{{
        {"threads", static_cast<double>(o.threads), o.threads >= 1, "must be >= 1"},
        {"timeout", o.timeout, !std::isnan(o.timeout), "must be a number of seconds (<= 0 waits forever)"},
        {"group_size", static_cast<double>(o.group_size), o.group_size >= 0, "must be >= 0 (0: one group per node)"},
    }};
    detail::agree_on_options(comm, "comm::hierarchical", checks,
                             detail::agreement_wait(o.timeout, options{}.timeout));
    return comm;
  }

  // The threads' side of the step-count agreement and the stop of the team (check_finish, collective).
  struct finish_state {
    enum report_kind : int { running, finished, waiting, failed, returned };
    enum outcome_kind : int { agreed, differ, broken };
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::uint64_t> started;  // collectives started by each thread (both handles)
    std::vector<std::uint64_t> steps;
    std::vector<int> report;  // report_kind of each thread
    int reported = 0;         // threads in the agreement
    int consumed = 0;         // threads that read its outcome
    bool decided = false;
    int outcome = agreed;
    std::string text;  // the outcome's message, after the worker's own name
    std::string stop;  // why the team was stopped (a tether::peer_finished message); empty while running
    void reset(int threads) {
      const auto t = static_cast<std::size_t>(threads);
      std::lock_guard lk(m);
      started.assign(t, 0);
      steps.assign(t, 0);
      report.assign(t, running);
      reported = 0;
      consumed = 0;
      decided = false;
      text.clear();
      stop.clear();
    }
  };

  [[nodiscard]] std::string prefix(int thread) const {
    return tether::detail::concat("tether: rank ", net_.rank(), ", thread ", thread, ": ");
  }
  [[nodiscard]] std::string worker_name(std::size_t w) const {
    const auto t = static_cast<std::size_t>(threads_);
    return tether::detail::concat("worker ", w, " (rank ", w / t, ", thread ", w % t, ")");
  }

  // A collective starts on `thread` (see worker::collective).
  void enter(int thread) {
    if (threads_ == 1) return;
    std::lock_guard lk(fin_.m);
    const std::uint64_t mine = ++fin_.started[static_cast<std::size_t>(thread)];
    if (!fin_.stop.empty()) throw peer_finished(fin_.stop);
    for (std::size_t s = 0; s < fin_.report.size(); ++s) {
      if (fin_.report[s] != finish_state::finished || fin_.started[s] >= mine) continue;
      throw peer_finished(tether::detail::concat(
          prefix(thread), "thread ", s, " of this rank finished its run after ", fin_.steps[s],
          " steps and never joins collective ", mine, " of this rank's threads (it completed ",
          fin_.started[s], "): it stopped early"));
    }
  }
  // Stops the team: every collective of it, pending or future, throws tether::peer_finished(`why`).
  void stop_team(shared_memory::worker& tw, const char* why) {
    {
      std::lock_guard lk(fin_.m);
      if (fin_.stop.empty()) fin_.stop = why;
    }
    tw.abort();
  }
  void rethrow_stop() {
    std::unique_lock lk(fin_.m);
    if (fin_.stop.empty()) return;
    std::string why = fin_.stop;
    lk.unlock();
    throw peer_finished(why);
  }
  // `thread` left its function (by an exception: failed): an agreement waiting for it cannot complete.
  void left(int thread, int how) {
    std::lock_guard lk(fin_.m);
    auto& r = fin_.report[static_cast<std::size_t>(thread)];
    if (r == finish_state::running) r = how;
    fin_.cv.notify_all();
  }

  // worker::check_finish.
  void agree(worker& w, std::uint64_t steps, bool finished) {
    auto& fs = fin_;
    const auto t = w.idx();
    const auto nt = static_cast<std::size_t>(threads_);
    std::unique_lock lk(fs.m);
    // A new agreement starts once every thread has read the last one's outcome.
    fs.cv.wait(lk, [&] { return !fs.decided || fs.outcome != finish_state::agreed; });
    if (fs.decided)
      throw error(prefix(w.thread_) +
                  "a previous step-count agreement of this rank failed; the communicator is unusable");
    fs.steps[t] = steps;
    fs.report[t] = finished ? finish_state::finished : finish_state::waiting;
    ++fs.reported;
    // A sibling already in a collective that this thread never joins waits for it: stop the team.
    std::size_t waiting = nt;
    for (std::size_t s = 0; s < nt && finished; ++s)
      if (fs.report[s] == finish_state::running && fs.started[s] > fs.started[t]) waiting = s;
    fs.cv.notify_all();
    if (waiting < nt) {
      const std::string why = tether::detail::concat(prefix(static_cast<int>(waiting)), "thread ", t,
                                                     " of this rank finished its run after ", steps,
                                                     " steps and never joins collective ", fs.started[t] + 1,
                                                     " of this rank's threads: it stopped early");
      lk.unlock();
      stop_team(*w.tw_, why.c_str());
      lk.lock();
    }
    const auto gone = [&](std::size_t s) {
      return fs.report[s] == finish_state::failed || fs.report[s] == finish_state::returned;
    };
    std::exception_ptr own;  // thread 0's own failure, rethrown as it is
    if (t == 0) {
      std::size_t left_early = nt;
      const auto ready = [&] {
        for (std::size_t s = 0; s < nt; ++s)
          if (gone(s)) left_early = s;
        return fs.reported == threads_ || left_early < nt;
      };
      bool in = true;
      if (net_.polling())
        in = fs.cv.wait_for(lk, std::chrono::duration<double>(opt_.timeout), ready);
      else
        fs.cv.wait(lk, ready);
      fs.outcome = finish_state::broken;
      if (!in) {
        std::string missing;
        for (std::size_t s = 0; s < nt; ++s)
          if (fs.report[s] == finish_state::running)
            missing += tether::detail::concat(missing.empty() ? "" : ", ", s);
        own = std::make_exception_ptr(tether::timeout(tether::detail::concat(
            prefix(0), "the step-count agreement at the end of the run: thread(s) ", missing,
            " of this rank did not reach it within ", opt_.timeout, " s (comm::hierarchical timeout)")));
      } else if (left_early < nt) {
        fs.text =
            tether::detail::concat("thread ", left_early, " of rank ", net_.rank(),
                                   fs.report[left_early] == finish_state::failed
                                       ? " failed before the step-count agreement at the end of the run"
                                       : " returned from its function without finish() (every worker must "
                                         "call it at the end of a run)");
        fs.outcome =
            fs.report[left_early] == finish_state::failed ? finish_state::broken : finish_state::differ;
        if (fs.outcome == finish_state::broken) own = std::make_exception_ptr(aborted(prefix(0) + fs.text));
      } else {
        // Every thread is in: thread 0 runs comm::mpi's agreement with one (steps, waiting) pair per thread.
        std::vector<std::uint64_t> mine(2 * nt);
        bool any_finished = false;
        std::uint64_t fewest = std::numeric_limits<std::uint64_t>::max();
        for (std::size_t s = 0; s < nt; ++s) {
          mine[2 * s] = fs.steps[s];
          mine[2 * s + 1] = fs.report[s] == finish_state::finished ? 0u : 1u;
          if (fs.report[s] == finish_state::finished) {
            any_finished = true;
            fewest = std::min(fewest, fs.steps[s]);
          }
        }
        const std::uint64_t notice_steps = any_finished ? fewest : fs.steps[0];
        lk.unlock();
        int outcome = finish_state::broken;
        std::string text;
        try {
          const auto all = net_.gather_finish(mine, notice_steps, any_finished);
          text = judge(all);
          outcome = text.empty() ? finish_state::agreed : finish_state::differ;
          if (outcome == finish_state::agreed) net_.finish_agreed();
        } catch (...) {
          outcome = finish_state::broken;
          own = std::current_exception();
        }
        lk.lock();
        fs.outcome = outcome;
        fs.text = text;
      }
      fs.decided = true;
      if (fs.outcome ==
          finish_state::agreed) {  // the threads may go on at once: no thread is finished any more
        fs.report.assign(nt, finish_state::running);
        fs.reported = 0;
      }
      fs.cv.notify_all();
      if (fs.outcome != finish_state::agreed) {
        lk.unlock();
        w.tw_->abort();  // no sibling stays in a collective of the team
        lk.lock();
      }
    } else {
      fs.cv.wait(lk, [&] { return fs.decided || gone(0); });
      if (!fs.decided) {
        throw aborted(prefix(w.thread_) +
                      "thread 0 of this rank, which runs the step-count agreement across ranks, " +
                      (fs.report[0] == finish_state::failed ? "failed" : "returned without finish()"));
      }
    }
    switch (fs.outcome) {
      case finish_state::agreed:
        if (++fs.consumed == threads_) {  // the next agreement may start
          fs.consumed = 0;
          fs.decided = false;
          fs.cv.notify_all();
        }
        return;
      case finish_state::differ:
        throw error(prefix(w.thread_) + fs.text);
      default:
        if (own) std::rethrow_exception(own);
        throw aborted(prefix(w.thread_) +
                      "the step-count agreement at the end of the run failed on thread 0 of this "
                      "rank");
    }
  }

  // The outcome of the agreement from every worker's (steps, waiting) pair: empty when every worker finished
  // after the same steps, else the message (the same on every worker).
  [[nodiscard]] std::string judge(const std::vector<std::uint64_t>& all) const {
    return detail::finish_verdict(all, "worker", [this](std::size_t k) { return worker_name(k); });
  }

  const comm_counters& refresh_counters(int thread) const {
    const auto i = static_cast<std::size_t>(thread);
    const comm_counters& t = team_.counters(thread);
    comm_counters& c = counters_[i];
    c.bytes_sent = t.bytes_sent;
    c.bytes_received = t.bytes_received;
    if (thread == 0) {
      c.bytes_sent += net_.counters().bytes_sent;
      c.bytes_received += net_.counters().bytes_received;
    }
    c.collectives = calls_[i];
    return c;
  }

  options opt_;
  int threads_;
  mpi net_;
  shared_memory team_;
  std::vector<std::unique_ptr<worker>> handles_;
  std::vector<std::unique_ptr<worker>> group_handles_;
  std::vector<std::vector<std::uint64_t>> slots_;
  std::vector<std::uint64_t> calls_;
  mutable std::vector<comm_counters> counters_;
  finish_state fin_;
};

}  // namespace tether::comm
