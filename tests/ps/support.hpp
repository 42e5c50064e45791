#pragma once
/// \file
/// Helpers of the parameter-server tests: the problems, a replica's deterministic gradients, and references
/// written here (sequential SGD and Adagrad loops, the quadratic's known optimum, the logistic problem's optimum
/// by full-batch gradient descent).
///
/// Catch2 v2 assertions are not thread-safe: worker code records what it saw (slots indexed by rank); every
/// CHECK runs on the test's thread after team.run() has returned.

#include <tether/core/rng.hpp>
#include <tether/problems/logistic.hpp>
#include <tether/problems/quadratic.hpp>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace ps_test {

inline const tether::problems::quadratic<float>& quad() {
  static const tether::problems::quadratic<float> q(64, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 11});
  return q;
}
inline const tether::problems::logistic<float>& logit() {
  static const tether::problems::logistic<float> l({.samples = 1024, .features = 15, .l2 = 1e-3, .seed = 12});
  return l;
}

/// Mean squared distance to the quadratic's optimum.
inline double distance2(std::span<const float> x) {
  double s = 0;
  const auto c = quad().optimum();
  for (std::size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - double(c[i])) * (double(x[i]) - double(c[i]));
  return s / static_cast<double>(x.size());
}

/// Full-batch loss of the logistic problem.
inline double full_loss(std::span<const float> w) {
  std::vector<float> g(w.size());
  return logit().evaluate(w, g, {});
}

/// The logistic problem's optimal loss, by plain full-batch gradient descent (strongly convex: l2 > 0).
inline double logistic_optimum() {
  std::vector<float> w(logit().dimension(), 0.0f);
  std::vector<float> g(w.size());
  double loss = 0;
  for (int it = 0; it < 3000; ++it) {
    loss = logit().evaluate(w, g, {});
    for (std::size_t i = 0; i < w.size(); ++i) w[i] -= 0.5f * g[i];
  }
  return loss;
}

/// A starting point: uniform in [-1, 1] (the same for every replica unless `rank` differs).
inline std::vector<float> start_point(std::size_t n, int rank = 0) {
  tether::rng r(tether::derive_seed(5, static_cast<std::uint64_t>(rank)));
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(2.0 * r.uniform() - 1.0);
  return x;
}

/// Loss and gradient of replica `rank` at its step t: the noisy quadratic (its own noise) or a minibatch of 16
/// samples of the logistic data set. Deterministic in (rank, t, x).
template <class Problem>
double gradient(const Problem& p, std::span<const float> x, std::span<float> g, int rank, std::uint64_t t) {
  if constexpr (requires { p.samples(); }) {
    tether::rng r(tether::derive_seed(3, static_cast<std::uint64_t>(rank), t));
    std::vector<std::size_t> idx(16);
    for (auto& i : idx) i = static_cast<std::size_t>(r.below(p.samples()));
    return p.evaluate(x, g, tether::batch{idx, 0});
  } else {
    return p.evaluate(x, g, tether::batch{{}, tether::derive_seed(3, static_cast<std::uint64_t>(rank), t)});
  }
}

/// Replica 0's gradient on the quadratic at step t, with g[0] = 3e38 at steps 2 and 3: each is finite, their sum
/// (the push after step 3 with n_push = 2) overflows to +inf.
inline double overflowing_gradient(std::span<const float> x, std::span<float> g, std::uint64_t t) {
  const double loss = gradient(quad(), x, g, 0, t);
  if (t == 2 || t == 3) g[0] = 3e38f;
  return loss;
}

/// What one replica with SGD shards at rate lr, n_push = n_fetch = 2 and no local step ends with after `steps`
/// steps of overflowing_gradient, the pushes that are not finite left out: a plain loop.
inline std::vector<float> overflow_reference(float lr, std::uint64_t steps) {
  std::vector<float> w = start_point(quad().dimension());
  std::vector<float> x = w, g(w.size()), acc(w.size());
  for (std::uint64_t t = 0; t < steps; ++t) {
    overflowing_gradient(x, g, t);
    for (std::size_t i = 0; i < w.size(); ++i) acc[i] = t % 2 == 0 ? g[i] : acc[i] + g[i];
    if (t % 2 == 0) continue;
    bool finite = true;
    for (float v : acc) finite = finite && std::isfinite(v);
    if (finite)
      for (std::size_t i = 0; i < w.size(); ++i) w[i] -= lr * acc[i];
    x = w;
  }
  return w;
}

/// A counter that a thread waits on until it reaches a target; the minute-long timeout only turns a broken
/// implementation into a failed check instead of a hang.
class signal {
 public:
  void add() {
    std::lock_guard lk(m_);
    ++count_;
    cv_.notify_all();
  }
  bool wait_for(int target, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock lk(m_);
    return cv_.wait_for(lk, limit, [&] { return count_ >= target; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int count_ = 0;
};

}  // namespace ps_test
