// Learning-rate schedules against their closed forms, and the optimizer's use of schedule(t) at step t.

#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "support.hpp"

namespace {

constexpr double pi = std::numbers::pi;

}  // namespace

TEST_CASE("schedule: constant returns the base rate at every step", "[core][schedule]") {
  const auto s = tether::schedule::constant();
  s.validate();
  for (std::uint64_t t : {0ull, 1ull, 17ull, 1000000ull}) REQUIRE(s(t, 0.05) == 0.05);
  REQUIRE(tether::schedule{}(3, 0.7) == 0.7);
}

TEST_CASE("schedule: step_decay is base * factor^floor(t/every)", "[core][schedule]") {
  const auto s = tether::schedule::step_decay(10, 0.3);
  s.validate();
  for (std::uint64_t t = 0; t < 100; ++t) {
    CAPTURE(t);
    double expected = 0.2;
    for (std::uint64_t k = 0; k < t / 10; ++k) expected *= 0.3;
    REQUIRE(s(t, 0.2) == Approx(expected).epsilon(1e-14));
  }
  // Boundaries: the rate changes exactly at multiples of `every`.
  const auto h = tether::schedule::step_decay(4, 0.5);
  REQUIRE(h(3, 1.0) == 1.0);
  REQUIRE(h(4, 1.0) == 0.5);
  REQUIRE(h(7, 1.0) == 0.5);
  REQUIRE(h(8, 1.0) == 0.25);
}

TEST_CASE("schedule: cosine goes from base to floor*base over total steps, then stays", "[core][schedule]") {
  constexpr std::uint64_t total = 40;
  for (const double fl : {0.0, 0.1, 1.0}) {
    CAPTURE(fl);
    const auto s = tether::schedule::cosine(total, fl);
    s.validate();
    for (std::uint64_t t = 0; t <= 2 * total; ++t) {
      CAPTURE(t);
      const double u = t >= total ? 1.0 : double(t) / double(total);
      const double expected = 0.3 * (fl + (1.0 - fl) * (1.0 + std::cos(pi * u)) / 2.0);
      REQUIRE(s(t, 0.3) == Approx(expected).epsilon(1e-13).margin(1e-16));
    }
    REQUIRE(s(0, 0.3) == Approx(0.3));
    REQUIRE(s(total / 2, 0.3) == Approx(0.3 * (fl + (1.0 - fl) / 2.0)));
    REQUIRE(s(total, 0.3) == Approx(0.3 * fl).margin(1e-16));
    REQUIRE(s(10 * total, 0.3) == Approx(0.3 * fl).margin(1e-16));
  }
  // Monotone non-increasing.
  const auto s = tether::schedule::cosine(100, 0.05);
  for (std::uint64_t t = 1; t < 150; ++t) REQUIRE(s(t, 1.0) <= s(t - 1, 1.0));
}

TEST_CASE("schedule: linear warm-up (t+1)/warmup over the first steps of any kind", "[core][schedule]") {
  auto c = tether::schedule::constant();
  c.warmup = 4;
  c.validate();
  REQUIRE(c(0, 1.0) == 0.25);
  REQUIRE(c(1, 1.0) == 0.5);
  REQUIRE(c(2, 1.0) == 0.75);
  REQUIRE(c(3, 1.0) == 1.0);
  REQUIRE(c(4, 1.0) == 1.0);
  REQUIRE(c(1000, 1.0) == 1.0);

  auto s = tether::schedule::cosine(50, 0.0);
  s.warmup = 10;
  for (std::uint64_t t = 0; t < 60; ++t) {
    CAPTURE(t);
    const double u = t >= 50 ? 1.0 : double(t) / 50.0;
    double expected = 0.4 * (1.0 + std::cos(pi * u)) / 2.0;
    if (t < 10) expected *= double(t + 1) / 10.0;
    REQUIRE(s(t, 0.4) == Approx(expected).epsilon(1e-13).margin(1e-16));
  }
}

TEST_CASE("schedule: custom calls the user's function with (t, base)", "[core][schedule]") {
  std::vector<std::uint64_t> seen;
  const auto s = tether::schedule::custom([&](std::uint64_t t, double base) {
    seen.push_back(t);
    return base / double(t + 1);
  });
  s.validate();
  REQUIRE(s(0, 2.0) == 2.0);
  REQUIRE(s(3, 2.0) == 0.5);
  REQUIRE(seen == std::vector<std::uint64_t>{0, 3});
}

TEST_CASE("schedule: bad parameters throw tether::error naming them", "[core][schedule]") {
  REQUIRE_THROWS_MATCHES(tether::schedule::step_decay(0, 0.5).validate(), tether::error,
                         tt::message_has({"every", "every = 0"}));
  REQUIRE_THROWS_MATCHES(tether::schedule::step_decay(5, 0.0).validate(), tether::error,
                         tt::message_has({"factor", "0"}));
  REQUIRE_THROWS_MATCHES(tether::schedule::step_decay(5, -2.0).validate(), tether::error,
                         tt::message_has({"factor", "-2"}));
  REQUIRE_THROWS_MATCHES(tether::schedule::cosine(0).validate(), tether::error,
                         tt::message_has({"total", "total = 0"}));
  REQUIRE_THROWS_MATCHES(tether::schedule::cosine(10, 1.5).validate(), tether::error,
                         tt::message_has({"floor", "floor = 1.5"}));
  REQUIRE_THROWS_MATCHES(tether::schedule::cosine(10, -0.1).validate(), tether::error,
                         tt::message_has({"floor", "floor = -0.1"}));
  REQUIRE_THROWS_MATCHES(tether::schedule::custom({}).validate(), tether::error,
                         tt::message_has({"custom", "fn"}));
}

