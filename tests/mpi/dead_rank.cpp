// A rank that dies mid-run: the last rank exits abruptly (_exit, no MPI_Finalize) in the middle of a
// synchronous EASGD run; the survivors must fail with comm::mpi's timeout error instead of hanging.
// Driven by run_dead_rank.cmake, which runs it under mpiexec (Open MPI told not to kill the job when a rank
// exits) and checks every survivor's report. Usage: mpi_dead_rank <timeout seconds> [parameters = 1000]
// (100'000 parameters: the all-reduce takes comm::mpi's ring of point-to-point messages).
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "tether/algo/easgd.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/problems/quadratic.hpp"

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  const double timeout = argc > 1 ? std::atof(argv[1]) : 2.0;
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = timeout});
  const int victim = comm.size() - 1;

  const std::size_t dimension = argc > 2 ? static_cast<std::size_t>(std::atol(argv[2])) : 1000;
  const tether::problems::quadratic<float> problem(dimension, {.noise = 0.1});
  std::vector<float> x(problem.dimension(), 0.0f);
  std::vector<float> g(x.size());
  tether::algo::easgd<tether::comm::mpi> opt(comm, x.size(), {.lr = 0.05, .pull = {.period = 4}});
  auto last_ok = std::chrono::steady_clock::now();
  try {
    for (std::uint64_t t = 0; t < 1000; ++t) {
      if (comm.rank() == victim && t == 50) {
        std::fprintf(stderr, "rank %d: exiting abruptly at step %llu\n", comm.rank(),
                     static_cast<unsigned long long>(t));
        _exit(1);
      }
      const double loss = problem.evaluate(x, g, {{}, t});
      opt.step(x, g, loss);
      last_ok = std::chrono::steady_clock::now();
    }
  } catch (const tether::timeout& e) {  // the error type of every bounded wait
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_ok).count();
    std::printf("survivor rank %d failed after %.2f s: %s\n", comm.rank(), waited, e.what());
    std::fflush(stdout);
    // A real program would call MPI_Abort here; the test leaves without MPI so that every survivor reports.
    std::_Exit(0);
  }
  std::printf("rank %d: finished all steps: the dead rank was not detected\n", comm.rank());
  std::fflush(stdout);
  std::_Exit(3);
}
