// Bad options: every invalid rate, coefficient, period, schedule and team shape throws tether::error when the
// optimizer (or the team) is built, with a message that names the argument and the value it got.

#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "support.hpp"

namespace {

static_assert(std::is_base_of_v<std::invalid_argument, tether::error>);
static_assert(std::is_base_of_v<std::runtime_error, tether::runtime_error>);
static_assert(std::is_base_of_v<tether::runtime_error, tether::aborted>);

constexpr double nan_d = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_d = std::numeric_limits<double>::infinity();
constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();

/// Builds an optimizer of 4 parameters with options `o` on every worker of a team of `workers`.
template <class Step, class Pull = tether::pull::none, class T = float>
void build(tether::optimizer_options<Step, Pull> o, int workers = 1) {
  tether::team team(workers);
  team.run([&](tether::team::worker& w) {
    tether::optimizer<Step, Pull, tether::team::worker, tether::exec::serial, T> opt(w, 4, o);
  });
}

}  // namespace

TEST_CASE("bad input: learning rate", "[core][bad_input]") {
  using tt::message_has;
  REQUIRE_THROWS_MATCHES(build<tether::step::sgd>({.lr = -0.1}), tether::error,
                         message_has({"lr", "lr = -0.1"}));
  REQUIRE_THROWS_MATCHES(build<tether::step::sgd>({.lr = nan_d}), tether::error,
                         message_has({"lr", "lr = nan"}));
  REQUIRE_THROWS_MATCHES(build<tether::step::sgd>({.lr = inf_d}), tether::error,
                         message_has({"lr", "lr = inf"}));
  REQUIRE_THROWS_MATCHES(build<tether::step::sgd>({.lr = -inf_d}), tether::error,
                         message_has({"lr", "lr = -inf"}));
  REQUIRE_NOTHROW(build<tether::step::sgd>({.lr = 0.0}));
}

TEST_CASE("bad input: momentum coefficient", "[core][bad_input]") {
  using tt::message_has;
  using M = tether::step::momentum;
  REQUIRE_THROWS_MATCHES(build<M>({.step = {.momentum = 1.0f}}), tether::error,
                         message_has({"momentum = 1"}));
  REQUIRE_THROWS_MATCHES(build<M>({.step = {.momentum = -0.5f}}), tether::error,
                         message_has({"momentum = -0.5"}));
  REQUIRE_THROWS_MATCHES(build<M>({.step = {.momentum = nan_f}}), tether::error,
                         message_has({"momentum = nan"}));
  REQUIRE_THROWS_MATCHES(build<M>({.step = {.momentum = 1.0f, .nesterov = true}}), tether::error,
                         message_has({"momentum = 1"}));
  REQUIRE_NOTHROW(build<M>({.step = {.momentum = 0.0f}}));
}

TEST_CASE("bad input: Adam betas and eps", "[core][bad_input]") {
  using tt::message_has;
  using A = tether::step::adam;
  REQUIRE_THROWS_MATCHES(build<A>({.step = {.beta1 = 1.0f}}), tether::error, message_has({"beta1 = 1"}));
  REQUIRE_THROWS_MATCHES(build<A>({.step = {.beta1 = -0.25f}}), tether::error,
                         message_has({"beta1 = -0.25"}));
  REQUIRE_THROWS_MATCHES(build<A>({.step = {.beta2 = 1.5f}}), tether::error, message_has({"beta2 = 1.5"}));
  REQUIRE_THROWS_MATCHES(build<A>({.step = {.beta2 = nan_f}}), tether::error, message_has({"beta2 = nan"}));
  REQUIRE_THROWS_MATCHES(build<A>({.step = {.eps = 0.0f}}), tether::error, message_has({"eps = 0"}));
  REQUIRE_THROWS_MATCHES(build<A>({.step = {.eps = -1.0f}}), tether::error, message_has({"eps = -1"}));
  REQUIRE_NOTHROW(build<A>({.step = {.beta1 = 0.0f, .beta2 = 0.0f}}));
}

TEST_CASE("bad input: Adagrad eps and initial accumulator", "[core][bad_input]") {
  using tt::message_has;
  using G = tether::step::adagrad;
  REQUIRE_THROWS_MATCHES(build<G>({.step = {.eps = 0.0f}}), tether::error, message_has({"eps = 0"}));
  REQUIRE_THROWS_MATCHES(build<G>({.step = {.eps = -2.0f}}), tether::error, message_has({"eps = -2"}));
  REQUIRE_THROWS_MATCHES(build<G>({.step = {.initial_accumulator = -1.0f}}), tether::error,
                         message_has({"initial_accumulator", "-1"}));
}

TEST_CASE("bad input: a zero period for each pull", "[core][bad_input]") {
  using tt::message_has;
  using S = tether::step::sgd;
  REQUIRE_THROWS_MATCHES((build<S, tether::pull::leader>({.pull = {.period = 0}})), tether::error,
                         message_has({"leader", "period = 0"}));
  REQUIRE_THROWS_MATCHES((build<S, tether::pull::group_leader>({.pull = {.period = 0}})), tether::error,
                         message_has({"leader", "period = 0"}));
  REQUIRE_THROWS_MATCHES((build<S, tether::pull::elastic>({.pull = {.period = 0}})), tether::error,
                         message_has({"elastic", "period = 0"}));
  REQUIRE_THROWS_MATCHES((build<S, tether::pull::anchor>({.pull = {.period = 0}})), tether::error,
                         message_has({"anchor", "period = 0"}));
  REQUIRE_THROWS_MATCHES((build<S, tether::pull::average>({.pull = {.period = 0}})), tether::error,
                         message_has({"average", "period = 0"}));
}

