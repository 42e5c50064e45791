#pragma once
/// \file
/// Owning device and pinned host buffers of the GPU execution spaces. Host code only (cuda_runtime_api.h);
/// included by exec/cuda.hpp and exec/thrust.hpp.

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "tether/exec/detail/cuda_check.hpp"

namespace tether::exec::detail {

/// Owning, move-only array in GPU global memory (cudaMalloc: 256-byte aligned).
template <class T>
class device_buffer {
 public:
  using value_type = T;
  device_buffer() = default;
  explicit device_buffer(std::size_t n) : n_(n) {
    if (n != 0) {
      void* p = nullptr;
      cuda_check(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
      p_ = static_cast<T*>(p);
    }
  }
  device_buffer(device_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() { release(); }

  [[nodiscard]] T* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

 private:
  void release() noexcept {
    if (p_ != nullptr) static_cast<void>(cudaFree(p_));
    p_ = nullptr;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// Owning, move-only array in pinned (page-locked) host memory: staging for MPI and fast copies.
template <class T>
class pinned_buffer {
 public:
  using value_type = T;
  pinned_buffer() = default;
  explicit pinned_buffer(std::size_t n) : n_(n) {
    if (n != 0) {
      void* p = nullptr;
      cuda_check(cudaMallocHost(&p, n * sizeof(T)), "cudaMallocHost");
      p_ = static_cast<T*>(p);
    }
  }
  pinned_buffer(pinned_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  pinned_buffer& operator=(pinned_buffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  ~pinned_buffer() { release(); }

  [[nodiscard]] T* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

 private:
  void release() noexcept {
    if (p_ != nullptr) static_cast<void>(cudaFreeHost(p_));
    p_ = nullptr;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace tether::exec::detail
