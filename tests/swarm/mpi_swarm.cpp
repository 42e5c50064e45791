// SwarmSGD and its pairwise link under mpirun (2 and 4 ranks): an audited stress run of the link (random peers and
// delays, every exchange counted on both sides, gathered to rank 0), an oversized request refused naming the
// peer, consensus near the quadratic's optimum (fp32, 8-bit, lattice, non-blocking) on several graphs, replay
// reruns bit for bit, a model that is not finite never averaged in, and ranks that disagree on the options
// failing on every rank.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/lattice.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/mpi.hpp>
#include <tether/comm/mpi/pairwise.hpp>

#include <array>
#include <chrono>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "link_check.hpp"
#include "support.hpp"

namespace {

using tether::comm::topology;

/// Every rank's vector of trivially copyable T, on rank 0 (empty elsewhere).
template <class T>
std::vector<std::vector<T>> gather(const std::vector<T>& mine) {
  int p = 0, me = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  const int bytes = static_cast<int>(mine.size() * sizeof(T));
  std::vector<int> sizes(static_cast<std::size_t>(p)), offsets(static_cast<std::size_t>(p));
  MPI_Gather(&bytes, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  int total = 0;
  for (int r = 0; r < p; ++r) offsets[static_cast<std::size_t>(r)] = total, total += sizes[static_cast<std::size_t>(r)];
  std::vector<std::byte> all(static_cast<std::size_t>(std::max(total, 1)));
  MPI_Gatherv(mine.data(), bytes, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0, MPI_COMM_WORLD);
  std::vector<std::vector<T>> out;
  if (me != 0) return out;
  for (int r = 0; r < p; ++r) {
    std::vector<T> v(static_cast<std::size_t>(sizes[static_cast<std::size_t>(r)]) / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), all.data() + offsets[static_cast<std::size_t>(r)], v.size() * sizeof(T));
    out.push_back(std::move(v));
  }
  return out;
}

/// A boolean decided on rank 0, known to every rank.
bool agree(bool ok) {
  int v = ok ? 1 : 0;
  MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return v == 1;
}

}  // namespace

TEST_CASE("mpi link: stress, random peers and delays, every exchange counted on both sides", "[swarm][mpi]") {
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
  const int p = comm.size();
  if (p < 2) return;
  auto link = comm.open_pairs(link_check::message_bytes, {.timeout = 60});
  link_check::log log;
  std::uint64_t replies = 0;
  std::array<std::byte, link_check::message_bytes> send{}, recv{};
  const auto serve = [&](int from, std::span<const std::byte> msg, std::span<std::byte> reply) {
    log.in.push_back({from, link_check::read(msg).number, ++replies});
    link_check::write(reply, {2, comm.rank(), replies});
  };
  tether::rng gen(tether::derive_seed(31, static_cast<std::uint64_t>(comm.rank())));
  const int per_rank = 1500;
  for (int k = 1; k <= per_rank; ++k) {
    int peer = static_cast<int>(gen.below(static_cast<std::uint64_t>(p - 1)));
    if (peer >= comm.rank()) ++peer;
    if (gen.below(3) == 0) std::this_thread::sleep_for(std::chrono::microseconds(gen.below(200)));
    if (gen.below(3) == 0) link.poll(serve);
    link_check::write(send, {1, comm.rank(), static_cast<std::uint64_t>(k)});
    recv.fill(std::byte{0});
    const auto st = link.exchange(peer, send, recv, serve);
    log.out.push_back({peer, static_cast<std::uint64_t>(k), st == tether::pair_status::done, link_check::read(recv)});
  }
  link.finish(serve);
  const auto outs = gather(log.out);
  const auto ins = gather(log.in);
  bool ok = true;
  if (comm.rank() == 0) {
    std::vector<link_check::log> logs(static_cast<std::size_t>(p));
    for (int r = 0; r < p; ++r) logs[static_cast<std::size_t>(r)] = {outs[static_cast<std::size_t>(r)], ins[static_cast<std::size_t>(r)]};
    const auto a = link_check::audit(logs);
    for (const auto& f : a.failures) FAIL_CHECK(f);
    CHECK(a.done + a.lost == static_cast<std::size_t>(p * per_rank));
    CHECK(a.lost == 0);
    CHECK(a.done == a.served + a.crossed);
    ok = a.failures.empty() && a.lost == 0 && a.done == a.served + a.crossed;
  }
  CHECK(agree(ok));
}

