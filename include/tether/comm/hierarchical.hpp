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
/// Counters of a worker: the team's intra-process traffic of its thread, plus, for thread 0, the MPI
/// traffic of its process (comm::mpi's conventions); `collectives` counts this handle's calls.

#include <mpi.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
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
      team_barrier();
      if (thread_ == 0) net_->barrier();
      team_barrier();
      ++h_->calls_[idx()];
    }

    /// In-place sum over every worker: team sum, MPI_Allreduce by thread 0, team broadcast.
    template <class T>
    void allreduce_sum(std::span<T> data) {
      static_assert(std::is_arithmetic_v<T>, "allreduce_sum needs an arithmetic element type");
      if (threads() > 1) tw_->allreduce_sum(data);
      if (thread_ == 0) net_->allreduce_sum(data);
      if (threads() > 1) tw_->broadcast(data, 0);
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
      if (threads() > 1) tw_->allreduce_sum(recv);
      auto inner = std::make_shared<request>();
      if (thread_ == 0) *inner = net_->iallreduce_sum(std::span<const T>(recv.data(), recv.size()), recv);
      ++h_->calls_[idx()];
      shared_memory::worker* tw = tw_;
      const bool team = threads() > 1;
      return request(
          [inner, tw, team, recv] {
            inner->wait();
            if (team) tw->broadcast(recv, 0);
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
      if (net_->rank() == root_rank) {
        if (threads() > 1) tw_->broadcast(data, root_thread);
        if (thread_ == 0) net_->broadcast(data, root_rank);
      } else {
        if (thread_ == 0) net_->broadcast(data, root_rank);
        if (threads() > 1) tw_->broadcast(data, 0);
      }
      ++h_->calls_[idx()];
    }

    /// The election: lowest finite score, ties to the lowest global rank, rank -1 if no score is finite.
    [[nodiscard]] election min_loc(double score) {
      election local;
      if (threads() > 1)
        local = tw_->min_loc(score);
      else if (std::isfinite(score))
        local = {score, 0};
      election global;
      if (thread_ == 0) {
        const double s = local.rank >= 0 ? local.score : std::numeric_limits<double>::infinity();
        global = net_->min_loc(s, net_->rank() * threads() + (local.rank >= 0 ? local.rank : 0));
      }
      if (threads() > 1) tw_->broadcast(std::span<election>(&global, 1), 0);
      ++h_->calls_[idx()];
      return global;
    }

    /// Collective check that every worker (every thread of every rank) holds the same values: the threads
    /// compare inside the process, thread 0 runs comm::mpi's check across ranks. tether::error on a mismatch.
    void check_consistent(std::span<const consistency_item> items) {
      auto& mine = h_->slots_[idx()];
      mine.clear();
      for (const auto& it : items) mine.push_back(it.value);
      team_barrier();
      std::size_t bad = items.size();
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
      if (bad != items.size())
        throw error(tether::detail::concat("tether: rank ", net_->rank(), ": the threads of this process disagree on ",
                                           items[bad].what));
    }
    void check_consistent(std::uint64_t value, const char* what) {
      const consistency_item item{value, what};
      check_consistent(std::span<const consistency_item>(&item, 1));
    }

    /// The MPI communicator of this handle's level (across ranks, or across the ranks of a group).
    [[nodiscard]] mpi& network() noexcept { return *net_; }

   private:
    friend class hierarchical;
    worker(hierarchical* h, mpi* net, int thread) : h_(h), net_(net), thread_(thread) {}
    [[nodiscard]] std::size_t idx() const noexcept { return static_cast<std::size_t>(thread_); }
    void team_barrier() {
      if (threads() > 1) tw_->barrier();
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
    team_.run([&](shared_memory::worker& tw) {
      worker& w = *handles_[static_cast<std::size_t>(tw.rank())];
      w.tw_ = &tw;
      if (w.group_ != nullptr) w.group_->tw_ = &tw;
      f(w);
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
};

}  // namespace tether::comm
