#pragma once
/// \file
/// The codecs' tuning constants, one constexpr aggregate (as CUB's tuning policies). They size the per-block
/// kernels' stack arrays, so they are fixed when the codec headers are compiled; docs/benchmarks.md#tuning
/// says how each value was chosen.

#include <cstddef>

namespace tether::codec::detail {

/// Tuning of the codec kernels.
struct codec_tuning {
  /// Values per chunk of the per-block kernels: levels are computed into a stack array of this many bytes by
  /// a branch-free loop that compilers vectorise, then packed. A multiple of 8, so that every chunk starts on
  /// a byte boundary for every bit width; 512 bytes stay in the L1 cache next to the block's values. Chosen
  /// with bench_codec and codec_count (docs/codecs.md), which measured the chunked kernels at this value.
  std::size_t chunk_values = 512;
};

/// The codecs' tuning in force.
inline constexpr codec_tuning tuning{};

static_assert(tuning.chunk_values % 8 == 0 && tuning.chunk_values > 0,
              "codec_tuning::chunk_values must be a positive multiple of 8");

}  // namespace tether::codec::detail