TEST_CASE("mpi link: an oversized request is refused, naming the peer; the initiator sees it lost", "[swarm][mpi]") {
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
  if (comm.size() < 2) return;
  // Rank 1 takes 32-byte messages, rank 0 sends 48.
  auto link = comm.open_pairs(comm.rank() == 1 ? 32 : 64, {.timeout = 30});
  const auto none = [](int, std::span<const std::byte>, std::span<std::byte>) {};
  std::string error;
  int status = -1;
  if (comm.rank() == 0) {
    std::array<std::byte, 48> s{};
    std::array<std::byte, 16> r{};
    status = static_cast<int>(link.exchange(1, s, r, none));
  } else if (comm.rank() == 1) {
    try {
      for (;;) link.poll(none);
    } catch (const tether::runtime_error& e) {
      error = e.what();
    }
  }
  link.finish(none);
  if (comm.rank() == 0) CHECK(status == static_cast<int>(tether::pair_status::lost));
  if (comm.rank() == 1) CHECK(error == "tether: pairwise link: rank 1: peer 0 sent a 48-byte message, more than this link's 32-byte messages");
}

TEST_CASE("mpi link: sync does not serve an exchange started after its initiator passed", "[swarm][mpi]") {
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
  if (comm.size() < 2) return;
  int wrong = 0;
  for (int trial = 0; trial < 50; ++trial) {
    auto link = comm.open_pairs(link_check::message_bytes, {.timeout = 30});
    std::array<std::byte, link_check::message_bytes> s{}, r{};
    const auto serve = [](int, std::span<const std::byte>, std::span<std::byte> reply) {
      link_check::write(reply, {2, 0, 0});
    };
    if (comm.rank() == 0) {
      (void)link.exchange(1, s, r, serve);
      link.sync(serve);
      (void)link.exchange(1, s, r, serve);  // the next phase: served by rank 1 after its sync
    } else {
      link.sync(serve);
      if (comm.rank() == 1) wrong += link.counters().served != 1;
    }
    link.finish(serve);
  }
  CHECK(wrong == 0);
}

namespace {

template <class Codec = tether::codec::identity<float>>
void swarm_on_quadratic(const topology& g, Codec codec = {}, bool nonblocking = false, bool same_start = false,
                        double distance_bound = 1e-3, double consensus_bound = 1e-4) {
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
  const auto& q = swarm_test::quad();
  const auto r = static_cast<std::uint64_t>(comm.rank());
  std::vector<float> x = swarm_test::start(q.dimension(), comm.rank(), same_start), gr(q.dimension());
  const int steps = 800;
  tether::algo::swarm_sgd<tether::comm::mpi, tether::step::sgd, Codec> opt(
      comm, x.size(),
      {.lr = 0.05, .topology = g, .local_steps = 2, .codec = codec, .nonblocking = nonblocking, .seed = 21,
       .timeout = 60, .schedule = tether::schedule::cosine(steps, 0.05)});
  for (int t = 0; t < steps; ++t) {
    const double loss = q.evaluate(x, gr, {{}, tether::derive_seed(3, r, static_cast<std::uint64_t>(t))});
    opt.step(x, gr, loss);
  }
  opt.finish(x);
  CHECK(opt.swarm().lost == 0);
  if (comm.size() > 1) CHECK(opt.swarm().exchanges > 0);
  const auto all = gather(x);
  if (comm.rank() == 0) {
    for (const auto& xi : all) CHECK(swarm_test::distance2(xi) < distance_bound);
    CHECK(swarm_test::consensus2(all) < consensus_bound);
  }
  // Bytes: every exchange and serve moves one message each way.
  CHECK(opt.stats().bytes_sent == (opt.swarm().exchanges + opt.swarm().served) * opt.message_bytes());
}

}  // namespace

TEST_CASE("mpi swarm_sgd: consensus near the optimum on several graphs, quantized or not", "[swarm][mpi]") {
  int p = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  for (const auto& g : {topology::ring(p), topology::complete(p), topology::exponential(p)}) {
    INFO("topology " << g.name());
    swarm_on_quadratic(g);
    swarm_on_quadratic(g, tether::codec::identity<float>{}, /*nonblocking=*/true);
  }
  swarm_on_quadratic(topology::ring(p), tether::codec::stochastic_uniform<float>({.bits = 8, .block = 64}));
  // Lattice step 0.02: radius 2.54 covers |x0 - c| <= 2 (see algo_quadratic.cpp).
  // (its error, below 0.02 per value, leaves a floor near 1e-3: measured 1.08e-3 once)
  swarm_on_quadratic(topology::ring(p), tether::codec::lattice<float>({.bits = 8, .block = 64, .step = 0.02f}), false,
                     /*same_start=*/true, 3e-3, 1e-3);
}

