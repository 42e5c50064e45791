/// \file
/// LSGD across MPI ranks: each rank is a worker training a logistic regression on its own shard of the data.
/// Every `period` steps the ranks elect the one with the lowest recent loss (MPI_Allreduce with MPI_MINLOC)
/// and it broadcasts its parameters (MPI_Bcast); between rounds every rank is pulled toward the leader's copy.
/// With --async the elections and broadcasts run in the background (algo::async_lsgd) and no rank waits.
///
///     mpirun -np 4 mpi_lsgd [--steps 2000] [--period 16] [--lr 0.5] [--async] [--timeout 60] [--check]
///
/// (as root add --allow-run-as-root; with more ranks than cores add --oversubscribe)

#include <tether/algo/async_lsgd.hpp>
#include <tether/comm/mpi.hpp>
#include <tether/tether.hpp>

#include <cstdio>
#include <exception>

#include "common.hpp"

using mpi_example::run;

namespace {

constexpr const char* usage = R"(Usage: mpirun -np <ranks> mpi_lsgd [options]
LSGD across MPI ranks (one worker per rank), training a logistic regression.

  --steps N     SGD steps per rank (default 2000)
  --period N    steps between leader elections (default 16)
  --lr X        learning rate (default 0.5)
  --seed N      seed of the starting points and minibatches (default 1)
  --async       asynchronous LSGD: elections and broadcasts in the background
  --timeout S   seconds before a collective that cannot complete fails (default 60)
  --check       exit with status 1 unless every rank's test accuracy is at least 0.8
  --help        this text
)";

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  mpi_example::settings cfg;
  if (const int status = mpi_example::parse_agreed(argc, argv, cfg, usage, "mpi_lsgd"); status >= 0) return status;

  try {
    tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = cfg.timeout});
    const auto data = mpi_example::make_data();
    std::vector<float> x = mpi_example::start_point(data.dimension(), comm.rank(), cfg.seed);
    const tether::pull::leader_options lo{.period = cfg.period, .strength = 0.1f};

    const double t0 = MPI_Wtime();
    tether::worker_stats st;
    if (cfg.async) {
      using opt = tether::algo::async_lsgd<>;
      st = run<opt>(comm, data, cfg, {.lr = cfg.lr, .pull = {.period = lo.period, .strength = lo.strength}}, x);
    } else {
      using opt = tether::algo::lsgd<tether::comm::mpi>;
      st = run<opt>(comm, data, cfg, {.lr = cfg.lr, .pull = lo}, x);
    }
    const double seconds = MPI_Wtime() - t0;
    const double acc = mpi_example::test_accuracy(data, x);

    const auto accs = mpi_example::gather(acc);
    const auto rounds = mpi_example::gather(static_cast<double>(st.rounds));
    const auto leaders = mpi_example::gather(st.leader);
    const auto recv = mpi_example::gather(static_cast<double>(st.bytes_received));
    const auto sent = mpi_example::gather(static_cast<double>(st.bytes_sent));
    const auto secs = mpi_example::gather(seconds);
    const auto sums = mpi_example::gather_u64(mpi_example::checksum(x));
    int ok = 1;
    if (comm.rank() == 0) {
      std::printf("%s LSGD: %d ranks, %llu steps, period %u, lr %g, %zu parameters\n", cfg.async ? "asynchronous" : "synchronous",
                  comm.size(), static_cast<unsigned long long>(cfg.steps), cfg.period, cfg.lr, x.size());
      std::printf("%5s %9s %7s %7s %15s %15s %9s %12s %17s\n", "rank", "test acc", "rounds", "leader",
                  "sent B/round", "recv B/round", "seconds", "sent B", "checksum of x");
      for (std::size_t r = 0; r < accs.size(); ++r) {
        const double n = rounds[r] > 0 ? rounds[r] : 1.0;
        std::printf("%5zu %9.4f %7.0f %7.0f %15.1f %15.1f %9.3f %12.0f  %016llx\n", r, accs[r], rounds[r], leaders[r],
                    sent[r] / n, recv[r] / n, secs[r], sent[r], static_cast<unsigned long long>(sums[r]));
        if (accs[r] < 0.8) ok = 0;
      }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return cfg.check && ok == 0 ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_lsgd: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}
