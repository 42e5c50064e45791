// A rank that dies during a Sandblaster L-BFGS run on comm::mpi (driven by run_mpi_fault.cmake under
// mpiexec, Open MPI told not to kill the survivors). Usage: lbfgs_mpi_fault replica|coordinator <timeout s>
//  - replica: the last rank, which holds no shard, exits abruptly (_exit) in its third portion; its portions
//    are redone by backup copies and the survivors finish with the thread team's result (bit for bit) and
//    report the lost worker.
//  - coordinator: rank 0 exits abruptly in its third portion; every survivor fails with a runtime_error
//    within the timeout.
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

#include "tether/comm/shared_memory.hpp"
#include "tether/lbfgs/mpi.hpp"
#include "tether/problems/logistic.hpp"

namespace {

struct dying {
  const tether::problems::logistic<double>* data;
  bool dies = false;
  mutable int calls = 0;
  std::size_t dimension() const { return data->dimension(); }
  std::size_t samples() const { return data->samples(); }
  double evaluate(std::span<const double> x, std::span<double> g, const tether::batch& b) const {
    if (dies && ++calls == 3) {
      std::fprintf(stderr, "exiting abruptly in a portion\n");
      _exit(1);
    }
    return data->evaluate(x, g, b);
  }
};

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "replica";
  const double timeout = argc > 2 ? std::atof(argv[2]) : 3.0;
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 60.0});
  const int victim = mode == "coordinator" ? 0 : comm.size() - 1;
  const tether::problems::logistic<double> data({.samples = 2000, .features = 10, .l2 = 1e-3, .seed = 41});
  tether::lbfgs::options o{.history = 5, .epsilon = 1e-8, .portions = 12, .shards = 2, .timeout = timeout};

  std::vector<double> ref(data.dimension(), 0.0);
  {
    tether::team team(1);
    team.run([&](tether::team::worker& w) { (void)tether::lbfgs::minimize(w, data, ref, o); });
  }

  dying mine{&data, comm.rank() == victim};
  std::vector<double> x(data.dimension(), 0.0);
  const auto start = std::chrono::steady_clock::now();
  try {
    const auto r = tether::lbfgs::minimize(comm, mine, x, o);
    const bool same = std::memcmp(x.data(), ref.data(), x.size() * sizeof(double)) == 0;
    std::printf("survivor rank %d: %s after %zu iterations, lost %zu, duplicates %zu, same as the team: %s\n",
                comm.rank(), tether::lbfgs::to_string(r.status), r.iterations, r.lost_workers, r.duplicates,
                same ? "yes" : "no");
  } catch (const std::exception& e) {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("survivor rank %d failed after %.2f s: %s\n", comm.rank(), waited, e.what());
  }
  std::fflush(stdout);
  // A dead rank leaves MPI_Finalize hanging: leave without it. mpiexec ends the job when the first rank
  // leaves, so give the other survivors (which finish within moments) time to report first.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::_Exit(0);
}
