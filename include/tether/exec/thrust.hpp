#pragma once
/// \file
/// exec::thrust<Policy>: kernels run as `thrust::for_each` over a counting iterator with a Thrust execution
/// policy; state lives where the policy's system keeps memory. Opt-in (CMake: link tether::thrust). Uses the
/// Thrust of the CUDA toolkit's CCCL. See docs/exec.md.
///
///     tether::exec::thrust_cpp        thrust::cpp::par      host, sequential        (g++)
///     tether::exec::thrust_omp        thrust::omp::par      host, OpenMP threads    (g++ -fopenmp)
///     tether::exec::thrust_device     thrust::device        the GPU                 (nvcc, CUDA device
///     system) tether::exec::thrust<P>{.policy = thrust::cuda::par_nosync.on(stream)}     any policy of those
///     systems
///
/// In the `tether::exec` namespace the name `thrust` is this class: write `::thrust::` for Thrust itself.
/// A user's thrust::host_vector, thrust::device_vector and system vectors are accepted as buffers directly.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <thrust/device_vector.h>
#include <thrust/for_each.h>
#include <thrust/host_vector.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/logical.h>
#include <thrust/transform_reduce.h>
#include <thrust/system/cpp/execution_policy.h>
#if defined(_OPENMP)
#include <thrust/system/omp/execution_policy.h>
#endif
#include <thrust/execution_policy.h>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"

#if defined(__CUDACC__) && THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#include <cuda_runtime_api.h>

#include <thrust/system/cuda/execution_policy.h>

#include "tether/exec/detail/cuda_memory.hpp"
/// Defined to 1 when Thrust's CUDA system is available in this translation unit (nvcc).
#define TETHER_THRUST_CUDA 1
#else
#define TETHER_THRUST_CUDA 0
#endif

namespace tether {

namespace exec::detail {

/// True for policies of Thrust's host systems (cpp, omp, tbb all derive from the cpp system).
template <class P>
inline constexpr bool thrust_host_policy = std::is_convertible_v<P, ::thrust::system::cpp::tag>;

#if TETHER_THRUST_CUDA
/// True for policies of Thrust's CUDA system (thrust::device, thrust::cuda::par, .on(stream), par_nosync).
template <class P>
inline constexpr bool thrust_cuda_policy = std::is_convertible_v<P, ::thrust::cuda_cub::tag>;
#else
template <class P>
inline constexpr bool thrust_cuda_policy = false;
#endif

template <class P>
struct thrust_memory_space {
  static_assert(
      thrust_host_policy<P> || thrust_cuda_policy<P>,
      "tether::exec::thrust: the policy belongs to no supported Thrust system (cpp, omp, tbb, or CUDA "
      "compiled by nvcc); see docs/exec.md");
  using type = std::conditional_t<thrust_host_policy<P>, mem::host, mem::cuda>;
};

/// The memory space of a Thrust system tag (the system of a vector's iterators).
template <class System>
using thrust_system_space = std::conditional_t<thrust_host_policy<System>, mem::host, mem::cuda>;

/// Owning state storage around a Thrust vector: data() is a raw pointer, as kernels need.
template <class Vector>
class thrust_buffer {
 public:
  using value_type = typename Vector::value_type;
  thrust_buffer() = default;
  explicit thrust_buffer(Vector v) : v_(std::move(v)) {}
  // Thrust's data() is &front(): undefined behaviour on an empty vector.
  [[nodiscard]] value_type* data() noexcept {
    return v_.empty() ? nullptr : ::thrust::raw_pointer_cast(v_.data());
  }
  [[nodiscard]] const value_type* data() const noexcept {
    return v_.empty() ? nullptr : ::thrust::raw_pointer_cast(v_.data());
  }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(v_.size()); }
  /// The Thrust vector itself.
  [[nodiscard]] Vector& vector() noexcept { return v_; }
  [[nodiscard]] const Vector& vector() const noexcept { return v_; }

