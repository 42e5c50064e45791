#pragma once
/// \file
/// exec::kokkos<ExecSpace>: kernels run as `Kokkos::parallel_for` over a RangePolicy of any Kokkos execution
/// space; state lives in `Kokkos::View`s of the space's memory space. Opt-in (CMake: link tether::kokkos).
/// Kokkos must be initialised (Kokkos::ScopeGuard) before an optimizer is built. See docs/exec.md.
///
///     Kokkos::ScopeGuard guard(argc, argv);
///     tether::optimizer<tether::step::sgd, tether::pull::leader, W, tether::exec::kokkos<>> opt(w, n);
///     Kokkos::View<float*> x("x", n), g("g", n);   // accepted as buffers directly
///     opt.step(x, g, loss);

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/view.hpp"

namespace tether {

namespace mem {
/// Memory of a Kokkos memory space that tether has no name for (HIP, SYCL, UVM...).
template <class KokkosMemorySpace>
struct kokkos {};

/// Kokkos decides which of its memory spaces an execution space's memory can reach.
template <class A, class B>
struct accessible<kokkos<A>, kokkos<B>>
    : std::bool_constant<Kokkos::Impl::MemorySpaceAccess<A, B>::accessible> {};
}  // namespace mem

namespace exec::detail {

/// tether's name for a Kokkos memory space: mem::host, mem::cuda, or mem::kokkos<M>.
template <class M>
struct kokkos_memory {
  using type = mem::kokkos<M>;
};
template <>
struct kokkos_memory<Kokkos::HostSpace> {
  using type = mem::host;
};
#if defined(KOKKOS_ENABLE_CUDA)
template <>
struct kokkos_memory<Kokkos::CudaSpace> {
  using type = mem::cuda;
};
#endif

template <class M>
using kokkos_memory_t = typename kokkos_memory<M>::type;

/// Adapts an index functor to a Kokkos RangePolicy over std::int64_t.
template <class F>
struct kokkos_kernel {
  F f;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t i) const { f(static_cast<std::size_t>(i)); }
};

/// Block b of a reduction: part[b] = the sum of f(i) over its indices, added in order. Partial sums by
/// parallel_for rather than Kokkos::parallel_reduce, for the reason given at kokkos_any.
template <class R, class F>
struct kokkos_block_reduce {
  F f;
  std::size_t n;
  std::size_t block;
  R* part;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t b) const {
    const std::size_t lo = static_cast<std::size_t>(b) * block;
    const std::size_t hi = lo + block < n ? lo + block : n;
    R acc{};
    for (std::size_t i = lo; i < hi; ++i) acc += f(i);
    part[b] = acc;
  }
};

/// Sets *flag when the predicate holds. No reduction scratch: Kokkos::Serial's reductions share one
/// buffer per process, which the threads of a team must not race on.
template <class F>
struct kokkos_any {
  F pred;
  int* flag;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t i) const {
    if (pred(static_cast<std::size_t>(i))) Kokkos::atomic_fetch_or(flag, 1);
  }
};

}  // namespace exec::detail

namespace exec {

/// exec::kokkos's tuning, one aggregate a user may override as CUB's tuning policies are
/// (`tether::exec::kokkos<>{.tuning = {.reduce_block = 16384}}`).
struct kokkos_tuning {
  /// Indices per block of reduce(): each block is summed in order on the space, then the blocks' sums in
  /// block order on the host, so the value fixes the bits. The same blocks as exec::thrust's host systems
  /// (thrust_tuning::host_block), so the two give the same sums.
  std::size_t reduce_block = 4096;
};

/// Runs every kernel with `Kokkos::parallel_for(RangePolicy<ExecSpace>(space, 0, n), f)`.
template <class ExecSpace = Kokkos::DefaultExecutionSpace>
struct kokkos {
  static_assert(
      Kokkos::is_execution_space<ExecSpace>::value,
      "tether::exec::kokkos<ExecSpace>: ExecSpace must be a Kokkos execution space (see docs/exec.md)");
  using execution_space = ExecSpace;
  using kokkos_memory_space = typename ExecSpace::memory_space;
  using memory_space = detail::kokkos_memory_t<kokkos_memory_space>;

  /// Owning storage for optimizer state: a rank-1 View in the execution space's memory.
  template <class T>
  using buffer = Kokkos::View<T*, kokkos_memory_space>;

  ExecSpace space{};       ///< the execution space instance kernels run on
  kokkos_tuning tuning{};  ///< block size of reductions

