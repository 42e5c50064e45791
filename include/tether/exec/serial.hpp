#pragma once
/// \file
/// exec::serial: kernels run as plain loops on the calling thread, at the widest instruction set this CPU has
/// (exec/isa.hpp); state lives in aligned host memory.

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include "tether/core/view.hpp"
#include "tether/exec/detail/isa_loops.hpp"
#include "tether/exec/isa.hpp"

namespace tether {

/// A std::allocator that aligns to `Align` bytes (cache lines, full SIMD vectors).
template <class T, std::size_t Align = 64>
struct aligned_allocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = aligned_allocator<U, Align>;
  };
  aligned_allocator() noexcept = default;
  template <class U>
  constexpr aligned_allocator(const aligned_allocator<U, Align>&) noexcept {}  // NOLINT
  [[nodiscard]] T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Align}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{Align}); }
  template <class U>
  constexpr bool operator==(const aligned_allocator<U, Align>&) const noexcept {
    return true;
  }
};

namespace exec {

/// Runs every kernel as a sequential loop on the calling thread. The default execution space.
struct serial {
  using memory_space = mem::host;

  /// Owning storage for optimizer state in this space's memory.
  template <class T>
  using buffer = std::vector<T, aligned_allocator<T>>;

  /// `n` elements set to `value`.
  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    return buffer<T>(n, value);
  }

  /// Calls `f(i)` for i in [0, n), in a loop compiled for the active instruction set (active_isa()). The loop
  /// runs a local copy of `f`: stores through the kernel's pointers then cannot alias the kernel itself, so
  /// its pointers stay in registers and the loop vectorises even when `f` is a reference into memory the
  /// kernel writes (a caller's object, a lambda's capture).
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    detail::with_isa_loops(active_isa(),
                           [&](auto loops) { decltype(loops)::template for_range<false>(0, n, f); });
  }

  /// True when `pred(i)` holds for some i in [0, n). Branch-free so the loop vectorises (the accumulator is
  /// an unsigned int: GCC 12 does not vectorise an or-reduction into a bool).
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    return detail::with_isa_loops(active_isa(), [&](auto loops) {
             return decltype(loops)::template any_range<false>(0, n, pred);
           }) != 0;
  }

  /// init + f(0) + f(1) + ... + f(n-1), added in index order. `R` is an arithmetic type or tether::sums.
  template <class R, class F>
  [[nodiscard]] R reduce(std::size_t n, R init, const F& f) const {
    return detail::with_isa_loops(active_isa(),
                                  [&](auto loops) { return decltype(loops)::sum_range(0, n, init, f); });
  }
};

}  // namespace exec
}  // namespace tether
