#pragma once
// The execution spaces' reduce(n, init, f) against a compensated (Neumaier) scalar loop in double: one sum (dot products of
// doubles and floats) and several sums in one pass (tether::sums<double, 3>), for sizes around the spaces'
// block boundaries. Integer-valued terms are exact in double whatever the order, so those sums must be equal;
// general terms must agree to a relative 1e-12 (the order of the additions differs by space). A second call
// must give the same bits (the spaces' orders are fixed).
//
// The space's memory is reached through an adapter:
//   struct adapter { template <class T> auto make(const std::vector<T>&) const;   // a buffer of the space
//                    template <class T> const T* ptr(const auto& buffer) const; };

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "tether/core/concepts.hpp"
#include "tether/core/sums.hpp"

namespace exec_test {

/// A compensated sum (Neumaier): the reference, accurate to about one rounding of the total.
struct neumaier {
  double s = 0.0;
  double c = 0.0;
  void add(double v) {
    const double t = s + v;
    c += std::abs(s) >= std::abs(v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  [[nodiscard]] double value() const { return s + c; }
};

/// Sizes around the 4096-element blocks of the host spaces and a large one.
inline constexpr std::size_t reduce_sizes[] = {0, 1, 7, 4095, 4096, 4097, 100003, 1000003};

/// Three sums in one pass: sum a, sum a*b, sum b*b.
template <class T>
struct three_sums {
  const T* a;
  const T* b;
  TETHER_HOST_DEVICE tether::sums<double, 3> operator()(std::size_t i) const {
    const double x = static_cast<double>(a[i]);
    const double y = static_cast<double>(b[i]);
    return {{x, x * y, y * y}};
  }
};

template <class Space, class Adapter>
void check_reduce(const Space& space, const Adapter& ad) {
  STATIC_REQUIRE(tether::reducing_execution_space<Space>);
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> small(-8, 8);
  for (const std::size_t n : reduce_sizes) {
    CAPTURE(n);
    std::vector<double> a(n), b(n), ia(n), ib(n);
    std::vector<float> fa(n), fb(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = u(rng);
      b[i] = u(rng);
      ia[i] = small(rng);
      ib[i] = small(rng);
      fa[i] = static_cast<float>(u(rng));
      fb[i] = static_cast<float>(u(rng));
    }
    neumaier dot, fdot, s0, s2;
    double idot = 0.0;  // integer terms: exact in any order
    for (std::size_t i = 0; i < n; ++i) {
      dot.add(a[i] * b[i]);
      idot += ia[i] * ib[i];
      fdot.add(static_cast<double>(fa[i]) * static_cast<double>(fb[i]));
      s0.add(a[i]);
      s2.add(b[i] * b[i]);
    }
    const auto da = ad.make(a), db = ad.make(b), dia = ad.make(ia), dib = ad.make(ib);
    const auto dfa = ad.make(fa), dfb = ad.make(fb);
    const auto near = [n](double got, const neumaier& want) {
      return std::abs(got - want.value()) <= 1e-12 * (1.0 + static_cast<double>(n));
    };

    const double r = space.reduce(n, 0.0, tether::kernels::dot<double>{ad.ptr(da), ad.ptr(db)});
    CHECK(near(r, dot));
    const double again = space.reduce(n, 0.0, tether::kernels::dot<double>{ad.ptr(da), ad.ptr(db)});
    CHECK(again == r);
    CHECK(space.reduce(n, 0.0, tether::kernels::dot<double>{ad.ptr(dia), ad.ptr(dib)}) == idot);
    CHECK(space.reduce(n, 2.5, tether::kernels::dot<double>{ad.ptr(dia), ad.ptr(dib)}) == idot + 2.5);
    CHECK(near(space.reduce(n, 0.0, tether::kernels::dot<float>{ad.ptr(dfa), ad.ptr(dfb)}), fdot));

    const tether::sums<double, 3> init{{1.0, 2.0, 3.0}};
    const auto m = space.reduce(n, init, three_sums<double>{ad.ptr(da), ad.ptr(db)});
    CHECK(near(m[0] - 1.0, s0));
    CHECK(near(m[1] - 2.0, dot));
    CHECK(near(m[2] - 3.0, s2));
  }
}

/// Host memory: the vector itself.
struct host_reduce_adapter {
  template <class T>
  std::vector<T> make(const std::vector<T>& v) const {
    return v;
  }
  template <class T>
  const T* ptr(const std::vector<T>& v) const {
    return v.data();
  }
};

}  // namespace exec_test
