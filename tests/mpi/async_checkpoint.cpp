// Checkpoints of asynchronous EASGD and LSGD on comm::mpi (docs/reliability.md#checkpoints). Each rank runs 23
// steps and saves (EASGD: every rank's additions complete, the center is read between two barriers; LSGD: the
// rounds due complete), then finishes. References: that run, read through the optimizer's accessors after
// finish() (not through the file). A new optimizer loaded from the file and finished at once holds the same x,
// state, center or leader copy, counters and round state bit for bit; another one loaded and run to step 400
// goes on with the rounds (none repeated, none lost), ends with the same center or leader copy on every rank,
// and converges to the quadratic's known optimum (the ranks' exchanges interleave by timing: a valid run, not
// the same one).
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "support.hpp"
#include "../common/optimizer_snapshot.hpp"
#include "tether/algo/async_easgd.hpp"
#include "tether/algo/async_lsgd.hpp"
#include "tether/comm/mpi.hpp"

using tether::comm::mpi;

namespace {

const tether::problems::quadratic<float> quad(64, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 11});
constexpr std::uint64_t cut = 23;
constexpr std::uint64_t steps = 400;
constexpr std::uint32_t period = 4;

double distance2(std::span<const float> x) {
  double s = 0;
  const auto c = quad.optimum();
  for (std::size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - double(c[i])) * (double(x[i]) - double(c[i]));
  return s / static_cast<double>(x.size());
}

using easgd_t = tether::algo::async_easgd<mpi>;
using lsgd_t = tether::algo::async_lsgd<mpi>;

template <class Opt>
typename Opt::options options_of() {
  if constexpr (std::is_same_v<Opt, easgd_t>)
    return {.lr = 0.05, .pull = {.period = period, .beta = 0.9f}};
  else
    return {.lr = 0.05, .pull = {.period = period, .strength = 0.5f, .score_window = 3}};
}

using snapshot = tether_test::optimizer_snapshot;
using tether_test::snapshot_of;

/// A rank's run over steps [from, to): loads `load` first and saves `save` after the last step when given.
template <class Opt>
snapshot run(mpi& c, std::uint64_t from, std::uint64_t to, const std::string& load, const std::string& save) {
  std::vector<float> x(quad.dimension()), g(quad.dimension());
  tether::rng r(tether::derive_seed(5, static_cast<std::uint64_t>(c.rank())));
  for (auto& v : x) v = static_cast<float>(2.0 * r.uniform() - 1.0);
  Opt opt(c, x.size(), options_of<Opt>());
  if (!load.empty()) opt.load(load, x);
  for (std::uint64_t t = from; t < to; ++t)
    opt.step(x, g, quad.evaluate(x, g, tether::batch{{}, tether::derive_seed(3, static_cast<std::uint64_t>(c.rank()), t)}));
  if (!save.empty()) opt.save(save, x);
  opt.finish(x);
  return snapshot_of(opt, x);
}

}  // namespace

TEMPLATE_TEST_CASE("Asynchronous EASGD and LSGD on comm::mpi: save, load, go on", "[async][checkpoint]", easgd_t,
                   lsgd_t) {
  mpi c(MPI_COMM_WORLD);
  const std::string file = std::string("async_checkpoint_") + (std::is_same_v<TestType, easgd_t> ? "easgd" : "lsgd") +
                           "_np" + std::to_string(c.size()) + "." + std::to_string(c.rank());
  const snapshot saved = run<TestType>(c, 0, cut, "", file);
  const snapshot loaded = run<TestType>(c, cut, cut, file, "");
  INFO("rank " << c.rank());
  CHECK(loaded == saved);
  CHECK(saved.steps == cut);
  CHECK(saved.pull_count == (cut - 1) / period);

  const snapshot resumed = run<TestType>(c, cut, steps, file, "");
  CHECK(resumed.steps == steps);
  CHECK(resumed.pull_count == (steps - 1) / period);
  CHECK(distance2(resumed.x) < 0.02);
  const std::vector<float> mine(resumed.targets.begin(), resumed.targets.begin() + static_cast<std::ptrdiff_t>(quad.dimension()));
  CHECK(distance2(mine) < 0.02);
  const auto all = tether_mpi_test::gather(std::span<const float>(mine));
  if (c.rank() == 0)
    for (std::size_t r = 0; r < all.size(); ++r) CHECK(all[r] == all[0]);  // the same center or leader copy
  std::remove(file.c_str());
}
