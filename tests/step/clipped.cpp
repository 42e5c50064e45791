// step::clipped<Step> (optax's clip_by_global_norm composed with any step) against scalar loops written from
// the definition g' = g * max_norm / max(||g||, max_norm); the per-step reductions it rests on
// (core/step_reductions.hpp) computed in the same pass over g as the finite check (counted passes); a user
// step that asks for ||x||^2; skipped non-finite steps; option checks.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "../core/support.hpp"

namespace {

/// The clipping factor of the definition, from the gradient in index order, in double.
template <class T>
double clip_factor(const std::vector<T>& g, double max_norm) {
  double s = 0.0;
  for (const T v : g) s += static_cast<double>(v) * static_cast<double>(v);
  const double norm = std::sqrt(s);
  return max_norm / std::max(norm, max_norm);
}

/// Gradients of mixed magnitudes; every third step 100 times larger, so both sides of max_norm are taken.
template <class T>
void gradient_of_step(std::vector<T>& g, std::mt19937_64& gen, int t) {
  tt::fill_gradient<T>(g, gen);
  if (t % 3 == 0)
    for (auto& v : g) v *= T(100);
}

/// exec::serial's loops that count the passes of each kind (copies share the counts).
struct counting_serial {
  using memory_space = tether::mem::host;
  template <class T>
  using buffer = std::vector<T>;
  std::shared_ptr<std::size_t> fors = std::make_shared<std::size_t>(0);
  std::shared_ptr<std::size_t> anys = std::make_shared<std::size_t>(0);
  std::shared_ptr<std::size_t> reduces = std::make_shared<std::size_t>(0);
  template <class T>
  buffer<T> allocate(std::size_t n, T value = T{}) const {
    return buffer<T>(n, value);
  }
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    ++*fors;
    tether::exec::serial{}.parallel_for(n, f);
  }
  template <class F>
  bool any(std::size_t n, const F& pred) const {
    ++*anys;
    return tether::exec::serial{}.any(n, pred);
  }
  template <class R, class F>
  R reduce(std::size_t n, R init, const F& f) const {
    ++*reduces;
    return tether::exec::serial{}.reduce(n, init, f);
  }
};
static_assert(tether::reducing_execution_space<counting_serial>);

/// A user's step that asks for ||x||^2 only: x <- x - lr * ||x|| * g (the pre-step norm).
struct norm_scaled_sgd {
  struct options {};
  options opt{};
  static constexpr std::size_t state_size = 0;
  static constexpr tether::reduction_request reductions{.x_norm2 = true};
  template <class T>
  struct context {
    T a;
    double g_norm2;  // must stay 0: not asked for
  };
  void validate() const {}
  template <class T>
  T initial(std::size_t) const {
    return T(0);
  }
  template <class T>
  context<T> prepare(std::uint64_t, T lr, const tether::step_reductions& r) const {
    return {T(static_cast<double>(lr) * std::sqrt(r.x_norm2)), r.g_norm2};
  }
  template <class T>
  static T delta(const context<T>& c, T, T g) {
    return c.g_norm2 == 0.0 ? c.a * g : T(1e30);  // a g_norm2 it did not ask for would show up in x
  }
};
static_assert(tether::step_policy<norm_scaled_sgd>);

}  // namespace

TEMPLATE_TEST_CASE("clipped<adam> is Adam on the gradient clipped to the global norm", "[step][clipped]", float,
                   double) {
  using T = TestType;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  CAPTURE(n);
  constexpr double lr = 0.01;
  constexpr float max_norm = 2.5f;
  constexpr float b1f = 0.9f, b2f = 0.99f, epsf = 1e-6f;
  constexpr int steps = 60;

  std::vector<T> x = tt::random_vector<T>(n, 7);
  std::vector<T> x_ref = x, m_ref(n, T(0)), v_ref(n, T(0)), g(n), gc(n);
  int clipped_steps = 0;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::clipped<tether::step::adam>, T> opt(
        w, n, {.lr = lr, .step = {.max_norm = max_norm, .step = {.beta1 = b1f, .beta2 = b2f, .eps = epsf}}});
    std::mt19937_64 gen(3);
    const T b1 = T(b1f), b2 = T(b2f), eps = T(epsf);
    for (int t = 1; t <= steps; ++t) {
      gradient_of_step(g, gen, t);
      opt.step(x, g, 1.0);
      // The reference: clip (in double, then one rounding to T), then Adam's operations as step::adam does them.
      const double f = clip_factor(g, max_norm);
      if (f < 1.0) ++clipped_steps;
      const T scale = T(f);
      const double bc1 = 1.0 - std::pow(double(b1f), double(t));
      const double bc2 = 1.0 - std::pow(double(b2f), double(t));
      const T step_size = T(double(T(lr)) / bc1);
      const T inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2));
      for (std::size_t i = 0; i < n; ++i) {
        gc[i] = scale * g[i];
        m_ref[i] = b1 * m_ref[i] + T(1.0 - double(b1f)) * gc[i];
        v_ref[i] = b2 * v_ref[i] + T(1.0 - double(b2f)) * gc[i] * gc[i];
        x_ref[i] = x_ref[i] - step_size * m_ref[i] / (std::sqrt(v_ref[i]) * inv_sqrt_bc2 + eps);
      }
    }
  });
  if (n >= 7) CHECK(clipped_steps >= steps / 3);  // the large steps were clipped
  CHECK(tt::max_ulps(x, x_ref) <= 4 * tt::same_order_ulps);
}

