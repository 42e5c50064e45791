#pragma once
/// \file
/// The Fashion-MNIST training driver shared by the demo (tether_demo) and the convergence study (fmnist_study):
/// p workers on a tether::team train the MLP of mlp.hpp with one of tether's distributed algorithms, each on its
/// own shard of the training set, and the team measures test accuracy, bytes moved and where the time goes.
///
/// Every worker starts from the same initial point (seeded by the run's seed), walks its shard in minibatches
/// reshuffled every epoch, and calls `opt.step(x, g, loss)` after each gradient. At the end of every epoch
/// (and once before training) the workers stop at a barrier and evaluate the algorithm's *output model* on
/// the test set, each on a quarter (1/p) of it:
///
/// | algorithms                               | output model                                     |
/// |------------------------------------------|--------------------------------------------------|
/// | lsgd, lsgd-grouped, async-lsgd           | the current (global) leader's parameters         |
/// | easgd, eamsgd                            | the center variable                              |
/// | async-easgd, async-eamsgd                | the center as worker 0 read it at its last exchange |
/// | local-sgd, sync-sgd, overlap-local-sgd   | the average of the workers' parameters           |
/// | downpour, downpour-sgd                   | the parameter server's (its shards') parameters  |
/// | swarm                                    | the average of the nodes' parameters             |
///
/// The evaluation reads other workers' buffers directly through shared memory, outside the communicator, so it
/// adds nothing to the byte counters; its time is reported apart from the training time. SwarmSGD's nodes first
/// meet in opt.sync(x), a barrier that keeps answering exchanges, so that no exchange is left waiting for a node
/// that stopped at the evaluation.

#include "idx.hpp"
#include "mlp.hpp"
#include "shard.hpp"

#include <tether/tether.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fmnist {

/// The distributed algorithms the driver can run (every one tether has for the thread team).
enum class algorithm {
  lsgd,               ///< Leader SGD, one leader (tether::algo::lsgd)
  lsgd_grouped,       ///< Leader SGD with local leaders per group and a global leader (tether::algo::lsgd_grouped)
  easgd,              ///< Elastic Averaging SGD (tether::algo::easgd)
  eamsgd,             ///< EASGD with Nesterov momentum (tether::algo::eamsgd)
  local_sgd,          ///< local SGD / model averaging every period (tether::algo::local_sgd)
  overlap_local_sgd,  ///< Overlap-Local-SGD, anchor pull with a non-blocking average (tether::algo::overlap_local_sgd)
  sync_sgd,           ///< synchronous SGD: local SGD with period 1 (an all-reduce every step)
  async_lsgd,         ///< asynchronous LSGD: elections and broadcasts in the background (tether::algo::async_lsgd)
  async_easgd,        ///< asynchronous EASGD: exchanges with a shared center, no barrier (tether::algo::async_easgd)
  async_eamsgd,       ///< asynchronous EASGD with Nesterov momentum (tether::algo::async_eamsgd)
  downpour,           ///< Downpour SGD: a parameter server with Adagrad on its shards (tether::algo::downpour)
  downpour_sgd,       ///< Downpour SGD with plain SGD on the shards (a fixed rate)
  swarm,              ///< SwarmSGD: pairwise gossip with a random neighbour every period (tether::algo::swarm_sgd)
};

/// Name and one-line description of an algorithm, for command lines, logs and tables.
struct algorithm_entry {
  algorithm id;                 ///< the algorithm
  std::string_view name;        ///< its command-line name
  std::string_view summary;     ///< one line for --help
};

/// Every algorithm of the driver, in the order tables list them.
inline constexpr std::array<algorithm_entry, 13> algorithms{{
    {algorithm::sync_sgd, "sync-sgd", "synchronous SGD: all-reduce of the parameters every step (local SGD, period 1)"},
    {algorithm::lsgd, "lsgd", "Leader SGD: pull toward the worker with the lowest recent loss"},
    {algorithm::lsgd_grouped, "lsgd-grouped", "LSGD with a local leader per group and a global leader"},
    {algorithm::easgd, "easgd", "Elastic Averaging SGD: elastic pull toward a center variable"},
    {algorithm::eamsgd, "eamsgd", "EASGD with Nesterov momentum in the local step"},
    {algorithm::local_sgd, "local-sgd", "local SGD: average the parameters every period"},
    {algorithm::overlap_local_sgd, "overlap-local-sgd", "Overlap-Local-SGD: anchor pull, average overlapped"},
    {algorithm::async_lsgd, "async-lsgd", "asynchronous LSGD: elections and broadcasts run in the background"},
    {algorithm::async_easgd, "async-easgd", "asynchronous EASGD: each worker exchanges with the center, no barrier"},
    {algorithm::async_eamsgd, "async-eamsgd", "asynchronous EASGD with Nesterov momentum in the local step"},
    {algorithm::downpour, "downpour", "Downpour SGD: push gradients to / fetch from a parameter server, Adagrad shards"},
    {algorithm::downpour_sgd, "downpour-sgd", "Downpour SGD with plain SGD on the parameter server's shards"},
    {algorithm::swarm, "swarm", "SwarmSGD: every period, average with a random neighbour of the graph (--topology, --bits)"},
}};

