// exec::thrust on Thrust's host systems (cpp, omp, and the device system compiled for OpenMP) against
// exec::serial: the same message bytes and decoded values, bit for bit.
#include "equivalence.hpp"
#include "tether/exec/thrust.hpp"

TEMPLATE_TEST_CASE("codecs on exec::thrust_cpp match exec::serial", "[codec][thrust]", float, double) {
  codec_test::check_space<TestType>(tether::exec::thrust_cpp{}, codec_test::host_adapter{});
}

TEMPLATE_TEST_CASE("codecs on exec::thrust_omp match exec::serial", "[codec][thrust]", float, double) {
  codec_test::check_space<TestType>(tether::exec::thrust_omp{}, codec_test::host_adapter{});
}

TEMPLATE_TEST_CASE("codecs on exec::thrust_device (OpenMP system) match exec::serial", "[codec][thrust]",
                   float, double) {
  codec_test::check_space<TestType>(tether::exec::thrust_device{}, codec_test::host_adapter{});
}
