#pragma once
/// \file
/// Whether a double option (a learning rate, a schedule's rate) survives conversion to the optimizer's value
/// type T: 1e39 is a finite double but no float, and a float optimizer given it would fill its parameters with
/// inf. The comparison is made in the wider of double and T, so it never converts an out-of-range value.

#include <cmath>
#include <limits>
#include <type_traits>

namespace tether::detail {

/// The name of a floating-point value type, for error messages.
template <class T>
[[nodiscard]] constexpr const char* value_type_name() noexcept {
  if constexpr (std::is_same_v<T, float>) return "float";
  else if constexpr (std::is_same_v<T, double>) return "double";
  else if constexpr (std::is_same_v<T, long double>) return "long double";
  else return "the value type";
}

/// True when `v` is finite and its magnitude is at most T's largest finite value.
template <class T>
[[nodiscard]] bool fits_value_type(double v) noexcept {
  using wide = std::common_type_t<double, T>;
  return std::isfinite(v) && std::abs(static_cast<wide>(v)) <= static_cast<wide>(std::numeric_limits<T>::max());
}

}  // namespace tether::detail
