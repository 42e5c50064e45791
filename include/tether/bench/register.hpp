#pragma once
/// \file
/// One-line registration of Google Benchmark benchmarks for any step x pull x space (and any codec's encode
/// and decode), with the byte model derived from the policies (bench/byte_model.hpp), `SetBytesProcessed`,
/// and the space's own copy and triad references at the same N (bench/space.hpp) as `pct_of_copy` and
/// `pct_of_triad`. The kernel measured is the optimizer's own: `tether::fused_update` with the step's context
/// from its `prepare(k, lr)` and the pull's context (its `prepare(workers)` when it has one, else the one
/// given, else value-initialised), run by the space's `parallel_for`. Rows are named
/// `<name>/<space>/N:<n>`. See docs/benchmarks.md#benchmark-your-own-kernel.
///
///     tether::bench::space cpu("serial", tether::exec::serial{});
///     tether::bench::register_references(cpu);
///     tether::bench::register_update<tether::step::adam, tether::pull::elastic>(cpu, "adam+elastic");
///     tether::bench::register_update<my_step, my_pull>(cpu, "mine", {.step = {.beta = 0.9f}});

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "tether/bench/byte_model.hpp"
#include "tether/bench/space.hpp"
#include "tether/bench/update.hpp"
#include "tether/codec/codec.hpp"
#include "tether/core/optimizer.hpp"

