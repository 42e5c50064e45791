// comm::nccl built from comm::mpi (rank 0 makes the NCCL id, MPI broadcasts it). Without a usable GPU every
// rank throws tether::runtime_error naming the CUDA call, and none is left waiting (the ranks still meet in a
// barrier afterwards). With one GPU per rank: host all-reduce, broadcast and election against references
// computed here (the byte counters are checked in gpu.cu, not here).
#include <tether/comm/mpi.hpp>
#include <tether/comm/nccl.hpp>

#include <catch2/catch.hpp>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace {

int visible_devices() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

}  // namespace

TEST_CASE("comm::nccl from comm::mpi", "[nccl][mpi]") {
  tether::comm::mpi host(MPI_COMM_WORLD, {.timeout = 60.0});
  const int p = host.size();
  const int me = host.rank();
  const int devices = visible_devices();
  if (devices == 0) {
    std::string what;
    try {
      tether::comm::nccl c(host, {.timeout = 30.0});
    } catch (const tether::runtime_error& e) {
      what = e.what();
    }
    CAPTURE(what);
    CHECK(what.find("cudaGetDeviceCount failed") != std::string::npos);
    host.barrier();  // every rank came back
    return;
  }
  if (devices < p) {
    WARN("fewer GPUs (" << devices << ") than ranks (" << p << "): NCCL needs one GPU per rank; skipped");
    return;
  }
  tether::comm::nccl c(host, {.timeout = 60.0});
  REQUIRE(c.rank() == me);
  REQUIRE(c.size() == p);

  constexpr std::size_t n = 1000;
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<double>(me + 1) * static_cast<double>(i);
  c.allreduce_sum(std::span<double>(v));
  const double ranks_sum = p * (p + 1) / 2.0;
  for (std::size_t i = 0; i < n; ++i) REQUIRE(v[i] == ranks_sum * static_cast<double>(i));

  std::vector<float> b(n, static_cast<float>(me));
  c.broadcast(std::span<float>(b), p - 1);
  for (float x : b) REQUIRE(x == static_cast<float>(p - 1));

  // Scores: NaN on rank 0, 5 - rank elsewhere, so the last rank wins (with p == 1: nobody).
  const float score = me == 0 ? std::numeric_limits<float>::quiet_NaN() : 5.0f - static_cast<float>(me);
  const auto e = c.min_loc(score);
  if (p == 1) {
    REQUIRE(e.rank == -1);
  } else {
    REQUIRE(e.rank == p - 1);
    REQUIRE(e.score == 5.0f - static_cast<float>(p - 1));
  }
  c.barrier();
}
