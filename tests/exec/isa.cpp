// Instruction-set levels (exec/isa.hpp, docs/exec.md#instruction-sets): at every level this CPU runs, every
// step x pull combination (exec::serial and exec::openmp), the finite check, the sums and the codecs against
// exec::serial at the baseline, which is the reference computed with the same library code. A level this CPU
// lacks is reported and skipped.
//
// The levels promise the baseline's bits (isa_exact): with GCC at every level, whatever the program's
// -ffp-contract; with Clang at every level but avx512, where FMA may fuse a*b + c and results must stay
// within the stated bounds. Built twice: `exec_isa` with the compiler's default contraction (g++ in GNU mode:
// -ffp-contract=fast; clang: on) and `exec_isa_no_contract` with -ffp-contract=off (TETHER_TEST_NO_CONTRACT),
// where every level must give the baseline's bits with either compiler.
#include "equivalence.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tether/codec/lattice.hpp"
#include "tether/codec/stochastic_uniform.hpp"
#include "tether/core/rng.hpp"
#include "tether/exec/isa.hpp"
#include "tether/exec/openmp.hpp"

namespace {

using tether::exec::isa;

#if defined(TETHER_TEST_NO_CONTRACT)
constexpr bool contracts = false;
#else
constexpr bool contracts = true;
#endif

/// True when `level` must give the baseline's bits in this build.
bool exact(isa level) {
  return tether::exec::isa_exact(level) || !contracts;
}

/// The stated bound where a level may contract (docs/exec.md#instruction-sets): after 10 steps of any step x
/// pull combination, each parameter within this many float epsilons of the team's largest parameter or of 1
/// (the parameters start in [-1, 1)), whichever is larger: an absolute bound, as a parameter near 0 has tiny
/// ulps.
constexpr double update_bound_eps = 64;

/// `got` against `want` worker by worker: equal bits where the level is exact, else within the bound.
void require_level_result(const exec_test::outcome& want, const exec_test::outcome& got, isa level) {
  if (exact(level)) {
    exec_test::require_same(want, got, 0);
    return;
  }
  REQUIRE(got.x.size() == want.x.size());
  float scale = 1;
  for (const auto& xw : want.x)
    for (const float v : xw) scale = std::max(scale, std::abs(v));
  for (std::size_t w = 0; w < want.x.size(); ++w) {
    double worst = 0;
    for (std::size_t i = 0; i < want.x[w].size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(got.x[w][i]) - want.x[w][i]));
    const double bound = update_bound_eps * std::numeric_limits<float>::epsilon() * scale;
    CAPTURE(w, worst, bound);
    REQUIRE(worst <= bound);
    REQUIRE(got.stats[w].skipped_nonfinite == want.stats[w].skipped_nonfinite);
  }
}

/// Restores automatic selection when a test leaves, whatever it threw.
struct automatic_isa_after {
  automatic_isa_after() = default;
  automatic_isa_after(const automatic_isa_after&) = delete;
  automatic_isa_after& operator=(const automatic_isa_after&) = delete;
  ~automatic_isa_after() { tether::exec::select_isa_automatically(); }
};

/// The levels above the baseline to test: those this CPU runs. Each one it lacks is reported once.
std::vector<isa> levels_above_baseline() {
  std::vector<isa> out;
  for (const isa l : {isa::avx2, isa::avx512}) {
    if (!tether::exec::isa_dispatch_compiled) {
      WARN("skipped " << tether::exec::to_string(l) << ": this build has no instruction-set dispatch");
    } else if (static_cast<int>(l) > static_cast<int>(tether::exec::isa_supported())) {
      WARN("skipped " << tether::exec::to_string(l) << ": this CPU runs at most "
                      << tether::exec::to_string(tether::exec::isa_supported()));
    } else {
      out.push_back(l);
    }
  }
  return out;
}

tether::exec::openmp two_threads() {
  const char* e = std::getenv("TETHER_TEST_OMP_THREADS");
  return {.threads = e != nullptr ? std::max(1, std::atoi(e)) : 2, .tuning = {.min_parallel = 0}};
}

}  // namespace

TEST_CASE("isa names and parsing", "[exec][isa]") {
  for (const isa l : {isa::baseline, isa::avx2, isa::avx512})
    REQUIRE(tether::exec::parse_isa(tether::exec::to_string(l)) == l);
  REQUIRE_FALSE(tether::exec::parse_isa("AVX2").has_value());
  REQUIRE_FALSE(tether::exec::parse_isa("sse2").has_value());
  REQUIRE_FALSE(tether::exec::parse_isa("").has_value());
}

