// Buffer views and traits: std::vector, std::array, std::span, C arrays, raw pointer + size through
// tether::as_view(p, n), tether::view itself, and a user's own container adapted by specialising
// tether::buffer_traits all work with optimizer::step and write through to the caller's memory.

#include <array>
#include <cstddef>
#include <list>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "support.hpp"

namespace user {

/// A user's own storage, not a range: tether sees it only through the buffer_traits specialisation below.
template <class T>
class my_buffer {
 public:
  explicit my_buffer(std::size_t n) : n_(n), p_(std::make_unique<T[]>(n)) {}
  [[nodiscard]] T* raw() noexcept { return p_.get(); }
  [[nodiscard]] const T* raw() const noexcept { return p_.get(); }
  [[nodiscard]] std::size_t count() const noexcept { return n_; }
  T& at(std::size_t i) { return p_[i]; }

 private:
  std::size_t n_;
  std::unique_ptr<T[]> p_;
};

}  // namespace user

namespace tether {

/// The adaptation a user writes once for their container (docs/concepts.md#buffers).
template <class T>
struct buffer_traits<user::my_buffer<T>> {
  using value_type = T;
  using memory_space = mem::host;
  static T* data(user::my_buffer<T>& b) { return b.raw(); }
  static const T* data(const user::my_buffer<T>& b) { return b.raw(); }
  static std::size_t size(const user::my_buffer<T>& b) { return b.count(); }
};

}  // namespace tether

namespace {

static_assert(tether::buffer<std::vector<float>> && tether::buffer<const std::vector<float>&>);
static_assert(tether::buffer<std::array<double, 3>>);
static_assert(tether::buffer<std::span<float>> && tether::buffer<std::span<const float>>);
static_assert(tether::buffer<float[4]>);
static_assert(tether::buffer<tether::view<float>>);
static_assert(tether::buffer<user::my_buffer<float>>);
static_assert(!tether::buffer<int>);
static_assert(!tether::buffer<std::list<float>>);  // not contiguous
static_assert(std::is_same_v<tether::buffer_value_t<std::vector<double>>, double>);
static_assert(std::is_same_v<tether::buffer_value_t<std::span<const float>>, const float>);
static_assert(std::is_same_v<tether::buffer_value_t<user::my_buffer<double>>, double>);
static_assert(std::is_same_v<tether::buffer_space_t<std::vector<float>>, tether::mem::host>);
static_assert(std::is_same_v<tether::buffer_space_t<user::my_buffer<float>>, tether::mem::host>);

constexpr std::size_t n = 7;
constexpr double lr = 0.25;
constexpr int steps = 4;

/// The values every container starts with and the gradient every test applies.
template <class T>
T start_value(std::size_t i) {
  return T(0.5) * static_cast<T>(i) - T(1);
}
template <class T>
T grad_value(std::size_t i) {
  return static_cast<T>(i % 3) - T(0.75);
}

/// x after `steps` SGD steps with the constant gradient, by hand.
template <class T>
std::vector<T> expected() {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = start_value<T>(i);
    for (int k = 0; k < steps; ++k) x[i] -= static_cast<T>(lr) * grad_value<T>(i);
  }
  return x;
}

/// Builds a one-worker SGD optimizer of n parameters and hands it to `body`.
template <class T, class F>
void run_sgd(F&& body) {
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, T> opt(w, n, {.lr = lr});
    body(opt);
  });
}

}  // namespace

TEST_CASE("views: as_view of each kind of buffer points at the caller's memory", "[core][views]") {
  std::vector<float> v(5);
  std::array<double, 3> a{};
  float c[4] = {};
  user::my_buffer<float> m(6);
  const auto vv = tether::as_view(v);
  REQUIRE(vv.data() == v.data());
  REQUIRE(vv.size() == 5);
  const auto va = tether::as_view(a);
  REQUIRE(va.data() == a.data());
  REQUIRE(va.size() == 3);
  const auto vc = tether::as_view(c);
  REQUIRE(vc.data() == &c[0]);
  REQUIRE(vc.size() == 4);
  const auto vm = tether::as_view(m);
  REQUIRE(vm.data() == m.raw());
  REQUIRE(vm.size() == 6);
  const auto vp = tether::as_view(v.data() + 1, 3);
  static_assert(std::is_same_v<decltype(vp), const tether::view<float, tether::mem::host>>);
  REQUIRE(vp.data() == v.data() + 1);
  REQUIRE(vp.size() == 3);
  REQUIRE(vp.span().data() == v.data() + 1);
  REQUIRE(vp.span().size() == 3);
  const tether::view<const float> cv = vp;  // mutable views convert to const views
  REQUIRE(cv.data() == vp.data());
  REQUIRE(cv.size() == 3);
  REQUIRE(tether::view<float>{}.empty());
  const std::vector<float>& cref = v;
  static_assert(std::is_same_v<decltype(tether::as_view(cref))::value_type, const float>);
  const user::my_buffer<float>& mref = m;
  static_assert(std::is_same_v<decltype(tether::as_view(mref))::value_type, const float>);
}

