#pragma once
/// \file
/// The zero-cost check for any step and pull (docs/benchmarks.md#benchmark-your-own-kernel): a program that
/// runs either tether's composed fused kernel or a hand-written loop of the same update, so that
/// `valgrind --tool=callgrind` can count the instructions of each (scripts/callgrind_zero_cost.sh). The
/// composed side is the optimizer's own kernel (fused_update with the contexts the policies prepare, run by
/// exec::serial); the hand side is the user's loop over raw pointers. Only the kit's two entry functions
/// are counted (`--toggle-collect='*zero_cost_composed*'` and `'*zero_cost_hand*'`), each called K times over
/// N elements, so each program run counts exactly one kernel. Both print a checksum of every buffer: the
/// script also checks that they agree to the bit (or reports that they differ).
///
///     int main(int argc, char** argv) {
///       return tether::bench::zero_cost_main(argc, argv,
///           tether::bench::zero_cost_case<tether::step::sgd, tether::pull::leader>("sgd_leader", &my_hand_loop));
///     }
///
/// with `void my_hand_loop(const tether::bench::zero_cost_buffers& b, const step_ctx&, const pull_ctx&)`.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tether/bench/update.hpp"
#include "tether/core/fnv1a.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/exec/serial.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#define TETHER_ZERO_COST_ENTRY __attribute__((noinline, noclone))
#else
#define TETHER_ZERO_COST_ENTRY __attribute__((noinline))
#endif

namespace tether::bench {

/// The buffers a zero-cost comparison works on: N floats each of x, g, 4 state buffers and 4 pull buffers.
struct zero_cost_buffers {
  float* x;
  const float* g;
  std::array<float*, 4> s;
  std::array<const float*, 4> b;
  std::size_t n;
};

namespace detail {

/// Counted entry of the composed side: K calls of the optimizer's kernel through exec::serial.
template <class K>
TETHER_ZERO_COST_ENTRY void zero_cost_composed(const K& k, std::size_t n, int reps) {
  const exec::serial e{};
  for (int r = 0; r < reps; ++r) e.parallel_for(n, k);
}

/// Counted entry of the hand side: K calls of the user's loop.
template <class F, class SC, class PC>
TETHER_ZERO_COST_ENTRY void zero_cost_hand(F f, const zero_cost_buffers& b, const SC& sc, const PC& pc, int reps) {
  for (int r = 0; r < reps; ++r) f(b, sc, pc);
}

}  // namespace detail

/// One comparison: a step and pull, their options, and the user's hand-written loop of the same update.
template <class Step, class Pull>
struct zero_cost_case {
  using step_ctx = typename Step::template context<float>;
  using pull_ctx = typename Pull::template context<float>;
  using hand_loop = void (*)(const zero_cost_buffers&, const step_ctx&, const pull_ctx&);

  zero_cost_case(std::string n, hand_loop h, update_options<Step, Pull> o = {})
      : name(std::move(n)), hand(h), opt(std::move(o)) {}

  std::string name;
  hand_loop hand;
  update_options<Step, Pull> opt;

  /// Runs the composed kernel or the hand loop K times over N elements; returns the checksum of the buffers.
  [[nodiscard]] std::uint64_t run(bool composed, std::size_t n, int reps) const {
    constexpr bool with_force = Pull::buffers > 0;
    const exec::serial e{};
    std::vector<exec::serial::buffer<float>> buf;
    for (std::size_t k = 0; k < 10; ++k) buf.push_back(e.allocate<float>(n, 0.0f));
    for (std::size_t i = 0; i < n; ++i) {
      const auto h = static_cast<std::uint32_t>(i * 2654435761u) >> 22;  // 10 bits
      buf[0][i] = 1.0f + static_cast<float>(h) / 2048.0f;
      buf[1][i] = 0.5f + static_cast<float>(h) / 2048.0f;
      for (std::size_t k = 6; k < 10; ++k) buf[k][i] = 0.25f * static_cast<float>(h) / 1024.0f;
    }
    fused_update<Step, Pull, float, true, with_force> k{};
    k.x = buf[0].data();
    k.g = buf[1].data();
    for (std::size_t j = 0; j != Step::state_size; ++j) k.s[j] = buf[2 + j].data();
    for (std::size_t j = 0; j != Pull::buffers; ++j) k.b[j] = buf[6 + j].data();
    Step step{};
    step.opt = opt.step;
    k.sc = step.template prepare<float>(opt.k, static_cast<float>(opt.lr));
    k.pc = prepare_pull(opt);
    if (composed) {
      detail::zero_cost_composed(k, n, reps);
    } else {
      const zero_cost_buffers b{buf[0].data(), buf[1].data(), {buf[2].data(), buf[3].data(), buf[4].data(), buf[5].data()},
                                {buf[6].data(), buf[7].data(), buf[8].data(), buf[9].data()}, n};
      detail::zero_cost_hand(hand, b, k.sc, k.pc, reps);
    }
    std::uint64_t h = 1469598103934665603ull;
    for (const auto& v : buf) h = tether::detail::fnv1a_words({v.data(), n}, h);
    return h;
  }
};

/// The main of a zero-cost program: `prog <composed|hand> <case> [N = 1048576] [K = 10]` runs one case and
/// prints `zero_cost <mode> <case> N=<n> K=<k> checksum=<hex>`; `prog --list` prints the case names. Exit
/// code 2 with a usage line on bad arguments.
template <class... Cases>
int zero_cost_main(int argc, char** argv, const Cases&... cases) {
  const auto usage = [&] {
    std::fprintf(stderr, "usage: %s <composed|hand> <case> [N] [K]   (cases:", argc > 0 ? argv[0] : "zero_cost");
    ((std::fprintf(stderr, " %s", cases.name.c_str())), ...);
    std::fprintf(stderr, ")\n");
    return 2;
  };
  if (argc == 2 && std::string(argv[1]) == "--list") {
    ((std::printf("%s\n", cases.name.c_str())), ...);
    return 0;
  }
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  const std::string which = argv[2];
  char* end = nullptr;
  const unsigned long long n = argc > 3 ? std::strtoull(argv[3], &end, 10) : 1048576ull;
  if (argc > 3 && (end == argv[3] || *end != '\0')) return usage();
  const long reps = argc > 4 ? std::strtol(argv[4], &end, 10) : 10;
  if (argc > 4 && (end == argv[4] || *end != '\0')) return usage();
  if ((mode != "composed" && mode != "hand") || n == 0 || reps <= 0 || reps > 1000000) return usage();
  bool found = false;
  std::uint64_t sum = 0;
  ((cases.name == which ? (found = true, sum = cases.run(mode == "composed", static_cast<std::size_t>(n),
                                                         static_cast<int>(reps)))
                        : 0),
   ...);
  if (!found) return usage();
  std::printf("zero_cost %s %s N=%llu K=%ld checksum=%016llx\n", mode.c_str(), which.c_str(), n, reps,
              static_cast<unsigned long long>(sum));
  return 0;
}

}  // namespace tether::bench