/// The command-line name of `a`.
[[nodiscard]] inline std::string_view algorithm_name(algorithm a) noexcept {
  for (const auto& e : algorithms) {
    if (e.id == a) return e.name;
  }
  return "?";
}

/// The algorithm called `name`, if any.
[[nodiscard]] inline std::optional<algorithm> parse_algorithm(std::string_view name) noexcept {
  for (const auto& e : algorithms) {
    if (e.name == name) return e.id;
  }
  return std::nullopt;
}

/// The names of every algorithm, separated by `sep`.
[[nodiscard]] inline std::string algorithm_names(std::string_view sep = ", ") {
  std::string s;
  for (const auto& e : algorithms) {
    if (!s.empty()) s += sep;
    s += e.name;
  }
  return s;
}

/// Learning-rate schedule over the whole run.
enum class lr_schedule {
  constant,  ///< the base rate throughout
  cosine,    ///< cosine decay from the base rate to 0 over all steps of the run
};

/// The local step of every worker (tether's step policies).
enum class local_step {
  sgd,       ///< plain SGD (tether::step::sgd)
  momentum,  ///< heavy-ball momentum (tether::step::momentum)
  nesterov,  ///< Nesterov momentum (tether::step::momentum with nesterov = true)
  adam,      ///< Adam (tether::step::adam, default betas)
};

/// The command-line name of `s`.
[[nodiscard]] inline std::string_view step_name(local_step s) noexcept {
  switch (s) {
    case local_step::sgd: return "sgd";
    case local_step::momentum: return "momentum";
    case local_step::nesterov: return "nesterov";
    case local_step::adam: return "adam";
  }
  return "?";
}

/// The local step called `name`, if any.
[[nodiscard]] inline std::optional<local_step> parse_step(std::string_view name) noexcept {
  for (const local_step s : {local_step::sgd, local_step::momentum, local_step::nesterov, local_step::adam}) {
    if (step_name(s) == name) return s;
  }
  return std::nullopt;
}

/// What one training run does. Validated by train() (tether::error naming the field and value).
struct train_options {
  algorithm algo = algorithm::lsgd;   ///< the distributed algorithm
  int workers = 4;                    ///< p: worker threads of the team
  int group_size = 2;                 ///< lsgd-grouped: workers per group (must divide workers)
  std::size_t epochs = 8;             ///< passes over the training set (each worker over its shard)
  std::uint32_t period = 16;          ///< tau: local steps between communication rounds (sync-sgd: ignored, 1;
                                      ///< downpour: n_push = n_fetch = tau)
  std::uint32_t global_period = 0;    ///< lsgd-grouped: tau_G between global elections; 0 = 4 * period
  double lr = 0.05;                   ///< base learning rate
  local_step step = local_step::momentum;  ///< the workers' local step (eamsgd, async-eamsgd: always Nesterov)
  float momentum = 0.9f;              ///< momentum coefficient of the momentum and nesterov steps
  lr_schedule schedule = lr_schedule::cosine;  ///< learning-rate schedule
  std::size_t batch = 64;             ///< minibatch size per worker
  std::uint64_t seed = 1;             ///< seed of the initial point, the shards and their shuffles
  std::size_t progress_every = 0;     ///< steps between progress callbacks (0: about 20 per epoch)
  float leader_strength = 0.1f;       ///< lsgd, lsgd-grouped, async-lsgd: proximal pull p (per step p/period)
  float leader_jump = 0.0f;           ///< lsgd, lsgd-grouped, async-lsgd: jump c toward the leader at each round
  float easgd_beta = 0.9f;            ///< easgd, eamsgd, async-easgd, async-eamsgd: center's moving rate beta = p*alpha
  float anchor_alpha = 0.2f;          ///< overlap-local-sgd: pull toward the anchor at each round
  bool check_gradient = true;         ///< the optimizer's scan of each gradient for NaN/Inf (optimizer_options)
  bool replicate_data = false;        ///< every worker samples the whole training set instead of its own shard
  bool evaluate_average = false;      ///< also evaluate the mean of the workers' parameters (epoch_record::average_accuracy)
  tether::comm::graph_kind topology = tether::comm::graph_kind::ring;  ///< swarm: the communication graph
  unsigned bits = 0;                  ///< swarm: bits per value on the wire, 1..8 (stochastic uniform, block 256); 0 = fp32
  bool nonblocking = false;           ///< swarm: the non-blocking variant (keep stepping while an exchange is in flight)
};

