// Downpour on comm::mpi (2 and 4 ranks, the last ranks serving the shards): one replica with one shard equals a
// sequential Adagrad loop bit for bit; a push whose accrued sum overflows is never applied; bulk-synchronous
// rounds equal synchronous SGD on the summed gradient (bit for bit, the reference computed by every replica); the
// staleness bound holds under a slow replica; several replicas converge on the quadratic and the logistic
// problem; byte counters against the model; bad input (more server ranks than ranks, mismatched N, a lease longer
// than the timeout) is a tether::error on every rank.
// Every rank runs every test case: servers serve, replicas step.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "tether/algo/downpour.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/ps/mpi_store.hpp"

using tether::comm::mpi;

namespace {

int world_size() {
  int p = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  return p;
}

/// Runs `steps` steps of a downpour<mpi, Step> replica on `problem` (or serves); returns the final x on replicas.
template <class Step, class Problem>
std::vector<float> run(mpi& comm, const Problem& problem, typename tether::algo::downpour<mpi, Step>::options o,
                       std::uint64_t steps, tether::ps::replica_stats* stats = nullptr,
                       std::vector<float> start = {}) {
  tether::algo::downpour<mpi, Step> opt(comm, problem.dimension(), o);
  if (opt.is_server()) {
    opt.serve();
    return {};
  }
  auto x = start.empty() ? ps_test::start_point(problem.dimension()) : start;
  std::vector<float> g(x.size());
  const std::uint64_t mine = comm.rank() == 0 ? steps : steps + 1;  // joiners drop their first gradient
  for (std::uint64_t t = 0; t < mine; ++t) opt.step(x, g, ps_test::gradient(problem, x, g, comm.rank(), t));
  opt.finish(x);
  if (stats) *stats = opt.stats();
  return x;
}

}  // namespace

TEST_CASE("MPI: one replica, one shard, n_fetch = n_push = 1 is a sequential Adagrad loop", "[ps][mpi]") {
  mpi comm(MPI_COMM_WORLD, {.timeout = 30.0});
  const int servers = comm.size() - 1;  // every other rank serves: one replica
  constexpr std::uint64_t steps = 50;
  const float lr = 0.1f;
  tether::ps::replica_stats st;
  const auto x = run<tether::step::adagrad>(comm, ps_test::quad(), {.lr = lr, .shards = 1, .servers = servers},
                                            steps, &st);
  if (comm.rank() != 0) return;
  std::vector<float> w = ps_test::start_point(x.size());
  std::vector<float> h(w.size(), 0.0f), g(w.size());
  for (std::uint64_t t = 0; t < steps; ++t) {
    ps_test::gradient(ps_test::quad(), w, g, 0, t);
    for (std::size_t i = 0; i < w.size(); ++i) {
      h[i] += g[i] * g[i];
      w[i] -= lr * g[i] / (std::sqrt(h[i]) + 1e-10f);
    }
  }
  CHECK(x == w);
  CHECK(st.pushes == steps);
  CHECK(st.fetches == steps + 1);
  CHECK(st.staleness.total() == steps);
  CHECK(st.staleness.max == 0);
  CHECK(st.bytes_sent == steps * x.size() * sizeof(float));
  CHECK(st.bytes_received == (steps + 1) * x.size() * sizeof(float));
}

TEST_CASE("MPI: a push whose accrued sum overflows never reaches the servers", "[ps][mpi][nonfinite]") {
  mpi comm(MPI_COMM_WORLD, {.timeout = 30.0});
  constexpr std::uint64_t steps = 8;
  const float lr = 0.05f;
  const std::size_t n = ps_test::quad().dimension();
  tether::algo::downpour<mpi, tether::step::sgd> opt(
      comm, n, {.lr = lr, .local_lr = 0.0, .n_fetch = 2, .n_push = 2, .servers = comm.size() - 1});
  if (opt.is_server()) {
    opt.serve();
    return;
  }
  std::vector<float> x = ps_test::start_point(n), g(n);
  for (std::uint64_t t = 0; t < steps; ++t) opt.step(x, g, ps_test::overflowing_gradient(x, g, t));
  opt.finish(x);
  CHECK(x == ps_test::overflow_reference(lr, steps));  // the plain loop of support.hpp
  CHECK(opt.stats().excluded_nonfinite == 1);
  CHECK(opt.stats().pushes == steps / 2 - 1);
}

TEST_CASE("MPI: S shards over the servers give the same parameters as one shard", "[ps][mpi]") {
  mpi comm(MPI_COMM_WORLD, {.timeout = 30.0});
  const int servers = comm.size() - 1;
  const auto one = run<tether::step::adagrad>(comm, ps_test::quad(), {.lr = 0.05, .n_fetch = 2, .n_push = 2,
                                                                       .shards = 1, .servers = servers}, 40);
  for (std::size_t s : {std::size_t{3}, std::size_t{64}, std::size_t{70}}) {
    INFO("shards = " << s);
    const auto many = run<tether::step::adagrad>(comm, ps_test::quad(), {.lr = 0.05, .n_fetch = 2, .n_push = 2,
                                                                          .shards = s, .servers = servers}, 40);
    if (comm.rank() == 0) CHECK(many == one);
  }
}

