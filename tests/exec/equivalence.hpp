#pragma once
// Equivalence harness of the execution spaces: a team of 4 workers runs the same 10 steps of every
// step x pull combination on exec::serial with std::vector buffers (the reference) and on the space under
// test with that space's own buffer type; the final parameters must agree bit for bit (or within a stated
// number of ulps where the arithmetic may differ, e.g. FMA contraction).
//
// The user's side (gradient and loss) is computed on the host from a copy of x, as a user's model would,
// so that both runs see the same gradients whenever their parameters agree. Worker 1's gradient holds a NaN
// at step 5, so every space's `any` (the non-finite check) is exercised too.
//
// An adapter tells the harness how the space under test holds user buffers:
//   struct adapter {
//     using buffer = ...;                                       // e.g. Kokkos::View<float*>
//     buffer make(std::size_t n) const;
//     void upload(buffer&, const std::vector<float>&) const;
//     std::vector<float> download(const buffer&) const;
//     decltype(auto) param(buffer&) const;                      // what opt.step receives (the buffer or a
//     view)
//   };

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tether/tether.hpp"

namespace exec_test {

// --- step cases ------------------------------------------------------------------------------------------
struct sgd_case {
  using step = tether::step::sgd;
  static constexpr const char* name = "sgd";
  static step::options options() { return {}; }
};
struct momentum_case {
  using step = tether::step::momentum;
  static constexpr const char* name = "momentum";
  static step::options options() { return {.momentum = 0.9f, .nesterov = false}; }
};
struct nesterov_case {
  using step = tether::step::momentum;
  static constexpr const char* name = "nesterov";
  static step::options options() { return {.momentum = 0.8f, .nesterov = true}; }
};
struct adagrad_case {
  using step = tether::step::adagrad;
  static constexpr const char* name = "adagrad";
  static step::options options() { return {.eps = 1e-6f, .initial_accumulator = 0.1f}; }
};
struct adam_case {
  using step = tether::step::adam;
  static constexpr const char* name = "adam";
  static step::options options() { return {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-6f}; }
};

// --- pull cases ------------------------------------------------------------------------------------------
struct none_case {
  using pull = tether::pull::none;
  static constexpr const char* name = "none";
  static constexpr int group_size = 0;
  static pull::options options() { return {}; }
};
struct leader_case {
  using pull = tether::pull::leader;
  static constexpr const char* name = "leader";
  static constexpr int group_size = 0;
  static pull::options options() { return {.period = 3, .strength = 0.3f, .jump = 0.2f, .score_window = 2}; }
};
struct group_leader_case {
  using pull = tether::pull::group_leader;
  static constexpr const char* name = "group_leader";
  static constexpr int group_size = 2;
  static pull::options options() {
    return {.period = 2,
            .strength = 0.2f,
            .global_period = 4,
            .global_strength = 0.3f,
            .jump = 0.1f,
            .global_jump = 0.2f,
            .score_window = 2};
  }
};
struct elastic_case {
  using pull = tether::pull::elastic;
  static constexpr const char* name = "elastic";
  static constexpr int group_size = 0;
  static pull::options options() { return {.period = 3, .beta = 0.9f, .alpha = 0.0f}; }
};
struct anchor_case {
  using pull = tether::pull::anchor;
  static constexpr const char* name = "anchor";
  static constexpr int group_size = 0;
  static pull::options options() { return {.period = 3, .alpha = 0.3f, .momentum = 0.5f}; }
};
struct average_case {
  using pull = tether::pull::average;
  static constexpr const char* name = "average";
  static constexpr int group_size = 0;
  static pull::options options() { return {.period = 3, .warmup = 2}; }
};

template <class S, class P>
struct combo {
  using step_case = S;
  using pull_case = P;
};

template <class... T>
struct type_list {};

template <class S, class... P>
using row = std::tuple<combo<S, P>...>;

template <class Steps, class Pulls>
struct product;
template <class... S, class... P>
struct product<type_list<S...>, type_list<P...>> {
  using type = decltype(std::tuple_cat(std::declval<row<S, P...>>()...));
};

/// Every step x pull combination (5 x 6).
using all_combos = product<
    type_list<sgd_case, momentum_case, nesterov_case, adagrad_case, adam_case>,
    type_list<none_case, leader_case, group_leader_case, elastic_case, anchor_case, average_case>>::type;

/// Sizes: empty, one element, and sizes that are no multiple of any vector width.
inline constexpr std::size_t sizes[] = {0, 1, 7, 1023, 4099};

inline constexpr int workers = 4;
inline constexpr int steps = 10;
inline constexpr int nan_worker = 1;
inline constexpr int nan_step = 5;

// --- the user's side -------------------------------------------------------------------------------------
inline float hash_unit(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return static_cast<float>(static_cast<double>(k >> 11) * 0x1.0p-53) - 0.5f;  // [-0.5, 0.5)
}

inline std::vector<float> initial_x(std::size_t n, int w) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = 2.0f * hash_unit(i * 8 + static_cast<std::uint64_t>(w) + 1);
  return x;
}