/// lsgd-grouped's global period when none is given: 4 * period (validate() checks that it fits).
[[nodiscard]] inline std::uint32_t default_global_period(std::uint32_t period) noexcept {
  return static_cast<std::uint32_t>(std::uint64_t{4} * period);
}

/// The state of the team at the end of an epoch (epoch 0: before training).
struct epoch_record {
  std::size_t epoch = 0;             ///< epochs completed
  std::uint64_t step = 0;            ///< steps taken by each worker
  double train_loss = 0.0;           ///< mean minibatch loss over this epoch, all workers (NaN for epoch 0)
  double test_accuracy = 0.0;        ///< accuracy of the output model on the test set
  double average_accuracy = 0.0;     ///< accuracy of the mean of the workers' parameters (NaN unless evaluate_average)
  double bytes_per_worker = 0.0;     ///< payload bytes received per worker so far (mean over workers)
  double elapsed_s = 0.0;            ///< wall time since training started, evaluations included
  double train_s = 0.0;              ///< wall time since training started, evaluations excluded
  // Where each worker's time went so far (seconds, mean over workers):
  double gradient_s = 0.0;           ///< in mlp::evaluate (forward and backward passes)
  double step_s = 0.0;               ///< in optimizer::step (kernel + communication + bookkeeping)
  double kernel_s = 0.0;             ///< worker_stats::seconds_compute: the fused update kernels
  double comm_s = 0.0;               ///< worker_stats::seconds_comm: collectives, waiting included
  std::uint64_t rounds = 0;          ///< communication rounds of worker 0
  std::uint64_t leader_changes = 0;  ///< leader changes seen by worker 0 (LSGD)
};

/// A progress report from worker 0, several times per epoch.
struct progress_report {
  std::size_t epoch = 0;             ///< current epoch, from 1
  std::size_t epochs = 0;            ///< epochs of the run
  std::uint64_t step = 0;            ///< steps taken by worker 0
  std::uint64_t steps_total = 0;     ///< steps of the whole run per worker
  double loss = 0.0;                 ///< worker 0's mean minibatch loss in this epoch so far
  double test_accuracy = 0.0;        ///< accuracy at the last evaluation
  double bytes_per_worker = 0.0;     ///< payload bytes received per worker so far (mean over workers)
  double elapsed_s = 0.0;            ///< wall time since training started
  double remaining_s = 0.0;          ///< estimate of the wall time left
};

/// Everything a run measured.
struct train_result {
  std::vector<epoch_record> epochs;  ///< epoch 0 (the initial model) to the last
  std::size_t parameters = 0;        ///< model size N
  std::size_t steps_per_epoch = 0;   ///< steps of each worker per epoch
  double wall_s = 0.0;               ///< total wall time of the run (training and evaluations)
  double eval_s = 0.0;               ///< wall time spent in evaluations

  /// Accuracy after the last epoch.
  [[nodiscard]] double final_accuracy() const { return epochs.empty() ? 0.0 : epochs.back().test_accuracy; }
  /// Best accuracy over the epochs.
  [[nodiscard]] double best_accuracy() const {
    double b = 0.0;
    for (const auto& e : epochs) b = std::max(b, e.test_accuracy);
    return b;
  }
  /// Training time (evaluations excluded) at the end of the first epoch reaching `target`, if any.
  [[nodiscard]] std::optional<double> time_to(double target) const {
    for (const auto& e : epochs) {
      if (e.epoch > 0 && e.test_accuracy >= target) return e.train_s;
    }
    return std::nullopt;
  }
};

/// Callbacks of a run, both called on worker 0's thread.
struct train_callbacks {
  std::function<void(const progress_report&)> on_progress{};  ///< several times per epoch
  std::function<void(const epoch_record&)> on_epoch{};        ///< after each evaluation (epoch 0 included)
};

