// The readable description of options aggregates behind the cross-rank options check (issue 13, item 11):
// every field options_fingerprint compares, named as the options struct names it, with its value; and the
// first field where two descriptions differ. Expected texts are written out by hand from the structs' fields.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "tether/algo/downpour.hpp"
#include "tether/algo/swarm_sgd.hpp"
#include "tether/comm/shared_memory.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/core/options_description.hpp"
#include "tether/lbfgs/options.hpp"
#include "tether/pull/elastic.hpp"
#include "tether/pull/leader.hpp"
#include "tether/step/adam.hpp"
#include "tether/step/momentum.hpp"
#include "tether/step/sgd.hpp"

namespace {

struct unnamed {
  int a = 1;
  double b = 0.5;
};

}  // namespace

TEST_CASE("describe_options: every compared field of the optimizer options, by name, dotted when nested",
          "[core][consistency]") {
  using opts = tether::optimizer_options<tether::step::momentum, tether::pull::elastic>;
  opts o{.lr = 0.25, .step = {.momentum = 0.5f, .nesterov = true}, .pull = {.period = 7, .beta = 0.75f}};
  o.on_round = [](const tether::worker_stats&) {};  // callables are not compared, so not described
  const std::string expected =
      "lr=0.25\n"
      "step.momentum=0.5\n"
      "step.nesterov=true\n"
      "pull.period=7\n"
      "pull.beta=0.75\n"
      "pull.alpha=0\n"
      "schedule.type=0\n"
      "schedule.every=0\n"
      "schedule.factor=0.10000000000000001\n"
      "schedule.total=0\n"
      "schedule.floor=0\n"
      "schedule.warmup=0\n"
      "on_nonfinite=0\n"
      "skip_limit=100\n"
      "check_gradient=true\n";
  CHECK(tether::describe_options(o) == expected);
}

TEST_CASE("describe_options: floats print with every digit needed to tell them apart", "[core][consistency]") {
  tether::optimizer_options<tether::step::adam, tether::pull::leader> a;
  auto b = a;
  b.step.beta2 = std::nextafter(a.step.beta2, 1.0f);
  const auto da = tether::describe_options(a);
  const auto db = tether::describe_options(b);
  REQUIRE(da != db);
  const auto diff = tether::detail::first_difference(da, db, 0, 3);
  REQUIRE(diff.has_value());
  CHECK(*diff == "step.beta2: rank 0 has 0.999000013, rank 3 has 0.999000072");
}

TEST_CASE("first_difference names the first differing field and both values; nothing when equal",
          "[core][consistency]") {
  using opts = tether::optimizer_options<tether::step::sgd, tether::pull::leader>;
  const opts a{.lr = 0.1, .pull = {.period = 16, .strength = 0.2f}};
  const opts b{.lr = 0.1, .pull = {.period = 8, .strength = 0.3f}};  // two fields differ: the first is named
  CHECK(*tether::detail::first_difference(tether::describe_options(a), tether::describe_options(b), 0, 1) ==
        "pull.period: rank 0 has 16, rank 1 has 8");
  CHECK_FALSE(tether::detail::first_difference(tether::describe_options(a), tether::describe_options(a), 0, 1));
  // Descriptions of different shapes (different builds): named as such, not as a value.
  CHECK(tether::detail::first_difference("x=1\n", "y=1\n", 0, 2)->find("different builds") != std::string::npos);
}

TEST_CASE("describe_options: a plain value, and an aggregate that does not name its fields (left out)",
          "[core][consistency]") {
  CHECK(tether::describe_options(std::uint64_t{42}) == "value=42\n");
  CHECK(tether::describe_options(unnamed{}).empty());
  // Empty options (sgd's) and classes (codecs, callables) add no line.
  const tether::optimizer_options<tether::step::sgd, tether::pull::elastic> o{};
  CHECK(tether::describe_options(o).rfind("lr=0.01\npull.period=10\n", 0) == 0);
}

TEST_CASE("describe_options covers the swarm_sgd, downpour and lbfgs options", "[core][consistency]") {
  tether::algo::swarm_sgd_options<tether::step::sgd, tether::codec::identity<float>> s;
  s.local_steps = 4;
  const auto ds = tether::describe_options(s);
  CHECK(ds.find("\nlocal_steps=4\n") != std::string::npos);
  CHECK(ds.find("\ntimeout=60\n") != std::string::npos);
  CHECK(ds.find("\nschedule.factor=") != std::string::npos);

  tether::algo::detail_downpour::shared_fields d{};
  d.n_push = 3;
  d.consistency = tether::ps::consistency::bounded(2);
  const auto dd = tether::describe_options(d);
  CHECK(dd.find("\nn_push=3\n") != std::string::npos);
  CHECK(dd.find("\nconsistency.mode=1\nconsistency.staleness=2\n") != std::string::npos);
  CHECK(dd.find("\nreplay.enabled=false\nreplay.seed=0\n") != std::string::npos);

  tether::lbfgs::options l;
  l.line_search.gtol = 0.5;
  const auto dl = tether::describe_options(l);
  CHECK(dl.rfind("history=6\n", 0) == 0);
  CHECK(dl.find("\nline_search.gtol=0.5\n") != std::string::npos);
  CHECK(dl.find("\ncoordinator=0\nseed=0\n") != std::string::npos);
}
