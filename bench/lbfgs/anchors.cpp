// Sandblaster L-BFGS against the serial L-BFGS implementations users know, side by side on the same problems,
// history m and tolerance: libLBFGS (Debian liblbfgs-dev, More-Thuente line search, its default) and LBFGS++
// (Debian liblbfgspp-dev 0.1.0 with Eigen, LineSearchNocedalWright: strong Wolfe; its More-Thuente search is
// only wired to its L-BFGS-B solver in this version), and tether at p = 1, 2, 4 worker threads.
// All stop when |g| <= epsilon * max(1, |x|) (libLBFGS's test; LBFGS++ with epsilon = epsilon_rel) with at
// most 40 evaluations per line search, ftol 1e-4, gtol/wolfe 0.9. Prints a markdown table of medians over the
// repetitions (every solver once per repetition, in turn).
//
//   lbfgs_anchors [--repetitions 3] [--problems quadratic,rosenbrock,logistic,softmax] [--history 6]
//                 [--epsilon 1e-6] [--softmax-epsilon 1e-4] [--fmnist-samples 10000] [--portions 32]
//
// softmax is the multinomial logistic regression of examples/softmax on the first --fmnist-samples images of
// Fashion-MNIST's training set (skipped when the data set is not installed).
#include <lbfgs.h>

#include <LBFGS.h>
#include <Eigen/Core>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common.hpp"
#include "idx.hpp"
#include "tether/problems/logistic.hpp"
#include "tether/problems/quadratic.hpp"
#include "tether/problems/rosenbrock.hpp"
#include "tether/problems/softmax.hpp"

namespace {

using lbfgs_bench::args;
using lbfgs_bench::clock;
using lbfgs_bench::seconds_since;

/// What one solver did on one problem.
struct outcome {
  std::string status;
  std::size_t iterations = 0;
  std::size_t evaluations = 0;
  double f = 0.0;
  double gnorm = 0.0;
  std::vector<double> x;
  double seconds = 0.0;
};

/// A problem as the serial solvers see it: f and g of the whole batch.
struct problem {
  std::string name;
  std::size_t n = 0;
  std::vector<double> x0;
  double epsilon = 1e-6;
  std::function<double(std::span<const double>, std::span<double>)> evaluate;
  std::function<outcome(int p, const tether::lbfgs::options&)> tether_run;
  std::optional<std::vector<double>> optimum;
};

problem make(std::string name, std::vector<double> x0, double epsilon) {
  problem p;
  p.name = std::move(name);
  p.n = x0.size();
  p.x0 = std::move(x0);
  p.epsilon = epsilon;
  return p;
}

struct settings {
  std::size_t history = 6;
  std::size_t portions = 32;
};

double norm(std::span<const double> v) {
  double s = 0.0;
  for (const double x : v) s += x * x;
  return std::sqrt(s);
}

// --- libLBFGS ---------------------------------------------------------------------------------------------

struct liblbfgs_state {
  const problem* p;
  std::size_t evaluations = 0;
  std::size_t iterations = 0;
};

lbfgsfloatval_t liblbfgs_evaluate(void* instance, const lbfgsfloatval_t* x, lbfgsfloatval_t* g, const int n,
                                  const lbfgsfloatval_t /*step*/) {
  auto* s = static_cast<liblbfgs_state*>(instance);
  ++s->evaluations;
  return s->p->evaluate(std::span<const double>(x, static_cast<std::size_t>(n)),
                        std::span<double>(g, static_cast<std::size_t>(n)));
}

int liblbfgs_progress(void* instance, const lbfgsfloatval_t*, const lbfgsfloatval_t*, const lbfgsfloatval_t,
                      const lbfgsfloatval_t, const lbfgsfloatval_t, const lbfgsfloatval_t, int, int k, int) {
  static_cast<liblbfgs_state*>(instance)->iterations = static_cast<std::size_t>(k);
  return 0;
}

outcome run_liblbfgs(const problem& p, const settings& s) {
  const int n = static_cast<int>(p.n);
  lbfgsfloatval_t* x = lbfgs_malloc(n);
  for (int i = 0; i < n; ++i) x[i] = p.x0[static_cast<std::size_t>(i)];
  lbfgs_parameter_t param;
  lbfgs_parameter_init(&param);
  param.m = static_cast<int>(s.history);
  param.epsilon = p.epsilon;
  param.max_linesearch = 40;
  liblbfgs_state st{&p};
  lbfgsfloatval_t fx = 0;
  const auto t0 = clock::now();
  const int ret = lbfgs(n, x, &fx, liblbfgs_evaluate, liblbfgs_progress, &st, &param);
  outcome o;
  o.seconds = seconds_since(t0);
  o.status = ret == 0 ? "converged" : std::string("code ") + std::to_string(ret);
  o.iterations = st.iterations;
  o.evaluations = st.evaluations;
  o.x.assign(x, x + n);
  std::vector<double> g(p.n);
  o.f = p.evaluate(o.x, g);
  o.gnorm = norm(g);
  lbfgs_free(x);
  return o;
}

// --- LBFGS++ ----------------------------------------------------------------------------------------------

outcome run_lbfgspp(const problem& p, const settings& s) {
  LBFGSpp::LBFGSParam<double> param;
  param.m = static_cast<int>(s.history);
  param.epsilon = p.epsilon;
  param.epsilon_rel = p.epsilon;
  param.max_linesearch = 40;
  param.linesearch =
      LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE;  // what LineSearchNocedalWright requires
  LBFGSpp::LBFGSSolver<double, LBFGSpp::LineSearchNocedalWright> solver(param);
  std::size_t evaluations = 0;
  auto f = [&](const Eigen::VectorXd& x, Eigen::VectorXd& grad) {
    ++evaluations;
    return p.evaluate(std::span<const double>(x.data(), p.n), std::span<double>(grad.data(), p.n));
  };
  Eigen::VectorXd x(static_cast<Eigen::Index>(p.n));
  for (std::size_t i = 0; i < p.n; ++i) x[static_cast<Eigen::Index>(i)] = p.x0[i];
  double fx = 0.0;
  outcome o;
  const auto t0 = clock::now();
  try {
    o.iterations = static_cast<std::size_t>(solver.minimize(f, x, fx));
    o.status = "converged";
  } catch (const std::exception& e) {
    o.status = std::string("failed: ") + e.what();
  }
  o.seconds = seconds_since(t0);
  o.evaluations = evaluations;
  o.x.assign(x.data(), x.data() + x.size());
  std::vector<double> g(p.n);
  o.f = p.evaluate(o.x, g);
  o.gnorm = norm(g);
  return o;
}

// --- tether -----------------------------------------------------------------------------------------------

template <class O>
std::function<outcome(int, const tether::lbfgs::options&)> tether_runner(O* objective,
                                                                         std::vector<double> x0) {
  return [objective, x0](int p, const tether::lbfgs::options& o) {
    auto run = lbfgs_bench::run_team(p, *objective, x0, o);
    outcome out;
    out.seconds = run.seconds;
    out.status = tether::lbfgs::to_string(run.r.status);
    out.iterations = run.r.iterations;
    out.evaluations = run.r.function_evaluations;
    out.x = run.x;
    std::vector<double> g(x0.size());
    out.f = objective->evaluate(std::span<const double>(out.x), std::span<double>(g), tether::batch{});
    out.gnorm = norm(g);
    return out;
  };
}

}  // namespace

