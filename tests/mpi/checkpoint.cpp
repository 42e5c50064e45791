// Checkpoints under mpirun (docs/reliability.md#checkpoints): LSGD with momentum on comm::mpi, 60 steps.
// Driven by run_checkpoint.cmake, which runs it four times in one folder:
//   whole    the uninterrupted run; writes each rank's final x to whole.<rank>
//   crash    saves every 10 steps to ckpt.<rank>; the last rank dies abruptly at step 35 and the job fails
//   resume   a new job loads ckpt.<rank> (step 30 on every rank) and finishes; each rank checks that its x and
//            counters are bit-identical to whole.<rank> and prints "rank r: resumed bit-identical"
//   mismatch rank 0's checkpoint replaced by one of step 10: every rank fails with a clear error, none hangs
// Usage: mpi_checkpoint whole|crash|resume|mismatch
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tether/algo/lsgd.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/step/momentum.hpp"

namespace {

using opt_t = tether::optimizer<tether::step::momentum, tether::pull::leader, tether::comm::mpi>;
constexpr std::size_t n = 33;
constexpr int steps = 60;

double gradient(const std::vector<float>& x, std::vector<float>& g, int rank, int t) {
  double loss = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float noise = static_cast<float>(((rank + 3) * (t + 1) * (static_cast<int>(i) + 5)) % 11) / 50.0f - 0.1f;
    const float d = x[i] - static_cast<float>(i) * 0.125f;
    g[i] = d * (1.0f + 0.05f * static_cast<float>(i)) + noise;
    loss += 0.5 * double(d) * double(d);
  }
  return loss + 0.01 * rank;
}

std::string file(const char* stem, int rank) { return std::string(stem) + "." + std::to_string(rank); }

/// x followed by the counters, as bytes.
std::vector<char> fingerprint(const std::vector<float>& x, const opt_t& opt) {
  std::vector<char> b(reinterpret_cast<const char*>(x.data()), reinterpret_cast<const char*>(x.data() + x.size()));
  const std::uint64_t c[] = {opt.stats().steps, opt.stats().rounds, opt.stats().leader_changes, opt.applied_steps()};
  b.insert(b.end(), reinterpret_cast<const char*>(c), reinterpret_cast<const char*>(c) + sizeof c);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 20.0});
  const int rank = comm.rank();
  opt_t opt(comm, n, {.lr = 0.05, .step = {.momentum = 0.7f}, .pull = {.period = 4, .strength = 0.3f, .score_window = 3}});
  std::vector<float> x(n), g(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(rank) - static_cast<float>(i) * 0.25f;
  int from = 0;
  if (mode == "resume" || mode == "mismatch") {
    try {
      opt.load(file("ckpt", rank), x);
    } catch (const tether::error& e) {
      std::printf("rank %d: load failed: %s\n", rank, e.what());
      std::fflush(stdout);
      MPI_Finalize();
      return mode == "mismatch" ? 0 : 1;
    }
    if (mode == "mismatch") {
      std::printf("rank %d: the mismatched checkpoints were accepted\n", rank);
      return 1;
    }
    from = static_cast<int>(opt.stats().steps);
  }
  for (int t = from; t < steps; ++t) {
    if (mode == "crash" && t % 10 == 0 && t > 0) opt.save(file("ckpt", rank), x);
    if (mode == "crash" && t == 10) opt.save(file("early", rank), x);
    if (mode == "crash" && rank == comm.size() - 1 && t == 35) {
      std::fprintf(stderr, "rank %d: dying at step %d\n", rank, t);
      _exit(7);
    }
    opt.step(x, g, gradient(x, g, rank, t));
  }
  const auto mine = fingerprint(x, opt);
  if (mode == "whole") {
    std::ofstream(file("whole", rank), std::ios::binary).write(mine.data(), static_cast<std::streamsize>(mine.size()));
  } else if (mode == "resume") {
    std::ifstream in(file("whole", rank), std::ios::binary);
    const std::vector<char> want{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (want != mine) {
      std::printf("rank %d: resumed run differs from the uninterrupted one (from step %d)\n", rank, from);
      return 1;
    }
    std::printf("rank %d: resumed bit-identical from step %d\n", rank, from);
  }
  std::fflush(stdout);
  return 0;
}
