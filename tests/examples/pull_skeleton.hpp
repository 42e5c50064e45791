#pragma once
/// \file
/// The pull skeleton of docs/concepts.md (toward_mean), with its two-worker scalar reference and a driver that
/// runs it on any execution space and buffer type: tests/examples/concept_skeletons.cpp runs it on host memory,
/// skeleton_device.cpp on Thrust's device vectors (OpenMP system) and on a memory space that is not the host's,
/// skeleton_cuda.cu on the GPU. The code between the snippet markers must match the docs (docs_snippets).
///
/// Catch2 is included by the test sources; worker threads record, the test's thread checks.

#include <tether/tether.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace skel {

// [snippet: pull_policy]
/// Every `period` steps the team averages its parameters into a buffer (one all-reduce), and at that step
/// each worker moves a fraction `strength` of the way toward the average, fused with its gradient step:
///   x <- x - eta*d(g) - strength*(x - mean_j x_j)
/// Written on the step environment's collectives and kernels, it runs wherever the buffers live: host
/// memory, or GPU memory with a GPU execution space.
struct toward_mean {
  struct options {
    std::uint32_t period = 8;
    float strength = 0.5f;
  };
  options opt{};  // filled from the optimizer's `.pull = {...}`

  static constexpr std::size_t buffers = 1;  // per-parameter target buffers: the team's mean

  template <class T>
  struct context {  // per-step scalars handed to force()
    T a;
  };

  void validate(int /*workers*/) const {
    if (opt.period == 0) throw tether::error("toward_mean: period must be > 0");
    if (!(opt.strength >= 0.0f && opt.strength <= 1.0f)) throw tether::error("toward_mean: strength in [0, 1]");
  }

  /// Before the first step (a collective, if it communicates: every worker calls it).
  template <class Env, class T, class S>
  void start(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}

  /// Before each step's fused update, with x as it is before the step. Returns whether force() acts.
  template <class Env, class T, class S>
  bool before(Env& env, tether::view<T, S> x, tether::pull_buffers<T, buffers, S> b, context<T>& c) {
    if (env.step == 0 || env.step % opt.period != 0) return false;
    env.copy(x, b[0]);                      // b[0] <- x: a kernel of the execution space
    env.allreduce_sum(b[0]);                // the sum over the team, wherever b[0] lives
    env.scale(b[0], T(1) / T(env.size()));  // the mean
    env.round = true;  // a communication round: the optimizer counts it and calls on_round
    c.a = T(opt.strength);
    return true;
  }

  /// After each step's fused update (EASGD's center update, a non-blocking average... would go here).
  template <class Env, class T, class S>
  void after(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}

  /// Per element: the amount subtracted from x, with the target buffers' elements as arguments.
  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T mean) {
    return c.a * (x - mean);
  }
};
static_assert(tether::pull_policy<toward_mean>);
// [end snippet]

/// The test problem: 2 workers, n = 6 parameters of the separable quadratic 1/2 sum a_i (x_i - c_i)^2.
struct toward_mean_case {
  static constexpr std::size_t n = 6;
  static constexpr std::uint32_t period = 3;
  static constexpr int steps = 20;
  static constexpr float lr = 0.05f;
  static constexpr float strength = 0.4f;
  static float a(std::size_t i) { return 0.5f + 0.25f * static_cast<float>(i); }
  static float c(std::size_t i) { return static_cast<float>(i % 3) - 1.0f; }
  static std::vector<float> start(int r) { return std::vector<float>(n, r == 0 ? -2.0f : 3.0f); }
  static void gradient(const std::vector<float>& x, std::vector<float>& g) {
    for (std::size_t i = 0; i < x.size(); ++i) g[i] = a(i) * (x[i] - c(i));
  }
};

/// The reference: both workers in one scalar loop; at a round both move toward the mean of their pre-step x.
inline std::vector<std::vector<float>> toward_mean_reference() {
  using k = toward_mean_case;
  std::vector<std::vector<float>> xr{k::start(0), k::start(1)};
  std::vector<float> g(k::n);
  for (std::uint64_t t = 0; t < k::steps; ++t) {
    std::vector<float> mean(k::n);
    for (std::size_t i = 0; i < k::n; ++i) mean[i] = (xr[0][i] + xr[1][i]) * 0.5f;
    const bool round = t > 0 && t % k::period == 0;
    for (auto& x : xr) {
      k::gradient(x, g);
      for (std::size_t i = 0; i < k::n; ++i)
        x[i] = x[i] - k::lr * g[i] - (round ? k::strength * (x[i] - mean[i]) : 0.0f);
    }
  }
  return xr;
}

/// User buffers that are std::vector<float> on the host.
struct host_vectors {
  using buffer = std::vector<float>;
  buffer make(std::size_t n) const { return buffer(n); }
  void upload(buffer& b, const std::vector<float>& v) const { b = v; }
  std::vector<float> download(const buffer& b) const { return b; }
  buffer& param(buffer& b) const { return b; }
};

/// Runs toward_mean with SGD on a team of 2 workers, on execution space `exec` with the user buffers of
/// `Adapter` (make, upload, download, param: what opt.step receives), and checks it against the reference.
template <class Exec, class Adapter>
void check_toward_mean(const Exec& exec, const Adapter& ad) {
  using k = toward_mean_case;
  tether::team team(2);
  std::vector<std::vector<float>> out(2);
  std::vector<std::uint64_t> rounds(2);
  team.run([&](tether::team::worker& w) {
    tether::optimizer<tether::step::sgd, toward_mean, tether::team::worker, Exec> opt(
        exec, w, k::n, {.lr = k::lr, .pull = {.period = k::period, .strength = k::strength}});
    auto x = ad.make(k::n);
    auto g = ad.make(k::n);
    ad.upload(x, k::start(w.rank()));
    std::vector<float> gh(k::n);
    for (int t = 0; t < k::steps; ++t) {
      k::gradient(ad.download(x), gh);  // the user's model, on the host
      ad.upload(g, gh);
      opt.step(ad.param(x), ad.param(g), 0.0);
    }
    out[static_cast<std::size_t>(w.rank())] = ad.download(x);
    rounds[static_cast<std::size_t>(w.rank())] = opt.stats().rounds;
  });
  const auto xr = toward_mean_reference();
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t i = 0; i < k::n; ++i) CHECK(out[r][i] == Approx(xr[r][i]).margin(1e-5));
  CHECK(rounds[0] == 6);  // steps 3, 6, ..., 18
  CHECK(rounds[1] == 6);
}

}  // namespace skel