/// Gradient of sum_i a_i/2 (x_i - c_i)^2 plus deterministic noise per (worker, step, i); returns the loss.
inline double user_gradient(const std::vector<float>& x, std::vector<float>& g, int w, int step) {
  double loss = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float a = 1.0f + 0.25f * static_cast<float>(i % 5);
    const float c = hash_unit(i * 131 + 7);
    const float noise =
        0.2f *
        hash_unit((static_cast<std::uint64_t>(step) * 16 + static_cast<std::uint64_t>(w)) * 1000003ULL + i);
    const float d = x[i] - c;
    g[i] = a * d + noise;
    loss += 0.5 * static_cast<double>(a) * static_cast<double>(d) * static_cast<double>(d);
  }
  if (w == nan_worker && step == nan_step && !g.empty()) g.back() = std::nanf("");
  return loss / static_cast<double>(x.empty() ? 1 : x.size()) + 0.01 * w;
}

/// What a run leaves: every worker's final parameters and counters.
struct outcome {
  std::vector<std::vector<float>> x;
  std::vector<tether::worker_stats> stats;
};

/// The reference: exec::serial on std::vector buffers.
struct host_adapter {
  using buffer = std::vector<float>;
  buffer make(std::size_t n) const { return buffer(n); }
  void upload(buffer& b, const std::vector<float>& v) const { b = v; }
  std::vector<float> download(const buffer& b) const { return b; }
  buffer& param(buffer& b) const { return b; }
};

/// A communicator handle that forwards a team worker's host collectives only (an MPI-like communicator
/// without device overloads): device buffers must then be staged through host memory.
class host_only_comm {
 public:
  explicit host_only_comm(tether::team::worker& w) : w_(&w) {
    if (&w.group() != &w) group_ = std::make_unique<host_only_comm>(w.group());
  }
  [[nodiscard]] int rank() const noexcept { return w_->rank(); }
  [[nodiscard]] int size() const noexcept { return w_->size(); }
  void barrier() { w_->barrier(); }
  template <class T>
  void allreduce_sum(std::span<T> d) {
    w_->allreduce_sum(d);
  }
  template <class T>
  [[nodiscard]] tether::request iallreduce_sum(std::span<const T> s, std::span<T> r) {
    return w_->iallreduce_sum(s, r);
  }
  template <class T>
  void broadcast(std::span<T> d, int root) {
    w_->broadcast(d, root);
  }
  [[nodiscard]] tether::election min_loc(double s) { return w_->min_loc(s); }
  [[nodiscard]] host_only_comm& group() noexcept { return group_ ? *group_ : *this; }
  [[nodiscard]] const tether::comm_counters& counters() const noexcept { return w_->counters(); }

 private:
  tether::team::worker* w_;
  std::unique_ptr<host_only_comm> group_;
};

/// Wraps each team worker into the communicator handle the optimizer receives.
struct team_handle {
  template <class F>
  static void with(tether::team::worker& w, F&& f) {
    f(w);
  }
};
struct host_only_handle {
  template <class F>
  static void with(tether::team::worker& w, F&& f) {
    host_only_comm c(w);
    f(c);
  }
};

