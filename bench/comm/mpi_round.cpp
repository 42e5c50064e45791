// Communication of a round on comm::mpi, per algorithm: the time of one round (max over the ranks) and the
// payload bytes each worker sent and received per round, from tether's own counters, next to the model of
// docs/mpi.md (../shared/PERFORMANCE.md). Run under mpiexec; only rank 0 prints:
//
//     mpirun -np 4 bench_mpi_round [--blocking] [--benchmark_filter=lsgd] [--benchmark_format=json]
//
// --blocking uses MPI's blocking collectives (comm::mpi with timeout 0) instead of the default non-blocking ones
// polled against the timeout, to show what the dead-rank protection costs.
//
// Every algorithm runs with period 1, so each step is a round: the measured time is a whole step (the fused
// update of N floats plus the round's communication); `local_step` is the same step without communication.
// Asynchronous LSGD never blocks in a step: its step time is the polling overhead; `ms/round` is the loop's time
// divided by the rounds that completed in it (with period 1 a round is always due, so rounds run back to back). Ranks run identical iteration counts (fixed with Iterations), so collectives match.
//
// The floor rows time, in the same run and the same way, what a synchronous round cannot do without: the
// fused kernel alone (`kernel_sgd`, `kernel_sgd_leader`, `kernel_sgd_elastic`: tether::fused_update on
// exec::serial, no finite check, no communication) and the raw collective of the same bytes on the same
// communicator (`raw_allreduce`: MPI_Allreduce in place; `raw_bcast`: MPI_Bcast from rank 0; `raw_iallreduce`,
// `raw_ibcast`: the non-blocking calls completed by MPI_Wait). A round's floor is its kernel plus its raw
// collective (local SGD: kernel_sgd + raw_allreduce; EASGD: kernel_sgd_elastic + raw_allreduce; LSGD:
// kernel_sgd_leader + raw_bcast, plus its election `raw_minloc`: MPI_Allreduce MINLOC of 8 bytes).
// `comm_allreduce` and `comm_bcast` time comm::mpi's own allreduce_sum and broadcast of the same bytes, the
// collectives the rounds call.
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "tether/algo/async_easgd.hpp"
#include "tether/algo/async_lsgd.hpp"
#include "tether/algo/easgd.hpp"
#include "tether/algo/local_sgd.hpp"
#include "tether/algo/lsgd.hpp"
#include "tether/algo/overlap_local_sgd.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/core/fused_update.hpp"
#include "tether/core/rng.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/elastic.hpp"
#include "tether/pull/leader.hpp"
#include "tether/pull/none.hpp"

namespace {

std::unique_ptr<tether::comm::mpi> g_comm;

/// The payload model per worker per round, averaged over the p workers (bytes, s = 4).
enum class model { leader, allreduce, async_center, none };

double model_bytes(model m, double n, double p) {
  const double s = sizeof(float);
  switch (m) {
    case model::leader: return 8.0 + (p - 1.0) / p * n * s;     // election; the leader sends N*s to p-1 ranks
    case model::allreduce: return 2.0 * (p - 1.0) / p * n * s;  // reduce-scatter + all-gather
    case model::async_center: return (p - 1.0) / p * n * s;     // N*s each way, except the owner's own exchange
    case model::none: return 0.0;
  }
  return 0.0;
}

double max_over_ranks(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return v;
}
double sum_over_ranks(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return v;
}

template <class Opt>
void round_bench(benchmark::State& state, typename Opt::options o, model m) {
  auto& comm = *g_comm;
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> x(n);
  std::vector<float> g(n);
  tether::rng r(tether::derive_seed(9, static_cast<std::uint64_t>(comm.rank())));
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(r.uniform());
    g[i] = 1e-3f * static_cast<float>(r.uniform());
  }
  const double loss = 1.0 + 0.01 * comm.rank();  // a steady leader: rank 0
  Opt opt(comm, n, o);
  for (int w = 0; w < 3; ++w) opt.step(x, g, loss);  // start-up and a first round

