// comm::nccl on GPUs (label gpu; disabled unless configure found a GPU). NCCL cannot put two ranks of one
// communicator on one GPU, so:
//   - always (one GPU is enough): a communicator of size 1, every collective on host and device buffers, the
//     stream ordering of the device collectives with a kernel queued before them, and the byte counters;
//   - with 2 or more GPUs: a team of min(4, GPUs) threads, one GPU each: all-reduce, broadcast, non-blocking
//     all-reduce and election against references computed on the host, groups (ncclCommSplit, sharing the
//     parent's stream), request::test() polled to completion, device collectives that return with NCCL done,
//     and LSGD and grouped LSGD (local leaders) on a noisy quadratic where every worker reaches the optimum.
// The output says which parts ran. No Catch2 assertion runs on a worker thread: results are recorded and
// checked after team.run().
#include <tether/algo/lsgd.hpp>
#include <tether/comm/nccl.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/schedule.hpp>
#include <tether/exec/cuda.hpp>
#include <tether/problems/quadratic.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <span>
#include <vector>

namespace {

using tether::comm::nccl;

int visible_devices() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

void check(cudaError_t e) {
  if (e != cudaSuccess) throw tether::runtime_error(cudaGetErrorString(e));
}

/// A device copy of `h`.
template <class T>
tether::exec::detail::device_buffer<T> to_device(const std::vector<T>& h) {
  tether::exec::detail::device_buffer<T> d(h.size());
  check(cudaMemcpy(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <class T>
std::vector<T> to_host(const T* d, std::size_t n) {
  std::vector<T> h(n);
  check(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

/// The all-reduce bytes of comm::mpi's model: 2 * (n - this rank's share) * s.
std::uint64_t allreduce_model(std::size_t n, std::size_t s, int rank, int p) {
  const auto r = static_cast<std::size_t>(rank);
  const auto q = static_cast<std::size_t>(p);
  return 2 * static_cast<std::uint64_t>(n - (n * (r + 1) / q - n * r / q)) * s;
}

/// v[i] = value(i): the value of every worker's element i, exact in float.
float value(int rank, std::size_t i) {
  return static_cast<float>(rank * 1000) + static_cast<float>(i % 997);
}

using quadratic = tether::problems::quadratic<float>;

/// Trains `Opt` (LSGD or grouped LSGD on comm::nccl + exec::cuda) on `problem` with a team of p workers, one
/// GPU each, and returns every worker's final parameters.
template <class Opt>
std::vector<std::vector<float>> train(tether::team& team, int p, int group_size, const quadratic& problem,
                                      typename Opt::options o) {
  const std::size_t dim = problem.dimension();
  std::vector<std::vector<float>> final_x(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    nccl c(w, {.timeout = 120.0, .group_size = group_size});
    cudaStream_t s = nullptr;
    check(cudaStreamCreate(&s));
    tether::exec::cuda gpu{.stream = s};
    std::vector<float> xh(dim);
    std::vector<float> gh(dim);
    for (std::size_t i = 0; i < dim; ++i)
      xh[i] = 3.0f * static_cast<float>(w.rank() + 1) - static_cast<float>(i);
    auto x = to_device(xh);
    tether::exec::detail::device_buffer<float> g(dim);
    Opt opt(c, dim, o, gpu);
    for (std::uint64_t t = 0; t < 3000; ++t) {
      gpu.fence();
      check(cudaMemcpy(xh.data(), x.data(), dim * sizeof(float), cudaMemcpyDeviceToHost));
      const double loss = problem.evaluate(xh, gh, {.seed = t * 16 + static_cast<std::uint64_t>(w.rank())});
      check(cudaMemcpy(g.data(), gh.data(), dim * sizeof(float), cudaMemcpyHostToDevice));
      opt.step(tether::as_view<tether::mem::cuda>(x.data(), dim),
               tether::as_view<tether::mem::cuda>(g.data(), dim), loss);
    }
    gpu.fence();
    final_x[static_cast<std::size_t>(w.rank())] = to_host(x.data(), dim);
    check(cudaStreamDestroy(s));
  });
  return final_x;
}

double decay(std::uint64_t t, double base) {
  return base / (1.0 + static_cast<double>(t) / 40.0);
}

}  // namespace

TEST_CASE("comm::nccl, one worker: collectives, stream order, counters", "[nccl][gpu]") {
  if (visible_devices() == 0) {
    WARN("no CUDA device: skipped");
    return;
  }
  std::printf("comm::nccl GPU test: size-1 checks on device 0\n");
  nccl c(nccl::unique_id(), 1, 0, {.timeout = 60.0});
  REQUIRE(c.rank() == 0);
  REQUIRE(c.size() == 1);
  REQUIRE(c.device() == 0);
  REQUIRE(&c.group() == &c);

  constexpr std::size_t n = 4099;
  std::vector<float> h(n);
  for (std::size_t i = 0; i < n; ++i) h[i] = value(0, i);

  // Host collectives leave one worker's values as they are.
  auto a = h;
  c.allreduce_sum(std::span<float>(a));
  REQUIRE(a == h);
  std::vector<double> hd(n, 2.5);
  c.allreduce_sum(std::span<double>(hd));
  REQUIRE(std::all_of(hd.begin(), hd.end(), [](double v) { return v == 2.5; }));
  c.broadcast(std::span<float>(a), 0);
  REQUIRE(a == h);
  std::vector<float> recv(n, -1.0f);
  auto r = c.iallreduce_sum(std::span<const float>(h), std::span<float>(recv));
  r.wait();
  REQUIRE(recv == h);

  // Device collectives, stream-ordered after a copy queued on the execution space's stream: the all-reduce
  // must see the copied values, and a later copy on the same stream must see its result.
  cudaStream_t s = nullptr;
  check(cudaStreamCreate(&s));
  tether::exec::cuda gpu{.stream = s};
  auto src = to_device(h);
  tether::exec::detail::device_buffer<float> x(n);
  tether::exec::detail::device_buffer<float> y(n);
  check(cudaMemcpyAsync(x.data(), src.data(), n * sizeof(float), cudaMemcpyDeviceToDevice, s));
  c.allreduce_sum(gpu, tether::as_view<tether::mem::cuda>(x.data(), n));
  // A device collective returns with NCCL done (a bounded host wait), so neither stream has work left.
  REQUIRE(cudaStreamQuery(c.stream()) == cudaSuccess);
  REQUIRE(cudaStreamQuery(s) == cudaSuccess);
  c.broadcast(gpu, tether::as_view<tether::mem::cuda>(x.data(), n), 0);
  check(cudaMemcpyAsync(y.data(), x.data(), n * sizeof(float), cudaMemcpyDeviceToDevice, s));
  gpu.fence();
  REQUIRE(to_host(y.data(), n) == h);
  tether::exec::detail::device_buffer<float> z(n);
  auto rd = c.iallreduce_sum(gpu, tether::view<const float, tether::mem::cuda>{x.data(), n},
                             tether::as_view<tether::mem::cuda>(z.data(), n));
  rd.wait();
  REQUIRE(to_host(z.data(), n) == h);
  // test() polled to completion (it polls NCCL's state and the timeout too) reaches the same result.
  tether::exec::detail::device_buffer<float> z2(n);
  auto rt = c.iallreduce_sum(gpu, tether::view<const float, tether::mem::cuda>{x.data(), n},
                             tether::as_view<tether::mem::cuda>(z2.data(), n));
  while (!rt.test()) {
  }
  rt.wait();
  REQUIRE(to_host(z2.data(), n) == h);

  // Elections: a finite score wins alone; a non-finite one elects nobody.
  const auto e = c.min_loc(1.5f);
  REQUIRE(e.rank == 0);
  REQUIRE(e.score == 1.5f);
  REQUIRE(c.min_loc(std::numeric_limits<float>::quiet_NaN()).rank == -1);
  c.barrier();
  c.check_consistent(42, "a value");

  // Counters: a worker alone moves no payload in all-reduces and broadcasts; each of the two elections counts
  // 16 bytes each way (two 8-byte keys).
  REQUIRE(c.counters().bytes_sent == 32);
  REQUIRE(c.counters().bytes_received == 32);
  check(cudaStreamDestroy(s));
}

TEST_CASE("comm::nccl, one GPU per thread: collectives against host references; LSGD reaches the optimum",
          "[nccl][gpu]") {
  const int devices = visible_devices();
  if (devices < 2) {
    WARN("comm::nccl multi-worker checks skipped: " << devices << " GPU(s), NCCL needs one GPU per worker");
    std::printf("comm::nccl GPU test: multi-worker checks skipped (%d GPU)\n", devices);
    return;
  }
  const int p = std::min(4, devices);
  std::printf("comm::nccl GPU test: multi-worker checks on %d GPUs\n", p);
  constexpr std::size_t n = 10007;
  const int group_size = p % 2 == 0 ? 2 : 1;

  struct result {
    int rank = -1, size = 0, device = -1, group_size = 0, group_rank = -1;
    bool shared_stream = false, idle_after_collective = false;
    std::vector<double> host_sum;
    std::vector<float> dev_sum, dev_isum, dev_bcast, group_sum;
    tether::election elected;
    std::uint64_t sent = 0, received = 0;
  };
  std::vector<result> res(static_cast<std::size_t>(p));
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    auto& out = res[static_cast<std::size_t>(w.rank())];
    nccl c(w, {.timeout = 120.0, .group_size = group_size});
    out.rank = c.rank();
    out.size = c.size();
    out.device = c.device();
    out.group_size = c.group().size();
    out.group_rank = c.group().rank();
    out.shared_stream = c.group().stream() == c.stream();
    cudaStream_t s = nullptr;
    check(cudaStreamCreate(&s));
    tether::exec::cuda gpu{.stream = s};

    std::vector<double> hd(n);
    for (std::size_t i = 0; i < n; ++i) hd[i] = static_cast<double>(value(c.rank(), i)) + 0.25;
    c.allreduce_sum(std::span<double>(hd));
    out.host_sum = hd;

    std::vector<float> h(n);
    for (std::size_t i = 0; i < n; ++i) h[i] = value(c.rank(), i);
    auto x = to_device(h);
    c.allreduce_sum(gpu, tether::as_view<tether::mem::cuda>(x.data(), n));
    out.idle_after_collective = cudaStreamQuery(c.stream()) == cudaSuccess;
    gpu.fence();
    out.dev_sum = to_host(x.data(), n);

    auto send = to_device(h);
    tether::exec::detail::device_buffer<float> recv(n);
    auto r = c.iallreduce_sum(gpu, tether::view<const float, tether::mem::cuda>{send.data(), n},
                              tether::as_view<tether::mem::cuda>(recv.data(), n));
    while (!r.test()) {
    }
    r.wait();
    out.dev_isum = to_host(recv.data(), n);

    auto b = to_device(h);
    c.broadcast(gpu, tether::as_view<tether::mem::cuda>(b.data(), n), p - 1);
    gpu.fence();
    out.dev_bcast = to_host(b.data(), n);

    auto g = to_device(h);
    c.group().allreduce_sum(gpu, tether::as_view<tether::mem::cuda>(g.data(), n));
    gpu.fence();
    out.group_sum = to_host(g.data(), n);

    // Scores: NaN on rank 0, 2 on every other rank: the lowest finite rank (1) wins the tie.
    out.elected = c.min_loc(c.rank() == 0 ? std::numeric_limits<float>::quiet_NaN() : 2.0f);
    c.barrier();
    out.sent = c.counters().bytes_sent;
    out.received = c.counters().bytes_received;
    check(cudaStreamDestroy(s));
  });

  for (int rank = 0; rank < p; ++rank) {
    const auto& o = res[static_cast<std::size_t>(rank)];
    CAPTURE(rank);
    REQUIRE(o.rank == rank);
    REQUIRE(o.size == p);
    REQUIRE(o.device == rank);
    REQUIRE(o.group_size == group_size);
    REQUIRE(o.group_rank == rank % group_size);
    REQUIRE(o.shared_stream);
    REQUIRE(o.idle_after_collective);
    const int g0 = rank / group_size * group_size;
    for (std::size_t i = 0; i < n; ++i) {
      double hs = 0.0;
      float fs = 0.0f;
      float gs = 0.0f;
      for (int q = 0; q < p; ++q) {
        hs += static_cast<double>(value(q, i)) + 0.25;
        fs += value(q, i);  // exact: integers below 2^24
        if (q >= g0 && q < g0 + group_size) gs += value(q, i);
      }
      REQUIRE(o.host_sum[i] == Approx(hs).epsilon(1e-15));
      REQUIRE(o.dev_sum[i] == fs);
      REQUIRE(o.dev_isum[i] == fs);
      REQUIRE(o.dev_bcast[i] == value(p - 1, i));
      REQUIRE(o.group_sum[i] == gs);
    }
    REQUIRE(o.elected.rank == 1);
    REQUIRE(o.elected.score == 2.0f);
    // Bytes (comm::mpi's model): host all-reduce of doubles, device all-reduce and iallreduce of floats, the
    // broadcast from p-1, the group all-reduce, one election (8 each way); the barrier is not counted.
    const std::uint64_t reduces = allreduce_model(n, 8, rank, p) + 2 * allreduce_model(n, 4, rank, p) +
                                  allreduce_model(n, 4, rank % group_size, group_size);
    const std::uint64_t bsent = rank == p - 1 ? static_cast<std::uint64_t>(p - 1) * n * 4 : 0;
    const std::uint64_t brecv = rank == p - 1 ? 0 : n * 4;
    REQUIRE(o.sent == reduces + bsent + 8);
    REQUIRE(o.received == reduces + brecv + 8);
  }

  // LSGD, and grouped LSGD (local leaders in groups of group_size, the group's broadcasts and the parent's
  // elections on one stream), on a noisy quadratic, parameters on each worker's GPU: every worker reaches the
  // optimum.
  constexpr std::size_t dim = 8;
  const quadratic problem(dim, {.a_min = 1.0, .a_max = 4.0, .noise = 0.5, .seed = 5});
  using lsgd = tether::algo::lsgd<nccl, tether::step::sgd, tether::exec::cuda>;
  using grouped = tether::algo::lsgd_grouped<nccl, tether::step::sgd, tether::exec::cuda>;
  const auto flat = train<lsgd>(team, p, 0, problem,
                                {.lr = 0.2,
                                 .pull = {.period = 4, .strength = 0.1f, .jump = 0.05f},
                                 .schedule = tether::schedule::custom(decay)});
  const auto local = train<grouped>(team, p, group_size, problem,
                                    {.lr = 0.2,
                                     .pull = {.period = 4,
                                              .strength = 0.1f,
                                              .global_period = 8,
                                              .global_strength = 0.1f,
                                              .jump = 0.05f,
                                              .global_jump = 0.05f},
                                     .schedule = tether::schedule::custom(decay)});
  std::printf("comm::nccl GPU test: LSGD and grouped LSGD (group_size %d) on %d GPUs\n", group_size, p);
  const auto optimum = problem.optimum();
  for (int rank = 0; rank < p; ++rank) {
    CAPTURE(rank);
    for (std::size_t i = 0; i < dim; ++i) {
      REQUIRE(flat[static_cast<std::size_t>(rank)][i] == Approx(optimum[i]).margin(0.05));
      REQUIRE(local[static_cast<std::size_t>(rank)][i] == Approx(optimum[i]).margin(0.05));
    }
  }
}
