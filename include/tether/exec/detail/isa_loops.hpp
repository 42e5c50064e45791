#pragma once
/// \file
/// The host spaces' three loops (for each index, any, sum in index order), compiled once per instruction-set
/// level (exec/isa.hpp), and the call that runs them at the active level.
///
/// A level's loops carry `__attribute__((target(...)))`, and every loop `flatten`: the kernel functor and
/// every helper it calls are inlined into the loop (their instruction set, the baseline, is a subset of the
/// loop's), so the loop and the whole kernel are compiled for the level together, however large the kernel
/// (the codecs' per-block kernels are). The kernel is copied into the loop's frame first: stores through its
/// pointers then cannot alias it, and its pointers stay in registers.

#include <cstddef>

#include "tether/exec/isa.hpp"

namespace tether {
namespace exec {
namespace detail {

#if defined(_OPENMP)
#define TETHER_DETAIL_OMP_SIMD _Pragma("omp simd")
#define TETHER_DETAIL_OMP_SIMD_OR _Pragma("omp simd reduction(| : r)")
#else
#define TETHER_DETAIL_OMP_SIMD
#define TETHER_DETAIL_OMP_SIMD_OR
#endif

// One level's loops. `Simd` asks for `#pragma omp simd` (exec::openmp, compiled with OpenMP); without it the
// loops are left to the compiler's vectoriser, as exec::serial's always were.
#define TETHER_DETAIL_ISA_LOOPS(NAME, ATTRIBUTES)                                                  \
  struct NAME {                                                                                    \
    template <bool Simd, class F>                                                                  \
    ATTRIBUTES static void for_range(std::size_t lo, std::size_t hi, const F& f) {                 \
      const F k = f;                                                                               \
      if constexpr (Simd) {                                                                        \
        TETHER_DETAIL_OMP_SIMD                                                                     \
        for (std::size_t i = lo; i < hi; ++i) k(i);                                                \
      } else {                                                                                     \
        for (std::size_t i = lo; i < hi; ++i) k(i);                                                \
      }                                                                                            \
    }                                                                                              \
    template <bool Simd, class F>                                                                  \
    ATTRIBUTES static unsigned any_range(std::size_t lo, std::size_t hi, const F& f) {             \
      const F k = f;                                                                               \
      unsigned r = 0;                                                                              \
      if constexpr (Simd) {                                                                        \
        TETHER_DETAIL_OMP_SIMD_OR                                                                  \
        for (std::size_t i = lo; i < hi; ++i) r |= static_cast<unsigned>(static_cast<bool>(k(i))); \
      } else {                                                                                     \
        for (std::size_t i = lo; i < hi; ++i) r |= static_cast<unsigned>(static_cast<bool>(k(i))); \
      }                                                                                            \
      return r;                                                                                    \
    }                                                                                              \
    template <class R, class F>                                                                    \
    ATTRIBUTES static R sum_range(std::size_t lo, std::size_t hi, R init, const F& f) {            \
      const F k = f;                                                                               \
      for (std::size_t i = lo; i < hi; ++i) init += k(i);                                          \
      return init;                                                                                 \
    }                                                                                              \
  };

TETHER_DETAIL_ISA_LOOPS(loops_baseline, __attribute__((flatten)))
#if TETHER_ISA_DISPATCH
// No contraction of a*b + c into an FMA inside the levels' loops, so that every level computes the baseline's
// bits (isa_exact): GCC takes -ffp-contract=off per function; Clang's AVX2 level leaves FMA out of the target
// (Clang decides contraction when it compiles the kernel, before it is inlined, and AVX-512 implies FMA, so
// its avx512 level may contract under Clang's default -ffp-contract=on).
#if defined(__clang__)
TETHER_DETAIL_ISA_LOOPS(loops_avx2, __attribute__((flatten, target("avx2"))))
TETHER_DETAIL_ISA_LOOPS(loops_avx512,
                        __attribute__((flatten, target("avx2,avx512f,avx512vl,avx512bw,avx512dq"))))
#else
TETHER_DETAIL_ISA_LOOPS(loops_avx2, __attribute__((flatten, target("avx2,fma"), optimize("fp-contract=off"))))
TETHER_DETAIL_ISA_LOOPS(loops_avx512,
                        __attribute__((flatten, target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq"),
                                       optimize("fp-contract=off"))))
#endif
#endif

#undef TETHER_DETAIL_ISA_LOOPS
#undef TETHER_DETAIL_OMP_SIMD
#undef TETHER_DETAIL_OMP_SIMD_OR

/// Calls `body(loops)` with the loops of `level`: a level at or below what the program's own flags give runs
/// the baseline loops, which are then that level's code.
template <class Body>
decltype(auto) with_isa_loops(isa level, Body&& body) {
#if TETHER_ISA_DISPATCH
  if (static_cast<int>(level) > static_cast<int>(isa_compiled)) {
    if (level == isa::avx512) return body(loops_avx512{});
    return body(loops_avx2{});
  }
#else
  (void)level;
#endif
  return body(loops_baseline{});
}

}  // namespace detail
}  // namespace exec
}  // namespace tether
