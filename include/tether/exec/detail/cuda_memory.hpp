#pragma once
/// \file
/// Owning device and pinned host buffers of the GPU execution spaces. Host code only (cuda_runtime_api.h);
/// included by exec/cuda.hpp and exec/thrust.hpp.

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "tether/exec/detail/cuda_check.hpp"

namespace tether::exec::detail {

/// GPU global memory (cudaMalloc: 256-byte aligned).
struct device_memory {
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    cuda_check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  static void release(void* p) noexcept { static_cast<void>(cudaFree(p)); }
};

/// Pinned (page-locked) host memory: staging for MPI and fast copies.
struct pinned_memory {
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    cuda_check(cudaMallocHost(&p, bytes), "cudaMallocHost");
    return p;
  }
  static void release(void* p) noexcept { static_cast<void>(cudaFreeHost(p)); }
};

/// Owning, move-only array of `n` T in the memory that `Memory` allocates (device_memory, pinned_memory).
template <class T, class Memory>
class cuda_array {
 public:
  using value_type = T;
  cuda_array() = default;
  explicit cuda_array(std::size_t n) : n_(n) {
    if (n != 0) p_ = static_cast<T*>(Memory::allocate(n * sizeof(T)));
  }
  cuda_array(cuda_array&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  cuda_array& operator=(cuda_array&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  cuda_array(const cuda_array&) = delete;
  cuda_array& operator=(const cuda_array&) = delete;
  ~cuda_array() { release(); }

  [[nodiscard]] T* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

 private:
  void release() noexcept {
    if (p_ != nullptr) Memory::release(p_);
    p_ = nullptr;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// Owning, move-only array in GPU global memory.
template <class T>
using device_buffer = cuda_array<T, device_memory>;

/// Owning, move-only array in pinned host memory.
template <class T>
using pinned_buffer = cuda_array<T, pinned_memory>;

}  // namespace tether::exec::detail
