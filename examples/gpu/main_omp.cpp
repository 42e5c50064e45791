// The GPU example on the CPU: the same program with Thrust's OpenMP device system (THRUST_DEVICE_SYSTEM=OMP,
// set by CMake), so thrust::device_vector is host memory and exec::thrust_device runs on OpenMP threads.
// Usage: gpu_lsgd_omp [parameters] [steps]
#include <cstdio>
#include <exception>

#include "lsgd_gpu.hpp"
#include "tether/exec/thrust.hpp"

int main(int argc, char** argv) {
  const auto s = gpu_example::parse(argc, argv, {.n = 1 << 16, .steps = 300});
  try {
    return gpu_example::train(tether::exec::thrust_device{}, "exec::thrust_device, OpenMP system", s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_lsgd_omp: %s\n", e.what());
    return 1;
  }
}
