#pragma once
/// \file
/// The byte model of a fused update, derived at compile time from its policies (docs/benchmarks.md,
/// ../shared/PERFORMANCE.md): per parameter element, x is read and written, g is read, each step state
/// buffer is read and written, and each pull buffer the force reads is read. A pull declares the buffers its
/// force does not read (EASGD's sum, the anchor's snapshot) with
///
///     static constexpr std::array<bool, buffers> force_reads{true, false};
///
/// and a step may declare state buffers it only reads with `state_writes` likewise. Without a declaration
/// every buffer counts. No dependency on Google Benchmark: the model is usable (and tested) on its own.

#include <array>
#include <cstddef>
#include <type_traits>

#include "tether/core/concepts.hpp"

namespace tether::bench {

namespace detail {

/// Pull::force_reads, or every buffer.
template <class Pull>
constexpr std::array<bool, Pull::buffers> force_reads() {
  if constexpr (requires { Pull::force_reads; }) {
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(Pull::force_reads)>, std::array<bool, Pull::buffers>>,
                  "tether::bench: a pull's force_reads must be a std::array<bool, buffers>, one flag per "
                  "buffer its force takes (see docs/concepts.md#pull-policy)");
    return Pull::force_reads;
  } else {
    std::array<bool, Pull::buffers> all{};
    for (auto& r : all) r = true;
    return all;
  }
}

/// Step::state_writes, or every state buffer.
template <class Step>
constexpr std::array<bool, Step::state_size> state_writes() {
  if constexpr (requires { Step::state_writes; }) {
    static_assert(
        std::is_same_v<std::remove_cvref_t<decltype(Step::state_writes)>, std::array<bool, Step::state_size>>,
        "tether::bench: a step's state_writes must be a std::array<bool, state_size>, one flag per state "
        "buffer its delta takes (see docs/concepts.md#step-policy)");
    return Step::state_writes;
  } else {
    std::array<bool, Step::state_size> all{};
    for (auto& w : all) w = true;
    return all;
  }
}

}  // namespace detail

/// Values of T read and written per element by the fused update of Step and Pull (WithForce: the force acts).
struct value_counts {
  std::size_t reads = 0;
  std::size_t writes = 0;
  [[nodiscard]] constexpr std::size_t total() const noexcept { return reads + writes; }
  friend constexpr bool operator==(const value_counts&, const value_counts&) = default;
};

/// The values a fused update of Step and Pull moves per element. Checks at compile time that the policies'
/// per-element functions take the buffers they declare.
template <class Step, class Pull, class T = float, bool WithForce = (Pull::buffers > 0)>
constexpr value_counts update_values() {
  static_assert(step_policy<Step, T>,
                "tether::bench: Step does not satisfy tether::step_policy: its delta(ctx, x, g, state...) must take "
                "one state reference per declared state buffer (see docs/concepts.md#step-policy)");
  static_assert(pull_policy<Pull, T>,
                "tether::bench: Pull does not satisfy tether::pull_policy: its force(ctx, x, target...) must take "
                "one value per declared buffer (see docs/concepts.md#pull-policy)");
  value_counts c{2, 1};  // x and g read, x written
  for (const bool w : detail::state_writes<Step>()) {
    ++c.reads;
    if (w) ++c.writes;
  }
  if constexpr (WithForce)
    for (const bool r : detail::force_reads<Pull>())
      if (r) ++c.reads;
  return c;
}

/// Bytes a fused update of Step and Pull moves per element of T: the model of docs/benchmarks.md.
template <class Step, class Pull, class T = float, bool WithForce = (Pull::buffers > 0)>
inline constexpr std::size_t bytes_per_element = update_values<Step, Pull, T, WithForce>().total() * sizeof(T);

}  // namespace tether::bench