  constexpr bool async_leader = std::is_same_v<typename Opt::pull_type, tether::pull::async_leader>;
  auto completed = [&opt] {
    if constexpr (async_leader)
      return opt.pull_policy().rounds_completed();
    else
      return opt.stats().rounds;
  };
  const tether::comm_counters before = comm.counters();
  const std::uint64_t rounds_before = completed();
  double seconds = 0;
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    opt.step(x, g, loss);
    const double dt = max_over_ranks(MPI_Wtime() - t0);
    state.SetIterationTime(dt);
    seconds += dt;
  }
  const tether::comm_counters mid = comm.counters();
  const auto rounds_in_loop = static_cast<double>(std::max<std::uint64_t>(1, completed() - rounds_before));
  // Asynchronous LSGD: rounds still in flight (or due) finish here, blocking; every rank took the same steps.
  opt.finish(x);
  const tether::comm_counters after = comm.counters();
  const auto rounds_all = static_cast<double>(std::max<std::uint64_t>(1, completed() - rounds_before));
  // Bytes are counted when an operation is posted: for asynchronous LSGD count every round to the end.
  const tether::comm_counters& last = async_leader ? after : mid;
  const double rounds = async_leader ? rounds_all : rounds_in_loop;
  if (completed() > rounds_before) state.counters["ms/round"] = 1e3 * seconds / rounds_in_loop;
  const double sent = static_cast<double>(last.bytes_sent - before.bytes_sent) / rounds;
  const double recv = static_cast<double>(last.bytes_received - before.bytes_received) / rounds;
  const double p = comm.size();
  state.counters["ranks"] = p;
  state.counters["sent/w/round"] = sum_over_ranks(sent) / p;
  state.counters["recv/w/round"] = sum_over_ranks(recv) / p;
  state.counters["sent max"] = max_over_ranks(sent);
  state.counters["recv max"] = max_over_ranks(recv);
  state.counters["model/w/round"] = model_bytes(m, static_cast<double>(n), p);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n * sizeof(float)));
}

/// Times `body(x)` per iteration as round_bench times a step (barrier, slowest rank), on N floats.
template <class Body>
void floor_bench(benchmark::State& state, Body body) {
  auto& comm = *g_comm;
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> x(n);
  tether::rng r(tether::derive_seed(9, static_cast<std::uint64_t>(comm.rank())));
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(r.uniform());
  auto ctx = body.prepare(n);
  for (int w = 0; w < 3; ++w) body.run(ctx, x);
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    body.run(ctx, x);
    state.SetIterationTime(max_over_ranks(MPI_Wtime() - t0));
  }
  state.counters["ranks"] = comm.size();
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n * sizeof(float)));
}

/// The fused kernel of SGD with `Pull`'s force (none: the step alone) over x, a gradient and the pull's
/// buffers, as optimizer::run builds it for a pulled worker between rounds (lr = 0.01, p = comm size).
template <class Pull>
struct kernel_floor {
  struct context {
    std::vector<float> g;
    std::vector<std::vector<float>> b;
  };
  context prepare(std::size_t n) const {
    context c{std::vector<float>(n, 1e-3f), std::vector<std::vector<float>>(Pull::buffers, std::vector<float>(n, 0.5f))};
    return c;
  }
  void run(context& c, std::vector<float>& x) const {
    constexpr bool with_force = Pull::buffers > 0;
    tether::fused_update<tether::step::sgd, Pull, float, true, with_force> k{x.data(), c.g.data(), {}, {},
                                                                             tether::step::sgd{}.prepare<float>(1, 0.01f),
                                                                             {}};
    if constexpr (with_force) {
      k.pc = Pull{}.template prepare<float>(g_comm->size());
      for (std::size_t j = 0; j < Pull::buffers; ++j) k.b[j] = c.b[j].data();
    }
    tether::exec::serial{}.parallel_for(x.size(), k);
  }
};

/// A raw collective on the benchmark's communicator, in place on x: MPI_Allreduce (sum) or MPI_Bcast from
/// rank 0, blocking or non-blocking completed by MPI_Wait.
struct collective_floor {
  bool broadcast;
  bool nonblocking;
  int prepare(std::size_t) const { return 0; }
  void run(int, std::vector<float>& x) const {
    const MPI_Comm c = g_comm->native();
    const int n = static_cast<int>(x.size());
    MPI_Request r = MPI_REQUEST_NULL;
    if (broadcast && nonblocking) MPI_Ibcast(x.data(), n, MPI_FLOAT, 0, c, &r);
    if (broadcast && !nonblocking) MPI_Bcast(x.data(), n, MPI_FLOAT, 0, c);
    if (!broadcast && nonblocking) MPI_Iallreduce(MPI_IN_PLACE, x.data(), n, MPI_FLOAT, MPI_SUM, c, &r);
    if (!broadcast && !nonblocking) MPI_Allreduce(MPI_IN_PLACE, x.data(), n, MPI_FLOAT, MPI_SUM, c);
    if (nonblocking) MPI_Wait(&r, MPI_STATUS_IGNORE);
  }
};

