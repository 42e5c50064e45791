// exec::kokkos<Kokkos::Serial> against exec::serial: every step x pull combination with the user's
// Kokkos::View buffers (host space). Kokkos is initialised once for the test run (a Catch2 listener).
// Bit-exact: Kokkos::parallel_for calls the same functor on every element.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "equivalence.hpp"
#include "reduce.hpp"

#include <cstddef>
#include <type_traits>
#include <vector>

#include <Kokkos_Core.hpp>

#include "tether/exec/kokkos.hpp"

namespace {

struct kokkos_session : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunStarting(const Catch::TestRunInfo&) override { Kokkos::initialize(); }
  void testRunEnded(const Catch::TestRunStats&) override { Kokkos::finalize(); }
};

using host_view = Kokkos::View<float*, Kokkos::HostSpace>;

/// User buffers are Kokkos::Views, handed to tether directly (through buffer_traits).
struct view_adapter {
  using buffer = host_view;
  buffer make(std::size_t n) const { return buffer("x", n); }
  void upload(buffer& b, const std::vector<float>& v) const {
    for (std::size_t i = 0; i < v.size(); ++i) b(i) = v[i];
  }
  std::vector<float> download(const buffer& b) const {
    std::vector<float> v(b.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = b(i);
    return v;
  }
  buffer& param(buffer& b) const { return b; }
};

}  // namespace

CATCH_REGISTER_LISTENER(kokkos_session)

TEMPLATE_LIST_TEST_CASE("exec::kokkos<Serial> matches exec::serial", "[exec][kokkos]",
                        exec_test::all_combos) {
  exec_test::check_equivalent<TestType>(tether::exec::kokkos<Kokkos::Serial>{}, view_adapter{},
                                        exec_test::host_max_ulps);
}

TEST_CASE("rank-1 contiguous Kokkos::Views are buffers in their memory space", "[exec][kokkos]") {
  using tether::buffer_space_t;
  STATIC_REQUIRE(tether::buffer<host_view>);
  STATIC_REQUIRE(tether::buffer<Kokkos::View<const double*>>);
  STATIC_REQUIRE(tether::buffer<Kokkos::View<float[8]>>);
  STATIC_REQUIRE(tether::buffer<Kokkos::View<float*, Kokkos::LayoutLeft>>);
  STATIC_REQUIRE_FALSE(tether::buffer<Kokkos::View<float**>>);
  STATIC_REQUIRE_FALSE(tether::buffer<Kokkos::View<float*, Kokkos::LayoutStride>>);
  STATIC_REQUIRE(std::is_same_v<buffer_space_t<host_view>, tether::mem::host>);
  STATIC_REQUIRE(std::is_same_v<tether::buffer_value_t<Kokkos::View<const double*>>, const double>);
  STATIC_REQUIRE(tether::execution_space<tether::exec::kokkos<Kokkos::Serial>>);
  STATIC_REQUIRE(std::is_same_v<tether::exec::kokkos<Kokkos::Serial>::memory_space, tether::mem::host>);

  host_view v("v", 9);
  const auto tv = tether::as_view(v);
  REQUIRE(tv.size() == 9);
  REQUIRE(tv.data() == v.data());
}

TEST_CASE("exec::kokkos kernels cover every index once and find a predicate", "[exec][kokkos]") {
  const tether::exec::kokkos<Kokkos::Serial> space{};
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4099}}) {
    CAPTURE(n);
    std::vector<int> hits(n, 0);
    int* h = hits.data();
    space.parallel_for(n, [h](std::size_t i) { h[i] += 1; });
    for (std::size_t i = 0; i < n; ++i) REQUIRE(hits[i] == 1);
    const auto b = space.allocate<float>(n, -0.5f);
    REQUIRE(b.size() == n);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(b(i) == -0.5f);
    REQUIRE_FALSE(space.any(n, [](std::size_t) { return false; }));
    if (n > 0) REQUIRE(space.any(n, [n](std::size_t i) { return i + 1 == n; }));
  }
}

TEST_CASE("exec::kokkos<Serial> reduce matches a scalar loop", "[exec][kokkos]") {
  exec_test::check_reduce(tether::exec::kokkos<Kokkos::Serial>{}, exec_test::host_reduce_adapter{});
}