TEST_CASE("bad input: leader pull coefficients", "[core][bad_input]") {
  using tt::message_has;
  using S = tether::step::sgd;
  using L = tether::pull::leader;
  using G = tether::pull::group_leader;
  REQUIRE_THROWS_MATCHES((build<S, L>({.pull = {.strength = -1.0f}})), tether::error,
                         message_has({"strength = -1"}));
  REQUIRE_THROWS_MATCHES((build<S, L>({.pull = {.jump = 1.5f}})), tether::error, message_has({"jump = 1.5"}));
  REQUIRE_THROWS_MATCHES((build<S, L>({.pull = {.score_window = 0}})), tether::error,
                         message_has({"score_window = 0"}));
  REQUIRE_THROWS_MATCHES((build<S, G>({.pull = {.period = 16, .global_period = 24}})), tether::error,
                         message_has({"global_period (24)", "period (16)"}));
  REQUIRE_THROWS_MATCHES((build<S, G>({.pull = {.global_strength = -0.5f}})), tether::error,
                         message_has({"global_strength = -0.5"}));
  REQUIRE_THROWS_MATCHES((build<S, G>({.pull = {.global_jump = 2.0f}})), tether::error,
                         message_has({"global_jump = 2"}));
  REQUIRE_NOTHROW(build<S, G>({.pull = {.period = 4, .global_period = 12}}));
}

TEST_CASE("bad input: elastic and anchor coefficients", "[core][bad_input]") {
  using tt::message_has;
  using S = tether::step::sgd;
  using E = tether::pull::elastic;
  using A = tether::pull::anchor;
  REQUIRE_THROWS_MATCHES((build<S, E>({.pull = {.beta = 1.5f}})), tether::error, message_has({"beta = 1.5"}));
  REQUIRE_THROWS_MATCHES((build<S, E>({.pull = {.alpha = 2.0f}})), tether::error, message_has({"alpha = 2"}));
  // p * alpha > 1 makes the center diverge: 2 workers with alpha = 0.75.
  REQUIRE_THROWS_MATCHES((build<S, E>({.pull = {.alpha = 0.75f}}, 2)), tether::error,
                         message_has({"p*alpha", "p = 2", "alpha = 0.75"}));
  REQUIRE_NOTHROW(build<S, E>({.pull = {.alpha = 0.5f}}, 2));
  REQUIRE_THROWS_MATCHES((build<S, A>({.pull = {.alpha = 1.5f}})), tether::error,
                         message_has({"alpha = 1.5"}));
  REQUIRE_THROWS_MATCHES((build<S, A>({.pull = {.alpha = nan_f}})), tether::error,
                         message_has({"alpha = nan"}));
  REQUIRE_THROWS_MATCHES((build<S, A>({.pull = {.momentum = 1.0f}})), tether::error,
                         message_has({"momentum = 1"}));
}

TEST_CASE("bad input: schedules with a zero period, through the optimizer", "[core][bad_input]") {
  using tt::message_has;
  using S = tether::step::sgd;
  REQUIRE_THROWS_MATCHES(build<S>({.schedule = tether::schedule::step_decay(0, 0.5)}), tether::error,
                         message_has({"step_decay", "every = 0"}));
  REQUIRE_THROWS_MATCHES(build<S>({.schedule = tether::schedule::cosine(0)}), tether::error,
                         message_has({"cosine", "total = 0"}));
  REQUIRE_THROWS_MATCHES(build<S>({.schedule = tether::schedule::custom({})}), tether::error,
                         message_has({"custom"}));
}

TEST_CASE("bad input: team shape", "[core][bad_input]") {
  using tt::message_has;
  REQUIRE_THROWS_MATCHES(tether::team(0), tether::error, message_has({"workers", "workers = 0"}));
  REQUIRE_THROWS_MATCHES(tether::team(-3), tether::error, message_has({"workers", "workers = -3"}));
  REQUIRE_THROWS_MATCHES(tether::team(4, {.group_size = 3}), tether::error,
                         message_has({"workers (4)", "group_size (3)"}));
  REQUIRE_THROWS_MATCHES(tether::team(6, {.group_size = 4}), tether::error,
                         message_has({"workers (6)", "group_size (4)"}));
  REQUIRE_THROWS_MATCHES(tether::team(4, {.group_size = -1}), tether::error,
                         message_has({"group_size", "group_size = -1"}));
  REQUIRE_NOTHROW(tether::team(6, {.group_size = 3}));
}

TEST_CASE("bad input: state and target indices", "[core][bad_input]") {
  using tt::message_has;
  tt::on_one_worker([](tether::team::worker& w) {
    tether::optimizer<tether::step::momentum, tether::pull::leader, tether::team::worker> opt(w, 4);
    REQUIRE_THROWS_MATCHES(opt.state(1), tether::error, message_has({"k = 1", "1 state buffers"}));
    REQUIRE_THROWS_MATCHES(opt.target(3), tether::error, message_has({"k = 3", "1 buffers"}));
  });
}