TEST_CASE("mpi swarm_sgd: a model that is not finite is never averaged in", "[swarm][mpi][nonfinite]") {
  // Rank 1 is NaN in x[3] from the start; zero gradients, so only exchanges move a model. Every model ends
  // finite (rank 1 took a partner's) and within the range of the finite starts, blocking and non-blocking.
  for (const bool nonblocking : {false, true}) {
    INFO("nonblocking " << nonblocking);
    tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
    const std::size_t n = 24;
    std::vector<float> x = swarm_test::start(n, comm.rank()), g(n, 0.0f);
    if (comm.rank() == 1) x[3] = std::numeric_limits<float>::quiet_NaN();
    tether::algo::swarm_sgd<tether::comm::mpi> opt(
        comm, n, {.lr = 0.1, .topology = topology::complete(comm.size()), .nonblocking = nonblocking, .seed = 4});
    for (int t = 0; t < 20; ++t) opt.step(x, g, 0.0);
    opt.finish(x);
    const auto models = gather(x);
    const auto excluded = gather(std::vector<std::uint64_t>{opt.stats().excluded_nonfinite});
    if (comm.rank() != 0) continue;
    for (std::size_t i = 0; i < n; ++i) {
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (int r = 0; r < comm.size(); ++r) {
        if (r == 1) continue;
        lo = std::min(lo, swarm_test::start(n, r)[i]);
        hi = std::max(hi, swarm_test::start(n, r)[i]);
      }
      for (int r = 0; r < comm.size(); ++r) {
        const float v = models[static_cast<std::size_t>(r)][i];
        CAPTURE(r, i, v);
        CHECK((std::isfinite(v) && v >= lo - 1e-6f && v <= hi + 1e-6f));
      }
    }
    for (int r = 0; r < comm.size(); ++r) CHECK((excluded[static_cast<std::size_t>(r)][0] >= 1) == (r == 1));
  }
}

TEST_CASE("mpi swarm_sgd: replay mode reruns bit for bit", "[swarm][mpi]") {
  const auto run = [](std::uint64_t seed) {
    tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
    const auto& q = swarm_test::quad();
    const auto r = static_cast<std::uint64_t>(comm.rank());
    std::vector<float> x = swarm_test::start(q.dimension(), comm.rank()), gr(q.dimension());
    tether::algo::swarm_sgd<tether::comm::mpi, tether::step::sgd, tether::codec::stochastic_uniform<float>> opt(
        comm, x.size(),
        {.lr = 0.05, .topology = topology::ring(comm.size()), .local_steps = 3, .random_local_steps = true,
         .codec = tether::codec::stochastic_uniform<float>({.bits = 8, .block = 64}), .replay = true, .seed = seed});
    for (int t = 0; t < 200; ++t) {
      if ((t + static_cast<int>(r)) % 29 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300 * r));
      const double loss = q.evaluate(x, gr, {{}, tether::derive_seed(4, r, static_cast<std::uint64_t>(t))});
      opt.step(x, gr, loss);
    }
    opt.finish(x);
    return x;
  };
  const auto a = run(5);
  const auto b = run(5);
  CHECK(a == b);
}

TEST_CASE("mpi swarm_sgd: ranks that disagree on the options fail on every rank", "[swarm][mpi][bad_input]") {
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 120});
  if (comm.size() < 2) return;
  std::string error;
  try {
    tether::algo::swarm_sgd<tether::comm::mpi> opt(
        comm, 16, {.local_steps = comm.rank() == 1 ? 2u : 1u, .timeout = 30});
  } catch (const tether::error& e) {
    error = e.what();
  }
  CHECK_THAT(error, Catch::Contains("ranks disagree on the swarm_sgd options"));
  error.clear();
  try {
    tether::algo::swarm_sgd<tether::comm::mpi, tether::step::sgd, tether::codec::stochastic_uniform<float>> opt(
        comm, 1000, {.codec = tether::codec::stochastic_uniform<float>({.bits = comm.rank() == 0 ? 8u : 4u})});
  } catch (const tether::error& e) {
    error = e.what();
  }
  CHECK_THAT(error, Catch::Contains("ranks disagree on the codec's message size"));
}
