// exec::thrust_device (thrust::device, CUDA system) against exec::serial on a GPU: every step x pull
// combination with the user's thrust::device_vector buffers, 4 workers sharing the GPU. Compiled with
// -fmad=false: bit-exact (see cuda.cu).
#include "cuda_equivalence.cuh"

#include <type_traits>

#include "tether/exec/thrust.hpp"

static_assert(TETHER_THRUST_CUDA == 1, "thrust_cuda.cu must be compiled by nvcc with Thrust's CUDA system");

TEMPLATE_LIST_TEST_CASE("exec::thrust_device (CUDA) matches exec::serial", "[exec][thrust][gpu]",
                        exec_test::all_combos) {
  if (!exec_test::have_gpu()) {
    WARN("no CUDA device: skipped");
    return;
  }
  exec_test::check_equivalent<TestType>(tether::exec::thrust_device{}, exec_test::device_adapter<false>{}, 0);
}

TEST_CASE("thrust::device_vector is a buffer in GPU memory", "[exec][thrust][gpu]") {
  STATIC_REQUIRE(std::is_same_v<tether::buffer_space_t<thrust::device_vector<float>>, tether::mem::cuda>);
  STATIC_REQUIRE(std::is_same_v<tether::buffer_space_t<thrust::host_vector<float>>, tether::mem::host>);
  STATIC_REQUIRE(std::is_same_v<tether::exec::thrust_device::memory_space, tether::mem::cuda>);
  STATIC_REQUIRE(tether::execution_space<tether::exec::thrust_device>);
}
