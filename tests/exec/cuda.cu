// exec::cuda against exec::serial on a GPU: every step x pull combination, N in {0, 1, 7, 1023, 4099}, 4
// workers sharing one GPU (leader copies, centers and averages move device-to-device through the team's
// device collectives), parameters passed as raw device pointers. Compiled with -fmad=false, so the device
// arithmetic is the host's operation for operation (IEEE division and square root are nvcc's defaults) and
// the result must be bit-exact; with FMA contraction (nvcc's default) results differ by rounding only. Also:
// the vectorised fused kernel on misaligned buffers (scalar head and tail around float4 accesses).
#include "cuda_equivalence.cuh"
#include "reduce.hpp"

#include <type_traits>

#include "tether/exec/cuda.hpp"

TEMPLATE_LIST_TEST_CASE("exec::cuda matches exec::serial", "[exec][cuda][gpu]", exec_test::all_combos) {
  if (!exec_test::have_gpu()) {
    WARN("no CUDA device: skipped");
    return;
  }
  exec_test::check_equivalent<TestType>(tether::exec::cuda{}, exec_test::device_adapter<true>{}, 0);
}

TEMPLATE_LIST_TEST_CASE("exec::cuda without vector loads matches exec::serial", "[exec][cuda][gpu]",
                        exec_test::all_combos) {
  if (!exec_test::have_gpu()) return;
  exec_test::check_equivalent<TestType>(tether::exec::cuda{.tuning = {.vectorize = false}},
                                        exec_test::device_adapter<true>{}, 0);
}

TEST_CASE("exec::cuda fused step on buffers at every alignment", "[exec][cuda][gpu]") {
  STATIC_REQUIRE(tether::execution_space<tether::exec::cuda>);
  STATIC_REQUIRE(std::is_same_v<tether::exec::cuda::memory_space, tether::mem::cuda>);
  if (!exec_test::have_gpu()) return;
  // x and g start 0..3 floats past a 16-byte boundary (same or different offsets): every path of the kernel.
  constexpr std::size_t n = 1029;
  for (std::size_t ox = 0; ox < 4; ++ox) {
    for (std::size_t og = 0; og < 4; ++og) {
      CAPTURE(ox, og);
      thrust::device_vector<float> xd(n + 4);
      thrust::device_vector<float> gd(n + 4);
      std::vector<float> x(n);
      std::vector<float> g(n);
      for (std::size_t i = 0; i < n; ++i) {
        x[i] = exec_test::hash_unit(i);
        g[i] = exec_test::hash_unit(i + 7919);
      }
      thrust::copy(x.begin(), x.end(), xd.begin() + static_cast<std::ptrdiff_t>(ox));
      thrust::copy(g.begin(), g.end(), gd.begin() + static_cast<std::ptrdiff_t>(og));
      tether::team team(1);
      team.run([&](tether::team::worker& w) {
        tether::optimizer<tether::step::momentum, tether::pull::none, tether::team::worker,
                          tether::exec::cuda>
            opt(w, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
        for (int t = 0; t < 3; ++t)
          opt.step(tether::as_view<tether::mem::cuda>(thrust::raw_pointer_cast(xd.data()) + ox, n),
                   tether::as_view<tether::mem::cuda>(thrust::raw_pointer_cast(gd.data()) + og, n), 1.0);
      });
      // Reference: three momentum steps by a scalar loop.
      std::vector<float> v(n, 0.0f);
      for (int t = 0; t < 3; ++t) {
        for (std::size_t i = 0; i < n; ++i) {
          v[i] = 0.5f * v[i] + g[i];
          x[i] = x[i] - 0.1f * v[i];
        }
      }
      std::vector<float> got(n);
      thrust::copy(xd.begin() + static_cast<std::ptrdiff_t>(ox),
                   xd.begin() + static_cast<std::ptrdiff_t>(ox + n), got.begin());
      REQUIRE(got == x);
    }
  }
}

namespace {
/// Device buffers for the reduce harness: thrust::device_vector, read through raw pointers.
struct device_reduce_adapter {
  template <class T>
  thrust::device_vector<T> make(const std::vector<T>& v) const {
    return thrust::device_vector<T>(v.begin(), v.end());
  }
  template <class T>
  const T* ptr(const thrust::device_vector<T>& v) const {
    return v.empty() ? nullptr : thrust::raw_pointer_cast(v.data());
  }
};
}  // namespace

TEST_CASE("exec::cuda reduce matches a scalar loop", "[exec][cuda][gpu]") {
  if (!exec_test::have_gpu()) return;
  exec_test::check_reduce(tether::exec::cuda{}, device_reduce_adapter{});
  exec_test::check_reduce(tether::exec::cuda{.tuning = {.block = 96}}, device_reduce_adapter{});
}
