#pragma once
/// \file
/// algo::downpour: Downpour SGD (Dean et al., DistBelief, NIPS 2012; docs/algorithms/downpour.md). The
/// parameters live on a parameter server cut into S shards, each updated by a step policy (Adagrad by default,
/// as in the paper) on the gradients the replicas push; each replica is an ordinary tether optimizer to the
/// user's loop. Every step, a replica (the paper's Algorithm 7.1):
///
///     accrued += g                      (its gradient since the last push)
///     x       -= alpha * d_local(g)     (its own step policy on its own copy: plain SGD by default)
///     every n_push steps:  push accrued to the shards, accrued <- 0
///                          (each shard: x_s -= Step::delta(gamma, g_s, state_s), the fused kernel)
///     every n_fetch steps: x <- the shards' parameters
///
/// and never waits for another replica (asynchronous consistency; bounded staleness and bulk-synchronous
/// rounds are options). On the thread team (include <tether/tether.hpp>) every worker is a replica and the
/// shards live in the process; under MPI (include <tether/ps/mpi_store.hpp>) the last `servers` ranks hold
/// the shards and call serve():
///
///     team.run([&](tether::team::worker& w) {
///       tether::algo::downpour<tether::team::worker> opt(w, n, {.lr = 0.05, .n_fetch = 4, .n_push = 4});
///       for (...) opt.step(x, g, loss);
///       opt.finish(x);   // waits for the other replicas (or their loss); x = the server's parameters
///     });

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "tether/core/checkpoint.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/config.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/fnv1a.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/core/options_description.hpp"
#include "tether/core/schedule.hpp"
#include "tether/core/value_range.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"
#include "tether/ps/concepts.hpp"
#include "tether/ps/consistency.hpp"
#include "tether/ps/placement.hpp"
#include "tether/ps/stats.hpp"
#include "tether/ps/store_options.hpp"
#include "tether/ps/team_store.hpp"
#include "tether/step/adagrad.hpp"
#include "tether/step/sgd.hpp"

namespace tether::algo {

/// Options of a Downpour replica, filled with designated initializers:
/// `{.lr = 0.05, .n_fetch = 4, .n_push = 4, .warm_start = 100, .shards = 8, .shard_step = {.eps = 1e-8f}}`.
/// Every replica (every rank under MPI) passes the same values (checked at construction).
template <class ShardStep, class LocalStep = step::sgd>
struct downpour_options {
  double lr = 0.01;                     ///< gamma: the shards' rate (their step policy's lr)
  double local_lr = 0.01;               ///< alpha: the rate of the replica's own step on its copy (0: none)
  std::uint32_t n_fetch = 1;            ///< steps between fetches of the parameters
  std::uint32_t n_push = 1;             ///< steps between pushes of the accrued gradient
  std::uint64_t warm_start = 0;         ///< W: replica 0 takes W steps alone before the others join
  std::uint64_t steps = 0;              ///< steps each replica will take, if known (0): checks warm_start < steps
  std::size_t shards = 1;               ///< S: shards of the parameters
  typename ShardStep::options shard_step{};  ///< the shards' step policy's options
  typename LocalStep::options local_step{};  ///< the replica's local step policy's options
  ps::consistency consistency{};        ///< asynchronous (default), bounded(s) or bulk_synchronous()
  int servers = 1;                      ///< MPI: how many of the ranks (the last ones) hold the shards
  double lease = 0.0;                   ///< seconds without news before a replica is lost; 0: MPI timeout / 300 s
  ps::replay_options replay{};          ///< thread team: take turns in a seeded order (bit-identical reruns)
  tether::schedule schedule{};          ///< factor over the replica's steps, on both rates (a push carries it)
  nonfinite_policy on_nonfinite = nonfinite_policy::skip;  ///< a non-finite loss or gradient: skip or throw
  bool check_gradient = true;           ///< scan g for NaN/Inf (one extra read of g)
  std::function<void(const ps::replica_stats&)> on_round{};  ///< after each step that pushed or fetched
};

namespace detail_downpour {

/// The replica's fused pass: `acc = g` (Acc = 1) or `acc += g` (Acc = 2) or nothing (0), and, when Local,
/// `x -= LocalStep::delta(ctx, x, g, state...)`: one read of g for both.
template <class LocalStep, class T, int Acc, bool Local>
struct replica_update {
  T* x;
  const T* g;
  T* acc;
  std::array<T*, LocalStep::state_size> s;
  typename LocalStep::template context<T> c;

  TETHER_HOST_DEVICE void operator()(std::size_t i) const { apply(i, std::make_index_sequence<LocalStep::state_size>{}); }

