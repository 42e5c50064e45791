/// \file
/// bench_ps_mpi: the parameter server under MPI (docs/benchmarks.md, "Downpour"). The last rank serves the
/// shards, the others are replicas (R = ranks - 1): run it with mpirun -np 2, 3, 5, 9 for R = 1, 2, 4, 8.
///
///     mpirun -np 3 bench_ps_mpi [--benchmark_repetitions=3 --benchmark_report_aggregates_only=true]
///
/// Rows, each a fixed number of iterations in which every replica does K = 8 operations on N floats (time: the
/// slowest replica, manual time), N = 2^20 (4 MiB) and 2^16:
/// - `mpi_put` / `mpi_get`: the floor, plain one-sided MPI of the same bytes: MPI_Put (MPI_Get) of N floats into
///   (from) a window on the server rank, each under a shared MPI_Win_lock/unlock (measured first, in the same run);
/// - `push/S:s`: pushes of N floats to a store of S shards (1, 2, 4, 8) with Adagrad on the shards (the server
///   applies each), `release()` at the end of the iteration so every push is applied and acknowledged;
/// - `fetch/S:s`: fetches of N floats.
/// Counters: `ops_per_s` (all replicas), `GBps` (the payload, N*s per operation, all replicas), `x_put` / `x_get`
/// (GBps over the floor's), and `sent_per_push` / `recv_per_fetch` from tether's counters (payload bytes, replica 0)
/// next to the model N*s. Only rank 0 prints.

#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tether/comm/mpi.hpp"
#include "tether/exec/serial.hpp"
#include "tether/ps/mpi_store.hpp"
#include "tether/step/adagrad.hpp"

namespace {

using T = float;
constexpr int ops_per_iteration = 8;

std::unique_ptr<tether::comm::mpi> g_comm;
MPI_Comm g_replicas = MPI_COMM_NULL;  // the replicas only (the server is busy serving during their iterations)
int g_rank = 0;
int g_size = 1;
std::map<std::pair<std::string, std::int64_t>, double> g_floor;  // (put|get, N) -> bytes/s

[[nodiscard]] bool is_server() { return g_rank == g_size - 1; }
[[nodiscard]] int replicas() { return g_size - 1; }

double max_over_replicas(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, g_replicas);
  return v;
}

void count(benchmark::State& state, std::size_t n, double seconds, const char* floor_name) {
  const double ops = static_cast<double>(replicas()) * ops_per_iteration * static_cast<double>(state.iterations());
  const double bytes = ops * static_cast<double>(n * sizeof(T));
  state.counters["replicas"] = replicas();
  state.counters["ops_per_s"] = ops / seconds;
  state.counters["GBps"] = bytes / seconds * 1e-9;
  if (floor_name != nullptr) {
    const auto it = g_floor.find({floor_name, static_cast<std::int64_t>(n)});
    if (it != g_floor.end()) state.counters[std::string("x_") + floor_name] = bytes / seconds / it->second;
  }
}

/// The floor: MPI_Put or MPI_Get of N floats to/from a window on the server rank, under a shared lock each.
void BM_one_sided(benchmark::State& state, bool put) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<T> local(n, T(1));
  T* base = nullptr;
  MPI_Win win = MPI_WIN_NULL;
  const MPI_Aint bytes = is_server() ? static_cast<MPI_Aint>(n * sizeof(T)) : 0;
  MPI_Win_allocate(bytes, sizeof(T), MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
  const int target = g_size - 1;
  double total = 0.0;
  for (auto _ : state) {
    if (is_server()) {
      state.SetIterationTime(1e-9);
      continue;
    }
    MPI_Barrier(g_replicas);
    const double t0 = MPI_Wtime();
    for (int k = 0; k < ops_per_iteration; ++k) {
      MPI_Win_lock(MPI_LOCK_SHARED, target, 0, win);
      if (put)
        MPI_Put(local.data(), static_cast<int>(n), MPI_FLOAT, target, 0, static_cast<int>(n), MPI_FLOAT, win);
      else
        MPI_Get(local.data(), static_cast<int>(n), MPI_FLOAT, target, 0, static_cast<int>(n), MPI_FLOAT, win);
      MPI_Win_unlock(target, win);
    }
    const double dt = max_over_replicas(MPI_Wtime() - t0);
    state.SetIterationTime(dt);
    total += dt;
  }
  MPI_Win_free(&win);
  if (is_server()) return;
  const double ops = static_cast<double>(replicas()) * ops_per_iteration * static_cast<double>(state.iterations());
  g_floor[{put ? "put" : "get", state.range(0)}] = ops * static_cast<double>(n * sizeof(T)) / total;
  count(state, n, total, nullptr);
}

