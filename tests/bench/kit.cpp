// The benchmark kit at run time: the kernel it measures is the optimizer's own (the same bits as
// optimizer::step after the same steps), its rows carry the byte model and the reference percentages (run
// through Google Benchmark with a capturing reporter), and bad sizes give errors naming the value.

#include <cstddef>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <tether/bench.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/exec/serial.hpp>

#include "support.hpp"

namespace {

using namespace tether;

/// Runs the kit's kernel of Step + toward_target `steps` times on the space's buffers, then the optimizer's
/// step as many times from the same start, and returns whether x and the state agree bit for bit.
template <class Step>
bool kit_kernel_is_optimizer_kernel(typename Step::options so, std::size_t n, int steps) {
  bench::space<exec::serial> sp("serial", exec::serial{}, {.sizes = {n}});
  const bench::update_options<Step, bench_test::toward_target> o{.step = so, .lr = 0.01};
  // The optimizer's step: prepare(k, lr) with k = the applied steps; the kit's kernel uses k = o.k. Steps
  // whose context does not depend on k (SGD, momentum) must then agree exactly.
  const std::vector<float> x0(sp.buffer(0).data(), sp.buffer(0).data() + n);
  const std::vector<float> g(sp.buffer(1).data(), sp.buffer(1).data() + n);
  const std::vector<float> target(sp.buffer(2 + Step::state_size).data(),
                                  sp.buffer(2 + Step::state_size).data() + n);
  const auto k = bench::make_update(sp, o);
  for (int s = 0; s < steps; ++s) sp.exec().parallel_for(n, k);

  bench_test::solo comm;
  optimizer<Step, bench_test::toward_target, bench_test::solo> opt(
      comm, n, {.lr = 0.01, .step = so, .check_gradient = false});
  std::copy(target.begin(), target.end(), opt.target(0).data());
  for (std::size_t j = 0; j < Step::state_size; ++j) {
    auto st = opt.state(j);
    std::fill(st.data(), st.data() + n, bench::space<exec::serial>::init(2 + j));
  }
  std::vector<float> x = x0;
  for (int s = 0; s < steps; ++s) opt.step(x, g, 1.0);
  bool same = std::memcmp(x.data(), sp.buffer(0).data(), n * sizeof(float)) == 0;
  for (std::size_t j = 0; j < Step::state_size; ++j)
    same = same && std::memcmp(opt.state(j).data(), sp.buffer(2 + j).data(), n * sizeof(float)) == 0;
  return same;
}

/// Keeps every run a benchmark reports.
class capture final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) rows[r.benchmark_name()] = r;
  }
  std::map<std::string, Run> rows;
};

}  // namespace

TEST_CASE("bench kit: the kernel it measures is the optimizer's own", "[bench]") {
  CHECK(kit_kernel_is_optimizer_kernel<step::sgd>({}, 1000, 5));
  CHECK(kit_kernel_is_optimizer_kernel<step::momentum>({.momentum = 0.9f, .nesterov = true}, 1000, 5));
}

TEST_CASE("bench kit: rows carry the byte model and the space's references", "[bench]") {
  int argc = 2;
  char arg0[] = "kit";
  char arg1[] = "--benchmark_min_time=0.001";
  char* args[] = {arg0, arg1, nullptr};
  char** argv = args;
  benchmark::Initialize(&argc, argv);
  const bench::space<exec::serial> sp("serial", exec::serial{}, {.sizes = {4096}, .reference_samples = 3});
  bench::register_references(sp);
  bench::register_update<step::adam, pull::elastic>(sp, "adam+elastic");
  bench::register_codec(sp, "su8", codec::stochastic_uniform<float>({.bits = 8, .block = 256}));
  capture rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::ClearRegisteredBenchmarks();
  bench::release_buffers();

  REQUIRE(rep.rows.count("adam+elastic/serial/N:4096") == 1);
  const auto& adam = rep.rows.at("adam+elastic/serial/N:4096");
  CHECK(adam.counters.at("bytes_per_elem").value == 32.0);
  CHECK(adam.counters.at("copy_GBps").value > 0.0);
  CHECK(adam.counters.at("pct_of_copy").value > 0.0);
  CHECK(adam.counters.at("pct_of_triad").value > 0.0);
  CHECK(rep.rows.at("copy/serial/N:4096").counters.at("bytes_per_elem").value == 8.0);
  CHECK(rep.rows.at("triad/serial/N:4096").counters.at("bytes_per_elem").value == 12.0);
  // su8 with blocks of 256: a 20-byte header, one fp32 scale per block, one byte per value.
  const double msg = (20.0 + 4.0 * 16 + 4096.0) / 4096.0;
  CHECK(rep.rows.at("encode/su8/serial/N:4096").counters.at("msg_bytes_per_value").value == Approx(msg));
  CHECK(rep.rows.at("encode/su8/serial/N:4096").counters.at("bytes_per_elem").value == Approx(4.0 + msg));
  CHECK(rep.rows.at("decode/su8/serial/N:4096").counters.at("bytes_per_elem").value == Approx(4.0 + msg));
}

TEST_CASE("bench kit: a size of 0 or one that cannot be allocated is a clear error", "[bench]") {
  CHECK_THROWS_WITH(bench::space<exec::serial>("serial", exec::serial{}, {.sizes = {1024, 0}}),
                    Catch::Contains("every size must be > 0, got N = 0"));
  CHECK_THROWS_WITH(bench::space<exec::serial>("serial", exec::serial{}, {.sizes = {}}),
                    Catch::Contains("sizes must not be empty"));
  const std::size_t huge = std::numeric_limits<std::size_t>::max() / 8;
  bench::space<exec::serial> sp("too_big", exec::serial{}, {.sizes = {huge}});
  CHECK_THROWS_WITH(sp.buffer(0), Catch::Contains("bench::space 'too_big': cannot allocate") &&
                                      Catch::Contains(std::to_string(huge)));
}
