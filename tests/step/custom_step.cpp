// User-defined step policies, written here as a user would (no change to the library): they satisfy
// tether::step_policy and plug into tether::optimizer; results are checked against hand loops.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../core/support.hpp"

namespace {

/// sign-SGD: x <- x - lr * sign(g). No state.
struct sign_sgd {
  struct options {};
  options opt{};
  static constexpr std::size_t state_size = 0;
  template <class T>
  struct context {
    T lr;
  };
  void validate() const {}
  template <class T>
  [[nodiscard]] T initial(std::size_t /*k*/) const {
    return T(0);
  }
  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t /*k*/, T lr) const {
    return {lr};
  }
  template <class T>
  static T delta(const context<T>& c, T /*x*/, T g) {
    return g > T(0) ? c.lr : (g < T(0) ? -c.lr : T(0));
  }
};

/// Clipped momentum with a decaying rate: v <- mu*v + clamp(g, -clip, clip);  x <- x - (lr/sqrt(k)) * v,
/// k the applied-step count. One state buffer (v), starting at `v0`.
struct clipped_momentum {
  struct options {
    float clip = 1.0f;
    float mu = 0.5f;
    float v0 = 0.0f;
  };
  options opt{};
  static constexpr std::size_t state_size = 1;
  template <class T>
  struct context {
    T rate;
    T clip;
    T mu;
  };
  void validate() const {
    if (!(opt.clip > 0.0f))
      throw tether::error("clipped_momentum: clip must be > 0, got clip = " + std::to_string(opt.clip));
    if (!(opt.mu >= 0.0f && opt.mu < 1.0f))
      throw tether::error("clipped_momentum: mu must be in [0, 1), got mu = " + std::to_string(opt.mu));
  }
  template <class T>
  [[nodiscard]] T initial(std::size_t /*k*/) const {
    return T(opt.v0);
  }
  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t k, T lr) const {
    return {static_cast<T>(static_cast<double>(lr) / std::sqrt(static_cast<double>(k))), T(opt.clip),
            T(opt.mu)};
  }
  template <class T>
  static T delta(const context<T>& c, T /*x*/, T g, T& v) {
    const T gc = std::clamp(g, -c.clip, c.clip);
    v = c.mu * v + gc;
    return c.rate * v;
  }
};

/// Not a step policy: no delta.
struct no_delta {
  struct options {};
  options opt{};
  static constexpr std::size_t state_size = 0;
  template <class T>
  struct context {};
  void validate() const {}
  template <class T>
  T initial(std::size_t) const {
    return T(0);
  }
  template <class T>
  context<T> prepare(std::uint64_t, T) const {
    return {};
  }
};

/// Not a step policy: delta takes one state argument but state_size says two.
struct wrong_arity {
  struct options {};
  options opt{};
  static constexpr std::size_t state_size = 2;
  template <class T>
  struct context {};
  void validate() const {}
  template <class T>
  T initial(std::size_t) const {
    return T(0);
  }
  template <class T>
  context<T> prepare(std::uint64_t, T) const {
    return {};
  }
  template <class T>
  static T delta(const context<T>&, T, T g, T&) {
    return g;
  }
};

static_assert(tether::step_policy<sign_sgd>);
static_assert(tether::step_policy<sign_sgd, double>);
static_assert(tether::step_policy<clipped_momentum>);
static_assert(tether::step_policy<clipped_momentum, double>);
static_assert(!tether::step_policy<no_delta>);
static_assert(!tether::step_policy<wrong_arity>);
// The library's own policies satisfy the same concept.
static_assert(tether::step_policy<tether::step::sgd> && tether::step_policy<tether::step::momentum> &&
              tether::step_policy<tether::step::adagrad> && tether::step_policy<tether::step::adam, double>);

}  // namespace

TEMPLATE_TEST_CASE("custom step: sign-SGD plugs into the optimizer", "[step][custom]", float, double) {
  using T = TestType;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  CAPTURE(n);
  constexpr double lr = 0.125;
  std::vector<T> x = tt::random_vector<T>(n, 51);
  std::vector<T> ref = x;
  std::vector<T> g(n);
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<sign_sgd, T> opt(w, n, {.lr = lr});
    std::mt19937_64 gen(52);
    for (int k = 0; k < 60; ++k) {
      tt::fill_gradient<T>(g, gen);
      if (n > 0) g[0] = T(0);  // sign(0) = 0: no move
      opt.step(x, g, 1.0);
      for (std::size_t i = 0; i < n; ++i) {
        if (g[i] > 0) ref[i] -= T(0.125);
        if (g[i] < 0) ref[i] += T(0.125);
      }
    }
  });
  REQUIRE(tt::same_bits(x, ref));
}

TEMPLATE_TEST_CASE("custom step: clipped momentum with state and a k-dependent rate", "[step][custom]", float,
                   double) {
  using T = TestType;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  CAPTURE(n);
  constexpr double lr = 0.05;
  constexpr float clip = 0.3f;
  constexpr float mu = 0.75f;
  constexpr float v0 = 0.25f;
  std::vector<T> x = tt::random_vector<T>(n, 53);
  std::vector<T> ref = x;
  std::vector<T> v_ref(n, T(v0));
  std::vector<T> g(n);
  std::vector<T> v;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<clipped_momentum, T> opt(w, n, {.lr = lr, .step = {.clip = clip, .mu = mu, .v0 = v0}});
    std::mt19937_64 gen(54);
    for (int k = 1; k <= 80; ++k) {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 1.0);
      const T rate = static_cast<T>(static_cast<double>(static_cast<T>(lr)) / std::sqrt(double(k)));
      for (std::size_t i = 0; i < n; ++i) {
        T gc = g[i];
        if (gc > T(clip)) gc = T(clip);
        if (gc < -T(clip)) gc = -T(clip);
        v_ref[i] = T(mu) * v_ref[i] + gc;
        ref[i] -= rate * v_ref[i];
      }
    }
    const auto s = opt.state(0);
    v.assign(s.data(), s.data() + s.size());
  });
  REQUIRE(tt::max_ulps(x, ref) <= tt::same_order_ulps);
  REQUIRE(tt::max_ulps(v, v_ref) <= tt::same_order_ulps);
}

TEST_CASE("custom step: its validate() runs when the optimizer is built", "[step][custom]") {
  REQUIRE_THROWS_MATCHES(tt::on_one_worker([](tether::team::worker& w) {
                           tt::solo_optimizer<clipped_momentum, float> opt(w, 4, {.step = {.clip = -1.0f}});
                         }),
                         tether::error, tt::message_has({"clip", "-1"}));
  REQUIRE_THROWS_MATCHES(tt::on_one_worker([](tether::team::worker& w) {
                           tt::solo_optimizer<clipped_momentum, float> opt(w, 4, {.step = {.mu = 1.0f}});
                         }),
                         tether::error, tt::message_has({"mu", "1"}));
}
