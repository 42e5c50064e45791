#pragma once
/// \file
/// tether::exec::isa: the instruction-set level the host spaces' loops (exec::serial, exec::openmp) run at.
///
/// tether is header-only, so its kernels are compiled with the flags of the program that includes them,
/// usually the x86-64 baseline (SSE2). On x86-64 with GCC or Clang the host loops are also compiled for AVX2
/// and AVX-512 (`__attribute__((target))` on the loop; the kernel functor is inlined into it), and each loop
/// runs the widest level this CPU has, detected once per process. The levels compute the baseline's bits
/// (isa_exact). A level can be forced, for tests and benchmarks:
///
///     tether::exec::select_isa(tether::exec::isa::baseline);   // or TETHER_ISA=baseline in the environment
///
/// docs/exec.md#instruction-sets has the numerics (FMA contraction) and docs/benchmarks.md the speed.

#include <atomic>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tether/core/config.hpp"

namespace tether {
namespace exec {

/// Instruction-set levels of the host loops, in increasing order.
enum class isa : int {
  baseline = 0,  ///< what the including program's flags give (x86-64: SSE2)
  avx2 = 1,      ///< AVX2 (CPUs with AVX2 and FMA: x86-64-v3)
  avx512 = 2,    ///< AVX-512 F, VL, BW and DQ (x86-64-v4)
};

/// "baseline", "avx2" or "avx512".
[[nodiscard]] constexpr std::string_view to_string(isa level) noexcept {
  switch (level) {
    case isa::avx2:
      return "avx2";
    case isa::avx512:
      return "avx512";
    case isa::baseline:
      break;
  }
  return "baseline";
}

/// The level named `name` ("baseline", "avx2", "avx512"); nullopt for any other string.
[[nodiscard]] constexpr std::optional<isa> parse_isa(std::string_view name) noexcept {
  if (name == "baseline") return isa::baseline;
  if (name == "avx2") return isa::avx2;
  if (name == "avx512") return isa::avx512;
  return std::nullopt;
}

/// True where tether compiles its host loops for levels above the baseline (TETHER_ISA_DISPATCH,
/// core/config.hpp); elsewhere every level runs the baseline loops and isa_supported() is the baseline.
inline constexpr bool isa_dispatch_compiled = TETHER_ISA_DISPATCH != 0;

/// The level the including program's own flags already give (`-march=native` on an AVX-512 machine: avx512).
/// Loops at or below it run the baseline code, which then is that level's code.
inline constexpr isa isa_compiled =
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
    isa::avx512;
#elif defined(__AVX2__) && defined(__FMA__)
    isa::avx2;
#else
    isa::baseline;
#endif

/// True when loops at `level` compute the baseline's bits: they only use wider vectors, never contract a*b +
/// c into a fused multiply-add (docs/exec.md#instruction-sets). Every level with GCC (its loops are compiled
/// with -ffp-contract=off); with Clang every level but avx512, where AVX-512's FMA may fuse what Clang's
/// default -ffp-contract=on marked fusable (a program built with -ffp-contract=off keeps the bits there too).
[[nodiscard]] constexpr bool isa_exact(isa level) noexcept {
#if defined(__clang__)
  return level != isa::avx512;
#else
  (void)level;
  return true;
#endif
}

/// The highest level this CPU and its operating system run (CPUID and the enabled register state, read once).
[[nodiscard]] inline isa isa_supported() noexcept {
  static const isa level = [] {
#if TETHER_ISA_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return isa::avx2;
#endif
    return isa::baseline;
  }();
  return level;
}

namespace detail {

/// The level selected by select_isa (-1: none yet, the environment or the CPU decides).
inline std::atomic<int>& isa_selection() noexcept {
  static std::atomic<int> selected{-1};
  return selected;
}

/// Throws std::invalid_argument when this CPU cannot run `level`.
inline void require_isa(isa level, std::string_view origin) {
  if (static_cast<int>(level) > static_cast<int>(isa_supported()))
    throw std::invalid_argument(std::string(origin) + " = " + std::string(to_string(level)) +
                                ": this CPU runs at most " + std::string(to_string(isa_supported())));
}

/// The highest level this CPU runs that computes the baseline's bits (isa_exact).
inline isa highest_exact_isa() noexcept {
  int l = static_cast<int>(isa_supported());
  while (l > 0 && !isa_exact(static_cast<isa>(l))) --l;
  return static_cast<isa>(l);
}

/// The level the environment variable TETHER_ISA names ("auto" or unset: highest_exact_isa()), checked once.
inline isa isa_from_environment() {
  static const isa level = [] {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once, at the first loop
    const char* env = std::getenv("TETHER_ISA");
    if (env == nullptr || std::string_view(env).empty() || std::string_view(env) == "auto")
      return highest_exact_isa();
    const std::optional<isa> named = parse_isa(env);
    if (!named)
      throw std::invalid_argument("TETHER_ISA = \"" + std::string(env) +
                                  "\": expected baseline, avx2, avx512 or auto");
    require_isa(*named, "TETHER_ISA");
    return *named;
  }();
  return level;
}

}  // namespace detail

/// Forces every later host loop of this process to run at `level` (a loop already running finishes at its
/// level). Throws std::invalid_argument naming the level when this CPU cannot run it.
inline void select_isa(isa level) {
  detail::require_isa(level, "select_isa(level)");
  detail::isa_selection().store(static_cast<int>(level), std::memory_order_relaxed);
}

/// Undoes select_isa: loops again run the level TETHER_ISA names, or else the CPU's highest exact one.
inline void select_isa_automatically() noexcept {
  detail::isa_selection().store(-1, std::memory_order_relaxed);
}

/// The level host loops run at now: select_isa's, else TETHER_ISA's, else the highest this CPU runs that
/// computes the baseline's bits (isa_exact: with GCC, the CPU's highest). Throws
/// std::invalid_argument when TETHER_ISA names no level or one this CPU cannot run.
[[nodiscard]] inline isa active_isa() {
  const int selected = detail::isa_selection().load(std::memory_order_relaxed);
  if (selected >= 0) return static_cast<isa>(selected);
  return detail::isa_from_environment();
}

}  // namespace exec
}  // namespace tether