namespace detail {

/// How the output model is formed for evaluation.
enum class output_model { leader, center, average, server };

/// Part `r` of `parts` contiguous parts of `d` (a copy).
inline dataset part_of(const dataset& d, std::size_t r, std::size_t parts) {
  const std::size_t lo = d.count * r / parts;
  const std::size_t hi = d.count * (r + 1) / parts;
  dataset s;
  s.count = hi - lo;
  s.features = d.features;
  s.norm = d.norm;
  s.images.assign(d.images.begin() + static_cast<std::ptrdiff_t>(lo * d.features),
                  d.images.begin() + static_cast<std::ptrdiff_t>(hi * d.features));
  s.labels.assign(d.labels.begin() + static_cast<std::ptrdiff_t>(lo), d.labels.begin() + static_cast<std::ptrdiff_t>(hi));
  return s;
}

/// The test set split into p contiguous parts, one per worker (copies: 31 MB in all for 10000 samples).
inline std::vector<dataset> split_dataset(const dataset& d, std::size_t parts) {
  std::vector<dataset> out;
  out.reserve(parts);
  for (std::size_t r = 0; r < parts; ++r) out.push_back(part_of(d, r, parts));
  return out;
}

/// State shared by the workers of one run. Slots indexed by rank are written by their worker only; the team's
/// barriers order those writes before the reads of other workers.
struct shared_run {
  std::size_t p = 0;
  std::vector<float*> x;                        // each worker's parameters
  std::vector<const float*> center;             // each worker's EASGD center copy (center output model)
  std::vector<float> average;                   // the averaged output model
  std::vector<std::size_t> correct;             // test samples classified correctly, per worker
  std::vector<std::size_t> correct_average;     // the same for the workers' average (evaluate_average)
  std::vector<double> loss_sum;                 // per worker, over the last epoch (at the last evaluation)
  std::vector<tether::worker_stats> stats;      // per worker, at the last evaluation
  std::vector<double> gradient_s;               // per worker, cumulative (at the last evaluation)
  std::vector<double> step_s;                   // per worker, cumulative (at the last evaluation)
  std::unique_ptr<std::atomic<std::uint64_t>[]> received;  // live bytes received per worker (progress lines)
  std::vector<float> server;                    // the parameter server's parameters (downpour), read by worker 0
  const float* output = nullptr;                // model to evaluate, chosen by worker 0
};

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// What one worker's loop has measured so far (read by the evaluation at the end of an epoch).
struct worker_clock {
  double gradient_s = 0.0;  ///< cumulative seconds in mlp::evaluate
  double step_s = 0.0;      ///< cumulative seconds in optimizer::step
  double loss_sum = 0.0;    ///< sum of the minibatch losses of the current epoch
};

/// Worker 0's progress reports: every train_options::progress_every steps (0: about 20 per epoch) and after
/// the last step of each epoch, to train_callbacks::on_progress. Shared by run_team and run_rank.
class progress_reporter {
 public:
  progress_reporter(const train_options& o, std::size_t steps_per_epoch, const train_callbacks& cb)
      : cb_(cb),
        epochs_(o.epochs),
        steps_per_epoch_(steps_per_epoch),
        steps_total_(static_cast<std::uint64_t>(steps_per_epoch) * o.epochs),
        every_(o.progress_every > 0 ? o.progress_every : std::max<std::size_t>(1, steps_per_epoch / 20)) {}

  /// Whether step `step` of the run, the k-th of its epoch (k from 0), is reported.
  [[nodiscard]] bool due(std::size_t k, std::uint64_t step) const {
    return cb_.on_progress && (step % every_ == 0 || k + 1 == steps_per_epoch_);
  }
  /// Reports step `step` of the run, the k-th of epoch e (k and e from 0): `loss_sum` over the epoch so far,
  /// the accuracy of the last evaluation, the bytes received per worker so far, the time since `t_start`.
  void report(std::size_t e, std::size_t k, std::uint64_t step, double loss_sum, double test_accuracy,
              double bytes_per_worker, std::chrono::steady_clock::time_point t_start) const {
    progress_report pr;
    pr.epoch = e + 1;
    pr.epochs = epochs_;
    pr.step = step;
    pr.steps_total = steps_total_;
    pr.loss = loss_sum / static_cast<double>(k + 1);
    pr.test_accuracy = test_accuracy;
    pr.bytes_per_worker = bytes_per_worker;
    pr.elapsed_s = seconds_since(t_start);
    pr.remaining_s = pr.elapsed_s * static_cast<double>(steps_total_ - step) / static_cast<double>(step);
    cb_.on_progress(pr);
  }

