// LSGD on one GPU, 4 workers (see lsgd_gpu.hpp). Usage: gpu_lsgd [parameters] [steps] [--thrust]
//   default: exec::cuda (hand-written fused kernels); --thrust: exec::thrust_device (thrust::for_each).
#include <cstring>

#include "lsgd_gpu.hpp"
#include "tether/exec/cuda.hpp"
#include "tether/exec/thrust.hpp"

int main(int argc, char** argv) {
  bool use_thrust = false;
  int args = 0;
  char* rest[3] = {argv[0], nullptr, nullptr};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--thrust") == 0)
      use_thrust = true;
    else if (args < 2)
      rest[++args] = argv[i];
  }
  const auto s = gpu_example::parse(args + 1, rest, {});
  try {
    if (use_thrust) return gpu_example::train(tether::exec::thrust_device{}, "exec::thrust_device", s);
    return gpu_example::train(tether::exec::cuda{}, "exec::cuda", s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_lsgd: %s\n", e.what());
    return 1;
  }
}
