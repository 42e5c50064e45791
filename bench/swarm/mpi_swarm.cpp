// SwarmSGD under MPI (docs/benchmarks.md, "SwarmSGD"): run with 2 ranks; only rank 0 prints.
//
//     mpirun -np 2 bench_swarm_mpi [--benchmark_filter=exchange]
//
//   exchange/N/bits   one step of rank 0 that ends in a pair exchange with rank 1 (which serves it from sync()),
//                     then a sync() of both: rank 0's local step (a fused pass, lr 0), snapshot, encode, request,
//                     rank 1's decode, encode, average and reply, rank 0's decode and average. bits 32 = fp32, 8 and
//                     4 = stochastic uniform (block 256). Time: max over the ranks, after a barrier.
//   local_step/N      the same step and sync() without the exchange.
//   sendrecv/N/bits   an MPI_Sendrecv of the exchange's message (each way) between the two ranks, in the same run.
// Ranks run identical iteration counts (fixed with Iterations).
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/mpi.hpp>
#include <tether/comm/mpi/pairwise.hpp>
#include <tether/core/rng.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace {

std::unique_ptr<tether::comm::mpi> g_comm;

double max_over_ranks(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return v;
}

template <class Codec>
void pair_bench(benchmark::State& state, Codec codec, bool exchange) {
  auto& comm = *g_comm;
  const auto n = static_cast<std::size_t>(state.range(0));
  tether::rng r(static_cast<std::uint64_t>(comm.rank()) + 1);
  std::vector<float> x(n), g(n, 0.0f);
  for (auto& v : x) v = static_cast<float>(r.uniform() - 0.5);
  tether::algo::swarm_sgd<tether::comm::mpi, tether::step::sgd, Codec> opt(
      comm, n, {.lr = 0.0, .local_steps = exchange ? 1u : 1000000000u, .codec = codec, .check_gradient = false});
  const bool active = comm.rank() == 0;
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    if (active) opt.step(x, g, 0.0);
    opt.sync(x);
    state.SetIterationTime(max_over_ranks(MPI_Wtime() - t0));
  }
  opt.finish(x);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * opt.message_bytes()));
  state.counters["msg_bytes"] = static_cast<double>(opt.message_bytes());
}

void sendrecv_bench(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto bits = static_cast<unsigned>(state.range(1));
  const std::size_t bytes =
      bits == 32 ? tether::codec::identity<float>{}.encoded_size(n)
                 : tether::codec::stochastic_uniform<float>({.bits = bits, .block = 256}).encoded_size(n);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<unsigned char> out(bytes, 1), in(bytes, 0);
  const int peer = rank == 0 ? 1 : 0;
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    if (rank < 2)
      MPI_Sendrecv(out.data(), static_cast<int>(bytes), MPI_BYTE, peer, 7, in.data(), static_cast<int>(bytes), MPI_BYTE,
                   peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    state.SetIterationTime(max_over_ranks(MPI_Wtime() - t0));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * bytes));
}

class null_reporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

tether::codec::stochastic_uniform<float> quant(unsigned bits) {
  return tether::codec::stochastic_uniform<float>({.bits = bits, .block = 256});
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<char*> args(argv, argv + argc);
  if (rank != 0)
    args.erase(std::remove_if(args.begin() + 1, args.end(),
                              [](const char* a) { return std::strncmp(a, "--benchmark_out", 15) == 0; }),
               args.end());
  int nargs = static_cast<int>(args.size());
  benchmark::Initialize(&nargs, args.data());
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "bench_swarm_mpi: run with 2 ranks (mpirun -np 2)\n");
    MPI_Finalize();
    return 2;
  }
  {
    g_comm = std::make_unique<tether::comm::mpi>(MPI_COMM_WORLD, tether::comm::mpi_options{.timeout = 600.0});
    for (const std::int64_t n : {std::int64_t{1} << 20, std::int64_t{1} << 24}) {
      const std::int64_t iters = n == (1 << 20) ? 40 : 8;
      benchmark::RegisterBenchmark("local_step", [](benchmark::State& s) { pair_bench(s, tether::codec::identity<float>{}, false); })
          ->Args({n})->Iterations(iters)->UseManualTime()->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark("exchange", [](benchmark::State& s) { pair_bench(s, tether::codec::identity<float>{}, true); })
          ->Args({n, 32})->Iterations(iters)->UseManualTime()->Unit(benchmark::kMillisecond);
      for (unsigned bits : {8u, 4u})
        benchmark::RegisterBenchmark("exchange", [bits](benchmark::State& s) { pair_bench(s, quant(bits), true); })
            ->Args({n, bits})->Iterations(iters)->UseManualTime()->Unit(benchmark::kMillisecond);
      for (int bits : {32, 8, 4})
        benchmark::RegisterBenchmark("sendrecv", sendrecv_bench)->Args({n, bits})->Iterations(iters)->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    }
    if (rank == 0) {
      benchmark::RunSpecifiedBenchmarks();
    } else {
      null_reporter quiet;
      benchmark::RunSpecifiedBenchmarks(&quiet);
    }
    g_comm.reset();
  }
  benchmark::Shutdown();
  MPI_Finalize();
  return 0;
}