TEMPLATE_TEST_CASE("schedule: the optimizer steps with schedule(t) at step t", "[core][schedule]", float,
                   double) {
  using T = TestType;
  constexpr std::size_t n = 5;
  const std::vector<T> g = {T(1), T(-2), T(0.5), T(3), T(-0.25)};

  // Each schedule's rate at step t, written independently of the library: exact in binary (powers of two and
  // quarters), so x must match x_t = x_{t-1} - T(rate(t)) * g bit for bit.
  struct exact_case {
    tether::schedule s;
    double (*rate)(std::uint64_t);
  };
  auto warm = tether::schedule::step_decay(3, 0.5);
  warm.warmup = 4;
  const exact_case cases[] = {
      {tether::schedule::constant(), [](std::uint64_t) { return 0.125; }},
      {tether::schedule::step_decay(3, 0.5),
       [](std::uint64_t t) { return 0.125 * std::ldexp(1.0, -int(t / 3)); }},
      {warm,
       [](std::uint64_t t) {
         const double r = 0.125 * std::ldexp(1.0, -int(t / 3));
         return t < 4 ? r * double(t + 1) / 4.0 : r;
       }},
      {tether::schedule::custom([](std::uint64_t t, double base) { return base * double(t % 4); }),
       [](std::uint64_t t) { return 0.125 * double(t % 4); }},
  };
  for (std::size_t c = 0; c < std::size(cases); ++c) {
    CAPTURE(c);
    std::vector<T> x(n, T(1));
    std::vector<T> ref = x;
    tt::on_one_worker([&](tether::team::worker& w) {
      tt::solo_optimizer<tether::step::sgd, T> opt(w, n, {.lr = 0.125, .schedule = cases[c].s});
      std::vector<T> gg = g;
      for (std::uint64_t t = 0; t < 20; ++t) {
        opt.step(x, gg, 1.0);
        for (std::size_t i = 0; i < n; ++i) ref[i] -= static_cast<T>(cases[c].rate(t)) * g[i];
      }
    });
    REQUIRE(tt::same_bits(x, ref));
  }

  // Cosine: the rate is transcendental, so compare within a rounding budget.
  {
    std::vector<T> x(n, T(0));
    std::vector<double> ref(n, 0.0);
    tt::on_one_worker([&](tether::team::worker& w) {
      tt::solo_optimizer<tether::step::sgd, T> opt(
          w, n, {.lr = 0.1, .schedule = tether::schedule::cosine(30, 0.2)});
      std::vector<T> gg = g;
      for (std::uint64_t t = 0; t < 40; ++t) opt.step(x, gg, 1.0);
    });
    for (std::uint64_t t = 0; t < 40; ++t) {
      const double u = t >= 30 ? 1.0 : double(t) / 30.0;
      const double rate = 0.1 * (0.2 + 0.8 * (1.0 + std::cos(pi * u)) / 2.0);
      for (std::size_t i = 0; i < n; ++i) ref[i] -= rate * double(g[i]);
    }
    for (std::size_t i = 0; i < n; ++i) REQUIRE(double(x[i]) == Approx(ref[i]).epsilon(100 * tt::eps_of<T>));
  }
}

TEST_CASE("schedule: t counts every step taken, skipped ones included; skipped steps do not ask for a rate",
          "[core][schedule]") {
  std::vector<std::uint64_t> asked;
  std::vector<float> x(3, 0.0f);
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, float> opt(
        w, 3, {.lr = 1.0, .schedule = tether::schedule::custom([&](std::uint64_t t, double base) {
                            asked.push_back(t);
                            return base * 0.5;
                          })});
    std::vector<float> g = {1.0f, 1.0f, 1.0f};
    std::vector<float> bad = {1.0f, NAN, 1.0f};
    opt.step(x, g, 1.0);
    opt.step(x, g, 1.0);
    opt.step(x, bad, 1.0);  // skipped (non-finite gradient)
    opt.step(x, g, 1.0);
  });
  REQUIRE(asked == std::vector<std::uint64_t>{0, 1, 3});
  REQUIRE(x == std::vector<float>(3, -1.5f));
}

TEST_CASE("schedule: a schedule that gives a negative or non-finite rate stops the step",
          "[core][schedule]") {
  for (const double bad : {-0.5, double(INFINITY), double(NAN)}) {
    CAPTURE(bad);
    std::vector<float> x(2, 1.0f);
    std::vector<float> g(2, 1.0f);
    REQUIRE_THROWS_MATCHES(
        tt::on_one_worker([&](tether::team::worker& w) {
          tt::solo_optimizer<tether::step::sgd, float> opt(
              w, 2, {.lr = 0.1, .schedule = tether::schedule::custom([=](std::uint64_t t, double b) {
                                  return t == 2 ? bad : b;
                                })});
          for (int k = 0; k < 4; ++k) opt.step(x, g, 1.0);
        }),
        tether::error, tt::message_has({"lr = ", "at step 2"}));
    // Two good steps were taken, the third threw before touching x.
    REQUIRE(x == std::vector<float>(2, 1.0f - 0.1f - 0.1f));
  }
}