TEST_CASE("select_isa refuses a level the CPU lacks, naming it", "[exec][isa]") {
  const automatic_isa_after restore;
  tether::exec::select_isa(isa::baseline);  // always runs
  REQUIRE(tether::exec::active_isa() == isa::baseline);
  if (tether::exec::isa_supported() == isa::avx512) {
    WARN("skipped the refusal: this CPU runs every level");
    return;
  }
  REQUIRE_THROWS_WITH(tether::exec::select_isa(isa::avx512), Catch::Contains("select_isa(level) = avx512") &&
                                                                 Catch::Contains("this CPU runs at most"));
  REQUIRE(tether::exec::active_isa() == isa::baseline);  // the refused level changed nothing
}

TEST_CASE("automatic selection runs the CPU's highest level or TETHER_ISA's", "[exec][isa]") {
  tether::exec::select_isa_automatically();
  const char* env = std::getenv("TETHER_ISA");
  if (env != nullptr && std::string(env) != "auto" && !std::string(env).empty()) {
    REQUIRE(tether::exec::active_isa() ==
            tether::exec::parse_isa(env));  // throws (the test fails) if invalid
  } else {
    // The highest level the CPU runs that keeps the baseline's bits.
    int want = static_cast<int>(tether::exec::isa_supported());
    while (want > 0 && !tether::exec::isa_exact(static_cast<isa>(want))) --want;
    REQUIRE(tether::exec::active_isa() == static_cast<isa>(want));
  }
}

TEMPLATE_LIST_TEST_CASE("every level stays within the bound of the baseline: step x pull on a team",
                        "[exec][isa]", exec_test::all_combos) {
  const automatic_isa_after restore;
  INFO("step " << TestType::step_case::name << ", pull " << TestType::pull_case::name << ", contraction "
               << (contracts ? "the compiler's default" : "off"));
  for (const std::size_t n : exec_test::sizes) {
    CAPTURE(n);
    tether::exec::select_isa(isa::baseline);
    const exec_test::outcome want = exec_test::reference<TestType>(n);
    for (const isa l : levels_above_baseline()) {
      CAPTURE(tether::exec::to_string(l));
      tether::exec::select_isa(l);
      require_level_result(want, exec_test::reference<TestType>(n), l);
      require_level_result(want, exec_test::run<TestType>(two_threads(), exec_test::host_adapter{}, n), l);
    }
  }
}

TEST_CASE("every level finds the same non-finite values", "[exec][isa]") {
  const automatic_isa_after restore;
  for (const std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{4099}}) {
    for (const std::size_t bad : {std::size_t{0}, n / 2, n - 1, n}) {  // bad == n: none
      std::vector<float> x(n, 1.5f);
      if (bad < n)
        x[bad] =
            bad % 2 == 0 ? std::numeric_limits<float>::quiet_NaN() : -std::numeric_limits<float>::infinity();
      const float* p = x.data();
      const auto nonfinite = [p](std::size_t i) { return !std::isfinite(p[i]); };
      for (const isa l : {isa::baseline, isa::avx2, isa::avx512}) {
        if (static_cast<int>(l) > static_cast<int>(tether::exec::isa_supported())) continue;
        CAPTURE(n, bad, tether::exec::to_string(l));
        tether::exec::select_isa(l);
        REQUIRE(tether::exec::serial{}.any(n, nonfinite) == (bad < n));
        REQUIRE(two_threads().any(n, nonfinite) == (bad < n));
      }
    }
  }
}

