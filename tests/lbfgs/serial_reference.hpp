#pragma once
// A plain serial L-BFGS written for the tests, in double, on whole vectors: the textbook two-loop recursion
// (Nocedal & Wright, Algorithm 7.4) on stored vectors s_i, y_i, libLBFGS's outer loop (first step 1/|g|, then
// 1; converged when |g| <= epsilon * max(1, |x|)), the same curvature guard and the same steepest-descent
// restart as lbfgs::minimize, and lbfgs::more_thuente for the line search (tested on its own in
// line_search.cpp). The batch objective is evaluated as the library defines it, portion by portion
// (tether::shard_layout of the samples), weighted by n_k / M and added in portion order.

#include <tether/core/objective.hpp>
#include <tether/core/shard_layout.hpp>
#include <tether/lbfgs/more_thuente.hpp>
#include <tether/lbfgs/options.hpp>

#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <vector>

namespace lbfgs_test {

struct serial_record {
  double f;
  double step;
};

struct serial_result {
  std::vector<double> x;
  double f = 0.0;
  double gnorm = 0.0;
  std::size_t iterations = 0;
  std::size_t evaluations = 0;
  bool converged = false;
  std::vector<serial_record> history;
};

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// The textbook two-loop recursion (Nocedal & Wright, Algorithm 7.4) on stored pairs s_i, y_i, oldest first
/// (any random-access container of vectors); returns d = -H g.
template <class Pairs>
std::vector<double> serial_two_loop(const Pairs& s, const Pairs& y, const std::vector<double>& g) {
  const std::size_t k = s.size();
  std::vector<double> q(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) q[i] = -g[i];
  std::vector<double> alpha(k);
  for (std::size_t i = k; i-- > 0;) {
    alpha[i] = dot(s[i], q) / dot(y[i], s[i]);
    for (std::size_t j = 0; j < q.size(); ++j) q[j] -= alpha[i] * y[i][j];
  }
  if (k > 0) {
    const double gamma = dot(s[k - 1], y[k - 1]) / dot(y[k - 1], y[k - 1]);
    for (auto& v : q) v *= gamma;
  }
  for (std::size_t i = 0; i < k; ++i) {
    const double beta = dot(y[i], q) / dot(y[i], s[i]);
    for (std::size_t j = 0; j < q.size(); ++j) q[j] += (alpha[i] - beta) * s[i][j];
  }
  return q;
}

/// The batch loss and gradient: portions of the samples, each weighted by its share, added in portion order.
template <class O>
double batch_evaluate(O& o, const std::vector<double>& x, std::vector<double>& g, std::size_t portions) {
  std::vector<double> gk(x.size());
  std::fill(g.begin(), g.end(), 0.0);
  if constexpr (tether::sampled_objective<O, double>) {
    const std::size_t m = o.samples();
    const tether::shard_layout layout(m, std::min(portions, m));
    double f = 0.0;
    std::vector<std::size_t> idx;
    for (std::size_t k = 0; k < layout.shards(); ++k) {
      idx.resize(layout.count(k));
      std::iota(idx.begin(), idx.end(), layout.begin(k));
      const double w = static_cast<double>(layout.count(k)) / static_cast<double>(m);
      f += w * o.evaluate(std::span<const double>(x), std::span<double>(gk), tether::batch{.samples = idx});
      for (std::size_t i = 0; i < x.size(); ++i) g[i] += w * gk[i];
    }
    return f;
  } else {
    return o.evaluate(std::span<const double>(x), std::span<double>(g), tether::batch{});
  }
}

/// The reference L-BFGS from x0; see the file comment.
template <class O>
serial_result serial_lbfgs(O& o, std::vector<double> x, const tether::lbfgs::options& opt) {
  const std::size_t n = x.size();
  serial_result r;
  std::vector<double> g(n), xt(n), gt(n), d(n);
  std::vector<std::vector<double>> s, y;  // oldest first
  double f = batch_evaluate(o, x, g, opt.portions);
  r.evaluations = 1;
  auto converged = [&](const std::vector<double>& xv, const std::vector<double>& gv) {
    return std::sqrt(dot(gv, gv)) <= opt.epsilon * std::max(1.0, std::sqrt(dot(xv, xv)));
  };
  if (converged(x, g)) {
    r.converged = true;
  } else {
    for (std::size_t i = 0; i < n; ++i) d[i] = -g[i];
    double step = 1.0 / std::sqrt(dot(g, g));
    for (;;) {
      tether::lbfgs::more_thuente ls(opt.line_search, f, dot(g, d), step);
      tether::lbfgs::search_state st;
      double ft = 0.0;
      do {
        for (std::size_t i = 0; i < n; ++i) xt[i] = x[i] + ls.step() * d[i];
        ft = batch_evaluate(o, xt, gt, opt.portions);
        ++r.evaluations;
        st = ls.update(ft, dot(gt, d));
      } while (st == tether::lbfgs::search_state::evaluate);
      if (st == tether::lbfgs::search_state::failed) {
        if (s.empty()) break;
        s.clear();
        y.clear();
        for (std::size_t i = 0; i < n; ++i) d[i] = -g[i];
        step = 1.0 / std::sqrt(dot(g, g));
        continue;
      }
      ++r.iterations;
      r.history.push_back({ft, ls.step()});
      std::vector<double> sn(n), yn(n);
      for (std::size_t i = 0; i < n; ++i) {
        sn[i] = xt[i] - x[i];
        yn[i] = gt[i] - g[i];
      }
      x = xt;
      g = gt;
      f = ft;
      if (converged(x, g)) {
        r.converged = true;
        break;
      }
      if (opt.max_iterations != 0 && r.iterations >= opt.max_iterations) break;
      if (dot(sn, yn) > opt.curvature_epsilon * dot(yn, yn)) {
        if (s.size() == opt.history) {
          s.erase(s.begin());
          y.erase(y.begin());
        }
        s.push_back(sn);
        y.push_back(yn);
      }
      d = serial_two_loop(s, y, g);
      step = 1.0;
      if (!(dot(g, d) < 0.0)) {
        s.clear();
        y.clear();
        for (std::size_t i = 0; i < n; ++i) d[i] = -g[i];
        step = 1.0 / std::sqrt(dot(g, g));
      }
    }
  }
  r.x = x;
  r.f = f;
  r.gnorm = std::sqrt(dot(g, g));
  return r;
}

}  // namespace lbfgs_test
