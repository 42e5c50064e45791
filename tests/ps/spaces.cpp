// The shards on other execution spaces: the shards' parameters and step state live in the space's memory and
// their updates run as its kernels. exec::openmp (2 threads per kernel) and, where Thrust is found,
// exec::thrust_omp give the bits of exec::serial for the same run: replay mode fixes the interleaving of 3
// replicas, and every kernel is element-wise (the same arithmetic on every element, in any order).

#include "support.hpp"

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/exec/openmp.hpp>
#include <tether/step/momentum.hpp>
#if defined(TETHER_PS_TEST_THRUST)
#include <tether/exec/thrust.hpp>
#endif

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {

using worker = tether::team::worker;

/// Final parameters (replica 0's finish) of a replayed run of 3 replicas on execution space Exec.
template <class Exec>
std::vector<float> replayed(Exec exec, tether::ps::consistency c = {}) {
  const std::size_t n = ps_test::quad().dimension();
  std::vector<float> out;
  tether::team team(3);
  team.run([&](worker& w) {
    tether::algo::downpour<worker, tether::step::adagrad, Exec, float, tether::step::momentum> opt(
        w, n,
        {.lr = 0.2, .local_lr = 0.02, .n_fetch = 3, .n_push = 2, .shards = 5, .consistency = c,
         .replay = {.enabled = c.mode == tether::ps::consistency_mode::asynchronous, .seed = 11}},
        exec);
    auto x = ps_test::start_point(n, w.rank());
    std::vector<float> g(n);
    for (std::uint64_t t = 0; t < 60; ++t) opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
    opt.finish(x);
    if (w.rank() == 0) out = x;
  });
  return out;
}

}  // namespace

/// 2 OpenMP threads per kernel; TETHER_TEST_OMP_THREADS overrides it (1 under ThreadSanitizer, whose reports
/// inside the uninstrumented OpenMP runtime are false, as in tests/exec).
tether::exec::openmp omp() {
  const char* env = std::getenv("TETHER_TEST_OMP_THREADS");
  return {.threads = env != nullptr ? std::atoi(env) : 2, .tuning = {.min_parallel = 8}};
}

TEST_CASE("Shards on exec::openmp give the bits of exec::serial", "[ps][spaces]") {
  CHECK(replayed(omp()) == replayed(tether::exec::serial{}));
  // Bulk-synchronous rounds are deterministic without replay: the round's sum is added in replica order.
  const auto bsp = tether::ps::consistency::bulk_synchronous();
  CHECK(replayed(omp(), bsp) == replayed(tether::exec::serial{}, bsp));
}

#if defined(TETHER_PS_TEST_THRUST)
TEST_CASE("Shards on exec::thrust_omp give the bits of exec::serial", "[ps][spaces]") {
  CHECK(replayed(tether::exec::thrust_omp{}) == replayed(tether::exec::serial{}));
}
#endif
