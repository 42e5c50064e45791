#pragma once
/// \file
/// Helpers shared by the core, step, pull and problems tests: seeded test data (from the standard library,
/// not from tether::rng, so references stay independent of the code under test), ulp distances, an error
/// budget for references that round differently, a one-worker team, an exception-message matcher, and the
/// step configurations of the step x pull grids.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <tether/tether.hpp>

namespace tt {

/// Sizes every per-element test runs over: empty, one element, an odd size, and a large one.
inline constexpr std::array<std::size_t, 4> sizes{0, 1, 7, 1000};

/// Ulps allowed between two computations with the same operations in the same order: 0, unless the target
/// has fast FMA and the compiler may contract a*b+c differently in the library and in the reference.
#if defined(__FP_FAST_FMA) || defined(__FP_FAST_FMAF)
inline constexpr std::uint64_t same_order_ulps = 2;
#else
inline constexpr std::uint64_t same_order_ulps = 0;
#endif

/// Distance in units in the last place between two finite values of the same type (0 for +0 and -0).
template <class T>
[[nodiscard]] std::uint64_t ulp_distance(T a, T b) {
  static_assert(std::is_floating_point_v<T>);
  if (a == b) return 0;
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<std::uint64_t>::max();
  using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  using sbits = std::make_signed_t<bits>;
  // Map the sign-magnitude encoding to a monotonic integer line.
  const auto ordered = [](T v) -> std::int64_t {
    const auto u = std::bit_cast<bits>(v);
    const auto s = static_cast<sbits>(u);
    const std::int64_t mag = static_cast<std::int64_t>(u & (~bits{0} >> 1));
    return s < 0 ? -mag : mag;
  };
  const std::int64_t d = ordered(a) - ordered(b);
  return static_cast<std::uint64_t>(d < 0 ? -d : d);
}

/// The largest ulp distance between two equally long sequences (0 when both are empty).
template <class A, class B>
[[nodiscard]] std::uint64_t max_ulps(const A& a, const B& b) {
  REQUIRE(std::size(a) == std::size(b));
  std::uint64_t m = 0;
  auto ib = std::begin(b);
  for (auto ia = std::begin(a); ia != std::end(a); ++ia, ++ib) m = std::max(m, ulp_distance(*ia, *ib));
  return m;
}

/// True when every element of `a` has exactly the bits of the same element of `b`.
template <class A, class B>
[[nodiscard]] bool same_bits(const A& a, const B& b) {
  if (std::size(a) != std::size(b)) return false;
  auto ib = std::begin(b);
  for (auto ia = std::begin(a); ia != std::end(a); ++ia, ++ib) {
    using T = std::remove_cvref_t<decltype(*ia)>;
    if (std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(*ia) !=
        std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(T(*ib)))
      return false;
  }
  return true;
}

/// Machine epsilon of T as a double.
template <class T>
inline constexpr double eps_of = static_cast<double>(std::numeric_limits<T>::epsilon());

/// Normal test data N(shift, scale^2), from std::mt19937_64.
template <class T>
[[nodiscard]] std::vector<T> random_vector(std::size_t n, std::uint64_t seed, double scale = 1.0,
                                           double shift = 0.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d(shift, scale);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(d(gen));
  return v;
}

/// Fills `g` with gradients of mixed magnitudes (1e-3 to 1e1), both signs, from `gen`.
template <class T>
void fill_gradient(std::span<T> g, std::mt19937_64& gen) {
  std::normal_distribution<double> d(0.0, 1.0);
  std::uniform_real_distribution<double> e(-3.0, 1.0);
  for (auto& v : g) v = static_cast<T>(d(gen) * std::pow(10.0, e(gen)));
}

/// Runs `f(worker&)` on a team of one thread: the communicator of a single-worker optimizer. Exceptions from
/// `f` are rethrown on the calling thread (by team::run).
template <class F>
void on_one_worker(F&& f) {
  tether::team team(1);
  team.run([&](tether::team::worker& w) { f(w); });
}

/// A single-worker optimizer without a pull: the step policy alone.
template <class Step, class T>
using solo_optimizer =
    tether::optimizer<Step, tether::pull::none, tether::team::worker, tether::exec::serial, T>;

/// Matches an exception whose what() contains every one of the given strings.
class message_has : public Catch::MatcherBase<std::exception> {
 public:
  message_has(std::initializer_list<std::string> parts) : parts_(parts) {}
  bool match(const std::exception& e) const override {
    const std::string what = e.what();
    return std::all_of(parts_.begin(), parts_.end(),
                       [&](const std::string& p) { return what.find(p) != std::string::npos; });
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "has a message containing";
    for (const auto& p : parts_) os << " \"" << p << "\"";
    return os.str();
  }

 private:
  std::vector<std::string> parts_;
};

// ------------------------------------------------------------------------------------------------------------
// Step configurations of the step x pull grids: a policy type and the options it runs with.

/// Plain SGD.
struct sgd_case {
  using step = tether::step::sgd;
  static step::options options() { return {}; }
};
/// Heavy-ball momentum (PyTorch convention).
struct heavy_ball_case {
  using step = tether::step::momentum;
  static step::options options() { return {.momentum = 0.9f, .nesterov = false}; }
};
/// Nesterov momentum (PyTorch convention).
struct nesterov_case {
  using step = tether::step::momentum;
  static step::options options() { return {.momentum = 0.9f, .nesterov = true}; }
};
/// Adagrad with a non-zero starting accumulator.
struct adagrad_case {
  using step = tether::step::adagrad;
  static step::options options() { return {.eps = 1e-10f, .initial_accumulator = 0.1f}; }
};
/// Adam with its usual betas.
struct adam_case {
  using step = tether::step::adam;
  static step::options options() { return {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f}; }
};

/// A deterministic gradient of the checkpoint tests: a quadratic in x.size() parameters, with per-step noise
/// derived from (rank, step) only; returns the loss.
inline double gradient(const std::vector<float>& x, std::vector<float>& g, int rank, int t) {
  double loss = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float noise = static_cast<float>(((rank + 3) * (t + 1) * (static_cast<int>(i) + 5)) % 11) / 50.0f - 0.1f;
    const float d = x[i] - static_cast<float>(i) * 0.25f;
    g[i] = d * (1.0f + 0.1f * static_cast<float>(i)) + noise;
    loss += 0.5 * double(d) * double(d);
  }
  return loss + 0.01 * rank;
}

}  // namespace tt
