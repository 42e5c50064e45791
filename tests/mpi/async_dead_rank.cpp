// A rank that dies in the middle of an asynchronous run: the last rank exits abruptly (_exit, no MPI_Finalize)
// at step 50. Asynchronous LSGD: the round in flight then never completes; with on_lost_round = raise every
// survivor's step() must throw tether::timeout within the communicator's timeout (during the run, not in
// finish()); with go_on every survivor must take all its steps, see the round lost, and leave finish() at
// once. Asynchronous EASGD (the dead rank holds no part of the center, so nobody waits for it): with
// on_lost_rank = raise every survivor's step() must throw tether::timeout naming the silent rank, from the
// heartbeat; with go_on every survivor must take all its steps, see the rank lost, and leave finish() at once.
// Driven by run_async_dead_rank.cmake (Open MPI told not to kill the job when a rank exits), which checks every
// survivor's report. Usage: mpi_async_dead_rank <raise|go_on|easgd|easgd_go_on> <timeout seconds>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "tether/algo/async_easgd.hpp"
#include "tether/algo/async_lsgd.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/problems/quadratic.hpp"

namespace {

/// The survivors' loop: `steps` steps of a millisecond each, then finish(); prints what happened.
template <class Opt>
void run(tether::comm::mpi& comm, Opt& opt, std::uint64_t steps) {
  const int victim = comm.size() - 1;
  const tether::problems::quadratic<float> problem(1000, {.noise = 0.1});
  std::vector<float> x(problem.dimension(), 0.0f);
  std::vector<float> g(x.size());
  const auto start = std::chrono::steady_clock::now();
  const auto since_start = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::uint64_t t = 0;
  try {
    for (; t < steps; ++t) {
      if (comm.rank() == victim && t == 50) {
        std::fprintf(stderr, "rank %d: exiting abruptly at step %llu\n", comm.rank(),
                     static_cast<unsigned long long>(t));
        _exit(1);
      }
      const double loss = problem.evaluate(x, g, {{}, t});
      opt.step(x, g, loss);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a step of real work
    }
    const double before_finish = since_start();
    opt.finish(x);
    const double in_finish = since_start() - before_finish;
    bool finite = true;
    for (float v : x) finite = finite && std::isfinite(v);
    if constexpr (requires { opt.pull_policy().lost(); })
      std::printf("survivor rank %d went on: %llu steps, round lost %d, %llu rounds completed, %.2f s in finish, "
                  "finite %d\n",
                  comm.rank(), static_cast<unsigned long long>(opt.stats().steps),
                  static_cast<int>(opt.pull_policy().lost()), static_cast<unsigned long long>(opt.stats().rounds),
                  in_finish, static_cast<int>(finite));
    else
      std::printf("survivor rank %d finished all %llu steps: the dead rank was not detected\n", comm.rank(),
                  static_cast<unsigned long long>(steps));
  } catch (const tether::timeout& e) {  // the error type of every bounded wait
    std::printf("survivor rank %d failed at step %llu after %.2f s: %s\n", comm.rank(),
                static_cast<unsigned long long>(t), since_start(), e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "raise";
  const double timeout = argc > 2 ? std::atof(argv[2]) : 2.0;
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = timeout});
  constexpr std::size_t n = 1000;
  using policy = tether::pull::lost_round_policy;
  if (mode == "easgd" || mode == "easgd_go_on") {
    // Rank 0 holds the center; the dead rank holds nothing. 5000 steps last well past the timeout.
    tether::algo::async_easgd<> opt(
        comm, n, {.lr = 0.05, .pull = {.period = 4, .on_lost_rank = mode == "easgd" ? policy::raise : policy::go_on}});
    run(comm, opt, 5000);
  } else {
    tether::algo::async_lsgd<> opt(
        comm, n, {.lr = 0.05, .pull = {.period = 4, .on_lost_round = mode == "go_on" ? policy::go_on : policy::raise}});
    run(comm, opt, 600);
  }
  std::fflush(stdout);
  // A real program would call MPI_Abort (raise) or save its model (go_on); the test leaves without MPI, whose
  // MPI_Finalize would wait for the dead rank, so that every survivor reports.
  std::_Exit(0);
}
