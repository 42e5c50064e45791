// Device adapters of the CUDA equivalence tests (cuda.cu, thrust_cuda.cu): the user's parameters and
// gradients live in GPU memory, the harness's host side copies them in and out around each step.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include "equivalence.hpp"

namespace exec_test {

/// True when a CUDA device can run kernels here (the tests are registered only where configure found one,
/// but a driver can still be missing at run time).
inline bool have_gpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

/// User buffers are thrust::device_vectors; `as_raw` hands them to tether as raw device pointers
/// (tether::as_view<mem::cuda>(p, n)) instead of through buffer_traits.
template <bool AsRaw>
struct device_adapter {
  using buffer = thrust::device_vector<float>;
  buffer make(std::size_t n) const { return buffer(n); }
  void upload(buffer& b, const std::vector<float>& v) const { thrust::copy(v.begin(), v.end(), b.begin()); }
  std::vector<float> download(const buffer& b) const {
    std::vector<float> v(b.size());
    thrust::copy(b.begin(), b.end(), v.begin());
    return v;
  }
  decltype(auto) param(buffer& b) const {
    if constexpr (AsRaw)
      return tether::as_view<tether::mem::cuda>(thrust::raw_pointer_cast(b.data()), b.size());
    else
      return (b);
  }
};

}  // namespace exec_test
