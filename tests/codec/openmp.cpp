// exec::openmp against exec::serial: the same message bytes and decoded values, bit for bit, with kernels
// split over 2 threads from the first work item (min_parallel = 1) and with OpenMP's defaults. Under
// ThreadSanitizer (TETHER_TEST_OMP_THREADS=1) on one thread: the OpenMP runtime is not instrumented.
#include <cstdlib>

#include "equivalence.hpp"
#include "tether/exec/openmp.hpp"

TEMPLATE_TEST_CASE("codecs on exec::openmp match exec::serial", "[codec][openmp]", float, double) {
  const char* env = std::getenv("TETHER_TEST_OMP_THREADS");
  const int threads = env != nullptr ? std::atoi(env) : 2;
  codec_test::check_space<TestType>(tether::exec::openmp{.threads = threads, .tuning = {.min_parallel = 1}},
                                    codec_test::host_adapter{});
  codec_test::check_space<TestType>(tether::exec::openmp{}, codec_test::host_adapter{});
}
