// The usage snippet of docs/benchmarks.md#benchmark-your-own-kernel, compiled and run (test bench_kit_usage,
// with --benchmark_min_time=0.001): a user's step, a built-in step and a codec registered in one line each.

#include <array>
#include <cstddef>
#include <cstdint>

#include <tether/codec/stochastic_uniform.hpp>

// [snippet: bench_kit_step]
/// A user's step: momentum with a decay of its own, v <- beta*v + g;  x <- x - lr*v.
struct my_step {
  struct options {
    float beta = 0.5f;
  };
  options opt{};
  static constexpr std::size_t state_size = 1;
  template <class T>
  struct context {
    T lr, beta;
  };
  void validate() const {}
  template <class T>
  T initial(std::size_t) const {
    return T(0);
  }
  template <class T>
  context<T> prepare(std::uint64_t, T lr) const {
    return {lr, T(opt.beta)};
  }
  template <class T>
  static T delta(const context<T>& c, T, T g, T& v) {
    v = c.beta * v + g;
    return c.lr * v;
  }
};
// [end snippet]

// [snippet: bench_kit_main]
#include <tether/bench.hpp>

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  tether::bench::space cpu("serial", tether::exec::serial{}, {.sizes = {1 << 16, 1 << 20}});
  tether::bench::register_references(cpu);  // copy and triad rows
  tether::bench::register_update<my_step, tether::pull::leader>(cpu, "mine+leader", {.step = {.beta = 0.9f}});
  tether::bench::register_update<tether::step::sgd, tether::pull::leader>(cpu, "sgd+leader");
  tether::bench::register_codec(cpu, "su8", tether::codec::stochastic_uniform<float>({.bits = 8}));
  benchmark::RunSpecifiedBenchmarks();
  tether::bench::release_buffers();
}
// [end snippet]
