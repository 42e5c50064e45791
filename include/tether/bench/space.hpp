#pragma once
/// \file
/// tether::bench::space: an execution space under benchmark, with a name, the sizes to run, how to time it,
/// the buffers its kernels work on (allocated and first-touched by the space itself), and its copy and triad
/// references, measured by the same space in the same run on the same N. Part of the opt-in benchmark kit
/// (tether/bench.hpp, component tether::benchmark, docs/benchmarks.md#benchmark-your-own-kernel).

#include <algorithm>
#include <concepts>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#endif

#include "tether/core/concepts.hpp"
#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"

namespace tether::bench {

/// How a space's benchmarks are timed.
enum class clock {
  automatic,    ///< CPU time of the benchmark thread for one-thread host spaces, wall clock otherwise
  cpu,          ///< CPU time (of the thread; of the process for threaded spaces): robust on a shared machine
  real,         ///< wall clock (threaded spaces on a machine of your own)
  device_fence, ///< wall clock around the kernel and the space's fence() (device spaces: manual time)
};

/// Options of a space under benchmark.
struct space_options {
  std::vector<std::size_t> sizes{std::size_t{1} << 20, std::size_t{1} << 24};  ///< N values to run
  bool threaded = false;          ///< the space runs a kernel on several threads (OpenMP, Thrust omp)
  clock timing = clock::automatic;
  int reference_samples = 7;      ///< timings of the copy and triad references; the median is kept
};

/// a[i] = b[i] + s*c[i]: STREAM's triad (12 bytes per element of float).
template <class T>
struct triad {
  T* a;
  const T* b;
  const T* c;
  T s;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { a[i] = b[i] + s * c[i]; }
};

/// Bandwidths of a space's references at one N, bytes/s.
struct reference {
  double copy = 0.0;   ///< kernels::copy through the space's parallel_for (8 bytes per float)
  double triad = 0.0;  ///< bench::triad through the space's parallel_for (12 bytes per float)
};

namespace detail {

/// Seconds on a clock: wall, or CPU time of this thread or of the process.
inline double seconds(bool cpu, bool process) {
  if (!cpu) return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts{};
  clock_gettime(process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// The buffers of one space.
struct pool_base {
  virtual ~pool_base() = default;
};

/// The buffers held now, by whichever space asked last: one space's buffers exist at a time.
struct holder {
  std::uint64_t owner = 0;  // the id of the space whose buffers these are; 0: none
  std::shared_ptr<pool_base> buffers;
  void release() {
    buffers.reset();
    owner = 0;
  }
  void hold(std::uint64_t o, std::shared_ptr<pool_base> b) {
    owner = o;
    buffers = std::move(b);
  }
};
inline holder& held_buffers() {
  static holder h;
  return h;
}

/// A new id for a space (never 0, never reused in a process).
inline std::uint64_t next_space_id() {
  static std::uint64_t next = 0;
  return ++next;
}

#if defined(__CUDACC__)
/// Seconds of `reps` calls of f, between two CUDA events recorded on `stream` (what the GPU spent on them).
template <class F>
double event_seconds(cudaStream_t stream, F& f, std::size_t reps) {
  cudaEvent_t a{};
  cudaEvent_t b{};
  const auto ok = [](cudaError_t e, const char* what) {
    if (e != cudaSuccess)
      throw runtime_error(tether::detail::concat("tether: bench: ", what, " failed: ", cudaGetErrorString(e)));
  };
  ok(cudaEventCreate(&a), "cudaEventCreate");
  ok(cudaEventCreate(&b), "cudaEventCreate");
  ok(cudaEventRecord(a, stream), "cudaEventRecord");
  for (std::size_t r = 0; r < reps; ++r) f();
  ok(cudaEventRecord(b, stream), "cudaEventRecord");
  ok(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0.0f;
  ok(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  ok(cudaEventDestroy(a), "cudaEventDestroy");
  ok(cudaEventDestroy(b), "cudaEventDestroy");
  return 1e-3 * static_cast<double>(ms);
}
#endif

/// Waits for queued kernels on asynchronous spaces.
template <class Exec>
void fence(const Exec& e) {
  if constexpr (requires { e.fence(); }) e.fence();
}

}  // namespace detail

/// A named execution space under benchmark. Cheap to copy: copies share the buffers and the references.
template <class Exec>
class space {
  static_assert(execution_space<Exec>,
                "tether::bench::space: Exec does not satisfy tether::execution_space (see docs/concepts.md)");

 public:
  using exec_type = Exec;
  /// Buffers a kernel may use: x, g, up to 4 step state buffers and up to 4 pull buffers (and scratch).
  static constexpr std::size_t slots = 12;

  space(std::string name, Exec e = {}, space_options o = {})
      : state_(std::make_shared<shared>(std::move(name), std::move(e), std::move(o))) {
    auto& s = *state_;
    detail_require_sizes(s.opt.sizes);
    s.max_n = *std::max_element(s.opt.sizes.begin(), s.opt.sizes.end());
  }

  [[nodiscard]] const std::string& name() const noexcept { return state_->name; }
  [[nodiscard]] const Exec& exec() const noexcept { return state_->exec; }
  [[nodiscard]] const space_options& options() const noexcept { return state_->opt; }
  /// True when the space's memory is not the host's (its benchmarks use manual time around fence()).
  [[nodiscard]] static constexpr bool on_device() noexcept {
    return !std::is_same_v<typename Exec::memory_space, mem::host>;
  }

  /// The clock its benchmarks use.
  [[nodiscard]] clock timing() const noexcept {
    const auto t = state_->opt.timing;
    if (t != clock::automatic) return t;
    if (on_device()) return clock::device_fence;
    return state_->opt.threaded ? clock::real : clock::cpu;
  }

  /// Buffer `k` of the space (allocated by the space for the largest N, first touch by its own threads),
  /// holding `init(k)` until a kernel changes it. The buffers of one space exist at a time: asking for a
  /// space's buffers frees those of the space asked before.
  [[nodiscard]] typename Exec::template buffer<float>& buffer(std::size_t k) {
    tether::detail::require(k < slots, "bench::space: buffer k = ", k, ", the space has ", slots);
    auto& cur = detail::held_buffers();
    if (cur.owner != state_->id) {
      cur.release();  // free the previous space's buffers first
      try {
        cur.hold(state_->id, std::make_shared<pool>(state_->exec, state_->max_n));
      } catch (const std::exception& e) {
        throw error(tether::detail::concat("tether: bench::space '", state_->name, "': cannot allocate ", slots,
                                           " buffers of N = ", state_->max_n, " floats: ", e.what()));
      }
    }
    return static_cast<pool&>(*cur.buffers).b[k];
  }

  /// The value buffer k starts at: x = 1, g = 0.75, the others 0.5 (with small rates, values stay normal).
  [[nodiscard]] static constexpr float init(std::size_t k) noexcept { return k == 0 ? 1.0f : (k == 1 ? 0.75f : 0.5f); }

  /// Runs `f` once as a warm-up (unless `warm_up` is false) and then `reps` times; returns the seconds of the
  /// `reps` calls on this space's clock (device spaces: up to the end of fence()).
  template <class F>
  double time(F&& f, std::size_t reps, bool warm_up = true) const {
    if (warm_up) f();
    detail::fence(state_->exec);
#if defined(__CUDACC__)
    if constexpr (requires(const Exec& e) {
                    { e.stream } -> std::convertible_to<cudaStream_t>;
                  }) {
      if (timing() == clock::device_fence) return detail::event_seconds(state_->exec.stream, f, reps);
    }
#endif
    const clock c = timing();
    const bool cpu = c == clock::cpu;
    const double t0 = detail::seconds(cpu, state_->opt.threaded);
    for (std::size_t r = 0; r < reps; ++r) f();
    detail::fence(state_->exec);
    return detail::seconds(cpu, state_->opt.threaded) - t0;
  }

  /// The copy and triad bandwidths of this space at `n`: the median of reference_samples timings, each of at
  /// least 32M elements, measured the first time they are asked for (right before the space's first kernel at
  /// that N) and then kept.
  [[nodiscard]] reference references(std::size_t n) {
    auto& refs = state_->refs;
    if (auto it = refs.find(n); it != refs.end()) return it->second;
    float* a = buffer(slots - 1).data();
    const float* b = buffer(1).data();
    const float* c = buffer(2).data();
    const std::size_t reps = std::max<std::size_t>(1, (std::size_t{1} << 25) / std::max<std::size_t>(n, 1));
    const auto median = [&](auto&& kernel, double bytes_per_elem) {
      std::vector<double> bw;
      for (int s = 0; s < std::max(1, state_->opt.reference_samples); ++s) {
        const double sec = time([&] { state_->exec.parallel_for(n, kernel); }, reps);
        bw.push_back(bytes_per_elem * static_cast<double>(n) * static_cast<double>(reps) /
                     std::max(sec, 1e-12));
      }
      std::nth_element(bw.begin(), bw.begin() + static_cast<std::ptrdiff_t>(bw.size() / 2), bw.end());
      return bw[bw.size() / 2];
    };
    reference r;
    r.copy = median(kernels::copy<float>{b, a}, 8.0);
    r.triad = median(triad<float>{a, b, c, 0.5f}, 12.0);
    refs[n] = r;
    return r;
  }

 private:
  struct shared {
    shared(std::string n, Exec e, space_options o) : name(std::move(n)), exec(std::move(e)), opt(std::move(o)) {}
    shared(const shared&) = delete;
    shared& operator=(const shared&) = delete;
    ~shared() {
      if (detail::held_buffers().owner == id) detail::held_buffers().release();  // the last copy frees them
    }
    std::uint64_t id = detail::next_space_id();
    std::string name;
    Exec exec;
    space_options opt;
    std::size_t max_n = 0;
    std::map<std::size_t, reference> refs;
  };
  struct pool : detail::pool_base {
    pool(const Exec& e, std::size_t n) {
      for (std::size_t k = 0; k < slots; ++k) b[k] = e.template allocate<float>(n, init(k));
    }
    std::array<typename Exec::template buffer<float>, slots> b;
  };
  static void detail_require_sizes(const std::vector<std::size_t>& sizes) {
    tether::detail::require(!sizes.empty(), "bench::space: sizes must not be empty");
    for (const std::size_t n : sizes)
      tether::detail::require(n > 0, "bench::space: every size must be > 0, got N = ", n);
  }

  std::shared_ptr<shared> state_;
};

/// Frees the buffers the kit holds (call before a runtime such as Kokkos finalizes).
inline void release_buffers() { detail::held_buffers().release(); }

}  // namespace tether::bench
