// A rank that dies in a Downpour run under MPI (driven by run_dead_rank.cmake, which runs it under mpiexec with
// Open MPI told not to kill the job when a rank exits, and checks every rank's report):
//
//   mpi_dead_rank replica <timeout s> <lease s>   replica 1 exits abruptly (_exit) at its step 50: the other
//                                                 replicas take all their steps and finish; everyone reports
//                                                 replica 1 lost (lease expired) after about 50 steps
//   mpi_dead_rank server <timeout s>              the server rank exits abruptly 0.5 s into the run: every
//                                                 replica fails with a clear error naming it, within the timeout
//
// The survivors leave without MPI_Finalize (std::_Exit), as a real program would call MPI_Abort.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tether/algo/downpour.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/problems/quadratic.hpp"
#include "tether/ps/mpi_store.hpp"

namespace {

const char* reason_name(tether::ps::loss_reason r) {
  return r == tether::ps::loss_reason::failed ? "failed" : "lease expired";
}

std::string describe(const std::vector<tether::ps::replica_loss>& losses) {
  std::string s;
  for (const auto& l : losses)
    s += "replica " + std::to_string(l.replica) + " (" + reason_name(l.reason) + ") after " + std::to_string(l.steps) +
         " steps; ";
  return s.empty() ? "none" : s;
}

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  const bool kill_server = argc > 1 && std::strcmp(argv[1], "server") == 0;
  const double timeout = argc > 2 ? std::atof(argv[2]) : 2.0;
  const double lease = argc > 3 ? std::atof(argv[3]) : 0.0;
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = timeout});
  const tether::problems::quadratic<float> problem(1000, {.noise = 0.1});
  std::vector<float> x(problem.dimension(), 0.0f);
  std::vector<float> g(x.size());
  tether::algo::downpour<tether::comm::mpi> opt(comm, x.size(),
                                                {.lr = 0.1, .shards = 2, .servers = 1, .lease = lease});
  if (opt.is_server()) {
    if (kill_server) {
      std::thread([rank = comm.rank()] {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        std::fprintf(stderr, "server rank %d: exiting abruptly\n", rank);
        _exit(1);
      }).detach();
    }
    opt.serve();
    std::printf("server rank %d: served; losses: %s\n", comm.rank(), describe(opt.losses()).c_str());
    std::fflush(stdout);
    std::_Exit(0);
  }
  const std::uint64_t steps = kill_server ? 100000 : 400;
  auto last_ok = std::chrono::steady_clock::now();
  try {
    for (std::uint64_t t = 0; t < steps; ++t) {
      if (!kill_server && comm.rank() == 1 && t == 50) {
        std::fprintf(stderr, "replica rank 1: exiting abruptly at step 50\n");
        _exit(1);
      }
      if (kill_server) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      opt.step(x, g, problem.evaluate(x, g, {{}, t}));
      last_ok = std::chrono::steady_clock::now();
    }
    opt.finish(x);
  } catch (const tether::runtime_error& e) {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_ok).count();
    std::printf("replica rank %d failed after %.2f s: %s\n", comm.rank(), waited, e.what());
    std::fflush(stdout);
    std::_Exit(0);
  }
  std::printf("replica rank %d: finished all %llu steps; losses: %s\n", comm.rank(),
              static_cast<unsigned long long>(steps), describe(opt.losses()).c_str());
  std::fflush(stdout);
  std::_Exit(kill_server ? 3 : 0);
}