 private:
  Vector v_;
};

/// Adapts an index functor to Thrust's for_each (which passes the counting iterator's value).
template <class F>
struct thrust_index_kernel {
  F f;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { f(i); }
};

/// On host systems, Thrust's loop calls one functor per block of `block` indices, and the block is a plain
/// loop of ours: it vectorises whether or not the compiler inlines a large kernel into Thrust's own loop.
template <class F>
struct thrust_block_kernel {
  F f;
  std::size_t n;
  std::size_t block;
  void operator()(std::size_t b) const {
    const F k = f;
    const std::size_t lo = b * block;
    const std::size_t hi = lo + block < n ? lo + block : n;
    for (std::size_t i = lo; i < hi; ++i) k(i);
  }
};

/// The host systems' `any`: each block ORs its predicates in a plain loop and raises a shared flag. (Thrust's
/// any_of on the OpenMP system goes through a reduction that binds a reference to a null policy: UBSan.)
template <class F>
struct thrust_block_any {
  F pred;
  std::size_t n;
  std::size_t block;
  std::atomic<unsigned>* flag;
  void operator()(std::size_t b) const {
    const F k = pred;
    const std::size_t lo = b * block;
    const std::size_t hi = lo + block < n ? lo + block : n;
    unsigned r = 0;
    for (std::size_t i = lo; i < hi; ++i) r |= static_cast<unsigned>(static_cast<bool>(k(i)));
    if (r != 0) flag->store(1, std::memory_order_relaxed);
  }
};

/// The host systems' `reduce`: block b adds f(i) over its indices in order into part[b].
template <class R, class F>
struct thrust_block_reduce {
  F f;
  std::size_t n;
  std::size_t block;
  R* part;
  void operator()(std::size_t b) const {
    const F k = f;
    const std::size_t lo = b * block;
    const std::size_t hi = lo + block < n ? lo + block : n;
    R acc{};
    for (std::size_t i = lo; i < hi; ++i) acc += k(i);
    part[b] = acc;
  }
};

/// f(i) as the value of a device reduction.
template <class R, class F>
struct thrust_index_value {
  F f;
  TETHER_HOST_DEVICE R operator()(std::size_t i) const { return f(i); }
};

/// a + b for a device reduction.
template <class R>
struct thrust_add {
  TETHER_HOST_DEVICE R operator()(const R& a, const R& b) const { return a + b; }
};

template <class F>
struct thrust_index_pred {
  F f;
  TETHER_HOST_DEVICE bool operator()(std::size_t i) const { return static_cast<bool>(f(i)); }
};

}  // namespace exec::detail

namespace exec {

/// exec::thrust's tuning, one aggregate a user may override as CUB's tuning policies are
/// (`tether::exec::thrust_omp{.tuning = {.host_block = 16384}}`). docs/benchmarks.md#tuning has the
/// measurements.
struct thrust_tuning {
  /// Indices per block on host systems: Thrust's loop calls the kernel once per block and the block is a
  /// plain loop of ours, so it vectorises whether or not the compiler inlines the kernel into Thrust's loop
  /// (docs/benchmarks.md#execution-spaces); reductions add the blocks' sums in block order, so the value fixes
  /// their bits. bench_tuning (BM_thrust_host_block: SGD+leader, 2^20 floats on thrust_cpp) measured 256 to
  /// 65536 within its noise of each other (docs/benchmarks.md#tuning); 4096 keeps the bits of earlier runs
  /// and equals exec::kokkos's reduce block.
  std::size_t host_block = 4096;
};

/// Runs every kernel as `thrust::for_each(policy, counting_iterator(0), counting_iterator(n), f)`; on host
/// systems the iterator counts blocks of tuning.host_block indices, each a plain (vectorised) loop.
template <class Policy>
struct thrust {
  using policy_type = Policy;
  using memory_space = typename detail::thrust_memory_space<Policy>::type;
  static constexpr bool on_device = std::is_same_v<memory_space, mem::cuda>;

  /// Owning storage for optimizer state: aligned host memory for host systems, a device_vector on the GPU.
  template <class T>
  using buffer = std::conditional_t<on_device, detail::thrust_buffer<::thrust::device_vector<T>>,
                                    std::vector<T, aligned_allocator<T>>>;

  Policy policy{};          ///< the execution policy every kernel runs with
  thrust_tuning tuning{};   ///< block size on host systems

  /// `n` elements set to `value`.
  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    if constexpr (on_device)
      return buffer<T>(::thrust::device_vector<T>(n, value));
    else
      return buffer<T>(n, value);
  }

  /// Calls `f(i)` for i in [0, n) through thrust::for_each.
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    if (n == 0) return;
    if constexpr (on_device) {
      ::thrust::for_each(policy, ::thrust::counting_iterator<std::size_t>(0),
                         ::thrust::counting_iterator<std::size_t>(n), detail::thrust_index_kernel<F>{f});
    } else {
      const std::size_t block = host_block();
      ::thrust::for_each(policy, ::thrust::counting_iterator<std::size_t>(0),
                         ::thrust::counting_iterator<std::size_t>((n + block - 1) / block),
                         detail::thrust_block_kernel<F>{f, n, block});
    }
  }

  /// True when `pred(i)` holds for some i in [0, n) (thrust::any_of on the GPU: a device reduction; blocks
  /// raising a flag on host systems).
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    if (n == 0) return false;
    if constexpr (on_device) {
      return ::thrust::any_of(policy, ::thrust::counting_iterator<std::size_t>(0),
                              ::thrust::counting_iterator<std::size_t>(n),
                              detail::thrust_index_pred<F>{pred});
    } else {
      const std::size_t block = host_block();
      std::atomic<unsigned> flag{0};
      ::thrust::for_each(policy, ::thrust::counting_iterator<std::size_t>(0),
                         ::thrust::counting_iterator<std::size_t>((n + block - 1) / block),
                         detail::thrust_block_any<F>{pred, n, block, &flag});
      return flag.load(std::memory_order_relaxed) != 0;
    }
  }

  /// init + the sum of f(i) over [0, n): thrust::transform_reduce on the GPU; on host systems blocks of
  /// tuning.host_block indices each added in order, then the blocks' sums in block order (the same bits
  /// whatever the threads).
  /// `R` is an arithmetic type or tether::sums.
  template <class R, class F>
  [[nodiscard]] R reduce(std::size_t n, R init, const F& f) const {
    if (n == 0) return init;
    if constexpr (on_device) {
      return init + ::thrust::transform_reduce(policy, ::thrust::counting_iterator<std::size_t>(0),
                                               ::thrust::counting_iterator<std::size_t>(n),
                                               detail::thrust_index_value<R, F>{f}, R{}, detail::thrust_add<R>{});
    } else {
      const std::size_t block = host_block();
      std::vector<R> part((n + block - 1) / block, R{});
      ::thrust::for_each(policy, ::thrust::counting_iterator<std::size_t>(0),
                         ::thrust::counting_iterator<std::size_t>(part.size()),
                         detail::thrust_block_reduce<R, F>{f, n, block, part.data()});
      for (const R& r : part) init += r;
      return init;
    }
  }

  /// The block size of host systems; tether::error when the tuning says 0.
  [[nodiscard]] std::size_t host_block() const {
    detail_require_block(tuning.host_block);
    return tuning.host_block;
  }

  /// Waits for kernels still running (asynchronous CUDA policies such as par_nosync.on(stream)).
  void fence() const {
#if TETHER_THRUST_CUDA
    if constexpr (on_device) {
      Policy p = policy;
      detail::cuda_check(cudaStreamSynchronize(::thrust::cuda_cub::stream(p)), "cudaStreamSynchronize");
    }
#endif
  }

  static void detail_require_block(std::size_t block) {
    tether::detail::require(block > 0, "exec::thrust: tuning.host_block must be > 0, got host_block = ", block);
  }

