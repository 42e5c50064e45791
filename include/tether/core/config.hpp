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
