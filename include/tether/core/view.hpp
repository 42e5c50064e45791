#pragma once
/// \file
/// Buffer views: how tether sees a user's parameters, gradients and state without owning them.
///
/// tether accepts `std::span<T>`, a pointer and a size, any contiguous range (std::vector, std::array), and any
/// type for which the user specialises `tether::buffer_traits` (see docs/concepts.md#buffers).

#include <concepts>
#include <cstddef>
#include <ranges>
#include <span>
#include <type_traits>

namespace tether {

/// Memory spaces. A view's memory space must be accessible from the execution space that runs a kernel on it.
namespace mem {
/// Ordinary host memory.
struct host {};
/// Global memory of a CUDA GPU (cudaMalloc, thrust::device_vector, Kokkos::CudaSpace). Not host-accessible.
struct cuda {};

/// True when kernels of an execution space whose memory is `ExecSpace` may touch memory in `DataSpace`.
/// Each space reaches only its own memory unless a specialisation says otherwise (see docs/exec.md).
template <class ExecSpace, class DataSpace>
struct accessible : std::is_same<ExecSpace, DataSpace> {};

template <class ExecSpace, class DataSpace>
inline constexpr bool accessible_v = accessible<ExecSpace, DataSpace>::value;
}  // namespace mem

/// Customisation point: specialise for your own container to hand it to tether directly.
/// A specialisation provides `value_type`, `memory_space`, `static value_type* data(C&)` and
/// `static std::size_t size(const C&)`.
template <class C, class = void>
struct buffer_traits;

/// Every contiguous, sized range of host memory (std::vector, std::array, std::span, C arrays).
template <class C>
struct buffer_traits<C, std::enable_if_t<std::ranges::contiguous_range<C> && std::ranges::sized_range<C>>> {
  using value_type = std::remove_reference_t<std::ranges::range_reference_t<C>>;
  using memory_space = mem::host;
  static value_type* data(C& c) { return std::ranges::data(c); }
  /// A const container hands out const elements; a const std::span<T> still hands out T (spans are shallow).
  static auto data(const C& c) { return std::ranges::data(c); }
  static std::size_t size(const C& c) { return static_cast<std::size_t>(std::ranges::size(c)); }
};

/// A typed pointer and a length in a memory space: what kernels and collectives receive.
template <class T, class Space = mem::host>
struct view {
  using value_type = T;
  using memory_space = Space;
  T* ptr = nullptr;
  std::size_t len = 0;
  [[nodiscard]] constexpr T* data() const noexcept { return ptr; }
  [[nodiscard]] constexpr std::size_t size() const noexcept { return len; }
  [[nodiscard]] constexpr bool empty() const noexcept { return len == 0; }
  /// Host views convert to std::span.
  [[nodiscard]] constexpr std::span<T> span() const noexcept
    requires std::same_as<Space, mem::host>
  {
    return {ptr, len};
  }
  /// Mutable views convert to const views. (A template, so that nvcc does not instantiate it for a view
  /// that is already const.)
  template <class U = T>
    requires(!std::is_const_v<U>)
  constexpr operator view<const U, Space>() const noexcept  // NOLINT(google-explicit-constructor)
  {
    return {ptr, len};
  }
};

template <class T, class Space>
struct buffer_traits<view<T, Space>> {
  using value_type = T;
  using memory_space = Space;
  static T* data(const view<T, Space>& v) { return v.ptr; }
  static std::size_t size(const view<T, Space>& v) { return v.len; }
};

/// A type tether can use as a buffer: buffer_traits is specialised for it.
template <class C>
concept buffer = requires(std::remove_cvref_t<C>& c) {
  typename buffer_traits<std::remove_cvref_t<C>>::value_type;
  typename buffer_traits<std::remove_cvref_t<C>>::memory_space;
  { buffer_traits<std::remove_cvref_t<C>>::data(c) };
  { buffer_traits<std::remove_cvref_t<C>>::size(c) } -> std::convertible_to<std::size_t>;
};

/// The element type of a buffer.
template <buffer C>
using buffer_value_t = typename buffer_traits<std::remove_cvref_t<C>>::value_type;

/// The memory space of a buffer.
template <buffer C>
using buffer_space_t = typename buffer_traits<std::remove_cvref_t<C>>::memory_space;

/// A view of any buffer.
template <buffer C>
[[nodiscard]] auto as_view(C&& c) {
  using traits = buffer_traits<std::remove_cvref_t<C>>;
  using T = std::remove_pointer_t<decltype(traits::data(c))>;
  return view<T, typename traits::memory_space>{traits::data(c), static_cast<std::size_t>(traits::size(c))};
}

/// A view of a raw pointer and a length (host memory unless a space is named).
template <class Space = mem::host, class T>
[[nodiscard]] constexpr view<T, Space> as_view(T* p, std::size_t n) noexcept {
  return {p, n};
}

}  // namespace tether