/// Runs `steps` steps of the combination on a 4-worker team with execution space `exec`.
template <class Combo, class Exec, class Adapter, class Handle = team_handle>
outcome run(const Exec& exec, const Adapter& ad, std::size_t n, Handle = {}) {
  using S = typename Combo::step_case;
  using P = typename Combo::pull_case;
  outcome out;
  out.x.resize(workers);
  out.stats.resize(workers);
  tether::team team(workers, {.group_size = P::group_size});
  team.run([&](tether::team::worker& w) {
    Handle::with(w, [&](auto& comm) {
      using comm_t = std::remove_cvref_t<decltype(comm)>;
      using opt_t = tether::optimizer<typename S::step, typename P::pull, comm_t, Exec, float>;
      typename opt_t::options o{};
      o.lr = 0.05;
      o.step = S::options();
      o.pull = P::options();
      opt_t opt(comm, n, o, exec);
      auto xb = ad.make(n);
      auto gb = ad.make(n);
      std::vector<float> x = initial_x(n, w.rank());
      std::vector<float> g(n);
      ad.upload(xb, x);
      for (int t = 0; t < steps; ++t) {
        x = ad.download(xb);
        const double loss = user_gradient(x, g, w.rank(), t);
        ad.upload(gb, g);
        opt.step(ad.param(xb), ad.param(gb), loss);
      }
      opt.finish(ad.param(xb));
      out.x[static_cast<std::size_t>(w.rank())] = ad.download(xb);
      out.stats[static_cast<std::size_t>(w.rank())] = opt.stats();
    });
  });
  return out;
}

/// Distance in units in the last place between two finite floats (0 when equal).
inline std::uint32_t ulp_distance(float a, float b) {
  if (a == b) return 0;
  auto key = [](float f) {
    std::int32_t i = 0;
    std::memcpy(&i, &f, sizeof i);
    return i < 0 ? static_cast<std::int64_t>(INT32_MIN) - i : static_cast<std::int64_t>(i);
  };
  const std::int64_t d = key(a) - key(b);
  return static_cast<std::uint32_t>(d < 0 ? -d : d);
}

/// Checks that `got` matches `want` worker by worker, element by element, within `max_ulps`.
inline void require_same(const outcome& want, const outcome& got, std::uint32_t max_ulps) {
  REQUIRE(got.x.size() == want.x.size());
  for (std::size_t w = 0; w < want.x.size(); ++w) {
    CAPTURE(w);
    REQUIRE(got.x[w].size() == want.x[w].size());
    std::uint32_t worst = 0;
    std::size_t where = 0;
    for (std::size_t i = 0; i < want.x[w].size(); ++i) {
      REQUIRE(std::isfinite(got.x[w][i]));
      const std::uint32_t d = ulp_distance(want.x[w][i], got.x[w][i]);
      if (d > worst) {
        worst = d;
        where = i;
      }
    }
    CAPTURE(where, worst);
    REQUIRE(worst <= max_ulps);
    CHECK(got.stats[w].steps == want.stats[w].steps);
    CHECK(got.stats[w].rounds == want.stats[w].rounds);
    CHECK(got.stats[w].skipped_nonfinite == want.stats[w].skipped_nonfinite);
    CHECK(got.stats[w].leader == want.stats[w].leader);
    CHECK(got.stats[w].bytes_received == want.stats[w].bytes_received);
  }
}

/// The reference outcome of a combination (exec::serial, std::vector buffers).
template <class Combo>
outcome reference(std::size_t n) {
  return run<Combo>(tether::exec::serial{}, host_adapter{}, n);
}

/// The whole check for one combination: every size, `exec` against exec::serial.
template <class Combo, class Exec, class Adapter, class Handle = team_handle>
void check_equivalent(const Exec& exec, const Adapter& ad, std::uint32_t max_ulps, Handle h = {}) {
  INFO("step " << Combo::step_case::name << ", pull " << Combo::pull_case::name);
  for (const std::size_t n : sizes) {
    CAPTURE(n);
    const outcome want = reference<Combo>(n);
    // The reference itself moves: the NaN step was skipped on its worker and nowhere else.
    for (int w = 0; w < workers; ++w)
      REQUIRE(want.stats[static_cast<std::size_t>(w)].skipped_nonfinite ==
              (n > 0 && w == nan_worker ? 1U : 0U));
    const outcome got = run<Combo>(exec, ad, n, h);
    require_same(want, got, max_ulps);
  }
}

/// Ulps allowed between a space and exec::serial when both are compiled by the same host compiler: none,
/// unless the target has FMA and the compiler may contract a*b+c differently in a vectorised loop.
#if defined(__FMA__) || defined(__FP_FAST_FMA) || defined(__FP_FAST_FMAF)
inline constexpr std::uint32_t host_max_ulps = 64;
#else
inline constexpr std::uint32_t host_max_ulps = 0;
#endif

}  // namespace exec_test
