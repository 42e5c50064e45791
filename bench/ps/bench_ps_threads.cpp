/// \file
/// bench_ps_threads: the parameter server on the thread team (docs/benchmarks.md, "Downpour").
///
/// 1. The shard's update kernel: `ps::shard<Step>::apply` (what a shard runs on a push) against the optimizer's
///    own `fused_update<Step, pull::none>` on the same buffers (the shard's) and a STREAM-style copy, N = 2^24 floats, for SGD,
///    Adagrad and Adam: bytes/s and `pct_of_copy` with the byte model of docs/benchmarks.md (SGD 12, Adagrad 20,
///    Adam 28 bytes per element; copy 8).
/// 2. The store's throughput: R replica threads (1, 2, 4, 8) pushing or fetching N = 2^22 floats on a store of S
///    shards (1, 2, 4, 8), Adagrad on the shards, asynchronous consistency; pushes or fetches per second (items)
///    and the payload's GB/s (N*s per operation, summed over the replicas), next to `plain_copy`: the same R
///    threads each copying N floats (the payload of a fetch) in the same run. `x_copy` = store GB/s / copy GB/s
///    (the copy of R threads measured at startup, median of 5).
/// 3. The alternative placement, measured to choose: dedicated shard threads (`shard_threads/push`): a push copies
///    each slice into the shard's inbox and the shard's own thread applies it. Both push rows also report
///    `cpu_ms_per_op`: the CPU the whole process spent per push (shard threads included), which the machine's
///    other load does not stretch as it stretches wall time.
///
///     bench_ps_threads --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
///
/// Wall time (UseRealTime) for the threaded rows; CPU time of the calling thread for the kernels.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <tether/tether.hpp>

#if defined(__GNUC__) && !defined(__clang__)
#define TETHER_BENCH_PLAIN_LOOP __attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))
#else
#define TETHER_BENCH_PLAIN_LOOP __attribute__((noinline))
#endif

