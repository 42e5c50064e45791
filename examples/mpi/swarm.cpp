/// \file
/// SwarmSGD across MPI ranks: each rank is a node of the swarm training a logistic regression on its own shard
/// of the data; every `period` local steps it averages its model with a random neighbour of the ring (one
/// pairwise exchange, point to point, while the others go on), the messages in fp32 or, with --bits B, quantized
/// to B bits per value (codec::stochastic_uniform, blocks of 256).
///
///     mpirun -np 4 mpi_swarm [--steps 2000] [--period 16] [--lr 0.5] [--bits 8] [--timeout 60] [--check]
///
/// (as root add --allow-run-as-root; with more ranks than cores add --oversubscribe)
#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/mpi.hpp>
#include <tether/comm/mpi/pairwise.hpp>
#include <tether/tether.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"

using mpi_example::run;

namespace {

constexpr const char* usage = R"(Usage: mpirun -np <ranks> mpi_swarm [options]
SwarmSGD across MPI ranks (one node per rank, a ring), training a logistic regression.

  --steps N     SGD steps per rank (default 2000)
  --period N    local steps between a node's exchanges (default 16)
  --lr X        learning rate (default 0.5)
  --bits B      bits per value on the wire, 1..8 (default 0: fp32)
  --seed N      seed of the starting points, minibatches and partners (default 1)
  --timeout S   seconds before a silent partner is taken for lost (default 60)
  --check       exit with status 1 unless every rank's test accuracy is at least 0.8
  --help        this text
)";

/// Takes `--bits B` out of argv (the other options are the MPI examples' common ones).
void take_bits(int& argc, char** argv, unsigned& bits) {
  mpi_example::take_options(argc, argv, {"--bits"}, [&bits](std::string_view name, std::string_view value) {
    bits = mpi_example::parse<unsigned>(name, value);
    if (bits > 8)
      throw mpi_example::usage_error{"--bits must be 0 (fp32) or in 1..8, got " + std::to_string(bits)};
  });
}

}  // namespace

int main(int argc, char** argv) {
  tether::comm::mpi_environment env(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  mpi_example::settings cfg;
  unsigned bits = 0;
  int bits_status = -1;
  try {
    take_bits(argc, argv, bits);
  } catch (const mpi_example::usage_error& e) {
    std::fprintf(stderr, "mpi_swarm: rank %d: %s (see --help)\n", rank, e.message.c_str());
    bits_status = 2;
  }
  int worst_bits = bits_status;
  MPI_Allreduce(&bits_status, &worst_bits, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (worst_bits >= 0) return worst_bits;
  if (const int status = mpi_example::parse_agreed(argc, argv, cfg, usage, "mpi_swarm"); status >= 0) return status;
  try {
    tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = cfg.timeout});
    const auto data = mpi_example::make_data();
    std::vector<float> x = mpi_example::start_point(data.dimension(), comm.rank(), cfg.seed);
    const auto topology = tether::comm::topology::ring(comm.size());
    const double t0 = MPI_Wtime();
    tether::worker_stats st;
    // [swarm on MPI]
    if (bits == 0) {
      using opt = tether::algo::swarm_sgd<tether::comm::mpi>;
      st = run<opt>(comm, data, cfg,
                    {.lr = cfg.lr, .topology = topology, .local_steps = cfg.period, .seed = cfg.seed,
                     .timeout = cfg.timeout},
                    x);
    } else {
      using codec = tether::codec::stochastic_uniform<float>;
      using opt = tether::algo::swarm_sgd<tether::comm::mpi, tether::step::sgd, codec>;
      st = run<opt>(comm, data, cfg,
                    {.lr = cfg.lr, .topology = topology, .local_steps = cfg.period,
                     .codec = codec({.bits = bits, .block = 256}), .seed = cfg.seed, .timeout = cfg.timeout},
                    x);
    }
    // [swarm on MPI]
    const double seconds = MPI_Wtime() - t0;
    const double acc = mpi_example::test_accuracy(data, x);
    const auto accs = mpi_example::gather(acc);
    const auto rounds = mpi_example::gather(static_cast<double>(st.rounds));
    const auto recv = mpi_example::gather(static_cast<double>(st.bytes_received));
    const auto sent = mpi_example::gather(static_cast<double>(st.bytes_sent));
    const auto secs = mpi_example::gather(seconds);
    const auto sums = mpi_example::gather_u64(mpi_example::checksum(x));
    int ok = 1;
    if (comm.rank() == 0) {
      std::printf("SwarmSGD: %d ranks on a ring, %llu steps, an exchange every %u, lr %g, %s, %zu parameters\n",
                  comm.size(), static_cast<unsigned long long>(cfg.steps), cfg.period, cfg.lr,
                  bits == 0 ? "fp32" : (std::to_string(bits) + "-bit").c_str(), x.size());
      std::printf("%5s %9s %7s %15s %15s %9s %12s %17s\n", "rank", "test acc", "rounds", "sent B/round",
                  "recv B/round", "seconds", "sent B", "checksum of x");
      for (std::size_t r = 0; r < accs.size(); ++r) {
        const double n = rounds[r] > 0 ? rounds[r] : 1.0;
        std::printf("%5zu %9.4f %7.0f %15.1f %15.1f %9.3f %12.0f  %016llx\n", r, accs[r], rounds[r], sent[r] / n,
                    recv[r] / n, secs[r], sent[r], static_cast<unsigned long long>(sums[r]));
        if (accs[r] < 0.8) ok = 0;
      }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return cfg.check && ok == 0 ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_swarm: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 1;
}