/// An election's raw collective: MPI_Allreduce of one (float, int) pair with MPI_MINLOC (LSGD's 8 bytes).
struct election_floor {
  int prepare(std::size_t) const { return 0; }
  void run(int, std::vector<float>& x) const {
    struct {
      float value;
      int index;
    } in{x[0], g_comm->rank()}, out{};
    MPI_Allreduce(&in, &out, 1, MPI_FLOAT_INT, MPI_MINLOC, g_comm->native());
    x[0] = out.value;
  }
};

/// tether's own collective on the benchmark's communicator, in place on x: comm::mpi::allreduce_sum or
/// broadcast from rank 0 (with the timeout on: what a round calls).
struct tether_floor {
  bool broadcast;
  int prepare(std::size_t) const { return 0; }
  void run(int, std::vector<float>& x) const {
    if (broadcast)
      g_comm->broadcast(std::span<float>(x), 0);
    else
      g_comm->allreduce_sum(std::span<float>(x));
  }
};

constexpr std::int64_t one_m = 1 << 20;
constexpr std::int64_t sixteen_m = 1 << 24;

template <class Opt>
void add(const char* name, typename Opt::options o, model m) {
  for (const std::int64_t n : {one_m, sixteen_m}) {
    benchmark::RegisterBenchmark(name, [o, m](benchmark::State& s) { round_bench<Opt>(s, o, m); })
        ->Arg(n)
        ->Iterations(n == one_m ? 20 : 5)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

template <class Body>
void add_floor(const char* name, Body body) {
  for (const std::int64_t n : {one_m, sixteen_m}) {
    benchmark::RegisterBenchmark(name, [body](benchmark::State& s) { floor_bench(s, body); })
        ->Arg(n)
        ->Iterations(n == one_m ? 20 : 5)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

/// Discards what non-zero ranks would print.
class null_reporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // --blocking: plain blocking MPI calls (comm::mpi timeout 0) instead of non-blocking ones polled against a
  // timeout. Only rank 0 writes a --benchmark_out file.
  std::vector<char*> args(argv, argv + argc);
  const bool blocking = std::find_if(args.begin() + 1, args.end(), [](const char* a) {
                          return std::strcmp(a, "--blocking") == 0;
                        }) != args.end();
  args.erase(std::remove_if(args.begin() + 1, args.end(), [](const char* a) { return std::strcmp(a, "--blocking") == 0; }),
             args.end());
  if (rank != 0)
    args.erase(std::remove_if(args.begin() + 1, args.end(),
                              [](const char* a) { return std::strncmp(a, "--benchmark_out", 15) == 0; }),
               args.end());
  int nargs = static_cast<int>(args.size());
  benchmark::Initialize(&nargs, args.data());
  {
    g_comm = std::make_unique<tether::comm::mpi>(MPI_COMM_WORLD, tether::comm::mpi_options{.timeout = blocking ? 0.0 : 600.0});
    using mpi = tether::comm::mpi;
    add_floor("kernel_sgd", kernel_floor<tether::pull::none>{});
    add_floor("kernel_sgd_leader", kernel_floor<tether::pull::leader>{});
    add_floor("kernel_sgd_elastic", kernel_floor<tether::pull::elastic>{});
    add_floor("raw_allreduce", collective_floor{.broadcast = false, .nonblocking = false});
    add_floor("raw_iallreduce", collective_floor{.broadcast = false, .nonblocking = true});
    add_floor("raw_bcast", collective_floor{.broadcast = true, .nonblocking = false});
    add_floor("raw_ibcast", collective_floor{.broadcast = true, .nonblocking = true});
    add_floor("raw_minloc", election_floor{});
    add_floor("comm_allreduce", tether_floor{.broadcast = false});
    add_floor("comm_bcast", tether_floor{.broadcast = true});
    add<tether::optimizer<tether::step::sgd, tether::pull::none, mpi>>("local_step", {.lr = 0.01}, model::none);
    add<tether::algo::lsgd<mpi>>("lsgd", {.lr = 0.01, .pull = {.period = 1}}, model::leader);
    add<tether::algo::easgd<mpi>>("easgd", {.lr = 0.01, .pull = {.period = 1}}, model::allreduce);
    add<tether::algo::local_sgd<mpi>>("local_sgd", {.lr = 0.01, .pull = {.period = 1}}, model::allreduce);
    add<tether::algo::overlap_local_sgd<mpi>>("overlap_local_sgd", {.lr = 0.01, .pull = {.period = 1}},
                                              model::allreduce);
    add<tether::algo::async_lsgd<>>("async_lsgd", {.lr = 0.01, .pull = {.period = 1}}, model::leader);
    add<tether::algo::async_easgd<>>("async_easgd", {.lr = 0.01, .pull = {.period = 1}}, model::async_center);
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
