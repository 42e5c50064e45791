// Sandblaster L-BFGS on the thread team: time per iteration against the workers (replicas; every worker also
// holds a shard) and the portions per batch, and the bytes per iteration at the coordinator and for all
// workers against the model of docs/algorithms/sandblaster_lbfgs.md#bytes. Fixed work: --iterations
// iterations of the softmax regression on the first --samples Fashion-MNIST images (or generated data of the
// same shape when the data set is not installed). Every configuration gives the same iterates for the same
// portions (checked: the final loss is printed). Markdown table of medians; "CPU ms / iteration" is the
// process's CPU time (all threads) per iteration: the work, whatever share of the cores the run got.
//
//   lbfgs_scaling [--workers 1,2,4] [--portions 8,32,128] [--repetitions 3] [--iterations 20] [--samples
//   10000]
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "idx.hpp"
#include "model.hpp"
#include "tether/problems/softmax.hpp"

int main(int argc, char** argv) {
  const lbfgs_bench::args a(argc, argv);
  const int repetitions = static_cast<int>(a.number("--repetitions", 3));
  const auto iterations = static_cast<std::size_t>(a.number("--iterations", 20));
  const auto samples = static_cast<std::size_t>(a.number("--samples", 10000));
  std::optional<fmnist::dataset> images;
  std::optional<tether::problems::softmax<double>> problem;
  std::string data = "generated";
  if (fmnist::dataset_present(fmnist::default_directory())) {
    images = fmnist::load_fashion_mnist(fmnist::split::train, samples);
    problem.emplace(images->images, images->labels, images->features,
                    tether::problems::softmax<double>::options{.classes = 10, .l2 = 1e-3});
    data = "Fashion-MNIST";
  } else {
    problem.emplace(
        tether::problems::softmax<double>::generated(samples, 784, {.classes = 10, .l2 = 1e-3}, 3));
  }
  const std::size_t n = problem->dimension();
  const std::size_t m = 10;
  std::printf("CPU: %s; softmax on %zu %s images, N = %zu, m = %zu, %zu iterations, %d repetitions\n\n",
              lbfgs_bench::cpu_name().c_str(), problem->samples(), data.c_str(), n, m, iterations,
              repetitions);
  std::printf(
      "| workers | portions | ms / iteration (median) | CPU ms / iteration | batches / iteration | final "
      "loss | coordinator B / batch | model | all workers KB / batch | model |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  const std::vector<double> x0(n, 0.0);
  for (const auto& ps : a.list("--portions", "8,32,128")) {
    const auto portions = static_cast<std::size_t>(std::stoul(ps));
    for (const auto& ws : a.list("--workers", "1,2,4")) {
      const int p = std::stoi(ws);
      tether::lbfgs::options o{
          .history = m, .epsilon = 0.0, .max_iterations = iterations, .portions = portions, .timeout = 600.0};
      std::vector<double> t, cpu;
      lbfgs_bench::team_run<double> last;
      std::uint64_t sent_total = 0;
      for (int r = 0; r < repetitions; ++r) {
        std::vector<std::uint64_t> sent(static_cast<std::size_t>(p));
        tether::team team(p);
        const double c0 = lbfgs_bench::cpu_seconds();
        const auto t0 = lbfgs_bench::clock::now();
        team.run([&](tether::team::worker& w) {
          std::vector<double> x = x0;
          auto res = tether::lbfgs::minimize(w, *problem, x, o);
          sent[static_cast<std::size_t>(w.rank())] = res.bytes_sent;
          if (w.rank() == 0) last.r = std::move(res);
        });
        t.push_back(lbfgs_bench::seconds_since(t0));
        cpu.push_back(lbfgs_bench::cpu_seconds() - c0);
        sent_total = 0;
        for (const auto s : sent) sent_total += s;
      }
      const double batches = static_cast<double>(last.r.function_evaluations);
      const double per_iteration = lbfgs_bench::median(t) / static_cast<double>(last.r.iterations);
      const auto model = lbfgs_model::per_batch(n, sizeof(double), m, portions, static_cast<std::size_t>(p),
                                                static_cast<std::size_t>(p));
      std::printf("| %d | %zu | %.1f | %.1f | %.2f | %.9f | %.0f | %.0f | %.1f | %.1f |\n", p, portions,
                  1e3 * per_iteration,
                  1e3 * lbfgs_bench::median(cpu) / static_cast<double>(last.r.iterations),
                  batches / static_cast<double>(last.r.iterations), last.r.f,
                  static_cast<double>(last.r.coordinator_bytes) / batches, model.coordinator,
                  static_cast<double>(sent_total) / batches / 1e3, model.all_workers / 1e3);
    }
  }
  std::printf(
      "\nBytes per batch include the final exchange of x and g spread over the batches; the model's are for "
      "one batch (see docs/algorithms/sandblaster_lbfgs.md#bytes).\n");
  return 0;
}