TEMPLATE_TEST_CASE("views: optimizer::step takes every kind of buffer", "[core][views]", float, double) {
  using T = TestType;
  const std::vector<T> want = expected<T>();
  std::vector<T> g_vec(n);
  for (std::size_t i = 0; i < n; ++i) g_vec[i] = grad_value<T>(i);
  const auto fill = [](auto& x) {
    for (std::size_t i = 0; i < n; ++i) x[i] = start_value<T>(i);
  };

  SECTION("std::vector, with a const std::vector gradient") {
    std::vector<T> x(n);
    fill(x);
    const std::vector<T>& g = g_vec;
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(x, g, 1.0);
    });
    REQUIRE(tt::same_bits(x, want));
  }
  SECTION("std::array") {
    std::array<T, n> x{};
    fill(x);
    std::array<T, n> g{};
    for (std::size_t i = 0; i < n; ++i) g[i] = g_vec[i];
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(x, g, 1.0);
    });
    REQUIRE(tt::same_bits(x, want));
  }
  SECTION("std::span, with a std::span<const T> gradient") {
    std::vector<T> storage(n + 2, T(42));
    std::span<T> x(storage.data() + 1, n);  // a window: the elements around it stay untouched
    fill(x);
    std::span<const T> g(g_vec);
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(x, g, 1.0);
    });
    REQUIRE(tt::same_bits(std::vector<T>(x.begin(), x.end()), want));
    REQUIRE(storage.front() == T(42));
    REQUIRE(storage.back() == T(42));
  }
  SECTION("C arrays") {
    T x[n];
    fill(x);
    T g[n];
    for (std::size_t i = 0; i < n; ++i) g[i] = g_vec[i];
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(x, g, 1.0);
    });
    REQUIRE(tt::same_bits(std::vector<T>(x, x + n), want));
  }
  SECTION("raw pointer + size through tether::as_view(p, n)") {
    auto x = std::make_unique<T[]>(n);
    T* p = x.get();
    fill(p);
    const T* gp = g_vec.data();
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(tether::as_view(p, n), tether::as_view(gp, n), 1.0);
    });
    REQUIRE(tt::same_bits(std::vector<T>(p, p + n), want));
  }
  SECTION("tether::view") {
    std::vector<T> storage(n);
    fill(storage);
    tether::view<T> x{storage.data(), n};
    tether::view<const T> g{g_vec.data(), n};
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(x, g, 1.0);
    });
    REQUIRE(tt::same_bits(storage, want));
  }
  SECTION("a user's container adapted by specialising tether::buffer_traits") {
    user::my_buffer<T> x(n);
    for (std::size_t i = 0; i < n; ++i) x.at(i) = start_value<T>(i);
    user::my_buffer<T> g(n);
    for (std::size_t i = 0; i < n; ++i) g.at(i) = g_vec[i];
    const user::my_buffer<T>& gc = g;
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(x, gc, 1.0);
    });
    REQUIRE(tt::same_bits(std::vector<T>(x.raw(), x.raw() + n), want));
  }
  SECTION("mixed: a user container for x, a vector for g") {
    user::my_buffer<T> x(n);
    for (std::size_t i = 0; i < n; ++i) x.at(i) = start_value<T>(i);
    run_sgd<T>([&](auto& opt) {
      for (int k = 0; k < steps; ++k) opt.step(x, g_vec, 1.0);
    });
    REQUIRE(tt::same_bits(std::vector<T>(x.raw(), x.raw() + n), want));
  }
}

TEST_CASE("views: optimizer state and pull buffers are views of n elements", "[core][views]") {
  tt::on_one_worker([&](tether::team::worker& w) {
    tether::optimizer<tether::step::adam, tether::pull::elastic, tether::team::worker> opt(w, n);
    REQUIRE(opt.size() == n);
    REQUIRE(opt.state(0).size() == n);
    REQUIRE(opt.state(1).size() == n);
    REQUIRE(opt.state(0).data() != opt.state(1).data());
    REQUIRE(opt.target(0).size() == n);
    REQUIRE(opt.target(1).size() == n);
  });
}