TEST_CASE("MPI: bulk-synchronous rounds equal synchronous SGD on the summed gradient", "[ps][mpi]") {
  mpi comm(MPI_COMM_WORLD, {.timeout = 30.0});
  if (comm.size() < 3) return;  // needs at least 2 replicas
  const int servers = comm.size() == 3 ? 1 : 2;
  const int replicas = comm.size() - servers;
  constexpr std::uint64_t rounds = 30;
  const float lr = 0.02f;
  const auto x = run<tether::step::sgd>(comm, ps_test::quad(),
                                        {.lr = lr, .shards = 5, .consistency = tether::ps::consistency::bulk_synchronous(),
                                         .servers = servers},
                                        rounds);
  if (comm.rank() >= replicas) return;
  const std::size_t n = x.size();
  std::vector<float> w = ps_test::start_point(n), sum(n), g(n);
  for (std::uint64_t k = 0; k < rounds; ++k) {
    for (int r = 0; r < replicas; ++r) {
      ps_test::gradient(ps_test::quad(), w, g, r, r == 0 ? k : k + 1);
      for (std::size_t i = 0; i < n; ++i) sum[i] = r == 0 ? g[i] : sum[i] + g[i];
    }
    for (std::size_t i = 0; i < n; ++i) w[i] -= lr * sum[i];
  }
  CHECK(x == w);
}

TEST_CASE("MPI: bounded staleness holds under a slow replica", "[ps][mpi]") {
  mpi comm(MPI_COMM_WORLD, {.timeout = 30.0});
  if (comm.size() < 4) return;
  const int replicas = comm.size() - 1;
  constexpr std::uint32_t s = 1;
  tether::algo::downpour<mpi> opt(comm, ps_test::quad().dimension(),
                                  {.lr = 0.1, .shards = 2, .consistency = tether::ps::consistency::bounded(s),
                                   .servers = 1});
  if (opt.is_server()) {
    opt.serve();
    return;
  }
  auto x = ps_test::start_point(ps_test::quad().dimension());
  std::vector<float> g(x.size());
  for (std::uint64_t t = 0; t < 60; ++t) {
    if (comm.rank() == replicas - 1) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, comm.rank(), t));
  }
  opt.finish(x);
  CHECK(opt.stats().max_lead <= s);
  CHECK(opt.stats().staleness.total() == opt.stats().pushes);  // every push acknowledged by finish()
  CHECK(opt.stats().pushes_dropped == 0);
}

TEST_CASE("MPI: asynchronous Downpour converges (quadratic: Adagrad shards; logistic: SGD shards)", "[ps][mpi]") {
  mpi comm(MPI_COMM_WORLD, {.timeout = 30.0});
  const int servers = comm.size() >= 4 ? 2 : 1;
  const auto xq = run<tether::step::adagrad>(comm, ps_test::quad(), {.lr = 0.3, .local_lr = 0.05, .n_fetch = 2,
                                                                      .n_push = 2, .shards = 4, .servers = servers},
                                             500);
  const auto xl = run<tether::step::sgd>(comm, ps_test::logit(), {.lr = 0.1, .local_lr = 0.1, .n_fetch = 4,
                                                                   .n_push = 2, .shards = 3, .servers = servers},
                                         600, nullptr, std::vector<float>(ps_test::logit().dimension(), 0.0f));
  if (comm.rank() >= comm.size() - servers) return;
  CHECK(ps_test::distance2(xq) < 1e-2);
  const double optimum = ps_test::logistic_optimum();
  const double start = ps_test::full_loss(std::vector<float>(xl.size(), 0.0f));
  INFO("optimum " << optimum << ", start " << start << ", reached " << ps_test::full_loss(xl));
  CHECK(ps_test::full_loss(xl) - optimum < 0.02 * (start - optimum));
}

TEST_CASE("MPI: bad input is a tether::error on every rank, before any communication", "[ps][mpi][bad]") {
  mpi comm(MPI_COMM_WORLD, {.timeout = 30.0});
  const std::size_t n = 16;
  const auto error_of = [&](auto&& make) {
    try {
      make();
    } catch (const tether::error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  using opt_t = tether::algo::downpour<mpi>;
  const int p = comm.size();
  auto e = error_of([&] { opt_t opt(comm, n, {.servers = p}); });
  CHECK(e.find("servers must be in [1, " + std::to_string(p - 1) + "]") != std::string::npos);
  CHECK(e.find("got servers = " + std::to_string(p)) != std::string::npos);
  e = error_of([&] { opt_t opt(comm, n, {.servers = 0}); });
  CHECK(e.find("got servers = 0") != std::string::npos);
  e = error_of([&] { opt_t opt(comm, n, {.shards = 0}); });
  CHECK(e.find("shards = 0") != std::string::npos);
  e = error_of([&] { opt_t opt(comm, n, {.n_push = 0}); });
  CHECK(e.find("n_push = 0") != std::string::npos);
  e = error_of([&] { opt_t opt(comm, n, {.warm_start = 10, .steps = 5}); });
  CHECK(e.find("warm_start = 10") != std::string::npos);
  e = error_of([&] { opt_t opt(comm, n, {.shard_step = {.eps = -1.0f}}); });
  CHECK(e.find("shard_step") != std::string::npos);
  e = error_of([&] { opt_t opt(comm, n, {.lease = 40.0}); });
  CHECK(e.find("lease = 40") != std::string::npos);
  e = error_of([&] { opt_t opt(comm, n, {.replay = {.enabled = true}}); });
  CHECK(e.find("replay runs on the thread team only") != std::string::npos);
  if (p >= 2) {
    // Rank 1 says N = 17: every rank learns it from the one consistency check at construction.
    e = error_of([&] { opt_t opt(comm, comm.rank() == 1 ? n + 1 : n, {}); });
    CHECK(e.find("the parameter count n") != std::string::npos);
    e = error_of([&] { opt_t opt(comm, n, {.n_fetch = comm.rank() == 0 ? 2u : 1u}); });
    CHECK(e.find("the downpour options") != std::string::npos);
  }
  CHECK(world_size() == p);
}