int main(int argc, char** argv) {
  const args a(argc, argv);
  const int repetitions = static_cast<int>(a.number("--repetitions", 3));
  settings s;
  s.history = static_cast<std::size_t>(a.number("--history", 6));
  s.portions = static_cast<std::size_t>(a.number("--portions", 32));
  const double epsilon = a.number("--epsilon", 1e-6);
  const double softmax_epsilon = a.number("--softmax-epsilon", 1e-4);
  const auto fmnist_samples = static_cast<std::size_t>(a.number("--fmnist-samples", 10000));
  const auto wanted = a.list("--problems", "quadratic,rosenbrock,logistic,softmax");
  auto want = [&](const std::string& n) {
    return std::find(wanted.begin(), wanted.end(), n) != wanted.end();
  };

  // The problems (double precision), kept alive for the whole run.
  tether::problems::quadratic<double> quad(1000, {.a_min = 1.0, .a_max = 1000.0, .seed = 3});
  tether::problems::rosenbrock<double> rosen(100);
  tether::problems::logistic<double> logit({.samples = 20000, .features = 100, .l2 = 1e-4, .seed = 5});
  std::optional<fmnist::dataset> images;
  std::optional<tether::problems::softmax<double>> soft;

  std::vector<problem> problems;
  if (want("quadratic")) {
    problem p =
        make("quadratic (N = 1000, curvatures 1..1000)", std::vector<double>(quad.dimension(), 0.0), epsilon);
    p.evaluate = [&](std::span<const double> x, std::span<double> g) { return quad.evaluate(x, g, {}); };
    p.tether_run = tether_runner(&quad, p.x0);
    p.optimum = std::vector<double>(quad.optimum().begin(), quad.optimum().end());
    problems.push_back(std::move(p));
  }
  if (want("rosenbrock")) {
    std::vector<double> x0(rosen.dimension());
    for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = i % 2 == 0 ? -1.2 : 1.0;
    problem p = make("Rosenbrock (N = 100)", x0, epsilon);
    p.evaluate = [&](std::span<const double> x, std::span<double> g) { return rosen.evaluate(x, g, {}); };
    p.tether_run = tether_runner(&rosen, x0);
    p.optimum = std::vector<double>(rosen.dimension(), 1.0);
    problems.push_back(std::move(p));
  }
  if (want("logistic")) {
    problem p = make("logistic (20000 x 100, l2 1e-4)", std::vector<double>(logit.dimension(), 0.0), epsilon);
    p.evaluate = [&](std::span<const double> x, std::span<double> g) { return logit.evaluate(x, g, {}); };
    p.tether_run = tether_runner(&logit, p.x0);
    problems.push_back(std::move(p));
  }
  if (want("softmax")) {
    if (!fmnist::dataset_present(fmnist::default_directory())) {
      std::printf("softmax: Fashion-MNIST not found in %s: skipped\n", fmnist::default_directory().c_str());
    } else {
      images = fmnist::load_fashion_mnist(fmnist::split::train, fmnist_samples);
      soft.emplace(images->images, images->labels, images->features,
                   tether::problems::softmax<double>::options{.classes = 10, .l2 = 1e-3});
      problem p = make("softmax (Fashion-MNIST, " + std::to_string(images->count) + " images, l2 1e-3)",
                       std::vector<double>(soft->dimension(), 0.0), softmax_epsilon);
      p.evaluate = [&](std::span<const double> x, std::span<double> g) { return soft->evaluate(x, g, {}); };
      p.tether_run = tether_runner(&*soft, p.x0);
      problems.push_back(std::move(p));
    }
  }

  std::printf("CPU: %s; m = %zu, %d repetitions (time: median)\n\n", lbfgs_bench::cpu_name().c_str(),
              s.history, repetitions);
  std::printf(
      "| problem | solver | status | iterations | evaluations | f | \\|g\\| | max \\|x - x_ref\\| | time s | "
      "ms / iteration |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  const std::vector<std::string> solvers{"libLBFGS", "LBFGS++", "tether p=1", "tether p=2", "tether p=4"};
  for (const auto& p : problems) {
    std::map<std::string, std::vector<outcome>> runs;
    for (int r = 0; r < repetitions; ++r) {
      runs["libLBFGS"].push_back(run_liblbfgs(p, s));
      runs["LBFGS++"].push_back(run_lbfgspp(p, s));
      for (const int workers : {1, 2, 4}) {
        tether::lbfgs::options o{
            .history = s.history, .epsilon = p.epsilon, .portions = s.portions, .timeout = 600.0};
        runs["tether p=" + std::to_string(workers)].push_back(p.tether_run(workers, o));
      }
    }
    const std::vector<double> ref = p.optimum ? *p.optimum : runs["libLBFGS"].front().x;
    std::size_t best_iterations = SIZE_MAX;
    std::size_t best_evaluations = SIZE_MAX;
    for (const auto& name : {"libLBFGS", "LBFGS++"}) {
      if (runs[name].front().status != "converged") continue;
      best_iterations = std::min(best_iterations, runs[name].front().iterations);
      best_evaluations = std::min(best_evaluations, runs[name].front().evaluations);
    }
    for (const auto& name : solvers) {
      const auto& o = runs[name].front();
      std::vector<double> times;
      for (const auto& r : runs[name]) times.push_back(r.seconds);
      double dist = 0.0;
      for (std::size_t i = 0; i < ref.size(); ++i) dist = std::max(dist, std::abs(o.x[i] - ref[i]));
      const double t = lbfgs_bench::median(times);
      std::printf("| %s | %s | %s | %zu | %zu | %.10g | %.2e | %.2e | %.3f | %.3f |\n", p.name.c_str(),
                  name.c_str(), o.status.c_str(), o.iterations, o.evaluations, o.f, o.gnorm, dist, t,
                  1e3 * t / static_cast<double>(std::max<std::size_t>(o.iterations, 1)));
    }
    const auto& t1 = runs["tether p=1"].front();
    std::printf(
        "| | tether p=1 against the better anchor | iterations %+.1f%% | evaluations %+.1f%% | | | | | | |\n",
        100.0 * (static_cast<double>(t1.iterations) / static_cast<double>(best_iterations) - 1.0),
        100.0 * (static_cast<double>(t1.evaluations) / static_cast<double>(best_evaluations) - 1.0));
  }
  std::printf("\nx_ref: the known optimum (quadratic, Rosenbrock) or libLBFGS's result.\n");
  return 0;
}