#if TETHER_THRUST_CUDA
  /// Host staging for communicators without device collectives (MPI): pinned host memory.
  template <class T>
  [[nodiscard]] detail::pinned_buffer<T> allocate_host(std::size_t n) const requires on_device {
    return detail::pinned_buffer<T>(n);
  }
  /// Copies on the policy's stream, after the kernels queued there, and waits for them (a plain cudaMemcpy
  /// would run on the legacy default stream, unordered with a policy on a non-blocking stream).
  template <class T>
  void copy_to_host(const T* src, T* dst, std::size_t n) const requires on_device {
    copy_on_stream(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost);
  }
  template <class T>
  void copy_from_host(const T* src, T* dst, std::size_t n) const requires on_device {
    copy_on_stream(dst, src, n * sizeof(T), cudaMemcpyHostToDevice);
  }

 private:
  void copy_on_stream(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) const {
    if (bytes == 0) return;
    Policy p = policy;
    const cudaStream_t s = ::thrust::cuda_cub::stream(p);
    detail::cuda_check(cudaMemcpyAsync(dst, src, bytes, kind, s), "cudaMemcpyAsync");
    detail::cuda_check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  }
#endif
};

/// Thrust's sequential host system.
using thrust_cpp = thrust<std::remove_cvref_t<decltype(::thrust::cpp::par)>>;
#if defined(_OPENMP)
/// Thrust's OpenMP host system.
using thrust_omp = thrust<std::remove_cvref_t<decltype(::thrust::omp::par)>>;
#endif
/// Thrust's device system (the GPU under nvcc; THRUST_DEVICE_SYSTEM otherwise).
using thrust_device = thrust<std::remove_cvref_t<decltype(::thrust::device)>>;

}  // namespace exec

/// thrust::host_vector, thrust::device_vector and the system vectors (thrust::omp::vector, ...): contiguous
/// buffers in the memory of their system (GPU memory for a CUDA device_vector).
template <class T, class Alloc>
struct buffer_traits<::thrust::detail::vector_base<T, Alloc>> {
  using container = ::thrust::detail::vector_base<T, Alloc>;
  using value_type = T;
  using memory_space = exec::detail::thrust_system_space<
      typename ::thrust::iterator_system<typename container::iterator>::type>;
  /// nullptr for an empty vector (Thrust's data() is &front(), undefined behaviour when empty).
  static T* data(container& c) { return c.empty() ? nullptr : ::thrust::raw_pointer_cast(c.data()); }
  static std::size_t size(const container& c) { return static_cast<std::size_t>(c.size()); }
};
template <class T, class Alloc>
struct buffer_traits<::thrust::host_vector<T, Alloc>>
    : buffer_traits<::thrust::detail::vector_base<T, Alloc>> {};
template <class T, class Alloc>
struct buffer_traits<::thrust::device_vector<T, Alloc>>
    : buffer_traits<::thrust::detail::vector_base<T, Alloc>> {};
template <class Vector>
struct buffer_traits<exec::detail::thrust_buffer<Vector>> {
  using value_type = typename Vector::value_type;
  using memory_space =
      exec::detail::thrust_system_space<typename ::thrust::iterator_system<typename Vector::iterator>::type>;
  static value_type* data(exec::detail::thrust_buffer<Vector>& c) { return c.data(); }
  static std::size_t size(const exec::detail::thrust_buffer<Vector>& c) { return c.size(); }
};

}  // namespace tether
