// SwarmSGD with its kernels and codecs on exec::openmp: the same run (two nodes, 8-bit exchanges, a fixed number
// of steps on the quadratic with one node never starting an exchange, so the order of events is fixed) gives the
// same bits as on exec::serial, the reference.
#include <catch2/catch.hpp>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/exec/openmp.hpp>
#include <tether/step/momentum.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

template <class Exec>
std::vector<std::vector<float>> run(Exec exec) {
  std::vector<std::vector<float>> out(2);
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    const auto& q = swarm_test::quad();
    std::vector<float> x = swarm_test::start(q.dimension(), w.rank()), g(q.dimension());
    using codec = tether::codec::stochastic_uniform<float>;
    tether::algo::swarm_sgd<tether::team::worker, tether::step::momentum, codec, Exec> opt(
        w, x.size(),
        {.lr = 0.05, .local_steps = r == 0 ? 1u : 1000000u, .codec = codec({.bits = 8, .block = 16})}, exec);
    // Node 0's exchange t is served by node 1 after node 1's step t-1 and before its gradient t (in the poll of
    // step t-1 or in sync t, whichever comes first: node 1's model is the same at both), so the run is fixed.
    const auto gradient = [&](int t) { q.evaluate(x, g, {{}, tether::derive_seed(3, r, static_cast<std::uint64_t>(t))}); };
    for (int t = 0; t < 50; ++t) {
      if (r == 0) {
        gradient(t);
        opt.step(x, g, 0.0);  // ends in an exchange with node 1
        opt.sync(x);
      } else {
        opt.sync(x);          // serves node 0's exchange t, unless step t-1's poll did
        gradient(t);
        opt.step(x, g, 0.0);  // H far away: no exchange of its own
      }
    }
    opt.finish(x);
    out[r] = x;
  });
  return out;
}

}  // namespace

TEST_CASE("swarm_sgd on exec::openmp gives the bits of exec::serial", "[swarm][openmp]") {
  const auto serial = run(tether::exec::serial{});
  CHECK(serial == run(tether::exec::serial{}));  // the run is deterministic
  // Two OpenMP threads per node; one where the environment says so (ThreadSanitizer runs: see CMakeLists.txt).
  const char* env = std::getenv("OMP_NUM_THREADS");
  const int threads = env != nullptr && std::string(env) == "1" ? 1 : 2;
  const auto omp = run(tether::exec::openmp{.threads = threads});
  CHECK(serial == omp);
  CHECK(serial[0] != swarm_test::start(swarm_test::quad().dimension(), 0));
}
