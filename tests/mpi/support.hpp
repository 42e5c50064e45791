#pragma once
// Shared by tether's MPI tests: the world's rank and size; one worker's training loop, identical whatever the
// communicator (thread team, comm::mpi, comm::hierarchical), so results can be compared worker by worker; and
// gathering to rank 0.
#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "tether/core/objective.hpp"
#include "tether/core/rng.hpp"
#include "tether/core/stats.hpp"
#include "tether/problems/logistic.hpp"
#include "tether/problems/quadratic.hpp"

namespace tether_mpi_test {

/// This process's rank in MPI_COMM_WORLD.
inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
/// The number of ranks in MPI_COMM_WORLD.
inline int world_size() {
  int s = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// Catch2 v2 assertions are not thread-safe: worker threads record their checks here, and the test's own
/// thread reports the failures after run() returned (FAIL_CHECK for each).
class recorder {
 public:
  /// Records a failure unless `a == b`.
  template <class A, class B>
  void equal(const A& a, const B& b, const char* what, int worker) {
    ++checked_;
    if (a == b) return;
    std::ostringstream os;
    os << "worker " << worker << ": " << what << ": " << a << " != " << b;
    std::lock_guard lk(m_);
    failures_.push_back(os.str());
  }
  /// Records a failure unless `ok`.
  void is_true(bool ok, const char* what, int worker) { equal(ok, true, what, worker); }
  [[nodiscard]] std::vector<std::string> failures() const {
    std::lock_guard lk(m_);
    return failures_;
  }
  [[nodiscard]] std::uint64_t checked() const noexcept { return checked_; }

 private:
  mutable std::mutex m_;
  std::vector<std::string> failures_;
  std::atomic<std::uint64_t> checked_{0};
};

/// What a worker ends with.
struct outcome {
  std::vector<float> x;
  tether::worker_stats stats;
  tether::comm_counters counters;
  double loss = 0;  // the last minibatch loss
};

/// A worker's minibatch of step t: `batch` indices from its own shard of the samples (shard = rank's
/// contiguous slice), drawn from a stream seeded by (seed, rank, t).
inline std::vector<std::size_t> minibatch(std::size_t samples, int rank, int workers, std::uint64_t t,
                                          std::size_t batch, std::uint64_t seed) {
  const std::size_t lo = samples * static_cast<std::size_t>(rank) / static_cast<std::size_t>(workers);
  const std::size_t hi = samples * static_cast<std::size_t>(rank + 1) / static_cast<std::size_t>(workers);
  tether::rng r(tether::derive_seed(seed, static_cast<std::uint64_t>(rank), t));
  std::vector<std::size_t> idx(batch);
  for (auto& i : idx) i = lo + static_cast<std::size_t>(r.below(hi - lo));
  return idx;
}

/// Runs `steps` steps of optimizer type Opt on worker `comm` for `problem`, from a starting point that
/// depends on the worker's rank. Quadratic problems draw noise from (seed, rank, t); the logistic problem
/// draws minibatches from the worker's shard.
template <class Opt, class Comm, class Problem>
outcome train(Comm& comm, const Problem& problem, const typename Opt::options& o, int steps, std::uint64_t seed,
              std::size_t batch = 16) {
  const std::size_t n = problem.dimension();
  outcome out;
  out.x.resize(n);
  std::vector<float> g(n);
  tether::rng r(tether::derive_seed(seed, 1000u + static_cast<std::uint64_t>(comm.rank())));
  for (auto& v : out.x) v = static_cast<float>(2.0 * r.uniform() - 1.0);
  Opt opt(comm, n, o);
  for (int t = 0; t < steps; ++t) {
    double loss = 0;
    if constexpr (requires { problem.samples(); }) {
      const auto idx = minibatch(problem.samples(), comm.rank(), comm.size(), static_cast<std::uint64_t>(t), batch,
                                 seed);
      loss = problem.evaluate(out.x, g, tether::batch{idx, 0});
    } else {
      loss = problem.evaluate(out.x, g,
                              tether::batch{{}, tether::derive_seed(seed, static_cast<std::uint64_t>(comm.rank()),
                                                                    static_cast<std::uint64_t>(t))});
    }
    opt.step(out.x, g, loss);
    out.loss = loss;
  }
  opt.finish(out.x);
  out.stats = opt.stats();
  out.counters = comm.counters();
  return out;
}

/// Every rank's buffer, on rank 0 (empty elsewhere).
inline std::vector<std::vector<float>> gather(std::span<const float> mine) {
  const int rank = world_rank();
  const int size = world_size();
  std::vector<float> all(rank == 0 ? mine.size() * static_cast<std::size_t>(size) : 0);
  MPI_Gather(mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, all.data(), static_cast<int>(mine.size()),
             MPI_FLOAT, 0, MPI_COMM_WORLD);
  std::vector<std::vector<float>> out;
  if (rank == 0)
    for (int r = 0; r < size; ++r)
      out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(mine.size() * static_cast<std::size_t>(r)),
                       all.begin() + static_cast<std::ptrdiff_t>(mine.size() * static_cast<std::size_t>(r + 1)));
  return out;
}

/// Every rank's counters and stats that the tests compare, on rank 0.
inline std::vector<std::vector<std::uint64_t>> gather_stats(const outcome& o) {
  const std::vector<std::uint64_t> mine{o.stats.steps,          o.stats.rounds,
                                        o.stats.leader_changes, static_cast<std::uint64_t>(o.stats.leader + 1),
                                        o.counters.bytes_sent,  o.counters.bytes_received};
  const int rank = world_rank();
  const int size = world_size();
  std::vector<std::uint64_t> all(rank == 0 ? mine.size() * static_cast<std::size_t>(size) : 0);
  MPI_Gather(mine.data(), static_cast<int>(mine.size()), MPI_UINT64_T, all.data(), static_cast<int>(mine.size()),
             MPI_UINT64_T, 0, MPI_COMM_WORLD);
  std::vector<std::vector<std::uint64_t>> out;
  if (rank == 0)
    for (int r = 0; r < size; ++r)
      out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(mine.size() * static_cast<std::size_t>(r)),
                       all.begin() + static_cast<std::ptrdiff_t>(mine.size() * static_cast<std::size_t>(r + 1)));
  return out;
}

inline std::vector<std::uint64_t> stats_row(const outcome& o) {
  return {o.stats.steps,          o.stats.rounds,        o.stats.leader_changes,
          static_cast<std::uint64_t>(o.stats.leader + 1), o.counters.bytes_sent, o.counters.bytes_received};
}

}  // namespace tether_mpi_test
