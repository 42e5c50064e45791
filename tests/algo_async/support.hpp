#pragma once
/// \file
/// Helpers of the asynchronous-algorithm tests: the problems, their references (the quadratic's known optimum,
/// the logistic problem's optimum by full-batch gradient descent written here), a worker's training loop, and
/// a bound on how far workers drift apart, and a one-shot signal with a generous timeout that turns "a worker
/// had to wait" into a failed check instead of a hang.
///
/// Catch2 v2 assertions are not thread-safe: worker code only records what it saw (slots indexed by rank);
/// every CHECK runs on the test's thread after team.run() has returned.

#include <tether/core/rng.hpp>
#include <tether/problems/logistic.hpp>
#include <tether/problems/quadratic.hpp>

#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace async_test {

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

/// A worker's starting point: uniform in [-1, 1], different per rank.
inline std::vector<float> start_point(std::size_t n, int rank) {
  tether::rng r(tether::derive_seed(5, static_cast<std::uint64_t>(rank)));
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(2.0 * r.uniform() - 1.0);
  return x;
}

/// The loss and gradient of worker `rank` at step t: noisy quadratic (its own noise), or a minibatch of 16
/// samples of the whole logistic data set (i.i.d. workers: a worker that runs alone for a while must not drift
/// to the optimum of a shard).
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

/// Bounds how far the workers' step counts drift apart: every worker waits for the others once every
/// `every` steps of the test's loop (never inside step(): the rounds still run in the background).
///
/// The convergence of the asynchronous algorithms holds for bounded staleness. Without a bound the scheduler
/// decides it: on 2 cores with 4 worker threads (and slower still under a sanitizer) one worker can run its
/// 400 steps before another has run 10, and is then pulled toward that worker's early copy; the convergence
/// checks would test the scheduler. With the bound a copy is at most a few rounds old, whatever the machine.
class skew_bound {
 public:
  skew_bound(int workers, std::uint64_t every) : barrier_(workers), every_(every) {}
  /// Called by every worker before its step t.
  void before_step(std::uint64_t t) {
    if (t != 0 && t % every_ == 0) barrier_.arrive_and_wait();
  }

 private:
  std::barrier<> barrier_;
  std::uint64_t every_;
};

/// Steps [from, to) of a worker's loop; with `skew`, the workers drift at most that bound apart.
template <class Opt, class Problem>
void train(Opt& opt, const Problem& p, std::vector<float>& x, std::vector<float>& g, int rank, std::uint64_t from,
           std::uint64_t to, skew_bound* skew = nullptr) {
  for (std::uint64_t t = from; t < to; ++t) {
    if (skew != nullptr) skew->before_step(t);
    opt.step(x, g, gradient(p, x, g, rank, t));
  }
}

/// A counter that one thread waits on until it reaches a target. The timeout (far longer than the test runs)
/// only exists so that a broken implementation fails the test rather than hanging it.
class signal {
 public:
  void add() {
    std::lock_guard lk(m_);
    ++count_;
    cv_.notify_all();
  }
  /// True when the count reached `target`, false after a minute without.
  bool wait_for(int target) {
    std::unique_lock lk(m_);
    return cv_.wait_for(lk, std::chrono::seconds(60), [&] { return count_ >= target; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int count_ = 0;
};

}  // namespace async_test
