/// \file
/// The copy-paste skeletons of docs/concepts.md, compiled and checked against independent scalar references.
/// The code between `// [snippet: <name>]` and `// [end snippet]` must match the block after
/// `<!-- snippet: <name> -->` in the docs (leading whitespace aside): the test docs_snippets compares them.

#include <catch2/catch.hpp>

#include <tether/tether.hpp>

#include "pull_skeleton.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace skel {

// [snippet: objective]
/// f(x) = 1/(2m) sum_s |x - c_s|^2 over the m samples of a batch: the optimum is the mean of the c_s.
struct my_objective {
  std::vector<std::vector<float>> centers;  // the data: one point c_s per sample

  std::size_t dimension() const { return centers.front().size(); }

  /// Mean loss over the batch's samples (all samples when b.samples is empty); writes the gradient into g.
  double evaluate(std::span<const float> x, std::span<float> g, const tether::batch& b) const {
    const std::size_t m = b.samples.empty() ? centers.size() : b.samples.size();
    std::fill(g.begin(), g.end(), 0.0f);
    double loss = 0.0;
    for (std::size_t k = 0; k < m; ++k) {
      const auto& c = centers[b.samples.empty() ? k : b.samples[k]];
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double d = double(x[i]) - double(c[i]);
        loss += 0.5 * d * d / double(m);
        g[i] += static_cast<float>(d / double(m));
      }
    }
    return loss;
  }
};
static_assert(tether::objective<my_objective>);
// [end snippet]

// [snippet: step_policy]
/// Lion (Chen et al., 2023): the sign of an interpolated momentum, with decoupled weight decay.
///   u = b1*m + (1-b1)*g;  m <- b2*m + (1-b2)*g;  x <- x - lr*(sign(u) + wd*x)
struct lion {
  struct options {
    float beta1 = 0.9f;
    float beta2 = 0.99f;
    float weight_decay = 0.0f;
  };
  options opt{};  // filled from the optimizer's `.step = {...}`

  static constexpr std::size_t state_size = 1;  // per-parameter state buffers: the momentum m

  template <class T>
  struct context {  // per-step scalars, computed once on the host
    T lr, b1, b2, wd;
  };

  void validate() const {  // called once by the optimizer's constructor
    if (!(opt.beta1 >= 0.0f && opt.beta1 < 1.0f && opt.beta2 >= 0.0f && opt.beta2 < 1.0f))
      throw tether::error("lion: beta1 and beta2 must be in [0, 1)");
  }

  template <class T>
  T initial(std::size_t /*buffer*/) const {  // starting value of state buffer k
    return T(0);
  }

  template <class T>
  context<T> prepare(std::uint64_t /*k: applied steps, from 1*/, T lr) const {
    return {lr, T(opt.beta1), T(opt.beta2), T(opt.weight_decay)};
  }

  /// Per element: update the state, return the amount subtracted from x. TETHER_HOST_DEVICE lets GPU
  /// execution spaces call it too (it is empty in a host-only build).
  template <class T>
  TETHER_HOST_DEVICE static T delta(const context<T>& c, T x, T g, T& m) {
    const T u = c.b1 * m + (T(1) - c.b1) * g;
    m = c.b2 * m + (T(1) - c.b2) * g;
    const T sign = u > T(0) ? T(1) : (u < T(0) ? T(-1) : T(0));
    return c.lr * (sign + c.wd * x);
  }
};
static_assert(tether::step_policy<lion>);          // float
static_assert(tether::step_policy<lion, double>);  // and double
// [end snippet]


// [snippet: communicator]
/// A communicator of one worker, without threads: every collective is trivial. Enough to run any
/// composition in a plain loop (a unit test, a single-process tool).
class solo {
 public:
  int rank() const { return 0; }
  int size() const { return 1; }
  solo& group() { return *this; }  // groups (LSGD's local leaders): a team of one is its own group
  void barrier() {}

  template <class T>
  void allreduce_sum(std::span<T>) {}  // the sum over one worker is its own value

  template <class T>
  tether::request iallreduce_sum(std::span<const T> send, std::span<T> recv) {
    if (send.size() != recv.size()) throw tether::error("solo: iallreduce_sum: send and recv sizes differ");
    std::copy(send.begin(), send.end(), recv.begin());
    return {};  // an empty request is already complete
  }

  template <class T>
  void broadcast(std::span<T>, int root) {
    if (root != 0) throw tether::error("solo: broadcast: root must be 0");
  }

  tether::election min_loc(double score) { return {score, std::isfinite(score) ? 0 : -1}; }

  const tether::comm_counters& counters() const { return counters_; }  // payload bytes moved: none

 private:
  tether::comm_counters counters_{};
};
static_assert(tether::communicator<solo>);
// [end snippet]

// [snippet: execution_space]
/// A serial execution space that counts the kernels it runs (copies share the count): a way to check
/// that an optimizer makes one pass over the parameters per step.
struct counting {
  using memory_space = tether::mem::host;  // where its buffers live: kernels get pointers into it

  template <class T>
  using buffer = std::vector<T>;  // owning storage for optimizer state (velocity, leader copy...)