 private:
  template <std::size_t... S>
  TETHER_HOST_DEVICE void apply(std::size_t i, std::index_sequence<S...>) const {
    const T gi = g[i];
    if constexpr (Acc == 1) acc[i] = gi;
    if constexpr (Acc == 2) acc[i] += gi;
    if constexpr (Local) {
      const T xi = x[i];
      x[i] = xi - LocalStep::delta(c, xi, gi, s[S][i]...);
    }
  }
};

/// The options every replica must share, as one aggregate for the fingerprint.
struct shared_fields {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {
      "lr", "local_lr", "n_fetch", "n_push", "warm_start", "steps", "shards", "consistency", "servers", "lease",
      "replay", "on_nonfinite"};
  double lr, local_lr;
  std::uint32_t n_fetch, n_push;
  std::uint64_t warm_start, steps, shards;
  ps::consistency consistency;
  int servers;
  double lease;
  ps::replay_options replay;
  int on_nonfinite;
};

/// `what` of the exception a step policy's validate() throws, with its "tether: " prefix removed.
inline std::string reason(const std::exception& e) {
  std::string s = e.what();
  constexpr std::string_view prefix = "tether: ";
  if (s.rfind(prefix, 0) == 0) s.erase(0, prefix.size());
  return s;
}

}  // namespace detail_downpour

/// A Downpour SGD replica (or, under MPI, a server rank). See the file comment and
/// docs/algorithms/downpour.md. `ShardStep` is the shards' step policy (Adagrad, as in the paper; step::sgd
/// gives "Downpour with a fixed rate"), `LocalStep` the replica's own step on its copy.
template <class Comm, class ShardStep = step::adagrad, class Exec = exec::serial, class T = float,
          class LocalStep = step::sgd>
class downpour {
  static_assert(std::is_floating_point_v<T>, "tether::algo::downpour: T must be float or double");
  static_assert(step_policy<ShardStep, T>, "tether::algo::downpour: ShardStep does not satisfy tether::step_policy "
                                           "(see docs/concepts.md#step-policy)");
  static_assert(step_policy<LocalStep, T>, "tether::algo::downpour: LocalStep does not satisfy tether::step_policy "
                                           "(see docs/concepts.md#step-policy)");
  static_assert(communicator<Comm>, "tether::algo::downpour: Comm does not satisfy tether::communicator "
                                    "(see docs/concepts.md#communicator)");
  static_assert(execution_space<Exec>, "tether::algo::downpour: Exec does not satisfy tether::execution_space "
                                       "(see docs/concepts.md#execution-space)");
  static_assert(ps::placed<Comm>, "tether::algo::downpour: no parameter-server placement for this communicator: the "
                                  "thread team has one, comm::mpi needs <tether/ps/mpi_store.hpp> (see "
                                  "docs/algorithms/downpour.md#the-store-and-its-placements)");

 public:
  using value_type = T;
  using comm_type = Comm;
  using exec_type = Exec;
  using shard_step_type = ShardStep;
  using local_step_type = LocalStep;
  using memory_space = typename Exec::memory_space;
  using placement_type = ps::placement<Comm>;
  using store_type = typename placement_type::template store<ShardStep, Exec, T>;
  static_assert(ps::parameter_store<store_type, T>,
                "tether::algo::downpour: the placement's store does not model ps::parameter_store (see "
                "docs/concepts.md#one-sided-tier and docs/algorithms/downpour.md#the-store-and-its-placements)");
  using options = downpour_options<ShardStep, LocalStep>;
  using stats_type = ps::replica_stats;

  /// A replica (or server rank) for `n` parameters on `comm`. Collective: validates every option (tether::error
  /// naming it, on every rank, before any communication), checks that every rank has the same `n` and
  /// options, and opens the store.
  downpour(Comm& comm, std::size_t n, options o = {}, Exec exec = {})
      : comm_(&comm), exec_(std::move(exec)), n_(n), opt_(std::move(o)) {
    validate();
    const auto shared_options = shared();
    const std::array<consistency_item, 4> items{{{n, "the parameter count n"},
                                                 options_item(shared_options, "the downpour options"),
                                                 options_item(opt_.shard_step, "the shard_step options"),
                                                 options_item(opt_.local_step, "the local_step options")}};
    placement_type::check_consistent(comm, std::span<const consistency_item>(items));
    local_.opt = opt_.local_step;
    ShardStep shard_step;
    shard_step.opt = opt_.shard_step;
    store_ = placement_type::open(comm, exec_, shard_step, n, store_options(), static_cast<T>(opt_.lr));
    if (!is_server()) {
      for (std::size_t k = 0; k != LocalStep::state_size; ++k)
        local_state_[k] = exec_.template allocate<T>(n, local_.template initial<T>(k));
      if (accumulates() && !store_accrues) acc_ = exec_.template allocate<T>(n, T(0));
    }
  }

  downpour(const downpour&) = delete;
  downpour& operator=(const downpour&) = delete;
  downpour(downpour&&) = delete;
  downpour& operator=(downpour&&) = delete;