namespace {

using T = float;
using exec_t = tether::exec::serial;

constexpr std::size_t kernel_n = std::size_t{1} << 24;
constexpr std::size_t store_n = std::size_t{1} << 22;

/// STREAM copy with ordinary stores.
TETHER_BENCH_PLAIN_LOOP void stream_copy(const T* __restrict src, T* __restrict dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
}

std::vector<T> filled(std::size_t n, T base) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = base + T(static_cast<std::uint32_t>(i * 2654435761u) >> 22) / T(4096);
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// 1. Kernels

double copy_bandwidth_single = 0.0;  // bytes/s of one thread's copy at kernel_n (startup, median of 9)

double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void count_kernel(benchmark::State& state, double bytes_per_elem) {
  const double bytes = bytes_per_elem * static_cast<double>(kernel_n) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["pct_of_copy"] = benchmark::Counter(bytes / copy_bandwidth_single * 100.0, benchmark::Counter::kIsRate);
}

struct kernel_buffers {
  std::vector<T> g = filled(kernel_n, T(0.5));
  std::vector<T> dst = filled(kernel_n, T(0.125));
};
kernel_buffers& kbuf() {
  static kernel_buffers b;
  return b;
}

/// One shard per step policy, shared by the fused and the shard benchmark of that policy: both run on the same
/// buffers (where a buffer lands in physical memory changes a memory-bound kernel's speed by up to 2x on this
/// machine, so kernels are only compared on identical buffers).
template <class Step>
tether::ps::shard<Step, exec_t, T>& shard_of() {
  static tether::ps::shard<Step, exec_t, T> s = [] {
    tether::ps::shard<Step, exec_t, T> sh(exec_t{}, Step{}, kernel_n);
    sh.assign(filled(kernel_n, T(1)).data());
    return sh;
  }();
  return s;
}

void BM_copy(benchmark::State& state) {
  auto& b = kbuf();
  for (auto _ : state) {
    stream_copy(b.g.data(), b.dst.data(), kernel_n);
    benchmark::ClobberMemory();
  }
  count_kernel(state, 8.0);
}

/// The optimizer's kernel, as bench_fused and optimizer::step run it, on the shard's own buffers.
template <class Step>
void BM_fused(benchmark::State& state, double bytes) {
  auto& sh = shard_of<Step>();
  Step step;
  tether::fused_update<Step, tether::pull::none, T, true, false> k{sh.parameters().data(), kbuf().g.data(), {}, {},
                                                                  {}, {}};
  for (std::size_t j = 0; j < Step::state_size; ++j) k.s[j] = sh.state(j).data();
  std::uint64_t t = 0;
  for (auto _ : state) {
    k.sc = step.prepare(++t, T(1e-6));
    exec_t{}.parallel_for(kernel_n, k);
    benchmark::ClobberMemory();
  }
  count_kernel(state, bytes);
}

/// A shard's update: ps::shard<Step>::apply, what a push runs on each shard.
template <class Step>
void BM_shard(benchmark::State& state, double bytes) {
  auto& sh = shard_of<Step>();
  for (auto _ : state) {
    sh.apply(kbuf().g.data(), T(1e-6));
    benchmark::ClobberMemory();
  }
  count_kernel(state, bytes);
}

// ---------------------------------------------------------------------------------------------------------
// 2. The team store

using server_t = tether::ps::detail_team::server<tether::step::adagrad, exec_t, T>;

std::unique_ptr<server_t> g_server;
std::vector<std::vector<T>> g_x;  // per replica thread
std::vector<std::vector<T>> g_g;
std::map<int, double> copy_bandwidth;  // R -> bytes/s of R threads each copying store_n floats (startup)

void make_store(const benchmark::State& state) {
  const int r = state.threads();
  g_server = std::make_unique<server_t>(exec_t{}, tether::step::adagrad{}, store_n, r,
                                        tether::ps::store_options{.shards = static_cast<std::size_t>(state.range(0))});
  g_x.assign(static_cast<std::size_t>(r), filled(store_n, T(1)));
  g_g.assign(static_cast<std::size_t>(r), filled(store_n, T(1e-3)));
  double w = 0.0;
  g_server->join(0, g_x[0].data(), w);  // replica 0 initialises the shards
}
void drop_store(const benchmark::State&) {
  g_server.reset();
  g_x.clear();
  g_g.clear();
}

/// CPU time of the whole process (every thread: the replicas' and, for the alternative, the shard threads').
double process_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// The CPU the process spent per operation over a loop that started at `cpu0` (each thread sees the whole
/// process; averaged over the threads): robust to the machine's other load, which only stretches wall time.
void count_cpu(benchmark::State& state, double cpu0) {
  const double ops = static_cast<double>(state.iterations()) * state.threads();
  state.counters["cpu_ms_per_op"] =
      benchmark::Counter((process_seconds() - cpu0) * 1e3 / ops, benchmark::Counter::kAvgThreads);
}

void count_store(benchmark::State& state) {
  const double bytes = static_cast<double>(store_n * sizeof(T)) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  const double copy = copy_bandwidth.at(state.threads());
  // Summed over the threads and divided by the wall time: (total bytes / copy) / time = achieved / copy.
  state.counters["x_copy"] = benchmark::Counter(bytes / copy, benchmark::Counter::kIsRate);
  state.counters["shards"] = static_cast<double>(state.range(0));
}

void BM_store_push(benchmark::State& state) {
  const auto r = static_cast<std::size_t>(state.thread_index());
  const double cpu0 = process_seconds();
  for (auto _ : state) g_server->push(static_cast<int>(r), g_g[r].data(), T(1e-6));
  count_cpu(state, cpu0);
  count_store(state);
}

void BM_store_fetch(benchmark::State& state) {
  const auto r = static_cast<std::size_t>(state.thread_index());
  std::vector<std::uint64_t> versions(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    g_server->fetch(static_cast<int>(r), g_x[r].data(), versions);
    benchmark::ClobberMemory();
  }
  count_store(state);
}

void BM_plain_copy(benchmark::State& state) {
  const auto r = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    stream_copy(g_g[r].data(), g_x[r].data(), store_n);
    benchmark::ClobberMemory();
  }
  count_store(state);
}

