// A rank that dies in the middle of a SwarmSGD run: the last rank exits abruptly (_exit, no MPI_Finalize) after
// 200 steps; the others must drop it (its ring neighbours see their exchanges with it lost after the timeout),
// keep gossiping, finish every step and end near the quadratic's optimum. Driven by run_dead_node.cmake (Open MPI
// told not to kill the job when a rank exits), which checks every survivor's report.
// Usage: swarm_mpi_dead_node <timeout seconds>
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "tether/algo/swarm_sgd.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/comm/mpi/pairwise.hpp"
#include "support.hpp"

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  const double timeout = argc > 1 ? std::atof(argv[1]) : 2.0;
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
  const int victim = comm.size() - 1;
  const auto& q = swarm_test::quad();
  const auto r = static_cast<std::uint64_t>(comm.rank());
  std::vector<float> x = swarm_test::start(q.dimension(), comm.rank()), g(q.dimension());
  const int steps = 1500;
  try {
    tether::algo::swarm_sgd<tether::comm::mpi> opt(
        comm, x.size(),
        {.lr = 0.05, .topology = tether::comm::topology::ring(comm.size()), .local_steps = 1, .timeout = timeout,
         .schedule = tether::schedule::cosine(steps, 0.05)});
    for (int t = 0; t < steps; ++t) {
      if (comm.rank() == victim && t == 200) {
        std::fprintf(stderr, "rank %d: exiting abruptly at step %d\n", comm.rank(), t);
        _exit(1);
      }
      const double loss = q.evaluate(x, g, {{}, tether::derive_seed(3, r, static_cast<std::uint64_t>(t))});
      opt.step(x, g, loss);
    }
    opt.finish(x);
    std::string lost;
    for (int p : opt.swarm().lost_peers) {
      if (!lost.empty()) lost += ',';
      lost += std::to_string(p);
    }
    std::printf("survivor rank %d finished %llu steps: lost [%s], distance %.6f\n", comm.rank(),
                static_cast<unsigned long long>(opt.stats().steps), lost.c_str(), swarm_test::distance2(x));
  } catch (const std::exception& e) {
    std::printf("rank %d failed: %s\n", comm.rank(), e.what());
  }
  std::fflush(stdout);
  // MPI_Finalize could wait for the dead rank: the test leaves without it. A rank that leaves without it with
  // status 0 makes Open MPI's mpiexec kill the job (ranks still finishing included); a nonzero status does not,
  // under orte_abort_on_non_zero_status 0. The driver script reads the reports, not the status.
  std::_Exit(3);
}