 private:
  const train_callbacks& cb_;
  std::size_t epochs_;
  std::size_t steps_per_epoch_;
  std::uint64_t steps_total_;
  std::size_t every_;
};

/// One worker's training: `evaluate(0, 0)`, then `epochs` epochs of `steps_per_epoch` minibatch steps on its
/// shard, `after_step(epoch, k, step)` after each step and `evaluate(epoch, step)` after each epoch, then
/// `opt.finish(x)`. Shared by the thread team (run_team) and the MPI ranks (train_mpi.hpp).
template <class Opt, class Buffer, class Evaluate, class AfterStep>
void train_worker(Opt& opt, mlp& model, shard& data, Buffer& x, Buffer& g, std::size_t epochs,
                  std::size_t steps_per_epoch, worker_clock& clk, Evaluate&& evaluate, AfterStep&& after_step) {
  using clock = std::chrono::steady_clock;
  evaluate(std::size_t{0}, std::uint64_t{0});
  std::uint64_t step = 0;
  for (std::size_t e = 0; e < epochs; ++e) {
    const batch_view batches = data.epoch(e);
    clk.loss_sum = 0.0;
    for (std::size_t k = 0; k < steps_per_epoch; ++k) {
      const auto t0 = clock::now();
      const double loss = model.evaluate(x, g, tether::batch{batches[k], data.batch_seed(e, k)});
      const auto t1 = clock::now();
      opt.step(x, g, loss);
      const auto t2 = clock::now();
      clk.gradient_s += std::chrono::duration<double>(t1 - t0).count();
      clk.step_s += std::chrono::duration<double>(t2 - t1).count();
      clk.loss_sum += loss;
      ++step;
      after_step(e, k, step);
    }
    evaluate(e + 1, step);
  }
  opt.finish(x);
}

/// The run of one optimizer type `Opt` on a team; `opts` are its options (rate, step, pull, schedule).
template <class Opt>
train_result run_team(const dataset& train, const dataset& test, const train_options& o,
                      const typename Opt::options& opts, output_model model_kind, const train_callbacks& cb,
                      int group_size) {
  using clock = std::chrono::steady_clock;
  const auto p = static_cast<std::size_t>(o.workers);
  const std::size_t n = mlp::parameter_count;
  const std::size_t steps_per_epoch = shard::common_batches_per_epoch(train.count, p, o.batch);
  tether::detail::require(steps_per_epoch > 0, "fmnist::train: ", train.count, " training samples give no full batch of ",
                          o.batch, " per worker with ", p, " workers");
  const progress_reporter progress(o, steps_per_epoch, cb);

  const std::vector<dataset> test_parts = split_dataset(test, p);
  shared_run sh;
  sh.p = p;
  sh.x.assign(p, nullptr);
  sh.center.assign(p, nullptr);
  if (model_kind == output_model::average || o.evaluate_average) sh.average.assign(n, 0.0F);
  sh.correct.assign(p, 0);
  sh.correct_average.assign(p, 0);
  sh.loss_sum.assign(p, 0.0);
  sh.stats.assign(p, {});
  sh.gradient_s.assign(p, 0.0);
  sh.step_s.assign(p, 0.0);
  sh.received = std::make_unique<std::atomic<std::uint64_t>[]>(p);

  train_result result;
  result.parameters = n;
  result.steps_per_epoch = steps_per_epoch;
  double last_accuracy = 0.0;
  double eval_total = 0.0;

  blas_single_thread();
  tether::team team(o.workers, {.group_size = group_size});
  const auto t_start = clock::now();

  team.run([&](tether::team::worker& w) {
    blas_single_thread();  // each worker: OpenBLAS on the calling thread only
    const auto r = static_cast<std::size_t>(w.rank());
    mlp model(train);
    // Sharded data: worker r owns the r-th part of the training set. Replicated: every worker walks the whole set
    // in its own order, taking steps_per_epoch batches of it per epoch.
    shard data = o.replicate_data ? shard(train.count, 0, 1, o.batch, mix_seed({o.seed, r, 0x7265706cULL}))
                                  : shard(train.count, r, p, o.batch, o.seed);
    tether::exec::serial::buffer<float> x(n);
    tether::exec::serial::buffer<float> g(n);
    model.init(x, o.seed);  // the same starting point on every worker
    Opt opt(w, n, opts);
    sh.x[r] = x.data();
    if constexpr (requires { Opt::pull_type::buffers; }) {
      if constexpr (Opt::pull_type::buffers > 0) {
        if (model_kind == output_model::center) sh.center[r] = opt.target(0).data();
      }
    }

    // The end-of-epoch evaluation: every worker takes part; worker 0 records.
    // Slots of this worker are written only before barrier A; worker 0 reads them between A and C, so no worker can
    // overwrite them (at its next evaluation) while worker 0 reads.
    worker_clock clk;
    const auto evaluate = [&](std::size_t epoch, std::uint64_t step) {
      if constexpr (requires { opt.sync(x); }) opt.sync(x);  // SwarmSGD: no exchange in flight past this point
      sh.stats[r] = opt.stats();
      sh.gradient_s[r] = clk.gradient_s;
      sh.step_s[r] = clk.step_s;
      sh.loss_sum[r] = clk.loss_sum;
      w.barrier();  // A: every x is still, every slot above written
      const auto t_eval = clock::now();
      epoch_record rec;
      if (r == 0) {
        double loss = 0.0;
        double received = 0.0;
        for (std::size_t j = 0; j < p; ++j) {
          loss += sh.loss_sum[j];
          received += static_cast<double>(sh.stats[j].bytes_received);
          rec.gradient_s += sh.gradient_s[j];
          rec.step_s += sh.step_s[j];
          rec.kernel_s += sh.stats[j].seconds_compute;
          rec.comm_s += sh.stats[j].seconds_comm;
        }
        const auto pd = static_cast<double>(p);
        rec.epoch = epoch;
        rec.step = step;
        rec.train_loss = epoch == 0 ? std::nan("") : loss / (pd * static_cast<double>(steps_per_epoch));
        rec.bytes_per_worker = received / pd;
        rec.gradient_s /= pd;
        rec.step_s /= pd;
        rec.kernel_s /= pd;
        rec.comm_s /= pd;
        rec.rounds = opt.stats().rounds;
        rec.leader_changes = opt.stats().leader_changes;
        if (step == 0) {
          sh.output = sh.x[0];  // before training every worker holds the same initial model
        } else if (model_kind == output_model::leader) {
          const int leader = opt.stats().leader;
          sh.output = sh.x[leader >= 0 ? static_cast<std::size_t>(leader) : 0];
        } else if (model_kind == output_model::center) {
          sh.output = sh.center[0];
        } else if (model_kind == output_model::server) {
          if constexpr (requires(std::vector<float>& v) { opt.peek(v); }) {
            sh.server.resize(n);
            opt.peek(sh.server);  // every replica waits at barrier A: the shards are still
          }
          sh.output = sh.server.data();
        } else {
          sh.output = sh.average.data();
        }
      }
      if (step > 0 && (model_kind == output_model::average || o.evaluate_average)) {
        const std::size_t lo = n * r / p;
        const std::size_t hi = n * (r + 1) / p;
        const float inv = 1.0F / static_cast<float>(p);
        for (std::size_t i = lo; i < hi; ++i) {
          float s = 0.0F;
          for (std::size_t j = 0; j < p; ++j) s += sh.x[j][i];
          sh.average[i] = s * inv;
        }
      }
      w.barrier();  // B: the output model is complete and chosen
      const auto count_correct = [&](const float* model_x) {
        const double acc = model.accuracy(std::span<const float>(model_x, n), test_parts[r]);
        return static_cast<std::size_t>(std::lround(acc * static_cast<double>(test_parts[r].count)));
      };
      sh.correct[r] = count_correct(sh.output);
      if (o.evaluate_average) {
        const bool same = step == 0 || model_kind == output_model::average;
        sh.correct_average[r] = same ? sh.correct[r] : count_correct(sh.average.data());
      }
      w.barrier();  // C: every part evaluated; nobody moves x before this
      if (r == 0) {
        eval_total += seconds_since(t_eval);
        std::size_t correct = 0;
        std::size_t correct_average = 0;
        for (std::size_t j = 0; j < p; ++j) {
          correct += sh.correct[j];
          correct_average += sh.correct_average[j];
        }
        rec.test_accuracy = static_cast<double>(correct) / static_cast<double>(test.count);
        rec.average_accuracy = o.evaluate_average
                                   ? static_cast<double>(correct_average) / static_cast<double>(test.count)
                                   : std::nan("");
        rec.elapsed_s = seconds_since(t_start);
        rec.train_s = rec.elapsed_s - eval_total;
        last_accuracy = rec.test_accuracy;
        result.epochs.push_back(rec);
        if (cb.on_epoch) cb.on_epoch(rec);
      }
    };

    train_worker(opt, model, data, x, g, o.epochs, steps_per_epoch, clk, evaluate,
                 [&](std::size_t e, std::size_t k, std::uint64_t step) {
                   sh.received[r].store(opt.stats().bytes_received, std::memory_order_relaxed);
                   if (r != 0 || !progress.due(k, step)) return;
                   double received = 0.0;
                   for (std::size_t j = 0; j < p; ++j) received += static_cast<double>(sh.received[j].load(std::memory_order_relaxed));
                   progress.report(e, k, step, clk.loss_sum, last_accuracy, received / static_cast<double>(p),
                                   t_start);
                 });
  });

  result.wall_s = seconds_since(t_start);
  result.eval_s = eval_total;
  return result;
}

/// The step policy's options for `o`.
template <class Step>
typename Step::options step_options(const train_options& o) {
  if constexpr (std::is_same_v<Step, tether::step::momentum>) {
    return {.momentum = o.momentum,
            .nesterov = o.step == local_step::nesterov || o.algo == algorithm::eamsgd ||
                        o.algo == algorithm::async_eamsgd};
  } else {
    return {};
  }
}

inline tether::schedule make_schedule(const train_options& o, std::size_t steps_total) {
  if (o.schedule == lr_schedule::cosine) return tether::schedule::cosine(std::max<std::size_t>(1, steps_total));
  return tether::schedule::constant();
}

/// Runs an optimizer type on the thread team (run_team): the backend of train(). A backend names the communicator
/// the optimizers are built on (`comm_type`) and runs one optimizer type with its options; train_mpi.hpp has the
/// MPI one.
struct team_backend {
  using comm_type = tether::team::worker;
  const dataset& train;
  const dataset& test;
  const train_options& o;
  const train_callbacks& cb;