namespace tether::bench {

/// Sets the byte counters of a benchmark after its loop: bytes/s (SetBytesProcessed), `pct_of_copy` and
/// `pct_of_triad` against the space's references `r` at the same N, `bytes_per_elem`, `copy_GBps`, `triad_GBps`.
/// For rows of your own (a whole optimizer step, a communication round) next to the kit's.
inline void set_counters(benchmark::State& state, double bytes_per_iteration, double bytes_per_elem,
                         const reference& r) {
  const double bytes = bytes_per_iteration * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  // A rate counter is divided by the time: (bytes / copy) / time * 100 = achieved / copy * 100.
  state.counters["pct_of_copy"] = benchmark::Counter(bytes / r.copy * 100.0, benchmark::Counter::kIsRate);
  state.counters["pct_of_triad"] = benchmark::Counter(bytes / r.triad * 100.0, benchmark::Counter::kIsRate);
  state.counters["bytes_per_elem"] = bytes_per_elem;
  state.counters["copy_GBps"] = r.copy * 1e-9;
  state.counters["triad_GBps"] = r.triad * 1e-9;
}

namespace detail {

/// Runs `f` in the benchmark loop on the space's clock (manual time on device spaces).
template <class Exec, class F>
void run_loop(benchmark::State& state, const space<Exec>& sp, F&& f) {
  if (sp.timing() == clock::device_fence) {
    f();  // warm-up
    for (auto _ : state) state.SetIterationTime(sp.time(f, 1, false));
  } else {
    for (auto _ : state) {
      f();
      benchmark::ClobberMemory();
    }
    detail::fence(sp.exec());
  }
}

/// Registers `fn(state, space, n)` for every size of the space, timed as the space says.
template <class Exec, class F>
void register_sizes(space<Exec> sp, const std::string& name, F fn) {
  for (const std::size_t n : sp.options().sizes) {
    auto* b = benchmark::RegisterBenchmark((name + "/" + sp.name() + "/N:" + std::to_string(n)).c_str(),
                                           [sp, n, fn](benchmark::State& state) mutable { fn(state, sp, n); });
    switch (sp.timing()) {
      case clock::device_fence: b->UseManualTime(); break;
      case clock::real: b->UseRealTime(); break;
      case clock::cpu:
        if (sp.options().threaded) b->MeasureProcessCPUTime();
        break;
      case clock::automatic: break;
    }
  }
}

}  // namespace detail

/// The fused update kernel of Step and Pull on the space's buffers (x, g, state, targets), with the contexts
/// the policies prepare: exactly the functor tether::optimizer runs.
template <class Step, class Pull, class Exec>
[[nodiscard]] auto make_update(space<Exec>& sp, const update_options<Step, Pull>& o) {
  static_assert(Step::state_size + Pull::buffers + 3 <= space<Exec>::slots,
                "tether::bench: this step and pull use more buffers than a bench::space holds");
  constexpr bool with_force = Pull::buffers > 0;
  fused_update<Step, Pull, float, true, with_force> k{};
  k.x = sp.buffer(0).data();
  k.g = sp.buffer(1).data();
  for (std::size_t j = 0; j != Step::state_size; ++j) k.s[j] = sp.buffer(2 + j).data();
  for (std::size_t j = 0; j != Pull::buffers; ++j) k.b[j] = sp.buffer(2 + Step::state_size + j).data();
  Step step{};
  step.opt = o.step;
  step.validate();
  k.sc = step.template prepare<float>(o.k, static_cast<float>(o.lr));
  k.pc = prepare_pull(o);
  return k;
}

/// Registers the fused update of Step and Pull on `sp` at every size, as `<name>/<space>/N:<n>`.
template <class Step, class Pull, class Exec>
void register_update(space<Exec> sp, const std::string& name, update_options<Step, Pull> o = {}) {
  constexpr double bpe = static_cast<double>(bytes_per_element<Step, Pull, float>);
  detail::register_sizes(sp, name, [o](benchmark::State& state, space<Exec>& s, std::size_t n) {
    const reference r = s.references(n);
    const auto k = make_update(s, o);
    detail::run_loop(state, s, [&] { s.exec().parallel_for(n, k); });
    set_counters(state, bpe * static_cast<double>(n), bpe, r);
  });
}

/// Registers the space's copy and triad references as rows `copy/<space>/N:<n>` and `triad/...`.
template <class Exec>
void register_references(space<Exec> sp) {
  detail::register_sizes(sp, "copy", [](benchmark::State& state, space<Exec>& s, std::size_t n) {
    const reference r = s.references(n);
    const kernels::copy<float> c{s.buffer(1).data(), s.buffer(space<Exec>::slots - 1).data()};
    detail::run_loop(state, s, [&] { s.exec().parallel_for(n, c); });
    set_counters(state, 8.0 * static_cast<double>(n), 8.0, r);
  });
  detail::register_sizes(sp, "triad", [](benchmark::State& state, space<Exec>& s, std::size_t n) {
    const reference r = s.references(n);
    const triad<float> t{s.buffer(space<Exec>::slots - 1).data(), s.buffer(1).data(), s.buffer(2).data(), 0.5f};
    detail::run_loop(state, s, [&] { s.exec().parallel_for(n, t); });
    set_counters(state, 12.0 * static_cast<double>(n), 12.0, r);
  });
}

/// Registers a codec's encode and decode on `sp` as `encode/<name>/<space>/N:<n>` and `decode/...`. Bytes:
/// encode reads N values and writes the message; decode reads the message (and the N-value reference, for
/// codecs that decode next to the receiver's values) and writes N values. The message buffer is the space's
/// own (its std::byte allocation).
template <class Codec, class Exec>
void register_codec(space<Exec> sp, const std::string& name, Codec c) {
  static_assert(codec::message_codec<Codec, Exec>,
                "tether::bench::register_codec: Codec is not a tether::codec::message_codec on this space (see "
                "docs/codecs.md#your-own-codec)");
  static_assert(std::is_same_v<typename Codec::value_type, float>, "tether::bench: codecs of float values only");
  using mspace = typename Exec::memory_space;
  constexpr bool with_reference = codec::reference_decoding<Codec, Exec>;
  detail::register_sizes(sp, "encode/" + name, [c](benchmark::State& state, space<Exec>& s, std::size_t n) {
    const reference r = s.references(n);
    const std::size_t m = c.encoded_size(n);
    auto msg = s.exec().template allocate<std::byte>(m, std::byte{0});
    const view<const float, mspace> x{s.buffer(0).data(), n};
    const view<std::byte, mspace> out{msg.data(), m};
    std::uint64_t seed = 0;
    detail::run_loop(state, s, [&] { c.encode(s.exec(), x, out, ++seed); });
    const double bytes = 4.0 * static_cast<double>(n) + static_cast<double>(m);
    set_counters(state, bytes, bytes / static_cast<double>(n), r);
    state.counters["msg_bytes_per_value"] = static_cast<double>(m) / static_cast<double>(n);
  });
  detail::register_sizes(sp, "decode/" + name, [c](benchmark::State& state, space<Exec>& s, std::size_t n) {
    const reference r = s.references(n);
    const std::size_t m = c.encoded_size(n);
    auto msg = s.exec().template allocate<std::byte>(m, std::byte{0});
    c.encode(s.exec(), view<const float, mspace>{s.buffer(0).data(), n}, view<std::byte, mspace>{msg.data(), m}, 1);
    const view<const std::byte, mspace> in{msg.data(), m};
    const view<float, mspace> y{s.buffer(3).data(), n};
    if constexpr (with_reference) {
      const view<const float, mspace> ref{s.buffer(0).data(), n};
      detail::run_loop(state, s, [&] { c.decode(s.exec(), in, y, ref); });
    } else {
      detail::run_loop(state, s, [&] { c.decode(s.exec(), in, y); });
    }
    const double bytes = static_cast<double>(m) + (with_reference ? 8.0 : 4.0) * static_cast<double>(n);
    set_counters(state, bytes, bytes / static_cast<double>(n), r);
    state.counters["msg_bytes_per_value"] = static_cast<double>(m) / static_cast<double>(n);
  });
}

}  // namespace tether::bench