  /// A replica destroyed before finish() (by an exception, or forgotten) is declared lost at once, so the
  /// others neither wait for it nor apply anything it sends later.
  ~downpour() {
    if (finished_ || is_server()) return;
    try {
      if (opt_.replay.enabled) {
        if constexpr (requires { store_.acquire_turn(); }) store_.acquire_turn();
      }
      store_.abandon();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; the lease covers the rest
    }
  }

  /// One step of this replica: `x` its parameters, `g` the gradient at x, `loss` the minibatch loss at x.
  /// Pushes every n_push steps and fetches every n_fetch steps; never waits for another replica in the
  /// asynchronous mode. The first step joins: the replica that initialises the shards (replica 0) pushes its
  /// gradient as usual; the others wait for the warm start, fetch the parameters into x, and drop this
  /// first gradient (it was computed at their starting point, not at the parameters they now hold).
  template <buffer X, buffer G>
  void step(X&& x, G&& g, double loss) {
    auto xv = as_view(x);
    auto gv = as_view(g);
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(xv)::value_type>, T> &&
                      std::is_same_v<std::remove_const_t<typename decltype(gv)::value_type>, T>,
                  "tether::algo::downpour::step: x and g must hold the optimizer's value type");
    static_assert(!std::is_const_v<typename decltype(xv)::value_type>,
                  "tether::algo::downpour::step: x must be mutable");
    static_assert(mem::accessible_v<memory_space, buffer_space_t<X>> && mem::accessible_v<memory_space, buffer_space_t<G>>,
                  "tether::algo::downpour::step: x and g must be accessible from the execution space (see docs/exec.md)");
    tether::detail::require(!is_server(), "downpour::step: rank ", comm_->rank(),
                            " holds shards (servers = ", opt_.servers, "): it must call serve(), not step()");
    tether::detail::require(!finished_, "downpour::step: step after finish()");
    tether::detail::require(xv.size() == n_, "downpour::step: x has ", xv.size(), " elements, expected n = ", n_);
    tether::detail::require(gv.size() == n_, "downpour::step: g has ", gv.size(), " elements, expected n = ", n_);
    T* xp = xv.data();
    const T* gp = gv.data();

    // The replica that initialises the shards starts them from its x: a start that is not finite is refused on
    // whichever replica it is, before it joins (the next replica then initialises, as when one fails early).
    if (!joined_ && exec_.any(n_, nonfinite_element<T>{xp}))
      throw error(tether::detail::concat("tether: downpour::step: replica ", comm_->rank(),
                                         ": the starting parameters x are not finite (a NaN or an infinity); the "
                                         "shards must never start from them"));
    const auto t0 = clock::now();
    turn_guard turn(*this);
    if (!joined_) {
      joined_ = true;
      if (!store_.join(xp)) {  // a joiner: fetch, drop this gradient
        fetch(xp);
        ++stats_.steps;
        ++stats_.rounds;
        store_.stepped(stats_.steps, stats_.pushes);
        end_step(t0, 0.0, true);
        return;
      }
    }

    bool finite = std::isfinite(loss);
    if (finite && opt_.check_gradient) finite = !exec_.any(n_, nonfinite_element<T>{gp});
    if (!finite) {
      if (opt_.on_nonfinite == nonfinite_policy::raise)
        throw runtime_error(tether::detail::concat("tether: downpour::step: non-finite ",
                                                   std::isfinite(loss) ? "gradient" : "loss", " on replica ",
                                                   comm_->rank(), " at step ", stats_.steps, " (loss = ", loss, ")"));
      ++stats_.skipped_nonfinite;
    }
    const std::uint64_t t = stats_.steps;
    const double factor = opt_.schedule(t, 1.0);
    tether::detail::require(std::isfinite(factor) && factor >= 0.0, "downpour::step: the schedule gave ", factor,
                            " at step ", t);
    tether::detail::require(tether::detail::fits_value_type<T>(opt_.lr * factor) &&
                                tether::detail::fits_value_type<T>(opt_.local_lr * factor),
                            "downpour::step: the schedule gave ", factor, " at step ", t, ": lr = ", opt_.lr * factor,
                            " and local_lr = ", opt_.local_lr * factor, " must fit the value type ",
                            tether::detail::value_type_name<T>(), " (at most ", std::numeric_limits<T>::max(), ")");
    const bool push_due = (t + 1) % opt_.n_push == 0;
    const bool fetch_due = (t + 1) % opt_.n_fetch == 0;

    const auto t1 = clock::now();
    if (finite) {
      const T local_lr = static_cast<T>(opt_.local_lr * factor);
      // The local step is useless when the fetch replaces x right after it, unless it has state to keep.
      const bool local = local_lr > T(0) && !(fetch_due && LocalStep::state_size == 0);
      if (local) ++local_applied_;
      run_replica_kernel(xp, gp, local, local_lr);
      pending_ = true;
      ++accrued_;
    }
    const auto t2 = clock::now();

