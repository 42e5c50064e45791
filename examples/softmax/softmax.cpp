// Multinomial logistic regression (softmax, L2-regularised, convex) on Fashion-MNIST, full batch, by
// Sandblaster L-BFGS on a team of worker threads: every worker holds a shard of the 7850 parameters and
// computes portions of the 60000 training images; worker 0 also coordinates. Prints the progress, the
// outcome, the test accuracy, the time and the bytes moved.
//
//     softmax [--workers 2] [--portions 32] [--history 10] [--epsilon 1e-4] [--l2 1e-3] [--max-iterations
//     2000]
//             [--samples 60000] [--no-backups] [--float] [--quiet] [--check <min test accuracy>]
//
// The data comes from Debian's dataset-fashion-mnist (or $TETHER_FASHION_MNIST_DIR).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "idx.hpp"
#include "tether/algo/sandblaster_lbfgs.hpp"
#include "tether/comm/shared_memory.hpp"
#include "tether/problems/softmax.hpp"

namespace {

struct settings {
  int workers = 2;
  std::size_t portions = 32;
  std::size_t history = 10;
  double epsilon = 1e-4;
  double l2 = 1e-3;
  std::size_t max_iterations = 2000;
  std::size_t samples = fmnist::all_samples;
  bool backups = true;
  bool single = false;
  bool quiet = false;
  double check = -1.0;
};

void usage() {
  std::printf(
      "softmax: multinomial logistic regression on Fashion-MNIST by Sandblaster L-BFGS on worker threads\n"
      "  --workers P          worker threads (default 2)\n"
      "  --portions K         portions of the training set per batch (default 32)\n"
      "  --history M          L-BFGS history (default 10)\n"
      "  --epsilon E          stop when |g| <= E * max(1, |x|) (default 1e-4)\n"
      "  --l2 L               weight decay (default 1e-3)\n"
      "  --max-iterations N   (default 2000)\n"
      "  --samples N          training images used (default all 60000)\n"
      "  --no-backups         no backup copies of outstanding portions\n"
      "  --float              parameters in float (default double)\n"
      "  --quiet              no progress lines\n"
      "  --check A            exit with status 1 unless the run converged with test accuracy >= A (0..1)\n");
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw fmnist::cli::usage_error{std::string(flag) + ": needs a value"};
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      usage();
      std::exit(0);
    } else if (flag == "--workers") {
      s.workers = fmnist::cli::parse_number<int>(flag, value());
      if (s.workers < 1) fmnist::cli::bad_value(flag, argv[i], "expected at least 1");
    } else if (flag == "--portions") {
      s.portions = fmnist::cli::parse_number<std::size_t>(flag, value());
    } else if (flag == "--history") {
      s.history = fmnist::cli::parse_number<std::size_t>(flag, value());
    } else if (flag == "--epsilon") {
      s.epsilon = fmnist::cli::parse_number<double>(flag, value());
    } else if (flag == "--l2") {
      s.l2 = fmnist::cli::parse_number<double>(flag, value());
    } else if (flag == "--max-iterations") {
      s.max_iterations = fmnist::cli::parse_number<std::size_t>(flag, value());
    } else if (flag == "--samples") {
      s.samples = fmnist::cli::parse_number<std::size_t>(flag, value());
    } else if (flag == "--no-backups") {
      s.backups = false;
    } else if (flag == "--float") {
      s.single = true;
    } else if (flag == "--quiet") {
      s.quiet = true;
    } else if (flag == "--check") {
      s.check = fmnist::cli::parse_number<double>(flag, value());
    } else {
      throw fmnist::cli::usage_error{"unknown flag '" + std::string(flag) + "' (see --help)"};
    }
  }
  return s;
}

