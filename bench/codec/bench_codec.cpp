/// \file
/// bench_codec: encode and decode of every codec on exec::serial and exec::openmp (all cores), fp32 values,
/// N in {2^16, 2^24}. Bytes counted: encode reads N*4 value bytes and writes the message; decode reads the
/// message (and, for the lattice, the N*4-byte reference) and writes N*4 value bytes. `pct_of_copy` compares
/// the achieved bytes/s with a copy of N floats by the same space's parallel_for (kernels::copy, 8 bytes per
/// element), median of 7 samples measured right before the space's first kernel at that N (`copy_GBps`).
///
///     OMP_WAIT_POLICY=passive bench_codec --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tether/codec/identity.hpp"
#include "tether/codec/lattice.hpp"
#include "tether/codec/stochastic_uniform.hpp"
#include "tether/core/kernels.hpp"
#include "tether/exec/openmp.hpp"

namespace {

namespace cd = tether::codec;
constexpr std::array<std::size_t, 2> sizes{std::size_t{1} << 16, std::size_t{1} << 24};

/// Buffers of one space (first touched by its own kernels): values x, reference y, output z, a message.
template <class Exec>
struct buffers {
  typename Exec::template buffer<float> x, y, z;
  typename Exec::template buffer<std::byte> msg;
  explicit buffers(const Exec& e, std::size_t n)
      : x(e.template allocate<float>(n)),
        y(e.template allocate<float>(n)),
        z(e.template allocate<float>(n)),
        msg(e.template allocate<std::byte>(20 + 8 * n)) {
    float* px = x.data();
    float* py = y.data();
    e.parallel_for(n, [px, py](std::size_t i) {
      px[i] = 0.001f * static_cast<float>(static_cast<int>((i * 2654435761u) % 2001u) - 1000);
      py[i] = px[i] + 0.0005f;
    });
  }
};

std::map<std::pair<std::string, std::size_t>, double> copy_bandwidth;  // bytes/s

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class Exec>
double copy_reference(const std::string& space, const Exec& e, buffers<Exec>& b, std::size_t n) {
  const auto key = std::make_pair(space, n);
  if (auto it = copy_bandwidth.find(key); it != copy_bandwidth.end()) return it->second;
  const tether::kernels::copy<float> c{b.x.data(), b.z.data()};
  const std::size_t reps = std::max<std::size_t>(1, (std::size_t{1} << 26) / n);
  e.parallel_for(n, c);
  std::vector<double> samples;
  for (int s = 0; s < 7; ++s) {
    const double t0 = seconds();
    for (std::size_t r = 0; r < reps; ++r) e.parallel_for(n, c);
    samples.push_back(8.0 * static_cast<double>(n * reps) / (seconds() - t0));
  }
  std::nth_element(samples.begin(), samples.begin() + 3, samples.end());
  return copy_bandwidth[key] = samples[3];
}

void counters(benchmark::State& state, double bytes_per_call, double copy_bps) {
  const double bytes = bytes_per_call * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["pct_of_copy"] = benchmark::Counter(bytes / copy_bps * 100.0, benchmark::Counter::kIsRate);
  state.counters["copy_GBps"] = copy_bps * 1e-9;
}

template <class Exec, class Codec>
void bm_encode(benchmark::State& state, std::string space, Exec e, Codec c, std::size_t n) {
  buffers<Exec> b(e, n);
  const double copy_bps = copy_reference(space, e, b, n);
  const tether::view<const float> x{b.x.data(), n};
  const tether::view<std::byte> m{b.msg.data(), c.encoded_size(n)};
  std::uint64_t seed = 0;
  for (auto _ : state) {
    c.encode(e, x, m, ++seed);
    benchmark::ClobberMemory();
  }
  counters(state, 4.0 * static_cast<double>(n) + static_cast<double>(c.encoded_size(n)), copy_bps);
  state.counters["msg_bytes_per_value"] = static_cast<double>(c.encoded_size(n)) / static_cast<double>(n);
}

template <class Exec, class Codec>
void bm_decode(benchmark::State& state, std::string space, Exec e, Codec c, std::size_t n) {
  buffers<Exec> b(e, n);
  const double copy_bps = copy_reference(space, e, b, n);
  const tether::view<const std::byte> m{b.msg.data(), c.encoded_size(n)};
  const tether::view<float> z{b.z.data(), n};
  c.encode(e, tether::view<const float>{b.x.data(), n}, tether::view<std::byte>{b.msg.data(), m.size()}, 1);
  constexpr bool with_reference = cd::reference_decoding<Codec, Exec>;
  for (auto _ : state) {
    if constexpr (with_reference)
      c.decode(e, m, z, tether::view<const float>{b.y.data(), n});
    else
      c.decode(e, m, z);
    benchmark::ClobberMemory();
  }
  counters(state, (with_reference ? 8.0 : 4.0) * static_cast<double>(n) + static_cast<double>(m.size()),
           copy_bps);
}

template <class Exec>
void register_space(const std::string& space, const Exec& e) {
  for (const std::size_t n : sizes) {
    const std::string sfx = "/" + space + "/N:" + std::to_string(n);
    auto reg = [&](const std::string& name, const auto& codec) {
      benchmark::RegisterBenchmark(("encode/" + name + sfx).c_str(),
                                   bm_encode<Exec, std::decay_t<decltype(codec)>>, space, e, codec, n)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("decode/" + name + sfx).c_str(),
                                   bm_decode<Exec, std::decay_t<decltype(codec)>>, space, e, codec, n)
          ->UseRealTime();
    };
    reg("identity", cd::identity<float>{});
    reg("su8", cd::stochastic_uniform<float>({.bits = 8, .block = 256}));
    reg("su4", cd::stochastic_uniform<float>({.bits = 4, .block = 256}));
    reg("su8_minmax",
        cd::stochastic_uniform<float>({.bits = 8, .block = 256, .scale = cd::scale_mode::min_max}));
    reg("lattice8", cd::lattice<float>({.bits = 8, .block = 256, .step = 1e-4f}));
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int cores = omp_get_max_threads();
  benchmark::AddCustomContext("omp_max_threads", std::to_string(cores));
  register_space("serial", tether::exec::serial{});
  register_space("openmp_" + std::to_string(cores), tether::exec::openmp{.threads = cores});
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
