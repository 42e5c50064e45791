// lbfgs_scaling on comm::mpi: run under mpiexec with 1, 2 and 4 ranks; rank 0 prints one table row per
// portion count: time per iteration, the bytes per batch at the coordinator and for all ranks against the
// model, and whether x is bit for bit the thread team's (one worker, the same shards and portions, run on
// every rank).
//
//   mpirun -np 2 lbfgs_scaling_mpi [--portions 8,32,128] [--repetitions 3] [--iterations 20] [--samples
//   10000]
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "idx.hpp"
#include "model.hpp"
#include "tether/lbfgs/mpi.hpp"
#include "tether/problems/softmax.hpp"

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  tether::comm::mpi comm;
  const lbfgs_bench::args a(argc, argv);
  const int repetitions = static_cast<int>(a.number("--repetitions", 3));
  const auto iterations = static_cast<std::size_t>(a.number("--iterations", 20));
  const auto samples = static_cast<std::size_t>(a.number("--samples", 10000));
  std::optional<fmnist::dataset> images;
  std::optional<tether::problems::softmax<double>> problem;
  std::string data = "generated";
  if (fmnist::dataset_present(fmnist::default_directory())) {
    images = fmnist::load_fashion_mnist(fmnist::split::train, samples);
    problem.emplace(images->images, images->labels, images->features,
                    tether::problems::softmax<double>::options{.classes = 10, .l2 = 1e-3});
    data = "Fashion-MNIST";
  } else {
    problem.emplace(
        tether::problems::softmax<double>::generated(samples, 784, {.classes = 10, .l2 = 1e-3}, 3));
  }
  const std::size_t n = problem->dimension();
  const std::size_t m = 10;
  const int p = comm.size();
  if (comm.rank() == 0)
    std::printf(
        "CPU: %s; comm::mpi, %d ranks; softmax on %zu %s images, N = %zu, m = %zu, %zu iterations\n\n",
        lbfgs_bench::cpu_name().c_str(), p, problem->samples(), data.c_str(), n, m, iterations);
  if (comm.rank() == 0)
    std::printf(
        "| ranks | portions | ms / iteration (median) | CPU ms / iteration (all ranks) | final loss | "
        "coordinator B / batch | model | all ranks KB / batch | model | same as the team "
        "|\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& ps : a.list("--portions", "8,32,128")) {
    const auto portions = static_cast<std::size_t>(std::stoul(ps));
    tether::lbfgs::options o{.history = m,
                             .epsilon = 0.0,
                             .max_iterations = iterations,
                             .portions = portions,
                             .shards = static_cast<std::size_t>(p),
                             .timeout = 600.0};
    const auto team = lbfgs_bench::run_team(1, *problem, std::vector<double>(n, 0.0), o);
    std::vector<double> t, cpu;
    tether::lbfgs::result res;
    std::vector<double> x;
    for (int r = 0; r < repetitions; ++r) {
      x.assign(n, 0.0);
      comm.barrier();
      const double c0 = lbfgs_bench::cpu_seconds();
      const auto t0 = lbfgs_bench::clock::now();
      res = tether::lbfgs::minimize(comm, *problem, x, o);
      double elapsed = lbfgs_bench::seconds_since(t0);
      double used = lbfgs_bench::cpu_seconds() - c0;
      MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, comm.native());
      MPI_Allreduce(MPI_IN_PLACE, &used, 1, MPI_DOUBLE, MPI_SUM, comm.native());
      t.push_back(elapsed);
      cpu.push_back(used);
    }
    unsigned long long sent = res.bytes_sent;
    MPI_Allreduce(MPI_IN_PLACE, &sent, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm.native());
    int same = std::memcmp(x.data(), team.x.data(), n * sizeof(double)) == 0 ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &same, 1, MPI_INT, MPI_MIN, comm.native());
    const double batches = static_cast<double>(res.function_evaluations);
    const auto model = lbfgs_model::per_batch(n, sizeof(double), m, portions, static_cast<std::size_t>(p),
                                              static_cast<std::size_t>(p));
    if (comm.rank() == 0)
      std::printf("| %d | %zu | %.1f | %.1f | %.9f | %.0f | %.0f | %.1f | %.1f | %s |\n", p, portions,
                  1e3 * lbfgs_bench::median(t) / static_cast<double>(res.iterations),
                  1e3 * lbfgs_bench::median(cpu) / static_cast<double>(res.iterations), res.f,
                  static_cast<double>(res.coordinator_bytes) / batches, model.coordinator,
                  static_cast<double>(sent) / batches / 1e3, model.all_workers / 1e3,
                  same != 0 ? "yes" : "no");
  }
  return 0;
}
