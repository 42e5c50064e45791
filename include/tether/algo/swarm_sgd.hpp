#pragma once
/// \file
/// algo::swarm_sgd: SwarmSGD (Nadiradze, Alistarh et al., NeurIPS 2021; docs/algorithms/swarm_sgd.md):
/// decentralized SGD in which every node takes H local steps (fixed, or geometric with mean H), then picks a
/// live neighbour of the communication graph uniformly at random and the two average their possibly quantized
/// models, `x_i, x_j <- (Q(x_i) + Q(x_j))/2`. Both ends update; there is no global matching and no barrier.
/// It runs on a communicator of the pairwise tier (the thread team, comm::mpi with <tether/comm/mpi/pairwise.hpp>).
///
///     tether::team team(8);
///     team.run([&](tether::team::worker& w) {
///       tether::algo::swarm_sgd<tether::team::worker> opt(
///           w, n, {.lr = 0.05, .topology = tether::comm::topology::ring(8), .local_steps = 4});
///       for (...) { ...gradient...; opt.step(x, g, loss); }
///       opt.finish(x);   // serves the others until every node has finished
///     });
///
/// The served side applies the average inside the link's serve callback, which runs only inside this node's own
/// step(), sync() or finish(): never while the program reads its parameters. A momentum step keeps each node's
/// velocity as it is at an exchange (only the parameters are averaged). In the non-blocking variant the
/// initiator keeps stepping while its exchange is in flight and, when the partner's model arrives, applies
/// `x <- (Q(x_s) + Q(x_j))/2 + (x - x_s)`: the pair average of the models that were sent (x_s: its own at the
/// start) plus the local progress it made meanwhile, which is thus kept once and not averaged away.
///
/// A model that is not finite is never averaged in: every message ends with a status byte (1: the model sent
/// is finite, 0: it is not, and the codec's bytes are zeros), so both ends of an exchange know both sides. A
/// node whose model is not finite takes its partner's (decoded) model, the partner keeps its own, and the
/// node counts it in stats().excluded_nonfinite; with a codec that decodes next to a reference (lattice) it
/// keeps its own, having no finite reference. When neither is finite both keep their own. One read of the
/// model per message.

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "tether/codec/codec.hpp"
#include "tether/codec/identity.hpp"
#include "tether/comm/pairwise.hpp"
#include "tether/comm/team/pairwise.hpp"
#include "tether/comm/topology.hpp"
#include "tether/core/checkpoint.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/config.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/fnv1a.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/core/options_description.hpp"
#include "tether/core/rng.hpp"
#include "tether/core/schedule.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/value_range.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"
#include "tether/pull/none.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Options of swarm_sgd, filled with designated initializers:
/// `{.lr = 0.05, .topology = comm::topology::ring(8), .local_steps = 4, .codec = codec::stochastic_uniform<>({.bits = 8})}`.
template <class Step, class Codec>
struct swarm_sgd_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {
      "lr", "step", "topology", "local_steps", "random_local_steps", "codec", "nonblocking", "replay", "seed",
      "timeout", "on_nonfinite", "check_gradient", "schedule"};
  double lr = 0.01;                   ///< base learning rate of the local steps
  typename Step::options step{};      ///< the step policy's options
  comm::topology topology{};          ///< the communication graph (its size must be the team's); empty: complete
  std::uint32_t local_steps = 1;      ///< H: local steps between exchanges (the mean H when random_local_steps)
  bool random_local_steps = false;    ///< draw each period's length from a geometric law of mean H
  Codec codec{};                      ///< how models are quantized on the wire (codec::identity: fp32 as it is)
  bool nonblocking = false;           ///< keep stepping while an exchange is in flight (the non-blocking variant)
  bool replay = false;                ///< seeded replay: exchanges in an order fixed by `seed` (bit-identical reruns)
  std::uint64_t seed = 1;             ///< partner choices, period lengths and the codec's stochastic rounding
  double timeout = 60.0;              ///< seconds a node waits for a partner before dropping it as lost
  nonfinite_policy on_nonfinite = nonfinite_policy::skip;  ///< a non-finite loss or gradient: skip or raise
  bool check_gradient = true;         ///< scan g for NaN/Inf (one extra read of g)
  /// Learning-rate schedule over this node's steps. Last: no member after it can throw while the options are
  /// built, which keeps GCC 12 from a false maybe-uninitialized warning on its std::function.
  tether::schedule schedule{};
};

/// What a SwarmSGD node did, on top of its worker_stats.
struct swarm_stats {
  std::uint64_t exchanges = 0;  ///< exchanges this node started that completed (crossings and swaps included)
  std::uint64_t served = 0;     ///< exchanges other nodes started with this one, answered
  std::uint64_t crossed = 0;    ///< exchanges met by the partner's own exchange with this node
  std::uint64_t lost = 0;       ///< exchanges lost (the partner was gone, refused or timed out)
  std::uint64_t steps_in_flight = 0;  ///< local steps taken while an exchange of this node was in flight (non-blocking)
  std::vector<int> lost_peers;  ///< neighbours dropped as lost, in the order they were dropped
  double seconds_gossip = 0.0;  ///< time in exchanges, serving and waiting (encode, decode and averages included)
};

