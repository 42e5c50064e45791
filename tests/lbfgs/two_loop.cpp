// The vector-free two-loop recursion (lbfgs::two_loop on lbfgs::dot_matrix) against the plain two-loop
// recursion on vectors written here in double (Nocedal & Wright, Algorithm 7.4), for every history count from
// empty to full and after the ring wrapped around, with random pairs: the directions agree to 1e-12 relative.
// The scaling gamma must be s'y / y'y of the newest pair: a test with pairs of very different scales fails
// for any other pair.

#include <tether/lbfgs/two_loop.hpp>

#include <catch2/catch.hpp>

#include "serial_reference.hpp"

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace {

using vec = std::vector<double>;
using lbfgs_test::dot;
using lbfgs_test::serial_two_loop;

/// Base vectors of the dot matrix: slot vectors S[j], Y[j] and g.
struct base {
  std::vector<vec> s, y;
  vec g;
  const vec& at(std::size_t i, std::size_t m) const { return i < m ? s[i] : (i < 2 * m ? y[i - m] : g); }
};

void fill_matrix(tether::lbfgs::dot_matrix& b, const base& v) {
  const std::size_t m = b.m();
  for (std::size_t i = 0; i < b.size(); ++i)
    for (std::size_t j = 0; j <= i; ++j) b.set(i, j, dot(v.at(i, m), v.at(j, m)));
}

vec combine(const std::vector<double>& delta, const base& v, std::size_t m) {
  vec d(v.g.size(), 0.0);
  for (std::size_t i = 0; i < delta.size(); ++i)
    for (std::size_t j = 0; j < d.size(); ++j) d[j] += delta[i] * v.at(i, m)[j];
  return d;
}

double relative_error(const vec& a, const vec& ref) {
  double num = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]);
  return std::sqrt(num / dot(ref, ref));
}

}  // namespace

TEST_CASE("two_loop on the dot products equals the serial two-loop, from no pair to a wrapped ring",
          "[lbfgs][two_loop]") {
  const std::size_t n = 40;
  for (const std::size_t m : {1u, 3u, 6u}) {
    std::mt19937_64 rng(17 + m);
    std::normal_distribution<double> normal;
    tether::lbfgs::dot_matrix b(m);
    base v{std::vector<vec>(m, vec(n, 0.0)), std::vector<vec>(m, vec(n, 0.0)), vec(n)};
    std::vector<std::size_t> order;  // slots from the oldest
    for (std::size_t it = 0; it < 3 * m + 2; ++it) {
      for (auto& e : v.g) e = normal(rng);
      fill_matrix(b, v);
      std::vector<vec> s_old, y_old;
      for (std::size_t i = 0; i < b.count(); ++i) {
        REQUIRE(b.slot(i) == order[i]);
        s_old.push_back(v.s[b.slot(i)]);
        y_old.push_back(v.y[b.slot(i)]);
      }
      const vec ref = serial_two_loop(s_old, y_old, v.g);
      const std::vector<double> delta = tether::lbfgs::two_loop(b);
      const vec d = combine(delta, v, m);
      INFO("m = " << m << ", pairs = " << b.count());
      CHECK(relative_error(d, ref) < 1e-12);
      CHECK(std::abs(tether::lbfgs::combination_dot(b, delta, b.g()) - dot(ref, v.g)) <=
            1e-12 * std::abs(dot(ref, v.g)));
      CHECK(std::abs(tether::lbfgs::combination_norm2(b, delta) - dot(ref, ref)) <= 1e-12 * dot(ref, ref));

      // A new pair with y's > 0 (y = A s for a random SPD diagonal A, plus noise), at different scales so
      // that a scaling taken from another pair than the newest would give another direction.
      const std::size_t slot = b.next_slot();
      const double scale = std::pow(10.0, static_cast<double>(it % 4) - 1.5);
      for (std::size_t j = 0; j < n; ++j) {
        v.s[slot][j] = scale * normal(rng);
        v.y[slot][j] = (1.0 + 0.5 * static_cast<double>(j % 7)) * v.s[slot][j] + 0.01 * scale * normal(rng);
      }
      REQUIRE(dot(v.s[slot], v.y[slot]) > 0.0);
      b.push();
      if (order.size() == m) order.erase(order.begin());
      order.push_back(slot);
    }
  }
}

TEST_CASE("two_loop without pairs is steepest descent and clear() forgets the pairs", "[lbfgs][two_loop]") {
  tether::lbfgs::dot_matrix b(4);
  b.set(b.g(), b.g(), 9.0);
  auto delta = tether::lbfgs::two_loop(b);
  REQUIRE(delta.size() == 9);
  for (std::size_t i = 0; i + 1 < delta.size(); ++i) CHECK(delta[i] == 0.0);
  CHECK(delta[b.g()] == -1.0);
  b.set(b.s(0), b.y(0), 2.0);
  b.set(b.y(0), b.y(0), 4.0);
  b.set(b.s(0), b.s(0), 1.0);
  b.push();
  CHECK(b.count() == 1);
  b.clear();
  CHECK(b.count() == 0);
  delta = tether::lbfgs::two_loop(b);
  CHECK(delta[b.g()] == -1.0);
  CHECK(delta[b.s(0)] == 0.0);
  CHECK_THROWS_AS(tether::lbfgs::dot_matrix(0), tether::error);
}