  template <class Opt>
  train_result run(const typename Opt::options& opts, output_model model_kind, int group_size) const {
    return run_team<Opt>(train, test, o, opts, model_kind, cb, group_size);
  }
};

/// Downpour: the replicas' local step is the driver's `Step`, the shards run `ShardStep` at the same rate; a push of
/// the accrued gradient and a fetch every `period` steps; one shard per worker; the cosine schedule scales both rates.
/// Under MPI the last rank serves the shards (`servers` = 1) and the other ranks are the workers.
template <class ShardStep, class Step, class Backend>
train_result run_downpour(const Backend& be, const train_options& o, std::size_t steps_total) {
  using opt = tether::algo::downpour<typename Backend::comm_type, ShardStep, tether::exec::serial, float, Step>;
  typename opt::options opts;
  opts.lr = o.lr;
  opts.local_lr = o.lr;
  opts.n_fetch = o.period;
  opts.n_push = o.period;
  opts.shards = static_cast<std::size_t>(o.workers);
  opts.local_step = step_options<Step>(o);
  opts.schedule = make_schedule(o, steps_total);
  opts.check_gradient = o.check_gradient;
  opts.servers = 1;
  return be.template run<opt>(opts, output_model::server, 0);
}

/// Runs `o.algo` with the local step `Step` on the backend's communicator.
template <class Step, class Backend>
train_result run_with_step(const Backend& be, const dataset& train, const train_options& o) {
  using worker = typename Backend::comm_type;
  const std::size_t steps_total =
      shard::common_batches_per_epoch(train.count, static_cast<std::size_t>(o.workers), o.batch) * o.epochs;
  const auto fill = [&](auto& opts) {
    opts.lr = o.lr;
    opts.step = step_options<Step>(o);
    opts.schedule = make_schedule(o, steps_total);
    opts.check_gradient = o.check_gradient;
  };
  switch (o.algo) {
    case algorithm::lsgd: {
      using opt = tether::algo::lsgd<worker, Step>;
      typename opt::options opts;
      fill(opts);
      opts.pull.period = o.period;
      opts.pull.strength = o.leader_strength;
      opts.pull.jump = o.leader_jump;
      return be.template run<opt>(opts, output_model::leader, 0);
    }
    case algorithm::lsgd_grouped: {
      using opt = tether::algo::lsgd_grouped<worker, Step>;
      typename opt::options opts;
      fill(opts);
      opts.pull.period = o.period;
      opts.pull.global_period = o.global_period == 0 ? default_global_period(o.period) : o.global_period;
      opts.pull.strength = o.leader_strength;
      opts.pull.global_strength = o.leader_strength;
      opts.pull.jump = o.leader_jump;
      opts.pull.global_jump = o.leader_jump;
      return be.template run<opt>(opts, output_model::leader, o.group_size);
    }
    case algorithm::easgd:
    case algorithm::eamsgd: {
      using opt = tether::algo::easgd<worker, Step>;
      typename opt::options opts;
      fill(opts);
      opts.pull.period = o.period;
      opts.pull.beta = o.easgd_beta;
      return be.template run<opt>(opts, output_model::center, 0);
    }
    case algorithm::local_sgd:
    case algorithm::sync_sgd: {
      using opt = tether::algo::local_sgd<worker, Step>;
      typename opt::options opts;
      fill(opts);
      opts.pull.period = o.algo == algorithm::sync_sgd ? 1 : o.period;
      return be.template run<opt>(opts, output_model::average, 0);
    }
    case algorithm::overlap_local_sgd: {
      using opt = tether::algo::overlap_local_sgd<worker, Step>;
      typename opt::options opts;
      fill(opts);
      opts.pull.period = o.period;
      opts.pull.alpha = o.anchor_alpha;
      return be.template run<opt>(opts, output_model::average, 0);
    }
    case algorithm::async_lsgd: {
      using opt = tether::algo::async_lsgd<worker, Step>;
      typename opt::options opts;
      fill(opts);
      opts.pull.period = o.period;
      opts.pull.strength = o.leader_strength;
      opts.pull.jump = o.leader_jump;
      return be.template run<opt>(opts, output_model::leader, 0);
    }
    case algorithm::async_easgd:
    case algorithm::async_eamsgd: {
      using opt = tether::algo::async_easgd<worker, Step>;
      typename opt::options opts;
      fill(opts);
      opts.pull.period = o.period;
      opts.pull.beta = o.easgd_beta;
      return be.template run<opt>(opts, output_model::center, 0);
    }
    case algorithm::downpour:
      return run_downpour<tether::step::adagrad, Step>(be, o, steps_total);
    case algorithm::downpour_sgd:
      return run_downpour<tether::step::sgd, Step>(be, o, steps_total);
    case algorithm::swarm: {
      const auto fill_swarm = [&](auto& opts) {
        fill(opts);
        opts.topology = tether::comm::topology::make(o.topology, o.workers, /*r=*/std::min(4, o.workers - 1), o.seed);
        opts.local_steps = o.period;
        opts.seed = o.seed;
        opts.nonblocking = o.nonblocking;
      };
      if (o.bits == 0) {
        using opt = tether::algo::swarm_sgd<worker, Step>;
        typename opt::options opts;
        fill_swarm(opts);
        return be.template run<opt>(opts, output_model::average, 0);
      }
      using opt = tether::algo::swarm_sgd<worker, Step, tether::codec::stochastic_uniform<float>>;
      typename opt::options opts;
      fill_swarm(opts);
      opts.codec = tether::codec::stochastic_uniform<float>({.bits = o.bits, .block = 256});
      return be.template run<opt>(opts, output_model::average, 0);
    }
  }
  throw tether::error("fmnist::train: unknown algorithm");
}

}  // namespace detail