namespace detail {

/// The pair average of a served node: x = (own + peer)/2, own = Q(x) (x itself for the identity codec).
template <class T>
struct pair_average {
  T* x;
  const T* own;
  const T* peer;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { x[i] = (own[i] + peer[i]) * T(0.5); }
};

/// The initiator's completion: x = (Q(x_s) + Q(x_j))/2 + (x - x_s), x_s the model it sent (its snapshot). When
/// nothing changed x since the snapshot the correction is +0 and both ends hold the same average.
template <class T>
struct pair_average_since {
  T* x;
  const T* snap;
  const T* own;
  const T* peer;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    x[i] = (own[i] + peer[i]) * T(0.5) + (x[i] - snap[i]);
  }
};

template <class C>
inline constexpr bool is_identity_codec = false;
template <class T>
inline constexpr bool is_identity_codec<codec::identity<T>> = true;

}  // namespace detail

/// SwarmSGD on one node (see the file comment). The optimizer shape: `step(x, g, loss)`, `finish(x)`, `stats()`,
/// `size()`; and `sync(x)`, a barrier that keeps serving (to evaluate the models while they hold still).
template <class Comm, class Step = step::sgd, class Codec = codec::identity<float>, class Exec = exec::serial,
          class T = float>
class swarm_sgd {
  static_assert(std::is_floating_point_v<T>, "tether::algo::swarm_sgd: T must be float or double");
  static_assert(step_policy<Step, T>,
                "tether::algo::swarm_sgd: Step does not satisfy tether::step_policy (see docs/concepts.md#step-policy)");
  static_assert(communicator<Comm>, "tether::algo::swarm_sgd: Comm does not satisfy tether::communicator (see "
                                    "docs/concepts.md#communicator)");
  static_assert(pairwise_communicator<Comm>,
                "tether::algo::swarm_sgd: Comm has no pairwise link (open_pairs): SwarmSGD needs the pairwise tier "
                "(the thread team; comm::mpi with <tether/comm/mpi/pairwise.hpp>); see "
                "docs/concepts.md#pairwise-tier");
  static_assert(execution_space<Exec>, "tether::algo::swarm_sgd: Exec does not satisfy tether::execution_space "
                                       "(see docs/concepts.md#execution-space)");
  static_assert(mem::accessible_v<typename Exec::memory_space, mem::host>,
                "tether::algo::swarm_sgd: messages travel through host memory, so the execution space must reach "
                "host memory (a device space is not supported yet: see docs/algorithms/swarm_sgd.md#limits)");
  static_assert(codec::message_codec<Codec, Exec>,
                "tether::algo::swarm_sgd: Codec does not satisfy tether::codec::message_codec on Exec (see "
                "docs/codecs.md#your-own-codec)");
  static_assert(std::is_same_v<typename Codec::value_type, T>,
                "tether::algo::swarm_sgd: the codec's value_type must be the optimizer's T");

 public:
  using value_type = T;
  using step_type = Step;
  using codec_type = Codec;
  using comm_type = Comm;
  using exec_type = Exec;
  using memory_space = typename Exec::memory_space;
  using options = swarm_sgd_options<Step, Codec>;
  /// The communicator's pairwise link.
  using link_type = std::remove_cvref_t<decltype(std::declval<Comm&>().open_pairs(
      std::size_t{}, std::declval<const comm::pair_options&>()))>;
  static_assert(comm::gossip_link<link_type>,
                "tether::algo::swarm_sgd: the communicator's pairwise link lacks start/test/wait, swap, sync or "
                "finish (see docs/algorithms/swarm_sgd.md#the-pairwise-link)");

  /// A node of the swarm on worker `comm` with `n` parameters. Collective (opens the pairwise link; on MPI also
  /// checks that every rank has the same n, options, graph and message size). Validates every option.
  swarm_sgd(Comm& comm, std::size_t n, const options& o = {}, Exec exec = {})
      : comm_(&comm), exec_(std::move(exec)), n_(n), opt_(o), link_(open(comm, n, opt_)) {
    rank_ = comm.rank();
    live_.assign(opt_.topology.neighbours(rank_).begin(), opt_.topology.neighbours(rank_).end());
    dead_.assign(static_cast<std::size_t>(comm.size()), 0);
    step_.opt = opt_.step;
    for (std::size_t k = 0; k != Step::state_size; ++k)
      state_[k] = exec_.template allocate<T>(n, step_.template initial<T>(k));
    snap_ = exec_.template allocate<T>(n, T(0));
    own_ = exec_.template allocate<T>(n, T(0));
    peer_ = exec_.template allocate<T>(n, T(0));
    send_.assign(msg_bytes_, std::byte{0});
    recv_.assign(msg_bytes_, std::byte{0});
    gen_ = rng(derive_seed(opt_.seed, static_cast<std::uint64_t>(rank_), 0x73776172ULL));
    schedule_gen_ = rng(derive_seed(opt_.seed, 0x7265706cULL));
    period_ = next_period(opt_.replay ? schedule_gen_ : gen_);
  }

  swarm_sgd(const swarm_sgd&) = delete;
  swarm_sgd& operator=(const swarm_sgd&) = delete;
  swarm_sgd(swarm_sgd&&) = delete;
  swarm_sgd& operator=(swarm_sgd&&) = delete;
  ~swarm_sgd() = default;  // the link closes: the others see this node as lost if it had not finished