/// Pushes (or fetches) of N floats to a store of S shards on the server rank.
void BM_store(benchmark::State& state, bool push) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto shards = static_cast<std::size_t>(state.range(1));
  auto store = tether::ps::placement<tether::comm::mpi>::open(
      *g_comm, tether::exec::serial{}, tether::step::adagrad{}, n, {.shards = shards, .servers = 1}, T(1e-6));
  std::vector<T> x(n, T(1));
  if (!is_server()) {
    if (!store.join(x.data())) store.fetch(x.data());
    std::fill(store.accumulator(), store.accumulator() + n, T(1e-3));
  }
  const tether::comm_counters before = g_comm->counters();
  double total = 0.0;
  bool served = false;
  for (auto _ : state) {
    if (is_server()) {
      if (!served) store.serve();  // returns once every replica called finish(), after its last iteration
      served = true;
      state.SetIterationTime(1e-9);
      continue;
    }
    MPI_Barrier(g_replicas);
    const double t0 = MPI_Wtime();
    for (int k = 0; k < ops_per_iteration; ++k) {
      if (push) store.push(store.accumulator(), T(1e-6));
      else store.fetch(x.data());
    }
    if (push) store.release();
    const double dt = max_over_replicas(MPI_Wtime() - t0);
    state.SetIterationTime(dt);
    total += dt;
  }
  const tether::comm_counters after = g_comm->counters();
  if (is_server()) return;
  store.finish(x.data());
  count(state, n, total, push ? "put" : "get");
  const double ops = ops_per_iteration * static_cast<double>(state.iterations());
  if (push) state.counters["sent_per_push"] = static_cast<double>(after.bytes_sent - before.bytes_sent) / ops;
  else state.counters["recv_per_fetch"] = static_cast<double>(after.bytes_received - before.bytes_received) / ops;
  state.counters["model_bytes"] = static_cast<double>(n * sizeof(T));
}

/// Discards what ranks other than 0 would print.
class null_reporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  std::vector<char*> args(argv, argv + argc);
  if (g_rank != 0)
    args.erase(std::remove_if(args.begin() + 1, args.end(),
                              [](const char* a) { return std::strncmp(a, "--benchmark_out", 15) == 0; }),
               args.end());
  int nargs = static_cast<int>(args.size());
  benchmark::Initialize(&nargs, args.data());
  if (g_size < 2) {
    if (g_rank == 0) std::fprintf(stderr, "bench_ps_mpi: run it with mpirun -np 2 or more (the last rank serves)\n");
    MPI_Finalize();
    return 1;
  }
  MPI_Comm_split(MPI_COMM_WORLD, is_server() ? 1 : 0, g_rank, &g_replicas);
  {
    g_comm = std::make_unique<tether::comm::mpi>(MPI_COMM_WORLD, tether::comm::mpi_options{.timeout = 600.0});
    for (const std::int64_t n : {std::int64_t{1} << 16, std::int64_t{1} << 20}) {
      const std::int64_t iterations = n > (1 << 16) ? 10 : 50;
      benchmark::RegisterBenchmark("mpi_put", BM_one_sided, true)->Arg(n)->Iterations(iterations)->UseManualTime()
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark("mpi_get", BM_one_sided, false)->Arg(n)->Iterations(iterations)->UseManualTime()
          ->Unit(benchmark::kMillisecond);
      for (const std::int64_t s : {1, 2, 4, 8}) {
        benchmark::RegisterBenchmark("push", BM_store, true)->Args({n, s})->ArgNames({"N", "S"})
            ->Iterations(iterations)->UseManualTime()->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark("fetch", BM_store, false)->Args({n, s})->ArgNames({"N", "S"})
            ->Iterations(iterations)->UseManualTime()->Unit(benchmark::kMillisecond);
      }
    }
    if (g_rank == 0) {
      benchmark::RunSpecifiedBenchmarks();
    } else {
      null_reporter quiet;
      benchmark::RunSpecifiedBenchmarks(&quiet);
    }
    g_comm.reset();
  }
  MPI_Comm_free(&g_replicas);
  benchmark::Shutdown();
  MPI_Finalize();
  return 0;
}
