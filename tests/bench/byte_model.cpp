// The benchmark kit's byte model (tether/bench/byte_model.hpp), derived at compile time from the policies,
// against the table of docs/benchmarks.md and ../shared/PERFORMANCE.md written out by hand: SGD 12, SGD + a
// pull 16, SGD + local and global leaders 20, momentum or Adagrad 20, momentum + a pull 24, Adam 28, Adam + a
// pull 32 bytes per float; a user's pull that declares a buffer its force does not read, and a user's step
// that only reads a state buffer, are counted right.

#include <array>
#include <cstddef>
#include <cstdint>

#include <catch2/catch.hpp>

#include <tether/bench/byte_model.hpp>
#include <tether/tether.hpp>

namespace {

using namespace tether;
using bench::bytes_per_element;

// The table, for every built-in step x pull.
static_assert(bytes_per_element<step::sgd, pull::none> == 12);
static_assert(bytes_per_element<step::sgd, pull::average> == 12);
static_assert(bytes_per_element<step::sgd, pull::leader> == 16);
static_assert(bytes_per_element<step::sgd, pull::elastic> == 16);  // reads the center, not the sum
static_assert(bytes_per_element<step::sgd, pull::anchor> == 16);   // reads the anchor only
static_assert(bytes_per_element<step::sgd, pull::async_leader> == 16);
static_assert(bytes_per_element<step::sgd, pull::async_elastic> == 16);  // reads the delta, not the center
static_assert(bytes_per_element<step::sgd, pull::group_leader> == 20);
static_assert(bytes_per_element<step::momentum, pull::none> == 20);
static_assert(bytes_per_element<step::adagrad, pull::none> == 20);
static_assert(bytes_per_element<step::momentum, pull::leader> == 24);
static_assert(bytes_per_element<step::momentum, pull::elastic> == 24);
static_assert(bytes_per_element<step::adagrad, pull::anchor> == 24);
static_assert(bytes_per_element<step::momentum, pull::group_leader> == 28);
static_assert(bytes_per_element<step::adam, pull::none> == 28);
static_assert(bytes_per_element<step::adam, pull::leader> == 32);
static_assert(bytes_per_element<step::adam, pull::elastic> == 32);
static_assert(bytes_per_element<step::adam, pull::anchor> == 32);
// Doubles move twice the bytes; a step without its force (WithForce = false) moves the step's alone.
static_assert(bytes_per_element<step::adam, pull::leader, double> == 64);
static_assert(bytes_per_element<step::adam, pull::leader, float, false> == 28);

/// A user's pull with two buffers whose force reads only the first (the second is written between steps).
struct pull_with_scratch {
  struct options {};
  options opt{};
  static constexpr std::size_t buffers = 2;
  static constexpr std::array<bool, buffers> force_reads{true, false};
  template <class T>
  struct context {
    T a;
  };
  void validate(int) const {}
  template <class T>
  static T force(const context<T>& c, T x, T target, T /*scratch*/) {
    return c.a * (x - target);
  }
};

/// The same pull without the declaration: both buffers count.
struct pull_undeclared {
  struct options {};
  options opt{};
  static constexpr std::size_t buffers = 2;
  template <class T>
  struct context {
    T a;
  };
  void validate(int) const {}
  template <class T>
  static T force(const context<T>& c, T x, T target, T /*scratch*/) {
    return c.a * (x - target);
  }
};

/// A user's step with two state buffers, the second only read (a fixed per-parameter rate).
struct step_with_rates {
  struct options {};
  options opt{};
  static constexpr std::size_t state_size = 2;
  static constexpr std::array<bool, state_size> state_writes{true, false};
  template <class T>
  struct context {
    T lr;
  };
  void validate() const {}
  template <class T>
  T initial(std::size_t) const {
    return T(1);
  }
  template <class T>
  context<T> prepare(std::uint64_t, T lr) const {
    return {lr};
  }
  template <class T>
  static T delta(const context<T>& c, T, T g, T& v, T& rate) {
    v = v + g;
    return c.lr * rate * v;
  }
};

static_assert(bytes_per_element<step::sgd, pull_with_scratch> == 16);
static_assert(bytes_per_element<step::sgd, pull_undeclared> == 20);
static_assert(bytes_per_element<step_with_rates, pull::none> == 12 + 8 + 4);  // v read and written, rate read

}  // namespace

TEST_CASE("bench byte model: read and write counts of a user's policies", "[bench]") {
  constexpr auto c = bench::update_values<step_with_rates, pull_with_scratch>();
  STATIC_REQUIRE(c.reads == 2 + 2 + 1);  // x, g, v, rate, target
  STATIC_REQUIRE(c.writes == 1 + 1);     // x, v
  STATIC_REQUIRE(c.total() * sizeof(float) == bytes_per_element<step_with_rates, pull_with_scratch>);
}
