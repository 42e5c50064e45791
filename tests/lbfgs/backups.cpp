// A straggling replica with backup copies on: the batch gradient is exact, i.e. the gradient returned at the
// result equals, bit for bit, the serial batch gradient written here (each portion's mean gradient weighted
// by n_k / M, added in portion order), in double and in float; late copies were dropped (duplicates > 0) and
// every portion counted exactly once per batch (portions = P x evaluations). With backups off (the straggler
// then merely slow), and on one worker, the run gives the same bits.
// The straggler does not finish a portion before another worker has evaluated the same portion (a backup
// copy), so a late copy arrives in every batch it works in, whatever the scheduling; it gives up after 2 s.

#include <tether/comm/shared_memory.hpp>
#include <tether/core/shard_layout.hpp>
#include <tether/lbfgs/minimize.hpp>
#include <tether/problems/logistic.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <span>
#include <thread>
#include <vector>

namespace {

/// How many times each portion (by its first sample) was evaluated, by any worker.
struct evaluation_counts {
  std::vector<std::atomic<int>> by_first_sample;
  explicit evaluation_counts(std::size_t samples) : by_first_sample(samples) {}
};

/// The logistic regression on one worker: a straggler waits, before returning a portion, until another worker
/// evaluated the same portion (at most 2 s); a slow one sleeps `delay` per evaluation.
template <class T>
struct slowed {
  const tether::problems::logistic<T>* data;
  evaluation_counts* counts;
  bool straggler = false;
  std::chrono::microseconds delay{0};
  std::size_t dimension() const { return data->dimension(); }
  std::size_t samples() const { return data->samples(); }
  double evaluate(std::span<const T> x, std::span<T> g, const tether::batch& b) const {
    auto& count = counts->by_first_sample[b.samples.empty() ? 0 : b.samples.front()];
    const int before = count.fetch_add(1);
    if (straggler) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (count.load() == before + 1 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    return data->evaluate(x, g, b);
  }
};

/// The serial batch gradient of the library's definition, in T: c_k = T((n_k / M) * g_k), added in portion
/// order into zero.
template <class T>
std::vector<T> serial_batch_gradient(const tether::problems::logistic<T>& p, const std::vector<T>& x,
                                     std::size_t portions) {
  const std::size_t m = p.samples();
  const tether::shard_layout layout(m, std::min(portions, m));
  std::vector<T> g(x.size(), T(0)), gk(x.size());
  std::vector<std::size_t> idx;
  for (std::size_t k = 0; k < layout.shards(); ++k) {
    idx.resize(layout.count(k));
    std::iota(idx.begin(), idx.end(), layout.begin(k));
    (void)p.evaluate(std::span<const T>(x), std::span<T>(gk), tether::batch{.samples = idx});
    const double w = static_cast<double>(layout.count(k)) / static_cast<double>(m);
    for (std::size_t i = 0; i < x.size(); ++i) g[i] += static_cast<T>(w * static_cast<double>(gk[i]));
  }
  return g;
}

template <class T>
struct outcome {
  tether::lbfgs::result r;
  std::vector<T> x, g;
};

/// A run on p workers; worker `slow_worker` straggles (straggle) or sleeps `delay` per portion.
template <class T>
outcome<T> run(int p, int slow_worker, bool straggle, std::chrono::microseconds delay,
               const tether::problems::logistic<T>& data, const tether::lbfgs::options& o) {
  std::vector<outcome<T>> out(static_cast<std::size_t>(p));
  evaluation_counts counts(data.samples());
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    const bool slow = w.rank() == slow_worker;
    slowed<T> mine{&data, &counts, slow && straggle, slow ? delay : std::chrono::microseconds(0)};
    auto& res = out[static_cast<std::size_t>(w.rank())];
    res.x.assign(data.dimension(), T(0));
    res.g.assign(data.dimension(), T(0));
    res.r = tether::lbfgs::minimize(tether::exec::serial{}, w, mine, res.x, res.g, o);
  });
  for (int r = 1; r < p; ++r)
    CHECK(std::memcmp(out[static_cast<std::size_t>(r)].x.data(), out[0].x.data(),
                      out[0].x.size() * sizeof(T)) == 0);
  return out[0];
}

template <class T>
void check_exact(double epsilon) {
  const tether::problems::logistic<T> data({.samples = 3000, .features = 10, .l2 = 1e-3, .seed = 21});
  constexpr std::size_t portions = 24;
  // Shards on workers 0 and 1: the slow worker 2 is a pure replica. Queue depth 1: a replica never holds a
  // queued copy that a cancel could drop, so a backup that wins always leaves a late copy to drop.
  tether::lbfgs::options o{
      .history = 5, .epsilon = epsilon, .portions = portions, .shards = 2, .queue_depth = 1, .timeout = 60.0};
  o.backup_after = 1.0;
  const auto slow = run<T>(3, 2, true, std::chrono::microseconds(0), data, o);
  REQUIRE(slow.r.status == tether::lbfgs::outcome::converged);
  const std::vector<T> ref = serial_batch_gradient(data, slow.x, portions);
  CHECK(std::memcmp(slow.g.data(), ref.data(), ref.size() * sizeof(T)) == 0);
  CHECK(slow.r.portions == portions * slow.r.function_evaluations);
  CHECK(slow.r.backups > 0);
  CHECK(slow.r.duplicates > 0);
  std::size_t per_iteration = 0;
  for (const auto& h : slow.r.history) per_iteration += h.portions;
  CHECK(per_iteration <= slow.r.portions);

  o.backups = false;
  const auto plain = run<T>(3, 2, false, std::chrono::milliseconds(1), data, o);
  CHECK(plain.r.backups == 0);
  CHECK(plain.r.duplicates == 0);
  CHECK(std::memcmp(plain.x.data(), slow.x.data(), slow.x.size() * sizeof(T)) == 0);
  CHECK(std::memcmp(plain.g.data(), slow.g.data(), slow.g.size() * sizeof(T)) == 0);
  const auto one = run<T>(1, -1, false, std::chrono::microseconds(0), data, o);
  CHECK(std::memcmp(one.x.data(), slow.x.data(), slow.x.size() * sizeof(T)) == 0);
  CHECK(one.r.iterations == slow.r.iterations);
}

}  // namespace

TEST_CASE("A slow replica with backups: the batch gradient is the serial portion-order sum (double)",
          "[lbfgs][backups]") {
  check_exact<double>(1e-8);
}

TEST_CASE("A slow replica with backups: the batch gradient is the serial portion-order sum (float)",
          "[lbfgs][backups]") {
  check_exact<float>(1e-4);
}
