// Must not compile: a pull whose force_reads does not have one flag per buffer. The build's error names
// docs/concepts.md (checked by the test bench_wrong_buffers_compile_error).
#include <array>
#include <cstddef>

#include <tether/bench/byte_model.hpp>
#include <tether/tether.hpp>

struct bad_pull {
  struct options {};
  options opt{};
  static constexpr std::size_t buffers = 2;
  static constexpr std::array<bool, 1> force_reads{true};  // one flag for two buffers
  template <class T>
  struct context {};
  void validate(int) const {}
  template <class T>
  static T force(const context<T>&, T, T, T) {
    return T(0);
  }
};

int main() { return static_cast<int>(tether::bench::bytes_per_element<tether::step::sgd, bad_pull>); }
