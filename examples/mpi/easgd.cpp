/// \file
/// EASGD across MPI ranks: each rank is a worker training a logistic regression on its own shard of the data,
/// tied to a center variable by an elastic force. Synchronous: every `period` steps an MPI_Allreduce of the
/// parameters updates the replicated center. With --async the center lives on rank 0 in an MPI window and each
/// rank exchanges with it on its own schedule (algo::async_easgd, one-sided MPI), without any barrier.
///
///     mpirun -np 4 mpi_easgd [--steps 2000] [--period 10] [--lr 0.5] [--async] [--timeout 60] [--check]

#include <tether/algo/async_easgd.hpp>
#include <tether/comm/mpi.hpp>
#include <tether/tether.hpp>

#include <cstdio>
#include <exception>

#include "common.hpp"

namespace {

constexpr const char* usage = R"(Usage: mpirun -np <ranks> mpi_easgd [options]
EASGD across MPI ranks (one worker per rank), training a logistic regression.

  --steps N     SGD steps per rank (default 2000)
  --period N    steps between exchanges with the center (default 10)
  --lr X        learning rate (default 0.5)
  --seed N      seed of the starting points and minibatches (default 1)
  --async       asynchronous EASGD: the center on rank 0, one-sided exchanges, no barrier
  --timeout S   seconds before a collective that cannot complete fails (default 60)
  --check       exit with status 1 unless the center's and every rank's test accuracy is at least 0.8
  --help        this text
)";

/// Trains; returns the stats and leaves the center in `center`.
template <class Optimizer>
tether::worker_stats run(tether::comm::mpi& comm, const mpi_example::problem& data, const mpi_example::settings& cfg,
                         const typename Optimizer::options& o, std::vector<float>& x, std::vector<float>& center) {
  Optimizer opt(comm, x.size(), o);
  mpi_example::train(data, opt, x, comm.rank(), comm.size(), cfg.steps, cfg.seed);
  const auto c = opt.target(0);  // the center (synchronous: this rank's replica; asynchronous: the final one)
  center.assign(c.data(), c.data() + c.size());
  return opt.stats();
}

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  mpi_example::settings cfg;
  cfg.period = 10;
  if (const int status = mpi_example::parse_agreed(argc, argv, cfg, usage, "mpi_easgd"); status >= 0) return status;

  try {
    tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = cfg.timeout});
    const auto data = mpi_example::make_data();
    std::vector<float> x = mpi_example::start_point(data.dimension(), comm.rank(), cfg.seed);
    std::vector<float> center;

    const double t0 = MPI_Wtime();
    tether::worker_stats st;
    if (cfg.async) {
      using opt = tether::algo::async_easgd<>;
      st = run<opt>(comm, data, cfg, {.lr = cfg.lr, .pull = {.period = cfg.period, .beta = 0.9f, .owner = 0}}, x,
                    center);
    } else {
      using opt = tether::algo::easgd<tether::comm::mpi>;
      st = run<opt>(comm, data, cfg, {.lr = cfg.lr, .pull = {.period = cfg.period, .beta = 0.9f}}, x, center);
    }
    const double seconds = MPI_Wtime() - t0;

    const auto accs = mpi_example::gather(mpi_example::test_accuracy(data, x));
    const double center_acc = mpi_example::test_accuracy(data, center);
    const auto rounds = mpi_example::gather(static_cast<double>(st.rounds));
    const auto recv = mpi_example::gather(static_cast<double>(st.bytes_received));
    const auto sent = mpi_example::gather(static_cast<double>(st.bytes_sent));
    const auto secs = mpi_example::gather(seconds);
    int ok = 1;
    if (comm.rank() == 0) {
      std::printf("%s EASGD: %d ranks, %llu steps, period %u, lr %g, beta 0.9, %zu parameters\n",
                  cfg.async ? "asynchronous" : "synchronous", comm.size(), static_cast<unsigned long long>(cfg.steps),
                  cfg.period, cfg.lr, x.size());
      std::printf("%5s %9s %7s %15s %15s %9s\n", "rank", "test acc", "rounds", "sent B/round", "recv B/round",
                  "seconds");
      for (std::size_t r = 0; r < accs.size(); ++r) {
        const double n = rounds[r] > 0 ? rounds[r] : 1.0;
        std::printf("%5zu %9.4f %7.0f %15.1f %15.1f %9.3f\n", r, accs[r], rounds[r], sent[r] / n, recv[r] / n,
                    secs[r]);
        if (accs[r] < 0.8) ok = 0;
      }
      std::printf("center test accuracy %.4f\n", center_acc);
      if (center_acc < 0.8) ok = 0;
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return cfg.check && ok == 0 ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_easgd: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}