void make_copy_buffers(const benchmark::State& state) {
  g_x.assign(static_cast<std::size_t>(state.threads()), filled(store_n, T(1)));
  g_g.assign(static_cast<std::size_t>(state.threads()), filled(store_n, T(1e-3)));
}

/// R threads each copying store_n floats, median of 5 timings of 8 copies: bytes/s of the payload.
double measure_copy(int threads) {
  std::vector<std::vector<T>> src(static_cast<std::size_t>(threads), filled(store_n, T(1)));
  std::vector<std::vector<T>> dst(static_cast<std::size_t>(threads), std::vector<T>(store_n));
  std::vector<double> samples;
  for (int s = 0; s < 5; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> team;
    for (int t = 0; t < threads; ++t)
      team.emplace_back([&, t] {
        for (int k = 0; k < 8; ++k) stream_copy(src[static_cast<std::size_t>(t)].data(), dst[static_cast<std::size_t>(t)].data(), store_n);
      });
    for (auto& th : team) th.join();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    samples.push_back(8.0 * threads * static_cast<double>(store_n * sizeof(T)) / sec);
  }
  std::nth_element(samples.begin(), samples.begin() + 2, samples.end());
  return samples[2];
}

// ---------------------------------------------------------------------------------------------------------
// 3. Dedicated shard threads (the alternative placement, bench-only)

/// S shard threads; a push copies each slice into the shard's inbox slot of its replica and queues it; the
/// shard's thread applies the slot with the same shard kernel. A replica reuses its slot once it was applied.
class shard_threads {
 public:
  shard_threads(std::size_t n, std::size_t shards, int replicas) : layout_(n, shards) {
    for (std::size_t s = 0; s < shards; ++s) {
      auto sh = std::make_unique<one>(layout_.count(s), replicas);
      parts_.push_back(std::move(sh));
    }
    for (std::size_t s = 0; s < shards; ++s) threads_.emplace_back([this, s] { run(*parts_[s]); });
  }
  ~shard_threads() {
    for (auto& p : parts_) {
      std::lock_guard lk(p->m);
      p->stop = true;
      p->cv.notify_all();
    }
    for (auto& t : threads_) t.join();
  }

  void push(int r, const T* g) {
    for (std::size_t s = 0; s < parts_.size(); ++s) {
      auto& p = *parts_[s];
      auto& slot = p.inbox[static_cast<std::size_t>(r)];
      std::unique_lock lk(p.m);
      p.cv.wait(lk, [&] { return !p.busy[static_cast<std::size_t>(r)]; });
      lk.unlock();
      std::copy(g + layout_.begin(s), g + layout_.end(s), slot.begin());
      lk.lock();
      p.busy[static_cast<std::size_t>(r)] = 1;
      p.queue.push_back(r);
      p.cv.notify_all();
    }
  }

 private:
  struct one {
    one(std::size_t count, int replicas)
        : data(exec_t{}, tether::step::adagrad{}, count),
          inbox(static_cast<std::size_t>(replicas), std::vector<T>(count, T(0))),
          busy(static_cast<std::size_t>(replicas), 0) {}
    tether::ps::shard<tether::step::adagrad, exec_t, T> data;
    std::vector<std::vector<T>> inbox;
    std::vector<char> busy;
    std::deque<int> queue;
    std::mutex m;
    std::condition_variable cv;
    bool stop = false;
  };
  static void run(one& p) {
    std::unique_lock lk(p.m);
    for (;;) {
      p.cv.wait(lk, [&] { return p.stop || !p.queue.empty(); });
      if (p.queue.empty()) return;
      const int r = p.queue.front();
      p.queue.pop_front();
      lk.unlock();
      p.data.apply(p.inbox[static_cast<std::size_t>(r)].data(), T(1e-6));
      lk.lock();
      p.busy[static_cast<std::size_t>(r)] = 0;
      p.cv.notify_all();
    }
  }
  tether::shard_layout layout_;
  std::vector<std::unique_ptr<one>> parts_;
  std::vector<std::thread> threads_;
};

