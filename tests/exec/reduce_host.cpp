// exec::serial's and exec::openmp's reduce against a scalar loop (reduce.hpp).
#include "reduce.hpp"

#include "tether/exec/openmp.hpp"
#include "tether/exec/serial.hpp"

TEST_CASE("exec::serial reduce matches a scalar loop", "[exec]") {
  exec_test::check_reduce(tether::exec::serial{}, exec_test::host_reduce_adapter{});
}

TEST_CASE("exec::openmp reduce matches a scalar loop, on 1, 2 and 3 threads", "[exec][openmp]") {
  for (int t = 1; t <= 3; ++t) {
    CAPTURE(t);
    exec_test::check_reduce(tether::exec::openmp{.threads = t, .tuning = {.min_parallel = 0}}, exec_test::host_reduce_adapter{});
  }
}
