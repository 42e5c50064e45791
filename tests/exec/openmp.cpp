// exec::openmp against exec::serial: every step x pull combination, N in {0, 1, 7, 1023, 4099}, a team of 4
// workers each running its kernels on OpenMP threads (min_parallel = 0: even N = 1 goes through the parallel
// loop). Bit-exact: the same functor runs on every element; only the loop around it changes.
#include "equivalence.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "tether/exec/openmp.hpp"

namespace {

/// 2 threads per kernel; fewer where the environment says so (ThreadSanitizer runs set 1).
int test_threads() {
  const char* e = std::getenv("TETHER_TEST_OMP_THREADS");
  return e != nullptr ? std::max(1, std::atoi(e)) : 2;
}

tether::exec::openmp space() {
  return {.threads = test_threads(), .tuning = {.min_parallel = 0}};
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("exec::openmp matches exec::serial", "[exec][openmp]", exec_test::all_combos) {
  exec_test::check_equivalent<TestType>(space(), exec_test::host_adapter{}, exec_test::host_max_ulps);
}

TEST_CASE("exec::openmp kernels cover every index once", "[exec][openmp]") {
  for (int threads = 1; threads <= (test_threads() > 1 ? 3 : 1); ++threads) {
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4099}}) {
      CAPTURE(threads, n);
      const tether::exec::openmp omp{.threads = threads, .tuning = {.min_parallel = 0}};
      std::vector<int> hits(n, 0);
      int* h = hits.data();
      omp.parallel_for(n, [h](std::size_t i) { h[i] += 1; });
      for (std::size_t i = 0; i < n; ++i) REQUIRE(hits[i] == 1);
      const auto buf = omp.allocate<float>(n, 2.5f);
      REQUIRE(buf.size() == n);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(buf[i] == 2.5f);
      REQUIRE_FALSE(omp.any(n, [](std::size_t) { return false; }));
      if (n > 0) REQUIRE(omp.any(n, [n](std::size_t i) { return i == n - 1; }));
    }
  }
}

TEST_CASE("exec::openmp satisfies execution_space and lives in host memory", "[exec][openmp]") {
  STATIC_REQUIRE(tether::execution_space<tether::exec::openmp>);
  STATIC_REQUIRE(std::is_same_v<tether::exec::openmp::memory_space, tether::mem::host>);
  STATIC_REQUIRE(alignof(std::max_align_t) <= 64);
  const auto b = tether::exec::openmp{}.allocate<float>(33, 0.0f);
  REQUIRE(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
}
