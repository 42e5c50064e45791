#pragma once
/// \file
/// A test execution space whose memory space is not mem::host, with host memory underneath: it forces
/// tether's device-memory paths (device collectives, staging through host buffers, checkpoints' host copies)
/// on the CPU. Its loops are exec::serial's; it can count its staging copies.

#include <tether/core/concepts.hpp>
#include <tether/exec/serial.hpp>
#include <tether/core/view.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tether_test {

/// A memory space tether knows nothing about.
struct fake_memory {};

/// Counts of a fake device's host copies (shared by the copies of the space).
struct copies {
  std::atomic<std::uint64_t> to_host{0};
  std::atomic<std::uint64_t> from_host{0};
};

/// exec::serial's loops, claiming fake_memory; stages through host buffers, counted in `*count` when set.
struct fake_device {
  using memory_space = fake_memory;
  template <class T>
  using buffer = std::vector<T, tether::aligned_allocator<T>>;
  copies* count = nullptr;

  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    return buffer<T>(n, value);
  }
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    for (std::size_t i = 0; i < n; ++i) f(i);
  }
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    bool r = false;
    for (std::size_t i = 0; i < n; ++i) r = r || static_cast<bool>(pred(i));
    return r;
  }
  void fence() const {}
  template <class T>
  [[nodiscard]] std::vector<T> allocate_host(std::size_t n) const {
    return std::vector<T>(n);
  }
  template <class T>
  void copy_to_host(const T* src, T* dst, std::size_t n) const {
    if (count != nullptr) ++count->to_host;
    if (n != 0) std::memcpy(dst, src, n * sizeof(T));
  }
  template <class T>
  void copy_from_host(const T* src, T* dst, std::size_t n) const {
    if (count != nullptr) ++count->from_host;
    if (n != 0) std::memcpy(dst, src, n * sizeof(T));
  }
};
static_assert(tether::execution_space<fake_device>);

/// A host vector seen as a buffer in fake_memory.
template <class T>
tether::view<T, fake_memory> on_device(std::vector<T>& v) {
  return tether::as_view<fake_memory>(v.data(), v.size());
}

}  // namespace tether_test
