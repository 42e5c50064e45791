#pragma once
/// \file
/// exec::cuda: hand-written CUDA kernels on a stream. The fused optimizer step is one grid-stride launch with
/// 16-byte vector loads and stores (float4 / double2) of every buffer when the buffers share their alignment,
/// scalar accesses for the few elements before and after. State lives in GPU memory (cudaMalloc); copies
/// between the team's buffers are cudaMemcpyAsync device-to-device. Opt-in: a .cu file compiled by nvcc
/// (CMake: enable_language(CUDA), link tether::cuda). See docs/exec.md.
///
///     tether::exec::cuda gpu{.stream = s};
///     tether::algo::lsgd<tether::team::worker, tether::exec::cuda> opt(gpu, w, n, {});
///     opt.step(tether::as_view<tether::mem::cuda>(x_dev, n), tether::as_view<tether::mem::cuda>(g_dev, n),
///     loss);
///
/// Kernels are asynchronous on `stream`: step() returns once the update is queued; fence() waits for it.

#if !defined(__CUDACC__)
#error \
    "tether/exec/cuda.hpp holds CUDA kernels: include it from a .cu file compiled by nvcc (CMake: enable_language(CUDA) and link tether::cuda); see docs/exec.md"
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/config.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/fused_update.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/detail/cuda_memory.hpp"

namespace tether::exec {

namespace detail {

/// The 16-byte vector type of T (float4 for float, double2 for double); void when there is none.
template <class T>
struct vec16 {
  using type = void;
};
template <>
struct vec16<float> {
  using type = float4;
};
template <>
struct vec16<double> {
  using type = double2;
};

/// f(i) for i in [0, n), grid-stride.
template <class F>
__global__ void grid_stride_kernel(F f, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    f(i);
}

/// value into p[0, n), grid-stride.
template <class T>
__global__ void fill_kernel(T* p, T value, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = value;
}

/// *flag = 1 when pred(i) holds for some i in [0, n): one block-wide vote, one store per block that hits.
template <class F>
__global__ void any_kernel(F pred, std::size_t n, int* flag) {
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  int hit = 0;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    hit |= pred(i) ? 1 : 0;
  if (__syncthreads_or(hit) != 0 && threadIdx.x == 0) atomicExch(flag, 1);
}

/// part[blockIdx.x] = the sum of f(i) over the block's grid-stride indices: each thread adds its indices in
/// order, then the block adds its threads' sums pairwise in shared memory (a fixed order for a given launch).
template <class R, class F>
__global__ void reduce_kernel(F f, std::size_t n, R* part) {
  extern __shared__ unsigned char reduce_shared[];
  R* sh = reinterpret_cast<R*>(reduce_shared);
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;
  R acc{};
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    acc += f(i);
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned s = 1; s < blockDim.x; s *= 2) {
    if (threadIdx.x % (2 * s) == 0 && threadIdx.x + s < blockDim.x) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

/// Per-thread registers of the vectorised fused kernel: W lanes of each buffer (one slot when a buffer count
/// is zero, never used then).
template <class T, std::size_t W, std::size_t K>
struct lanes {
  alignas(16) T v[K == 0 ? 1 : K][W];
};

/// A vector kernel (the fused step, or any kernel that opted in through tether::vector_kernel_traits) over
/// [0, n): a scalar head (until the buffers reach a 16-byte boundary), `nvec` vectors of W = 16/sizeof(T)
/// elements, a scalar tail. Each lane runs the kernel's own arithmetic, as on every other execution space:
/// the kernel only changes how elements travel between memory and registers.
template <class K>
__global__ void vector_kernel_launch(K k, std::size_t head, std::size_t nvec, std::size_t n) {
  using traits = vector_kernel_traits<K>;
  using T = typename traits::value_type;
  using V = typename vec16<T>::type;
  constexpr std::size_t W = 16 / sizeof(T);
  constexpr std::size_t NS = traits::states;
  constexpr std::size_t NB = traits::buffers;
  const std::size_t tid = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::size_t stride = static_cast<std::size_t>(blockDim.x) * gridDim.x;

  for (std::size_t j = tid; j < nvec; j += stride) {
    const std::size_t base = head + j * W;
    lanes<T, W, 1> x;
    lanes<T, W, 1> g;
    lanes<T, W, NS> s;
    lanes<T, W, NB> b;
    *reinterpret_cast<V*>(x.v[0]) = *reinterpret_cast<const V*>(k.x + base);
    if constexpr (traits::reads_g) *reinterpret_cast<V*>(g.v[0]) = *reinterpret_cast<const V*>(k.g + base);
#pragma unroll
    for (std::size_t q = 0; q != NS; ++q)
      *reinterpret_cast<V*>(s.v[q]) = *reinterpret_cast<const V*>(k.s[q] + base);
#pragma unroll
    for (std::size_t q = 0; q != NB; ++q)
      *reinterpret_cast<V*>(b.v[q]) = *reinterpret_cast<const V*>(k.b[q] + base);

    auto local = k;  // same contexts, pointers into registers
    local.x = x.v[0];
    local.g = g.v[0];
#pragma unroll
    for (std::size_t q = 0; q != NS; ++q) local.s[q] = s.v[q];
#pragma unroll
    for (std::size_t q = 0; q != NB; ++q) local.b[q] = b.v[q];
#pragma unroll
    for (std::size_t l = 0; l < W; ++l) local(l);

    *reinterpret_cast<V*>(k.x + base) = *reinterpret_cast<const V*>(x.v[0]);
#pragma unroll
    for (std::size_t q = 0; q != NS; ++q)
      *reinterpret_cast<V*>(k.s[q] + base) = *reinterpret_cast<const V*>(s.v[q]);
  }

  const std::size_t tail0 = head + nvec * W;
  const std::size_t scalars = head + (n - tail0);
  for (std::size_t t = tid; t < scalars; t += stride) k(t < head ? t : tail0 + (t - head));
}

/// Blocks of `block` threads for a grid-stride launch over `work` items: enough to fill the GPU (its SMs
/// times the blocks of `resident` threads an SM keeps), no more.
inline unsigned grid_for(std::size_t work, int block, int resident) {
  int dev = 0;
  int sms = 0;
  cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  const std::size_t wanted = (work + static_cast<std::size_t>(block) - 1) / static_cast<std::size_t>(block);
  const std::size_t cap = static_cast<std::size_t>(sms) * static_cast<std::size_t>(std::max(1, resident / block));
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min(wanted, cap)));
}

inline void check_launch() {
  cuda_check(cudaGetLastError(), "kernel launch");
}

}  // namespace detail

