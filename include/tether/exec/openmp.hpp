#pragma once
/// \file
/// exec::openmp: kernels run as `#pragma omp simd` loops over each host thread's static block, at the widest
/// instruction set this CPU has (exec/isa.hpp); state lives in aligned host memory, first touched by the
/// threads that later update it. Opt-in: compile with OpenMP (CMake: link OpenMP::OpenMP_CXX). See
/// docs/exec.md.
///
///     tether::exec::openmp omp{.threads = 8};
///     tether::optimizer<tether::step::adam, tether::pull::none, W, tether::exec::openmp> opt(omp, w, n, {});

#if !defined(_OPENMP)
#error \
    "tether/exec/openmp.hpp needs OpenMP: compile with -fopenmp (CMake: link OpenMP::OpenMP_CXX); see docs/exec.md"
#endif

#include <omp.h>

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/view.hpp"
#include "tether/exec/detail/isa_loops.hpp"
#include "tether/exec/isa.hpp"
#include "tether/exec/serial.hpp"

namespace tether {
namespace exec {

namespace detail {

/// An aligned allocator that leaves new elements uninitialised (default-initialised), so that a parallel
/// fill can first-touch the pages on the threads that use them.
template <class T>
struct first_touch_allocator : aligned_allocator<T> {
  template <class U>
  struct rebind {
    using other = first_touch_allocator<U>;
  };
  first_touch_allocator() noexcept = default;
  template <class U>
  constexpr first_touch_allocator(const first_touch_allocator<U>&) noexcept {}  // NOLINT
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
  template <class U>
  constexpr bool operator==(const first_touch_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace detail

/// exec::openmp's tuning, one aggregate a user may override as CUB's tuning policies are
/// (`tether::exec::openmp{.tuning = {.min_parallel = 0}}`). docs/benchmarks.md#tuning has the measurements.
struct openmp_tuning {
  /// Loops shorter than this run on the calling thread (still SIMD): below it, opening a parallel region
  /// costs more than the threads save. bench_tuning (BM_openmp_loop: the fused SGD update on 1 and on 2
  /// threads) is the benchmark that decides it: the shortest n that 2 threads run faster than 1. On the shared
  /// 2-core machine of docs/benchmarks.md#tuning 2 threads never won up to 2^18 (the second core was busy), so
  /// the value (32768) predates the measurement and stays until an idle machine decides.
  std::size_t min_parallel = 32768;
};

/// Whether exec::openmp runs the items of kernel F as SIMD lanes (`omp simd`): true unless F declares
/// `static constexpr bool simd = false;`, as a kernel whose item is itself a loop or holds a call that does not
/// vectorise does (the codecs' kernels). Asking for SIMD there gains nothing, and clang reports every `omp simd`
/// loop it cannot vectorise as a warning (-Wpass-failed), an error under -Werror: a kernel of yours that clang
/// reports so should declare it too (docs/exec.md).
template <class F>
[[nodiscard]] constexpr bool simd_items() {
  if constexpr (requires { F::simd; })
    return static_cast<bool>(F::simd);
  else
    return true;
}

/// Runs every kernel in an OpenMP parallel region with a static split: each thread takes one contiguous block
/// and runs it as an `omp simd` loop compiled for the active instruction set. Short loops (n <
/// tuning.min_parallel) and one-thread spaces run on the calling thread. Kernels that opt out of SIMD
/// (simd_items) run as plain loops.
struct openmp {
  using memory_space = mem::host;

  /// Owning storage for optimizer state: 64-byte aligned host memory.
  template <class T>
  using buffer = std::vector<T, detail::first_touch_allocator<T>>;

  int threads = 0;         ///< threads per kernel; 0 = OpenMP's default (OMP_NUM_THREADS)
  openmp_tuning tuning{};  ///< when a loop is worth a parallel region

  /// `n` elements set to `value`, written by the threads that will update them (first touch).
  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    buffer<T> b(n);
    T* p = b.data();
    parallel_for(n, [p, value](std::size_t i) { p[i] = value; });
    return b;
  }

  /// Calls `f(i)` for i in [0, n): each thread takes one contiguous block; the block is vectorised at the
  /// active instruction set (active_isa()).
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    const int nt = team_size();
    const isa level = active_isa();
    if (nt <= 1 || n < tuning.min_parallel) {
      detail::with_isa_loops(
          level, [&](auto loops) { decltype(loops)::template for_range<simd_items<F>()>(0, n, f); });
      return;
    }
#pragma omp parallel num_threads(nt)
    {
      const block b = static_block(n);
      detail::with_isa_loops(
          level, [&](auto loops) { decltype(loops)::template for_range<simd_items<F>()>(b.lo, b.hi, f); });
    }
  }

  /// True when `pred(i)` holds for some i in [0, n).
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    const int nt = team_size();
    const isa level = active_isa();
    if (nt <= 1 || n < tuning.min_parallel)
      return detail::with_isa_loops(level, [&](auto loops) {
               return decltype(loops)::template any_range<simd_items<F>()>(0, n, pred);
             }) != 0;
    unsigned r = 0;
#pragma omp parallel num_threads(nt) reduction(| : r)
    {
      const block b = static_block(n);
      r |= detail::with_isa_loops(level, [&](auto loops) {
        return decltype(loops)::template any_range<simd_items<F>()>(b.lo, b.hi, pred);
      });
    }
    return r != 0;
  }

  /// init + the sum of f(i) over [0, n). Each thread adds its static block in index order; the blocks' sums
  /// are then added in thread order, so a given thread count always gives the same bits. `R` is an arithmetic
  /// type or tether::sums.
  template <class R, class F>
  [[nodiscard]] R reduce(std::size_t n, R init, const F& f) const {
    const int nt = team_size();
    const isa level = active_isa();
    if (nt <= 1 || n < tuning.min_parallel)
      return detail::with_isa_loops(level,
                                    [&](auto loops) { return decltype(loops)::sum_range(0, n, init, f); });
    std::vector<R> part(static_cast<std::size_t>(nt), R{});
#pragma omp parallel num_threads(nt)
    {
      const block b = static_block(n);
      part[static_cast<std::size_t>(omp_get_thread_num())] = detail::with_isa_loops(
          level, [&](auto loops) { return decltype(loops)::sum_range(b.lo, b.hi, R{}, f); });
    }
    for (const R& r : part) init += r;
    return init;
  }

  /// Threads a kernel runs on.
  [[nodiscard]] int team_size() const noexcept {
    return threads > 0 ? threads : omp_get_max_threads();
  }

 private:
  /// A thread's indices [lo, hi).
  struct block {
    std::size_t lo;
    std::size_t hi;
  };

  /// The calling thread's contiguous block of [0, n) in a parallel region: thread t of T takes
  /// [n t / T, n (t + 1) / T).
  [[nodiscard]] static block static_block(std::size_t n) noexcept {
    const auto t = static_cast<std::size_t>(omp_get_thread_num());
    const auto used = static_cast<std::size_t>(omp_get_num_threads());
    return {n * t / used, n * (t + 1) / used};
  }
};

}  // namespace exec
}  // namespace tether
