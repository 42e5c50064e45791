/// \file
/// The Adam update written with Google Highway and its run-time dispatch (HWY_DYNAMIC_DISPATCH over the
/// targets Highway compiles), for bench_isa's comparison of the two ways to dispatch (docs/benchmarks.md,
/// "Instruction sets"). The arithmetic is step::adam's, operation for operation:
///
///     m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g g;  x <- x - step m / (sqrt(v) inv_sqrt_bc2 + eps)
///
/// Highway compiles this file once per target by including it again (foreach_target.h), which is why it is a
/// translation unit of its own.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "highway_adam.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "highway_adam.hpp"

HWY_BEFORE_NAMESPACE();
namespace tether_bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void adam_step(const adam_arrays& a, const adam_constants& c) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto b1 = hn::Set(d, c.b1);
  const auto omb1 = hn::Set(d, c.one_minus_b1);
  const auto b2 = hn::Set(d, c.b2);
  const auto omb2 = hn::Set(d, c.one_minus_b2);
  const auto step = hn::Set(d, c.step_size);
  const auto isb = hn::Set(d, c.inv_sqrt_bc2);
  const auto eps = hn::Set(d, c.eps);
  std::size_t i = 0;
  for (; i + lanes <= a.n; i += lanes) {
    const auto g = hn::LoadU(d, a.g + i);
    // Written as separate multiplies and adds (no MulAdd), so the bits are those of the scalar loop without
    // contraction.
    const auto m = hn::Add(hn::Mul(b1, hn::LoadU(d, a.m + i)), hn::Mul(omb1, g));
    const auto v = hn::Add(hn::Mul(b2, hn::LoadU(d, a.v + i)), hn::Mul(hn::Mul(omb2, g), g));
    hn::StoreU(m, d, a.m + i);
    hn::StoreU(v, d, a.v + i);
    const auto den = hn::Add(hn::Mul(hn::Sqrt(v), isb), eps);
    hn::StoreU(hn::Sub(hn::LoadU(d, a.x + i), hn::Div(hn::Mul(step, m), den)), d, a.x + i);
  }
  for (; i < a.n; ++i) {
    const float g = a.g[i];
    const float m = c.b1 * a.m[i] + c.one_minus_b1 * g;
    const float v = c.b2 * a.v[i] + c.one_minus_b2 * g * g;
    a.m[i] = m;
    a.v[i] = v;
    a.x[i] -= c.step_size * m / (std::sqrt(v) * c.inv_sqrt_bc2 + c.eps);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tether_bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tether_bench {
HWY_EXPORT(adam_step);

void highway_adam(const adam_arrays& a, const adam_constants& c) {
  HWY_DYNAMIC_DISPATCH(adam_step)(a, c);
}

const char* highway_target() {
  const std::int64_t usable = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(usable & -usable);  // Highway's best target is its lowest bit
}
}  // namespace tether_bench
#endif