/// exec::cuda's tuning, one aggregate a user may override as CUB's tuning policies are
/// (`tether::exec::cuda{.stream = s, .tuning = {.block = 128}}`). docs/benchmarks.md#tuning says how each
/// value was chosen.
struct cuda_tuning {
  /// Threads per block. 256 keeps 8 blocks resident per SM for the fused kernels (27 to 48 registers a
  /// thread, docs/benchmarks.md#gpu-not-measured-yet); not yet measured against other values: no GPU was lent
  /// to the sessions that wrote exec::cuda, and bench_exec_gpu is the benchmark that will choose it.
  int block = 256;
  /// Threads an SM keeps resident (2048 on every architecture since Maxwell): a grid holds at most
  /// SMs * resident / block blocks, each looping grid-stride over the rest.
  int resident_threads_per_sm = 2048;
  /// 16-byte vector loads and stores in vector kernels (tether::vector_kernel_traits) when the buffers share
  /// their alignment.
  bool vectorize = true;
};

/// Runs every kernel as a hand-written CUDA kernel on `stream`.
struct cuda {
  using memory_space = mem::cuda;

  /// Owning storage for optimizer state: GPU global memory.
  template <class T>
  using buffer = detail::device_buffer<T>;

  cudaStream_t stream = nullptr;  ///< the stream kernels run on (nullptr: the default stream)
  cuda_tuning tuning{};           ///< block size, grid cap, vector accesses

