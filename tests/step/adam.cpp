// step::adam driven through tether::optimizer on a one-worker team, against Kingma and Ba's Algorithm 1:
//   m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2;  m^ = m/(1-b1^t);  v^ = v/(1-b2^t);
//   x <- x - lr * m^ / (sqrt(v^) + eps)
// The moments use the same operations as the library, so they must agree bit for bit; the parameter update is
// written in the textbook order and evaluated in long double, so x is compared within an error budget that
// grows by a few roundings of T per step.

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "../core/support.hpp"

namespace {

struct adam_config {
  float beta1;
  float beta2;
  float eps;
};

}  // namespace

TEMPLATE_TEST_CASE("adam: the optimizer equals Algorithm 1 of Kingma and Ba", "[step][adam]", float, double) {
  using T = TestType;
  using L = long double;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  const adam_config cfg = GENERATE(adam_config{0.9f, 0.999f, 1e-8f}, adam_config{0.5f, 0.75f, 1e-3f});
  CAPTURE(n, cfg.beta1, cfg.beta2, cfg.eps);
  constexpr double lr = 0.01;
  constexpr int steps = 150;

  std::vector<T> x = tt::random_vector<T>(n, 41);
  std::vector<T> m_ref(n, T(0));
  std::vector<T> v_ref(n, T(0));
  std::vector<L> x_ref(x.begin(), x.end());
  std::vector<L> budget(n, 0.0L);  // bound on |x - x_ref| after each step
  std::vector<T> g(n);
  std::vector<T> m;
  std::vector<T> v;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::adam, T> opt(
        w, n, {.lr = lr, .step = {.beta1 = cfg.beta1, .beta2 = cfg.beta2, .eps = cfg.eps}});
    std::mt19937_64 gen(42);
    const T b1 = static_cast<T>(cfg.beta1);
    const T b2 = static_cast<T>(cfg.beta2);
    // The base rate the optimizer hands to the policy is lr in T.
    const L lr_l = static_cast<L>(static_cast<T>(lr));
    const L eps_l = static_cast<L>(static_cast<T>(cfg.eps));
    const L u = static_cast<L>(tt::eps_of<T>);
    for (int t = 1; t <= steps; ++t) {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 1.0);
      const L bc1 = 1.0L - std::pow(static_cast<L>(cfg.beta1), static_cast<L>(t));
      const L bc2 = 1.0L - std::pow(static_cast<L>(cfg.beta2), static_cast<L>(t));
      for (std::size_t i = 0; i < n; ++i) {
        m_ref[i] = b1 * m_ref[i] + (T(1) - b1) * g[i];
        v_ref[i] = b2 * v_ref[i] + (T(1) - b2) * g[i] * g[i];
        const L m_hat = static_cast<L>(m_ref[i]) / bc1;
        const L v_hat = static_cast<L>(v_ref[i]) / bc2;
        const L d = lr_l * m_hat / (std::sqrt(v_hat) + eps_l);
        x_ref[i] -= d;
        // Roundings of the library's per-step scalars and of its kernel (about eight of them), and of the
        // subtraction from x.
        budget[i] += 8 * u * std::fabs(d) + u * std::fabs(x_ref[i]);
      }
    }
    const auto s0 = opt.state(0);
    const auto s1 = opt.state(1);
    m.assign(s0.data(), s0.data() + s0.size());
    v.assign(s1.data(), s1.data() + s1.size());
  });
  REQUIRE(tt::max_ulps(m, m_ref) <= tt::same_order_ulps);
  REQUIRE(tt::max_ulps(v, v_ref) <= tt::same_order_ulps);
  std::size_t over = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::fabs(static_cast<L>(x[i]) - x_ref[i]) > budget[i]) ++over;
  }
  REQUIRE(over == 0);
}

TEMPLATE_TEST_CASE("adam: bias correction at steps 1..50 with a constant gradient", "[step][adam]", float,
                   double) {
  // With g constant, m_t = (1-b1^t) g and v_t = (1-b2^t) g^2 exactly, so the bias-corrected step is
  // lr * g / (|g| + eps) at every t. Without the correction (or with t off by one) the first steps are far
  // off.
  using T = TestType;
  const std::vector<T> g_const = {T(3), T(-0.5), T(1e-3), T(-20), T(0.07)};
  const std::size_t n = g_const.size();
  constexpr double lr = 0.01;
  constexpr int steps = 50;
  const double b1 = 0.9f;
  const double b2 = 0.999f;
  const double eps = 1e-8f;

  std::vector<T> x(n, T(0));
  std::vector<std::vector<T>> x_after(steps, std::vector<T>(n));
  std::vector<std::vector<T>> m_after(steps, std::vector<T>(n));
  std::vector<std::vector<T>> v_after(steps, std::vector<T>(n));
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::adam, T> opt(w, n, {.lr = lr});
    std::vector<T> g = g_const;
    for (int t = 0; t < steps; ++t) {
      opt.step(x, g, 1.0);
      x_after[t] = x;
      const auto s0 = opt.state(0);
      const auto s1 = opt.state(1);
      m_after[t].assign(s0.data(), s0.data() + n);
      v_after[t].assign(s1.data(), s1.data() + n);
    }
  });
  // Rounding allowance: per-step moments carry O(t) roundings of T; x is recovered from a running sum.
  const double tol = 400 * tt::eps_of<T>;
  for (int t = 1; t <= steps; ++t) {
    CAPTURE(t);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      const double g = static_cast<double>(g_const[i]);
      const double lr_t = static_cast<double>(static_cast<T>(lr));
      const double per_step = lr_t * g / (std::fabs(g) + eps);
      const double prev = t == 1 ? 0.0 : static_cast<double>(x_after[t - 2][i]);
      const double moved = prev - static_cast<double>(x_after[t - 1][i]);
      REQUIRE(moved == Approx(per_step).epsilon(tol));
      REQUIRE(static_cast<double>(x_after[t - 1][i]) == Approx(-t * per_step).epsilon(tol));
      REQUIRE(static_cast<double>(m_after[t - 1][i]) == Approx((1.0 - std::pow(b1, t)) * g).epsilon(tol));
      REQUIRE(static_cast<double>(v_after[t - 1][i]) == Approx((1.0 - std::pow(b2, t)) * g * g).epsilon(tol));
    }
  }
}
