// Downpour checkpoints under MPI (driven by run_mpi_checkpoint.cmake: three jobs of 3 ranks, 2 replicas and 1
// server, bulk-synchronous rounds, Adagrad shards, a momentum local step, 3 shards):
//
//   mpi_checkpoint whole <dir>    40 steps; after step 15 every replica saves (the server writes its shards from
//                                 serve()) and goes on; each replica writes its final x and counters to <dir>
//   mpi_checkpoint part <dir>     15 steps, saves into <dir>/ckpt.<rank>, finishes
//   mpi_checkpoint resume <dir>   new replicas and server load <dir>/ckpt.* (the server: replica 0's path), take
//                                 steps 15 to 40, finish, and compare their final x (the shards' final parameters)
//                                 and counters with the whole job's, bit for bit
//   mpi_checkpoint x_only <dir>   the control: steps 15 to 40 from the x saved at step 15 alone (fresh shards and
//                                 replicas): the final x differs from the whole job's
//   mpi_checkpoint damaged <dir>  replica 1's file truncated: every rank fails to load, none hangs
//
// Each rank prints one line the driver checks.
#include <mpi.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "support.hpp"
#include "tether/algo/downpour.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/ps/mpi_store.hpp"
#include "tether/step/momentum.hpp"

namespace {

using tether::comm::mpi;
using downpour = tether::algo::downpour<mpi, tether::step::adagrad, tether::exec::serial, float, tether::step::momentum>;
constexpr std::uint64_t steps = 40;
constexpr std::uint64_t cut = 15;

downpour::options options() {
  return {.lr = 0.2,
          .local_lr = 0.05,
          .shards = 3,
          .local_step = {.momentum = 0.5f},
          .consistency = tether::ps::consistency::bulk_synchronous(),
          .servers = 1};
}

std::string file(const std::string& dir, const std::string& name, int rank) {
  return dir + "/" + name + "." + std::to_string(rank);
}

/// x then the counters, as bytes.
std::vector<char> record(const std::vector<float>& x, const downpour& opt) {
  const auto& s = opt.stats();
  std::vector<std::uint64_t> c{s.steps, s.rounds, s.pushes, s.fetches, s.max_lead, s.pushes_dropped, s.bytes_sent,
                               s.bytes_received};
  c.insert(c.end(), s.staleness.count.begin(), s.staleness.count.end());
  std::vector<char> out(x.size() * sizeof(float) + c.size() * sizeof(std::uint64_t));
  std::memcpy(out.data(), x.data(), x.size() * sizeof(float));
  std::memcpy(out.data() + x.size() * sizeof(float), c.data(), c.size() * sizeof(std::uint64_t));
  return out;
}

int run(mpi& comm, const std::string& mode, const std::string& dir) {
  const std::size_t n = ps_test::quad().dimension();
  const int rank = comm.rank();
  downpour opt(comm, n, options());
  const bool loads = mode == "resume" || mode == "damaged";
  std::vector<float> x = ps_test::start_point(n, rank), g(n);
  if (mode == "x_only" && !opt.is_server()) {
    std::ifstream f(file(dir, "x", rank), std::ios::binary);
    f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
  }
  if (loads) {
    // A server loads its shards' files from replica 0's path.
    opt.load(file(dir, "ckpt", opt.is_server() ? 0 : rank), x);
    if (mode == "damaged") {
      std::printf("rank %d: LOADED A DAMAGED CHECKPOINT\n", rank);
      return 1;
    }
  }
  if (opt.is_server()) {
    opt.serve();
    std::printf("server rank %d: served\n", rank);
    return 0;
  }
  const std::uint64_t from = loads || mode == "x_only" ? cut : 0;
  const std::uint64_t to = mode == "part" ? cut : steps;
  for (std::uint64_t t = from; t < to; ++t) {
    opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, rank, t));
    if (t + 1 == cut && (mode == "whole" || mode == "part")) {
      opt.save(file(dir, mode == "whole" ? "whole" : "ckpt", rank), x);
      std::ofstream(file(dir, "x", rank), std::ios::binary)
          .write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
    }
  }
  opt.finish(x);
  const auto mine = record(x, opt);
  if (mode == "whole") {
    std::ofstream(file(dir, "final", rank), std::ios::binary).write(mine.data(), static_cast<std::streamsize>(mine.size()));
  } else if (mode == "resume" || mode == "x_only") {
    std::ifstream f(file(dir, "final", rank), std::ios::binary);
    const std::vector<char> whole{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    const bool same_x =
        whole.size() == mine.size() && std::memcmp(whole.data(), mine.data(), n * sizeof(float)) == 0;
    if (mode == "x_only") {  // its counters start at 0: only x is compared
      std::printf("replica rank %d: x alone: final x %s\n", rank, same_x ? "THE SAME" : "differs");
      return 0;
    }
    const bool same = same_x && whole == mine;
    std::printf("replica rank %d: resumed %s the uninterrupted job (steps %llu, pushes %llu)\n", rank,
                same ? "bit-identical to" : "DIFFERENT FROM", static_cast<unsigned long long>(opt.stats().steps),
                static_cast<unsigned long long>(opt.stats().pushes));
    return same ? 0 : 1;
  }
  std::printf("replica rank %d: %s done after %llu steps\n", rank, mode.c_str(),
              static_cast<unsigned long long>(opt.stats().steps));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 2;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (argc == 3) {
    const std::string mode = argv[1], dir = argv[2];
    if (mode == "damaged" && rank == 0) {  // replica 1's file truncated (before any rank reads it)
      const std::string p = file(dir, "ckpt", 1);
      std::filesystem::resize_file(p, std::filesystem::file_size(p) - 9);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    try {
      mpi comm(MPI_COMM_WORLD, {.timeout = 20.0});
      rc = run(comm, mode, dir);
    } catch (const std::exception& e) {
      std::printf("rank %d failed: %s\n", rank, e.what());
      rc = mode == "damaged" ? 0 : 1;
    }
  }
  std::fflush(stdout);
  MPI_Finalize();
  return rc;
}