  /// `n` elements set to `value` (allocated, filled and synchronised: errors surface here).
  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    buffer<T> b(n);
    if (n != 0) {
      detail::fill_kernel<T><<<grid(n), tuning.block, 0, stream>>>(b.data(), value, n);
      detail::check_launch();
      fence();
    }
    return b;
  }

  /// Calls `f(i)` for i in [0, n) in a grid-stride kernel.
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    if (n == 0) return;
    detail::grid_stride_kernel<F><<<grid(n), tuning.block, 0, stream>>>(f, n);
    detail::check_launch();
  }

  /// Copies are cudaMemcpyAsync device-to-device.
  template <class T>
  void parallel_for(std::size_t n, const kernels::copy<T>& f) const {
    if (n == 0 || f.src == f.dst) return;
    detail::cuda_check(cudaMemcpyAsync(f.dst, f.src, n * sizeof(T), cudaMemcpyDeviceToDevice, stream),
                       "cudaMemcpyAsync");
  }

  /// The fused optimizer step, and every kernel that opted into the vector path (tether::vector_kernel_traits):
  /// one launch, 16-byte vector accesses where every buffer allows them.
  template <class K>
    requires vector_kernel<K>
  void parallel_for(std::size_t n, const K& f) const {
    if (n == 0) return;
    using T = typename vector_kernel_traits<K>::value_type;
    constexpr std::size_t W = 16 / sizeof(T);
    std::size_t head = 0;
    std::size_t nvec = 0;
    if constexpr (!std::is_void_v<typename detail::vec16<T>::type>) {
      if (tuning.vectorize) {
        const std::size_t mis = misalignment(f);
        if (mis != bad_alignment && mis % sizeof(T) == 0) {
          head = std::min(n, ((16 - mis) % 16) / sizeof(T));
          nvec = (n - head) / W;
        }
      }
    }
    const std::size_t scalars = n - nvec * W;
    detail::vector_kernel_launch<K><<<grid(std::max(nvec, scalars)), tuning.block, 0, stream>>>(f, head, nvec, n);
    detail::check_launch();
  }

  /// True when `pred(i)` holds for some i in [0, n): a device reduction, one int back to the host.
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    if (n == 0) return false;
    int* flag = nullptr;
    detail::cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&flag), sizeof(int), stream),
                       "cudaMallocAsync");
    detail::cuda_check(cudaMemsetAsync(flag, 0, sizeof(int), stream), "cudaMemsetAsync");
    detail::any_kernel<F><<<grid(n), tuning.block, 0, stream>>>(pred, n, flag);
    detail::check_launch();
    int h = 0;
    detail::cuda_check(cudaMemcpyAsync(&h, flag, sizeof(int), cudaMemcpyDeviceToHost, stream),
                       "cudaMemcpyAsync");
    detail::cuda_check(cudaFreeAsync(flag, stream), "cudaFreeAsync");
    fence();
    return h != 0;
  }

  /// init + the sum of f(i) over [0, n): one launch leaves a sum per block in device memory, the host adds
  /// them in block order (the same bits on every run of a given launch shape). `R` is an arithmetic type or
  /// tether::sums.
  template <class R, class F>
  [[nodiscard]] R reduce(std::size_t n, R init, const F& f) const {
    if (n == 0) return init;
    const unsigned blocks = grid(n);
    R* part = nullptr;
    detail::cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&part), blocks * sizeof(R), stream),
                       "cudaMallocAsync");
    detail::reduce_kernel<R, F>
        <<<blocks, tuning.block, static_cast<std::size_t>(tuning.block) * sizeof(R), stream>>>(f, n, part);
    detail::check_launch();
    std::vector<R> host(blocks);
    detail::cuda_check(cudaMemcpyAsync(host.data(), part, blocks * sizeof(R), cudaMemcpyDeviceToHost, stream),
                       "cudaMemcpyAsync");
    detail::cuda_check(cudaFreeAsync(part, stream), "cudaFreeAsync");
    fence();
    for (const R& r : host) init += r;
    return init;
  }

  /// Waits for every kernel queued on the stream.
  void fence() const { detail::cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); }

  /// Host staging for communicators without device collectives (MPI without CUDA support): pinned memory.
  template <class T>
  [[nodiscard]] detail::pinned_buffer<T> allocate_host(std::size_t n) const {
    return detail::pinned_buffer<T>(n);
  }
  template <class T>
  void copy_to_host(const T* src, T* dst, std::size_t n) const {
    if (n == 0) return;
    detail::cuda_check(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, stream),
                       "cudaMemcpyAsync");
    fence();
  }
  template <class T>
  void copy_from_host(const T* src, T* dst, std::size_t n) const {
    if (n == 0) return;
    detail::cuda_check(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyHostToDevice, stream),
                       "cudaMemcpyAsync");
    fence();
  }

 private:
  static constexpr std::size_t bad_alignment = ~std::size_t{0};

  /// Blocks of a grid-stride launch over `work` items; tether::error on a tuning that cannot launch.
  [[nodiscard]] unsigned grid(std::size_t work) const {
    tether::detail::require(tuning.block > 0 && tuning.block <= 1024 && tuning.resident_threads_per_sm > 0,
                            "exec::cuda: tuning.block must be in [1, 1024] and resident_threads_per_sm > 0, got "
                            "block = ",
                            tuning.block, ", resident_threads_per_sm = ", tuning.resident_threads_per_sm);
    return detail::grid_for(work, tuning.block, tuning.resident_threads_per_sm);
  }

  /// The common address modulo 16 of every buffer a vector kernel touches, or bad_alignment if they differ.
  template <class K>
  static std::size_t misalignment(const K& f) {
    using traits = vector_kernel_traits<K>;
    const auto mod = [](const void* p) {
      return static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(p) % 16);
    };
    const std::size_t m = mod(f.x);
    bool same = true;
    if constexpr (traits::reads_g) same = same && mod(f.g) == m;
    for (std::size_t q = 0; q != traits::states; ++q) same = same && mod(f.s[q]) == m;
    for (std::size_t q = 0; q != traits::buffers; ++q) same = same && mod(f.b[q]) == m;
    return same ? m : bad_alignment;
  }
};

}  // namespace tether::exec
