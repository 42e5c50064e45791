// Must NOT compile: a host execution space (exec::serial) handed parameters in GPU memory. The CTest
// exec_accessibility_compile_error builds this target and expects the static_assert naming docs/exec.md.
#include "tether/tether.hpp"

int main() {
  tether::team team(1);
  team.run([](tether::team::worker& w) {
    tether::algo::lsgd<tether::team::worker> opt(w, 4);
    float* device_x = nullptr;  // e.g. from cudaMalloc
    float* device_g = nullptr;
    opt.step(tether::as_view<tether::mem::cuda>(device_x, 4), tether::as_view<tether::mem::cuda>(device_g, 4),
             0.0);
  });
}
