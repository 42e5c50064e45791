// Compile-and-link test: the named algorithms on comm::nccl with exec::cuda (device parameters). The
// function below instantiates every optimizer's construction and step and is linked into the executable;
// the test case, which needs no GPU, checks the concepts the optimizers assert on. The GPU runs are gpu.cu.
#include <tether/algo/easgd.hpp>
#include <tether/algo/local_sgd.hpp>
#include <tether/algo/lsgd.hpp>
#include <tether/algo/overlap_local_sgd.hpp>
#include <tether/comm/nccl.hpp>
#include <tether/exec/cuda.hpp>
#include <tether/step/adam.hpp>
#include <tether/step/momentum.hpp>

#include <catch2/catch.hpp>

#include <cstddef>

namespace nccl_test {

using tether::comm::nccl;
using tether::exec::cuda;

/// One step of each algorithm on device buffers x, g of n floats (never called without a GPU).
void step_every_algorithm(nccl& comm, float* x, float* g, std::size_t n, cuda gpu) {
  const auto xv = tether::as_view<tether::mem::cuda>(x, n);
  const auto gv = tether::as_view<tether::mem::cuda>(g, n);
  tether::algo::lsgd<nccl, tether::step::sgd, cuda> lsgd(comm, n, {.lr = 0.1}, gpu);
  lsgd.step(xv, gv, 1.0);
  tether::algo::lsgd_grouped<nccl, tether::step::momentum, cuda> grouped(comm, n, {.lr = 0.1}, gpu);
  grouped.step(xv, gv, 1.0);
  tether::algo::easgd<nccl, tether::step::sgd, cuda> easgd(comm, n, {.lr = 0.1}, gpu);
  easgd.step(xv, gv, 1.0);
  tether::algo::eamsgd<nccl, cuda> eamsgd(comm, n, tether::algo::eamsgd_options<nccl, cuda>(0.1), gpu);
  eamsgd.step(xv, gv, 1.0);
  tether::algo::local_sgd<nccl, tether::step::adam, cuda> local(comm, n, {.lr = 0.1}, gpu);
  local.step(xv, gv, 1.0);
  tether::algo::overlap_local_sgd<nccl, tether::step::sgd, cuda, float> overlap(comm, n, {.lr = 0.1}, gpu);
  overlap.step(xv, gv, 1.0);
  tether::algo::lsgd<nccl, tether::step::sgd, cuda, double> lsgd_double(comm, 0, {.lr = 0.1}, gpu);
}

}  // namespace nccl_test

TEST_CASE("the algorithms compile and link on comm::nccl + exec::cuda", "[nccl][cuda]") {
  using tether::comm::nccl;
  using env = tether::step_env<nccl, tether::exec::cuda>;
  STATIC_REQUIRE(tether::communicator<nccl>);
  STATIC_REQUIRE(tether::pull_policy_for<tether::pull::leader, float, env, tether::mem::cuda>);
  STATIC_REQUIRE(tether::pull_policy_for<tether::pull::group_leader, float, env, tether::mem::cuda>);
  STATIC_REQUIRE(tether::pull_policy_for<tether::pull::elastic, float, env, tether::mem::cuda>);
  STATIC_REQUIRE(tether::pull_policy_for<tether::pull::average, float, env, tether::mem::cuda>);
  STATIC_REQUIRE(tether::pull_policy_for<tether::pull::anchor, double, env, tether::mem::cuda>);
  // The device overloads are what the pulls reach (no host staging through collectives.hpp).
  STATIC_REQUIRE(requires(nccl & c, tether::view<float, tether::mem::cuda> v, tether::exec::cuda e) {
    c.allreduce_sum(e, v);
    c.broadcast(e, v, 0);
    {
      c.iallreduce_sum(e, tether::view<const float, tether::mem::cuda>(v), v)
      } -> std::same_as<tether::request>;
  });
  void (*f)(nccl&, float*, float*, std::size_t, tether::exec::cuda) = &nccl_test::step_every_algorithm;
  REQUIRE(f != nullptr);
}
