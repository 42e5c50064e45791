// A killed Sandblaster L-BFGS job on comm::mpi restarts from its checkpoints (driven by run_mpi_crash.cmake
// under mpiexec, in a fresh directory). Usage: lbfgs_mpi_crash crash|resume
//  - crash: checkpoints every 4 iterations; the coordinator (rank 0) exits abruptly (_exit) at the end of
//    iteration 10, after every rank wrote its file of iteration 8 (a rank's batch of iterations 9 and 10
//    needs the commands that follow the save); the survivors fail within the timeout.
//  - resume: the uninterrupted run (no checkpoint options: the reference), then a new minimize resuming from
//    the files of iteration 8; each rank prints whether its x, g and every iteration's loss and step are the
//    reference's bits.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "tether/lbfgs/mpi.hpp"
#include "tether/problems/logistic.hpp"

namespace {

bool same_bits(const void* a, const void* b, std::size_t bytes) {
  return std::memcmp(a, b, bytes) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "crash";
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 60.0});
  const tether::problems::logistic<double> data({.samples = 1500, .features = 12, .l2 = 1e-3, .seed = 5});
  tether::lbfgs::options o{.history = 5, .epsilon = 1e-14, .max_iterations = 16, .portions = 9, .shards = 3};
  o.timeout = 3.0;
  const std::size_t n = data.dimension();

  if (mode == "crash") {
    o.checkpoint = {.path = "ck", .every = 4};
    o.on_iteration = [](const tether::lbfgs::iteration_record& it) {
      if (it.iteration == 10) {
        std::fprintf(stderr, "the coordinator exits abruptly after iteration 10\n");
        _exit(1);
      }
    };
    std::vector<double> x(n, 0.0);
    const auto start = std::chrono::steady_clock::now();
    try {
      (void)tether::lbfgs::minimize(comm, data, x, o);
      std::printf("rank %d: the run finished, which it should not have\n", comm.rank());
    } catch (const std::exception& e) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("survivor rank %d failed after %.2f s: %s\n", comm.rank(), waited, e.what());
    }
    std::fflush(stdout);
    // A dead rank leaves MPI_Finalize hanging: leave without it, after the other survivors reported.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::_Exit(1);
  }

  o.timeout = 60.0;
  std::vector<double> ref(n, 0.0), ref_g(n, 0.0);
  const auto whole = tether::lbfgs::minimize(tether::exec::serial{}, comm, data, ref, ref_g, o);

  o.checkpoint.resume_from = "ck";
  std::size_t first = 0;  // the first iteration the resumed run does (seen on the coordinator)
  o.on_iteration = [&](const tether::lbfgs::iteration_record& it) {
    if (first == 0) first = it.iteration;
  };
  std::vector<double> x(n, 0.0), g(n, 0.0);
  const auto resumed = tether::lbfgs::minimize(tether::exec::serial{}, comm, data, x, g, o);
  bool same = same_bits(x.data(), ref.data(), n * sizeof(double)) &&
              same_bits(g.data(), ref_g.data(), n * sizeof(double)) &&
              resumed.iterations == whole.iterations && resumed.history.size() == whole.history.size();
  if (comm.rank() == 0) same = same && first == 9;
  for (std::size_t i = 0; same && i < whole.history.size(); ++i)
    same = same_bits(&resumed.history[i].f, &whole.history[i].f, sizeof(double)) &&
           same_bits(&resumed.history[i].step, &whole.history[i].step, sizeof(double)) &&
           resumed.history[i].evaluations == whole.history[i].evaluations;
  std::printf("rank %d: %zu iterations, resumed from iteration 8 bit-identical: %s\n", comm.rank(),
              resumed.iterations, same ? "yes" : "no");
  std::fflush(stdout);
  return same ? 0 : 1;
}
