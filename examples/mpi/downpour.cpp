/// \file
/// Downpour SGD across MPI ranks: the last `--servers` ranks hold the shards of a parameter server (Adagrad on
/// each shard, as in the DistBelief paper), the other ranks are replicas training a logistic regression on their
/// own shard of the data. Every rank runs this same program; a server rank enters the service loop with
/// `opt.serve()`, which returns once every replica finished (or was lost).
///
///     mpirun -np 4 mpi_downpour [--steps 2000] [--period 4] [--lr 0.1] [--servers 1] [--shards 4] [--check]

#include <tether/algo/downpour.hpp>
#include <tether/comm/mpi.hpp>
#include <tether/ps/mpi_store.hpp>
#include <tether/tether.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"

namespace {

constexpr const char* usage = R"(Usage: mpirun -np <ranks> mpi_downpour [options]
Downpour SGD: the last ranks serve the parameters (Adagrad shards), the others are replicas training a logistic
regression, each on its own shard of the data.

  --steps N     SGD steps per replica (default 2000)
  --period N    n_push = n_fetch: steps between pushes of the accrued gradient and fetches (default 4)
  --lr X        the shards' Adagrad rate (default 0.1; the replicas' local SGD step uses the same)
  --servers N   how many of the ranks (the last ones) hold shards (default 1)
  --shards N    shards of the parameters, spread over the servers (default 4)
  --seed N      seed of the starting points and minibatches (default 1)
  --timeout S   seconds before a server that does not answer is taken for dead (default 60)
  --check       exit with status 1 unless the server's parameters reach a test accuracy of 0.8
  --help        this text
)";

/// Takes `--servers N` and `--shards N` out of argv (the other options are the MPI examples' common ones).
void take_own_options(int& argc, char** argv, int& servers, std::size_t& shards) {
  const auto take = [&](std::string_view name, std::string_view value) {
    if (name == "--servers")
      servers = mpi_example::parse<int>(name, value);
    else
      shards = mpi_example::parse<std::size_t>(name, value);
  };
  mpi_example::take_options(argc, argv, {"--servers", "--shards"}, take);
}

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  mpi_example::settings cfg;
  cfg.period = 4;
  cfg.lr = 0.1;
  int servers = 1;
  std::size_t shards = 4;
  try {
    take_own_options(argc, argv, servers, shards);
    if (!mpi_example::parse_args(argc, argv, cfg, usage, rank == 0)) return 0;
  } catch (const mpi_example::usage_error& e) {
    if (rank == 0) std::fprintf(stderr, "mpi_downpour: %s (see --help)\n", e.message.c_str());
    return 2;
  }

  try {
    tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = cfg.timeout});
    const auto data = mpi_example::make_data();
    std::vector<float> x = mpi_example::start_point(data.dimension(), comm.rank(), cfg.seed);
    // [downpour on MPI]
    tether::algo::downpour<tether::comm::mpi> opt(
        comm, x.size(),
        {.lr = cfg.lr, .local_lr = cfg.lr, .n_fetch = cfg.period, .n_push = cfg.period, .shards = shards,
         .servers = servers});
    const double t0 = MPI_Wtime();
    if (opt.is_server()) {
      opt.serve();  // the last `servers` ranks: returns when every replica finished or was lost
    } else {
      const int replicas = comm.size() - servers;
      mpi_example::train(data, opt, x, comm.rank(), replicas, cfg.steps, cfg.seed);  // steps, then finish(x)
    }
    // [downpour on MPI]
    const double seconds = MPI_Wtime() - t0;

    // Every rank takes part in the gathers; the servers report zeros.
    const auto& st = opt.stats();
    const auto pushes = mpi_example::gather(static_cast<double>(st.pushes));
    const auto sent = mpi_example::gather(static_cast<double>(st.bytes_sent));
    const auto recv = mpi_example::gather(static_cast<double>(st.bytes_received));
    const auto stale = mpi_example::gather(st.staleness.mean());
    const double accuracy = opt.is_server() ? 0.0 : mpi_example::test_accuracy(data, x);
    if (rank == 0) {
      std::printf("Downpour SGD: %d replicas, %d server rank(s), %zu shards, n_push = n_fetch = %u, Adagrad lr %g, "
                  "%llu steps, %.2f s\n",
                  comm.size() - servers, servers, shards, cfg.period, cfg.lr,
                  static_cast<unsigned long long>(cfg.steps), seconds);
      for (std::size_t r = 0; r < pushes.size(); ++r) {
        if (static_cast<int>(r) >= comm.size() - servers)
          std::printf("  rank %zu (server): received %.1f kB, sent %.1f kB\n", r, recv[r] / 1e3, sent[r] / 1e3);
        else
          std::printf("  rank %zu (replica): %.0f pushes, mean staleness %.2f, sent %.1f kB, received %.1f kB\n", r,
                      pushes[r], stale[r], sent[r] / 1e3, recv[r] / 1e3);
      }
      std::printf("  the server's parameters: test accuracy %.4f\n", accuracy);
      for (const auto& l : opt.losses())
        std::printf("  lost: replica %d after %llu steps\n", l.replica, static_cast<unsigned long long>(l.steps));
    }
    int ok = accuracy >= 0.8 || opt.is_server() ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (cfg.check && ok == 0) {
      if (rank == 0) std::fprintf(stderr, "mpi_downpour: --check: test accuracy below 0.8\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_downpour: rank %d: %s\n", rank, e.what());
    return 1;
  }
  return 0;
}