    bool communicated = false;
    if (push_due && pending_) {
      if (push_finite(gp)) {
        store_.push(acc_data(gp), static_cast<T>(opt_.lr * factor));
        ++stats_.pushes;
        communicated = true;
      }
      pending_ = false;
      fresh_acc_ = true;
      accrued_ = 0;
    }
    if (fetch_due) {
      fetch(xp);
      communicated = true;
    }
    ++stats_.steps;
    if (communicated) ++stats_.rounds;
    store_.stepped(stats_.steps, stats_.pushes);
    stats_.seconds_compute += seconds(t1, t2);
    end_step(t0, seconds(t1, t2), communicated);
  }

  /// This replica is done: waits (bounded by the lease) until every other replica finished or was declared
  /// lost, then leaves the shards' final parameters in `x`. Call it once, after the last step; afterwards
  /// losses() lists the replicas the run lost.
  template <buffer X>
  void finish(X&& x) {
    auto xv = as_view(x);
    tether::detail::require(!is_server(), "downpour::finish: rank ", comm_->rank(), " is a server: call serve()");
    tether::detail::require(!finished_, "downpour::finish: called twice");
    tether::detail::require(xv.size() == n_, "downpour::finish: x has ", xv.size(), " elements, expected n = ", n_);
    const auto t0 = clock::now();
    if (opt_.replay.enabled) {
      if constexpr (requires { store_.acquire_turn(); }) store_.acquire_turn();
    }
    finished_ = true;
    store_.finish(xv.data());
    ++stats_.fetches;
    stats_.seconds_comm += seconds(t0, clock::now());
    refresh_stats();
  }