  /// `n` elements set to `value`. Throws tether::runtime_error when Kokkos is not initialised.
  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    if (!Kokkos::is_initialized())
      throw runtime_error(
          "tether: exec::kokkos: Kokkos is not initialized (create a Kokkos::ScopeGuard first)");
    buffer<T> b(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("tether::state")), n);
    Kokkos::deep_copy(space, b, value);
    space.fence();
    return b;
  }

  /// Calls `f(i)` for i in [0, n).
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    if (n == 0) return;
    Kokkos::parallel_for("tether::kernel", policy(n), detail::kokkos_kernel<F>{f});
  }

  /// True when `pred(i)` holds for some i in [0, n).
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    if (n == 0) return false;
    if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, kokkos_memory_space>::accessible) {
      int flag = 0;
      Kokkos::parallel_for("tether::any", policy(n), detail::kokkos_any<F>{pred, &flag});
      space.fence();
      return flag != 0;
    } else {
      Kokkos::View<int, kokkos_memory_space> flag("tether::any");
      Kokkos::parallel_for("tether::any", policy(n), detail::kokkos_any<F>{pred, flag.data()});
      int h = 0;
      Kokkos::deep_copy(space, h, flag);
      space.fence();
      return h != 0;
    }
  }

  /// init + the sum of f(i) over [0, n): blocks of tuning.reduce_block indices each added in order on the
  /// space, then the blocks' sums added in block order on the host (the same bits on every run). `R` is an
  /// arithmetic type or tether::sums.
  template <class R, class F>
  [[nodiscard]] R reduce(std::size_t n, R init, const F& f) const {
    if (n == 0) return init;
    const std::size_t block = tuning.reduce_block;
    tether::detail::require(block > 0, "exec::kokkos: tuning.reduce_block must be > 0, got reduce_block = ",
                            block);
    const std::size_t blocks = (n + block - 1) / block;
    Kokkos::View<R*, kokkos_memory_space> part(Kokkos::view_alloc(std::string("tether::reduce")), blocks);
    Kokkos::parallel_for("tether::reduce", policy(blocks),
                         detail::kokkos_block_reduce<R, F>{f, n, block, part.data()});
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), part);
    space.fence();
    for (std::size_t b = 0; b < blocks; ++b) init += host(b);
    return init;
  }

  /// Waits for the kernels queued on the execution space instance.
  void fence() const { space.fence(); }

  /// Host staging for communicators without device collectives: a host mirror.
  template <class T>
  [[nodiscard]] Kokkos::View<T*, Kokkos::HostSpace> allocate_host(std::size_t n) const
      requires(!std::is_same_v<memory_space, mem::host>) {
    return Kokkos::View<T*, Kokkos::HostSpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("tether::staging")), n);
  }
  template <class T>
  void copy_to_host(const T* src, T* dst, std::size_t n) const
      requires(!std::is_same_v<memory_space, mem::host>) {
    Kokkos::deep_copy(space, Kokkos::View<T*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(dst, n),
                      Kokkos::View<const T*, kokkos_memory_space, Kokkos::MemoryUnmanaged>(src, n));
    space.fence();
  }
  template <class T>
  void copy_from_host(const T* src, T* dst, std::size_t n) const
      requires(!std::is_same_v<memory_space, mem::host>) {
    Kokkos::deep_copy(space, Kokkos::View<T*, kokkos_memory_space, Kokkos::MemoryUnmanaged>(dst, n),
                      Kokkos::View<const T*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(src, n));
    space.fence();
  }

 private:
  [[nodiscard]] Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>> policy(std::size_t n) const {
    return Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(space, 0,
                                                                           static_cast<std::int64_t>(n));
  }
};

}  // namespace exec

/// Rank-1 contiguous Kokkos::Views (LayoutLeft or LayoutRight) are buffers in their memory space.
template <class D, class... P>
struct buffer_traits<
    Kokkos::View<D, P...>,
    std::enable_if_t<Kokkos::View<D, P...>::rank == 1 &&
                     (std::is_same_v<typename Kokkos::View<D, P...>::array_layout, Kokkos::LayoutLeft> ||
                      std::is_same_v<typename Kokkos::View<D, P...>::array_layout, Kokkos::LayoutRight>)>> {
  using view_type = Kokkos::View<D, P...>;
  using value_type = typename view_type::value_type;
  using memory_space = exec::detail::kokkos_memory_t<typename view_type::memory_space>;
  static value_type* data(const view_type& v) { return v.data(); }
  static std::size_t size(const view_type& v) { return static_cast<std::size_t>(v.size()); }
};

}  // namespace tether
