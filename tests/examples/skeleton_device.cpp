// The pull skeleton of docs/concepts.md (toward_mean), unchanged, on device memory: exec::thrust_device over
// thrust::device_vector buffers where this translation unit's device system is OpenMP
// (THRUST_DEVICE_SYSTEM=OMP, set by CMake), and on an execution space whose memory space is not the host's
// (host memory underneath), which takes the thread team's device collectives. Both against the two-worker
// scalar reference of pull_skeleton.hpp. skeleton_cuda.cu runs it on the GPU.
#include <catch2/catch.hpp>

#include <cstddef>
#include <vector>

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include "pull_skeleton.hpp"
#include "tether/exec/thrust.hpp"

namespace {

/// User buffers that are thrust::device_vector<float>, handed to tether directly.
struct device_vectors {
  using buffer = thrust::device_vector<float>;
  buffer make(std::size_t n) const { return buffer(n); }
  void upload(buffer& b, const std::vector<float>& v) const { thrust::copy(v.begin(), v.end(), b.begin()); }
  std::vector<float> download(const buffer& b) const {
    std::vector<float> v(b.size());
    thrust::copy(b.begin(), b.end(), v.begin());
    return v;
  }
  buffer& param(buffer& b) const { return b; }
};

/// A memory space tether knows nothing about.
struct other_memory {};

/// Thrust's device system, claiming other_memory: every buffer the pull touches goes through the team's
/// (exec, view) collectives instead of the host path.
struct other_space {
  using memory_space = other_memory;
  template <class T>
  using buffer = tether::exec::thrust_device::buffer<T>;
  tether::exec::thrust_device inner{};
  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    return inner.allocate<T>(n, value);
  }
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    inner.parallel_for(n, f);
  }
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    return inner.any(n, pred);
  }
};

/// User buffers that are device vectors seen as views in other_memory.
struct other_views : device_vectors {
  tether::view<float, other_memory> param(buffer& b) const {
    return tether::as_view<other_memory>(thrust::raw_pointer_cast(b.data()), b.size());
  }
};

}  // namespace

TEST_CASE("pull skeleton on exec::thrust_device over thrust::device_vector (OpenMP device system)",
          "[examples][thrust]") {
  STATIC_REQUIRE(tether::execution_space<tether::exec::thrust_device>);
  skel::check_toward_mean(tether::exec::thrust_device{}, device_vectors{});
}

TEST_CASE("pull skeleton on a memory space that is not the host's (the team's device collectives)",
          "[examples][thrust]") {
  STATIC_REQUIRE_FALSE(std::is_same_v<other_space::memory_space, tether::mem::host>);
  skel::check_toward_mean(other_space{}, other_views{});
}
