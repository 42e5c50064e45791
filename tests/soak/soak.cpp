// The soak: many short runs of the thread team's collectives and of every team algorithm (LSGD with one and
// two levels, EASGD, local SGD, Overlap-Local-SGD, asynchronous LSGD and EASGD, Downpour, SwarmSGD), with
// random team sizes, parameter counts and step counts, random delays inside the workers' loops, and, in about
// a third of the runs, one worker that throws at a random step. Each run must end within a bound (a watchdog
// aborts the process otherwise) and as promised (docs/reliability.md):
//   - without a throw: run() returns, every worker took every step, its parameters are finite, and the
//     collectives' results equal sums computed here from the inputs (integer-valued, so exact in any order);
//   - with a throw: run() rethrows that worker's own exception (not a follow-on error of another worker).
// It runs for TETHER_SOAK_SECONDS seconds (default 8; scripts/soak.sh runs it longer under ThreadSanitizer and
// AddressSanitizer with LeakSanitizer) from seed TETHER_SOAK_SEED, and prints its counts.

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using worker = tether::team::worker;
using clock_type = std::chrono::steady_clock;

/// The exception an injected fault throws; `id` tells it from any other.
struct injected_fault : std::runtime_error {
  explicit injected_fault(std::uint64_t id) : std::runtime_error("soak: injected fault"), id(id) {}
  std::uint64_t id;
};

/// One run's random plan, drawn on the test's thread.
struct plan {
  std::uint64_t id = 0;
  int workers = 2;
  std::size_t n = 8;
  int steps = 40;
  int thrower = -1;      // worker that throws, -1 for none
  int throw_step = 0;    // at this step
  std::uint64_t seed = 0;
};

/// Sleeps a few microseconds at random steps: reorders the workers without slowing the soak much.
struct jitter {
  std::mt19937_64 gen;
  void operator()() {
    if (gen() % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(gen() % 300));
  }
};