  std::shared_ptr<std::size_t> kernels = std::make_shared<std::size_t>(0);

  template <class T>
  buffer<T> allocate(std::size_t n, T value = T{}) const {
    return buffer<T>(n, value);
  }

  template <class F>
  void parallel_for(std::size_t n, const F& f) const {  // f(i) for every i, in any order
    ++*kernels;
    for (std::size_t i = 0; i < n; ++i) f(i);
  }

  template <class F>
  bool any(std::size_t n, const F& pred) const {  // does pred(i) hold for some i?
    for (std::size_t i = 0; i < n; ++i)
      if (pred(i)) return true;
    return false;
  }
};
static_assert(tether::execution_space<counting>);
// [end snippet]

}  // namespace skel

// [snippet: buffers]
namespace user {
/// The user's own container: not a standard range, so tether needs to be told where its numbers are.
class field {
 public:
  explicit field(std::size_t n) : values_(std::make_unique<float[]>(n)), n_(n) {}
  float* cells() { return values_.get(); }
  const float* cells() const { return values_.get(); }
  std::size_t count() const { return n_; }

 private:
  std::unique_ptr<float[]> values_;
  std::size_t n_;
};
}  // namespace user

template <>
struct tether::buffer_traits<user::field> {
  using value_type = float;
  using memory_space = tether::mem::host;
  static float* data(user::field& f) { return f.cells(); }
  static const float* data(const user::field& f) { return f.cells(); }
  static std::size_t size(const user::field& f) { return f.count(); }
};
static_assert(tether::buffer<user::field>);
// [end snippet]

namespace {

/// Gradient of the separable quadratic 1/2 sum a_i (x_i - c_i)^2, written out here as the reference.
void quadratic_gradient(const std::vector<float>& a, const std::vector<float>& c, const std::vector<float>& x,
                        std::vector<float>& g) {
  for (std::size_t i = 0; i < x.size(); ++i) g[i] = a[i] * (x[i] - c[i]);
}

}  // namespace

TEST_CASE("objective skeleton: gradient matches finite differences and LSGD reaches the mean", "[examples]") {
  skel::my_objective f;
  tether::rng r(3);
  for (int s = 0; s < 8; ++s) {
    std::vector<float> c(5);
    for (auto& v : c) v = static_cast<float>(r.normal());
    f.centers.push_back(c);
  }
  std::vector<float> mean(5, 0.0f);
  for (const auto& c : f.centers)
    for (std::size_t i = 0; i < 5; ++i) mean[i] += c[i] / 8.0f;

  std::vector<float> x{0.3f, -0.2f, 1.0f, 0.0f, 0.5f};
  std::vector<float> g(5);
  const std::vector<std::size_t> some{1, 4, 6};
  f.evaluate(x, g, {.samples = some});
  for (std::size_t i = 0; i < 5; ++i) {
    std::vector<float> xp = x, xm = x, scratch(5);
    xp[i] += 1e-2f;
    xm[i] -= 1e-2f;
    const double fd = (f.evaluate(xp, scratch, {.samples = some}) - f.evaluate(xm, scratch, {.samples = some})) / 2e-2;
    CHECK(g[i] == Approx(fd).margin(1e-4));
  }

  // Full-batch SGD with an LSGD pull from 2 workers reaches the optimum, the mean of the centers.
  tether::team team(2);
  std::vector<std::vector<float>> out(2);
  team.run([&](tether::team::worker& w) {
    std::vector<float> xw(5, static_cast<float>(w.rank())), gw(5);
    tether::algo::lsgd<tether::team::worker> opt(w, 5, {.lr = 0.2, .pull = {.period = 4}});
    for (int t = 0; t < 200; ++t) opt.step(xw, gw, f.evaluate(xw, gw, {}));
    out[static_cast<std::size_t>(w.rank())] = xw;
  });
  for (const auto& xw : out)
    for (std::size_t i = 0; i < 5; ++i) CHECK(xw[i] == Approx(mean[i]).margin(1e-4));
}

TEST_CASE("step policy skeleton (Lion) matches a scalar loop", "[examples]") {
  const std::size_t n = 7;
  std::vector<float> a(n), c(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = 1.0f + static_cast<float>(i);
    c[i] = 0.5f * static_cast<float>(i) - 1.0f;
  }
  const float lr = 0.01f, b1 = 0.8f, b2 = 0.95f, wd = 0.1f;

  // The reference, written out.
  std::vector<float> xr(n, 2.0f), m(n, 0.0f), gr(n);
  for (int t = 0; t < 50; ++t) {
    quadratic_gradient(a, c, xr, gr);
    for (std::size_t i = 0; i < n; ++i) {
      const float u = b1 * m[i] + (1.0f - b1) * gr[i];
      m[i] = b2 * m[i] + (1.0f - b2) * gr[i];
      const float s = u > 0.0f ? 1.0f : (u < 0.0f ? -1.0f : 0.0f);
      xr[i] -= lr * (s + wd * xr[i]);
    }
  }

  skel::solo comm;
  tether::optimizer<skel::lion, tether::pull::none, skel::solo> opt(
      comm, n, {.lr = lr, .step = {.beta1 = b1, .beta2 = b2, .weight_decay = wd}});
  std::vector<float> x(n, 2.0f), g(n);
  for (int t = 0; t < 50; ++t) {
    quadratic_gradient(a, c, x, g);
    opt.step(x, g, 0.0);
  }
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(x[i] == Approx(xr[i]).margin(1e-5));
    CHECK(opt.state(0).data()[i] == Approx(m[i]).margin(1e-5));
  }
  CHECK_THROWS_AS((tether::optimizer<skel::lion, tether::pull::none, skel::solo>(comm, n, {.step = {.beta1 = 1.0f}})),
                  tether::error);
}