std::unique_ptr<shard_threads> g_threads;
void make_shard_threads(const benchmark::State& state) {
  g_threads = std::make_unique<shard_threads>(store_n, static_cast<std::size_t>(state.range(0)), state.threads());
  g_g.assign(static_cast<std::size_t>(state.threads()), filled(store_n, T(1e-3)));
}
void drop_shard_threads(const benchmark::State&) {
  g_threads.reset();
  g_g.clear();
}
void BM_shard_threads_push(benchmark::State& state) {
  const auto r = state.thread_index();
  const double cpu0 = process_seconds();
  for (auto _ : state) g_threads->push(r, g_g[static_cast<std::size_t>(r)].data());
  count_cpu(state, cpu0);
  count_store(state);
}

/// Shards S (the argument) x replica threads R.
void store_args(benchmark::internal::Benchmark* b) {
  b->ArgName("S");
  for (int s : {1, 2, 4, 8}) b->Arg(s);
  for (int r : {1, 2, 4, 8}) b->Threads(r);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  {
    auto& b = kbuf();
    std::vector<double> bw;
    stream_copy(b.g.data(), b.dst.data(), kernel_n);
    for (int s = 0; s < 9; ++s) {
      const double t0 = thread_seconds();
      for (int k = 0; k < 2; ++k) stream_copy(b.g.data(), b.dst.data(), kernel_n);
      bw.push_back(16.0 * static_cast<double>(kernel_n) / (thread_seconds() - t0));
    }
    std::nth_element(bw.begin(), bw.begin() + 4, bw.end());
    copy_bandwidth_single = bw[4];
    benchmark::AddCustomContext("copy_GBps_N" + std::to_string(kernel_n), std::to_string(copy_bandwidth_single * 1e-9));
    for (int r : {1, 2, 4, 8}) {
      copy_bandwidth[r] = measure_copy(r);
      benchmark::AddCustomContext("copy_GBps_threads" + std::to_string(r), std::to_string(copy_bandwidth[r] * 1e-9));
    }
  }
  benchmark::RegisterBenchmark("kernel/copy", BM_copy)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kernel/fused/sgd", BM_fused<tether::step::sgd>, 12.0)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kernel/shard/sgd", BM_shard<tether::step::sgd>, 12.0)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kernel/fused/adagrad", BM_fused<tether::step::adagrad>, 20.0)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kernel/shard/adagrad", BM_shard<tether::step::adagrad>, 20.0)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kernel/fused/adam", BM_fused<tether::step::adam>, 28.0)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kernel/shard/adam", BM_shard<tether::step::adam>, 28.0)->Unit(benchmark::kMillisecond);
  for (int r : {1, 2, 4, 8})
    benchmark::RegisterBenchmark("plain_copy", BM_plain_copy)
        ->ArgName("S")
        ->Arg(0)
        ->Threads(r)
        ->Setup(make_copy_buffers)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("store/push", BM_store_push)
      ->Apply(store_args)
      ->Setup(make_store)
      ->Teardown(drop_store)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("store/fetch", BM_store_fetch)
      ->Apply(store_args)
      ->Setup(make_store)
      ->Teardown(drop_store)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("shard_threads/push", BM_shard_threads_push)
      ->Apply(store_args)
      ->Setup(make_shard_threads)
      ->Teardown(drop_shard_threads)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