  /// Writes a checkpoint: this replica's complete state and `x` to `path` (core/checkpoint.hpp: written to
  /// `path.tmp`, flushed, renamed), and the shards' to `path + ".shards"` on replica 0: their parameters, step
  /// state (Adagrad's sums), versions and clocks, staged rounds, the replicas' clock bases, the warm start and
  /// the replay generator. Collective: every replica calls it after the same step, with its own path; the shards
  /// are written once every replica arrived (so they hold every push made before the cut and none after), and
  /// no replica goes on before every file is written. A replica at another step, one that finished or was
  /// lost, or a file that cannot be written is a tether::error on every replica. In replay mode the save takes
  /// one turn of each replica. Under MPI the servers take part from serve(), each writing its own shards' file
  /// (`path + ".shards." + j`, path being replica 0's; docs/algorithms/downpour.md#checkpoints). Host memory.
  template <buffer X>
  void save(const std::string& path, X&& x) {
    static_assert(checkpointable, "tether::algo::downpour::save: checkpoints need host memory "
                                  "(docs/algorithms/downpour.md#checkpoints)");
    auto xv = as_view(x);
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(xv)::value_type>, T>,
                  "tether::algo::downpour::save: x must hold the optimizer's value type");
    tether::detail::require(!is_server(), "downpour::save(\"", path, "\"): rank ", comm_->rank(),
                            " holds shards: it takes part in checkpoints from serve()");
    tether::detail::require(!finished_, "downpour::save(\"", path, "\"): called after finish()");
    tether::detail::require(xv.size() == n_, "downpour::save: x has ", xv.size(), " elements, expected n = ", n_);
    const std::uint64_t steps = stats_.steps;
    store_.save_cut(
        steps, path,
        [&](checkpoint_writer& h) {
          write_identity(h, shards_file);
          h.put<std::uint64_t>(steps);
        },
        [&] {  // after the cut: under MPI its pushes in flight have completed (their acknowledgements counted)
          checkpoint_writer w;
          write_identity(w, replica_file);
          w.put<stats_record>(stats_record::of(stats_));
          w.put<std::uint64_t>(local_applied_);
          w.put<std::uint64_t>(accrued_);
          w.put<std::uint8_t>(
              static_cast<std::uint8_t>((joined_ ? 1 : 0) | (pending_ ? 2 : 0) | (fresh_acc_ ? 4 : 0)));
          store_.save_replica(w);
          for (const auto& b : local_state_) w.put_array<T>(std::span<const T>(b.data(), b.size()));
          w.put_array<T>(accumulates() ? std::span<const T>(accumulator(), n_) : std::span<const T>());
          w.put_array<T>(std::span<const T>(xv.data(), xv.size()));
          write_checkpoint_file(path, w.bytes());
        });
  }

  /// Restores a checkpoint written by save(): this replica's state and `x` from `path`, and (replica 0) the
  /// shards' from `path + ".shards"`. Collective, on freshly constructed replicas (the same options, n and
  /// replica count); under MPI every rank calls it before step() or serve(), a server with replica 0's path (it
  /// reads its own shards' file; x is not touched there). Every field of every file is read and checked first:
  /// on a missing, truncated, corrupted or mismatched file (another algorithm, other options, n, shard or
  /// replica count, rank), or files of different steps, every rank throws tether::error (naming the file and
  /// what is wrong where it was read; elsewhere the failing replica, or under MPI the failing rank), and nothing
  /// here, in the shards or in x has changed. In replay mode, and in the bulk-synchronous mode, a run resumed
  /// from the checkpoint of a step ends bit-identical to the run that saved it and went on; in the other modes
  /// it resumes a valid run.
  template <buffer X>
  void load(const std::string& path, X&& x) {
    static_assert(checkpointable, "tether::algo::downpour::load: checkpoints need host memory "
                                  "(docs/algorithms/downpour.md#checkpoints)");
    auto xv = as_view(x);
    static_assert(std::is_same_v<std::remove_const_t<typename decltype(xv)::value_type>, T> &&
                      !std::is_const_v<typename decltype(xv)::value_type>,
                  "tether::algo::downpour::load: x must be a mutable buffer of the optimizer's value type");
    stats_record rec{};
    std::uint64_t local_applied = 0, accrued = 0;
    std::uint8_t flags = 0;
    typename store_type::saved_replica handle;
    std::array<std::vector<T>, LocalStep::state_size> state;
    std::vector<T> acc(accumulates() ? n_ : 0), xs(n_);
    std::optional<typename store_type::saved_shards> shards;
    std::exception_ptr failure;
    std::uint64_t steps = 0;
    try {
      tether::detail::require(stats_.steps == 0 && !joined_ && !finished_ && !served_, "downpour::load(\"", path,
                              "\"): rank ", comm_->rank(), " has taken ", stats_.steps, " steps",
                              served_ ? " and served" : "", ": a checkpoint loads into a freshly constructed downpour only");
      if (!is_server()) {
        tether::detail::require(xv.size() == n_, "downpour::load: x has ", xv.size(), " elements, expected n = ", n_);
        const auto bytes = read_checkpoint_file(path);
        checkpoint_reader r(bytes, path);
        read_identity(r, replica_file);
        rec = r.get<stats_record>("the counters");
        local_applied = r.get<std::uint64_t>("the local steps applied");
        accrued = r.get<std::uint64_t>("the gradients accrued");
        flags = r.get<std::uint8_t>("the join and accrual flags");
        if (flags > 7) throw error(tether::detail::concat("tether: checkpoint ", path, ": bad flags ", int{flags}));
        handle = store_.read_replica(r);
        for (auto& b : state) {
          b.resize(n_);
          r.get_array<T>(std::span<T>(b), "a local step state buffer");
        }
        r.get_array<T>(std::span<T>(acc), "the accrued gradient");
        r.get_array<T>(std::span<T>(xs), "the parameters");
        r.expect_end();
        steps = rec.steps;
      }
      if (store_.holds_shards_file()) {
        const std::string spath = store_.shards_path(path);
        const auto sbytes = read_checkpoint_file(spath);
        checkpoint_reader sr(sbytes, spath);
        read_identity(sr, shards_file);
        const auto step = sr.get<std::uint64_t>("the step");
        if (is_server()) steps = step;
        else sr.expect_equal<std::uint64_t>(step, rec.steps, "step (replica 0's file)");
        shards.emplace(store_.read_shards(sr));
        sr.expect_end();
      }
    } catch (const std::exception&) {
      failure = std::current_exception();
    }
    store_.load_cut(steps, path, failure, shards ? &*shards : nullptr);
    if (is_server()) return;
    // Every rank read and checked its files: commit.
    rec.to(stats_);
    local_applied_ = local_applied;
    accrued_ = accrued;
    joined_ = (flags & 1) != 0;
    pending_ = (flags & 2) != 0;
    fresh_acc_ = (flags & 4) != 0;
    store_.restore_replica(std::move(handle));
    for (std::size_t k = 0; k != LocalStep::state_size; ++k)
      std::copy(state[k].begin(), state[k].end(), local_state_[k].data());
    if (accumulates()) std::copy(acc.begin(), acc.end(), accumulator());
    std::copy(xs.begin(), xs.end(), xv.data());
    counters_at_start_.bytes_sent = comm_->counters().bytes_sent - rec.bytes_sent;
    counters_at_start_.bytes_received = comm_->counters().bytes_received - rec.bytes_received;
    refresh_stats();
  }

  /// True on a rank that holds shards (MPI's last `servers` ranks); always false on the thread team.
  [[nodiscard]] bool is_server() const noexcept {
    if constexpr (requires { store_.is_server(); }) return store_.is_server();
    else return false;
  }

  /// On a server rank: serves pushes and fetches until every replica finished or was lost, then returns.
  /// tether::error on a replica.
  void serve()
    requires requires(store_type& s) { s.serve(); }
  {
    tether::detail::require(is_server(), "downpour::serve: rank ", comm_->rank(),
                            " is a replica: it calls step() and finish()");
    if constexpr (requires(std::vector<unsigned char> h) { store_.checkpoint_header(h); }) {
      checkpoint_writer h;  // what this server's shards' files start with
      write_identity(h, shards_file);
      const auto b = h.bytes();
      store_.checkpoint_header(std::vector<unsigned char>(b.begin(), b.end()));
    }
    served_ = true;
    const auto t0 = clock::now();
    store_.serve();
    stats_.seconds_comm += seconds(t0, clock::now());
    refresh_stats();
  }

  /// The shards' current parameters into `out` (thread team), outside the protocol: not counted, no versions
  /// recorded. For evaluations and tests.
  template <buffer X>
  void peek(X&& out)
    requires requires(store_type& s, T* p) { s.peek(p); }
  {
    auto v = as_view(out);
    tether::detail::require(v.size() == n_, "downpour::peek: out has ", v.size(), " elements, expected n = ", n_);
    store_.peek(v.data());
  }

  /// Number of parameters.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// This replica's counters (a worker_stats with the parameter server's own).
  [[nodiscard]] const ps::replica_stats& stats() const noexcept { return stats_; }
  /// The options in force.
  [[nodiscard]] const options& opts() const noexcept { return opt_; }
  /// The version of each shard that the last fetch read.
  [[nodiscard]] std::span<const std::uint64_t> versions() const noexcept { return store_.versions(); }
  /// The replicas declared lost so far (complete after finish() or serve()).
  [[nodiscard]] std::vector<ps::replica_loss> losses() const { return store_.losses(); }
  /// The store (this replica's handle).
  [[nodiscard]] store_type& store() noexcept { return store_; }
  /// The local step policy's state buffer k, in the execution space's memory.
  [[nodiscard]] view<T, memory_space> local_state(std::size_t k) {
    tether::detail::require(k < LocalStep::state_size, "downpour::local_state: k = ", k, " but the local step has ",
                            LocalStep::state_size, " state buffers");
    return {local_state_[k].data(), local_state_[k].size()};
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  // --- checkpoints ----------------------------------------------------------------------------------------

  /// True where save() and load() are available: the placement's store takes part in checkpoints, host memory.
  static constexpr bool checkpointable =
      std::is_same_v<memory_space, mem::host> && requires(store_type& s, checkpoint_writer& w) { s.save_replica(w); };

  static constexpr const char* replica_file = "replica";
  static constexpr const char* shards_file = "shards";

  /// The counters a replica's checkpoint holds (replica_stats may grow fields; the store holds the rest).
  struct stats_record {
    std::uint64_t steps, rounds, skipped_nonfinite, excluded_nonfinite, bytes_sent, bytes_received, pushes, fetches;
    double seconds_compute, seconds_comm;
    static stats_record of(const ps::replica_stats& s) {
      return {s.steps,          s.rounds,       s.skipped_nonfinite, s.excluded_nonfinite, s.bytes_sent,
              s.bytes_received, s.pushes,       s.fetches,           s.seconds_compute,    s.seconds_comm};
    }
    void to(ps::replica_stats& s) const {
      s.steps = steps;
      s.rounds = rounds;
      s.skipped_nonfinite = skipped_nonfinite;
      s.excluded_nonfinite = excluded_nonfinite;
      s.pushes = pushes;
      s.fetches = fetches;
      s.seconds_compute = seconds_compute;
      s.seconds_comm = seconds_comm;
    }
  };

  /// The replicas: every rank but the servers.
  [[nodiscard]] int replicas() const noexcept {
    return placement_type::has_servers ? comm_->size() - opt_.servers : comm_->size();
  }

  /// What a checkpoint file must match: the algorithm and the kind of file (a replica's, or the shards'), the
  /// types (shard step, local step, execution space, value type), the options.
  static std::uint64_t algorithm_fingerprint(const char* kind) {
    std::uint64_t h = tether::detail::fnv1a_offset;
    for (const char* name : {"tether::algo::downpour", kind, typeid(ShardStep).name(), typeid(LocalStep).name(),
                             typeid(Exec).name(), typeid(T).name()})
      h = tether::detail::fnv1a(name, h);
    return h;
  }
  [[nodiscard]] std::uint64_t options_fingerprint_all() const {
    std::uint64_t h = tether::detail::fnv1a_offset;
    for (std::uint64_t v : {options_fingerprint(shared()), options_fingerprint(opt_.shard_step),
                            options_fingerprint(opt_.local_step)})
      h = tether::detail::fnv1a_u64(v, h);
    return h;
  }
  void write_identity(checkpoint_writer& w, const char* kind) const {
    w.put<std::uint64_t>(algorithm_fingerprint(kind));
    w.put<std::uint64_t>(n_);
    w.put<std::int32_t>(replicas());
    w.put<std::uint64_t>(opt_.shards);
    w.put<std::int32_t>(comm_->rank());
    w.put<std::uint64_t>(options_fingerprint_all());
  }
  void read_identity(checkpoint_reader& r, const char* kind) const {
    if (r.get<std::uint64_t>("the algorithm") != algorithm_fingerprint(kind))
      throw error(tether::detail::concat("tether: checkpoint ", r.path(), ": not a ", kind, " file of this downpour: ",
                                         "written by another algorithm (or by a downpour with another shard step, ",
                                         "local step, execution space or value type, or it is its ",
                                         std::string_view(kind) == replica_file ? "shards'" : "replicas'", " file)"));
    r.expect_equal<std::uint64_t>(r.get<std::uint64_t>("n"), n_, "n");
    r.expect_equal<std::int32_t>(r.get<std::int32_t>("the replica count"), replicas(), "replicas");
    r.expect_equal<std::uint64_t>(r.get<std::uint64_t>("the shard count"), opt_.shards, "shards");
    r.expect_equal<std::int32_t>(r.get<std::int32_t>("the rank"), comm_->rank(), "rank");
    if (r.get<std::uint64_t>("the options") != options_fingerprint_all())
      throw error(tether::detail::concat("tether: checkpoint ", r.path(), ": written with other options than this ",
                                         "downpour's"));
  }

  /// Holds this replica's replay turn for one step (no-op outside replay mode). On an exception the turn
  /// stays held: the destructor of the optimizer then declares the replica lost and hands the turn on.
  struct turn_guard {
    downpour& d;
    bool held = false;
    explicit turn_guard(downpour& o) : d(o) {
      if (!d.opt_.replay.enabled) return;
      if constexpr (requires { d.store_.acquire_turn(); }) {
        d.store_.acquire_turn();
        held = true;
      }
    }
    turn_guard(const turn_guard&) = delete;
    turn_guard& operator=(const turn_guard&) = delete;
    ~turn_guard() {
      if constexpr (requires { d.store_.release_turn(); }) {
        if (held && std::uncaught_exceptions() == 0) d.store_.release_turn();
      }
    }
  };

  void validate() const {
    using tether::detail::require;
    require(std::isfinite(opt_.lr) && opt_.lr >= 0.0, "downpour: lr must be finite and >= 0, got lr = ", opt_.lr);
    require(std::isfinite(opt_.local_lr) && opt_.local_lr >= 0.0,
            "downpour: local_lr must be finite and >= 0, got local_lr = ", opt_.local_lr);
    require(tether::detail::fits_value_type<T>(opt_.lr), "downpour: lr must fit the value type ",
            tether::detail::value_type_name<T>(), " (at most ", std::numeric_limits<T>::max(), "), got lr = ", opt_.lr);
    require(tether::detail::fits_value_type<T>(opt_.local_lr), "downpour: local_lr must fit the value type ",
            tether::detail::value_type_name<T>(), " (at most ", std::numeric_limits<T>::max(), "), got local_lr = ",
            opt_.local_lr);
    require(opt_.n_fetch > 0, "downpour: n_fetch must be > 0, got n_fetch = ", opt_.n_fetch);
    require(opt_.n_push > 0, "downpour: n_push must be > 0, got n_push = ", opt_.n_push);
    require(opt_.steps == 0 || opt_.warm_start < opt_.steps, "downpour: warm_start must be shorter than the run, got "
            "warm_start = ", opt_.warm_start, " with steps = ", opt_.steps);
    store_options().validate();
    require(!opt_.replay.enabled || placement_type::has_replay,
            "downpour: replay runs on the thread team only, got replay.enabled = true on this communicator");
    if constexpr (requires { placement_type::template validate<T>(*comm_, n_, store_options()); })
      placement_type::template validate<T>(*comm_, n_, store_options());
    try {
      ShardStep s;
      s.opt = opt_.shard_step;
      s.validate();
    } catch (const error& e) {
      throw error("tether: downpour: the shards cannot run their step policy: shard_step: " +
                  detail_downpour::reason(e));
    }
    try {
      LocalStep s;
      s.opt = opt_.local_step;
      s.validate();
    } catch (const error& e) {
      throw error("tether: downpour: local_step: " + detail_downpour::reason(e));
    }
    opt_.schedule.validate();
  }

  [[nodiscard]] ps::store_options store_options() const {
    return {.shards = opt_.shards,
            .consistency = opt_.consistency,
            .lease = opt_.lease,
            .servers = opt_.servers,
            .replay = opt_.replay,
            .warm_start = opt_.warm_start};
  }

  [[nodiscard]] detail_downpour::shared_fields shared() const {
    return {opt_.lr,         opt_.local_lr,       opt_.n_fetch, opt_.n_push, opt_.warm_start,
            opt_.steps,      opt_.shards,         opt_.consistency, opt_.servers, opt_.lease,
            opt_.replay,     static_cast<int>(opt_.on_nonfinite)};
  }

  /// The replica accumulates into its own buffer when it pushes a sum (n_push > 1), or when the store sends
  /// asynchronously (the user's g is overwritten before the send completes).
  [[nodiscard]] bool accumulates() const noexcept {
    if constexpr (requires { store_type::asynchronous_push; }) {
      if (store_type::asynchronous_push) return true;
    }
    return opt_.n_push > 1;
  }

  /// True when the store provides the buffer the replica accrues into (MPI: the half of its double buffer that
  /// is not being sent).
  static constexpr bool store_accrues = requires(store_type& s) { { s.accumulator() } -> std::same_as<T*>; };

  /// Where the replica accrues its gradient.
  T* accumulator() {
    if constexpr (store_accrues) return store_.accumulator();
    else return acc_.data();
  }
  /// What a push sends: the accrued sum, or the gradient itself when nothing is accrued (n_push = 1 on the team).
  const T* acc_data(const T* g) { return accumulates() ? accumulator() : g; }

  void run_replica_kernel(T* x, const T* g, bool local, T local_lr) {
    const int acc_mode = !accumulates() ? 0 : (fresh_acc_ ? 1 : 2);
    fresh_acc_ = false;
    typename LocalStep::template context<T> ctx{};
    if (local) ctx = local_.prepare(local_applied_, local_lr);
    T* acc = accumulates() ? accumulator() : nullptr;
    const auto launch = [&]<int A, bool L>() {
      detail_downpour::replica_update<LocalStep, T, A, L> k{x, g, acc, {}, ctx};
      for (std::size_t j = 0; j != LocalStep::state_size; ++j) k.s[j] = local_state_[j].data();
      exec_.parallel_for(n_, k);
    };
    if (local) {
      if (acc_mode == 0) launch.template operator()<0, true>();
      else if (acc_mode == 1) launch.template operator()<1, true>();
      else launch.template operator()<2, true>();
    } else {
      if (acc_mode == 1) launch.template operator()<1, false>();
      else if (acc_mode == 2) launch.template operator()<2, false>();
    }
  }

  /// True when the push due holds only finite values. A single checked gradient is finite; a sum of several
  /// may overflow, and unchecked gradients may hold anything: those are read once before the push. A push that
  /// is not finite is never sent: it throws with on_nonfinite = raise, else it is dropped (the accrual starts
  /// again) and counted in stats().excluded_nonfinite.
  bool push_finite(const T* g) {
    if (opt_.check_gradient && accrued_ <= 1) return true;
    if (!exec_.any(n_, nonfinite_element<T>{acc_data(g)})) return true;
    if (opt_.on_nonfinite == nonfinite_policy::raise)
      throw runtime_error(tether::detail::concat("tether: downpour::step: non-finite push on replica ", comm_->rank(),
                                                 " at step ", stats_.steps, ": the sum of the ", accrued_,
                                                 " gradient(s) accrued since its last push is not finite"));
    ++stats_.excluded_nonfinite;
    return false;
  }

  void fetch(T* x) {
    store_.fetch(x);
    ++stats_.fetches;
  }

  /// Counters at the end of a step: its time outside the replica's kernel counts as communication.
  void end_step(clock::time_point t0, double compute_s, bool communicated) {
    stats_.seconds_comm += seconds(t0, clock::now()) - compute_s;
    refresh_stats();
    if (communicated && opt_.on_round) opt_.on_round(stats_);
  }

  void refresh_stats() {
    // This optimizer's own traffic, not the communicator's running total (which counts earlier optimizers').
    stats_.bytes_sent = comm_->counters().bytes_sent - counters_at_start_.bytes_sent;
    stats_.bytes_received = comm_->counters().bytes_received - counters_at_start_.bytes_received;
    if constexpr (requires { store_.seconds_waiting(); }) stats_.seconds_waiting = store_.seconds_waiting();
    if constexpr (requires { store_.lost(); }) stats_.lost = store_.lost();
    const ps::push_tally& tally = store_.tally();
    stats_.pushes_dropped = tally.dropped;
    stats_.max_lead = tally.max_lead;
    stats_.staleness = tally.staleness;
  }

  Comm* comm_;
  comm_counters counters_at_start_ = comm_->counters();  ///< before this optimizer's first message
  Exec exec_;
  std::size_t n_;
  options opt_;
  LocalStep local_{};
  store_type store_{};
  std::array<typename Exec::template buffer<T>, LocalStep::state_size> local_state_{};
  typename Exec::template buffer<T> acc_{};
  ps::replica_stats stats_{};
  std::uint64_t local_applied_ = 0;
  bool joined_ = false;
  bool pending_ = false;    // gradients accrued since the last push
  bool fresh_acc_ = true;   // the next accrual overwrites the accumulator
  std::uint64_t accrued_ = 0;  // gradients accrued since the last push
  bool finished_ = false;
  bool served_ = false;
};

}  // namespace tether::algo