  /// One local step of this node on its parameters `x` with gradient `g` at x and minibatch loss `loss`; every
  /// H-th step it exchanges with a random live neighbour. At every call it answers the exchanges others started.
  template <buffer X, buffer G>
  void step(X&& x, G&& g, double loss) {
    auto xv = as_view(x);
    auto gv = as_view(g);
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(xv)::value_type>, T> &&
                      std::is_same_v<std::remove_const_t<typename decltype(gv)::value_type>, T>,
                  "tether::algo::swarm_sgd::step: x and g must hold the optimizer's value type");
    static_assert(!std::is_const_v<typename decltype(xv)::value_type>, "tether::algo::swarm_sgd::step: x must be mutable");
    static_assert(mem::accessible_v<memory_space, buffer_space_t<X>> && mem::accessible_v<memory_space, buffer_space_t<G>>,
                  "tether::algo::swarm_sgd::step: x and g must be accessible from the execution space (see docs/exec.md)");
    tether::detail::require(!finished_, "swarm_sgd::step: called after finish()");
    tether::detail::require(xv.size() == n_, "swarm_sgd::step: x has ", xv.size(), " elements, expected n = ", n_);
    tether::detail::require(gv.size() == n_, "swarm_sgd::step: g has ", gv.size(), " elements, expected n = ", n_);
    const view<T, memory_space> xs{xv.data(), xv.size()};

    bool finite = std::isfinite(loss);
    if (finite && opt_.check_gradient) finite = !exec_.any(n_, nonfinite_element<T>{gv.data()});
    if (!finite) {
      if (opt_.on_nonfinite == nonfinite_policy::raise)
        throw runtime_error(tether::detail::concat("tether: swarm_sgd::step: non-finite ",
                                                   std::isfinite(loss) ? "gradient" : "loss", " on node ", rank_,
                                                   " at step ", stats_.steps, " (loss = ", loss, ")"));
      ++stats_.skipped_nonfinite;
    }
    double lr = 0.0;
    if (finite) {
      lr = opt_.schedule(stats_.steps, opt_.lr);
      tether::detail::require(std::isfinite(lr) && lr >= 0.0, "swarm_sgd::step: the schedule gave lr = ", lr,
                              " at step ", stats_.steps);
      tether::detail::require(tether::detail::fits_value_type<T>(lr), "swarm_sgd::step: the schedule gave lr = ", lr,
                              " at step ", stats_.steps, ", which does not fit the value type ",
                              tether::detail::value_type_name<T>(), " (at most ", std::numeric_limits<T>::max(), ")");
    }

    const auto t0 = clock::now();
    if (finite) {
      // The step's scalars first: a step that refuses them (Adam's step size out of T's range) changes nothing.
      const auto sc = step_.prepare(applied_ + 1, static_cast<T>(lr));
      ++applied_;
      fused_update<Step, pull::none, T, true, false> k{xs.data(), gv.data(), {}, {}, sc, {}};
      for (std::size_t j = 0; j != Step::state_size; ++j) k.s[j] = state_[j].data();
      exec_.parallel_for(n_, k);
    }
    ++stats_.steps;
    ++since_;
    if (link_.in_flight()) ++swarm_.steps_in_flight;
    const auto t1 = clock::now();

    gossip(xs);

