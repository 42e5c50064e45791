// exec::cuda and exec::thrust on CUDA against exec::serial: the same message bytes and decoded values, bit
// for bit, with messages and values in GPU memory (headers read through copy_to_host). Compiled with
// -fmad=false, so the decoder's lo + q*delta is not an FMA (the message bytes never depend on it). Runs where
// a GPU is.
#include <cuda_runtime_api.h>

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include "equivalence.hpp"
#include "tether/exec/cuda.hpp"
#include "tether/exec/thrust.hpp"

namespace {

bool have_gpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

/// thrust::device_vector buffers, handed to the codecs as views of GPU memory.
struct device_adapter {
  template <class T>
  thrust::device_vector<T> make(std::size_t n) const {
    return thrust::device_vector<T>(n);
  }
  template <class T>
  void upload(thrust::device_vector<T>& b, const std::vector<T>& v) const {
    if (!v.empty()) thrust::copy(v.begin(), v.end(), b.begin());
  }
  template <class T>
  std::vector<T> download(const thrust::device_vector<T>& b) const {
    std::vector<T> v(b.size());
    if (!v.empty()) thrust::copy(b.begin(), b.end(), v.begin());
    return v;
  }
  template <class T>
  tether::view<T, tether::mem::cuda> view(thrust::device_vector<T>& b) const {
    return {b.empty() ? nullptr : thrust::raw_pointer_cast(b.data()), b.size()};
  }
  template <class T>
  tether::view<const T, tether::mem::cuda> cview(thrust::device_vector<T>& b) const {
    return {b.empty() ? nullptr : thrust::raw_pointer_cast(b.data()), b.size()};
  }
};

}  // namespace

TEMPLATE_TEST_CASE("codecs on exec::cuda match exec::serial", "[codec][cuda][gpu]", float, double) {
  if (!have_gpu()) {
    WARN("no CUDA device: skipped");
    return;
  }
  codec_test::check_space<TestType>(tether::exec::cuda{}, device_adapter{});
}

TEMPLATE_TEST_CASE("codecs on exec::thrust_device (CUDA) match exec::serial", "[codec][thrust][gpu]", float,
                   double) {
  if (!have_gpu()) return;
  codec_test::check_space<TestType>(tether::exec::thrust_device{}, device_adapter{});
}

TEST_CASE("a corrupt message in GPU memory: tether::error, output untouched", "[codec][cuda][gpu]") {
  if (!have_gpu()) return;
  namespace cd = tether::codec;
  const cd::stochastic_uniform<float> q({.bits = 4, .block = 64});
  const auto x = codec_test::values<float>(1000, 1);
  device_adapter ad;
  auto xd = ad.make<float>(1000);
  auto out = ad.make<float>(1000);
  auto msg = ad.make<std::byte>(q.encoded_size(1000));
  ad.upload(xd, x);
  tether::exec::cuda gpu;
  q.encode(gpu, ad.cview(xd), ad.view(msg), 5);
  thrust::fill(out.begin(), out.end(), -1.0f);
  const float nan = NAN;
  cudaMemcpy(thrust::raw_pointer_cast(msg.data()) + 20 + 4 * 3, &nan, 4, cudaMemcpyHostToDevice);
  REQUIRE_THROWS_WITH(q.decode(gpu, ad.cview(msg), ad.view(out)), Catch::Contains("block 3"));
  msg[5] = std::byte{4};
  REQUIRE_THROWS_WITH(q.decode(gpu, ad.cview(msg), ad.view(out)), Catch::Contains("kind"));
  for (float v : ad.download(out)) REQUIRE(v == -1.0f);
}
