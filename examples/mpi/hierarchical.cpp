/// \file
/// Multi-leader LSGD on the hardware's hierarchy (comm::hierarchical): `--threads` worker threads inside each
/// MPI rank. Every `period` steps the workers of a node (the ranks sharing memory, or --group-size ranks) elect
/// a local leader, cheaply, inside the node; every `global_period` steps all workers elect the global leader
/// across nodes. Each worker is pulled toward both leaders' copies.
///
///     mpirun -np 2 mpi_hierarchical [--threads 2] [--group-size 0] [--steps 2000] [--period 8] [--check]

#include <tether/comm/hierarchical.hpp>
#include <tether/tether.hpp>

#include <cstdio>
#include <exception>
#include <mutex>

#include "common.hpp"

namespace {

constexpr const char* usage = R"(Usage: mpirun -np <ranks> mpi_hierarchical [options]
Grouped LSGD with threads inside ranks: local leaders inside a node, a global leader across nodes.

  --threads N     worker threads per rank (default 2)
  --group-size N  ranks per group; 0 = the ranks of one node (MPI_COMM_TYPE_SHARED, default)
  --steps N       SGD steps per worker (default 2000)
  --period N      steps between local elections; global ones every 4 periods (default 16)
  --lr X          learning rate (default 0.5)
  --seed N        seed of the starting points and minibatches (default 1)
  --timeout S     seconds before a collective that cannot complete fails (default 60)
  --check         exit with status 1 unless every worker's test accuracy is at least 0.8
  --help          this text
)";

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);  // MPI_THREAD_MULTIPLE requested, SERIALIZED required
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  mpi_example::settings cfg;
  if (const int status = mpi_example::parse_agreed(argc, argv, cfg, usage, "mpi_hierarchical"); status >= 0) return status;

  try {
    tether::comm::hierarchical h(MPI_COMM_WORLD,
                                 {.threads = cfg.threads, .group_size = cfg.group_size, .timeout = cfg.timeout});
    const auto data = mpi_example::make_data();
    using opt = tether::algo::lsgd_grouped<tether::comm::hierarchical::worker>;
    const opt::options o{.lr = cfg.lr,
                         .pull = {.period = cfg.period, .strength = 0.1f, .global_period = 4 * cfg.period,
                                  .global_strength = 0.1f}};

    std::vector<double> acc(static_cast<std::size_t>(cfg.threads));
    std::vector<tether::worker_stats> stats(acc.size());
    std::vector<int> local_leader(acc.size());
    int groups = 1;
    const double t0 = MPI_Wtime();
    h.run([&](tether::comm::hierarchical::worker& w) {
      std::vector<float> x = mpi_example::start_point(data.dimension(), w.rank(), cfg.seed);
      opt optimizer(w, x.size(), o);
      mpi_example::train(data, optimizer, x, w.rank(), w.size(), cfg.steps, cfg.seed);
      const auto t = static_cast<std::size_t>(w.thread());
      acc[t] = mpi_example::test_accuracy(data, x);
      stats[t] = optimizer.stats();
      local_leader[t] = optimizer.pull_policy().local_leader();
      if (t == 0) groups = w.group_count();
    });
    const double seconds = MPI_Wtime() - t0;

    // Every worker's results on rank 0: column t of rank r is worker r*threads + t.
    const std::size_t threads = acc.size();
    std::vector<std::vector<double>> accs(threads), global(threads), local(threads), recv(threads);
    for (std::size_t t = 0; t < threads; ++t) {
      accs[t] = mpi_example::gather(acc[t]);
      global[t] = mpi_example::gather(stats[t].leader);
      local[t] = mpi_example::gather(local_leader[t]);
      recv[t] = mpi_example::gather(static_cast<double>(stats[t].bytes_received));
    }
    int ok = 1;
    if (rank == 0) {
      std::printf("grouped LSGD: %d ranks x %d threads, %d group(s), %llu steps, periods %u / %u, %.3f s\n",
                  h.ranks(), h.threads(), groups, static_cast<unsigned long long>(cfg.steps), cfg.period,
                  4 * cfg.period, seconds);
      for (std::size_t r = 0; r < accs[0].size(); ++r) {
        for (std::size_t t = 0; t < threads; ++t) {
          std::printf("worker %3zu (rank %zu thread %zu): test acc %.4f, local leader %.0f (rank in its group), "
                      "global leader %.0f, received %.0f B\n",
                      r * threads + t, r, t, accs[t][r], local[t][r], global[t][r], recv[t][r]);
          if (accs[t][r] < 0.8) ok = 0;
        }
      }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return cfg.check && ok == 0 ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_hierarchical: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}