/// Checks `o` (and that it fits `train_count` samples); throws tether::error naming the field and its value.
inline void validate(const train_options& o, std::size_t train_count) {
  using tether::detail::require;
  if (o.algo == algorithm::lsgd_grouped && o.global_period == 0)
    require(std::uint64_t{4} * o.period <= std::numeric_limits<std::uint32_t>::max(),
            "fmnist::train: 4 * period (the default global_period) must be below 2^32, got period = ", o.period);
  require(o.workers >= 1 && o.workers <= 256, "fmnist::train: workers must be in [1, 256], got ", o.workers);
  require(o.epochs >= 1, "fmnist::train: epochs must be >= 1, got ", o.epochs);
  require(o.period >= 1, "fmnist::train: period must be >= 1, got ", o.period);
  require(std::isfinite(o.lr) && o.lr > 0.0, "fmnist::train: lr must be a finite number > 0, got ", o.lr);
  require(std::isfinite(o.momentum) && o.momentum >= 0.0f && o.momentum < 1.0f,
          "fmnist::train: momentum must be in [0, 1), got ", o.momentum);
  require(o.batch >= 1, "fmnist::train: batch must be >= 1, got ", o.batch);
  require(o.bits <= 8, "fmnist::train: bits must be 0 (fp32) or in 1..8, got ", o.bits);
  if (o.algo == algorithm::lsgd_grouped) {
    require(o.group_size >= 1 && o.workers % o.group_size == 0, "fmnist::train: group_size (", o.group_size,
            ") must divide workers (", o.workers, ")");
    require(o.global_period % o.period == 0, "fmnist::train: global_period (", o.global_period,
            ") must be a multiple of period (", o.period, ")");
  }
  require(train_count / static_cast<std::size_t>(o.workers) >= o.batch, "fmnist::train: ", train_count,
          " training samples over ", o.workers, " workers leave fewer than one batch of ", o.batch, " per worker");
}