/// Aborts the process when one run takes longer than the bound: a hang is a failure, not a slow test.
class watchdog {
 public:
  explicit watchdog(std::chrono::seconds bound) : bound_(bound), thread_([this] { watch(); }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void begin(const std::string& what) {
    std::lock_guard lock(m_);
    what_ = what;
    started_ = clock_type::now();
    running_ = true;
  }
  void end() {
    std::lock_guard lock(m_);
    running_ = false;
  }

 private:
  void watch() {
    std::unique_lock lock(m_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (running_ && clock_type::now() - started_ > bound_) {
        std::fprintf(stderr, "soak: HANG: %s did not end within %lld s\n", what_.c_str(),
                     static_cast<long long>(bound_.count()));
        std::abort();
      }
    }
  }
  std::chrono::seconds bound_;
  std::mutex m_;
  std::condition_variable cv_;
  std::string what_;
  clock_type::time_point started_{};
  bool running_ = false;
  bool stop_ = false;
  std::thread thread_;
};

/// What the workers of one run recorded (checked on the test's thread).
struct record {
  std::vector<std::uint64_t> steps;
  std::vector<int> finite;  // 1 when the worker's parameters ended finite
  std::vector<int> exact;   // 1 when the collectives matched their references
  explicit record(int p)
      : steps(static_cast<std::size_t>(p)), finite(static_cast<std::size_t>(p)), exact(static_cast<std::size_t>(p)) {}
};

bool all_finite(const std::vector<float>& x) {
  for (float v : x)
    if (!std::isfinite(v)) return false;
  return true;
}

/// The steps of one worker with optimizer `opt` on `problem`, with jitter and the plan's fault.
template <class Opt>
void train(Opt& opt, const plan& pl, const tether::problems::quadratic<float>& problem, worker& w, record& rec) {
  const auto me = static_cast<std::size_t>(w.rank());
  std::vector<float> x(pl.n, 0.0f), g(pl.n);
  jitter jit{std::mt19937_64(pl.seed + me)};
  for (int t = 0; t < pl.steps; ++t) {
    if (w.rank() == pl.thrower && t == pl.throw_step) throw injected_fault(pl.id);
    jit();
    const double loss = problem.evaluate(x, g, {{}, tether::derive_seed(pl.seed, w.rank(), t)});
    opt.step(x, g, loss);
    ++rec.steps[me];
  }
  opt.finish(x);
  rec.finite[me] = all_finite(x) ? 1 : 0;
  rec.exact[me] = 1;
}

/// Raw collectives: sums, broadcasts, elections and non-blocking sums against references computed from the
/// inputs (worker r's value at element i and call k is (r + 1) * (i + k) mod 7, small integers: exact sums).
void collectives(const plan& pl, worker& w, record& rec) {
  const auto me = static_cast<std::size_t>(w.rank());
  const int p = w.size();
  jitter jit{std::mt19937_64(pl.seed + me)};
  bool ok = true;
  const auto value = [](int r, std::size_t i, int k) { return static_cast<float>(((r + 1) * (i + k)) % 7); };
  for (int k = 0; k < pl.steps; ++k) {
    if (w.rank() == pl.thrower && k == pl.throw_step) throw injected_fault(pl.id);
    jit();
    std::vector<float> v(pl.n);
    for (std::size_t i = 0; i < pl.n; ++i) v[i] = value(w.rank(), i, k);
    switch (k % 4) {
      case 0: {
        w.allreduce_sum(std::span<float>(v));
        for (std::size_t i = 0; i < pl.n; ++i) {
          float s = 0;
          for (int r = 0; r < p; ++r) s += value(r, i, k);
          ok = ok && v[i] == s;
        }
        break;
      }
      case 1: {
        const int root = k % p;
        w.broadcast(std::span<float>(v), root);
        for (std::size_t i = 0; i < pl.n; ++i) ok = ok && v[i] == value(root, i, k);
        break;
      }
      case 2: {
        const auto e = w.min_loc(static_cast<double>((w.rank() * 5 + k) % p));
        int want = 0;
        for (int r = 1; r < p; ++r)
          if ((r * 5 + k) % p < (want * 5 + k) % p) want = r;
        ok = ok && e.rank == want;
        break;
      }
      default: {
        std::vector<float> out(pl.n);
        auto req = w.iallreduce_sum(std::span<const float>(v), std::span<float>(out));
        jit();
        req.wait();
        for (std::size_t i = 0; i < pl.n; ++i) {
          float s = 0;
          for (int r = 0; r < p; ++r) s += value(r, i, k);
          ok = ok && out[i] == s;
        }
      }
    }
    ++rec.steps[me];
  }
  rec.finite[me] = 1;
  rec.exact[me] = ok ? 1 : 0;
}

enum class kind { collectives, lsgd, lsgd_grouped, easgd, local_sgd, overlap, async_lsgd, async_easgd, downpour, swarm, count };

const char* name_of(kind k) {
  static constexpr std::array<const char*, static_cast<std::size_t>(kind::count)> names{
      "collectives", "lsgd", "lsgd_grouped", "easgd", "local_sgd", "overlap_local_sgd", "async_lsgd", "async_easgd",
      "downpour", "swarm_sgd"};
  return names[static_cast<std::size_t>(k)];
}

/// One worker's part of a run of algorithm `k`.
void run_worker(kind k, const plan& pl, const tether::problems::quadratic<float>& problem, worker& w, record& rec) {
  const std::size_t n = pl.n;
  switch (k) {
    case kind::collectives:
      collectives(pl, w, rec);
      break;
    case kind::lsgd: {
      tether::algo::lsgd<worker> opt(w, n, {.lr = 0.05, .pull = {.period = 4, .strength = 0.2f}});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::lsgd_grouped: {
      tether::algo::lsgd_grouped<worker> opt(w, n, {.lr = 0.05, .pull = {.period = 2, .global_period = 4}});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::easgd: {
      tether::algo::easgd<worker> opt(w, n, {.lr = 0.05, .pull = {.period = 3}});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::local_sgd: {
      tether::algo::local_sgd<worker> opt(w, n, {.lr = 0.05, .pull = {.period = 3, .warmup = 2}});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::overlap: {
      tether::algo::overlap_local_sgd<worker> opt(w, n, {.lr = 0.05, .pull = {.period = 3}});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::async_lsgd: {
      tether::algo::async_lsgd<worker> opt(w, n, {.lr = 0.05, .pull = {.period = 4}});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::async_easgd: {
      tether::algo::async_easgd<worker> opt(w, n, {.lr = 0.05, .pull = {.period = 3, .shards = 2}});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::downpour: {
      tether::algo::downpour<worker> opt(w, n, {.lr = 0.1, .local_lr = 0.05, .n_fetch = 3, .n_push = 2, .shards = 3});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::swarm: {
      tether::algo::swarm_sgd<worker> opt(
          w, n, {.lr = 0.05, .topology = tether::comm::topology::ring(w.size()), .local_steps = 2});
      train(opt, pl, problem, w, rec);
      break;
    }
    case kind::count:
      break;
  }
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

TEST_CASE("soak: random runs of every collective and team algorithm, with delays and throws, end as promised",
          "[soak]") {
  const auto seconds = env_number("TETHER_SOAK_SECONDS", 8);
  const auto seed = env_number("TETHER_SOAK_SEED", 20261205);
  std::mt19937_64 gen(seed);
  watchdog dog(std::chrono::seconds(120));
  const auto until = clock_type::now() + std::chrono::seconds(seconds);
  std::array<std::uint64_t, static_cast<std::size_t>(kind::count)> runs{}, faults{};
  std::uint64_t total = 0;
  while (clock_type::now() < until || total < static_cast<std::uint64_t>(kind::count)) {
    const auto k = static_cast<kind>(total % static_cast<std::uint64_t>(kind::count));
    plan pl;
    pl.id = total;
    pl.workers = k == kind::lsgd_grouped ? 2 * static_cast<int>(1 + gen() % 2) : static_cast<int>(2 + gen() % 3);
    pl.n = 1 + gen() % 40;
    pl.steps = static_cast<int>(8 + gen() % 40);
    pl.seed = gen();
    if (gen() % 3 == 0) {
      pl.thrower = static_cast<int>(gen() % static_cast<std::uint64_t>(pl.workers));
      pl.throw_step = static_cast<int>(gen() % static_cast<std::uint64_t>(pl.steps));
    }
    const tether::problems::quadratic<float> problem(pl.n, {.a_min = 0.5, .a_max = 2.0, .noise = 0.1, .seed = pl.seed});
    const std::string what = std::string(name_of(k)) + " run " + std::to_string(total) + " (" +
                             std::to_string(pl.workers) + " workers, n = " + std::to_string(pl.n) + ", " +
                             std::to_string(pl.steps) + " steps, thrower " + std::to_string(pl.thrower) + " at step " +
                             std::to_string(pl.throw_step) + ")";
    CAPTURE(what);
    record rec(pl.workers);
    tether::team team(pl.workers, {.group_size = k == kind::lsgd_grouped ? 2 : 0});
    bool caught_own = false;
    std::string other;
    dog.begin(what);
    try {
      team.run([&](worker& w) { run_worker(k, pl, problem, w, rec); });
    } catch (const injected_fault& e) {
      caught_own = e.id == pl.id;
    } catch (const std::exception& e) {
      other = e.what();
    }
    dog.end();
    ++runs[static_cast<std::size_t>(k)];
    ++total;
    if (pl.thrower >= 0) {
      ++faults[static_cast<std::size_t>(k)];
      INFO("another error: " << other);
      REQUIRE(caught_own);
    } else {
      REQUIRE(other.empty());
      for (int r = 0; r < pl.workers; ++r) {
        const auto ur = static_cast<std::size_t>(r);
        CAPTURE(r);
        REQUIRE(rec.steps[ur] == static_cast<std::uint64_t>(pl.steps));
        REQUIRE(rec.finite[ur] == 1);
        REQUIRE(rec.exact[ur] == 1);
      }
    }
  }
  std::string summary = "soak: " + std::to_string(total) + " runs in " + std::to_string(seconds) + " s (seed " +
                        std::to_string(seed) + "):";
  for (std::size_t i = 0; i < runs.size(); ++i)
    summary += std::string(" ") + name_of(static_cast<kind>(i)) + " " + std::to_string(runs[i]) + " (" +
               std::to_string(faults[i]) + " with a throw)";
  std::printf("%s\n", summary.c_str());
  CHECK(total >= static_cast<std::uint64_t>(kind::count));
}
