// Bad sizes throw tether::error naming the buffer and both sizes, and a step that throws (bad sizes, or a
// non-finite value with on_nonfinite = raise) loses nothing: x, the step's state, the pull's buffers and the
// counters are as they were, and later steps continue exactly as if the bad call had never happened.

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "support.hpp"

namespace {

constexpr std::size_t n = 7;
constexpr double nan_d = std::numeric_limits<double>::quiet_NaN();

/// A snapshot of everything a step may change.
template <class T>
struct snapshot {
  std::vector<T> x;
  std::vector<std::vector<T>> state;
  std::vector<std::vector<T>> targets;
  std::uint64_t steps = 0, applied = 0, skipped = 0, rounds = 0;

  template <class Opt>
  static snapshot take(const std::vector<T>& x, Opt& opt) {
    snapshot s;
    s.x = x;
    for (std::size_t k = 0; k < Opt::step_type::state_size; ++k) {
      const auto v = opt.state(k);
      s.state.emplace_back(v.data(), v.data() + v.size());
    }
    for (std::size_t k = 0; k < Opt::pull_type::buffers; ++k) {
      const auto v = opt.target(k);
      s.targets.emplace_back(v.data(), v.data() + v.size());
    }
    s.steps = opt.stats().steps;
    s.applied = opt.applied_steps();
    s.skipped = opt.stats().skipped_nonfinite;
    s.rounds = opt.stats().rounds;
    return s;
  }
  [[nodiscard]] bool same_as(const snapshot& o) const {
    if (!tt::same_bits(x, o.x) || state.size() != o.state.size() || targets.size() != o.targets.size())
      return false;
    for (std::size_t k = 0; k < state.size(); ++k)
      if (!tt::same_bits(state[k], o.state[k])) return false;
    for (std::size_t k = 0; k < targets.size(); ++k)
      if (!tt::same_bits(targets[k], o.targets[k])) return false;
    return steps == o.steps && applied == o.applied && skipped == o.skipped && rounds == o.rounds;
  }
};

/// The kinds of failing call.
enum class failure { x_too_short, g_too_long, nan_gradient, inf_gradient, nan_loss };

}  // namespace

TEST_CASE("bad sizes: x or g of the wrong length throws, naming the buffer and both sizes",
          "[core][bad_input]") {
  using tt::message_has;
  tt::on_one_worker([](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, float> opt(w, n);
    std::vector<float> x(n), g(n), short_x(n - 1), long_g(n + 1), empty;
    REQUIRE_THROWS_MATCHES(opt.step(short_x, g, 1.0), tether::error,
                           message_has({"x has 6 elements", "expected n = 7"}));
    REQUIRE_THROWS_MATCHES(opt.step(x, long_g, 1.0), tether::error,
                           message_has({"g has 8 elements", "expected n = 7"}));
    REQUIRE_THROWS_MATCHES(opt.step(empty, g, 1.0), tether::error,
                           message_has({"x has 0 elements", "expected n = 7"}));
    REQUIRE_THROWS_MATCHES(opt.step(x, tether::as_view(g.data(), 3), 1.0), tether::error,
                           message_has({"g has 3 elements", "expected n = 7"}));
    REQUIRE_NOTHROW(opt.step(x, g, 1.0));
  });
}