TEST_CASE("pull policy skeleton (toward_mean) matches a two-worker scalar simulation", "[examples]") {
  // exec::serial on std::vector buffers; tests/examples/skeleton_device.cpp runs the same pull on device memory.
  skel::check_toward_mean(tether::exec::serial{}, skel::host_vectors{});
}

TEST_CASE("communicator skeleton (solo): LSGD and local SGD on one worker are plain SGD", "[examples]") {
  const std::size_t n = 5;
  const std::vector<float> a{1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  const std::vector<float> c{0.5f, -0.5f, 1.5f, 0.0f, -1.0f};
  const float lr = 0.05f;
  std::vector<float> xr(n, 1.0f), g(n);
  for (int t = 0; t < 40; ++t) {
    quadratic_gradient(a, c, xr, g);
    for (std::size_t i = 0; i < n; ++i) xr[i] -= lr * g[i];
  }

  skel::solo comm;
  tether::algo::lsgd<skel::solo> lsgd(comm, n, {.lr = lr, .pull = {.period = 4, .strength = 0.5f, .jump = 0.5f}});
  tether::algo::local_sgd<skel::solo> local(comm, n, {.lr = lr, .pull = {.period = 4}});
  std::vector<float> x1(n, 1.0f), x2(n, 1.0f);
  for (int t = 0; t < 40; ++t) {
    quadratic_gradient(a, c, x1, g);
    lsgd.step(x1, g, 1.0);
    quadratic_gradient(a, c, x2, g);
    local.step(x2, g, 1.0);
  }
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(x1[i] == Approx(xr[i]).margin(1e-6));
    CHECK(x2[i] == Approx(xr[i]).margin(1e-6));
  }
  CHECK(lsgd.stats().leader == 0);
  CHECK(lsgd.stats().rounds == 9);  // elections at steps 4, 8, ..., 36

  std::vector<float> send{1.0f, 2.0f}, recv(2), wrong(3);
  tether::request req = comm.iallreduce_sum(std::span<const float>(send), std::span<float>(recv));
  req.wait();
  CHECK(recv == send);
  CHECK_THROWS_AS(comm.iallreduce_sum(std::span<const float>(send), std::span<float>(wrong)), tether::error);
  CHECK(comm.min_loc(std::nanf("")).rank == -1);
}

TEST_CASE("execution space skeleton (counting): one fused pass per step", "[examples]") {
  const std::size_t n = 9;
  skel::counting space;
  skel::solo comm;
  tether::optimizer<tether::step::momentum, tether::pull::none, skel::solo, skel::counting> opt(
      space, comm, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
  std::vector<float> x(n, 1.0f), g(n, 2.0f);
  std::vector<float> xr(n, 1.0f), v(n, 0.0f);
  for (int t = 0; t < 12; ++t) {
    opt.step(x, g, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = 0.5f * v[i] + 2.0f;
      xr[i] -= 0.1f * v[i];
    }
  }
  CHECK(*space.kernels == 12);  // the optimizer holds a copy of `space`; the count is shared
  for (std::size_t i = 0; i < n; ++i) CHECK(x[i] == Approx(xr[i]).margin(1e-6));
}

TEST_CASE("buffer skeleton: a user type steps exactly like a std::vector", "[examples]") {
  const std::size_t n = 4;
  skel::solo comm;
  using sgd = tether::optimizer<tether::step::sgd, tether::pull::none, skel::solo>;
  sgd on_field(comm, n, {.lr = 0.25});
  sgd on_vector(comm, n, {.lr = 0.25});
  user::field x(n), g(n);
  std::vector<float> xv(n), gv(n);
  for (std::size_t i = 0; i < n; ++i) {
    x.cells()[i] = xv[i] = static_cast<float>(i);
    g.cells()[i] = gv[i] = 1.0f - static_cast<float>(i);
  }
  on_field.step(x, g, 0.0);
  on_vector.step(xv, gv, 0.0);
  const user::field& const_g = g;  // a const gradient is accepted too
  on_field.step(x, const_g, 0.0);
  on_vector.step(tether::as_view(xv.data(), n), std::span<const float>(gv), 0.0);  // pointer + size, span
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(x.cells()[i] == xv[i]);
    CHECK(xv[i] == Approx(static_cast<float>(i) - 0.5f * (1.0f - static_cast<float>(i))));
  }
  user::field short_g(n - 1);
  CHECK_THROWS_AS(on_field.step(x, short_g, 0.0), tether::error);
}
