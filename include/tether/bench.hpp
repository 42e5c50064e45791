#pragma once
/// \file
/// tether's benchmark kit (opt-in; CMake component tether::benchmark, on Google Benchmark): benchmarks of any
/// step x pull x execution space and of any codec in one line, with the byte model derived from the policies
/// and the space's own copy and triad references at the same N. See docs/benchmarks.md#benchmark-your-own-kernel.
///
///     #include <tether/bench.hpp>
///     int main(int argc, char** argv) {
///       benchmark::Initialize(&argc, argv);
///       tether::bench::space cpu("serial", tether::exec::serial{}, {.sizes = {1 << 24}});
///       tether::bench::register_references(cpu);
///       tether::bench::register_update<my_step, tether::pull::leader>(cpu, "my_step+leader");
///       benchmark::RunSpecifiedBenchmarks();
///       tether::bench::release_buffers();
///     }
///
/// It includes tether/tether.hpp (the steps, pulls and spaces to benchmark). The zero-cost check
/// (tether/bench/zero_cost.hpp) needs no Google Benchmark.

#include "tether/bench/byte_model.hpp"
#include "tether/bench/register.hpp"
#include "tether/bench/space.hpp"
#include "tether/bench/update.hpp"
#include "tether/tether.hpp"
