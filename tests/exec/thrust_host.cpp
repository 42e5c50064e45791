// exec::thrust on Thrust's host systems against exec::serial: thrust::cpp::par with the user's
// thrust::host_vector buffers, thrust::omp::par with thrust::omp::vector buffers, and thrust::device with
// thrust::device_vector where this translation unit's device system is OpenMP (THRUST_DEVICE_SYSTEM=OMP,
// set by CMake). Bit-exact: thrust::for_each calls the same functor on every element.
#include "equivalence.hpp"
#include "reduce.hpp"

#include <cstddef>
#include <type_traits>
#include <vector>

#include <thrust/copy.h>
#include <thrust/device_vector.h>
#include <thrust/host_vector.h>
#include <thrust/system/omp/vector.h>

#include "tether/exec/thrust.hpp"

namespace {

/// User buffers of a Thrust vector type, handed to tether directly (through buffer_traits).
template <class Vector>
struct thrust_adapter {
  using buffer = Vector;
  buffer make(std::size_t n) const { return buffer(n); }
  // Thrust's sequential copy binds a reference to *begin even for an empty range (UBSan: null reference).
  void upload(buffer& b, const std::vector<float>& v) const {
    if (!v.empty()) thrust::copy(v.begin(), v.end(), b.begin());
  }
  std::vector<float> download(const buffer& b) const {
    std::vector<float> v(b.size());
    if (!v.empty()) thrust::copy(b.begin(), b.end(), v.begin());
    return v;
  }
  buffer& param(buffer& b) const { return b; }
};

}  // namespace

TEMPLATE_LIST_TEST_CASE("exec::thrust_cpp matches exec::serial", "[exec][thrust]", exec_test::all_combos) {
  exec_test::check_equivalent<TestType>(
      tether::exec::thrust_cpp{}, thrust_adapter<thrust::host_vector<float>>{}, exec_test::host_max_ulps);
}

TEMPLATE_LIST_TEST_CASE("exec::thrust_omp matches exec::serial", "[exec][thrust]", exec_test::all_combos) {
  exec_test::check_equivalent<TestType>(
      tether::exec::thrust_omp{}, thrust_adapter<thrust::omp::vector<float>>{}, exec_test::host_max_ulps);
}

TEMPLATE_LIST_TEST_CASE("exec::thrust_device (OpenMP device system) matches exec::serial", "[exec][thrust]",
                        exec_test::all_combos) {
  exec_test::check_equivalent<TestType>(tether::exec::thrust_device{},
                                        thrust_adapter<thrust::device_vector<float>>{},
                                        exec_test::host_max_ulps);
}

TEST_CASE("Thrust vectors are buffers in their system's memory", "[exec][thrust]") {
  using tether::buffer_space_t;
  STATIC_REQUIRE(tether::buffer<thrust::host_vector<float>>);
  STATIC_REQUIRE(tether::buffer<thrust::omp::vector<double>>);
  STATIC_REQUIRE(tether::buffer<thrust::device_vector<float>>);
  STATIC_REQUIRE(std::is_same_v<buffer_space_t<thrust::host_vector<float>>, tether::mem::host>);
  STATIC_REQUIRE(std::is_same_v<buffer_space_t<thrust::omp::vector<float>>, tether::mem::host>);
  STATIC_REQUIRE(
      std::is_same_v<buffer_space_t<thrust::device_vector<float>>, tether::mem::host>);  // OMP system
  STATIC_REQUIRE(std::is_same_v<tether::buffer_value_t<thrust::host_vector<double>>, double>);
  STATIC_REQUIRE(std::is_same_v<tether::exec::thrust_omp::memory_space, tether::mem::host>);
  STATIC_REQUIRE(std::is_same_v<tether::exec::thrust_cpp::memory_space, tether::mem::host>);
  STATIC_REQUIRE(tether::execution_space<tether::exec::thrust_omp>);
  STATIC_REQUIRE(tether::execution_space<tether::exec::thrust_cpp>);

  thrust::host_vector<float> h(5, 1.0f);
  const auto v = tether::as_view(h);
  REQUIRE(v.size() == 5);
  REQUIRE(v.data() == thrust::raw_pointer_cast(h.data()));
}

TEST_CASE("exec::thrust kernels cover every index once and find a predicate", "[exec][thrust]") {
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4099}}) {
    CAPTURE(n);
    const tether::exec::thrust_omp space{};
    std::vector<int> hits(n, 0);
    int* h = hits.data();
    space.parallel_for(n, [h](std::size_t i) { h[i] += 1; });
    for (std::size_t i = 0; i < n; ++i) REQUIRE(hits[i] == 1);
    auto b = space.allocate<float>(n, 1.5f);
    REQUIRE(b.size() == n);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(b[i] == 1.5f);
    REQUIRE_FALSE(space.any(n, [](std::size_t) { return false; }));
    if (n > 0) REQUIRE(space.any(n, [n](std::size_t i) { return i + 1 == n; }));
  }
}

TEST_CASE("exec::thrust reduce on the host systems matches a scalar loop", "[exec][thrust]") {
  exec_test::check_reduce(tether::exec::thrust_cpp{}, exec_test::host_reduce_adapter{});
  exec_test::check_reduce(tether::exec::thrust_omp{}, exec_test::host_reduce_adapter{});
  exec_test::check_reduce(tether::exec::thrust_device{}, exec_test::host_reduce_adapter{});
}
