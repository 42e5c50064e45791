// The pull skeleton of docs/concepts.md (toward_mean), unchanged, on the GPU: exec::thrust_device (Thrust's
// CUDA system) over thrust::device_vector buffers, and exec::cuda over the same device memory seen as
// tether::view<float, mem::cuda>; against the two-worker scalar reference of pull_skeleton.hpp. Compiled
// wherever nvcc is found, run where a GPU is (label gpu).
#include <catch2/catch.hpp>

#include <cstddef>
#include <vector>

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include "pull_skeleton.hpp"
#include "tether/exec/cuda.hpp"
#include "tether/exec/thrust.hpp"

namespace {

struct device_vectors {
  using buffer = thrust::device_vector<float>;
  buffer make(std::size_t n) const { return buffer(n); }
  void upload(buffer& b, const std::vector<float>& v) const { thrust::copy(v.begin(), v.end(), b.begin()); }
  std::vector<float> download(const buffer& b) const {
    std::vector<float> v(b.size());
    thrust::copy(b.begin(), b.end(), v.begin());
    return v;
  }
  buffer& param(buffer& b) const { return b; }
};

struct cuda_views : device_vectors {
  tether::view<float, tether::mem::cuda> param(buffer& b) const {
    return tether::as_view<tether::mem::cuda>(thrust::raw_pointer_cast(b.data()), b.size());
  }
};

}  // namespace

TEST_CASE("pull skeleton on exec::thrust_device over thrust::device_vector (CUDA)", "[examples][gpu]") {
  STATIC_REQUIRE(std::is_same_v<tether::exec::thrust_device::memory_space, tether::mem::cuda>);
  skel::check_toward_mean(tether::exec::thrust_device{}, device_vectors{});
}

TEST_CASE("pull skeleton on exec::cuda over device memory", "[examples][gpu]") {
  skel::check_toward_mean(tether::exec::cuda{}, cuda_views{});
}