TEMPLATE_TEST_CASE("loses nothing: a failed step leaves no trace (momentum, hand loop)", "[core][bad_input]",
                   float, double) {
  using T = TestType;
  const failure f = GENERATE(failure::x_too_short, failure::g_too_long, failure::nan_gradient,
                             failure::inf_gradient, failure::nan_loss);
  CAPTURE(static_cast<int>(f));
  constexpr double lr = 0.05;
  std::vector<T> x = tt::random_vector<T>(n, 301);
  std::vector<T> ref = x;
  std::vector<T> v_ref(n, T(0));
  bool unchanged = false;
  bool threw_right_type = false;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::momentum, T> opt(
        w, n, {.lr = lr, .step = {.momentum = 0.9f}, .on_nonfinite = tether::nonfinite_policy::raise});
    std::mt19937_64 gen(302);
    std::vector<T> g(n);
    const auto good_step = [&] {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 1.0);
      for (std::size_t i = 0; i < n; ++i) {
        v_ref[i] = T(0.9f) * v_ref[i] + g[i];
        ref[i] -= static_cast<T>(lr) * v_ref[i];
      }
    };
    for (int k = 0; k < 5; ++k) good_step();

    const auto before = snapshot<T>::take(x, opt);
    std::vector<T> bad_g(n, T(1));
    try {
      switch (f) {
        case failure::x_too_short: {
          std::vector<T> short_x(x.begin(), x.end() - 1);
          opt.step(short_x, bad_g, 1.0);
          break;
        }
        case failure::g_too_long: {
          std::vector<T> long_g(n + 1, T(1));
          opt.step(x, long_g, 1.0);
          break;
        }
        case failure::nan_gradient:
          bad_g[3] = std::numeric_limits<T>::quiet_NaN();
          opt.step(x, bad_g, 1.0);
          break;
        case failure::inf_gradient:
          bad_g[n - 1] = -std::numeric_limits<T>::infinity();
          opt.step(x, bad_g, 1.0);
          break;
        case failure::nan_loss:
          opt.step(x, bad_g, nan_d);
          break;
      }
    } catch (const tether::error&) {
      threw_right_type = f == failure::x_too_short || f == failure::g_too_long;
    } catch (const tether::runtime_error&) {
      threw_right_type = f != failure::x_too_short && f != failure::g_too_long;
    }
    unchanged = snapshot<T>::take(x, opt).same_as(before);

    for (int k = 0; k < 5; ++k) good_step();
  });
  REQUIRE(threw_right_type);
  REQUIRE(unchanged);
  REQUIRE(tt::max_ulps(x, ref) <= tt::same_order_ulps);
}

TEMPLATE_TEST_CASE("loses nothing: Adam with an elastic pull continues as if the bad call never happened",
                   "[core][bad_input]", float, double) {
  // Adam's bias correction counts applied steps and the elastic pull keeps a center and a round clock: a
  // failed call must advance neither. The reference is a twin optimizer that never sees the bad call.
  using T = TestType;
  const failure f =
      GENERATE(failure::x_too_short, failure::g_too_long, failure::nan_gradient, failure::nan_loss);
  CAPTURE(static_cast<int>(f));
  using opt_t = tether::optimizer<tether::step::adam, tether::pull::elastic, tether::team::worker,
                                  tether::exec::serial, T>;
  const typename opt_t::options o{
      .lr = 0.02, .pull = {.period = 3, .alpha = 0.25f}, .on_nonfinite = tether::nonfinite_policy::raise};
  std::vector<T> x = tt::random_vector<T>(n, 401);
  std::vector<T> twin_x = x;
  bool unchanged = false;
  int throws = 0;
  tt::on_one_worker([&](tether::team::worker& w) {
    opt_t opt(w, n, o);
    opt_t twin(w, n, o);
    std::mt19937_64 gen(402);
    std::vector<T> g(n);
    for (int k = 0; k < 4; ++k) {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 1.0);
      twin.step(twin_x, g, 1.0);
    }
    const auto before = snapshot<T>::take(x, opt);
    std::vector<T> bad_g(n, T(1));
    std::vector<T> short_x(n - 1);
    std::vector<T> long_g(n + 1);
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        if (f == failure::x_too_short) opt.step(short_x, bad_g, 1.0);
        if (f == failure::g_too_long) opt.step(x, long_g, 1.0);
        if (f == failure::nan_gradient) {
          bad_g[0] = std::numeric_limits<T>::quiet_NaN();
          opt.step(x, bad_g, 1.0);
        }
        if (f == failure::nan_loss) opt.step(x, bad_g, nan_d);
      } catch (const std::exception&) {
        ++throws;
      }
    }
    unchanged = snapshot<T>::take(x, opt).same_as(before);
    for (int k = 0; k < 8; ++k) {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 1.0);
      twin.step(twin_x, g, 1.0);
    }
  });
  REQUIRE(throws == 3);
  REQUIRE(unchanged);
  REQUIRE(tt::same_bits(x, twin_x));
}