TEST_CASE("clipped<sgd> leaves small gradients alone and scales large ones to max_norm", "[step][clipped]") {
  const std::size_t n = 5;
  const float max_norm = GENERATE(0.5f, 3.0f, 1e6f);
  CAPTURE(max_norm);
  std::vector<float> x(n, 1.0f), x_ref = x, g(n);
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::clipped<tether::step::sgd>, float> opt(w, n,
                                                                            {.lr = 0.1, .step = {.max_norm = max_norm}});
    for (int t = 0; t < 20; ++t) {
      for (std::size_t i = 0; i < n; ++i) g[i] = static_cast<float>((t % 4) + 1) * (static_cast<float>(i) - 2.0f);
      opt.step(x, g, 0.0);
      const float s = static_cast<float>(clip_factor(g, max_norm));
      for (std::size_t i = 0; i < n; ++i) x_ref[i] = x_ref[i] - 0.1f * (s * g[i]);
    }
  });
  CHECK(x == x_ref);
}

TEST_CASE("clipped<momentum> (Nesterov) composes: the velocity sees the clipped gradient", "[step][clipped]") {
  const std::size_t n = 7;
  std::vector<double> x = tt::random_vector<double>(n, 11), x_ref = x, vel(n, 0.0), g(n);
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::clipped<tether::step::momentum>, double> opt(
        w, n, {.lr = 0.05, .step = {.max_norm = 1.0f, .step = {.momentum = 0.9f, .nesterov = true}}});
    std::mt19937_64 gen(5);
    for (int t = 1; t <= 40; ++t) {
      gradient_of_step(g, gen, t);
      opt.step(x, g, 0.0);
      const double s = clip_factor(g, 1.0);
      const double mu = double(0.9f);
      for (std::size_t i = 0; i < n; ++i) {
        const double gi = s * g[i];
        vel[i] = mu * vel[i] + gi;
        x_ref[i] -= 0.05 * (gi + mu * vel[i]);
      }
    }
  });
  for (std::size_t i = 0; i < n; ++i) CHECK(x[i] == Approx(x_ref[i]).epsilon(1e-12).margin(1e-14));
}

TEST_CASE("per-step reductions come from the pass of the finite check: no extra read of g", "[step][clipped]") {
  const std::size_t n = 16;
  tt::on_one_worker([&](tether::team::worker& w) {
    std::vector<float> x(n, 1.0f), g(n, 0.5f);
    counting_serial plain_space, clipped_space;
    tether::optimizer<tether::step::adam, tether::pull::none, tether::team::worker, counting_serial> plain(
        plain_space, w, n, {.lr = 0.01});
    tether::optimizer<tether::step::clipped<tether::step::adam>, tether::pull::none, tether::team::worker,
                      counting_serial>
        clipped(clipped_space, w, n, {.lr = 0.01, .step = {.max_norm = 1.0f}});
    const std::size_t fors0 = *plain_space.fors, cfors0 = *clipped_space.fors;  // the state's allocation
    for (int t = 0; t < 10; ++t) {
      plain.step(x, g, 0.0);
      clipped.step(x, g, 0.0);
    }
    // Plain Adam: the finite check (any) and the fused update per step. Clipped: one reduction (||g||^2 and
    // the finite check together) and the fused update: the same two passes.
    CHECK(*plain_space.anys == 10);
    CHECK(*plain_space.reduces == 0);
    CHECK(*plain_space.fors - fors0 == 10);
    CHECK(*clipped_space.anys == 0);
    CHECK(*clipped_space.reduces == 10);
    CHECK(*clipped_space.fors - cfors0 == 10);
  });
}

TEST_CASE("a step that asks for ||x||^2 gets the pre-step norm, and nothing it did not ask for", "[step][clipped]") {
  const std::size_t n = 9;
  std::vector<double> x = tt::random_vector<double>(n, 21), x_ref = x, g(n);
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<norm_scaled_sgd, double> opt(w, n, {.lr = 0.01});
    std::mt19937_64 gen(9);
    for (int t = 0; t < 15; ++t) {
      tt::fill_gradient<double>(g, gen);
      opt.step(x, g, 0.0);
      double s = 0.0;
      for (const double v : x_ref) s += v * v;
      const double a = 0.01 * std::sqrt(s);
      for (std::size_t i = 0; i < n; ++i) x_ref[i] -= a * g[i];
    }
  });
  CHECK(tt::max_ulps(x, x_ref) <= 2 * tt::same_order_ulps);
}

TEST_CASE("clipped: a non-finite gradient is skipped, bad options are errors", "[step][clipped]") {
  const std::size_t n = 4;
  tt::on_one_worker([&](tether::team::worker& w) {
    using opt_t = tt::solo_optimizer<tether::step::clipped<tether::step::adam>, float>;
    opt_t opt(w, n, {.lr = 0.1, .step = {.max_norm = 1.0f}});
    std::vector<float> x(n, 1.0f), g(n, 0.25f);
    g[2] = std::nanf("");
    opt.step(x, g, 0.0);
    CHECK(x == std::vector<float>(n, 1.0f));
    CHECK(opt.stats().skipped_nonfinite == 1);
    CHECK(opt.applied_steps() == 0);
    g[2] = std::numeric_limits<float>::infinity();
    opt.step(x, g, 0.0);
    CHECK(opt.stats().skipped_nonfinite == 2);
    CHECK_THROWS_MATCHES(opt_t(w, n, {.step = {.max_norm = 0.0f}}), tether::error,
                         tt::message_has({"clipped step: max_norm must be finite and > 0", "max_norm = 0"}));
    CHECK_THROWS_MATCHES(opt_t(w, n, {.step = {.max_norm = 1.0f, .step = {.beta1 = 1.0f}}}), tether::error,
                         tt::message_has({"adam beta1 must be in [0, 1)"}));
  });
}
