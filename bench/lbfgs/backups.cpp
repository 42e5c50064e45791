// The batch time of Sandblaster L-BFGS with one replica slowed 5x, with and without backup copies of the
// outstanding portions (MapReduce saw sorts take 44% longer without its backup tasks). The slow replica is
// the last worker: after each portion it sleeps 4x the time the portion took, so it runs 5x slower without
// taking CPU from the others (a busy or degraded machine). The shards are on the other workers (shards = p -
// 1): a slow worker that holds a shard answers its shard's messages only between its own portions, which
// backups cannot fix (docs/algorithms/sandblaster_lbfgs.md#faults). Four configurations, in turn in each
// repetition: no slow replica with and without backups, a slow replica with and without backups. Fixed work:
// --iterations L-BFGS iterations on a generated softmax regression, cut into few large or many small portions
// (--portions). With many small portions the work queue alone keeps the slow replica's share small; with few,
// its last portion is the batch's tail. Prints a markdown table of medians.
//
//   lbfgs_backups [--workers 2,3] [--repetitions 5] [--iterations 15] [--portions 6,48] [--slowdown 5]
//                 [--samples 24000] [--features 400]
#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "tether/problems/softmax.hpp"

namespace {

/// The softmax regression on one worker, optionally slowed down by `slowdown`.
struct replica_objective {
  const tether::problems::softmax<double>* p;
  double slowdown = 1.0;
  std::size_t dimension() const { return p->dimension(); }
  std::size_t samples() const { return p->samples(); }
  double evaluate(std::span<const double> x, std::span<double> g, const tether::batch& b) const {
    const auto t0 = lbfgs_bench::clock::now();
    const double f = p->evaluate(x, g, b);
    if (slowdown > 1.0)
      std::this_thread::sleep_for(
          std::chrono::duration<double>((slowdown - 1.0) * lbfgs_bench::seconds_since(t0)));
    return f;
  }
};

struct measure {
  double seconds_per_batch = 0.0;
  double duplicates_per_batch = 0.0;
  double backups_per_batch = 0.0;
};

measure run(int p, const tether::problems::softmax<double>& problem, double slowdown, bool backups,
            std::size_t iterations, std::size_t portions) {
  tether::lbfgs::options o{.history = 6,
                           .epsilon = 0.0,
                           .max_iterations = iterations,
                           .portions = portions,
                           .shards = static_cast<std::size_t>(p > 1 ? p - 1 : 1),
                           .backups = backups,
                           .timeout = 600.0};
  tether::lbfgs::result res;
  tether::team team(p);
  const auto t0 = lbfgs_bench::clock::now();
  team.run([&](tether::team::worker& w) {
    replica_objective mine{&problem, w.rank() == p - 1 ? slowdown : 1.0};
    std::vector<double> x(problem.dimension(), 0.0);
    auto r = tether::lbfgs::minimize(w, mine, x, o);
    if (w.rank() == 0) res = std::move(r);
  });
  const double t = lbfgs_bench::seconds_since(t0);
  const auto batches = static_cast<double>(res.function_evaluations);
  return {t / batches, static_cast<double>(res.duplicates) / batches,
          static_cast<double>(res.backups) / batches};
}

}  // namespace

int main(int argc, char** argv) {
  const lbfgs_bench::args a(argc, argv);
  const int repetitions = static_cast<int>(a.number("--repetitions", 5));
  const auto iterations = static_cast<std::size_t>(a.number("--iterations", 15));
  const double slowdown = a.number("--slowdown", 5.0);
  const auto samples = static_cast<std::size_t>(a.number("--samples", 24000));
  const auto features = static_cast<std::size_t>(a.number("--features", 400));
  const auto problem =
      tether::problems::softmax<double>::generated(samples, features, {.classes = 10, .l2 = 1e-3}, 7);

  std::printf("CPU: %s; softmax %zu x %zu, 10 classes, %zu iterations, slowdown %.1fx, %d repetitions\n\n",
              lbfgs_bench::cpu_name().c_str(), samples, features, iterations, slowdown, repetitions);
  std::printf(
      "| workers | portions | slow replica | backups | ms / batch (median) | min-max | backups / batch | "
      "late copies dropped / batch |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const auto& ps : a.list("--portions", "6,48"))
    for (const auto& ws : a.list("--workers", "2,3")) {
      const int p = std::stoi(ws);
      const auto portions = static_cast<std::size_t>(std::stoul(ps));
      struct config {
        bool slow;
        bool backups;
      };
      const config configs[] = {{false, true}, {false, false}, {true, false}, {true, true}};
      std::vector<std::vector<measure>> m(4);
      for (int r = 0; r < repetitions; ++r)
        for (std::size_t c = 0; c < 4; ++c)
          m[c].push_back(
              run(p, problem, configs[c].slow ? slowdown : 1.0, configs[c].backups, iterations, portions));
      std::vector<double> med(4);
      for (std::size_t c = 0; c < 4; ++c) {
        std::vector<double> t, b, d;
        for (const auto& x : m[c]) {
          t.push_back(x.seconds_per_batch);
          b.push_back(x.backups_per_batch);
          d.push_back(x.duplicates_per_batch);
        }
        med[c] = lbfgs_bench::median(t);
        std::printf("| %d | %zu | %s | %s | %.1f | %.1f-%.1f | %.2f | %.2f |\n", p, portions,
                    configs[c].slow ? "yes" : "no", configs[c].backups ? "on" : "off", 1e3 * med[c],
                    1e3 * *std::min_element(t.begin(), t.end()), 1e3 * *std::max_element(t.begin(), t.end()),
                    lbfgs_bench::median(b), lbfgs_bench::median(d));
      }
      std::printf(
          "| %d | %zu | ratios | | slow without / with backups: **%.2f**; slow with backups / no slow "
          "replica: %.2f | | | |\n",
          p, portions, med[2] / med[3], med[3] / med[0]);
    }
  return 0;
}