TEST_CASE("every level's sums stay within the rounding bound of the baseline's", "[exec][isa]") {
  const automatic_isa_after restore;
  constexpr std::size_t n = 10007;
  tether::rng g(11);
  std::vector<float> a(n);
  std::vector<float> b(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>(2.0 * g.uniform() - 1.0);
    b[i] = static_cast<float>(2.0 * g.uniform() - 1.0);
  }
  const float* pa = a.data();
  const float* pb = b.data();
  // A dot product in float: each term is a product and an addition, the pair FMA contracts.
  const auto term = [pa, pb](std::size_t i) { return pa[i] * pb[i]; };
  double magnitude = 0;  // sum of |a_i b_i|, for the textbook bound n * eps * sum |a_i b_i|
  for (std::size_t i = 0; i < n; ++i) magnitude += std::abs(static_cast<double>(a[i]) * b[i]);
  const double inexact_bound = 2.0 * n * std::numeric_limits<float>::epsilon() * magnitude;

  tether::exec::select_isa(isa::baseline);
  const float want_serial = tether::exec::serial{}.reduce(n, 0.0f, term);
  const float want_omp = two_threads().reduce(n, 0.0f, term);
  for (const isa l : levels_above_baseline()) {
    const double bound = exact(l) ? 0.0 : inexact_bound;
    CAPTURE(tether::exec::to_string(l), bound);
    tether::exec::select_isa(l);
    const float got_serial = tether::exec::serial{}.reduce(n, 0.0f, term);
    const float got_omp = two_threads().reduce(n, 0.0f, term);
    CAPTURE(want_serial, got_serial, want_omp, got_omp);
    REQUIRE(std::abs(static_cast<double>(got_serial) - want_serial) <= bound);
    REQUIRE(std::abs(static_cast<double>(got_omp) - want_omp) <= bound);
  }
}

namespace {

namespace cd = tether::codec;

std::vector<float> codec_input(std::size_t n) {
  tether::rng g(23);
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(4.0 * g.uniform() - 2.0);
  return x;
}

/// One codec's message and decoded values on `exec` at the active level.
template <class Codec, class Exec>
std::pair<std::vector<std::byte>, std::vector<float>> round_trip(const Codec& c, const Exec& exec,
                                                                 const std::vector<float>& x,
                                                                 const std::vector<float>& y) {
  std::vector<std::byte> msg(c.encoded_size(x.size()));
  std::vector<float> out(x.size());
  REQUIRE(c.encode(exec, std::span<const float>(x), std::span<std::byte>(msg), 7) == msg.size());
  if constexpr (cd::reference_decoding<Codec, Exec>)
    c.decode(exec, std::span<const std::byte>(msg), std::span<float>(out), std::span<const float>(y));
  else
    c.decode(exec, std::span<const std::byte>(msg), std::span<float>(out));
  return {std::move(msg), std::move(out)};
}

/// At every level: the baseline's bytes and values where the level is exact; elsewhere each decoded value
/// within one grid step (`step`) of the baseline's (a value at a rounding boundary may take the other level).
template <class Codec>
void check_codec_levels(const Codec& c, double step) {
  constexpr std::size_t n = 70001;
  const std::vector<float> x = codec_input(n);
  std::vector<float> y = x;
  for (auto& v : y) v += 0.003f;  // the lattice's reference: well within its radius
  tether::exec::select_isa(isa::baseline);
  const auto [want_msg, want] = round_trip(c, tether::exec::serial{}, x, y);
  for (const isa l : levels_above_baseline()) {
    tether::exec::select_isa(l);
    for (const bool omp : {false, true}) {
      CAPTURE(tether::exec::to_string(l), omp);
      const auto [msg, got] =
          omp ? round_trip(c, two_threads(), x, y) : round_trip(c, tether::exec::serial{}, x, y);
      if (exact(l)) {
        REQUIRE(msg == want_msg);
        REQUIRE(got == want);
        continue;
      }
      REQUIRE(step > 0);  // a codec whose bound is not stated is checked exact only
      double worst = 0;
      for (std::size_t i = 0; i < n; ++i)
        worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
      CAPTURE(worst, step);
      REQUIRE(worst <= step * 1.0001);
    }
  }
}

}  // namespace

TEST_CASE("every level's codec messages are the baseline's (within a grid step where a level may contract)",
          "[exec][isa][codec]") {
  const automatic_isa_after restore;
  // Values lie in [-2, 2): a block's grid spans at most 4, in 2^bits - 1 steps.
  SECTION("stochastic_uniform 8 bits") {
    check_codec_levels(cd::stochastic_uniform<float>({.bits = 8}), 4.0 / 255);
  }
  SECTION("stochastic_uniform 4 bits") {
    check_codec_levels(cd::stochastic_uniform<float>({.bits = 4}), 4.0 / 15);
  }
  SECTION("stochastic_uniform 3 bits, min-max scales") {
    check_codec_levels(cd::stochastic_uniform<float>({.bits = 3, .scale = cd::scale_mode::min_max}), 4.0 / 7);
  }
  SECTION("lattice 8 bits") {
    bool all_exact = true;
    for (const isa l : levels_above_baseline()) all_exact = all_exact && exact(l);
    if (all_exact) check_codec_levels(cd::lattice<float>({.bits = 8, .step = 0.01f}), 0.0);
  }
}
