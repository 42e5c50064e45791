#pragma once
// What the benchmark kit's tests share: a one-worker communicator without threads, and a pull whose force
// acts at every step with a fixed coefficient and never communicates (so optimizer::step runs the fused kernel
// with the force on every step, as the kit's benchmark does).

#include <cstddef>
#include <span>

#include <tether/tether.hpp>

namespace bench_test {

/// One worker, no threads: every collective is trivial.
struct solo {
  int rank() const { return 0; }
  int size() const { return 1; }
  solo& group() { return *this; }
  void barrier() {}
  template <class T>
  void allreduce_sum(std::span<T>) {}
  template <class T>
  tether::request iallreduce_sum(std::span<const T> s, std::span<T> r) {
    std::copy(s.begin(), s.end(), r.begin());
    return {};
  }
  template <class T>
  void broadcast(std::span<T>, int) {}
  tether::election min_loc(double s) { return {s, 0}; }
  const tether::comm_counters& counters() const { return c; }
  tether::comm_counters c{};
};

/// x <- x - eta*d(g) - a*(x - target): a pull toward a fixed target buffer (set by the test), every step.
struct toward_target {
  struct options {
    float a = 0.05f;
  };
  options opt{};
  static constexpr std::size_t buffers = 1;
  template <class T>
  struct context {
    T a;
  };
  void validate(int) const {}
  template <class T>
  context<T> prepare(int /*workers*/) const {
    return {T(opt.a)};
  }
  template <class Env, class T, class S>
  void start(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}
  template <class Env, class T, class S>
  bool before(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>, context<T>& c) {
    c = prepare<T>(1);
    return true;
  }
  template <class Env, class T, class S>
  void after(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}
  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T target) {
    return c.a * (x - target);
  }
};

}  // namespace bench_test
