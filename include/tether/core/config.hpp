#pragma once
/// \file
/// Configuration macros: the only macros tether defines.

#if defined(__CUDACC__) || defined(__HIPCC__)
/// Marks kernel functors callable on host and device when a device compiler builds them.
#define TETHER_HOST_DEVICE __host__ __device__
#else
#define TETHER_HOST_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TETHER_RESTRICT __restrict__
#else
#define TETHER_RESTRICT
#endif

/// 1 where tether compiles the host spaces' loops for AVX2+FMA and AVX-512 beside the baseline and picks one at
/// run time (x86-64 with GCC or Clang, outside a device compiler; exec/isa.hpp); 0 elsewhere, or where the
/// includer defines TETHER_NO_ISA_DISPATCH.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__) && \
    !defined(__HIPCC__) && !defined(TETHER_NO_ISA_DISPATCH)
#define TETHER_ISA_DISPATCH 1
#else
#define TETHER_ISA_DISPATCH 0
#endif