template <class T>
int run(const settings& s, const fmnist::dataset& train, const fmnist::dataset& test) {
  const tether::problems::softmax<T> problem(train.images, train.labels, train.features,
                                             {.classes = fmnist::classes, .l2 = s.l2});
  const tether::problems::softmax<T> held_out(test.images, test.labels, test.features,
                                              {.classes = fmnist::classes, .l2 = s.l2});
  tether::lbfgs::options o{.history = s.history,
                           .epsilon = s.epsilon,
                           .max_iterations = s.max_iterations,
                           .portions = s.portions,
                           .backups = s.backups};
  const auto start = std::chrono::steady_clock::now();
  if (!s.quiet)
    o.on_iteration = [&](const tether::lbfgs::iteration_record& r) {
      if (r.iteration % 10 != 0 && r.iteration > 5) return;
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("  iteration %4zu  loss %.6f  |g| %.3e  step %.3g  %5.1f s\n", r.iteration, r.f,
                  r.gradient_norm, r.step, t);
      std::fflush(stdout);
    };
  std::vector<T> x(problem.dimension(), T(0));
  tether::lbfgs::result result;
  std::uint64_t bytes = 0;
  std::vector<std::uint64_t> sent(static_cast<std::size_t>(s.workers));
  tether::team team(s.workers);
  team.run([&](tether::team::worker& w) {
    std::vector<T> mine(problem.dimension(), T(0));
    auto r = tether::algo::sandblaster_lbfgs(w, problem, mine, o);
    sent[static_cast<std::size_t>(w.rank())] = r.bytes_sent;
    if (w.rank() == 0) {
      result = std::move(r);
      x = mine;
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto b : sent) bytes += b;
  const double train_acc = problem.accuracy(x);
  const double test_acc = held_out.accuracy(x);
  std::printf("%s: %s\n", tether::lbfgs::to_string(result.status), result.message.c_str());
  std::printf(
      "iterations %zu, evaluations %zu (%zu portions, %zu late copies dropped, %zu backups), restarts %zu\n",
      result.iterations, result.function_evaluations, result.portions, result.duplicates, result.backups,
      result.restarts);
  std::printf("training loss %.6f, |g| %.3e, train accuracy %.2f%%, test accuracy %.2f%%\n", result.f,
              result.gradient_norm, 100.0 * train_acc, 100.0 * test_acc);
  std::printf("time %.1f s (%.1f ms per iteration), %d workers, %zu portions\n", seconds,
              1e3 * seconds / static_cast<double>(std::max<std::size_t>(result.iterations, 1)), s.workers,
              s.portions);
  std::printf(
      "bytes sent by all workers %.1f MB (%.1f KB per iteration); coordinator %.1f KB (%.0f B per "
      "iteration)\n",
      static_cast<double>(bytes) / 1e6,
      static_cast<double>(bytes) / 1e3 / static_cast<double>(std::max<std::size_t>(result.iterations, 1)),
      static_cast<double>(result.coordinator_bytes) / 1e3,
      static_cast<double>(result.coordinator_bytes) /
          static_cast<double>(std::max<std::size_t>(result.iterations, 1)));
  if (s.check >= 0.0 && !(result.status == tether::lbfgs::outcome::converged && test_acc >= s.check)) {
    std::printf("check failed: status %s, test accuracy %.4f < %.4f\n",
                tether::lbfgs::to_string(result.status), test_acc, s.check);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const settings s = parse(argc, argv);
    const auto t0 = std::chrono::steady_clock::now();
    const fmnist::dataset train = fmnist::load_fashion_mnist(fmnist::split::train, s.samples);
    const fmnist::dataset test =
        fmnist::load_fashion_mnist(fmnist::split::test, fmnist::all_samples, train.norm);
    std::printf(
        "Fashion-MNIST: %zu training and %zu test images loaded in %.1f s; softmax regression, %zu "
        "parameters\n",
        train.count, test.count, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
        (train.features + 1) * fmnist::classes);
    return s.single ? run<float>(s, train, test) : run<double>(s, train, test);
  } catch (const fmnist::cli::usage_error& e) {
    std::fprintf(stderr, "softmax: %s\n", e.message.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "softmax: %s\n", e.what());
    return 1;
  }
}