namespace detail {

/// Runs `o` on `be` with the local step `o.step` names (eamsgd, async-eamsgd: Nesterov momentum).
template <class Backend>
train_result run_on(const Backend& be, const dataset& train, const train_options& o) {
  if (o.algo == algorithm::eamsgd || o.algo == algorithm::async_eamsgd) {
    return run_with_step<tether::step::momentum>(be, train, o);
  }
  switch (o.step) {
    case local_step::sgd: return run_with_step<tether::step::sgd>(be, train, o);
    case local_step::momentum:
    case local_step::nesterov: return run_with_step<tether::step::momentum>(be, train, o);
    case local_step::adam: return run_with_step<tether::step::adam>(be, train, o);
  }
  throw tether::error("fmnist::train: unknown local step");
}

}  // namespace detail

/// Trains the MLP on `train` with `o.workers` workers running `o.algo`, evaluating on `test` after every epoch.
/// Throws tether::error on bad options; rethrows a worker's failure.
inline train_result train(const dataset& train, const dataset& test, const train_options& o,
                          const train_callbacks& cb = {}) {
  validate(o, train.count);
  tether::detail::require(test.count > 0, "fmnist::train: the test set is empty (accuracy would be 0/0)");
  return detail::run_on(detail::team_backend{train, test, o, cb}, train, o);
}

}  // namespace fmnist