    const auto t2 = clock::now();
    stats_.seconds_compute += seconds(t0, t1);
    stats_.seconds_comm += seconds(t1, t2);
    swarm_.seconds_gossip += seconds(t1, t2);
    refresh_stats();
  }

  /// A barrier that keeps serving: completes this node's exchange in flight, then waits until every live node has
  /// called sync() as often (or finished, or been silent for the timeout), answering exchanges meanwhile. Nobody
  /// exchanges between the last node's arrival and its next step: the models hold still (evaluate them then).
  template <buffer X>
  void sync(X&& x) {
    const auto xs = host_view(x, "sync");
    const auto t0 = clock::now();
    settle(xs);
    link_.sync(server(xs));
    swarm_.seconds_gossip += seconds(t0, clock::now());
    refresh_stats();
  }

  /// Completes this node's exchange in flight, starts no more, and keeps answering the others until every live
  /// node has finished (or been silent for the timeout). Call it once after the last step; later calls do nothing.
  template <buffer X>
  void finish(X&& x) {
    if (finished_) return;
    const auto xs = host_view(x, "finish");
    const auto t0 = clock::now();
    settle(xs);
    link_.finish(server(xs));
    finished_ = true;
    swarm_.seconds_gossip += seconds(t0, clock::now());
    refresh_stats();
  }

  /// Number of parameters.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// This node's counters (steps, exchanges as rounds, bytes, time in the local steps and in gossip).
  [[nodiscard]] const worker_stats& stats() const noexcept { return stats_; }
  /// SwarmSGD's own counters: exchanges, lost partners.
  [[nodiscard]] const swarm_stats& swarm() const noexcept { return swarm_; }
  /// The options in force.
  [[nodiscard]] const options& opts() const noexcept { return opt_; }
  /// The neighbours this node still exchanges with (its graph neighbours less the lost ones).
  [[nodiscard]] std::span<const int> live_neighbours() const noexcept { return live_; }
  /// Bytes of one message each way: codec.encoded_size(n) and the status byte.
  [[nodiscard]] std::size_t message_bytes() const noexcept { return msg_bytes_; }
  /// Step state buffer k (a momentum step's velocity), in the execution space's memory.
  [[nodiscard]] view<T, memory_space> state(std::size_t k) {
    tether::detail::require(k < Step::state_size, "swarm_sgd::state: k = ", k, " but the step has ",
                            Step::state_size, " state buffers");
    return {state_[k].data(), state_[k].size()};
  }
  /// Steps whose gradient was applied.
  [[nodiscard]] std::uint64_t applied_steps() const noexcept { return applied_; }

  /// Writes this node's complete state and its parameters `x` to a checkpoint file at `path`
  /// (core/checkpoint.hpp: written to `path.tmp`, flushed, renamed): the step state, the counters, the
  /// schedule's position, the period (H) position, the live and lost neighbours and every random stream
  /// (partner choice, random H, the replay schedule, the codec's rounding). Only between exchanges: while an
  /// exchange of this node is in flight (the non-blocking variant) it throws tether::error and writes
  /// nothing; call sync(x) first, which completes it.
  template <buffer X>
  void save(const std::string& path, X&& x) const {
    auto xv = as_view(x);
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(xv)::value_type>, T>,
                  "tether::algo::swarm_sgd::save: x must hold the optimizer's value type");
    static_assert(std::is_same_v<memory_space, mem::host>,
                  "tether::algo::swarm_sgd::save: checkpoints support host memory only");
    tether::detail::require(xv.size() == n_, "swarm_sgd::save: x has ", xv.size(),
                            " elements, expected n = ", n_);
    tether::detail::require(!link_.in_flight(), "swarm_sgd::save(\"", path, "\"): node ", rank_,
                            " has an exchange in flight (non-blocking variant); call sync(x) first, which "
                            "completes it");
    checkpoint_writer w;
    write_identity(w);
    w.put<std::uint64_t>(applied_);
    w.put<stats_record>(stats_record::of(stats_, swarm_));
    w.put<rng>(gen_);
    w.put<rng>(schedule_gen_);
    w.put<std::uint32_t>(period_);
    w.put<std::uint32_t>(since_);
    w.put<std::uint64_t>(sent_);
    w.put_array<int>(std::span<const int>(live_));
    w.put_array<char>(std::span<const char>(dead_));
    w.put_array<int>(std::span<const int>(swarm_.lost_peers));
    for (const auto& b : state_) w.put_array<T>(std::span<const T>(b.data(), b.size()));
    w.put_array<T>(std::span<const T>(xv.data(), xv.size()));
    write_checkpoint_file(path, w.bytes());
  }

  /// Restores the state that save() wrote, and x. Every field is read and checked first (the file, its
  /// version and checksum, the algorithm, the options, the topology, n, the rank and the node count): on any
  /// damage or mismatch tether::error names the file and what is wrong, and nothing here or in x has changed.
  /// In replay mode a run resumed from the checkpoints of one step is bit-identical to the run that was not
  /// interrupted; under comm::mpi the ranks then also check, collectively, that their checkpoints hold the
  /// same step.
  template <buffer X>
  void load(const std::string& path, X&& x) {
    const auto xs = host_view(x, "load");
    static_assert(std::is_same_v<memory_space, mem::host>,
                  "tether::algo::swarm_sgd::load: checkpoints support host memory only");
    tether::detail::require(!finished_, "swarm_sgd::load(\"", path, "\"): called after finish()");
    tether::detail::require(!link_.in_flight(), "swarm_sgd::load(\"", path, "\"): node ", rank_,
                            " has an exchange in flight (non-blocking variant); call sync(x) first");
    std::uint64_t applied = 0;
    stats_record rec{};
    rng gen{0}, schedule_gen{0};
    std::uint32_t period = 1, since = 0;
    std::uint64_t sent = 0;
    std::vector<int> live, lost;
    std::vector<char> dead;
    std::array<std::vector<T>, Step::state_size> state;
    std::vector<T> xl(n_);
    std::exception_ptr failure;
    try {
      const auto bytes = read_checkpoint_file(path);
      checkpoint_reader r(bytes, path);
      read_identity(r);
      applied = r.get<std::uint64_t>("the applied steps");
      rec = r.get<stats_record>("the counters");
      gen = r.get<rng>("the random stream of partners and periods");
      schedule_gen = r.get<rng>("the random stream of the replay schedule");
      period = r.get<std::uint32_t>("the period length");
      since = r.get<std::uint32_t>("the steps since the last exchange");
      sent = r.get<std::uint64_t>("the messages sent");
      const auto p = static_cast<std::size_t>(comm_->size());
      live = r.get_vector<int>(p, "the live neighbours");
      dead = r.get_vector<char>(p, "the lost flags");
      lost = r.get_vector<int>(1u << 20, "the lost neighbours");
      for (auto& b : state) {
        b.resize(n_);
        r.get_array<T>(std::span<T>(b), "a step state buffer");
      }
      r.get_array<T>(std::span<T>(xl), "the parameters");
      r.expect_end();
      validate_neighbours(r, live, dead, period, since);
    } catch (const error&) {
      failure = std::current_exception();
    }
    // Replay mode: every node's step is a round boundary, so the ranks must resume from the same step. Across
    // processes they agree in one bounded collective (a rank that could not read its file holds all ones).
    if (opt_.replay)
      tether::detail::agree_on_checkpoint_step(*comm_, failure, rec.steps);
    else if (failure)
      std::rethrow_exception(failure);
    // Everything read and checked: commit.
    applied_ = applied;
    rec.to(stats_, swarm_);
    gen_ = gen;
    schedule_gen_ = schedule_gen;
    period_ = period;
    since_ = since;
    sent_ = sent;
    live_ = std::move(live);
    dead_ = std::move(dead);
    swarm_.lost_peers = std::move(lost);
    for (std::size_t k = 0; k != Step::state_size; ++k)
      std::copy(state[k].begin(), state[k].end(), state_[k].data());
    std::copy(xl.begin(), xl.end(), xs.data());
    // The link's and the communicator's counters go on from here: offsets so that stats() continues the saved
    // ones.
    const auto& c = link_.counters();
    exchanges_base_ = rec.exchanges - (c.done + c.swaps);
    served_base_ = rec.served - c.served;
    crossed_base_ = rec.crossed - c.crossed;
    counters_at_start_.bytes_sent = comm_->counters().bytes_sent - rec.bytes_sent;
    counters_at_start_.bytes_received = comm_->counters().bytes_received - rec.bytes_received;
    refresh_stats();
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  static link_type open(Comm& comm, std::size_t n, options& o) {
    tether::detail::require(std::isfinite(o.lr) && o.lr >= 0.0, "swarm_sgd: lr must be finite and >= 0, got lr = ", o.lr);
    tether::detail::require(tether::detail::fits_value_type<T>(o.lr), "swarm_sgd: lr must fit the value type ",
                            tether::detail::value_type_name<T>(), " (at most ", std::numeric_limits<T>::max(),
                            "), got lr = ", o.lr);
    tether::detail::require(o.local_steps >= 1, "swarm_sgd: local_steps (H) must be >= 1, got local_steps = ",
                            o.local_steps);
    tether::detail::require(std::isfinite(o.timeout) && o.timeout > 0.0,
                            "swarm_sgd: timeout must be a finite number of seconds > 0, got timeout = ", o.timeout);
    tether::detail::require(n >= 1, "swarm_sgd: n must be >= 1, got n = ", n);
    o.schedule.validate();
    Step s;
    s.opt = o.step;
    s.validate();
    if (o.topology.empty()) o.topology = comm::topology::complete(comm.size());
    tether::detail::require(o.topology.size() == comm.size(), "swarm_sgd: the topology (", o.topology.name(),
                            ") has ", o.topology.size(), " nodes, the communicator has ", comm.size(), " workers");
    const std::size_t bytes = o.codec.encoded_size(n);
    if constexpr (requires(std::span<const consistency_item> items) { comm.check_consistent(items); }) {
      const std::array<consistency_item, 4> items{{{n, "the parameter count n"},
                                                   options_item(fingerprint(o), o, "the swarm_sgd options"),
                                                   {o.topology.fingerprint(), "the topology"},
                                                   {bytes, "the codec's message size (codec, bits, block)"}}};
      comm.check_consistent(std::span<const consistency_item>(items));
    }
    return comm.open_pairs(bytes + 1, comm::pair_options{.timeout = o.timeout});  // + the status byte
  }

  static std::uint64_t fingerprint(const options& o) {
    std::uint64_t h = options_fingerprint(o.step);
    for (std::uint64_t v : {std::bit_cast<std::uint64_t>(o.lr), std::uint64_t{o.local_steps},
                            std::uint64_t{o.random_local_steps}, std::uint64_t{o.nonblocking}, std::uint64_t{o.replay},
                            o.seed, std::bit_cast<std::uint64_t>(o.timeout), static_cast<std::uint64_t>(o.on_nonfinite),
                            std::uint64_t{o.check_gradient}}) {
      std::uint64_t s = h ^ v;
      h = splitmix64(s);
    }
    return h;
  }

  template <buffer X>
  view<T, memory_space> host_view(X&& x, const char* what) {
    auto xv = as_view(x);
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(xv)::value_type>, T> &&
                      !std::is_const_v<typename decltype(xv)::value_type>,
                  "tether::algo::swarm_sgd: x must be a mutable buffer of the optimizer's value type");
    tether::detail::require(xv.size() == n_, "swarm_sgd::", what, ": x has ", xv.size(), " elements, expected n = ", n_);
    return {xv.data(), xv.size()};
  }

  /// The length of the next period: H, or a geometric draw of mean H (support 1, 2, ...).
  std::uint32_t next_period(rng& r) const {
    const std::uint32_t h = opt_.local_steps;
    if (!opt_.random_local_steps || h == 1) return h;
    const double q = 1.0 - 1.0 / static_cast<double>(h);  // P(period > k) = q^k
    double u = r.uniform();
    while (u <= 0.0) u = r.uniform();
    const double k = std::floor(std::log(u) / std::log(q));
    return static_cast<std::uint32_t>(std::min(1.0 + k, 1e9));
  }

  void refresh_stats() {
    const auto& c = link_.counters();
    swarm_.exchanges = exchanges_base_ + c.done + c.swaps;
    swarm_.served = served_base_ + c.served;
    swarm_.crossed = crossed_base_ + c.crossed;
    stats_.rounds = swarm_.exchanges + swarm_.served;
    // This optimizer's own traffic, not the communicator's running total (which counts earlier optimizers').
    stats_.bytes_sent = comm_->counters().bytes_sent - counters_at_start_.bytes_sent;
    stats_.bytes_received = comm_->counters().bytes_received - counters_at_start_.bytes_received;
  }

  // --- checkpoints ----------------------------------------------------------------------------------------

  /// The counters as a trivially copyable record (worker_stats and swarm_stats may grow fields).
  struct stats_record {
    std::uint64_t steps, skipped_nonfinite, excluded_nonfinite, bytes_sent, bytes_received;
    std::uint64_t exchanges, served, crossed, lost, steps_in_flight;
    double seconds_compute, seconds_comm, seconds_gossip;
    static stats_record of(const worker_stats& w, const swarm_stats& s) {
      return {w.steps,           w.skipped_nonfinite, w.excluded_nonfinite,
              w.bytes_sent,      w.bytes_received,    s.exchanges,
              s.served,          s.crossed,           s.lost,
              s.steps_in_flight, w.seconds_compute,   w.seconds_comm,
              s.seconds_gossip};
    }
    void to(worker_stats& w, swarm_stats& s) const {
      w.steps = steps;
      w.skipped_nonfinite = skipped_nonfinite;
      w.excluded_nonfinite = excluded_nonfinite;
      w.seconds_compute = seconds_compute;
      w.seconds_comm = seconds_comm;
      s.lost = lost;
      s.steps_in_flight = steps_in_flight;
      s.seconds_gossip = seconds_gossip;
    }
  };

  /// What a checkpoint must match: the algorithm (swarm_sgd with these step, codec, execution space and value
  /// types), the options, n, the rank, the node count, the topology and the codec's message size.
  static std::uint64_t algorithm_fingerprint() {
    std::uint64_t h = tether::detail::fnv1a_offset;
    for (const char* name : {"tether::algo::swarm_sgd", typeid(Step).name(), typeid(Codec).name(),
                             typeid(Exec).name(), typeid(T).name()})
      h = tether::detail::fnv1a(name, h);
    return h;
  }
  void write_identity(checkpoint_writer& w) const {
    w.put<std::uint64_t>(algorithm_fingerprint());
    w.put<std::uint64_t>(fingerprint(opt_));
    w.put<std::uint64_t>(n_);
    w.put<std::int32_t>(rank_);
    w.put<std::int32_t>(comm_->size());
    w.put<std::uint64_t>(opt_.topology.fingerprint());
    w.put<std::uint64_t>(msg_bytes_);
  }
  void read_identity(checkpoint_reader& r) const {
    if (r.get<std::uint64_t>("the algorithm") != algorithm_fingerprint())
      throw error(tether::detail::concat("tether: checkpoint ", r.path(),
                                         ": written by another algorithm than "
                                         "this swarm_sgd (its step, codec, execution space and value type)"));
    if (r.get<std::uint64_t>("the options") != fingerprint(opt_))
      throw error(tether::detail::concat("tether: checkpoint ", r.path(),
                                         ": written with other options than "
                                         "this swarm_sgd's"));
    r.expect_equal<std::uint64_t>(r.get<std::uint64_t>("n"), n_, "n");
    r.expect_equal<std::int32_t>(r.get<std::int32_t>("the rank"), rank_, "rank");
    r.expect_equal<std::int32_t>(r.get<std::int32_t>("the node count"), comm_->size(), "nodes");
    if (r.get<std::uint64_t>("the topology") != opt_.topology.fingerprint())
      throw error(tether::detail::concat("tether: checkpoint ", r.path(),
                                         ": written on another topology than "
                                         "this swarm_sgd's (",
                                         opt_.topology.name(), ")"));
    r.expect_equal<std::uint64_t>(r.get<std::uint64_t>("the message size"), msg_bytes_, "message bytes");
  }
  /// The neighbour lists of a checkpoint must describe this node's graph: live ones are graph neighbours not
  /// flagged lost; the period position is in range.
  void validate_neighbours(const checkpoint_reader& r, const std::vector<int>& live,
                           const std::vector<char>& dead, std::uint32_t period, std::uint32_t since) const {
    const auto nb = opt_.topology.neighbours(rank_);
    bool ok = dead.size() == static_cast<std::size_t>(comm_->size()) && period >= 1;
    for (const int q : live)
      ok = ok && q >= 0 && q < comm_->size() && dead[static_cast<std::size_t>(q)] == 0 &&
           std::find(nb.begin(), nb.end(), q) != nb.end();
    if (!ok || since > period)
      throw error(tether::detail::concat("tether: checkpoint ", r.path(), ": its neighbour lists or period (",
                                         since, " of ", period, " steps) do not fit node ", rank_, " of ",
                                         opt_.topology.name()));
  }

  // --- the exchange ---------------------------------------------------------------------------------------

  /// What a step does after its local update: progress the exchange in flight or answer the others; start the
  /// next exchange at the end of a period.
  void gossip(view<T, memory_space> x) {
    if (opt_.replay) {
      if (since_ >= period_) {
        replay_round(x);
        since_ = 0;
        period_ = next_period(schedule_gen_);
      }
      return;
    }
    auto serve = server(x);
    if (link_.in_flight()) {
      if (auto st = link_.test(serve)) complete(x, *st);
    } else {
      link_.poll(serve);
    }
    if (since_ < period_) return;
    // The next exchange is due. In the non-blocking variant the previous one may still be in flight: it had a
    // whole period to complete while the node kept stepping; wait for it now, so that no exchange is more than one
    // period stale (the bounded delay SwarmSGD's analysis of the non-blocking variant assumes).
    if (link_.in_flight()) complete(x, link_.wait(serve));
    since_ = 0;
    period_ = next_period(gen_);
    if (live_.empty()) return;  // every neighbour lost: local steps only
    peer_rank_ = live_[static_cast<std::size_t>(gen_.below(live_.size()))];
    exec_.parallel_for(n_, kernels::copy<T>{x.data(), snap_.data()});
    snap_finite_ = finite(snap_.data());
    write_message(snap_view(), send_, ++sent_, snap_finite_);
    if (opt_.nonblocking) {
      if (auto st = link_.start(peer_rank_, send_, recv_)) complete(x, *st);
    } else {
      complete(x, link_.exchange(peer_rank_, send_, recv_, serve));
    }
  }

  /// Completes an exchange in flight before sync/finish.
  void settle(view<T, memory_space> x) {
    if (link_.in_flight()) complete(x, link_.wait(server(x)));
  }

  /// The initiator's side of a completed exchange with peer_rank_.
  void complete(view<T, memory_space> x, pair_status st) {
    if (st == pair_status::lost) {
      drop(peer_rank_);
      return;
    }
    const bool theirs = peer_finite(peer_rank_, recv_);
    if (!snap_finite_) {
      take_peer(x, peer_rank_, recv_, theirs);
      return;
    }
    if (!theirs) return;  // the partner's model is not finite: keep this one
    decode_from(peer_rank_, recv_, peer_.data(), snap_.data());
    const T* own = snap_.data();
    if constexpr (!detail::is_identity_codec<Codec>) {
      decode_own(send_, own_.data(), snap_.data());
      own = own_.data();
    }
    exec_.parallel_for(n_, detail::pair_average_since<T>{x.data(), snap_.data(), own, peer_.data()});
  }

  /// A node whose model is not finite at an exchange with `from`: it takes the partner's decoded model when
  /// that one is finite and the codec decodes without a reference, else keeps its own; counted either way.
  void take_peer(view<T, memory_space> x, int from, std::span<const std::byte> message, bool theirs) {
    ++stats_.excluded_nonfinite;
    if constexpr (!codec::reference_decoding<Codec, Exec>) {
      if (!theirs) return;
      decode_from(from, message, peer_.data(), nullptr);
      exec_.parallel_for(n_, kernels::copy<T>{peer_.data(), x.data()});
    }
  }

  /// The serve callback: answers a peer's exchange with this node's model and applies the pair average.
  auto server(view<T, memory_space> x) {
    return [this, x](int from, std::span<const std::byte> message, std::span<std::byte> reply) {
      // Decode the peer's message first: a bad one refuses the exchange with the model untouched.
      const bool theirs = peer_finite(from, message);
      const bool mine = finite(x.data());
      const bool decoded = theirs && (mine || !codec::reference_decoding<Codec, Exec>);
      if (decoded) decode_from(from, message, peer_.data(), x.data());
      tether::detail::require(reply.size() == msg_bytes_, "swarm_sgd: node ", rank_, ": peer ", from,
                              " expects a ", reply.size(), "-byte reply, this node's messages are ", msg_bytes_,
                              " bytes (a different codec or parameter count?)");
      write_message(view<const T, memory_space>{x.data(), n_}, reply, ++sent_, mine);
      if (!mine) {
        ++stats_.excluded_nonfinite;
        if (decoded) exec_.parallel_for(n_, kernels::copy<T>{peer_.data(), x.data()});  // it takes the peer's
        return;
      }
      if (!theirs) return;  // the peer's model is not finite: keep this one
      const T* own = x.data();
      if constexpr (!detail::is_identity_codec<Codec>) {
        decode_own(reply, own_.data(), x.data());
        own = own_.data();
      }
      exec_.parallel_for(n_, detail::pair_average<T>{x.data(), own, peer_.data()});
    };
  }

  /// Seeded replay: this step is a round boundary for every node; the round's exchanges (each node, in an order
  /// drawn from the seed, with a uniform neighbour drawn from the seed) are agreed swaps done in that order.
  void replay_round(view<T, memory_space> x) {
    const int p = comm_->size();
    std::vector<int> order(static_cast<std::size_t>(p));
    for (int i = 0; i < p; ++i) order[static_cast<std::size_t>(i)] = i;
    for (int i = p - 1; i > 0; --i)
      std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(schedule_gen_.below(std::uint64_t(i) + 1))]);
    for (int a : order) {
      const auto nb = opt_.topology.neighbours(a);
      if (nb.empty()) continue;
      const int b = nb[static_cast<std::size_t>(schedule_gen_.below(nb.size()))];
      if (a != rank_ && b != rank_) continue;
      const int partner = a == rank_ ? b : a;
      if (dead_[static_cast<std::size_t>(partner)]) continue;
      const bool mine = finite(x.data());
      write_message(view<const T, memory_space>{x.data(), n_}, send_, ++sent_, mine);
      const pair_status st = link_.swap(partner, send_, recv_);
      if (st == pair_status::lost) {
        drop(partner);
        continue;
      }
      const bool theirs = peer_finite(partner, recv_);
      if (!mine) {
        take_peer(x, partner, recv_, theirs);
        continue;
      }
      if (!theirs) continue;
      decode_from(partner, recv_, peer_.data(), x.data());
      const T* own = x.data();
      if constexpr (!detail::is_identity_codec<Codec>) {
        decode_own(send_, own_.data(), x.data());
        own = own_.data();
      }
      exec_.parallel_for(n_, detail::pair_average<T>{x.data(), own, peer_.data()});
    }
  }

  void drop(int peer) {
    ++swarm_.lost;
    if (dead_[static_cast<std::size_t>(peer)]) return;
    dead_[static_cast<std::size_t>(peer)] = 1;
    std::erase(live_, peer);
    swarm_.lost_peers.push_back(peer);
  }

  view<const T, memory_space> snap_view() const { return {snap_.data(), n_}; }

  std::uint64_t codec_seed(std::uint64_t count) const {
    return derive_seed(opt_.seed, static_cast<std::uint64_t>(rank_), count, 0x636f6465ULL);
  }

  /// True when no value of the model at p is NaN or infinite (one read).
  bool finite(const T* p) const { return !exec_.any(n_, nonfinite_element<T>{p}); }

  /// A message: the codec's encoding of x and the status byte 1, or (x not finite) zeros and status byte 0.
  void write_message(view<const T, memory_space> x, std::span<std::byte> out, std::uint64_t count,
                     bool x_finite) {
    const std::span<std::byte> body = out.first(out.size() - 1);
    out.back() = std::byte{x_finite ? std::uint8_t{1} : std::uint8_t{0}};
    if (!x_finite) {
      std::fill(body.begin(), body.end(), std::byte{0});
      return;
    }
    const std::size_t written = opt_.codec.encode(
        exec_, x, view<std::byte, memory_space>{body.data(), body.size()}, codec_seed(count));
    tether::detail::require(written == body.size(), "swarm_sgd: the codec wrote ", written,
                            " bytes, its encoded_size is ", body.size());
  }

  /// The status byte of a peer's message: true when the model it carries is finite. Any value but 0 or 1 (or
  /// no byte at all) is a damaged message: a tether::runtime_error naming the peer, with the model untouched.
  bool peer_finite(int from, std::span<const std::byte> message) const {
    const unsigned b = message.empty() ? 2u : std::to_integer<unsigned>(message.back());
    if (b > 1)
      throw runtime_error(tether::detail::concat("tether: swarm_sgd: node ", rank_, ": the message of peer ",
                                                 from, " has status byte ", b,
                                                 " (0 or 1 expected; the model is left untouched)"));
    return b == 1;
  }

  /// Decodes a peer's message into out (next to `reference` for codecs that need one). A message that does not
  /// decode is a tether::runtime_error naming the peer; nothing is written then.
  void decode_from(int from, std::span<const std::byte> message, T* out, const T* reference) {
    try {
      decode(message, out, reference);
    } catch (const tether::error& e) {
      throw runtime_error(tether::detail::concat("tether: swarm_sgd: node ", rank_, ": the message of peer ", from,
                                                 " does not decode (the model is left untouched): ", e.what()));
    }
  }
  void decode_own(std::span<const std::byte> message, T* out, const T* reference) { decode(message, out, reference); }

  void decode(std::span<const std::byte> message, T* out, const T* reference) {
    // The codec's message, without the status byte.
    const view<const std::byte, memory_space> in{message.data(), message.size() - 1};
    const view<T, memory_space> o{out, n_};
    if constexpr (codec::reference_decoding<Codec, Exec>)
      opt_.codec.decode(exec_, in, o, view<const T, memory_space>{reference, n_});
    else
      opt_.codec.decode(exec_, in, o);
  }

  Comm* comm_;
  comm_counters counters_at_start_ = comm_->counters();  ///< before this optimizer's first message
  Exec exec_;
  std::size_t n_;
  options opt_;
  std::size_t msg_bytes_ = opt_.codec.encoded_size(n_) + 1;  // and the status byte
  int rank_ = 0;
  Step step_{};
  std::array<typename Exec::template buffer<T>, Step::state_size> state_{};
  typename Exec::template buffer<T> snap_{}, own_{}, peer_{};
  std::vector<std::byte> send_, recv_;
  std::vector<int> live_;
  std::vector<char> dead_;
  rng gen_{0};
  rng schedule_gen_{0};
  std::uint32_t period_ = 1;
  std::uint32_t since_ = 0;
  int peer_rank_ = -1;
  std::uint64_t sent_ = 0;
  std::uint64_t applied_ = 0;
  bool finished_ = false;
  bool snap_finite_ = true;  // the snapshot of the exchange in flight is finite
  // Offsets of the link's counters: a loaded checkpoint's counts go on from where they were saved.
  std::uint64_t exchanges_base_ = 0, served_base_ = 0, crossed_base_ = 0;
  worker_stats stats_{};
  swarm_stats swarm_{};
  // Last: destroyed first, so that an exchange still in flight is settled (its peer done writing into recv_)
  // before the buffers go. Constructed in the initializer list (it validates the options and opens the link).
  link_type link_;
};

}  // namespace tether::algo
