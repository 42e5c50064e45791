#pragma once
/// \file
/// The Highway Adam kernel of bench_isa (highway_adam.cpp).

#include <cstddef>

namespace tether_bench {

/// The buffers of one Adam update of n elements.
struct adam_arrays {
  float* x;
  const float* g;
  float* m;
  float* v;
  std::size_t n;
};

/// step::adam's per-step constants (its context).
struct adam_constants {
  float b1, one_minus_b1, b2, one_minus_b2, step_size, inv_sqrt_bc2, eps;
};

/// One Adam update, at the widest target Highway's dispatch picks for this CPU.
void highway_adam(const adam_arrays& a, const adam_constants& c);

/// The name of the target Highway dispatched to (after the first call).
const char* highway_target();

}  // namespace tether_bench
